"""The optional judge pass of ``hiva generate-descriptions`` (``--judge MODEL``): an LLM rates
each kept description for agreement with its AU's FACS facts on a 1-5 rubric and gives a
one-sentence reason (the pattern of UltraFeedback-style rating prompts: a rubric, then
"Rating: N" and "Rationale: ..."). The score, reason and judge name become the corpus columns
``judge_score``, ``judge_reason`` and ``judge``; ``--min-judge-score N`` drops rows scored below N
(and rows whose reply could not be read).

It runs in the final pass, after dedup over all shards and before the cap at ``per_au``: AU by
AU, rows are judged in the dedup order until ``per_au`` have passed, so a dropped row is replaced
by a surplus one (without a threshold only the rows the corpus keeps are judged). The judge loads
through the generation backends (``--judge`` takes what ``--llm`` takes), decodes greedily, and
its verdicts are cached in ``OUT/.staging/judge/`` as Parquet chunks written atomically, keyed by
sha1(judge fingerprint, prompt hash, description): a killed pass resumes without asking the model
again, nothing doubles, and a rerun with another threshold or a finished run judged afterwards
costs only the rows not judged yet. Prompts: ``hiva/prompts/judge/{chat,completion}.jinja``.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from hiva.corpora.schema import STAGING
from hiva.errors import HivaError
from hiva.facs import AUS
from hiva.pipeline.backends import check_llm, make_generator, select_backend
from hiva.pipeline.backends.base import SamplingConfig, resolve_llm
from hiva.pipeline.prompt_plan import auto_style
from hiva.prompts.render import au_context, packaged_template
from hiva.runtime import atomic_write, write_text_atomic

if TYPE_CHECKING:
    import pandas as pd

    from hiva.pipeline.backends.base import Generator, ModelRef
    from hiva.pipeline.generate_config import GenerateConfig

JUDGE_DIR = "judge"  # under OUT/.staging
UNPARSEABLE = "unparseable judge reply"

# Worked ratings shown to completion-style (small or base) judges, one per rubric level, in our
# own words: (AU, description, rating, rationale). An example of the AU being judged is left out.
EXAMPLES: tuple[tuple[int, str, int, str], ...] = (
    (6, "The cheeks lift and fine wrinkles fan out from the outer eye corners.", 4,
     "It agrees with the facts but leaves out the raised lower eyelid."),
    (9, "A quiet street lined with tall trees under a grey sky.", 1,
     "It does not describe a face at all."),
    (12, "The lip corners are drawn up and out toward the cheekbones, widening the mouth into a "
         "smile.", 5, "Every clause matches the lip corner puller."),
    (4, "The eyebrows lift high and long horizontal wrinkles cross the whole forehead.", 2,
     "It describes raised brows, not brows pulled down and together."),
    (26, "The jaw lowers and the mouth falls open while the lips are stretched tight.", 3,
     "The lowered jaw is right, but tightly stretched lips belong to another action."),
)


# --- reading a reply ---------------------------------------------------------------------------

_RATING = re.compile(r"rating", re.IGNORECASE)
_RANGE = re.compile(r"\b1\s*(?:-|–|to)\s*5\b")  # "(1-5)", "from 1 to 5": the scale, not a rating
_INT = re.compile(r"(?<![\d.])(\d+)(?!\d|\.\d)")
_RATIONALE = re.compile(r"rationale\W*?[:\-–—]\s*(.+)", re.IGNORECASE)
_LEAD = re.compile(r"^\s*(?:/\s*5|out of 5)?[\s\W]*")


def parse_verdict(reply: str) -> tuple[int | None, str | None]:
    """(score, reason) from a judge reply: the score is the first integer 1-5 on the line after
    a "Rating" (the scale itself, "1-5" or "1 to 5", is skipped); the reason is the text after
    "Rationale:" on its line, else what follows the rating on its line, else None. A reply with
    no such rating is (None, UNPARSEABLE)."""
    score, after = None, ""
    for m in _RATING.finditer(reply):
        rest = reply[m.end():].lstrip(" \t*:=#-–—\"'\n")
        line = rest.split("\n", 1)[0][:40]
        scale = [r.span() for r in _RANGE.finditer(line)]
        found = next((f for f in _INT.finditer(line)
                      if not any(a <= f.start() < b for a, b in scale)), None)
        if found is None:
            continue
        n = int(found.group(1))
        if 1 <= n <= 5:
            score = n
            after = rest[found.end():]
            break
    if score is None:
        return None, UNPARSEABLE
    why = _RATIONALE.search(after)
    reason = why.group(1) if why else _LEAD.sub("", after.split("\n", 1)[0])
    reason = reason.split("\n", 1)[0].strip().strip("*\"' ").strip()
    return score, (reason[:300] or None) if re.search(r"[A-Za-z]", reason) else None


# --- prompts -----------------------------------------------------------------------------------

def judge_templates():
    """{style: Template} of the built-in judge prompts."""
    return {k: packaged_template(f"judge/{k}.jinja", f"judge.{k}", k)
            for k in ("chat", "completion")}


def render_judge_prompt(au: int, description: str, style: str):
    """The judge prompt for one description of ``au``: a text (completion) or chat messages."""
    examples = [{"au": au_context(AUS[a]), "description": d, "rating": r, "rationale": why}
                for a, d, r, why in EXAMPLES if a != au]
    text = judge_templates()[style].render(au=au_context(AUS[au]), description=description,
                                           examples=examples)
    return text if style == "completion" else [{"role": "user", "content": text}]


# --- the model ---------------------------------------------------------------------------------

def _as_judge(e: HivaError) -> HivaError:
    """The backends' messages name --llm; for the judge's model they name --judge."""
    return HivaError(str(e).replace("--llm", "--judge"))


def judge_ref(cfg: GenerateConfig) -> ModelRef | None:
    """The judge's weights, checked like --llm's before anything is touched (None: no judge)."""
    if cfg.judge is None:
        return None

    try:
        return check_llm(resolve_llm(cfg.judge))
    except HivaError as e:
        raise _as_judge(e) from None


def same_model(cfg: GenerateConfig, gen: Generator | None, ref: ModelRef | None) -> bool:
    """Whether the loaded generator ``gen`` is the judge's model on the judge's backend, so the
    judge pass can use it instead of loading the weights a second time."""
    if gen is None or ref is None or getattr(gen, "model", None) is None:
        return False

    own = getattr(gen, "ref", None)
    return (own is not None and (own.path, own.gguf_file) == (ref.path, ref.gguf_file)
            and select_backend(cfg.judge_backend or cfg.backend) == gen.backend)


def make_judge(cfg: GenerateConfig, ref: ModelRef) -> Generator:
    return make_generator(
        select_backend(cfg.judge_backend or cfg.backend), ref, device=cfg.device,
        dtype=cfg.dtype, tensor_parallel_size=cfg.tensor_parallel_size,
        trust_remote_code=cfg.trust_remote_code, seed=cfg.seed,
    )


# --- the cache ---------------------------------------------------------------------------------

def _sha1(*parts: Any) -> str:
    return hashlib.sha1("\x1f".join(map(str, parts)).encode()).hexdigest()


class JudgeCache:
    """Verdicts by key, read from and added to ``folder`` as Parquet chunks (one per judged
    batch, named by its keys, written atomically): a chunk is there whole or not at all."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.entries: dict[str, dict] = {}
        for f in sorted(folder.glob("c-*.parquet")):
            try:
                rows = pq.read_table(f).to_pylist()
            except Exception:  # not readable: its rows are judged again, the file replaced
                continue
            self.entries.update((r["key"], r) for r in rows)

    def put(self, records: list[dict]) -> None:
        schema = pa.schema([("key", pa.string()), ("score", pa.int8()), ("reason", pa.string()),
                            ("reply", pa.string()), ("seconds", pa.float64()),
                            ("judge", pa.string()), ("fingerprint", pa.string())])
        table = pa.Table.from_pylist(records, schema=schema)
        name = _sha1(*(r["key"] for r in records))[:20]
        atomic_write(self.folder / f"c-{name}.parquet", lambda p: pq.write_table(table, p))
        self.entries.update((r["key"], r) for r in records)


