"""The bootstrap behind ``hiva report``: test F1 and ROC AUC per group of runs, with intervals
that cover which test subjects were drawn and (by default) which seeds trained.

Runs are read by hiva.train.boot_runs (per fold: TP/FP/FN counts and AUC pair counts per test
subject and AU). A resample

- draws each fold's test subjects with replacement: a function of (seed, fold) only, so every
  run, arm and seed sees the same subjects and differences are paired; the run's pooled counts
  are the subject weights (how often each subject was drawn) times its counts, and F1 follows as
  in ``hiva.train.metrics`` (per AU pooled over the fold, NaN where the resample holds no positive
  label), AUC as in hiva.train.boot_auc (NaN without a positive or a negative frame);
- under the hierarchical bootstrap (the default), also draws each group's runs (seeds) with
  replacement, and the group's statistic is the mean over the drawn runs of each one's statistic
  under that subject draw. Groups whose runs have the same seeds share the seed draw (an arm and
  its control share data splits and label subsets at a seed: paired); other groups draw
  independently. Under ``resample="subjects"`` a group's statistic is the mean over all its runs:
  the trained models are held fixed and seed noise is invisible.

A run's statistic is the mean over its folds of the mean over AUs (the ``mean_f1`` / ``mean_auc``
of its metrics.json). Counts are integers held in float64, so pooled counts are exact whatever
order BLAS sums in, and means are summed term by term: runs with the same predictions give
bit-identical statistics, and (paired by seed) their difference is exactly 0.

Map scores (energy in the AU regions, pointing game) are in hiva.train.boot_localisation; the
helpers (means, intervals, p, Holm) in hiva.train.boot_stats. numpy and pandas only (no torch).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hiva.errors import HivaError
from hiva.train.boot_auc import weighted_auc
from hiva.train.boot_runs import (
    THRESHOLD,
    FoldCounts,
    Run,
    check_paired,
    fold_counts,
    load_run,
    read_fold,
)
from hiva.train.boot_stats import CI_LEVEL, bootstrap_p, clean, holm, nanmean_terms, percentile_ci
from hiva.train.metrics import f1_from_counts

__all__ = ["THRESHOLD", "FoldCounts", "Run", "check_paired",
           "fold_counts", "load_run", "read_fold", "nanmean_terms", "percentile_ci",
           "bootstrap_p", "holm", "Stat", "Comparison", "compare", "add_holm", "run_stats",
           "group_stat", "subject_draws", "draw_weights", "seed_draws", "pooled_f1"]

RESAMPLE_MODES = ("hierarchical", "subjects")
EXPLORATORY_BELOW = 8  # a group with fewer runs (seeds) is exploratory, not a claim
_SEED_STREAM = 0x5EED  # keeps the seed draws' random streams apart from the subject draws'


def pooled_f1(pooled: np.ndarray) -> np.ndarray:
    """F1 = 2TP / (2TP + FP + FN) of counts ``[..., AUs, 3]``; NaN where an AU has no positive
    label (TP + FN = 0), as ``hiva.train.metrics.au_metrics`` leaves it undefined."""
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


def seed_draws(groups: dict[str, list[Run]], resamples: int, seed: int) -> dict[str, np.ndarray]:
    """Per group, resamples × runs indices into its runs, drawn with replacement. A group whose
    runs have known, distinct seeds draws positions in its sorted seed list from a stream that
    depends on (seed, that seed list) only: groups with the same seeds draw the same seeds.
    Others (a seed unknown or repeated) draw from a stream of their own."""
    out = {}
    for i, (g, runs) in enumerate(groups.items()):
        n = len(runs)
        seeds = [r.seed for r in runs]
        if all(s is not None and s >= 0 for s in seeds) and len(set(seeds)) == n:
            rng = np.random.default_rng([seed, _SEED_STREAM, 0, n, *sorted(seeds)])
            out[g] = np.argsort(seeds, kind="stable")[rng.integers(0, n, size=(resamples, n))]
        else:
            rng = np.random.default_rng([seed, _SEED_STREAM, 1, i])
            out[g] = rng.integers(0, n, size=(resamples, n))
    return out


def resample_runs(values: list[np.ndarray], idx: np.ndarray) -> np.ndarray:
    """Per resample b, the mean (NaN left out) of ``values[idx[b, j]][b]`` over j: the group's
    statistic when its runs are drawn as ``idx`` (resamples × runs)."""
    v = np.stack(values)
    picked = v[idx, np.arange(len(idx))[:, None]]
    return nanmean_terms([picked[:, j] for j in range(idx.shape[1])])


@dataclass
class Stat:
    """A statistic per resample: ``mean`` (mean F1, shape [B]), ``au`` (AU → F1, [B]),
    ``auc_mean`` (mean ROC AUC, [B]; None when the folds carry no AUC) and ``auc`` (AU → AUC)."""

    mean: np.ndarray
    au: dict[int, np.ndarray]
    auc_mean: np.ndarray | None = None
    auc: dict[int, np.ndarray] = field(default_factory=dict)


def run_stats(runs: list[Run], weights: dict[int, np.ndarray]) -> list[Stat]:
    """Each run's statistic under the subject weights of each fold (B × subjects; a row of
    ones is the observed data). One matrix product per fold covers every run's F1."""
    n_runs = len(runs)
    f1_mean: list[list[np.ndarray]] = [[] for _ in range(n_runs)]
    f1_au: list[dict[int, list[np.ndarray]]] = [{} for _ in range(n_runs)]
    auc_mean: list[list[np.ndarray]] = [[] for _ in range(n_runs)]
    auc_au: list[dict[int, list[np.ndarray]]] = [{} for _ in range(n_runs)]
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
            f1_mean[i].append(nanmean_terms([f1[:, j] for j in range(n)]))
            for j, a in enumerate(fc.aus):
                f1_au[i].setdefault(a, []).append(f1[:, j])
            if fc.auc is not None:
                auc = weighted_auc(fc.auc, w)
                auc_mean[i].append(nanmean_terms([auc[:, j] for j in range(n)]))
                for j, a in enumerate(fc.aus):
                    auc_au[i].setdefault(a, []).append(auc[:, j])
    return [Stat(nanmean_terms(f1_mean[i]),
                 {a: nanmean_terms(v) for a, v in sorted(f1_au[i].items())},
                 nanmean_terms(auc_mean[i]) if auc_mean[i] else None,
                 {a: nanmean_terms(v) for a, v in sorted(auc_au[i].items())})
            for i in range(n_runs)]


