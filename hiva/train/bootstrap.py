"""Subject-level bootstrap of test F1, paired between runs (what ``hiva report`` prints).

Per run and fold, the per-frame test predictions (``fold{k}/test_predictions.parquet``) reduce to
TP/FP/FN counts per test subject and AU at threshold 0.5 (p ≥ 0.5 = present; unknown labels
skipped): an array subjects × AUs × 3 (``FoldCounts``). A resample draws each fold's test
subjects with replacement; its pooled counts are the subject weights (how often each subject was
drawn) times those counts, and F1 follows as in ``hiva.train.metrics``: per AU pooled over the
fold, NaN (left out of the mean) where the resample holds no positive label. The draw depends on
(seed, fold) only, so every run, arm and seed sees the same subjects: differences are paired.

A run's statistic is the mean over its folds of the mean over AUs (the ``mean_f1`` of its
metrics.json); a group's is the mean over its runs (seeds). Counts are integers held in float64,
so pooled counts are exact whatever order BLAS sums in, and means are summed term by term: runs
with the same predictions give bit-identical statistics, and their difference is exactly 0.

numpy and pandas only (no torch).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hiva.errors import HivaError

THRESHOLD = 0.5
PREDICTIONS = "test_predictions.parquet"
EVALUATED = "evaluate_best_predictions.parquet"  # what `hiva evaluate --fold K` writes


@dataclass(frozen=True)
class FoldCounts:
    """One fold's test counts: ``counts[s, a] = (TP, FP, FN)`` (int64) of subject
    ``subjects[s]`` (sorted) and AU ``aus[a]`` at threshold 0.5."""

    subjects: tuple[str, ...]
    aus: tuple[int, ...]
    counts: np.ndarray


@dataclass
class Run:
    """A finished run folder's test counts per fold number."""

    name: str
    path: Path
    folds: dict[int, FoldCounts]


def fold_counts(df, source: str = "the predictions") -> FoldCounts:
    """``FoldCounts`` of a predictions table (columns subject, ``p_AUxx``, ``y_AUxx``; y null =
    label unknown), the format ``hiva.train.logs.save_predictions`` writes."""
    import pandas as pd

    aus = sorted(int(c[4:]) for c in df.columns if c.startswith("p_AU"))
    need = ["subject"] + [f"y_AU{a:02d}" for a in aus]
    missing = [c for c in need if c not in df.columns]
    if not aus or missing:
        raise HivaError(f"{source} is not a hiva predictions table (missing "
                        f"{', '.join(missing) or 'p_AU columns'}); rerun `hiva evaluate` to "
                        "rewrite it")
    if not len(df):
        raise HivaError(f"{source} holds no scored test frame; check the run's data and rerun "
                        "`hiva evaluate`")
    codes, subjects = pd.factorize(df["subject"].astype(str), sort=True)
    p = df[[f"p_AU{a:02d}" for a in aus]].to_numpy(np.float64)
    y = df[need[1:]].to_numpy(np.float64, na_value=np.nan)
    pred, pos, neg = p >= THRESHOLD, y == 1, y == 0  # NaN (unknown) is neither 1 nor 0
    frames = np.stack([pred & pos, pred & neg, ~pred & pos], axis=2).reshape(len(df), -1)
    n = len(subjects)
    counts = np.stack([np.bincount(codes, weights=frames[:, j], minlength=n)
                       for j in range(frames.shape[1])], axis=1)
    return FoldCounts(tuple(subjects), tuple(aus),
                      np.rint(counts).astype(np.int64).reshape(n, len(aus), 3))


def read_fold(path: str | Path) -> FoldCounts:
    """``FoldCounts`` of one predictions Parquet file (only the columns needed are read)."""
    import pandas as pd
    import pyarrow.parquet as pq

    try:
        names = pq.read_schema(path).names
        cols = [c for c in names if c == "subject" or c[:4] in ("p_AU", "y_AU")]
        df = pd.read_parquet(path, columns=cols)
    except (OSError, ValueError) as e:
        raise HivaError(f"{path} cannot be read as Parquet ({e}); rerun `hiva evaluate` to "
                        "rewrite it") from None
    return fold_counts(df, str(path))