class Judge:
    """One judge model with its settings and its cache in ``OUT/.staging/judge``. The model is
    loaded only when a description must be judged (or ``auto`` must pick the prompt style);
    ``gen`` may be an already loaded generator (then it is left loaded)."""

    def __init__(self, cfg: GenerateConfig, out: Path, gen: Generator | None = None,
                 ref: ModelRef | None = None):
        self.cfg = cfg
        self.folder = Path(out) / STAGING / JUDGE_DIR
        self.folder.mkdir(parents=True, exist_ok=True)
        self._own = gen is None
        if gen is None:
            gen = make_judge(cfg, ref if ref is not None else judge_ref(cfg))
        self.gen = gen
        self.cache = JudgeCache(self.folder)
        self._style: str | None = None
        self.calls = 0  # generate calls made by this pass (resume checks)

    @property
    def name(self) -> str:
        return self.gen.name

    def fingerprint(self) -> str:
        return self.gen.fingerprint()

    def _load(self) -> None:
        if self.gen.model is None:
            try:
                self.gen.load()
            except HivaError as e:
                raise _as_judge(e) from None

    def style(self) -> str:
        """chat or completion; ``auto`` decides as for generation (chat for chat models of 1B+
        parameters) and is remembered per judge, so a resumed pass need not load the model."""
        if self._style is None:
            style = self.cfg.judge_prompt_style
            if style == "auto":
                f = self.folder / ("style-" + re.sub(r"[^\w.-]", "-", self.fingerprint()))
                if f.exists():
                    style = f.read_text().strip()
                else:
                    self._load()
                    style = auto_style(self.gen)
                    write_text_atomic(f, style)
            self._style = style
        return self._style

    def sampling(self):
        return SamplingConfig(n=1, temperature=0.0, top_p=1.0, seed=self.cfg.seed,
                              max_new_tokens=self.cfg.judge_max_new_tokens,
                              stop=("\n\n",) if self.style() == "completion" else ())

    def verdicts(self, items: list[tuple[int, str]], bar=None) -> list[dict]:
        """A cache record (score, reason, reply, seconds, ...) per (au, description): cached
        ones read back, the others judged in batches of ``judge_batch_size`` and cached batch
        by batch."""
        style, sampling = self.style(), self.sampling()
        fp = self.fingerprint()
        prompts = [render_judge_prompt(au, text, style) for au, text in items]
        keys = []
        for (_, text), prompt in zip(items, prompts):
            phash = _sha1(json.dumps(prompt, sort_keys=True), sampling.max_new_tokens,
                          sampling.stop)[:16]
            keys.append(_sha1(fp, phash, text))
        todo = sorted({k: i for i, k in reversed(list(enumerate(keys)))
                       if k not in self.cache.entries}.values(),
                      key=lambda i: len(json.dumps(prompts[i])))  # similar lengths: less padding
        if bar is not None:
            bar.update(len(items) - len(todo))
        size = self.cfg.judge_batch_size
        for b in range(0, len(todo), size):
            batch = todo[b:b + size]
            self._load()
            t0 = time.perf_counter()
            replies = self.gen.generate([prompts[i] for i in batch], sampling)
            seconds = (time.perf_counter() - t0) / len(batch)
            self.calls += 1
            records = []
            for i, reps in zip(batch, replies):
                reply = reps[0] if reps else ""
                score, reason = parse_verdict("Rating:" + reply if style == "completion"
                                              else reply)
                records.append({"key": keys[i], "score": score, "reason": reason,
                                "reply": reply, "seconds": seconds, "judge": self.name,
                                "fingerprint": fp})
            self.cache.put(records)
            if bar is not None:
                bar.update(len(batch))
        return [self.cache.entries[k] for k in keys]

    def close(self) -> None:
        if self._own and self.gen.model is not None:
            self.gen.unload()


