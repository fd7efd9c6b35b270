"""The tiny trained run and media of tests/predict, a tiny corpus of the run's AUs, and headless
Chromium (Debian's, driven by Playwright) for the browser test."""

from __future__ import annotations

import os
import shutil

import pytest

from tests.corpora.conftest import make_rows, write_corpus
from tests.predict.conftest import media, tiny_run  # noqa: F401 — fixtures shared with predict

APP_TEXTS = {
    1: ["The inner corners of the eyebrows are raised.",
        "Inner brows lift toward the forehead centre."],
    2: ["The outer parts of the eyebrows are raised.",
        "The outer brow arches upward."],
    4: ["The eyebrows are pulled down and drawn together.",
        "A frown lowers the brows and creases the glabella."],
    6: ["The cheeks are raised and crow's-feet wrinkles appear.",
        "The cheeks lift and the lower eyelids bulge."],
    12: ["The lip corners are pulled up and back into a smile.",
         "A smile pulls the corners of the mouth obliquely upward."],
    25: ["The lips part and the teeth may show.",
         "The mouth opens slightly as the lips separate."],
}

CHROME_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def app_corpus(tmp_path_factory):
    """A corpus folder of two LLMs and two axes over the tiny run's AUs."""
    import pandas as pd

    rows = make_rows(APP_TEXTS, llm="llm-a", axes=[{"perspective": "clinical"},
                                                   {"perspective": "lay"}])
    rows += make_rows({a: [t.replace(".", " again.") for t in ts] for a, ts in APP_TEXTS.items()},
                      llm="llm-b", axes=[{"perspective": "lay"}])
    root = tmp_path_factory.mktemp("app_corpus") / "corpus"
    assert len(pd.DataFrame(rows)) == 24
    return write_corpus(root, rows)


def chromium_path() -> str | None:
    for name in (os.environ.get("HIVA_CHROMIUM"), "chromium", "chromium-browser",
                 "google-chrome"):
        if name and (found := shutil.which(name)):
            return found
    return None


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium from the system. Skipped where there is none, unless
    HIVA_REQUIRE_BROWSER=1 (.ci/run sets it after installing Debian's chromium): then missing
    is a failure, so CI never passes by skipping."""
    exe = chromium_path()
    if exe is None:
        if os.environ.get("HIVA_REQUIRE_BROWSER") == "1":
            pytest.fail("HIVA_REQUIRE_BROWSER=1 and no chromium on PATH; apt-get install "
                        "chromium (or set HIVA_CHROMIUM to a Chrome/Chromium binary)")
        pytest.skip("no chromium on PATH (apt-get install chromium, or set HIVA_CHROMIUM)")
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=CHROME_FLAGS)
        try:
            yield b
        finally:
            b.close()