def load_run(path: str | Path, name: str | None = None) -> Run:
    """The test counts of every fold a finished run folder (one with ``metrics.json``) lists.
    A fold without ``test_predictions.parquet`` falls back to the ``hiva evaluate`` file."""
    path = Path(path)
    name = name or path.name
    mfile = path / "metrics.json"
    if not mfile.is_file():
        raise HivaError(f"{path} has no metrics.json (run {name} is unfinished); finish "
                        f"`hiva train --out {path}` first")
    try:
        folds_meta = json.loads(mfile.read_text())["folds"]
        ks = sorted(int(k) for k in folds_meta)
    except (ValueError, KeyError, TypeError):
        raise HivaError(f"{mfile} is not a hiva train summary (no folds); rerun `hiva train "
                        f"--out {path}`") from None
    if not ks:
        raise HivaError(f"{mfile} lists no fold; rerun `hiva train --out {path}`")
    folds = {}
    for k in ks:
        file = path / f"fold{k}" / PREDICTIONS
        if not file.is_file() and (file.parent / EVALUATED).is_file():
            file = file.parent / EVALUATED
        if not file.is_file():
            raise HivaError(f"{path / f'fold{k}' / PREDICTIONS} is missing: run {name} was trained "
                            "before hiva saved per-frame test predictions; run `hiva evaluate "
                            f"--checkpoint {path} --fold {k}` (hiva report reads the {EVALUATED} "
                            "it writes)")
        fc = read_fold(file)
        listed = (folds_meta[str(k)].get("subject_ids") or {}).get("test") \
            if isinstance(folds_meta.get(str(k)), dict) else None
        extra = sorted(set(fc.subjects) - set(map(str, listed))) if listed else []
        if extra:
            raise HivaError(f"{file} holds subjects {', '.join(extra[:5])} that are not fold "
                            f"{k}'s test subjects in {mfile} (predictions on other data?); rerun "
                            f"`hiva evaluate --checkpoint {path} --fold {k}` on the run's data")
        folds[k] = fc
    return Run(name, path, folds)


def check_paired(runs: list[Run]) -> None:
    """Paired resampling needs every run to test the same folds on the same subjects."""
    first = runs[0]
    for r in runs[1:]:
        if set(r.folds) != set(first.folds):
            raise HivaError(
                f"run {r.name} tested folds {_ks(r)} but {first.name} tested {_ks(first)}: "
                "paired intervals need the same folds in every run; train the missing folds "
                "(hiva train --resume latest --folds ...) or leave the run out")
        for k, fc in first.folds.items():
            a, b = set(fc.subjects), set(r.folds[k].subjects)
            if a != b:
                diff = [f"{s} only in {first.name}" for s in sorted(a - b)[:3]]
                diff += [f"{s} only in {r.name}" for s in sorted(b - a)[:3]]
                raise HivaError(
                    f"fold {k}'s test subjects differ between runs {first.name} and {r.name} "
                    f"({'; '.join(diff)}): paired intervals need runs on the same folds; train "
                    "them with the same --data, --num-folds, --fold-scheme and fold seed")


def _ks(r: Run) -> str:
    return ",".join(map(str, sorted(r.folds)))


def nanmean_terms(terms: list[np.ndarray]) -> np.ndarray:
    """Elementwise mean of ``terms``, NaNs left out (NaN where every term is NaN). Summed term
    by term in order, so equal inputs give bit-equal outputs whatever their memory layout."""
    total = np.zeros(np.shape(terms[0]))
    n = np.zeros_like(total)
    for t in terms:
        ok = ~np.isnan(t)
        total += np.where(ok, t, 0.0)
        n += ok
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, total / n, np.nan)


def pooled_f1(pooled: np.ndarray) -> np.ndarray:
    """F1 = 2TP / (2TP + FP + FN) of counts ``[..., AUs, 3]``; NaN where an AU has no positive
    label (TP + FN = 0), as ``hiva.train.metrics.au_metrics`` leaves it undefined."""
    from hiva.train.metrics import f1_from_counts

    tp, fp, fn = pooled[..., 0], pooled[..., 1], pooled[..., 2]
    return np.where(tp + fn > 0, f1_from_counts(tp, fp, fn), np.nan)


def subject_draws(n_subjects: int, resamples: int, seed: int, fold: int) -> np.ndarray:
    """Resamples × subjects indices drawn with replacement; a function of (seed, fold) only."""
    rng = np.random.default_rng([seed, fold])
    return rng.integers(0, n_subjects, size=(resamples, n_subjects))