def judge_and_select(kept: pd.DataFrame, cfg: GenerateConfig, out: Path,
                     gen: Generator | None = None, ref: ModelRef | None = None,
                     ) -> tuple[pd.DataFrame, dict]:
    """Up to ``per_au`` rows per AU of ``kept`` (in its order), judged, with the judge columns
    filled; with ``min_judge_score`` rows below it (or unscored) are skipped and the next rows
    of the AU judged instead. Returns (rows in ``kept``'s order, the manifest's "judge" part)."""
    import pandas as pd
    from tqdm import tqdm

    judge = Judge(cfg, out, gen, ref)
    groups: dict[int, list[int]] = {}
    for i, au in enumerate(kept["au"].tolist()):
        groups.setdefault(int(au), []).append(i)
    taken: dict[int, list[int]] = {au: [] for au in groups}
    pos = dict.fromkeys(groups, 0)
    verdict: dict[int, dict] = {}
    texts = kept["text"].tolist()

    def passes(v: dict) -> bool:
        low = cfg.min_judge_score
        return low is None or (v["score"] is not None and v["score"] >= low)

    bar = tqdm(total=0, unit="desc", desc="judge", dynamic_ncols=True, smoothing=0.1)
    try:
        while True:  # waves: each AU's next rows, as many as it still lacks
            wave = []
            for au, idx in groups.items():
                need = cfg.per_au - len(taken[au])
                if need > 0:
                    nxt = idx[pos[au]:pos[au] + need]
                    pos[au] += len(nxt)
                    wave += nxt
            if not wave:
                break
            bar.total += len(wave)
            bar.refresh()
            for i, v in zip(wave, judge.verdicts([(int(kept["au"].iat[i]), texts[i])
                                                  for i in wave], bar)):
                verdict[i] = v
                if passes(v):
                    taken[int(kept["au"].iat[i])].append(i)
    finally:
        bar.close()
        judge.close()
    keep = sorted(i for rows in taken.values() for i in rows)
    rows = kept.iloc[keep].reset_index(drop=True)
    rows["judge_score"] = pd.array([verdict[i]["score"] for i in keep], dtype="Int8")
    rows["judge_reason"] = [verdict[i]["reason"] for i in keep]
    rows["judge"] = judge.name
    scores = [v["score"] for v in verdict.values()]
    low = cfg.min_judge_score
    info = {
        "model": judge.name,
        "fingerprint": judge.fingerprint(),
        "backend": judge.gen.backend,
        "prompt_style": judge._style,  # None when nothing had to be judged
        "template_hash": judge_templates()[judge._style].hash if judge._style else None,
        "max_new_tokens": cfg.judge_max_new_tokens,
        "min_score": low,
        "judged": len(verdict),
        "scored": sum(s is not None for s in scores),
        "unparseable": sum(s is None for s in scores),
        "score_counts": {str(k): scores.count(k) for k in range(1, 6)},
        "mean_score": (round(sum(s for s in scores if s is not None)
                             / max(1, sum(s is not None for s in scores)), 3)
                       if any(s is not None for s in scores) else None),
        "dropped_below": sum(s is not None and s < low for s in scores) if low else 0,
        "dropped_unscored": sum(s is None for s in scores) if low else 0,
        "seconds": round(sum(v["seconds"] or 0.0 for v in verdict.values()), 1),
    }
    return rows, info
