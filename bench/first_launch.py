"""The first launch's timeline, measured in a real browser from an empty home folder.

Starts ``python -m app`` (what ``make run`` starts once its setup is done: the virtual environment
is reused, pip's install is not timed) with ``HOME`` a new empty folder, so the demo library is
built from nothing; Debian's chromium (Playwright) opens the page, types a query as soon as the
search box is there, and watches. Prints one JSON object: seconds from launch until the page
answers (the build's progress panel is drawn), the search box is there, the first results are on
the page, and every video is searchable (the page says N of N, or the build has finished), with
the load average before and after (``os.getloadavg``) and the cores; and from the build's own
records, when the builder and its videos stage started, when each video was finished (seconds
since the videos stage started) and each stage's seconds.

    python bench/first_launch.py [--videos 24] [--query "crack an egg into the bowl"] [--first-results-only]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from indexer.library.manifest import read_manifest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
RESULTS = re.compile(r"\b[1-9]\d* clips in")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def measure(videos: int | None, query: str, timeout_sec: float, first_only: bool = False) -> dict:
    from playwright.sync_api import sync_playwright

    home = Path(tempfile.mkdtemp(prefix="first-launch-home-"))
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("ACTBERT_LIBRARY", "ACTBERT_CACHE")}
    env.update(HOME=str(home), PYTHONUNBUFFERED="1")
    command = [sys.executable, "-m", "app", "--port", str(port)]
    if videos:
        command += ["--demo-videos", str(videos)]
    timeline: dict[str, float | None] = {"page": None, "search_box": None, "first_results": None,
                                         "all_searchable": None}
    load_before = _load()
    started, launched = time.perf_counter(), time.time()
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)

    def now() -> float:
        return round(time.perf_counter() - started, 1)

    searchable = re.compile(rf"\b{videos or 24} of {videos or 24} videos searchable")
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1800})
            deadline = time.perf_counter() + timeout_sec
            while True:  # the server is starting: retry until the page loads
                try:
                    page.goto(f"http://127.0.0.1:{port}/", timeout=5_000)
                    break
                except Exception:  # noqa: BLE001 - connection refused while the server starts
                    if time.perf_counter() > deadline or server.poll() is not None:
                        raise RuntimeError("the explorer never answered") from None
                    time.sleep(0.5)
            typed = False
            while time.perf_counter() < deadline:
                body = page.inner_text("body")
                if timeline["page"] is None and ("Building the demo library" in body or "Search" in body):
                    timeline["page"] = now()
                box = page.get_by_label("Describe what happens in the clip")
                if not typed and box.count():
                    timeline["search_box"] = now()
                    box.fill(query)
                    box.press("Enter")
                    typed = True
                if timeline["first_results"] is None and RESULTS.search(body):
                    timeline["first_results"] = now()
                if timeline["all_searchable"] is None and typed and (
                        searchable.search(body) or "Building the demo library" not in body):
                    timeline["all_searchable"] = now()
                if timeline["first_results"] is not None and (
                        timeline["all_searchable"] is not None or first_only):
                    break
                time.sleep(0.5)
            browser.close()
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # the launcher, its server and the demo builder
        server.wait(timeout=60)
        library = home / ".cache" / "actbert" / "demo"
        record = library / "progress.json"
        progress = json.loads(record.read_text()) if record.is_file() else {}
        manifest = library / "library.json"
        stages = read_manifest(manifest).demo if manifest.is_file() else {}
        shutil.rmtree(home, ignore_errors=True)
    page_at = timeline["page"]
    return {"videos": videos or 24, "query": query, "seconds_from_launch": timeline,
            "first_results_after_page_sec": (round(timeline["first_results"] - page_at, 1)
                                             if page_at is not None and timeline["first_results"] else None),
            "build_finished": bool(progress.get("finished")),
            "builder_started_sec": _since(progress.get("started"), launched),
            "videos_stage_started_sec": _since(progress.get("videos_started"), launched),
            "stage_seconds": {name: entry.get("seconds") for name, entry in stages.items()},
            "build_video_finished_at_sec": progress.get("finished_at"),
            "cores": os.cpu_count(), "load_before": load_before, "load_after": _load(),
            "timed_out": timeline["first_results"] is None if first_only else None in timeline.values()}


def _since(epoch: float | None, launched: float) -> float | None:
    return round(epoch - launched, 1) if epoch else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=None, help="demo videos (default: the demo's 24)")
    parser.add_argument("--query", default="crack an egg into the bowl")
    parser.add_argument("--timeout", type=float, default=1200.0, help="give up after this many seconds")
    parser.add_argument("--first-results-only", action="store_true",
                        help="stop once the first results are on the page (the build is stopped)")
    args = parser.parse_args()
    print(json.dumps(measure(args.videos, args.query, args.timeout, args.first_results_only)))


if __name__ == "__main__":
    main()