def draw_weights(draws: np.ndarray, n_subjects: int) -> np.ndarray:
    """How often each subject appears in each resample: resamples × subjects (float64)."""
    b = len(draws)
    flat = (draws + n_subjects * np.arange(b)[:, None]).ravel()
    return np.bincount(flat, minlength=b * n_subjects).reshape(b, n_subjects).astype(np.float64)


@dataclass
class Stat:
    """A statistic per resample: ``mean`` (mean F1, shape [B]) and ``au`` (AU → F1, [B])."""

    mean: np.ndarray
    au: dict[int, np.ndarray]


def run_stats(runs: list[Run], weights: dict[int, np.ndarray]) -> list[Stat]:
    """Each run's statistic under the subject weights of each fold (B × subjects; a row of
    ones is the observed data). One matrix product per fold covers every run."""
    fold_mean: list[list[np.ndarray]] = [[] for _ in runs]
    fold_au: list[dict[int, list[np.ndarray]]] = [{} for _ in runs]
    for k, w in weights.items():
        members = [(i, r.folds[k]) for i, r in enumerate(runs) if k in r.folds]
        if not members:
            continue
        c = np.concatenate([fc.counts.reshape(len(fc.subjects), -1) for _, fc in members], 1)
        pooled = w @ c.astype(np.float64)  # integers < 2^53: exact in any summation order
        off = 0
        for i, fc in members:
            n = len(fc.aus)
            f1 = pooled_f1(pooled[:, off:off + 3 * n].reshape(len(w), n, 3))
            off += 3 * n
            fold_mean[i].append(nanmean_terms([f1[:, j] for j in range(n)]))
            for j, a in enumerate(fc.aus):
                fold_au[i].setdefault(a, []).append(f1[:, j])
    return [Stat(nanmean_terms(m), {a: nanmean_terms(v) for a, v in sorted(fa.items())})
            for m, fa in zip(fold_mean, fold_au)]


def group_stat(members: list[Stat]) -> Stat:
    """The mean over a group's runs (seeds), per resample."""
    aus = sorted({a for m in members for a in m.au})
    return Stat(nanmean_terms([m.mean for m in members]),
                {a: nanmean_terms([m.au[a] for m in members if a in m.au]) for a in aus})


def percentile_ci(x: np.ndarray, level: float = 0.95) -> list[float]:
    x = np.asarray(x, dtype=np.float64)
    x = x[~np.isnan(x)]
    if not len(x):
        return [float("nan")] * 2
    lo, hi = np.percentile(x, [50 * (1 - level), 50 * (1 + level)])
    return [float(lo), float(hi)]


def bootstrap_p(diff: np.ndarray) -> float:
    """Two-sided bootstrap p-value of a difference: 2·min(share ≤ 0, share ≥ 0), at most 1."""
    d = np.asarray(diff, dtype=np.float64)
    d = d[~np.isnan(d)]
    if not len(d):
        return float("nan")
    return float(min(1.0, 2 * min(np.mean(d <= 0), np.mean(d >= 0))))


@dataclass
class Comparison:
    """Groups of runs under a paired subject bootstrap: ``observed``/``boot`` group statistics
    (point estimate, one value; resamples, B values), the per-run point estimates, and the
    subject ``draws`` per fold (B × subjects indices into ``subjects[k]``)."""

    groups: dict[str, list[Run]]
    reference: str
    resamples: int
    seed: int
    draws: dict[int, np.ndarray]
    subjects: dict[int, tuple[str, ...]]
    observed: dict[str, Stat]
    boot: dict[str, Stat]
    run_point: dict[str, float]

    def summary(self) -> dict:
        """JSON-ready results (F1 as fractions; NaN as None): per group the mean F1 and its 95%
        CI, per-AU F1 with CIs and, against the reference, the observed difference, the mean
        of the paired resampled differences, their 95% CI and the bootstrap p-value."""
        ref = self.boot[self.reference].mean
        out = []
        for name, runs in self.groups.items():
            obs, bt = self.observed[name], self.boot[name]
            nf = {len(r.folds) for r in runs}
            g = {"name": name, "runs": [r.name for r in runs],
                 "runs_label": f"{len(runs)}×{nf.pop()}" if len(nf) == 1 else f"{len(runs)} runs",
                 "folds": sorted({k for r in runs for k in r.folds}),
                 "run_mean_f1": {r.name: self.run_point[r.name] for r in runs},
                 "mean_f1": float(obs.mean[0]), "mean_f1_ci": percentile_ci(bt.mean),
                 "aus": list(obs.au), "f1": [float(obs.au[a][0]) for a in obs.au],
                 "f1_ci": [percentile_ci(bt.au[a]) for a in obs.au]}
            if name != self.reference:
                d = bt.mean - ref
                g.update(delta=float(obs.mean[0] - self.observed[self.reference].mean[0]),
                         delta_resample_mean=float(np.nanmean(d)) if (~np.isnan(d)).any()
                         else float("nan"),
                         delta_ci=percentile_ci(d), p=bootstrap_p(d))
            out.append(g)
        return _clean({"threshold": THRESHOLD, "resamples": self.resamples, "seed": self.seed,
                       "reference": self.reference, "ci_level": 0.95,
                       "subjects_per_fold": {str(k): len(s) for k, s in self.subjects.items()},
                       "groups": out})


