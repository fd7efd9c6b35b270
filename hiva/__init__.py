"""hiva: facial Action Unit detection with language priors (HiVA, Li et al., arXiv 2602.14425)."""

__version__ = "0.1.0"
