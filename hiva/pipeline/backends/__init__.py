"""LLM backends behind one protocol; see ``base.Generator``."""
