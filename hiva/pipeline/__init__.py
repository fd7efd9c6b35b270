"""Pipeline stages: description generation, dedup, and text embedding."""
