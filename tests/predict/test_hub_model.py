"""Models by Hub id and the cards the Hub reads (issue 17): an export loaded as ``OWNER/NAME``
(``@REVISION``) from a local Hub cache built here, offline; one line when it is not there; the
model card through ``huggingface_hub.ModelCard`` with per-AU test F1 as eval results."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from hiva.errors import HivaError

REPO = "me/tiny-hiva"
MAIN = "a" * 40  # the commit refs/main points at
V1 = "b" * 40  # the commit of tag v1: the same export with other thresholds


@pytest.fixture(scope="module")
def exported(tiny_run, tmp_path_factory) -> Path:
    from hiva.predict.export import export

    out = tmp_path_factory.mktemp("hub_export") / "export"
    export(tiny_run, out)
    return out


def _snapshot(cache: Path, repo: str, commit: str, src: Path, refs=("main",)) -> Path:
    """``src`` as the snapshot ``commit`` of model ``repo`` in the Hub cache at ``cache`` (the
    layout huggingface_hub writes: refs/<name> holds the commit, snapshots/<commit>/ the files)."""
    root = cache / f"models--{repo.replace('/', '--')}"
    snap = root / "snapshots" / commit
    shutil.copytree(src, snap)
    (root / "refs").mkdir(parents=True, exist_ok=True)
    for r in refs:
        (root / "refs" / r).write_text(commit)
    return snap


@pytest.fixture
def hub_cache(tmp_path, monkeypatch) -> dict:
    """An empty Hub cache of this test, offline: the environment (for the CLI's subprocesses) and
    huggingface_hub's constant (read when it was imported, for this process) both point at it."""
    import huggingface_hub.constants as c

    home = tmp_path / "hf"
    cache = home / "hub"
    cache.mkdir(parents=True)
    env = {"HF_HOME": str(home), "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(c, "HF_HUB_CACHE", str(cache))
    return {"cache": cache, "env": env}


@pytest.fixture
def cached(hub_cache, exported) -> dict:
    """REPO in the cache: main → the export; tag v1 → the export with every threshold 0.25."""
    _snapshot(hub_cache["cache"], REPO, MAIN, exported)
    v1 = _snapshot(hub_cache["cache"], REPO, V1, exported, refs=("v1",))
    info = json.loads((v1 / "config.json").read_text())
    info["thresholds"] = [0.25] * len(info["thresholds"])
    (v1 / "config.json").write_text(json.dumps(info))
    return hub_cache


# ---------------------------------------------------------------- load by Hub id


@pytest.mark.parametrize("ref,parsed", [
    ("me/tiny-hiva", ("me/tiny-hiva", None)),
    ("me/tiny-hiva@v1", ("me/tiny-hiva", "v1")),
    ("my-lab/hiva_bp4d.v2@" + "c" * 40, ("my-lab/hiva_bp4d.v2", "c" * 40)),
    ("me/tiny@refs/pr/1", ("me/tiny", "refs/pr/1")),
    ("runs/a/b", None), ("/abs/path", None), ("./me/x", None), ("name", None),
    ("me/x@", None), ("me/-x", None), ("me/x--y", None), ("me/x..y", None), ("me/x.", None),
])
def test_hub_model_id(ref, parsed):
    from hiva.hub import hub_model_id

    assert hub_model_id(ref) == parsed


def test_load_by_hub_id_offline_predicts_as_the_folder(cached, exported, media):
    from hiva.predict import Detector
    from hiva.predict.loader import load

    ld = load(REPO, device="cpu")
    assert ld.source.name == MAIN and ld.source.parent.name == "snapshots"
    assert ld.text_bank and Path(ld.text_bank).is_relative_to(ld.source)  # its own bank
    a = Detector(exported, device="cpu").detect(media["folder"])
    b = Detector(REPO, device="cpu").detect(media["folder"])
    assert b.attrs["thresholds"] == a.attrs["thresholds"]
    pd.testing.assert_frame_equal(a, b)


def test_revision_pins_a_snapshot(cached, exported):
    from hiva.predict.loader import load

    base = json.loads((exported / "config.json").read_text())["thresholds"]
    assert load(REPO, device="cpu").thresholds == base
    for ref in (f"{REPO}@v1", f"{REPO}@{V1}"):
        ld = load(ref, device="cpu")
        assert ld.source.name == V1 and ld.thresholds == [0.25] * len(base), ref
    assert load(REPO, device="cpu", revision="v1").thresholds == [0.25] * len(base)
    assert load(f"{REPO}@main", device="cpu").thresholds == base
    with pytest.raises(HivaError, match="pins revision v1 but revision main was also given"):
        load(f"{REPO}@v1", device="cpu", revision="main")


def test_not_cached_offline_is_one_line(cached, media, cli, tmp_path):
    from hiva.predict.loader import load

    for ref, pin in (("me/missing", ""), (f"{REPO}@v2", " --revision v2")):
        with pytest.raises(HivaError) as e:
            load(ref, device="cpu")
        msg = str(e.value)
        assert "\n" not in msg
        assert msg.startswith(f"checkpoint {ref} is neither a local folder nor in the local Hub "
                              "cache, and the Hub cannot be used (HF_HUB_OFFLINE=1 (offline "
                              "mode)); unset HF_HUB_OFFLINE when online"), msg
        repo = ref.split("@")[0]
        assert f"`hf download {repo}{pin} --local-dir DIR`, then pass DIR" in msg
    r = cli("predict", media["face"], "--checkpoint", "me/missing", "--out", tmp_path / "x.csv",
            check=False)  # the environment: the fixture's cache, offline
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.count("\n") == 1 and r.stderr.startswith(
        "hiva: error: checkpoint me/missing is neither a local folder nor in the local Hub "
        "cache"), r.stderr
    r = cli("evaluate", "--checkpoint", "me/missing", "--data", "x.parquet", "--out",
            tmp_path / "ev", check=False)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "hf download me/missing" \
        in r.stderr, r.stderr


def test_a_missing_path_keeps_its_message(hub_cache, tmp_path):
    from hiva.predict.loader import load

    for ref in (tmp_path / "nope", "./nope/x", "runs/a/b"):
        with pytest.raises(HivaError, match=r"^checkpoint .* does not exist; pass a `hiva train` "
                                            "--out folder"):
            load(ref, device="cpu")


def test_a_hub_repo_that_is_no_export(hub_cache, tmp_path):
    from hiva.predict.loader import load

    other = tmp_path / "bert"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "bert"}))
    _snapshot(hub_cache["cache"], "someone/bert", MAIN, other)
    with pytest.raises(HivaError, match="Hub model someone/bert is not a hiva export"):
        load("someone/bert", device="cpu")