def group_stat(members: list[Stat], idx: np.ndarray | None = None) -> Stat:
    """A group's statistic per resample: the mean over its runs (seeds), or, given ``idx``
    (resamples × runs), over the runs drawn in each resample. A run without an AU counts NaN."""
    def combine(values):
        return nanmean_terms(values) if idx is None else resample_runs(values, idx)

    nan = np.full(len(members[0].mean), np.nan)

    def per_au(key):
        aus = sorted({a for m in members for a in getattr(m, key)})
        return {a: combine([getattr(m, key).get(a, nan) for m in members]) for a in aus}

    has_auc = any(m.auc_mean is not None for m in members)
    return Stat(combine([m.mean for m in members]), per_au("au"),
                combine([nan if m.auc_mean is None else m.auc_mean for m in members])
                if has_auc else None, per_au("auc"))


def _at(stat: Stat, metric: str) -> np.ndarray:
    if metric == "f1":
        return stat.mean
    return stat.auc_mean if stat.auc_mean is not None else np.full(len(stat.mean), np.nan)


@dataclass
class Comparison:
    """Groups of runs under a paired bootstrap: ``observed``/``boot`` group statistics (point
    estimate, one value; resamples, B values), the per-run point estimates, the subject
    ``draws`` per fold (B × subjects indices into ``subjects[k]``) and, under the hierarchical
    bootstrap, the ``run_draws`` per group (B × runs indices into ``groups[g]``)."""

    groups: dict[str, list[Run]]
    reference: str
    resamples: int
    seed: int
    draws: dict[int, np.ndarray]
    subjects: dict[int, tuple[str, ...]]
    observed: dict[str, Stat]
    boot: dict[str, Stat]
    run_point: dict[str, float]
    resample: str = "subjects"
    run_draws: dict[str, np.ndarray] | None = None
    run_point_auc: dict[str, float] = field(default_factory=dict)

    def resampled(self, group: str, values: list[np.ndarray]) -> np.ndarray:
        """The group's value per resample from its runs' ``values`` (each [B], the group's run
        order), under the same run draws as its F1."""
        if self.run_draws is None:
            return nanmean_terms(values)
        return resample_runs(values, self.run_draws[group])

    def exploratory(self, group: str) -> bool:
        return len(self.groups[group]) < EXPLORATORY_BELOW

    def delta(self, a: str, b: str, metric: str = "f1") -> dict:
        """The paired difference a − b of mean F1 (metric "f1") or mean AUC ("auc"): observed,
        the mean of the resampled differences, their 95% CI and the bootstrap p-value."""
        d = _at(self.boot[a], metric) - _at(self.boot[b], metric)
        obs = float(_at(self.observed[a], metric)[0] - _at(self.observed[b], metric)[0])
        mean = float(np.nanmean(d)) if (~np.isnan(d)).any() else float("nan")
        return {"delta": obs, "delta_resample_mean": mean, "delta_ci": percentile_ci(d),
                "p": bootstrap_p(d)}

    def contrast(self, a: str, b: str) -> dict:
        """The contrast a − b: Δ mean F1 and Δ mean AUC with intervals and p, runs per side."""
        for g in (a, b):
            if g not in self.groups:
                raise HivaError(f"the contrast {a} - {b} names {g}, which has no finished run; "
                                f"the groups are: {', '.join(self.groups)}")
        f1, auc = self.delta(a, b), self.delta(a, b, "auc")
        return {"name": f"{a} - {b}", "a": a, "b": b,
                "runs": [len(self.groups[a]), len(self.groups[b])],
                "exploratory": self.exploratory(a) or self.exploratory(b), **f1,
                "delta_auc": auc["delta"], "delta_auc_ci": auc["delta_ci"], "p_auc": auc["p"]}

    def summary(self, primary=None) -> dict:
        """JSON-ready results (F1 and AUC as fractions; NaN as None): per group mean F1 and mean
        AUC with 95% CIs, per-AU F1 and AUC with CIs, whether it is exploratory and, against
        the reference, the paired differences (CI, p, Holm-adjusted p); the ``primary``
        contrast (a, b) or contrasts [(a, b), …] when given (``primaries``, the first also as
        ``primary``), and the size of the Holm family."""
        out = []
        for name, runs in self.groups.items():
            obs, bt = self.observed[name], self.boot[name]
            nf = {len(r.folds) for r in runs}
            aus_auc = list(obs.auc)
            g = {"name": name, "runs": [r.name for r in runs], "seeds": [r.seed for r in runs],
                 "runs_label": f"{len(runs)}×{nf.pop()}" if len(nf) == 1 else f"{len(runs)} runs",
                 "exploratory": self.exploratory(name), "label_budget": runs[0].labels,
                 "folds": sorted({k for r in runs for k in r.folds}),
                 "run_mean_f1": {r.name: self.run_point[r.name] for r in runs},
                 "run_mean_auc": {r.name: self.run_point_auc.get(r.name, float("nan"))
                                  for r in runs},
                 "mean_f1": float(obs.mean[0]), "mean_f1_ci": percentile_ci(bt.mean),
                 "mean_auc": float(_at(obs, "auc")[0]),
                 "mean_auc_ci": percentile_ci(_at(bt, "auc")),
                 "aus": list(obs.au), "f1": [float(obs.au[a][0]) for a in obs.au],
                 "f1_ci": [percentile_ci(bt.au[a]) for a in obs.au],
                 "auc_aus": aus_auc, "auc": [float(obs.auc[a][0]) for a in aus_auc],
                 "auc_ci": [percentile_ci(bt.auc[a]) for a in aus_auc]}
            if name != self.reference:
                auc = self.delta(name, self.reference, "auc")
                g.update(self.delta(name, self.reference), delta_auc=auc["delta"],
                         delta_auc_ci=auc["delta_ci"], p_auc=auc["p"],
                         contrast_exploratory=self.exploratory(name)
                         or self.exploratory(self.reference))
            out.append(g)
        s = {"threshold": THRESHOLD, "resamples": self.resamples, "seed": self.seed,
             "resample": self.resample, "reference": self.reference, "ci_level": CI_LEVEL,
             "exploratory_below": EXPLORATORY_BELOW,
             "subjects_per_fold": {str(k): len(s) for k, s in self.subjects.items()},
             "groups": out}
        pairs = [primary] if isinstance(primary, tuple) else list(primary or [])
        if pairs:
            s["primaries"] = [self.contrast(*p) for p in pairs]
        return add_holm(clean(s))


