"""`hiva report`'s hierarchical bootstrap (test subjects and seeds), exact weighted ROC AUC, Holm
p-values, the primary contrast (sweep YAML → sweep.json → report; --primary) and exploratory
marks, on hand-made prediction tables in the real format (see test_train_report)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import roc_auc_score

from hiva.errors import HivaError
from hiva.train.boot_auc import fold_auc, weighted_auc
from hiva.train.boot_localisation import localisation_comparison
from hiva.train.boot_runs import run_seed
from hiva.train.bootstrap import compare, fold_counts, holm, load_run
from hiva.train.launch import check_root, write_plan
from hiva.train.report import run_report, sweep_comparison
from hiva.train.sweep import load_sweep
from tests.train.test_train_report import (
    _with_maps,
    make_sweep,
    metrics_of,
    noisy,
    table,
    write_run,
)

FRAMES = 20


def offset_run(errors: int, subjects: int = 60) -> dict[int, pd.DataFrame]:
    """One fold of a run whose seed left it ``errors`` wrong frames in every test subject: frame
    i of subject s has a margin from a per-subject permutation of a grid, and the run's offset
    (common to all its subjects: seed noise) flips the ``errors`` smallest. Labels and which of
    them those frames carry vary by subject (a little subject noise, the same in every run)."""
    offset = 0.02 + 0.45 * (errors - 0.5) / FRAMES
    fr = {}
    for s in range(subjects):
        rows = []
        for i in range(FRAMES):
            row = []
            for mult, add in ((7, 3), (3, 7)):
                y = int((i * add + s) % 5 < 1 + s % 3)  # 20-60% positive, by subject
                margin = 0.02 + 0.45 * ((i * mult + s * add) % FRAMES) / FRAMES - offset
                row += [float(np.clip(0.5 + margin if y else 0.5 - margin, 0.001, 0.999)), y]
            rows.append(tuple(row))
        fr[f"S{s:02d}"] = rows
    return {1: table(fr)}


def test_seed_noise_widens_the_interval_to_cover_zero(tmp_path):
    # Both arms' runs come from the same seed-noise distribution (1..9 wrong frames per subject);
    # A's eight seeds happen to err once less on average. Seeds pair the arms, but per seed the
    # two differ at random (A − B errors: -8, 1, -1, 3, -6, 5, -3, 1).
    a = [offset_run(k) for k in (1, 3, 5, 7, 2, 8, 4, 6)]
    b = [offset_run(k) for k in (9, 2, 6, 4, 8, 3, 7, 5)]
    root = make_sweep(tmp_path, [("b", 1.0, b), ("a", 1.0, a)])
    deltas = {}
    for mode in ("subjects", "hierarchical"):
        comp, _ = sweep_comparison(root, resamples=1000, seed=0, resample=mode)
        deltas[mode] = {x["name"]: x for x in comp.summary()["groups"]}["a"]
    sub, hier = deltas["subjects"], deltas["hierarchical"]
    assert sub["delta"] == hier["delta"] > 0.02  # the same point estimate
    assert sub["delta_ci"][0] > 0.01 and sub["p"] < 0.01  # seed noise read as an effect
    assert sub["delta_ci"][1] > sub["delta_ci"][0]  # the subjects do vary a little
    assert hier["delta_ci"][0] < -0.02 and hier["delta_ci"][1] > 0.05 and hier["p"] > 0.2
    assert hier["delta_auc_ci"][0] < 0 < hier["delta_auc_ci"][1]
    assert not hier["exploratory"] and not hier["contrast_exploratory"]


def test_identical_arms_differ_by_exactly_zero_when_paired_by_seed(tmp_path):
    seeds = [_with_maps(noisy(i), 0.3, i) for i in range(3)]
    root = make_sweep(tmp_path, [("full", 1.0, seeds), ("copy", 1.0, seeds),
                                 ("other", 1.0, [noisy(7), noisy(8)])])
    comp, _ = sweep_comparison(root, resamples=400, seed=5)
    assert comp.resample == "hierarchical"
    assert np.array_equal(comp.run_draws["full"], comp.run_draws["copy"])  # same seeds 0, 1, 2
    assert len({tuple(r) for r in comp.run_draws["full"]}) > 5  # the seeds are resampled
    for metric in ("mean", "auc_mean"):
        d = getattr(comp.boot["copy"], metric) - getattr(comp.boot["full"], metric)
        assert np.all(d == 0.0)
    g = {x["name"]: x for x in comp.summary()["groups"]}["copy"]
    assert g["delta"] == 0.0 and g["delta_ci"] == [0.0, 0.0] and g["p"] == 1.0
    assert g["delta_auc"] == 0.0 and g["delta_auc_ci"] == [0.0, 0.0] and g["p_auc"] == 1.0
    loc = {x["name"]: x for x in localisation_comparison(comp)["groups"]}["copy"]
    assert loc["delta_energy_ci"] == [0.0, 0.0] and loc["delta_pointing_ci"] == [0.0, 0.0]
    # Deterministic given the seed; another seed draws otherwise.
    again, _ = sweep_comparison(root, resamples=400, seed=5)
    assert again.summary() == comp.summary()
    other, _ = sweep_comparison(root, resamples=400, seed=6)
    assert not np.array_equal(other.run_draws["full"], comp.run_draws["full"])


def test_groups_with_other_seeds_draw_independently(tmp_path):
    root = make_sweep(tmp_path, [("a", 1.0, [noisy(i) for i in range(3)]),
                                 ("b", 1.0, [noisy(i) for i in range(3)])])
    plan = json.loads((root / "sweep.json").read_text())
    for r in plan["runs"]:
        if r["arm"] == "b":
            r["seed"] += 10  # b ran seeds 10, 11, 12: nothing to pair with
    (root / "sweep.json").write_text(json.dumps(plan))
    comp, _ = sweep_comparison(root, resamples=300, seed=0)
    assert [r.seed for r in comp.groups["b"]] == [10, 11, 12]
    assert not np.array_equal(comp.run_draws["a"], comp.run_draws["b"])
    d = comp.boot["b"].mean - comp.boot["a"].mean
    assert np.any(d != 0)  # the same predictions, but drawn independently


def test_seed_of_a_run_folder(tmp_path):
    d = tmp_path / "r"
    d.mkdir()
    assert run_seed(d, "arm-s3") == 3 and run_seed(d, "arm-s3-lf5") == 3
    assert run_seed(d, "arm/seed4/labels5") == 4 and run_seed(d, "full") is None
    (d / "config.yaml").write_text("seed: 7\nlr: 0.001\n")
    assert run_seed(d, "arm-s3") == 7


def _frames(seed: int, n_subjects: int = 5):
    rng = np.random.default_rng(seed)
    codes = np.repeat(np.arange(n_subjects), rng.integers(3, 9, n_subjects))
    p = np.round(rng.random((len(codes), 3)), 1)  # many ties
    y = (rng.random((len(codes), 3)) < 0.4).astype(np.float64)
    y[rng.random(y.shape) < 0.15] = np.nan
    y[:, 2] = np.where(codes == 0, 1.0, np.where(codes == 1, 0.0, np.nan))
    return codes, p, y


def test_weighted_auc_equals_sklearn_and_repeated_frames():
    codes, p, y = _frames(0)
    fa = fold_auc(codes, 5, p, y)
    w = np.array([[1.0, 1, 1, 1, 1], [2, 0, 1, 3, 1], [0, 4, 1, 0, 2], [1, 1, 0, 0, 0],
                  [3, 0, 2, 1, 0]])
    got = weighted_auc(fa, w)
    assert got.shape == (5, 3)
    for b, wb in enumerate(w):
        rep = np.repeat(np.arange(len(codes)), wb[codes].astype(int))  # frames repeated
        for a in range(3):
            yk, pk = y[rep, a], p[rep, a]
            known = ~np.isnan(yk)
            yk, pk = yk[known], pk[known]
            if 0 < yk.sum() < len(yk):
                assert got[b, a] == pytest.approx(roc_auc_score(yk, pk), abs=1e-12)
                pos, neg = pk[yk == 1], pk[yk == 0]  # brute force, ties ½
                brute = ((pos[:, None] > neg) + 0.5 * (pos[:, None] == neg)).mean()
                assert got[b, a] == pytest.approx(brute, abs=1e-12)
            else:
                assert np.isnan(got[b, a])
    # AU 3: subject 0 all positive, subject 1 all negative, the rest unknown: a resample
    # without one of them has one class only.
    assert not np.isnan(got[0, 2])
    assert np.isnan(got[2, 2]) and np.isnan(got[4, 2]) and not np.isnan(got[3, 2])
    # No known label at all: NaN.
    assert np.isnan(weighted_auc(fold_auc(codes, 5, p, np.full_like(y, np.nan)), w)).all()


def test_observed_auc_equals_metrics_json(tmp_path):
    folds = noisy(3)
    run = load_run(write_run(tmp_path / "r", folds), "r")
    g = compare({"r": [run]}, "r", resamples=20).summary()["groups"][0]
    per_fold = [metrics_of(df) for df in folds.values()]
    assert g["mean_auc"] == pytest.approx(np.mean([m["mean_auc"] for m in per_fold]), abs=1e-12)
    assert g["auc"] == pytest.approx(np.nanmean([m["auc"] for m in per_fold], 0), abs=1e-12)
    assert g["auc_aus"] == g["aus"] and g["mean_auc_ci"][0] <= g["mean_auc"]
    assert fold_counts(folds[1]).auc.pairs.shape == (2, 8, 8)


def test_holm_textbook_monotone_capped_nan():
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.6, 0.9]).tolist() == [1.0, 1.0, 1.0]
    out = holm([0.01, float("nan"), 0.04, None])
    assert out[0] == pytest.approx(0.02) and out[2] == pytest.approx(0.04)
    assert np.isnan(out[1]) and np.isnan(out[3])
    p = np.random.default_rng(0).random(30) ** 3
    adj = holm(p)
    order = np.argsort(p)
    assert np.all(np.diff(adj[order]) >= 0) and np.all(adj >= p) and np.all(adj <= 1)
    assert np.isnan(holm([])).all() and len(holm([])) == 0


def _sweep_yaml(tmp_path, tiny_cfg, primary=None):
    tiny_cfg(tmp_path / "base.yaml", tensorboard=False, plots=False)
    doc = {"base": "base.yaml", "set": {"data": "x.parquet"},
           "arms": {"corpus": None, "shuffled": {"lr": 0.01}}, "seeds": [0, 1, 2],
           "label_fractions": [1.0, 0.05]}
    if primary is not None:
        doc["primary"] = primary
    p = tmp_path / "sweep.yaml"
    p.write_text(yaml.safe_dump(doc, sort_keys=False))
    return p


def test_primary_from_the_sweep_file_is_printed_first(tmp_path, tiny_cfg, cli):
    root = tmp_path / "root"
    sw = load_sweep(_sweep_yaml(tmp_path, tiny_cfg, "corpus@5% - shuffled@5%"), root)
    assert sw.primary == "corpus@5% - shuffled@5%"
    write_plan(sw)
    plan = json.loads((root / "sweep.json").read_text())
    assert plan["primary"] == "corpus@5% - shuffled@5%"
    for i, r in enumerate(plan["runs"]):
        write_run(root / r["dir"], noisy(i, flip=0.2 if r["arm"] == "corpus" else 0.3))
    js = tmp_path / "r.json"
    text = run_report([root], resamples=200, json_path=js)
    assert text.startswith("Primary contrast (sweep.json): Δ = corpus@5% − shuffled@5%")
    first = text.split("\n\n")[0]
    assert "corpus@5% - shuffled@5%*" in first and "3 vs 3" in first and "p (Holm)" in first
    data = json.loads(js.read_text())
    pr = data["primary"]
    assert pr["runs"] == [3, 3] and pr["exploratory"] is True
    assert pr["delta"] == pytest.approx(
        {g["name"]: g["mean_f1"] for g in data["groups"]}["corpus@5%"]
        - {g["name"]: g["mean_f1"] for g in data["groups"]}["shuffled@5%"])
    assert pr["p_holm"] >= pr["p"] and pr["p_auc_holm"] >= pr["p_auc"]
    # 3 groups vs corpus × (F1, AUC) + the primary × (F1, AUC): a family of 8.
    assert data["holm_family"] == 8 and "family of 8 contrasts" in first
    # The CLI's --primary overrides it; a bad one is one line.
    r = cli("report", root, "--primary", "shuffled - corpus", "--resamples", "50")
    assert r.stdout.startswith("Primary contrast (--primary): Δ = shuffled − corpus")
    bad = cli("report", root, "--primary", "shuffled-corpus", check=False)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().count("\n") == 0 and 'is not a contrast "A - B"' in bad.stderr


def test_several_primary_contrasts_are_each_printed_first_and_adjusted(tmp_path, tiny_cfg):
    """A list of primaries (e.g. one per label budget): a row each in the first table, each in
    the Holm family once, the first also as ``primary``; a bad one in the list is named."""
    root = tmp_path / "root"
    both = ["corpus@5% - shuffled@5%", "corpus - shuffled"]
    sw = load_sweep(_sweep_yaml(tmp_path, tiny_cfg, both), root)
    assert sw.primary == both
    write_plan(sw)
    plan = json.loads((root / "sweep.json").read_text())
    for i, r in enumerate(plan["runs"]):
        write_run(root / r["dir"], noisy(i, flip=0.2 if r["arm"] == "corpus" else 0.3))
    js = tmp_path / "r.json"
    first = run_report([root], resamples=200, json_path=js).split("\n\n")[0]
    assert first.startswith("Primary contrasts (sweep.json): Δ = corpus@5% − shuffled@5%; "
                            "corpus − shuffled")
    assert "corpus@5% - shuffled@5%*" in first and "corpus - shuffled*" in first
    data = json.loads(js.read_text())
    assert [p["name"] for p in data["primaries"]] == both
    assert data["primary"] == data["primaries"][0]
    # 3 groups vs corpus × (F1, AUC) + corpus@5% - shuffled@5% × (F1, AUC); corpus - shuffled
    # is already a group against the reference: a family of 8.
    assert data["holm_family"] == 8
    assert all(p["p_holm"] >= p["p"] for p in data["primaries"])
    with pytest.raises(HivaError, match="names learned, which is not a group"):
        load_sweep(_sweep_yaml(tmp_path, tiny_cfg, ["corpus - shuffled", "corpus - learned"]),
                   root)
    with pytest.raises(HivaError, match="primary is an empty list"):
        load_sweep(_sweep_yaml(tmp_path, tiny_cfg, []), root)


def test_only_reports_the_selected_groups(tmp_path, tiny_cfg, cli):
    root = tmp_path / "root"
    sw = load_sweep(_sweep_yaml(tmp_path, tiny_cfg, ["corpus@5% - shuffled@5%",
                                                     "corpus - shuffled"]), root)
    write_plan(sw)
    for i, r in enumerate(json.loads((root / "sweep.json").read_text())["runs"]):
        write_run(root / r["dir"], noisy(i, flip=0.2 if r["arm"] == "corpus" else 0.3))
    js = tmp_path / "r.json"
    run_report([root], resamples=100, json_path=js, only=["*@5%"], reference="shuffled@5%")
    data = json.loads(js.read_text())
    assert [g["name"] for g in data["groups"]] == ["corpus@5%", "shuffled@5%"]
    assert [p["name"] for p in data["primaries"]] == ["corpus@5% - shuffled@5%"]
    assert "corpus - shuffled: corpus is left out by --only" in data["notes"][0]
    assert data["holm_family"] == 2  # the one contrast, on F1 and AUC
    bad = cli("report", root, "--only", "names*", check=False)
    assert bad.returncode == 1 and "--only names* matches no group; the groups are: corpus, " \
        "corpus@5%, shuffled, shuffled@5%" in bad.stderr


@pytest.mark.parametrize("primary, match", [
    ("corpus@5% minus shuffled@5%", r"primary 'corpus@5% minus shuffled@5%' is not a contrast "
                                    r"\"A - B\" .*the groups are: corpus, corpus@5%, shuffled"),
    ("corpus - learned", r"names learned, which is not a group .*the groups are: corpus,"),
    ("corpus@10% - corpus", r"names corpus@10%, which is not a group"),
    ("corpus - corpus", r"compares corpus with itself"),
    (5, r"primary 5 is not a contrast"),
])
def test_bad_primary_in_the_sweep_file_is_one_line(tmp_path, tiny_cfg, primary, match):
    with pytest.raises(HivaError, match=match) as e:
        load_sweep(_sweep_yaml(tmp_path, tiny_cfg, primary), tmp_path / "root")
    assert "\n" not in str(e.value) and str(e.value).startswith("sweep file ")


def test_an_old_plan_without_primary_is_accepted_and_gains_it(tmp_path, tiny_cfg):
    root = tmp_path / "root"
    write_plan(load_sweep(_sweep_yaml(tmp_path, tiny_cfg), root))
    old = json.loads((root / "sweep.json").read_text())
    assert "primary" not in old
    sw = load_sweep(_sweep_yaml(tmp_path, tiny_cfg, "corpus - shuffled"), root)
    assert check_root(sw) == old  # the same runs: accepted
    write_plan(sw)
    assert json.loads((root / "sweep.json").read_text())["primary"] == "corpus - shuffled"


def test_primary_on_run_folders(tmp_path):
    a = write_run(tmp_path / "a", noisy(0))
    b = write_run(tmp_path / "b", noisy(1, flip=0.4))
    text = run_report([a, b], resamples=100, primary="b - a")
    assert "\n\nPrimary contrast (--primary): Δ = b − a" in text
    with pytest.raises(HivaError, match="names c, which is not a group"):
        run_report([a, b], resamples=100, primary="b - c")
    with pytest.raises(HivaError, match="--primary, --json and --plot need intervals"):
        run_report([a, b], resamples=0, primary="b - a")


def test_fewer_than_eight_seeds_is_exploratory(tmp_path):
    root = make_sweep(tmp_path, [("many", 1.0, [noisy(i) for i in range(8)]),
                                 ("few", 1.0, [noisy(10 + i) for i in range(3)]),
                                 ("more", 1.0, [noisy(20 + i) for i in range(8)])])
    js, md = tmp_path / "r.json", tmp_path / "r.md"
    text = run_report([root], resamples=100, json_path=js, markdown=md, primary="more - many")
    g = {x["name"]: x for x in json.loads(js.read_text())["groups"]}
    assert [g[n]["exploratory"] for n in ("many", "few", "more")] == [False, True, False]
    assert g["few"]["contrast_exploratory"] is True and g["more"]["contrast_exploratory"] is False
    assert json.loads(js.read_text())["primary"]["exploratory"] is False
    lines = text.splitlines()
    assert any(ln.startswith("few* ") for ln in lines)
    assert any(ln.startswith("many ") for ln in lines) and "many*" not in text
    assert "* fewer than 8 seeds: exploratory, not a claim" in text
    assert "| few* | 3×2 |" in md.read_text()
    primary = text.split("\n\n")[0]
    assert "more - many " in primary and "more - many*" not in primary
    assert "exploratory" not in primary  # no footnote where nothing is exploratory


def test_subject_only_resampling_is_an_option(tmp_path, cli):
    root = make_sweep(tmp_path / "sw", [("full", 1.0, [noisy(0), noisy(1)]),
                                        ("nolang", 1.0, [noisy(2, flip=0.35), noisy(3)])])
    js = tmp_path / "r.json"
    r = cli("report", root, "--resample", "subjects", "--resamples", "100", "--json", js)
    assert "from a subject-level bootstrap" in r.stdout and "not training noise" in r.stdout
    data = json.loads(js.read_text())
    assert data["resample"] == "subjects" and data["groups"][1]["p_holm"] is not None
    text = run_report([root], resamples=100)
    assert "from a hierarchical bootstrap" in text and "which seeds trained" in text
    bad = cli("report", root, "--resample", "seeds", check=False)
    assert bad.returncode == 1 and "--resample seeds: pass hierarchical" in bad.stderr
