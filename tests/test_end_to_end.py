"""Every stage through the real CLI, on tiny settings, each reading what the one before wrote:
generate (the tiny Llama) → embed (the tiny sentence-transformer) → synth → train → predict.
What is checked is the hand-over: counts, fingerprints and the text bank travel down the chain."""

from __future__ import annotations

import json

import pandas as pd
import yaml

from tests.helpers import run_cli

AUS = (1, 2, 4, 6, 12, 25)


def test_generate_embed_synth_train_predict(tmp_path, tiny_llm, short_templates, tiny_st):
    aus = ",".join(map(str, AUS))
    corpus, bank, faces, run = (tmp_path / n for n in ("corpus", "bank", "faces", "run"))

    run_cli("generate-descriptions", "--llm", tiny_llm, "--templates", short_templates,
            "--aus", aus, "--per-au", 2, "--backend", "transformers", "--prompt-style",
            "completion", "--batch-size", 4, "--samples-per-prompt", 2, "--max-new-tokens", 24,
            "--seed", 0, "--max-rounds", 6, "--out", corpus, "--set", "min_fact_words=1",
            "--set", "only_user_templates=true")
    texts = pd.read_parquet(corpus / "data")
    assert sorted(set(texts["au"])) == list(AUS)
    assert texts.groupby("au").size().min() >= 2

    run_cli("embed", "--corpus", corpus, "--out", bank, "--encoder", tiny_st, "--dtype", "fp32")
    man = json.loads((bank / "manifest.json").read_text())
    assert man["rows_in_corpus"] == len(texts) and man["dim"] == 32
    assert sorted(int(a) for a in man["count_per_au"]) == list(AUS)

    run_cli("data", "synth", "--out", faces, "--subjects", 6, "--per-subject", 4, "--size", 64,
            "--workers", 1, "--no-grid")
    manifest = faces / "manifest.parquet"
    frames = pd.read_parquet(manifest)
    assert len(frames) == 24 and frames["subject"].nunique() == 6

    cfg = dict(model=dict(backbone="resnet18", pretrained="none", input_size=32, d_model=32,
                          num_heads=2, text_mode="corpus"),
               aus=aus, num_folds=3, folds=[1], epochs=1, max_steps_per_epoch=2, batch_size=4,
               num_workers=0, amp="off", val_fraction=0.25, resize=36, tensorboard=False,
               plots=False, progress=False, channels_last=False, eval_text_per_au=2)
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(cfg))
    run_cli("train", "--config", tmp_path / "train.yaml", "--data", manifest, "--text-bank",
            bank, "--out", run)
    from hiva.model.factory import read_checkpoint
    from hiva.textbank import load_text_bank

    mc, meta = read_checkpoint(run / "fold1" / "best.safetensors")
    # the run's model reads this bank: its width, its fingerprint
    assert mc.text_dim == 32 and mc.aus == AUS
    assert meta["text_fingerprint"] == load_text_bank(bank, AUS).fingerprint

    images = sorted((faces / "images").rglob("*.jpg"))[:5]
    assert len(images) == 5
    run_cli("predict", *images, "--checkpoint", run, "--out", tmp_path / "p.csv", "--no-align",
            "--no-progress")
    from hiva.predict.table import read_table

    pred = read_table(tmp_path / "p.csv")
    assert list(pred["input"]) == [str(p) for p in images] and pred["success"].eq(1).all()
    probs = pred[[f"AU{a:02d}_p" for a in AUS]]
    assert probs.notna().all().all() and ((probs >= 0) & (probs <= 1)).all().all()
