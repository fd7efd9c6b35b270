"""`hiva report` intervals: subject-level bootstrap counts, paired differences between arms of a
sweep, refusals, and the CLI's Markdown/JSON/PNG, on hand-made prediction tables written in the
real format (fold{k}/test_predictions.parquet), plus one real tiny `hiva train` run."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from hiva.errors import HivaError
from hiva.train.boot_localisation import localisation_comparison
from hiva.train.bootstrap import compare, fold_counts, load_run, run_stats
from hiva.train.metrics import au_metrics, mean_over_folds
from hiva.train.report import read_sweep, run_report, sweep_comparison

AUS = (1, 2)
NA = None


def table(frames: dict[str, list[tuple]], aus=AUS) -> pd.DataFrame:
    """Predictions in save_predictions' format from {subject: [(p1, y1, p2, y2, ...)]}."""
    rows = [(s, *f) for s, fs in frames.items() for f in fs]
    df = pd.DataFrame({"path": [f"{r[0]}/{i}.png" for i, r in enumerate(rows)],
                       "subject": [r[0] for r in rows], "sequence": "T1",
                       "frame": np.arange(len(rows))})
    for j, a in enumerate(aus):
        df[f"p_AU{a:02d}"] = np.array([r[1 + 2 * j] for r in rows], dtype=np.float32)
        df[f"y_AU{a:02d}"] = pd.array([r[2 + 2 * j] for r in rows], dtype="Int8")
    return df


def metrics_of(df: pd.DataFrame, aus=AUS) -> dict:
    y = df[[f"y_AU{a:02d}" for a in aus]]
    return au_metrics(df[[f"p_AU{a:02d}" for a in aus]].to_numpy(np.float64),
                      y.fillna(0).to_numpy(np.int64), y.notna().to_numpy(), aus)


def write_run(path, folds: dict[int, pd.DataFrame], finished: bool = True):
    """A run folder as hiva train writes it: config.yaml, fold{k}/test_predictions.parquet and
    fold/run metrics.json (the run's only once finished)."""
    path.mkdir(parents=True)
    (path / "config.yaml").write_text("seed: 0\n")
    res = {}
    for k, df in folds.items():
        (path / f"fold{k}").mkdir()
        df.to_parquet(path / f"fold{k}" / "test_predictions.parquet", index=False)
        res[str(k)] = {"fold": k, "test": metrics_of(df),
                       "subject_ids": {"test": sorted(set(df["subject"]))}}
        (path / f"fold{k}" / "metrics.json").write_text(json.dumps(res[str(k)]))
    if finished:
        summary = {"aus": list(AUS), "folds": res,
                   "mean": mean_over_folds([r["test"] for r in res.values()])}
        (path / "metrics.json").write_text(json.dumps(summary))
    return path


def noisy(seed: int, subjects=8, frames=10, flip=0.25, folds=(1, 2)) -> dict[int, pd.DataFrame]:
    """Random labels and predictions that agree with them except a share ``flip`` of frames;
    some labels unknown. Fold k tests subjects F{k}00..."""
    rng = np.random.default_rng(seed)
    out = {}
    for k in folds:
        fr = {}
        for s in range(subjects):
            rows = []
            for _ in range(frames):
                row = []
                for _a in AUS:
                    y = int(rng.random() < 0.4)
                    p = float(rng.uniform(0.5, 1.0) if y else rng.uniform(0.0, 0.5))
                    if rng.random() < flip:
                        p = 1.0 - p
                    row += [p, NA if rng.random() < 0.1 else y]
                rows.append(tuple(row))
            fr[f"F{k}{s:02d}"] = rows
        out[k] = table(fr)
    return out


def make_sweep(root, arms: list[tuple[str, float, list[dict]]], unfinished=()):
    """ROOT/sweep.json + run folders: arms = [(arm, label_fraction, [folds per seed])];
    ``unfinished`` run ids get no metrics.json."""
    runs = []
    for arm, lf, seeds in arms:
        for seed, folds in enumerate(seeds):
            tag = arm if lf == 1.0 else f"{arm}_lf{lf}"
            rid = f"{tag}/seed{seed}"
            write_run(root / rid, folds, finished=rid not in unfinished)
            runs.append({"id": rid, "arm": arm, "seed": seed, "label_fraction": lf, "dir": rid})
    (root / "sweep.json").write_text(json.dumps({"version": 1, "runs": runs}))
    return root


