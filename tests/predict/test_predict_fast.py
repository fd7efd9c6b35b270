"""Prediction's speed paths compute what the plain ones do: BatchNorm folded into convolutions and
the channels_last memory format (hiva.predict.inference), batched input transforms
(``Detector.to_batch``), and batches scored in scorer threads or with face images turned into
tensors in the decode thread (hiva.predict.stream)."""

from __future__ import annotations

import copy
import threading

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from hiva.model.backbone import Backbone
from hiva.predict import stream
from hiva.predict.inference import fold_batchnorm, prepare
from hiva.predict.loader import load
from hiva.predict.media import iter_video
from tests.predict.helpers import astronaut

UNIT = dict(check_exact=False, rtol=0, atol=1.01e-6)  # probabilities are rounded to 6 decimals


def _random_statistics(module: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BatchNorm statistics and an affine map far from the identity (fresh ones are
    mean 0, variance 1, weight 1, bias 0: folding them would change next to nothing)."""
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.5)
            m.running_var.copy_(torch.rand(n, generator=g) * 2 + 0.2)
            m.weight.data.copy_(torch.randn(n, generator=g))
            m.bias.data.copy_(torch.randn(n, generator=g))
    return module.eval()


@pytest.mark.parametrize("name, stride", [("resnet18", 32), ("tf_efficientnet_lite0", 32),
                                          ("tf_efficientnet_lite0", 16)])
def test_folding_keeps_the_backbone_output(name, stride):
    """Every BatchNorm of a timm backbone (plain ones; timm's BatchNormAct2d after ``SAME``-padded
    strided convolutions; a pruned stride-16 model) is folded, and the features stay."""
    bb = _random_statistics(Backbone(name, None, 64, stride))
    n_bn = sum(isinstance(m, nn.BatchNorm2d) for m in bb.modules())
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        ref = bb(x)
    folded = copy.deepcopy(bb)
    assert fold_batchnorm(folded) == n_bn > 0
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    with torch.inference_mode():
        torch.testing.assert_close(folded(x), ref, rtol=1e-4, atol=1e-4)


class _Shared(nn.Module):
    """conv_a's output feeds its BatchNorm and a skip connection; conv_b's only its BatchNorm."""

    def __init__(self):
        super().__init__()
        self.conv_a, self.bn_a = nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4)
        self.conv_b, self.bn_b = nn.Conv2d(4, 4, 1, bias=False), nn.BatchNorm2d(4)

    def forward(self, x):
        y = self.conv_a(x)
        z = self.bn_a(y) + y
        return self.bn_b(self.conv_b(z))


class _Branchy(_Shared):
    """Control flow on a tensor's value: torch.fx cannot trace it."""

    def forward(self, x):
        return super().forward(x) if x.sum() > 0 else x


def test_only_a_convolution_feeding_its_batchnorm_alone_is_folded():
    m = _random_statistics(_Shared())
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    ref = m(x).detach()
    assert fold_batchnorm(m) == 1
    assert isinstance(m.bn_a, nn.BatchNorm2d) and isinstance(m.bn_b, nn.Identity)
    torch.testing.assert_close(m(x), ref, rtol=1e-5, atol=1e-5)
    # a model fx cannot trace, and one in training mode, are left as they are
    b = _random_statistics(_Branchy())
    assert fold_batchnorm(b) == 0 and isinstance(b.bn_b, nn.BatchNorm2d)
    assert fold_batchnorm(_Shared().train()) == 0


def _probs(ld, x, amp=None):
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16,
                                                enabled=amp is not None):
        return ld.model(x, *ld.text_input).probs.float()


def test_prepared_model_gives_the_plain_models_probabilities(tiny_run):
    """Folded and channels_last (the trained run's BatchNorms hold real statistics): the same
    probabilities in float32; under bf16 autocast no further from float32 than the plain model
    is."""
    plain = load(tiny_run, device="cpu")
    fast = load(tiny_run, device="cpu")
    fast.channels_last = True
    assert prepare(fast) == sum(isinstance(m, nn.BatchNorm2d)
                                for m in plain.model.backbone.modules()) > 0
    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(3)) * 2 - 1
    ref = _probs(plain, x)
    torch.testing.assert_close(_probs(fast, x.contiguous(memory_format=torch.channels_last)),
                               ref, rtol=0, atol=1e-5)
    bf_plain = (_probs(plain, x, torch.bfloat16) - ref).abs().max().item()
    bf_fast = (_probs(fast, x.contiguous(memory_format=torch.channels_last), torch.bfloat16)
               - ref).abs().max().item()
    assert bf_fast <= 2 * bf_plain + 2e-3


@pytest.fixture(scope="module")
def det(tiny_run):
    pytest.importorskip("mediapipe")
    import hiva

    return hiva.Detector(tiny_run, align=True, batch_size=2, device="cpu")


def test_detector_scores_with_the_prepared_model(det, tiny_run):
    """The Detector's model is the prepared one: its scores equal the plain model's."""
    plain = load(tiny_run, device="cpu")
    assert det.folded > 0
    faces = [astronaut(256), astronaut(256)[::-1].copy(), astronaut(200)]
    x = torch.stack([det.to_tensor(f) for f in faces])
    np.testing.assert_allclose(det.score(faces), _probs(plain, x).numpy(), rtol=0, atol=1e-5)


