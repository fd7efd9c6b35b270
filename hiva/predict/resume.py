"""``hiva predict`` that resumes: the table is written in parts beside ``--out`` and put together
at the end, so a killed run goes on from what it wrote.

Writes, for ``--out au.csv``, the folder ``au.csv.parts/``:

- ``settings.json``: what the rows depend on (``run_settings``: the weights and their SHA-256,
  the inputs with their sizes and modification times, alignment, thresholds, device, batch size,
  ``--skip-frames``, ``--max-faces``, ``--min-face``, ``--track-gap``); a rerun with other
  settings is refused in one line (``--restart`` discards the parts);
- ``part-00000.parquet`` ... : consecutive batches of rows in the hiva layout (plus ``_source``,
  each row's input's place among the inputs), each ended at a batch's end, with
  ``part-00000.json`` beside it (the last frame it holds, its frame count and the unreadable
  files passed before it). Each file is written under a temporary name and renamed; a part
  counts once its JSON exists.

A rerun with the same settings reads the JSONs, starts the stream after the last frame written
(earlier inputs are passed over; a video's earlier frames are decoded, not scored:
``hiva.predict.stream.decode``), rebuilds the track ids of the input it stopped in from that
input's rows (``hiva.predict.tracks.Tracks.replay``), and shows the frames already written as
done on the progress bar. Because a part ends where a batch ends, the resumed stream forms the
same batches as an uninterrupted run: the final table is the same, probabilities included, bit
for bit. At the end the parts are put together in ``--format`` (``TableWriter``: a temp file
renamed into place) and the folder is removed.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from hiva.errors import HivaError
from hiva.predict.media import expand_inputs
from hiva.predict.table import BOX_COLUMNS, TableWriter, in_format
from hiva.predict.tracks import Tracks
from hiva.runtime import atomic_write, file_sha256, write_text_atomic

SETTINGS = "settings.json"
CHUNK_ROWS = 2048  # a part is written once this many rows wait, at the end of a batch
SCHEMA = 1
# a setting as the user changes it (the rest are --flags named as the settings are)
_NAMES = {"weights": "--checkpoint/--weights", "weights_sha256": "the weights' contents",
          "fold": "--fold", "text_bank": "--text-bank", "device": "--device",
          "amp": "the precision", "align": "--align", "thresholds": "--threshold",
          "inputs": "the inputs (or their files)", "schema": "hiva's parts format"}


def parts_dir(out) -> Path:
    out = Path(out)
    return out.with_name(f"{out.name}.parts")


def run_settings(det, cfg, sources) -> dict:
    """What the rows of ``cfg``'s run depend on; two runs with equal settings write equal
    tables. ``--format`` is not among them (the parts hold the hiva layout), nor
    ``--model-threads`` or ``--progress``."""
    ld = det.loaded
    inputs = []
    for s in sources:
        st = Path(s.path).stat()
        inputs.append([s.path, st.st_size, st.st_mtime_ns])
    return {"schema": SCHEMA, "weights": str(Path(ld.weights).resolve()),
            "weights_sha256": file_sha256(ld.weights), "fold": ld.fold,
            "text_bank": ld.text_bank, "device": ld.device.type, "amp": str(ld.amp),
            "align": det.align, "thresholds": [float(t) for t in det.thresholds],
            "inputs": inputs, "batch_size": cfg.batch_size, "skip_frames": cfg.skip_frames,
            "max_faces": cfg.max_faces, "min_face": cfg.min_face, "track_gap": cfg.track_gap}


class Parts:
    """The parts folder of one ``--out``: opened (checked against ``settings``), added to a part
    at a time, read back, put together."""

    def __init__(self, out, settings: dict, restart: bool = False):
        self.out = Path(out)
        self.dir = parts_dir(out)
        settings = json.loads(json.dumps(settings))  # as it reads back
        if restart and self.dir.exists():
            shutil.rmtree(self.dir)
        kept = self.dir / SETTINGS
        if kept.is_file():
            old = json.loads(kept.read_text())
            changed = [_NAMES.get(k, "--" + k.replace("_", "-"))
                       for k in sorted(set(old) | set(settings)) if old.get(k) != settings.get(k)]
            if changed:
                raise HivaError(
                    f"--out {self.out}: {self.dir} holds a run stopped part way with other "
                    f"settings ({', '.join(changed)} changed); rerun it as it was to resume, or "
                    "add --restart to discard those parts and start over")
        elif self.dir.exists() and any(self.dir.iterdir()):
            raise HivaError(f"--out {self.out}: {self.dir} exists and is not hiva predict's "
                            "parts folder; move it away or pass another --out")
        self.dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(kept, json.dumps(settings, indent=1))
        self.done = sorted(self.dir.glob("part-*.json"))
        self.records = [json.loads(p.read_text()) for p in self.done]

    def _part(self, n: int) -> Path:
        return self.dir / f"part-{n:05d}.parquet"

    @property
    def frames(self) -> int:
        return sum(r["frames"] for r in self.records)

    @property
    def unreadable(self) -> list[tuple[str, str]]:
        return [tuple(u) for r in self.records for u in r["unreadable"]]

    def resume(self, gap: int) -> dict:
        """``iter_batches``' keywords to go on after the last part: ``start``, ``tracks``
        (the input it stopped in replayed), ``done`` frames."""
        if not self.records:
            return {"start": (0, 0), "tracks": Tracks(gap), "done": 0}
        i, frame = self.records[-1]["end"]
        tracks = Tracks(gap)
        tracks.replay(i, self._rows_of(i))
        return {"start": (i, frame + 1), "tracks": tracks, "done": self.frames}

    def _rows_of(self, i: int):
        """The rows written for input ``i`` (the last input of the parts), in order."""
        import pandas as pd

        cols = ["_source", "frame", "success", *BOX_COLUMNS]
        got = []
        for n in range(len(self.records) - 1, -1, -1):
            df = pd.read_parquet(self._part(n), columns=cols)
            got.append(df[df["_source"] == i])
            if df["_source"].iloc[0] != i:
                break
        return pd.concat(got[::-1], ignore_index=True)

    def write(self, batches: list, unreadable: list) -> None:
        """One part: ``batches`` (typed hiva-layout frames, each with ``attrs["end"]``) and the
        unreadable files passed since the last part."""
        import pandas as pd

        src = [i for b in batches for i in b.attrs["sources"]]
        df = pd.concat(batches, ignore_index=True)
        df["_source"] = pd.array(src, dtype="int64")
        n = len(self.records)
        atomic_write(self._part(n), lambda p: df.to_parquet(p, index=False))
        rec = {"end": list(batches[-1].attrs["end"]), "rows": len(df),
               "frames": int((df["face_id"] == 0).sum()), "unreadable": unreadable}
        write_text_atomic(self._part(n).with_suffix(".json"), json.dumps(rec))
        self.records.append(rec)

    def assemble(self, empty, outputs, fmt: str) -> dict:
        """Write ``--out`` from the parts in layout ``fmt`` (``empty``: the typed empty table),
        then remove the parts; returns {"rows", "faces"} of the whole table."""
        import pandas as pd

        rows = faces = 0
        with TableWriter(self.out, empty=in_format(empty, outputs, fmt)) as w:
            for n in range(len(self.records)):
                df = pd.read_parquet(self._part(n)).drop(columns="_source")
                rows, faces = rows + len(df), faces + int(df["success"].sum())
                w.write(in_format(df, outputs, fmt))
        shutil.rmtree(self.dir)
        return {"rows": rows, "faces": faces}


def predict_to_file(det, cfg) -> dict:
    """Score ``cfg.inputs`` into ``cfg.out`` through a parts folder, resuming what a killed run
    with the same settings wrote. Returns the table's {"rows", "faces"}; ``det.unreadable``
    holds every unreadable file, of earlier runs too."""
    sources = expand_inputs(list(cfg.inputs))
    parts = Parts(cfg.out, run_settings(det, cfg, sources), cfg.restart)
    go_on = parts.resume(det.track_gap)
    if go_on["done"]:
        print(f"resuming from {parts.dir}: {go_on['done']} frames written by an earlier run",
              file=sys.stderr, flush=True)
    det.unreadable, det.unreadable_at = [], []
    det.counts = {"rows": 0, "faces": 0, "too_small": 0}
    det.finder.reset()
    waiting, n_rows, stored = [], 0, 0
    for df in det.iter_batches(list(cfg.inputs), cfg.progress, None, cfg.skip_frames, **go_on):
        det._count(df)
        waiting.append(df)
        n_rows += len(df)
        if n_rows >= CHUNK_ROWS:
            # the unreadable files of inputs before this part's last one are passed for good
            last = df.attrs["end"][0]
            new = [i for i in det.unreadable_at[stored:] if i < last]
            parts.write(waiting, [list(u) for u in det.unreadable[stored:stored + len(new)]])
            stored += len(new)
            waiting, n_rows = [], 0
    if waiting:
        parts.write(waiting, [list(u) for u in det.unreadable[stored:]])
        stored = len(det.unreadable)
    det.unreadable = parts.unreadable + det.unreadable[stored:]
    return parts.assemble(det._typed([]), det.outputs, cfg.format)