def test_online_downloads_only_the_export_files(hub_cache, exported, monkeypatch):
    """With the Hub answering, the snapshot is fetched with the export's allow_patterns and the
    pinned revision (the download itself is stubbed: no network in tests)."""
    import huggingface_hub

    from hiva import hub
    from hiva.predict.loader import load
    from hiva.runs import EXPORT_FILES

    calls = []

    def fake(repo_id, **kw):
        calls.append((repo_id, kw))
        return str(exported)

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(hub, "hub_offline_reason", lambda *a, **k: None)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake)
    ld = load(f"{REPO}@v1", device="cpu")
    assert ld.source == exported
    assert calls == [(REPO, {"revision": "v1", "repo_type": "model",
                             "allow_patterns": EXPORT_FILES})]
    # every file of the export is among what is fetched
    from huggingface_hub.utils import filter_repo_objects

    files = [p.relative_to(exported).as_posix() for p in exported.rglob("*") if p.is_file()]
    assert sorted(filter_repo_objects(files, allow_patterns=EXPORT_FILES)) == sorted(files)


def test_evaluate_by_hub_id(cached, exported, tmp_path, cli):
    from hiva.train.evaluate import evaluate

    data = json.loads((exported / "config.json").read_text())["source"]["data"]
    with pytest.raises(HivaError, match=f"--checkpoint {REPO} is a Hub model: pass --out DIR"):
        evaluate(REPO, 1, data=data, device="cpu")
    by_id = evaluate(REPO, 1, data=data, device="cpu", num_workers=0, out=tmp_path / "ev")
    saved = json.loads((tmp_path / "ev" / "evaluate_fold1.json").read_text())
    assert saved["test"]["f1"] == by_id["test"]["f1"]
    assert (tmp_path / "ev" / "evaluate_fold1_best_predictions.parquet").is_file()
    snap = cached["cache"] / f"models--{REPO.replace('/', '--')}" / "snapshots" / MAIN
    assert not list(snap.glob("evaluate*"))  # nothing written into the Hub cache
    local = evaluate(exported, 1, data=data, device="cpu", num_workers=0, out=tmp_path / "ev2")
    assert local["test"]["f1"] == by_id["test"]["f1"]


# ---------------------------------------------------------------- the model card


def test_export_card_parses_with_eval_results(exported, tiny_run):
    from huggingface_hub import ModelCard

    card = ModelCard.load(exported / "README.md")
    d = card.data
    test = json.loads((tiny_run / "fold1" / "metrics.json").read_text())["test"]
    info = json.loads((exported / "config.json").read_text())
    assert d.library_name == "hiva" and d.pipeline_tag == "image-classification"
    assert d.license == "apache-2.0" and not (exported / "LICENSE.md").exists()  # synthetic
    assert d.metrics == ["f1"] and d.base_model is None  # tiny run: random init
    assert info["training_data"] == "synthetic"
    per_au = {r.metric_config: r.metric_value for r in d.eval_results}
    from hiva.facs import au_column

    want = {au_column(a): f for a, f in zip(info["aus"], test["f1"])}
    assert {k: v for k, v in per_au.items() if k != "mean"} == want
    assert per_au["mean"] == test["mean_f1"]
    r = d.eval_results[0]
    assert (r.task_type, r.dataset_type, r.dataset_split, r.metric_type) == (
        "image-classification", "synthetic", "test", "f1")
    for needle in ("## Use", "## Outputs", "## Training", "## Licence", "## Citation",
                   "synthetic cartoon faces", "Apache-2.0", "random-test-vectors"):
        assert needle in card.text, needle


