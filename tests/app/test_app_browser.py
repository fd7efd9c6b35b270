"""The page in a real browser: headless Chromium (Debian's, driven by Playwright) against
``hiva app``'s page on a free port, with the tiny run and a tiny corpus. Screenshots land in the
test's tmp dir (``detect.png``, ``video.png``, ``corpus_browse.png``, ``corpus_search.png``,
``corpus_stats.png``, ``model.png``; ``failed.png`` when a step times out)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image

from tests.app.drive import drive
from tests.predict.helpers import TINY_AUS, astronaut, write_video


@pytest.fixture(scope="module")
def served(tiny_run, app_corpus, tiny_st):
    from hiva.app import build, launch

    page = build(tiny_run, app_corpus, device="cpu", encoder=tiny_st, max_video_seconds=5)
    url = launch(page, port=None)
    try:
        yield url
    finally:
        page.close()


def test_all_three_tabs_in_a_browser(browser, served, tmp_path):
    from hiva.facs import au_column

    image = tmp_path / "astronaut.png"
    Image.fromarray(astronaut()).save(image)
    clip = write_video(tmp_path / "clip.webm", [astronaut()] * 3
                       + [np.full((256, 256, 3), 90, np.uint8)] * 2, codec="libvpx")
    # the tiny encoder has random weights: an exact corpus text is the one sure nearest match
    query = "A frown lowers the brows and creases the glabella."
    seen = drive(browser, served, image, tmp_path / "shots", video=clip, query=query,
                 expect_text="glabella")
    print("screenshots:", tmp_path / "shots")

    assert seen["faces"] >= 1 and seen["maps"] >= len(TINY_AUS)
    assert "1 face(s)" in seen["status"]
    for a in TINY_AUS:
        assert au_column(a) in seen["au_table"]
    assert re.search(r"\b0\.\d{1,3}\b", seen["au_table"])  # probabilities rendered
    assert "clip.webm" in seen["rows"] and seen["csv_link"]
    assert "/tmp/" not in seen["rows"]  # no server path shown
    assert "Showing 24 of 24 matching descriptions" in seen["browse"]
    top = seen["search_first"]  # the nearest row: the query itself, score 1, AU04
    assert "glabella" in top and "AU04" in top and re.search(r"\b1(\.0+)?\b", top)
    assert "rows 24" in seen["stats"]  # the stats text counts the corpus rows
    assert "mean" in seen["model"] and "fold 1" in seen["summary"]
    for name in ("detect", "video", "corpus_browse", "corpus_search", "corpus_stats", "model"):
        assert (tmp_path / "shots" / f"{name}.png").stat().st_size > 10_000
