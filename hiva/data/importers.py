"""The importers, one module per raw format, each reading into a manifest DataFrame (see
hiva.data.manifest), and the ME-GraphAU list exporter; this module names them all. Each importer
returns ``(df, report)`` where ``report`` (an ``ImportReport``, a Counter) counts what was skipped
or left unknown and why, with a few example files per reason; nothing is dropped silently, and a
run that imports no frame at all is an error.

- BP4D (``hiva.data.bp4d``): ``img/<subject>/<task>/<frame>.jpg`` and
  ``AUCoding/AU_OCC/<subject>_<task>.csv`` (header ``0,1,2,...``: column 0 the frame number,
  column k AU k; 0/1, 9 = unknown).
- DISFA (``hiva.data.disfa``): ``img/<subject>/<i>.png`` (left camera, i from 0; decoded from
  ``Videos_LeftCamera/LeftVideo<subject>_comp.avi`` when only the videos are there) and
  ``ActionUnit_Labels/<subject>/<subject>_au<k>.txt`` (``frame,intensity``, frames from 1).
- ME-GraphAU (``hiva.data.megraphau``): ``<NAME>_<split>_img_path_fold<k>.txt`` +
  ``<NAME>_<split>_label_fold<k>.txt`` (one relative path / one space-separated 0/1 row per line,
  9 = unknown; AU order of the BP4D or DISFA set). Fold k is ME-GraphAU's fold k
  (``hiva.data.folds``: fold k tests part 4 - k).
- CSV (``hiva.data.csv_import``): a ``path`` column and AU columns (``AU1``/``AU01``/``au12``),
  optional subject, sequence and frame columns.

What they share (the report, the skip reasons users match on, the readers):
``hiva.data.importing``.
"""

from __future__ import annotations

from hiva.data.bp4d import import_bp4d
from hiva.data.csv_import import import_csv
from hiva.data.disfa import decode_video, import_disfa
from hiva.data.importing import ImportReport
from hiva.data.megraphau import export_megraphau, import_megraphau, infer_images_root

__all__ = ["ImportReport", "decode_video", "export_megraphau", "import_bp4d", "import_csv",
           "import_disfa", "import_megraphau", "infer_images_root"]
