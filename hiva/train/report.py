"""``hiva report``: test F1 and ROC AUC of runs with bootstrap confidence intervals.

- ``hiva report ROOT``, ROOT holding ``sweep.json`` (``hiva sweep``'s layout: ``{"version": 1,
  "runs": [{"id", "arm", "seed", "label_fraction", "dir"}, ...], "primary": "A - B"}``, ``dir``
  relative to ROOT, ``primary`` optional): finished runs (with ``metrics.json``) grouped by (arm,
  label_fraction), named ``arm`` at label_fraction 1.0 else ``arm@10%``; per group the mean F1
  and mean AUC over seeds and folds with 95% CIs, and the paired differences against the
  reference group (CI, p, Holm-adjusted p). The primary contrast (sweep.json's or ``--primary``)
  comes first. Unfinished runs are named and left out.
- ``hiva report RUN_DIR...``: the per-AU point estimates of each run's ``metrics.json`` side by
  side, then the same intervals with each run folder its own group (skipped, with a note, where
  the runs cannot be paired).

The bootstrap is hierarchical by default (test subjects and each group's seeds resampled, seeds
paired across groups that share them), or over test subjects only (``resample="subjects"``).
Groups with fewer than 8 runs (seeds) are marked exploratory. Runs whose test predictions carry
map scores (data with landmarks; or ``hiva evaluate`` run on them) also get the activation maps'
energy in the AU regions and pointing game, with intervals from the same resamples.

The statistics are in hiva.train.bootstrap (and boot_*), the tables and the forest plot in
hiva.train.report_format, group names and the primary contrast in hiva.train.contrast.
"""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path

from hiva.errors import HivaError
from hiva.runs import METRICS, SWEEP_PLAN, is_finished, read_metrics
from hiva.runtime import output_file
from hiva.train import report_format as fmt
from hiva.train.boot_intensity import intensity_comparison
from hiva.train.boot_localisation import localisation_comparison
from hiva.train.bootstrap import add_holm, compare, load_run
from hiva.train.contrast import group_name, parse_contrast, primaries
from hiva.train.intensity_metrics import intensity_table
from hiva.train.metrics import format_table


def load_summary(run_dir: str | Path) -> dict:
    if not Path(run_dir).is_dir():
        raise HivaError(f"{run_dir} is not a folder; pass a sweep folder (with {SWEEP_PLAN}) or "
                        "`hiva train` run folders")
    if not is_finished(run_dir):
        raise HivaError(f"{run_dir} has no {METRICS} (nor {SWEEP_PLAN}); finish `hiva train "
                        f"--out {run_dir}` first, or pass the sweep folder")
    return read_metrics(run_dir)


def report(run_dirs, names=None, baseline: bool = True) -> tuple[str, dict]:
    """(text table, {name: mean metrics}) for ``run_dirs``; the AUs are the union, a run that
    lacks an AU shows '-'."""
    if not run_dirs:
        raise HivaError("pass at least one run folder: hiva report RUN_DIR [RUN_DIR...]")
    names = list(names) if names else [Path(r).name for r in run_dirs]
    if len(names) != len(run_dirs):
        raise HivaError("give one --name per run folder")
    means = {n: load_summary(r)["mean"] for n, r in zip(names, run_dirs)}
    aus = sorted({a for m in means.values() for a in m["aus"]})
    cols = {}
    for n, m in means.items():
        pos = {a: i for i, a in enumerate(m["aus"])}
        cols[n] = {"f1": [m["f1"][pos[a]] if a in pos else float("nan") for a in aus],
                   "mean_f1": m["mean_f1"], "mean_auc": m.get("mean_auc"),
                   "mean_accuracy": m.get("mean_accuracy")}
    if baseline:
        first = next(iter(means.values()))
        pos = {a: i for i, a in enumerate(first["aus"])}
        cols["all-pos"] = {"f1": [first["baseline_f1"][pos[a]] if a in pos else float("nan")
                                  for a in aus], "mean_f1": first["mean_baseline_f1"]}
    for c in cols.values():  # NaN → shown as '-'
        c["f1"] = [None if v != v else v for v in c["f1"]]
    text = _table(cols, aus)
    return text, means


def intensity_points(run_dirs, names=None) -> str:
    """The intensity table (ICC(3,1) / MAE per AU, mean over folds) of the runs whose
    metrics.json has intensity results, side by side; "" when none has."""
    names = list(names) if names else [Path(r).name for r in run_dirs]
    cols = {n: s["mean_intensity"] for n, r in zip(names, run_dirs)
            if "mean_intensity" in (s := load_summary(r))}
    if not cols:
        return ""
    aus = sorted({a for c in cols.values() for a in c["aus"]})
    nan = float("nan")
    fixed = {n: dict(c, **{k: [c[k][c["aus"].index(a)] if a in c["aus"] else nan for a in aus]
                           for k in ("icc", "mae")}) for n, c in cols.items()}
    return intensity_table(fixed, aus)