def test_to_batch_equals_each_face_transformed(det):
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 256, (256, 256, 3), np.uint8) for _ in range(3)]
    frames = [rng.integers(0, 256, (120, 90, 3), np.uint8), crops[0]]
    for faces in (crops, frames):  # one shape: one batched transform; several: one by one
        got = det.to_batch(faces)
        assert type(got) is torch.Tensor
        assert torch.equal(got, torch.stack([det.to_tensor(f) for f in faces]))
    # a face already turned into the model's input (a large frame, in the decode thread)
    mixed = det.to_batch([crops[1], det.to_tensor(crops[2])])
    assert torch.equal(mixed, torch.stack([det.to_tensor(c) for c in crops[1:]]))


def _stream_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("hiva-")]


def test_two_scorers_and_tensors_from_the_detect_thread_give_the_same_table(det, media,
                                                                              monkeypatch):
    """One face per batch with two scorers, so batches finish out of order: the rows still
    come back in input order, equal to a single scorer's; so do faces turned into tensors in the
    detect thread (as a frame over RAW_PIXELS is)."""
    inputs = [media["video"], media["folder"]]
    det.model_threads = 1
    assert stream.scorer_plan(det) == (1, 1)
    ref = det.detect(inputs, batch_size=1)
    det.model_threads = 2
    try:
        assert stream.scorer_plan(det) == (2, 1)
        pd.testing.assert_frame_equal(det.detect(inputs, batch_size=1), ref)
        monkeypatch.setattr(stream, "RAW_PIXELS", 16)
        pd.testing.assert_frame_equal(det.detect(inputs, batch_size=3), ref, **UNIT)
    finally:
        det.model_threads = None
    assert ref["success"].sum() >= 4 and not _stream_threads()


def test_a_video_that_stops_part_way_keeps_its_frames_in_order(det, media, monkeypatch):
    """The decode thread hands on a file that stops decoding part way after the frames it gave,
    before the next input's: those frames are rows, the file is listed as unreadable."""
    from hiva.predict.media import Frame, Unreadable

    real = stream.iter_frames
    first = [rgb for _, _, rgb in iter_video(str(media["video"]))][:2]

    def cut(src, every=1, start=0):
        if not src.path.endswith("cut.mp4"):
            yield from real(src, every, start)
            return
        for i, rgb in enumerate(first):
            yield Frame(src.path, i, i / 10, rgb)
        raise Unreadable("decoding stopped after 2 frames (InvalidDataError: cut)")

    monkeypatch.setattr(stream, "iter_frames", cut)
    cut_path = media["folder"].parent / "cut.mp4"
    cut_path.write_bytes(b"stands in for a cut video")
    df = det.detect([cut_path, media["face"]], batch_size=1)
    assert df["input"].tolist() == [str(cut_path)] * 2 + [str(media["face"])]
    assert df["frame"].tolist() == [0, 1, 0]
    assert df.attrs["unreadable"] == [(str(cut_path), "decoding stopped after 2 frames "
                                                      "(InvalidDataError: cut)")]


@pytest.mark.parametrize("stage", ["decode", "detect", "score"])
def test_a_failure_in_any_stage_reaches_the_caller_and_leaves_no_thread(stage, det, media,
                                                                        tmp_path, monkeypatch):
    """A bug in the decode, detect or a scorer thread stops ``detect`` with that error (it is
    not lost in a background thread); every stream thread is gone after it, and no table is
    left."""
    calls = {"n": 0}

    def third_call_fails(real):
        def wrapped(*a, **k):
            calls["n"] += 1
            if calls["n"] == 3:
                raise RuntimeError(f"{stage} broke on call 3")
            return real(*a, **k)
        return wrapped

    if stage == "decode":
        real = stream.iter_frames

        def frames(src, every=1, start=0):
            for fr in real(src, every, start):
                yield third_call_fails(lambda fr=fr: fr)()

        monkeypatch.setattr(stream, "iter_frames", frames)
    elif stage == "detect":
        monkeypatch.setattr(det, "faces", third_call_fails(det.faces))
    else:
        monkeypatch.setattr(det, "forward", third_call_fails(det.forward))
    n_threads = threading.active_count()
    det.model_threads = 2
    try:
        with pytest.raises(RuntimeError, match=f"{stage} broke on call 3"):
            det.detect(media["video"], save=tmp_path / "au.csv", batch_size=1)
    finally:
        det.model_threads = None
    assert list(tmp_path.iterdir()) == []
    assert not _stream_threads() and threading.active_count() == n_threads


def test_a_caller_that_stops_reading_stops_the_stream(det, media, monkeypatch):
    """Closing ``iter_batches`` part way stops decoding and detecting (the frames after the
    queues' worth are never looked at) and leaves no thread."""
    seen = {"n": 0}
    real = det.faces

    def counted(rgb, landmarks=False):
        seen["n"] += 1
        return real(rgb, landmarks)

    monkeypatch.setattr(det, "faces", counted)
    batches = det.iter_batches([media["video"]] * 4, batch_size=1)  # 24 frames
    next(batches)
    assert "hiva-decode" in _stream_threads()  # still reading while the caller holds a batch
    batches.close()
    assert not _stream_threads() and seen["n"] < 24


def test_torch_threads_are_put_back(det, media):
    """Scorer threads set torch's thread count (a process-wide default for threads that have
    not run torch yet); detect puts the caller's back."""
    def fresh_thread_sees() -> int:
        seen = []
        t = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
        t.start()
        t.join()
        return seen[0]

    before = torch.get_num_threads()
    torch.set_num_threads(3)
    det.model_threads = 1
    try:
        det.detect(next(iter_video(str(media["video"])))[2])
        assert torch.get_num_threads() == 3 and fresh_thread_sees() == 3
    finally:
        det.model_threads = None
        torch.set_num_threads(before)