def compare(groups: dict[str, list[Run]], reference: str, resamples: int = 2000,
            seed: int = 0) -> Comparison:
    """The paired subject bootstrap of ``groups`` (name → runs) against ``reference``."""
    if reference not in groups:
        raise HivaError(f"unknown --reference {reference}; pick one of: {', '.join(groups)}")
    if resamples < 1:
        raise HivaError(f"--resamples {resamples}: pass at least 1 (e.g. 2000)")
    runs = [r for rs in groups.values() for r in rs]
    if not runs or not all(groups.values()):
        raise HivaError("every group needs at least one finished run; finish one first")
    names = [r.name for r in runs]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise HivaError(f"run name {dup[0]} is used twice; give each run its own name")
    check_paired(runs)
    subjects = {k: fc.subjects for k, fc in sorted(runs[0].folds.items())}
    draws = {k: subject_draws(len(s), resamples, seed, k) for k, s in subjects.items()}
    point = run_stats(runs, {k: np.ones((1, len(s))) for k, s in subjects.items()})
    boot = run_stats(runs, {k: draw_weights(d, len(subjects[k])) for k, d in draws.items()})
    idx = {r.name: i for i, r in enumerate(runs)}

    def by_group(stats):
        return {g: group_stat([stats[idx[r.name]] for r in rs]) for g, rs in groups.items()}

    return Comparison(groups, reference, resamples, seed, draws, subjects, by_group(point),
                      by_group(boot), {r.name: float(point[idx[r.name]].mean[0]) for r in runs})


def _clean(x):
    """NaN → None, recursively, for JSON."""
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_clean(v) for v in x]
    if isinstance(x, float) and x != x:
        return None
    return x


# --------------------------------------------------------------------------- localisation
LOC_KEYS = ("energy", "pointing", "energy_chance", "pointing_chance")


@dataclass(frozen=True)
class FoldLocalisation:
    """One fold's map scores summed per test subject and AU over the frames where the AU is
    labelled present and has a region: ``sums[s, a] = (frames, Σ energy, Σ pointing, Σ energy
    chance, Σ pointing chance)``."""

    subjects: tuple[str, ...]
    aus: tuple[int, ...]
    sums: np.ndarray


def read_fold_localisation(path: str | Path) -> FoldLocalisation | None:
    """``FoldLocalisation`` of a predictions file, or None when it holds no map scores."""
    import pandas as pd
    import pyarrow.parquet as pq

    names = pq.read_schema(path).names
    aus = sorted(int(c[len("energy_AU"):]) for c in names if c.startswith("energy_AU"))
    if not aus:
        return None
    cols = ["subject"] + [f"{k}_AU{a:02d}" for a in aus for k in ("y",) + LOC_KEYS]
    df = pd.read_parquet(path, columns=cols)
    codes, subjects = pd.factorize(df["subject"].astype(str), sort=True)
    n = len(subjects)
    sums = np.zeros((n, len(aus), 1 + len(LOC_KEYS)))
    for j, a in enumerate(aus):
        y = df[f"y_AU{a:02d}"].to_numpy(np.float64, na_value=np.nan)
        vals = [df[f"{k}_AU{a:02d}"].to_numpy(np.float64) for k in LOC_KEYS]
        sel = (y == 1) & np.isfinite(vals[0])
        sums[:, j, 0] = np.bincount(codes, weights=sel.astype(np.float64), minlength=n)
        for t, v in enumerate(vals):
            sums[:, j, 1 + t] = np.bincount(codes, weights=np.where(sel, v, 0.0), minlength=n)
    return FoldLocalisation(tuple(subjects), tuple(aus), sums)


