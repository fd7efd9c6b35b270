"""DISFA in its licensed layout: ``img/<subject>/<i>.png`` (left camera, i from 0; decoded from
``Videos_LeftCamera/LeftVideo<subject>_comp.avi`` when only the videos are there) and
``ActionUnit_Labels/<subject>/<subject>_au<k>.txt`` (``frame,intensity``, frames from 1)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from hiva.data import importing
from hiva.data.importing import ImportReport
from hiva.errors import HivaError
from hiva.facs import AUS, au_column
from hiva.runtime import atomic_write


def decode_video(video: str | Path, folder: str | Path) -> int:
    """Decode every frame of ``video`` to ``folder/<i>.png`` (i from 0) with PyAV; frames already
    on disk are kept, so a killed run resumes. Returns the number of frames."""
    import av

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    n = 0
    with av.open(str(video)) as box:
        for i, frame in enumerate(box.decode(video=0)):
            dst = folder / f"{i}.png"
            if not dst.exists():
                atomic_write(dst, lambda p, img=frame.to_image(): img.save(p, format="PNG"))
            n = i + 1
    return n


def _decode_videos(root: Path, img_dir: Path) -> None:
    """DISFA ships left-camera videos (``Videos_LeftCamera/LeftVideo<subject>_comp.avi``); decode
    those whose frames are not in ``img_dir`` yet."""
    vids = sorted((root / "Videos_LeftCamera").glob("LeftVideo*.avi"))
    for v in vids:
        subject = v.stem.removeprefix("LeftVideo").removesuffix("_comp")
        if not (img_dir / subject).is_dir() or (img_dir / subject / ".partial").exists():
            (img_dir / subject).mkdir(parents=True, exist_ok=True)
            (img_dir / subject / ".partial").touch()
            decode_video(v, img_dir / subject)
            (img_dir / subject / ".partial").unlink()


def _read_labels(lab_dir: Path, report: ImportReport) -> dict[str, dict[int, dict[int, float]]]:
    """``{subject: {AU: {label frame (from 1): intensity}}}`` from the per-AU label files."""
    pat = re.compile(r"^(.+)_au(\d+)$", re.IGNORECASE)
    subjects = sorted(d for d in lab_dir.iterdir() if d.is_dir())
    if not subjects:
        raise HivaError(f"no subject folders in {lab_dir}; pass the ActionUnit_Labels folder")
    labels_of: dict[str, dict[int, dict[int, float]]] = {}
    for sd in subjects:
        per_au: dict[int, dict[int, float]] = {}
        for f in sorted(sd.glob("*.txt")):
            where = f"{sd.name}/{f.name}"
            m = pat.match(f.stem)
            if not m or int(m.group(2)) not in AUS:
                report.add("label files not named <subject>_au<k>.txt", where)
                continue
            text = importing.read_label_text(f, report, where)
            if text is None:
                continue
            if not text.strip():
                report.add(importing.R_EMPTY, where)
                continue
            vals: dict[int, list[tuple[float, int]]] = {}  # frame → (intensity, line) read
            for n, line in enumerate(text.splitlines(), start=1):
                parts = [p for p in re.split(r"[,\s]+", line.strip()) if p]
                if not parts:
                    continue
                try:
                    if len(parts) != 2:
                        raise ValueError(line)
                    fr, v = importing.label_int(parts[0]), float(parts[1])
                    if not math.isfinite(v):
                        raise ValueError(line)
                except ValueError:
                    report.add(importing.R_BAD_ROW, f"{where}:{n}")
                    continue
                vals.setdefault(fr, []).append((v, n))
            per_au[int(m.group(2))] = {fr: _one_value(got, report, where)
                                        for fr, got in vals.items()}
        labels_of[sd.name] = per_au
    return labels_of


def _one_value(got: list[tuple[float, int]], report: ImportReport, where: str) -> float:
    """A frame's intensity in one AU file; listed more than once, the value every line agrees
    on, else NaN: unknown, counted (``importing.merge_labels``), never the last line read."""
    if len(got) == 1:
        return got[0][0]
    v = importing.merge_labels([{0: x} for x, _ in got], report, f"{where}:{got[1][1]}")[0]
    return math.nan if v is None else v


def import_disfa(root: str | Path, images: str | Path | None = None,
                 labels: str | Path | None = None,
                 threshold: int = 2) -> tuple[pd.DataFrame, ImportReport]:
    root = Path(root)
    if images is None and (root / "Videos_LeftCamera").is_dir():
        _decode_videos(root, root / "img")
    img_dir = importing.need_dir(Path(images) if images else root / "img", "DISFA image",
                                 "--images")
    lab_dir = importing.need_dir(Path(labels) if labels else root / "ActionUnit_Labels",
                                 "DISFA ActionUnit_Labels", "--labels")
    report = ImportReport()
    rows = []
    labels_of = _read_labels(lab_dir, report)
    all_aus = sorted({k for per_au in labels_of.values() for k in per_au})
    for subject, per_au in labels_of.items():
        frames_dir = img_dir / subject
        frames = importing.numbered_frames(frames_dir) if frames_dir.is_dir() else {}
        labelled = sorted(set().union(*per_au.values())) if per_au else []
        unlabelled = set(frames) - {fr - 1 for fr in labelled}
        if unlabelled:
            report.add("images with no label in any AU file (not imported)", subject,
                       n=len(unlabelled))
        for fr in labelled:
            i = fr - 1  # label frames count from 1, image files from 0
            if i not in frames:
                report.add(importing.R_NO_IMAGE, f"{subject} frame {fr}")
                continue
            row = {"path": str(frames[i].resolve()), "subject": subject, "sequence": "left",
                   "frame": i}
            for k in all_aus:
                v = per_au.get(k, {}).get(fr)
                if v is not None and math.isnan(v):  # given twice, differently: counted above
                    v = None
                elif v is None:
                    report.add(f"frames with no label for AU{k} (label file missing or short; "
                               f"AU{k} left unknown)", f"{subject}_au{k}.txt", kept=True)
                row[au_column(k)] = None if v is None else int(v >= threshold)
                row[f"{au_column(k)}_intensity"] = np.nan if v is None else v
            rows.append(row)
    return importing.finish(rows, report, "DISFA")
