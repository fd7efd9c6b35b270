"""generate-descriptions with bad input: everything checked before --out is touched, --overwrite
removes only a corpus hiva wrote, unused templates named, template errors as one line, chunk
seeds seen directly, and no minute of retries without network."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from hiva.corpora.schema import MANIFEST
from hiva.errors import HivaError
from hiva.pipeline.generate import run
from hiva.pipeline.generate_config import GenerateConfig

HIVA = [sys.executable, "-m", "hiva.cli"]
TEMPLATE = "Action: {{ au.name }}. Cues: {{ au.appearance | join('; ') }}.\nNote:"


class RecordingGenerator:
    """A stand-in backend (no model): records the sampling seed of every call and answers with
    a grounded sentence per sample, varied by the seed so dedup keeps some."""

    name, backend, model = "recorder", "fake", object()

    def __init__(self):
        self.seeds: list[int] = []

    def fingerprint(self):
        return "fake:0"

    def is_chat(self):
        return False

    def num_parameters(self):
        return 1000

    def load(self):
        pass

    def unload(self):
        pass

    def count_tokens(self, texts):
        return sum(len(t.split()) for t in texts)

    def generate(self, prompts, sampling):
        self.seeds.append(sampling.seed)
        out = []
        for p in prompts:
            cue = p.split("Cues: ")[1].split(";")[0].split(".")[0]
            out.append([f" In face number {sampling.seed % 997} variant {i}, {cue}."
                        for i in range(sampling.n)])
        return out


def _tdir(tmp_path, **files):
    d = tmp_path / "tpl"
    d.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (d / name).write_text(text)
    return d


def _cfg(out, templates, **kw):
    base = dict(out=str(out), aus=(1, 4, 12), per_au=3, backend="transformers",
                templates=str(templates), only_user_templates=True,
                prompt_style="completion", batch_size=1, samples_per_prompt=2,
                min_fact_words=1, max_rounds=3, seed=7)
    base.update(kw)
    return GenerateConfig(**base)


def test_chunk_seeds_differ_within_a_round_and_reach_the_backend(tmp_path):
    tdir = _tdir(tmp_path, **{"s.completion.jinja": TEMPLATE})
    gen = RecordingGenerator()
    # per_au above what 3 rounds can give: every round plans one 1-prompt chunk per AU
    run(_cfg(tmp_path / "c", tdir, per_au=50), generator=gen)
    staging = tmp_path / "c" / ".staging" / "shard-000"
    done = sorted(staging.glob("r*-c*.done"))
    by_round: dict[str, list[int]] = {}
    for f in done:
        by_round.setdefault(f.name[:4], []).append(json.loads(f.read_text())["seed"])
    assert sorted(by_round) == ["r000", "r001", "r002"]
    assert all(len(seeds) == 3 for seeds in by_round.values())
    for seeds in by_round.values():
        assert len(set(seeds)) == len(seeds)  # chunks of one round: distinct seeds
    every = [s for f in done for s in [json.loads(f.read_text())["seed"]]]
    assert len(set(every)) == len(every) == 9
    assert gen.seeds == every  # what was recorded is what the backend got, in chunk order
    again = RecordingGenerator()
    run(_cfg(tmp_path / "c2", tdir, per_au=50), generator=again)
    assert again.seeds == gen.seeds  # and they derive from the run's settings alone


def test_overwrite_never_removes_a_folder_hiva_did_not_write(tmp_path):
    out = tmp_path / "d"
    out.mkdir()
    (out / "thesis.tex").write_text("\\chapter{One}")
    tdir = _tdir(tmp_path, **{"s.completion.jinja": TEMPLATE})
    # the case: a bad --llm with --overwrite; the --llm check fails first, nothing gone
    with pytest.raises(HivaError, match="does not exist"):
        run(_cfg(out, tdir, llm="/nonexistent/model.gguf", overwrite=True))
    # a good run is refused too: the folder is not a corpus
    for kw in ({"overwrite": True}, {}):
        with pytest.raises(HivaError, match=r"not a corpus folder made by hiva \(it holds "
                                            r"thesis\.tex\)"):
            run(_cfg(out, tdir, **kw), generator=RecordingGenerator())
    assert [p.name for p in out.iterdir()] == ["thesis.tex"]


def test_overwrite_checks_everything_before_removing_a_corpus(tmp_path):
    out = tmp_path / "c"
    tdir = _tdir(tmp_path, **{"s.completion.jinja": TEMPLATE})
    first = run(_cfg(out, tdir), generator=RecordingGenerator())
    assert first["rows"] > 0
    (out / "notes.txt").write_text("mine")
    manifest = (out / MANIFEST).read_text()
    bad_llm = tmp_path / "model"  # a folder with config.json and no weights: loading fails
    bad_llm.mkdir()
    (bad_llm / "config.json").write_text('{"model_type": "llama"}')
    broken = _tdir(tmp_path / "x", **{"s.completion.jinja": "{{ au.nmae }}"})
    for kw, msg in (({"llm": "/nonexistent/model.gguf"}, "does not exist"),
                    ({"llm": str(bad_llm)}, "are not available here"),
                    ({"templates": str(broken)}, "undefined variable")):
        with pytest.raises(HivaError, match=msg):
            run(_cfg(out, kw.pop("templates", tdir), overwrite=True, temperature=0.3, **kw))
        assert (out / MANIFEST).read_text() == manifest, kw  # the corpus is still there
    again = run(_cfg(out, tdir, overwrite=True, temperature=0.3), generator=RecordingGenerator())
    assert again["config"]["temperature"] == 0.3
    assert (out / "notes.txt").read_text() == "mine"  # --overwrite removed only hiva's files


@pytest.mark.parametrize("source, expect", [
    ("{{ au.nmae }}", r"s\.completion\.jinja uses an undefined variable \('dict object' has "
                      r"no attribute 'nmae'\); the variables are au \(number, code, name"),
    ("{{ ''.__class__.__mro__[1].__subclasses__() }}",
     r"s\.completion\.jinja was stopped by the sandbox \(access to attribute '__class__' of "
     r"'str' object is unsafe\.\)"),
    ("{{ au.name | nosuchfilter }}", r"s\.completion\.jinja has a Jinja syntax error"),
])
def test_template_errors_are_one_line_before_any_work(tmp_path, source, expect):
    tdir = _tdir(tmp_path, **{"s.completion.jinja": source})
    gen = RecordingGenerator()
    with pytest.raises(HivaError, match=expect):
        run(_cfg(tmp_path / "c", tdir), generator=gen)
    assert not (tmp_path / "c").exists() and gen.seeds == []


def test_template_error_only_in_one_branch_is_found_before_any_work(tmp_path):
    source = TEMPLATE + "{% if axes.intensity == 'E' %}{{ au.strength }}{% endif %}"
    tdir = _tdir(tmp_path, **{"s.completion.jinja": source})
    with pytest.raises(HivaError, match="undefined variable"):
        run(_cfg(tmp_path / "c", tdir), generator=RecordingGenerator())
    assert not (tmp_path / "c").exists()


def test_chat_templates_unused_by_a_completion_style_are_named(tmp_path, capsys):
    only_chat = _tdir(tmp_path, **{"mine.chat.jinja": "Describe {{ au.name }}."})
    with pytest.raises(HivaError, match=r"--templates .*tpl holds only chat templates "
                                        r"\(mine\.chat\.jinja\) but the prompt style is completion "
                                        r"\(from --prompt-style\).*pass --prompt-style chat"):
        run(_cfg(tmp_path / "c", only_chat, only_user_templates=False),
            generator=RecordingGenerator())
    assert not (tmp_path / "c").exists()
    both = _tdir(tmp_path / "b", **{"mine.chat.jinja": "Describe {{ au.name }}.",
                                    "other.completion.jinja": TEMPLATE})
    run(_cfg(tmp_path / "c2", both, per_au=1), generator=RecordingGenerator())
    err = capsys.readouterr().err
    assert "hiva: warning: template " in err
    assert f"{both / 'mine.chat.jinja'} is not used: the prompt style is completion" in err
    assert f"reads {both / 'mine.completion.jinja'} and there is none" in err


def test_auto_style_on_a_small_model_names_the_unused_chat_template(tmp_path, tiny_llm):
    only_chat = _tdir(tmp_path, **{"mine.chat.jinja": "Describe {{ au.name }}."})
    with pytest.raises(HivaError, match=r"holds only chat templates \(mine\.chat\.jinja\) but "
                                        r"the prompt style is completion \(chosen by "
                                        r"--prompt-style auto: .* is not a chat model of 1B\+"):
        run(_cfg(tmp_path / "c", only_chat, prompt_style="auto", only_user_templates=False,
                 llm=str(tiny_llm)))


def test_read_only_out(tmp_path, read_only_dir):
    ro = read_only_dir
    tdir = _tdir(tmp_path, **{"s.completion.jinja": TEMPLATE})
    with pytest.raises(HivaError, match=r"cannot write into --out .*ro \(Permission denied\)"):
        run(_cfg(ro, tdir), generator=RecordingGenerator())
    with pytest.raises(HivaError, match=r"cannot create --out .*ro/c \(Permission denied\)"):
        run(_cfg(ro / "c", tdir), generator=RecordingGenerator())


def test_truncated_gguf_is_one_line(tmp_path):
    from hiva.pipeline.backends.base import SHIPPED_GGUF, shipped_llm_folder

    src = shipped_llm_folder() / SHIPPED_GGUF
    cut = tmp_path / "cut.gguf"
    with open(src, "rb") as f:
        cut.write_bytes(f.read(4 << 20))  # header and vocabulary, no tensor data
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HIVA_CACHE": str(tmp_path / "cache")}
    p = subprocess.run([*HIVA, "generate-descriptions", "--out", str(tmp_path / "c"), "--llm",
                        str(cut)], env=env, capture_output=True, text=True, timeout=120)
    err = p.stderr.strip().splitlines()
    assert p.returncode == 1 and len(err) == 1 and "Traceback" not in p.stderr, p.stderr
    assert f"GGUF file {cut} (4194304 bytes) cannot be read" in err[0]
    assert "truncated or damaged" in err[0]
    assert not (tmp_path / "c").exists()


def test_hub_model_without_network_fails_in_seconds(tmp_path, no_hub_env):
    """No HF_HUB_OFFLINE and no network (the endpoint is a closed port): the one-line error at
    once, not after two look-ups of five retries each (about a minute)."""
    env = dict(no_hub_env)
    t0 = time.monotonic()
    p = subprocess.run([*HIVA, "generate-descriptions", "--out", str(tmp_path / "c"), "--llm",
                        "llama3"], env=env, capture_output=True, text=True, timeout=120)
    took = time.monotonic() - t0
    err = p.stderr.strip().splitlines()
    assert p.returncode == 1 and len(err) == 1 and "Retry" not in p.stderr, p.stderr
    assert "weights for --llm llama3 (meta-llama/Llama-3.1-8B-Instruct) are not available here" \
           in err[0] and "is not reachable" in err[0]
    assert not (tmp_path / "c").exists()
    assert took < 30, took  # imports included


@pytest.mark.parametrize("status, reachable", [(200, True), (404, True), (503, False)])
def test_hub_probe_reads_the_answer(monkeypatch, status, reachable):
    """Any answer of the server means the Hub is there; a 5xx (a proxy that cannot get through)
    means it is not, or the Hub client would retry for a minute."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from hiva import hub

    class Handler(BaseHTTPRequestHandler):
        def do_HEAD(self):
            self.send_response(status)
            self.end_headers()

        def log_message(self, *a):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
        monkeypatch.setattr(hub, "_memo", {})
        reason = hub.hub_offline_reason()
    finally:
        server.shutdown()
    assert (reason is None) == reachable, reason
    if not reachable:
        assert f"127.0.0.1:{server.server_port} is not reachable: HTTP 503" in reason
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub.hub_offline_reason() == "HF_HUB_OFFLINE=1 (offline mode)"


