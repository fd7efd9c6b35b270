"""A weights file cut short (a copy interrupted, a download stopped) or of another kind is one
line naming it, wherever a user hands one over: a run's checkpoint, ``init_from``, pretrained
backbone weights (it was a SafetensorError traceback)."""

from __future__ import annotations

import shutil

import pytest

from hiva.errors import HivaError
from hiva.model.backbone import read_state_dict
from hiva.model.factory import read_checkpoint, read_tensors
from hiva.runs import fold_dir, weights_file
from hiva.train.fold_setup import init_weights
from tests.helpers import invoke


def _cut(path, keep=3000):
    """Keep the first ``keep`` bytes (negative: all but the last -``keep``)."""
    data = path.read_bytes()
    path.write_bytes(data[:keep])


def test_a_cut_checkpoint_is_one_line_in_predict(tiny_run, tmp_path):
    from PIL import Image

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    _cut(weights_file(fold_dir(run, 1), "best"))
    Image.new("RGB", (64, 64)).save(tmp_path / "face.png")
    code, out = invoke("predict", tmp_path / "face.png", "--checkpoint", run, "--out",
                       tmp_path / "p.csv")
    assert code == 1 and "best.safetensors is not a readable safetensors file" in out, out
    assert "train or export it again" in out and "Traceback" not in out


@pytest.mark.parametrize("keep", [0, 7, -100])  # empty, a cut header, the last tensor cut
def test_every_reader_names_the_file(tiny_run, tmp_path, keep):
    f = tmp_path / "w.safetensors"
    shutil.copy(weights_file(fold_dir(tiny_run, 1), "best"), f)
    _cut(f, keep)
    with pytest.raises(HivaError, match=r"checkpoint .*w\.safetensors is not a readable"):
        read_checkpoint(f)
    with pytest.raises(HivaError, match=r"checkpoint .*w\.safetensors is not a readable"):
        read_tensors(f)
    with pytest.raises(HivaError, match=r"init_from .*: .*w\.safetensors is not a readable"):
        init_weights(None, str(f), 1)
    with pytest.raises(HivaError, match=r"pretrained weights .*w\.safetensors is not a readable"):
        read_state_dict(f)