# s1: AU01 TP (0.9/1), FP (p = 0.5 counts as present), FN; AU02 TN, FP, unknown.
# s2: AU01 TP, TN; AU02 TP, FN.   s3: AU01 TN, unknown; AU02 FN (0.49 < 0.5), TN.
HAND = {"s1": [(0.9, 1, 0.2, 0), (0.5, 0, 0.7, 0), (0.1, 1, 0.6, NA)],
        "s2": [(0.7, 1, 0.8, 1), (0.3, 0, 0.4, 1)],
        "s3": [(0.2, 0, 0.49, 1), (0.6, NA, 0.1, 0)]}
HAND_COUNTS = [[[1, 1, 1], [0, 1, 0]], [[1, 0, 0], [1, 0, 1]], [[0, 0, 0], [0, 0, 1]]]


def test_counts_per_subject_match_a_hand_count():
    fc = fold_counts(table(HAND))
    assert fc.subjects == ("s1", "s2", "s3") and fc.aus == AUS
    assert fc.counts.tolist() == HAND_COUNTS


def test_bootstrap_matches_a_direct_computation(tmp_path):
    run = load_run(write_run(tmp_path / "r", {1: table(HAND)}), "r")
    # By hand: observed AU01 TP2 FP1 FN1 → 2/3, AU02 TP1 FP1 FN2 → 2/5; s1 thrice: AU02 has no
    # positive (left out), AU01 TP3 FP3 FN3 → 1/2; s3 thrice: AU01 undefined, AU02 F1 0.
    w = {1: np.array([[1.0, 1, 1], [3, 0, 0], [0, 0, 3]])}
    (st,) = run_stats([run], w)
    assert st.mean.tolist() == pytest.approx([(2 / 3 + 2 / 5) / 2, 0.5, 0.0])
    assert st.au[2][1] != st.au[2][1] and st.au[1][2] != st.au[1][2]  # NaN: undefined
    # Every random resample equals au_metrics on the drawn subjects' frames, stacked.
    df = table(HAND)
    comp = compare({"r": [run]}, "r", resamples=60, seed=3)
    draws = comp.draws[1]
    assert draws.shape == (60, 3) and len({tuple(d) for d in draws}) > 10
    for b, d in enumerate(draws):
        subs = [comp.subjects[1][i] for i in d]
        m = metrics_of(pd.concat([df[df["subject"] == s] for s in subs]))
        assert comp.boot["r"].mean[b] == pytest.approx(m["mean_f1"], nan_ok=True)
        for j, a in enumerate(AUS):
            assert comp.boot["r"].au[a][b] == pytest.approx(m["f1"][j], nan_ok=True)
    s = comp.summary()["groups"][0]
    assert s["mean_f1"] == pytest.approx((2 / 3 + 2 / 5) / 2)
    assert s["mean_f1_ci"] == pytest.approx(np.percentile(comp.boot["r"].mean, [2.5, 97.5]))


def test_identical_arms_differ_by_exactly_zero(tmp_path):
    seeds = [noisy(0), noisy(1)]
    root = make_sweep(tmp_path, [("full", 1.0, seeds), ("copy", 1.0, seeds)])
    comp, unfinished = sweep_comparison(root, resamples=500, seed=1)
    assert unfinished == [] and comp.reference == "full"
    d = comp.boot["copy"].mean - comp.boot["full"].mean
    assert np.all(d == 0.0)
    g = comp.summary()["groups"][1]
    assert g["delta"] == 0.0 and g["delta_ci"] == [0.0, 0.0] and g["p"] == 1.0
    assert g["runs_label"] == "2×2"


