"""hiva: facial Action Unit detection with language priors (HiVA, Li et al., arXiv 2602.14425)."""

__version__ = "0.1.0"

# The paper, cited by the dataset cards (hiva corpus export/push) and model cards (hiva export).
CITATION = """@article{li2026hiva,
  title   = {Hierarchical Vision-Language Interaction for Facial Action Unit Detection},
  author  = {Li and others},
  journal = {IEEE Transactions on Affective Computing (arXiv:2602.14425)},
  year    = {2026}
}"""


def __getattr__(name: str):
    # Lazy: ``import hiva`` stays light; torch and mediapipe load when a Detector is asked for.
    if name == "Detector":
        from hiva.predict.detector import Detector

        return Detector
    raise AttributeError(f"module 'hiva' has no attribute {name!r}")
