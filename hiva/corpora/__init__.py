"""Description corpora: schema, reading and writing (imports without torch)."""