def test_an_arm_better_on_every_subject_excludes_zero(tmp_path):
    # Labels alternate 1,0 per frame; the reference errs on frames 0 and 1 of every subject
    # (one FN, one FP per AU), the better arm only on frame 0.
    def arm(errors: int):
        out = {}
        for k in (1, 2):
            fr = {}
            for s in range(6):
                rows = []
                for i in range(8):
                    y = (i + s) % 2
                    p = 0.8 if y else 0.2
                    p = 1 - p if i < errors else p
                    rows.append((p, y, p, y))
                fr[f"S{k}{s}"] = rows
            out[k] = table(fr)
        return out

    root = make_sweep(tmp_path, [("base", 1.0, [arm(2)]), ("better", 1.0, [arm(1)])])
    comp, _ = sweep_comparison(root, resamples=400, seed=0)
    g = {x["name"]: x for x in comp.summary()["groups"]}["better"]
    assert g["delta"] > 0 and g["delta_ci"][0] > 0 and g["p"] < 0.05
    assert np.all(comp.boot["better"].mean > comp.boot["base"].mean)


def test_point_estimate_equals_metrics_json_of_a_real_run(tiny_manifest, tmp_path, cli,
                                                         tiny_cfg):
    cfg = tiny_cfg(tmp_path / "tiny.yaml", folds=[1, 2], max_steps_per_epoch=1)
    run = tmp_path / "run"
    cli("train", "--config", cfg, "--data", tiny_manifest, "--out", run)
    summary = json.loads((run / "metrics.json").read_text())
    comp = compare({"run": [load_run(run, "run")]}, "run", resamples=20)
    g = comp.summary()["groups"][0]
    assert g["mean_f1"] == pytest.approx(summary["mean"]["mean_f1"], abs=1e-12)
    assert g["aus"] == summary["mean"]["aus"]
    assert g["f1"] == pytest.approx(summary["mean"]["f1"], abs=1e-12, nan_ok=True)
    assert g["mean_auc"] == pytest.approx(summary["mean"]["mean_auc"], abs=1e-9)
    assert g["auc"] == pytest.approx(summary["mean"]["auc"], abs=1e-9, nan_ok=True)
    # The tiny set has landmarks: map scores are saved per frame, and the report's point
    # estimate is the mean over folds of each fold's metrics.json localisation.
    loc = localisation_comparison(comp)["groups"][0]
    folds = [summary["folds"][k]["localisation"] for k in ("1", "2")]
    for j, a in enumerate(loc["aus"]):
        per_fold = [f["energy"][f["aus"].index(a)] for f in folds]
        per_fold = [v for v in per_fold if v is not None]
        if per_fold:
            assert loc["energy"][j] == pytest.approx(np.mean(per_fold), abs=1e-4)


def _with_maps(folds: dict[int, pd.DataFrame], energy: float, seed: int):
    """Add map scores: energy around ``energy`` (pointing = energy > 0.3); AU02 has no region."""
    rng = np.random.default_rng(seed)
    for df in folds.values():
        n = len(df)
        e = np.clip(energy + rng.normal(0, 0.1, n), 0, 1)
        df["energy_AU01"] = e.astype(np.float32)
        df["pointing_AU01"] = (e > 0.3).astype(np.float32)
        df["energy_chance_AU01"] = np.float32(0.05)
        df["pointing_chance_AU01"] = np.float32(0.1)
        for k in ("energy", "pointing", "energy_chance", "pointing_chance"):
            df[f"{k}_AU02"] = np.float32("nan")
    return folds