def add_holm(s: dict) -> dict:
    """Holm-adjust, in place, every p-value of a summary's contrasts (each group vs the
    reference on mean F1 and mean AUC, the primary contrasts, the localisation deltas): each
    ``p…`` key gains a ``p…_holm`` twin and ``holm_family`` counts the contrasts with a p. A
    contrast printed twice (the primary one is also a group vs the reference) counts once. A p
    of 0 (no resample crossed 0) enters as its resolution 2/B, so its adjusted value is an upper
    bound rather than a spurious 0."""
    entries = []
    ref = s["reference"]
    for g in s["groups"]:
        if g["name"] != ref:
            pair = frozenset((g["name"], ref))
            entries += [((pair, "f1"), g, "p"), ((pair, "auc"), g, "p_auc")]
    for pr in s.get("primaries") or []:
        pair = frozenset((pr["a"], pr["b"]))
        entries += [((pair, "f1"), pr, "p"), ((pair, "auc"), pr, "p_auc")]
    loc = s.get("localisation") or {}
    for row in loc.get("groups", []) if loc.get("reference") else []:
        if row["name"] != loc["reference"]:
            pair = frozenset((row["name"], loc["reference"]))
            entries += [((pair, k), row, f"delta_{k}_p") for k in ("energy", "pointing")]
    family: dict = {}
    for key, d, pk in entries:
        p = d.get(pk)
        family.setdefault(key, 2 / s["resamples"] if p == 0 else p)
    adjusted = dict(zip(family, holm(list(family.values()))))
    for key, d, pk in entries:
        v = float(adjusted[key])
        d[f"{pk}_holm"] = None if v != v else v
    s["holm_family"] = int(sum(1 for v in adjusted.values() if v == v))
    if s.get("primaries"):
        s["primary"] = s["primaries"][0]
    return s


