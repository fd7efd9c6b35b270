"""Training, evaluation and run reports for HiVA (``hiva train``, ``hiva evaluate``,
``hiva report``). Light to import: torch loads inside ``hiva.train.trainer``'s functions.

Public: ``TrainConfig`` (hiva.train.config), ``run(cfg)`` (hiva.train.trainer; the fold loop
is ``FoldRun``), ``evaluate(run_dir, fold, ...)`` (hiva.train.evaluate), ``au_metrics``
(hiva.train.metrics), ``report(run_dirs)`` (hiva.train.report). The parts: ``protocol``
(data, AUs, folds, run folders, summary), ``steps`` (train/eval steps, loaders, ``predict``),
``logs`` (CSV/TensorBoard, predictions, weight identity), ``checkpoint`` (resume state),
``feature_cache`` and ``feature_set`` (heads-only training on a frozen backbone's cached maps).
"""

from hiva.train.config import TrainConfig

__all__ = ["TrainConfig"]