def test_map_scores_pool_over_present_frames_with_paired_intervals(tmp_path):
    seeds = [_with_maps(noisy(0), 0.2, 0), _with_maps(noisy(1), 0.2, 1)]
    better = [_with_maps(noisy(0), 0.6, 2), _with_maps(noisy(1), 0.6, 3)]
    root = make_sweep(tmp_path, [("none", 1.0, seeds), ("bias", 1.0, better),
                                 ("old", 1.0, [noisy(0)])])
    comp, _ = sweep_comparison(root, resamples=300, seed=0)
    loc = localisation_comparison(comp)
    assert loc["missing"] == ["old"]  # a run without map scores is named, not mixed in
    g = {x["name"]: x for x in loc["groups"]}
    # By hand: per run and fold, the mean over frames with AU01 labelled present; then folds,
    # then seeds.
    want = np.mean([np.mean([df.loc[df["y_AU01"] == 1, "energy_AU01"].mean()
                             for df in run.values()]) for run in seeds])
    assert g["none"]["energy"][0] == pytest.approx(want, rel=1e-5)
    assert g["none"]["aus"] == [1, 2] and g["none"]["energy"][1] is None  # no region
    assert g["none"]["mean_energy"] == pytest.approx(want, rel=1e-5)
    assert g["none"]["mean_energy_chance"] == pytest.approx(0.05)
    assert g["bias"]["delta_energy"] == pytest.approx(g["bias"]["mean_energy"] - want, rel=1e-5)
    assert g["bias"]["delta_energy_ci"][0] > 0.3 and g["bias"]["delta_pointing_ci"][0] > 0
    text = run_report([root], reference="none", resamples=300)
    assert "Activation maps vs AU regions" in text and "Per-AU energy / pointing" in text
    assert "(no map scores: old)" in text


def test_unfinished_runs_are_named_and_left_out(tmp_path):
    root = make_sweep(tmp_path, [("full", 1.0, [noisy(0), noisy(1)]),
                                 ("nolang", 1.0, [noisy(2), noisy(3)])],
                      unfinished=("nolang/seed1",))
    groups, unfinished = read_sweep(root)
    assert unfinished == ["nolang/seed1"] and [r for r, _ in groups["nolang"]] == ["nolang/seed0"]
    text = run_report([root], resamples=50)
    assert "unfinished (no metrics.json), left out: nolang/seed1" in text
    assert "1×2" in text and "2×2" in text


def test_refusals_are_one_line(tmp_path):
    root = make_sweep(tmp_path / "a", [("full", 1.0, [noisy(0)]), ("lo", 0.1, [noisy(1)])])
    with pytest.raises(HivaError, match=r"unknown --reference nope; the groups are: full, lo@10%"):
        sweep_comparison(root, reference="nope", resamples=10)
    empty = make_sweep(tmp_path / "b", [("full", 1.0, [noisy(0)])], unfinished=("full/seed0",))
    with pytest.raises(HivaError, match="has no finished run"):
        sweep_comparison(empty, resamples=10)
    (root / "lo_lf0.1/seed0/fold2/test_predictions.parquet").unlink()
    with pytest.raises(HivaError, match=r"fold2/test_predictions.parquet is missing: run "
                       r"lo_lf0.1/seed0 was trained before .*hiva evaluate --checkpoint"):
        sweep_comparison(root, resamples=10)
    other = make_sweep(tmp_path / "c", [("full", 1.0, [noisy(0)]),
                                        ("moved", 1.0, [noisy(1, subjects=7)])])
    with pytest.raises(HivaError, match="fold 1's test subjects differ between runs "
                       "full/seed0 and moved/seed0 .F107 only in full/seed0."):
        sweep_comparison(other, resamples=10)


def test_cli_writes_markdown_json_and_png(tmp_path, cli):
    root = make_sweep(tmp_path / "sw", [("full", 1.0, [noisy(0), noisy(1)]),
                                        ("nolang", 1.0, [noisy(2, flip=0.35), noisy(3, flip=0.35)]),
                                        ("full", 0.1, [noisy(4, flip=0.3)])],
                      unfinished=("full/seed1",))
    md, js, png = tmp_path / "out/r.md", tmp_path / "out/r.json", tmp_path / "out/f.png"
    r = cli("report", root, "--resamples", "300", "--seed", "2", "--markdown", md, "--json", js,
            "--plot", png)
    assert "Δ vs full [95% CI]" in r.stdout and "full@10%" in r.stdout and "AU02" in r.stdout
    assert "left out: full/seed1" in r.stdout
    for stat in ("F1", "AUC"):
        head = f"| group | runs | mean {stat} [95% CI] | Δ vs full [95% CI] | p | p (Holm) |"
        assert f"\n{head} per run |\n" in md.read_text()
    assert "\n| AU | full* | nolang* | full@10%* |\n" in md.read_text()
    data = json.loads(js.read_text())
    assert data["reference"] == "full" and data["resamples"] == 300 and data["seed"] == 2
    assert data["resample"] == "hierarchical" and data["holm_family"] == 4
    assert [g["name"] for g in data["groups"]] == ["full", "nolang", "full@10%"]
    assert data["groups"][0]["runs"] == ["full/seed0"] and data["unfinished"] == ["full/seed1"]
    lo, hi = data["groups"][1]["delta_ci"]
    assert lo <= data["groups"][1]["delta"] <= hi and 0 <= data["groups"][1]["p"] <= 1
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = cli("report", root, "--reference", "nope", check=False)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().count("\n") == 0 and "unknown --reference nope" in bad.stderr