def _table(cols: dict, aus) -> str:
    fixed = {n: dict(c, f1=[float("nan") if v is None else v for v in c["f1"]])
             for n, c in cols.items()}
    t = format_table(fixed, aus, "Test F1 ×100, mean over folds (all-pos: first run's folds)")
    return t.replace("nan", "  -")


def to_markdown(text: str) -> str:
    lines = [ln for ln in text.splitlines()[1:]]
    rows = [ln.split() for ln in lines]
    out = ["| " + " | ".join(["AU", *rows[0][1:]]) + " |",
           "|" + "---|" * len(rows[0])]
    out += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    return "\n".join(out)


def read_plan(root: str | Path) -> dict:
    """A sweep ROOT's ``sweep.json`` (checked to be a version-1 plan)."""
    f = Path(root) / SWEEP_PLAN
    try:
        data = json.loads(f.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise HivaError(f"{f} is not valid JSON ({e}); rerun `hiva sweep` or fix the file") \
            from None
    if not isinstance(data, dict) or data.get("version") != 1 \
            or not isinstance(data.get("runs"), list):
        raise HivaError(f'{f} is not a version-1 hiva sweep file ({{"version": 1, "runs": '
                        "[...]}); rerun `hiva sweep`")
    return data


def read_sweep(root: str | Path) -> tuple[dict[str, list[tuple[str, Path]]], list[str]]:
    """({group: [(run id, run folder)] of finished runs}, unfinished run ids) of a sweep ROOT;
    groups in the order sweep.json first names them (a group may have no finished run)."""
    root = Path(root)
    f = root / SWEEP_PLAN
    data = read_plan(root)
    groups: dict[str, list[tuple[str, Path]]] = {}
    unfinished = []
    for i, r in enumerate(data["runs"]):
        try:
            rid, arm, d = str(r["id"]), str(r["arm"]), str(r["dir"])
            lf = r.get("label_fraction")
            lf = 1.0 if lf is None else float(lf)
        except (KeyError, TypeError, ValueError, AttributeError):
            raise HivaError(f"{f}: run {i + 1} lacks id, arm, dir or a numeric label_fraction; "
                            "rerun `hiva sweep`") from None
        runs = groups.setdefault(group_name(arm, lf), [])
        if is_finished(root / d):
            runs.append((rid, root / d))
        else:
            unfinished.append(rid)
    return groups, unfinished


def select_groups(listed: dict, only) -> dict:
    """The groups of ``listed`` whose names match one of the shell patterns ``only`` (all of
    them when ``only`` is empty), in order; none matching is one line naming the groups."""
    if not only:
        return listed
    keep = {g: v for g, v in listed.items() if any(fnmatch.fnmatchcase(g, p) for p in only)}
    if not keep:
        raise HivaError(f"--only {' '.join(only)} matches no group; the groups are: "
                        f"{', '.join(listed)}")
    return keep


def sweep_comparison(root: str | Path, reference: str | None = None, resamples: int = 2000,
                     seed: int = 0, resample: str = "hierarchical", only=None):
    """(``Comparison``, unfinished run ids) of a sweep ROOT, over the groups ``only`` selects
    (shell patterns; all by default). The reference defaults to the first group in sweep.json
    with a finished run; each run's seed is sweep.json's."""
    listed, unfinished = read_sweep(root)
    if only:
        listed = select_groups(listed, only)
        kept = {str(r["id"]) for r in read_plan(root)["runs"]
                if group_name(str(r["arm"]), float(r.get("label_fraction") or 1.0)) in listed}
        unfinished = [rid for rid in unfinished if rid in kept]
    if reference is not None and reference not in listed:
        raise HivaError(f"unknown --reference {reference}; the groups are: {', '.join(listed)}")
    done = {g: rs for g, rs in listed.items() if rs}
    if not done:
        raise HivaError(f"{root} has no finished run ({len(unfinished)} in {SWEEP_PLAN}, none "
                        f"with {METRICS} yet); wait for `hiva sweep` to finish some, or rerun it")
    if reference is not None and reference not in done:
        raise HivaError(f"--reference {reference} has no finished run yet; wait for it or pick "
                        f"one of: {', '.join(done)}")
    seeds = {}
    for r in read_plan(root)["runs"]:
        s = r.get("seed") if isinstance(r, dict) else None
        if isinstance(s, int) and not isinstance(s, bool):
            seeds[str(r["id"])] = s
    groups = {g: [load_run(p, rid, seeds.get(rid)) for rid, p in rs] for g, rs in done.items()}
    return compare(groups, reference or next(iter(done)), resamples, seed, resample), unfinished


def runs_comparison(run_dirs, names=None, reference: str | None = None, resamples: int = 2000,
                    seed: int = 0, resample: str = "hierarchical"):
    """``Comparison`` of run folders, each its own group (named as the ``report`` columns)."""
    names = list(names) if names else [Path(r).name for r in run_dirs]
    if len(set(names)) != len(names):
        raise HivaError("two run folders share a name; give each its own --name for intervals")
    groups = {n: [load_run(r, n)] for n, r in zip(names, run_dirs)}
    if reference is not None and reference not in groups:
        raise HivaError(f"unknown --reference {reference}; pick one of: {', '.join(groups)}")
    return compare(groups, reference or names[0], resamples, seed, resample)


def _primary(comp, text, what: str, listed, selected=None
             ) -> tuple[list[tuple[str, str]], str]:
    """([(A, B), …], a note) of the primary contrast(s) ``text`` ("A - B" or a list of them)
    against ``comp``'s groups: a name outside ``listed`` is refused; a contrast with a group
    left out by ``--only`` (outside ``selected``) or without a finished run only noted."""
    pairs, notes = [], []
    for one in primaries(text):
        a, b = parse_contrast(one, listed, what)
        out = [g for g in (a, b) if selected is not None and g not in selected]
        idle = [g for g in (a, b) if g not in comp.groups]
        if out:
            notes.append(f"primary contrast {a} - {b}: {out[0]} is left out by --only")
        elif idle:
            notes.append(f"primary contrast {a} - {b}: {idle[0]} has no finished run yet, "
                         "not shown")
        else:
            pairs.append((a, b))
    return pairs, "; ".join(notes)


def run_report(paths, names=None, reference: str | None = None, resamples: int = 2000,
               seed: int = 0, markdown: Path | None = None, json_path: Path | None = None,
               plot: Path | None = None, resample: str = "hierarchical",
               primary: str | list[str] | None = None, only=None) -> str:
    """What ``hiva report`` does: the text it prints; writes the Markdown/JSON/PNG asked for.
    ``primary`` ("A - B", or a list of them) sets the contrasts printed first (over
    sweep.json's). ``only``: shell patterns of a sweep's groups to report (all by default)."""
    if not paths:
        raise HivaError("pass a sweep folder or run folders: hiva report ROOT | RUN_DIR...")
    if resamples < 0 or seed < 0:
        raise HivaError("--resamples and --seed must be 0 or more (e.g. --resamples 2000)")
    for path, flag, suffix in ((markdown, "--markdown", ".md"), (json_path, "--json", ".json"),
                               (plot, "--plot", ".png")):
        if path is not None:  # before the bootstrap
            output_file(path, flag, (suffix,))

    def full_summary(comp, text, what, declared_in, listed, selected=None, **extra):
        pairs, note = _primary(comp, text, what, listed, selected)
        s = dict(comp.summary(pairs), **extra)
        for pr in s.get("primaries", []):
            pr["declared_in"] = declared_in
        if note:
            s["notes"] = [note]
        loc = localisation_comparison(comp)
        if loc is not None:
            s["localisation"] = loc
        inten = intensity_comparison(comp)
        if inten is not None:
            s["intensity"] = inten
        return add_holm(s)

    summary = None
    if len(paths) == 1 and (Path(paths[0]) / SWEEP_PLAN).is_file():
        if names:
            raise HivaError("--name names run folders; a sweep's groups are named after their "
                            "arms: drop --name")
        if resamples == 0:
            raise HivaError("--resamples 0 gives no intervals; pass e.g. --resamples 2000")
        comp, unfinished = sweep_comparison(paths[0], reference, resamples, seed, resample,
                                            only)
        listed, _ = read_sweep(paths[0])
        selected = select_groups(listed, only) if only else None
        plan_primary = read_plan(paths[0]).get("primary")
        primary = primary or None  # an empty --primary list: the plan's
        given = primary is not None
        what = "--primary" if given else f"{Path(paths[0]) / SWEEP_PLAN}: primary"
        summary = full_summary(comp, primary if given else plan_primary, what,
                               "--primary" if given else SWEEP_PLAN, listed, selected,
                               root=str(paths[0]), unfinished=unfinished,
                               **({"only": list(only)} if only else {}))
        text, md = fmt.to_text(summary), fmt.to_markdown(summary)
    else:
        if only:
            raise HivaError("--only selects a sweep's groups; with run folders, list the ones "
                            "to compare")
        text, _ = report(paths, names)
        md = to_markdown(text)
        inten = intensity_points(paths, names)
        if inten:
            text += "\n\n" + inten
            md += "\n\n```\n" + inten + "\n```"
        explicit = bool(reference or json_path or plot or primary)
        if resamples == 0 and explicit:
            raise HivaError("--reference, --primary, --json and --plot need intervals: drop "
                            "--resamples 0")
        if resamples:
            try:
                comp = runs_comparison(paths, names, reference, resamples, seed, resample)
            except HivaError as e:
                if explicit:
                    raise
                text += f"\nno intervals: {e}"
            else:
                summary = full_summary(comp, primary, "--primary", "--primary",
                                       list(comp.groups), runs=[str(p) for p in paths])
                text += "\n\n" + fmt.to_text(summary)
                md += "\n\n" + fmt.to_markdown(summary)
    js = json.dumps(summary, indent=2, ensure_ascii=False)
    for path, write in ((markdown, lambda p: p.write_text(md + "\n")),
                        (json_path, lambda p: p.write_text(js + "\n")),
                        (plot, lambda p: fmt.forest_plot(summary, p))):
        if path is not None:
            write(Path(path))
    return text