@pytest.mark.parametrize("var,value", [("HF_HUB_OFFLINE", "true"), ("HF_HUB_OFFLINE", "YES"),
                                       ("TRANSFORMERS_OFFLINE", "1"), ("HF_HUB_OFFLINE", "0")])
def test_offline_mode_is_read_as_huggingface_hub_reads_it(monkeypatch, var, value):
    from hiva import hub
    from hiva.corpora.hub import require_push_access
    from hiva.errors import HivaError

    for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv(var, value)
    on = value != "0"
    assert hub.offline_mode() is on
    if on:
        assert hub.hub_offline_reason() == f"{var}={value} (offline mode)"
        with pytest.raises(HivaError, match=f"cannot push to me/x: {var}={value} \\(offline\\)"):
            require_push_access("me/x", "export locally")


def test_hub_model_in_the_local_cache_is_used_without_network(tmp_path, tiny_llm, no_hub_env):
    """No network, no HF_HUB_OFFLINE, the model in the local Hub cache: it is loaded from there
    at once (no retried look-ups) and the run completes."""
    import shutil

    commit = "0" * 40
    repo = tmp_path / "hf" / "hub" / "models--someone--tiny-llama"
    shutil.copytree(tiny_llm, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    tdir = _tdir(tmp_path, **{"s.completion.jinja": TEMPLATE})
    cfg = tmp_path / "g.yaml"
    cfg.write_text("min_fact_words: 1\nonly_user_templates: true\n")
    env = dict(no_hub_env)
    p = subprocess.run([*HIVA, "generate-descriptions", "--out", str(tmp_path / "c"), "--llm",
                        "someone/tiny-llama", "--templates", str(tdir), "--config", str(cfg),
                        "--aus", "12", "--per-au", "2", "--prompt-style", "completion",
                        "--backend", "transformers", "--max-new-tokens", "24",
                        "--max-rounds", "3"],
                       env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0 and "Retry" not in p.stderr, p.stderr
    m = json.loads((tmp_path / "c" / MANIFEST).read_text())
    assert m["llm"] == "someone/tiny-llama" and m["rows"] > 0


def test_a_generator_the_run_makes_is_unloaded_and_one_given_is_not(tmp_path, monkeypatch):
    import hiva.pipeline.generate as generate

    events = []

    class Made(RecordingGenerator):
        model = None

        def load(self):
            self.model = object()

        def unload(self):
            self.model = None
            events.append("unloaded")

    def make(backend, ref, **kw):
        events.append(f"made {backend}")
        return Made()

    monkeypatch.setattr(generate, "make_generator", make)
    llm = tmp_path / "llm"
    llm.mkdir()
    (llm / "config.json").write_text("{}")
    tdir = _tdir(tmp_path, **{"s.completion.jinja": TEMPLATE})
    res = run(_cfg(tmp_path / "c", tdir, llm=str(llm)))
    assert res["rows"] > 0 and events == ["made transformers", "unloaded"]
    given = Made()
    given.load()
    run(_cfg(tmp_path / "c2", tdir), generator=given)
    assert given.model is not None and events == ["made transformers", "unloaded"]