def test_run_folders_keep_the_point_table_and_gain_intervals(tmp_path):
    a = write_run(tmp_path / "a", noisy(0))
    b = write_run(tmp_path / "b", noisy(1, flip=0.4))
    md = tmp_path / "t.md"
    text = run_report([a, b], resamples=100, markdown=md)
    assert text.startswith("Test F1 ×100, mean over folds") and "all-pos" in text
    assert "Δ vs a [95% CI]" in text
    assert md.read_text().startswith("| AU | a | b | all-pos |")
    c = write_run(tmp_path / "c", noisy(2, subjects=5))
    assert "no intervals: fold 1's test subjects differ" in run_report([a, c], resamples=10)


def test_each_fold_draws_its_own_test_subjects(tmp_path):
    """Two folds with as many test subjects do not share one random stream: their resamples
    differ, and each resample's statistic is the mean over folds of the F1 of that fold's own
    drawn subjects."""
    folds = noisy(0, subjects=8, folds=(1, 2))
    run = load_run(write_run(tmp_path / "r", folds), "r")
    comp = compare({"r": [run]}, "r", resamples=40, seed=5)
    d1, d2 = comp.draws[1], comp.draws[2]
    assert d1.shape == d2.shape == (40, 8)
    same = int((d1 == d2).all(1).sum())  # resamples drawing the same subjects in both folds
    assert same == 0
    for b in range(40):
        per_fold = []
        for k, df in folds.items():
            subs = [comp.subjects[k][i] for i in comp.draws[k][b]]
            per_fold.append(metrics_of(pd.concat([df[df["subject"] == s] for s in subs])))
        assert comp.boot["r"].mean[b] == pytest.approx(
            np.nanmean([m["mean_f1"] for m in per_fold]))


def test_two_sided_p_equals_a_hand_count_over_the_resamples(tmp_path):
    """Every subject has one frame found (TP) and one negative frame; arm a wrongly calls the
    negative of s1 present (FP), the reference those of s0 and s2. With w_i how often subject i
    is drawn (5 draws, so TP = 5): F1_a = 10 / (10 + w1), F1_ref = 10 / (10 + w0 + w2), and
    the two-sided p = 2·min(share of Δ ≤ 0, share of Δ ≥ 0), at most 1."""
    def arm(fp):
        return {1: table({f"s{i}": [(0.9, 1, 0.9, 1), (0.9 if i in fp else 0.1, 0) * 2]
                          for i in range(5)})}

    a = load_run(write_run(tmp_path / "a", arm({1})), "a")
    ref = load_run(write_run(tmp_path / "ref", arm({0, 2})), "ref")
    comp = compare({"ref": [ref], "a": [a]}, "ref", resamples=300, seed=7, resample="subjects")
    assert comp.subjects[1] == ("s0", "s1", "s2", "s3", "s4")
    w = np.stack([(comp.draws[1] == i).sum(1) for i in range(5)], 1)
    d = 10 / (10 + w[:, 1]) - 10 / (10 + w[:, 0] + w[:, 2])
    np.testing.assert_allclose(comp.boot["a"].mean - comp.boot["ref"].mean, d, atol=1e-12)
    lo, hi = np.mean(d <= 0), np.mean(d >= 0)
    want = min(1.0, 2 * min(lo, hi))
    assert 0 < want < 1 and np.mean(d == 0) > 0  # neither bound nor capped; ties count twice
    g = {x["name"]: x for x in comp.summary()["groups"]}["a"]
    assert g["p"] == pytest.approx(want, abs=1e-12)