def test_card_of_a_bp4d_model_pushed_by_id(exported, tmp_path):
    from huggingface_hub import ModelCard

    from hiva.predict.export import data_licence, model_card
    from hiva.runs import write_export

    info = json.loads((exported / "config.json").read_text())
    info["training_data"] = "bp4d"
    info["model_config"] = dict(info["model_config"], pretrained="hub", backbone="resnet18")
    metrics = {"test": {"f1": [0.5] * len(info["aus"]), "mean_f1": 0.5, "n": 10}}
    text = model_card(info, metrics, "my-lab/hiva-bp4d")
    write_export(tmp_path, info, {}, [], text, data_licence("bp4d"))
    d = ModelCard.load(tmp_path / "README.md").data
    assert (d.license, d.license_name, d.license_link) == ("other", "bp4d-research-only",
                                                           "LICENSE.md")
    assert d.datasets == ["bp4d"] and d.base_model == "timm/resnet18.a1_in1k"
    assert d.model_name == "my-lab/hiva-bp4d"
    assert {r.dataset_type for r in d.eval_results} == {"bp4d"}
    assert "Binghamton University" in (tmp_path / "LICENSE.md").read_text()
    body = ModelCard.load(tmp_path / "README.md").text
    assert 'hiva.Detector("my-lab/hiva-bp4d")' in body
    assert "--checkpoint my-lab/hiva-bp4d" in body and "my-lab/hiva-bp4d@REVISION" in body
    assert "Download it first" not in body and "research use only" in body
    assert data_licence("synthetic") is None
    write_export(tmp_path, info, {}, [], text, None)  # re-exported from open data: it goes
    assert not (tmp_path / "LICENSE.md").exists()


def test_training_data_kind(tiny_run, tmp_path):
    from hiva.predict.export import training_data

    assert training_data("bp4d:/data/BP4D") == "bp4d"
    assert training_data("disfa:/data/DISFA") == "disfa"
    data = yaml.safe_load((tiny_run / "config.yaml").read_text())["data"]
    assert training_data(data) == "synthetic"
    assert training_data(str(tmp_path / "gone.parquet")) == "manifest"


def test_import_card_parses():
    from huggingface_hub import ModelCard

    from hiva.predict.import_graphau import import_card

    info = {"model_config": {"graph_stage": 2}, "columns": ["AU01_p", "AU02_p"],
            "source": {"data": "BP4D or DISFA (research-only licences)"}}
    card = ModelCard(import_card(info, "megraphau", "resnet50"))
    assert (card.data.license, card.data.license_link) == ("other", "LICENSE.md")
    assert "me-graphau" in card.data.tags and "research use only" in card.text


def test_export_reads_no_hub_id(tmp_path):
    from hiva.predict.export import export

    with pytest.raises(HivaError, match=r"^me/tiny-hiva is not a local run folder; .*`hf download "
                                        r"me/tiny-hiva --local-dir DIR`"):
        export(REPO, tmp_path / "x")
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("error,needle", [
    ("RepositoryNotFoundError", "checkpoint me/private@v1 is neither a local folder nor a Hub "
                                "model you can read (RepositoryNotFoundError); check the path or "
                                "id, and for a private or gated repo log in (`hf auth login`)"),
    ("RevisionNotFoundError", "Hub model me/private has no revision v1; pin a branch, tag or "
                              "commit of it (me/private@REVISION)"),
    ("ConnectionResetError", "download of Hub model me/private@v1 failed "
                             "(ConnectionResetError: reset); check the network and retry, or on "
                             "a machine with internet run `hf download me/private --revision v1 "
                             "--local-dir DIR`, then pass DIR"),
])
def test_online_failures_are_one_line(error, needle, hub_cache, monkeypatch):
    import huggingface_hub
    import huggingface_hub.errors as errors

    from hiva import hub
    from hiva.predict.loader import load

    def fail(repo_id, **kw):
        if error == "ConnectionResetError":
            raise ConnectionResetError("reset")
        cls = getattr(errors, error)  # made without the HTTP response its __init__ wants
        e = cls.__new__(cls)
        Exception.__init__(e, "404 not found")
        raise e

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(hub, "hub_offline_reason", lambda *a, **k: None)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fail)
    with pytest.raises(HivaError) as e:
        load("me/private@v1", device="cpu")
    assert str(e.value).startswith(needle) and "\n" not in str(e.value), str(e.value)
