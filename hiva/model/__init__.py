"""The HiVA model: timm backbone → AU-aware dynamic graph → DDCA → CDCA → heads, and its losses.

Imports here stay light (no torch): ``from hiva.model.hiva import HiVA`` pulls torch in.
"""

from hiva.model.config import ModelConfig

__all__ = ["ModelConfig"]