def load_localisation(run: Run) -> dict[int, FoldLocalisation] | None:
    """Map scores of every fold of a run: from its test predictions, or else from the file
    ``hiva evaluate`` wrote (a run trained before hiva scored maps); None when a fold has none."""
    out = {}
    for k in run.folds:
        got = None
        for name in (PREDICTIONS, EVALUATED):
            f = run.path / f"fold{k}" / name
            if f.is_file() and (got := read_fold_localisation(f)) is not None:
                break
        if got is None:
            return None
        out[k] = got
    return out


def localisation_comparison(comp: Comparison) -> dict | None:
    """Energy in the region and pointing game of each group of ``comp`` (the mean over its runs
    of each AU's frame-pooled mean, and of their mean over AUs), with 95% CIs from the same
    subject resamples as its F1 and the paired difference against the reference; None when no
    group has map scores. Groups some of whose runs lack scores are named in ``missing``."""
    per_run: dict[str, dict[int, FoldLocalisation]] = {}
    missing = []
    for g, runs in comp.groups.items():
        locs = [load_localisation(r) for r in runs]
        if any(x is None for x in locs):
            missing.append(g)
            continue
        for r, x in zip(runs, locs):
            per_run[r.name] = x
    if not per_run:
        return None
    weights = {k: draw_weights(d, len(comp.subjects[k])) for k, d in comp.draws.items()}
    ones = {k: np.ones((1, len(s))) for k, s in comp.subjects.items()}

    def stats(name, w):
        """{key: (AU → [B] mean over folds of the frame-pooled means), mean over AUs [B]}."""
        folds = per_run[name]
        res = {}
        for t, key in enumerate(LOC_KEYS):
            au_terms: dict[int, list[np.ndarray]] = {}
            for k, fl in folds.items():
                order = [comp.subjects[k].index(s) for s in fl.subjects]
                wk = w[k][:, order]
                pooled = np.einsum("bs,sac->bac", wk, fl.sums)
                with np.errstate(invalid="ignore", divide="ignore"):
                    m = np.where(pooled[..., 0] > 0, pooled[..., 1 + t] / pooled[..., 0], np.nan)
                for j, a in enumerate(fl.aus):
                    au_terms.setdefault(a, []).append(m[:, j])
            au = {a: nanmean_terms(v) for a, v in sorted(au_terms.items())}
            res[key] = (au, nanmean_terms(list(au.values())))
        return res

    groups = [g for g in comp.groups if g not in missing]
    obs, boot = {}, {}
    for g in groups:
        runs = [r.name for r in comp.groups[g]]
        o = [stats(n, ones) for n in runs]
        b = [stats(n, weights) for n in runs]
        obs[g] = {key: ({a: nanmean_terms([x[key][0][a] for x in o]) for a in o[0][key][0]},
                        nanmean_terms([x[key][1] for x in o])) for key in LOC_KEYS}
        boot[g] = {key: ({a: nanmean_terms([x[key][0][a] for x in b]) for a in b[0][key][0]},
                         nanmean_terms([x[key][1] for x in b])) for key in LOC_KEYS}
    ref = comp.reference if comp.reference in obs else None
    out = []
    for g in groups:
        row = {"name": g, "aus": list(obs[g]["energy"][0])}
        for key in LOC_KEYS:
            au_o, mean_o = obs[g][key]
            au_b, mean_b = boot[g][key]
            row[key] = [float(au_o[a][0]) for a in au_o]
            row[f"mean_{key}"] = float(mean_o[0])
            if not key.endswith("chance"):
                row[f"{key}_ci"] = [percentile_ci(au_b[a]) for a in au_b]
                row[f"mean_{key}_ci"] = percentile_ci(mean_b)
                if ref is not None and g != ref:
                    d = mean_b - boot[ref][key][1]
                    row[f"delta_{key}"] = float(mean_o[0] - obs[ref][key][1][0])
                    row[f"delta_{key}_ci"] = percentile_ci(d)
                    row[f"delta_{key}_p"] = bootstrap_p(d)
        out.append(row)
    return _clean({"reference": ref, "groups": out, "missing": missing,
                   "frames": "test frames with the AU labelled present and a region"})
