"""Training, evaluation and run reports for HiVA (``hiva train``, ``hiva evaluate``,
``hiva report``). Light to import: torch loads inside ``hiva.train.trainer``'s functions.

Public: ``TrainConfig`` (hiva.train.config), ``run(cfg)`` and ``evaluate(run_dir, fold, ...)``
(hiva.train.trainer), ``au_metrics`` (hiva.train.metrics), ``report(run_dirs)``
(hiva.train.report).
"""

from hiva.train.config import TrainConfig

__all__ = ["TrainConfig"]
