"""hiva.hub.resolve_model: the one Hub-or-local-cache rule that checkpoints, CLIP backbones, text
encoders and LLMs all go through. A local path as it is; a Hub id offline from the local Hub cache
(pinned revisions too) or one line that names the id, why, and the way out in the caller's
words; with the Hub up, the id left to the caller's loader when it does not download."""

from __future__ import annotations

import pytest

from hiva import hub
from hiva.errors import HivaError

MAIN, V1 = "a" * 40, "b" * 40


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An offline Hub cache holding ``me/model`` (main → MAIN, tag v1 → V1)."""
    import huggingface_hub.constants as c

    root = tmp_path / "hub"
    repo = root / "models--me--model"
    for commit, ref in ((MAIN, "main"), (V1, "v1")):
        (repo / "snapshots" / commit).mkdir(parents=True)
        (repo / "snapshots" / commit / "config.json").write_text("{}")
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / ref).write_text(commit)
    monkeypatch.setenv("HF_HUB_CACHE", str(root))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(c, "HF_HUB_CACHE", str(root))
    return repo


def test_a_local_path_or_a_non_id_comes_back_to_the_letter(tmp_path, cache):
    (tmp_path / "enc").mkdir()
    for ref in (f"{tmp_path}/enc/", "./no/such/folder", "bare-name", "a/b/c"):
        assert hub.resolve_model(ref) == ref


@pytest.mark.parametrize("download", [True, False])
def test_offline_a_cached_snapshot_is_the_folder(cache, download):
    snaps = cache / "snapshots"
    assert hub.resolve_model("me/model", download=download) == str(snaps / MAIN)
    assert hub.resolve_model("me/model@v1", download=download) == str(snaps / V1)
    assert hub.resolve_model("me/model", "v1", download=download) == str(snaps / V1)
    with pytest.raises(HivaError, match="me/model@v1 pins revision v1 but revision main"):
        hub.resolve_model("me/model@v1", "main")


def test_offline_a_miss_is_one_line_in_the_callers_words(cache):
    with pytest.raises(HivaError) as e:
        hub.resolve_model("me/other@v2", what="checkpoint")
    assert str(e.value) == (
        "checkpoint me/other@v2 is neither a local folder nor in the local Hub cache, and the "
        "Hub cannot be used (HF_HUB_OFFLINE=1 (offline mode)); unset HF_HUB_OFFLINE when "
        "online, or on a machine with internet run `hf download me/other --revision v2 "
        "--local-dir DIR`, then pass DIR")
    with pytest.raises(HivaError) as e:
        hub.resolve_model("me/other", download=False, missing="encoder me/other is not "
                          "available here", then="pass --encoder DIR")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(
        "encoder me/other is not available here (neither a local folder nor in the local Hub "
        "cache), and the Hub cannot be used (HF_HUB_OFFLINE=1")
    assert msg.endswith("`hf download me/other --local-dir DIR`, then pass --encoder DIR")


def test_with_the_hub_up_the_id_is_left_to_the_loader(monkeypatch):
    monkeypatch.setattr(hub, "hub_offline_reason", lambda *a, **k: None)
    assert hub.resolve_model("me/model", download=False) == "me/model"
