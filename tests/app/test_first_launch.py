"""The first launch in a real browser: with no library configured, the explorer builds a small
demo (3 videos) in the background with the real pipeline, shows its progress panel, and answers a
query with results before the build ends; then every video becomes searchable and the library is
consistent (index = catalog). With the shipped model, the Clip page's action row (the action head
reading the video alone) puts "crack" first on the crack clip of the demo's held-out video
(``sk00001``, SynthKitchen seed 0's test split: the shipped model never trained on it). Debian's chromium driven by Playwright, as tests/app/test_browser.py;
screenshots go to ``test-output/``."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.app.test_browser import OUT, ROOT, _free_port, _wait_healthy, browser  # noqa: F401

VIDEOS = 3
QUERY = "crack an egg into the bowl"
HELD_OUT = "sk00001_"  # make_scrambled_eggs, test split: starts with two crack steps
RESULTS = re.compile(r"\b[1-9]\d* clips in")


def _progress(library: Path) -> dict:
    try:
        return json.loads((library / "progress.json").read_text())
    except (OSError, ValueError):
        return {}


def _crack_clip(library: Path) -> int:
    """The clip of the held-out video that overlaps its ground-truth "crack" steps the most and no
    other step."""
    from indexer.library.store import Library

    opened = Library(library, readonly=True)
    try:
        video = next(r["video_id"] for r in opened.catalog.videos("done") if r["video_id"].startswith(HELD_OUT))
        steps, clips = opened.catalog.steps_of(video), opened.catalog.clips_of(video)
    finally:
        opened.close()
    best, best_overlap = None, 0.0
    for clip in clips:
        overlaps: dict[str, float] = {}  # seconds of each step verb inside the clip
        for s in steps:
            seconds = min(clip["end_sec"], s["end_sec"]) - max(clip["start_sec"], s["start_sec"])
            if seconds > 0:
                overlaps[s["verb"]] = overlaps.get(s["verb"], 0.0) + seconds
        if set(overlaps) == {"crack"} and overlaps["crack"] > best_overlap:
            best, best_overlap = int(clip["id"]), overlaps["crack"]
    assert best is not None, f"no clip of {video} covers only its crack steps"
    return best


def _crack_clip_reads_crack(page, url: str, library: Path) -> None:
    """The Clip page's "ActBERT action head" table (its accessible cells: header, then verb and
    probability per row) lists crack first."""
    clip = _crack_clip(library)
    page.goto(f"{url}/clip?clip={clip}")
    table = page.get_by_test_id("stDataFrame").filter(has_text="ActBERT action head").first
    table.wait_for()
    page.wait_for_timeout(1500)
    cells = [c.strip() for c in table.locator("td, th").all_inner_texts()]
    assert cells[:2] == ["ActBERT action head", "probability"], cells
    page.screenshot(path=str(OUT / "clip_crack_action_row.png"), full_page=True)
    assert cells[2] == "crack", f"clip {clip}: the action head ranks {cells[2::2]}"


def test_results_appear_before_the_demo_build_ends(browser, tmp_path):  # noqa: F811
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    from indexer.index.reconcile import index_state
    from indexer.library.store import Library

    cache = tmp_path / "cache"
    library = cache / "demo"
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "ACTBERT_LIBRARY"}
    env.update(ACTBERT_CACHE=str(cache), PYTHONUNBUFFERED="1")
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app" / "streamlit_app.py"),
         "--server.headless", "true", "--server.address", "127.0.0.1", "--server.port", str(port),
         "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
         "--", "--demo-videos", str(VIDEOS)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)  # its own group: the server, the builder and its render worker
    OUT.mkdir(exist_ok=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, server)
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        page.set_default_timeout(240_000)
        page.goto(url)
        page.get_by_text("Building the demo library").first.wait_for()
        box = page.get_by_label("Describe what happens in the clip")
        box.wait_for()
        box.fill(QUERY)
        box.press("Enter")
        typed = _progress(library)
        # no more input: results come as videos become searchable (none may be when it is typed)
        page.get_by_text(RESULTS).first.wait_for()
        during = _progress(library)
        body = page.inner_text("body")
        page.screenshot(path=str(OUT / "first_launch_results_during_build.png"), full_page=True)
        assert not during.get("finished"), "the build ended before the first results"
        assert typed.get("searchable", 0) <= during["searchable"]
        searchable = re.search(rf"(\d+) of {VIDEOS} videos searchable", body)
        assert searchable and 1 <= int(searchable.group(1)) < VIDEOS, body[:2000]
        assert "Building the demo library" in body and "Rendering and analysing videos" in body
        assert re.search(rf"video \d of {VIDEOS}", body) and "time left" in body
        if "being analysed" not in body and during.get("current"):
            # the frames' caption comes with the panel's next refresh (the page was drawn before
            # the build started its current video): unless the build ends first
            try:
                page.get_by_text("being analysed").first.wait_for(timeout=60_000)
            except PlaywrightTimeout:
                assert _progress(library).get("finished"), "no 'being analysed' caption while a video was analysed"
        # the page reruns by itself as more videos become searchable (the panel's fragment); the
        # last one is not waited for: the build may end, and the note go, within a refresh
        if int(searchable.group(1)) + 1 < VIDEOS:
            more = re.compile(rf"([{int(searchable.group(1)) + 1}-{VIDEOS - 1}]) of {VIDEOS} videos searchable")
            page.get_by_text(more).first.wait_for()
        deadline = time.monotonic() + 600
        while not _progress(library).get("finished"):
            assert time.monotonic() < deadline, "the demo build did not finish in 10 min"
            assert not _progress(library).get("error"), _progress(library)["error"]
            time.sleep(1)
        page.get_by_text("Building the demo library").first.wait_for(state="detached")
        page.get_by_text(RESULTS).first.wait_for()
        page.screenshot(path=str(OUT / "first_launch_built.png"), full_page=True)
        assert "videos searchable" not in page.inner_text("body")
        _crack_clip_reads_crack(page, url, library)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
    opened = Library(library, readonly=True)
    assert len(opened.catalog.videos("done")) == VIDEOS
    assert index_state(opened)["state"] == "ok"
    assert _progress(library)["searchable"] == VIDEOS
    # the app starts `indexer demo --json`: no progress bar in its log (the panel shows progress)
    assert not re.search(r"\d+/\d+ \[", (cache / "demo-build.log").read_text())
