"""Drive the page in a real browser as a person would: upload a photo, wait for the chart, maps
and table; optionally a video; search the corpus; open the model tab. Screenshots of each step
go to ``shots``. Used by the browser test and, on the demo run, by ``make app-screenshots``:

    python -m tests.app.drive --checkpoint out/demo/run --corpus out/demo/corpus --out docs/app
"""

from __future__ import annotations

import argparse
from pathlib import Path

TIMEOUT_MS = 120_000  # a cold first forward pass on a loaded 2-core machine


def settle(page) -> None:
    """Wait until no event is running (every Gradio status tracker hidden) and the outputs'
    fade-in is over, so a screenshot shows the results, not their pending state."""
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('[data-testid=status-tracker]'))"
        ".every(e => e.classList.contains('hide'))", timeout=TIMEOUT_MS)
    page.wait_for_timeout(600)


def wait_text(page, elem_id: str, text: str) -> str:
    """Wait until the element's visible text holds ``text``; return that text."""
    page.wait_for_function(
        "([id, t]) => { const e = document.getElementById(id); "
        "return e !== null && e.innerText.includes(t); }", arg=[elem_id, text],
        timeout=TIMEOUT_MS)
    return page.locator(f"#{elem_id}").inner_text()


def drive(browser, url: str, image: Path, shots: Path, *, video: Path | None = None,
          query: str = "the eyebrows are raised", expect_text: str | None = None) -> dict:
    """Returns what the page showed: counts of map images, the AU table's text, the search
    results' text, the model tab's F1 table text (and the video's, when given)."""
    shots.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    seen: dict = {}
    try:
        page.goto(url)
        page.locator("#image-in input[type=file]").set_input_files(str(image))
        page.locator("#image-in img").first.wait_for(timeout=TIMEOUT_MS)
        page.locator("#detect-image").click()
        page.locator("#bars img").first.wait_for(timeout=TIMEOUT_MS)
        page.locator("#maps img").first.wait_for(timeout=TIMEOUT_MS)
        seen["maps"] = page.locator("#maps img").count()
        seen["faces"] = page.locator("#face img").count()
        seen["au_table"] = wait_text(page, "au-table", "AU01")
        seen["status"] = page.locator("#detect-status").inner_text()
        settle(page)
        page.screenshot(path=str(shots / "detect.png"), full_page=True)
        if video is not None:
            page.locator("#video-in input[type=file]").set_input_files(str(video))
            page.locator("#detect-video").click()
            page.locator("#timeline img").first.wait_for(timeout=TIMEOUT_MS)
            page.locator("#csv a").first.wait_for(timeout=TIMEOUT_MS)
            seen["rows"] = wait_text(page, "rows", "frame")
            seen["csv_link"] = page.locator("#csv a").first.get_attribute("href")
            page.locator("#timeline").scroll_into_view_if_needed()
            settle(page)
        page.screenshot(path=str(shots / "video.png"), full_page=True)

        page.get_by_role("tab", name="Corpus").click()
        wait_text(page, "c-rows", "AU")
        seen["browse"] = page.locator("#c-count").inner_text()
        settle(page)
        page.screenshot(path=str(shots / "corpus_browse.png"), full_page=True)
        page.get_by_role("tab", name="Search").click()
        page.locator("#c-query textarea, #c-query input").first.fill(query)
        page.locator("#c-search").click()
        seen["search"] = wait_text(page, "c-found", expect_text or "AU")
        seen["search_first"] = page.locator("#c-found .virtual-row").first.inner_text()
        settle(page)
        page.screenshot(path=str(shots / "corpus_search.png"), full_page=True)

        page.get_by_role("tab", name="Stats").click()
        page.locator("#c-stats").click()
        page.locator("#c-stats-plot img").first.wait_for(timeout=TIMEOUT_MS)
        seen["stats"] = wait_text(page, "c-stats-text", "identifiab")
        settle(page)
        page.screenshot(path=str(shots / "corpus_stats.png"), full_page=True)

        page.get_by_role("tab", name="Model").click()
        seen["model"] = wait_text(page, "m-f1", "mean")
        seen["summary"] = page.locator("#m-summary").inner_text()
        settle(page)
        page.screenshot(path=str(shots / "model.png"), full_page=True)
    except Exception:
        page.screenshot(path=str(shots / "failed.png"), full_page=True)
        raise
    finally:
        page.close()
    return seen


def main() -> None:  # pragma: no cover - run by hand / make app-screenshots
    import numpy as np
    from PIL import Image
    from playwright.sync_api import sync_playwright
    from skimage import data

    from hiva.app import build, launch
    from tests.app.conftest import CHROME_FLAGS, chromium_path

    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--corpus")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--video", type=Path)
    ap.add_argument("--align", action="store_true", help="align the astronaut's face first")
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    img = a.out / "astronaut.png"
    Image.fromarray(np.asarray(data.astronaut())).save(img)
    if a.video is None:  # 3 s of the astronaut swaying, in a codec Chromium plays
        from tests.predict.helpers import write_video

        frames = [np.asarray(Image.fromarray(np.roll(data.astronaut(), int(12 * np.sin(i / 4)),
                                                     axis=1)).resize((256, 256)))
                  for i in range(30)]
        a.video = write_video(a.out / "astronaut.webm", frames, codec="libvpx")
    page = build(a.checkpoint, a.corpus, device="cpu", align=True if a.align else None)
    url = launch(page, port=None)
    try:
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=chromium_path(), args=CHROME_FLAGS)
            seen = drive(b, url, img, a.out, video=a.video)
            b.close()
    finally:
        page.close()
        img.unlink()
        (a.out / "astronaut.webm").unlink(missing_ok=True)
    for f in a.out.glob("*.png"):  # 256 colours: a third of the bytes, for the README
        Image.open(f).convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT).save(
            f, optimize=True)
    for k, v in seen.items():
        print(f"--- {k}\n{str(v)[:600]}")


if __name__ == "__main__":
    main()
