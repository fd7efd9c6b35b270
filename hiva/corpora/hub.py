"""Sharing corpora as Hugging Face datasets: ``export`` (local folder), ``push`` (Hub), the card.

Reads a corpus (local folder, exported folder or Hub id, via ``load_corpus``) and its
``_manifest.json`` / ``_config.yaml`` when local. Writes the Hub layout::

    README.md                              dataset card (YAML front matter lists every config)
    data/<config>/train-00000-of-00001.parquet   rows with CORPUS_SCHEMA
    hiva/<config>/_manifest.json, _config.yaml   how each config was made

Exporting or pushing a second corpus under another ``config_name`` adds a config and keeps the
others, so one dataset can hold e.g. one config per LLM.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow.parquet as pq

from hiva import CITATION
from hiva.corpora.io import load_corpus, read_corpus_manifest, to_table
from hiva.corpora.schema import CONFIG, CORPUS_SCHEMA, MANIFEST, SCHEMA_VERSION
from hiva.errors import HivaError
from hiva.hub import hub_offline_reason, offline_setting
from hiva.runtime import (
    atomic_write,
    claim_dir,
    entries,
    release_dir,
    require_dir_path,
    write_text_atomic,
)

if TYPE_CHECKING:
    import pandas as pd

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def default_config_name(manifest: dict) -> str:
    """A config name from the LLM (e.g. ``SmolLM2-135M-Instruct``) or ``default``."""
    llm = manifest.get("llm") or ""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(str(llm)).name).strip("-.")
    return name or "default"


def _check_name(name: str) -> str:
    if not _NAME.match(name):
        raise HivaError(
            f"config name {name!r} is not valid; use letters, digits, '_', '-', '.' "
            "(e.g. --config-name smollm2)"
        )
    return name


def size_category(n: int) -> str:
    for hi, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                      (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")):
        if n < hi:
            return label
    return "10M<n<100M"


def _dataset_info(names: list[str]) -> list[dict]:
    """Features per config in the card, so ``load_dataset`` types the columns as CORPUS_SCHEMA
    (Parquet alone turns timestamp[s] into timestamp[ms]): the card's ``features`` list, one
    ``{name, dtype}`` per column, each dtype the ``datasets.Value`` of the column's Arrow type
    (every corpus column is a plain value)."""
    import datasets

    feats = datasets.Features.from_arrow_schema(CORPUS_SCHEMA)
    cols = []
    for name, f in feats.items():
        if not isinstance(f, datasets.Value):  # a nested column would need the nested form
            raise TypeError(f"corpus column {name} is {type(f).__name__}, not a plain value")
        cols.append({"name": name, "dtype": f.dtype})
    return [{"config_name": n, "features": cols} for n in names]


def _card_body(configs: dict[str, dict], pretty_name: str, repo_hint: str) -> str:
    """Markdown body: one section per config from its manifest."""
    lines = [f"# {pretty_name}", "",
             "Machine-written descriptions of facial Action Units (FACS), one row per kept "
             "description, made with hiva's `generate-descriptions` for language-prior AU "
             "detection (HiVA, arXiv 2602.14425).", "",
             "```python", "from datasets import load_dataset", ""]
    for name in configs:
        lines.append(f'ds = load_dataset("{repo_hint}", "{name}", split="train")')
    lines += ["```", ""]
    for name, m in configs.items():
        lines += [f"## Config `{name}`", ""]
        lines.append(f"- LLM: `{m.get('llm')}` (fingerprint `{m.get('llm_fingerprint')}`), "
                     f"backend `{m.get('backend')}`")
        lines.append(f"- Rows: {m.get('rows')} over {len(m.get('aus') or [])} AUs; "
                     f"created {m.get('created_at')}")
        s = m.get("sampling") or {}
        if s:
            lines.append("- Sampling: " + ", ".join(f"{k}={v}" for k, v in s.items()))
        t = m.get("templates") or {}
        if t:
            lines.append("- Templates (id: hash): "
                         + ", ".join(f"`{k}`: `{v}`" for k, v in t.items()))
        if m.get("axes"):
            lines.append("- Axes: " + ", ".join(str(a) for a in m["axes"]))
        f = m.get("filters") or {}
        lines.append("- Filtered out: " + (", ".join(f"{k}: {v}" for k, v in f.items()) or "none"))
        j = m.get("judge") or {}
        if j:
            low = j.get("min_score")
            lines.append(
                f"- Judge: `{j.get('model')}` (fingerprint `{j.get('fingerprint')}`) rated "
                f"{j.get('judged')} rows, scores " + ", ".join(
                    f"{k}: {v}" for k, v in (j.get("score_counts") or {}).items())
                + f", {j.get('unparseable')} unparseable"
                + (f"; rows scored below {low} dropped" if low else "; no row dropped"))
        d = m.get("dedup") or {}
        if d:
            lines.append("- Dedup: " + ", ".join(f"{k}: {v}" for k, v in d.items()))
        if m.get("sources"):
            lines.append("- Merged from: " + ", ".join(
                f"`{s.get('spec')}` ({s.get('llm')}, {s.get('rows')} rows)" for s in m["sources"]))
        if m.get("config_hash"):
            lines.append(f"- Generation config hash: `{m['config_hash']}`")
        lines += ["", "Reproduce (the config is in `hiva/" + name + "/_config.yaml`):", "",
                  "```bash", f"hiva generate-descriptions --config hiva/{name}/_config.yaml "
                  "--out corpus", "```", ""]
    lines += ["## Schema", "", "| column | type |", "|---|---|"]
    lines += [f"| {f.name} | {f.type} |" for f in CORPUS_SCHEMA]
    lines += ["", "`axes` is a JSON object (axis name -> value) of the prompt that produced the "
              "row; `text_hash` is the sha1 of the normalised text used for dedup. "
              "`judge_score` (1-5) and `judge_reason` are an LLM judge's rating of the row "
              "against the AU's FACS facts and its one-sentence reason (`judge` names the "
              "judge model); all three are null where no judge pass ran.", "",
              "## Limitations", "",
              "Every description is machine-generated by the LLM named above and was filtered "
              "only automatically (length, language, AU-name and dedup checks). Descriptions "
              "can be wrong, vague or name the wrong muscle; run `hiva corpus stats` and read "
              "samples before training on them. Not for clinical or diagnostic use without "
              "expert review.", "", "## Citation", "", "```bibtex", CITATION, "```", ""]
    return "\n".join(lines)


def build_card(configs: dict[str, dict], *, license: str = "cc-by-4.0",
               pretty_name: str = "HiVA AU description corpus", repo_hint: str = "OWNER/NAME"):
    """A ``huggingface_hub.DatasetCard`` for ``configs`` = {config name: manifest}."""
    from huggingface_hub import DatasetCard, DatasetCardData

    total = sum(int(m.get("rows") or 0) for m in configs.values())
    data = DatasetCardData(
        license=license,
        language=["en"],
        pretty_name=pretty_name,
        task_categories=["text-classification", "feature-extraction"],
        size_categories=[size_category(total)],
        annotations_creators=["machine-generated"],
        language_creators=["machine-generated"],
        source_datasets=["original"],
        tags=["facs", "action-units", "facial-expression", "synthetic", "hiva"],
        # The first config is the default: load_dataset(repo) without a config name reads it.
        configs=[{"config_name": n, **({"default": True} if i == 0 else {}),
                  "data_files": [{"split": "train", "path": f"data/{n}/train-*.parquet"}]}
                 for i, n in enumerate(configs)],
        dataset_info=_dataset_info(list(configs)),
        hiva={n: {k: m.get(k) for k in ("llm", "llm_fingerprint", "backend", "rows",
                                          "config_hash", "sampling", "filters", "dedup",
                                          "schema_version", "judge")}
              for n, m in configs.items()},
    )
    return DatasetCard(f"---\n{data.to_yaml()}\n---\n\n"
                       + _card_body(configs, pretty_name, repo_hint))


def _existing_configs(card_text: str | None, manifests: dict[str, dict]) -> dict[str, dict]:
    """Configs already described by a card ({name: manifest}), so adding one keeps the others."""
    if not card_text:
        return {}
    from huggingface_hub import DatasetCard

    data = DatasetCard(card_text).data.to_dict()
    known = data.get("hiva") or {}
    out = {}
    for c in data.get("configs") or []:
        n = c.get("config_name")
        if n:
            out[n] = manifests.get(n) or known.get(n) or {}
    return out


def _load(spec: str | Path, source_config: str | None) -> tuple[pd.DataFrame, dict, Path | None]:
    df = load_corpus(spec, source_config)
    p = Path(spec)
    local = p if p.is_dir() else None
    manifest = read_corpus_manifest(p) if local else {}
    if not manifest:  # exported folder or Hub: fall back on what the rows say
        manifest = {"llm": df["llm"].iloc[0] if len(df) else None,
                    "llm_fingerprint": df["llm_fingerprint"].iloc[0] if len(df) else None,
                    "backend": df["backend"].iloc[0] if len(df) else None}
    manifest = dict(manifest)
    manifest["rows"] = int(len(df))
    # The rows are written as current ones (``to_table``): an older corpus' manifest says so.
    old = manifest.get("schema_version")
    if old is not None and old != SCHEMA_VERSION:
        manifest["upgraded_from_schema_version"] = old
    manifest["schema_version"] = SCHEMA_VERSION
    manifest.setdefault("aus", sorted(int(a) for a in df["au"].unique()))
    return df, manifest, local


def export(spec: str | Path, out: str | Path, config_name: str | None = None,
           license: str | None = None, source_config: str | None = None) -> dict[str, Any]:
    """Write ``spec`` into ``out`` in the Hub layout (adds/replaces one config); returns a summary.

    ``datasets.load_dataset(out, config_name)`` then loads it."""
    out = require_dir_path(out, "--to")
    df, manifest, local = _load(spec, source_config)
    name = _check_name(config_name or default_config_name(manifest))
    if local is not None and out.resolve() == local.resolve():
        raise HivaError(f"--to {out} is the corpus itself; export into another folder")
    # New, empty, an earlier export (the card and data/<config> are replaced, a user's files
    # never are), or one a killed export left half written: its rerun takes it back.
    claim_dir(out, "--to", "`hiva corpus export`", _is_export, entries)
    ddir = out / "data" / name
    if ddir.exists():
        shutil.rmtree(ddir)  # re-export replaces this config, never doubles it
    ddir.mkdir(parents=True)
    table = to_table(df)
    atomic_write(ddir / "train-00000-of-00001.parquet", lambda p: pq.write_table(table, p))
    hdir = out / "hiva" / name
    hdir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(hdir / MANIFEST, json.dumps(manifest, indent=2, default=str))
    if local is not None and (local / CONFIG).exists():
        shutil.copyfile(local / CONFIG, hdir / CONFIG)
    readme = out / "README.md"
    old = readme.read_text() if readme.exists() else None
    configs = _existing_configs(old, _manifests_in(out))
    configs[name] = manifest
    build_card(configs, license=license or _license(old),
               repo_hint=str(out)).save(readme)
    release_dir(out)
    return {"out": str(out), "config_name": name, "rows": int(len(df)),
            "configs": list(configs)}


def _is_export(out: Path) -> bool:
    """``out`` is an earlier export: its README.md is a card this module wrote."""
    readme = out / "README.md"
    if not readme.is_file():
        return False
    try:
        from huggingface_hub import DatasetCard

        return "hiva" in DatasetCard(readme.read_text()).data.to_dict()
    except Exception:  # not a card at all
        return False


def _license(card_text: str | None) -> str:
    """The license of an existing card (kept when another config is added), else cc-by-4.0."""
    if card_text:
        from huggingface_hub import DatasetCard

        lic = DatasetCard(card_text).data.license
        if lic:
            return lic
    return "cc-by-4.0"


def _manifests_in(out: Path) -> dict[str, dict]:
    res = {}
    for f in sorted((out / "hiva").glob(f"*/{MANIFEST}")):
        try:
            res[f.parent.name] = json.loads(f.read_text())
        except ValueError:
            continue
    return res


def require_push_access(repo_id: str, hint: str) -> None:
    """Fail in one line, before any work, when a push cannot succeed: offline mode or no token.
    ``hint`` says what to do instead (export locally, push later)."""
    if why := offline_setting():
        raise HivaError(f"cannot push to {repo_id}: {why} (offline); unset it "
                        f"when online and log in (`hf auth login`); {hint}")
    from huggingface_hub import get_token

    if not get_token():
        raise HivaError(f"cannot push to {repo_id}: not logged in to the Hugging Face Hub; run "
                        f"`hf auth login` (or set HF_TOKEN); {hint}")

    reason = hub_offline_reason()  # seconds, not a minute of retried uploads
    if reason is not None:
        raise HivaError(f"cannot push to {repo_id}: {reason}; {hint}")


def push(spec: str | Path, repo_id: str, config_name: str | None = None, private: bool = False,
         license: str | None = None, source_config: str | None = None) -> dict[str, Any]:
    """Push ``spec`` to the Hub as config ``config_name`` of dataset ``repo_id`` with a card."""
    if "/" not in repo_id:
        raise HivaError(f"--repo-id {repo_id} must be OWNER/NAME, e.g. my-lab/au-descriptions")
    export_hint = "or share without the Hub: `hiva corpus export DIR --to OUT`"
    require_push_access(repo_id, export_hint)
    import datasets
    from huggingface_hub import DatasetCard, HfApi

    df, manifest, local = _load(spec, source_config)
    name = _check_name(config_name or default_config_name(manifest))
    try:
        ds = datasets.Dataset(to_table(df))
        ds.push_to_hub(repo_id, config_name=name, data_dir=f"data/{name}", private=private)
        api = HfApi()
        api.upload_file(path_or_fileobj=json.dumps(manifest, indent=2, default=str).encode(),
                        path_in_repo=f"hiva/{name}/{MANIFEST}", repo_id=repo_id,
                        repo_type="dataset")
        if local is not None and (local / CONFIG).exists():
            api.upload_file(path_or_fileobj=str(local / CONFIG),
                            path_in_repo=f"hiva/{name}/{CONFIG}", repo_id=repo_id,
                            repo_type="dataset")
        try:
            old = DatasetCard.load(repo_id, repo_type="dataset").content
        except Exception:  # a fresh repo may have no card yet
            old = None
        configs = _existing_configs(old, {})
        configs[name] = manifest
        build_card(configs, license=license or _license(old),
                   repo_hint=repo_id).push_to_hub(repo_id)
    except HivaError:
        raise
    except Exception as e:  # network / auth / permission: one line with the way out
        msg = str(e).splitlines()[0] if str(e) else ""
        raise HivaError(f"push to {repo_id} failed ({type(e).__name__}: {msg}); check that you "
                        f"are online and `hf auth login` has write access, {export_hint}") from None
    return {"repo_id": repo_id, "config_name": name, "rows": int(len(df))}