def compare(groups: dict[str, list[Run]], reference: str, resamples: int = 2000,
            seed: int = 0, resample: str = "hierarchical") -> Comparison:
    """The paired bootstrap of ``groups`` (name → runs) against ``reference``: ``resample``
    "hierarchical" (test subjects and seeds) or "subjects" (test subjects only)."""
    if reference not in groups:
        raise HivaError(f"unknown --reference {reference}; pick one of: {', '.join(groups)}")
    if resamples < 1:
        raise HivaError(f"--resamples {resamples}: pass at least 1 (e.g. 2000)")
    if resample not in RESAMPLE_MODES:
        raise HivaError(f"--resample {resample}: pass hierarchical (test subjects and seeds) or "
                        "subjects (test subjects only)")
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
    run_draws = seed_draws(groups, resamples, seed) if resample == "hierarchical" else None
    idx = {r.name: i for i, r in enumerate(runs)}

    def by_group(stats, draw):
        return {g: group_stat([stats[idx[r.name]] for r in rs], None if draw is None
                              else draw[g]) for g, rs in groups.items()}

    return Comparison(groups, reference, resamples, seed, draws, subjects,
                      by_group(point, None), by_group(boot, run_draws),
                      {r.name: float(point[idx[r.name]].mean[0]) for r in runs}, resample,
                      run_draws, {r.name: float(_at(point[idx[r.name]], "auc")[0])
                                  for r in runs})
