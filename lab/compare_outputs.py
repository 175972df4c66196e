"""Old vs new outputs on fixed inputs (issue 28): a refactor leaves what users see unchanged.

Each side is a checkout of this repository (``git worktree add --detach /tmp/old 578d0c6``), run in
subprocesses with ``cwd`` and ``PYTHONPATH`` set to it, so the shared environment imports that
checkout. Only the command lines are used, and one snippet where no command exists. Each side:

- ``frames``: SHA-256 of every decoded RGB frame (PyAV) of SynthKitchen video 0 of seed 5
  (``indexer synthkitchen``, 12 s), and of its narration track;
- ``search``: ``indexer search --json`` for QUERIES (the matching head reranking the top 5) on a
  demo library that side builds (``indexer demo --videos 5 --seed 7``: the shipped model and
  detector; a seed whose 5 videos hold 2 test videos and a verb often enough for 578d0c6's
  demo build, which stops without one);
- ``attention``: every attention map of ATTENTION_QUERY against the library's first narrated clip
  (``ClipService.attention``, what the app's Attention page draws), with its token labels;
- ``evaluation``: ``actbert evaluate --json`` on that library's test split (TASKS, RESAMPLES).

JSON trees are compared key by key, numbers within 1e-5 (so search scores match to 1e-5) and
attention arrays element by element within 1e-5; timings are left out and each checkout's path is
replaced by a placeholder. Both sides work in the same folder, one after the other (a video's id
hashes its path). A failed command is reported as that check's error (the check then differs).
Prints one JSON object: per check ``same``, ``compared`` (leaves, frames or maps), ``differences``
(their count) and the first ``--show`` of them as ``path: old -> new``; exit code 1 if any check
differs. About 3 minutes a side on 2 busy cores.

Usage: python lab/compare_outputs.py --old CODE_DIR --new CODE_DIR [--work DIR] [--keep]
       [--show 20] [--python PYTHON]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

RENDER_SEED, LIBRARY_SEED, VIDEOS = 5, 7, 5
QUERIES = ("crack an egg into the bowl", "pour hot water into the cup", "spread butter on the toast")
ATTENTION_QUERY = "place the bread on the board"
TASKS, RESAMPLES = "retrieval,step_localization,videoqa,matching,masked_action", 20
TOLERANCE = 1e-5
VOLATILE = {"timings_s", "timings_ms", "seconds", "total_seconds"}  # wall-clock figures
CHECKS = ("frames", "search", "attention", "evaluation")

# No command prints attention maps: the service the app's Attention page calls, on both sides.
ATTENTION_SNIPPET = """
import json, sys
import numpy as np
from indexer.index.service import ClipService
from indexer.library.store import Library

root, query, out = sys.argv[1:4]
library = Library(root, readonly=True)
videos = sorted(row["video_id"] for row in library.catalog.videos("done"))
video, clip = next((v, c) for v in videos for c in library.catalog.clips_of(v) if (c["narration"] or "").strip())
sample = ClipService(library).attention(int(clip["id"]), query).sample
np.savez(out, **{f"{m.block}/{m.query}/{m.key}": m.probs[0].float().numpy() for m in sample.maps})
print(json.dumps({"video_id": video, "clip_index": clip["clip_index"], "start_sec": clip["start_sec"],
                  "end_sec": clip["end_sec"], "narration": clip["narration"], "tokens": sample.tokens,
                  "action_labels": sample.action_labels, "region_labels": sample.region_labels,
                  "kv_fusion": sample.kv_fusion, "match_score": sample.match_score}))
"""


class SideError(Exception):
    """A command of one side failed; its message becomes that check's error."""


class Side:
    """One checkout run from one work folder."""

    def __init__(self, code: Path, work: Path, python: str) -> None:
        self.code, self.work, self.python = code.resolve(), work, python
        self.library = work / "library"

    def run(self, *args: str, label: str = "") -> str:
        """stdout of ``python ARGS`` in the checkout; SideError with stderr's last line if it fails."""
        env = {**os.environ, "PYTHONPATH": str(self.code)}
        done = subprocess.run([self.python, *args], cwd=self.code, env=env, capture_output=True, text=True)
        if done.returncode:
            last = (done.stderr.strip().splitlines() or ["(no stderr)"])[-1]
            raise SideError(f"{label or ' '.join(args[:3])} exited {done.returncode}: {last}")
        return done.stdout

    def normalise(self, tree):
        """``tree`` without timings, the checkout's path (and the work folder's) replaced by placeholders."""
        if isinstance(tree, dict):
            return {k: self.normalise(v) for k, v in tree.items() if k not in VOLATILE}
        if isinstance(tree, list):
            return [self.normalise(v) for v in tree]
        if isinstance(tree, str):  # evaluate's notes say how long the matching head took: "in 0.2 s"
            tree = re.sub(r" in \d+(\.\d+)? s\b", " in <time> s", tree)
            return tree.replace(str(self.work), "<work>").replace(str(self.code), "<code>")
        return tree

    def frames(self) -> dict:
        out = self.work / "render"
        self.run("-m", "indexer", "synthkitchen", "--out", str(out), "--videos", "1", "--seed", str(RENDER_SEED))
        (video,) = sorted((out / "videos").glob("*.mp4"))
        with av.open(str(video)) as container:
            hashes = [hashlib.sha256(frame.to_ndarray(format="rgb24").tobytes()).hexdigest()
                      for frame in container.decode(video=0)]
        narration = hashlib.sha256(video.with_suffix(".vtt").read_bytes()).hexdigest()
        return {"video": video.name, "narration": narration, "frames": hashes}

    def build_library(self) -> None:
        self.run("-m", "indexer", "demo", "--library", str(self.library), "--videos", str(VIDEOS),
                 "--seed", str(LIBRARY_SEED), "--json")

    def search(self) -> dict:
        results = {}
        for query in QUERIES:
            text = self.run("-m", "indexer", "search", str(self.library), query, "--k", "5", "--rerank", "5",
                            "--json")
            results[query] = self.normalise(json.loads(text))
        return results

    def attention(self) -> dict:
        maps = self.work / "attention.npz"
        meta = json.loads(self.run("-c", ATTENTION_SNIPPET, str(self.library), ATTENTION_QUERY, str(maps),
                                   label="attention snippet"))
        with np.load(maps) as arrays:
            return {"meta": meta, "maps": {name: arrays[name] for name in arrays.files}}

    def evaluation(self) -> dict:
        # evaluate records its result beside the model: copies of the library's models keep the
        # checkout's shipped ones (assets/demo) untouched.
        manifest = json.loads((self.library / "library.json").read_text())
        models = {}
        for key in ("model", "model_no_regions"):
            models[key] = self.work / "models" / key
            shutil.copytree(self.library / manifest[key]["checkpoint"], models[key])
        self.run("-m", "indexer", "export-corpus", str(self.library))
        text = self.run("-m", "actbert", "evaluate", "--library", str(self.library), "--split", "test",
                        "--checkpoint", str(models["model"]), "--ablation-checkpoint", str(models["model_no_regions"]),
                        "--tasks", TASKS, "--resamples", str(RESAMPLES), "--threads", "1", "--no-meteor", "--json")
        return self.normalise(json.loads(text))

    def collect(self) -> dict:
        """Every check's output, or ``{"error": ...}`` where a command failed."""
        results = {}
        for name in CHECKS:
            try:
                if name == "search":
                    self.build_library()
                results[name] = getattr(self, name)()
            except SideError as exc:
                results[name] = {"error": str(exc)}
            except (OSError, ValueError, KeyError) as exc:  # output not as expected (no JSON, no file)
                results[name] = {"error": f"{type(exc).__name__}: {exc}"}
        return results


def short(value) -> str:
    text = json.dumps(value) if not isinstance(value, np.ndarray) else f"array{value.shape}"
    return text if len(text) <= 60 else text[:57] + "..."


def diff_trees(old, new, path: str, found: list[str]) -> int:
    """Append ``path: old -> new`` for every leaf that differs (numbers beyond TOLERANCE) to
    ``found``; returns the number of leaves compared."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) ^ set(new), key=str):
            side, value = ("old", old[key]) if key in old else ("new", new[key])
            found.append(f"{path}/{key}: only in {side} ({short(value)})")
        common = sorted(set(old) & set(new), key=str)
        return len(set(old) ^ set(new)) + sum(diff_trees(old[k], new[k], f"{path}/{k}", found) for k in common)
    if isinstance(old, list) and isinstance(new, list):
        if len(old) != len(new):
            found.append(f"{path}: length {len(old)} -> {len(new)}")
        return sum(diff_trees(a, b, f"{path}/{i}", found) for i, (a, b) in enumerate(zip(old, new)))
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (old, new))
    if (abs(old - new) > TOLERANCE) if numbers else (old != new):
        if isinstance(old, str) and isinstance(new, str):  # from a little before where they part
            start = max(0, len(os.path.commonprefix([old, new])) - 20)
            old, new = (("..." if start else "") + text[start:] for text in (old, new))
        found.append(f"{path}: {short(old)} -> {short(new)}")
    return 1


def diff_maps(old: dict, new: dict, found: list[str]) -> int:
    """Attention maps by name: shapes, then the largest element difference; returns maps compared."""
    for name in sorted(set(old) ^ set(new)):
        found.append(f"maps/{name}: only in {'old' if name in old else 'new'} ({short(old.get(name, new.get(name)))})")
    common = sorted(set(old) & set(new))
    for name in common:
        if old[name].shape != new[name].shape:
            found.append(f"maps/{name}: shape {old[name].shape} -> {new[name].shape}")
        elif (gap := float(np.abs(old[name] - new[name]).max(initial=0.0))) > TOLERANCE:
            found.append(f"maps/{name}: max |old - new| {gap:.3g}")
    return len(common)


def compare(name: str, old: dict, new: dict, show: int) -> dict:
    """One check's verdict; a side whose command failed makes it differ, even if both failed alike."""
    errors = {label: out["error"] for label, out in (("old", old), ("new", new)) if "error" in out}
    found: list[str] = []
    if errors:
        compared = 0
    elif name == "attention":
        compared = diff_maps(old["maps"], new["maps"], found)
        diff_trees(old["meta"], new["meta"], "meta", found)
    else:
        compared = diff_trees(old, new, "", found)
        compared = max(len(old["frames"]), len(new["frames"])) if name == "frames" else compared
    verdict = {"same": not found and not errors, "compared": compared, "differences": len(found),
               "first": found[:show] if show else found}
    return {**verdict, "errors": errors} if errors else verdict


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--old", type=Path, required=True, help="checkout of the old commit")
    parser.add_argument("--new", type=Path, required=True, help="checkout of the new commit")
    parser.add_argument("--work", type=Path, help="folder for both sides' outputs (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep both sides' outputs (WORK/old, WORK/new)")
    parser.add_argument("--show", type=int, default=20, help="differences listed per check (0: all)")
    parser.add_argument("--python", default=sys.executable, help="interpreter of the shared environment")
    args = parser.parse_args()
    for code in (args.old, args.new):  # else the shared environment's editable install answers
        if not (code / "actbert" / "__init__.py").is_file() or not (code / "indexer" / "__init__.py").is_file():
            parser.error(f"{code} is not a checkout of this repository (no actbert/, indexer/)")
    work = args.work or Path(tempfile.mkdtemp(prefix="compare-outputs-"))
    report = {"old": str(args.old.resolve()), "new": str(args.new.resolve()), "seconds": {}}
    outputs = {}
    try:
        for label in ("old", "new"):
            # Both sides run in WORK/side (then moved to WORK/old, WORK/new): a video's id is its
            # file name plus a hash of its absolute path, so the same path gives the same ids.
            for folder in (work / "side", work / label):  # a reused --work starts each side afresh
                shutil.rmtree(folder, ignore_errors=True)
            (work / "side").mkdir(parents=True)
            start = time.perf_counter()
            outputs[label] = Side(getattr(args, label), work / "side", args.python).collect()
            report["seconds"][label] = round(time.perf_counter() - start, 1)
            (work / "side").rename(work / label)
    finally:
        if not args.keep:  # only what this script made: a given --work folder itself stays
            for folder in ("side", "old", "new"):
                shutil.rmtree(work / folder, ignore_errors=True)
            if not args.work:
                work.rmdir()
    report["checks"] = {name: compare(name, outputs["old"][name], outputs["new"][name], args.show)
                        for name in CHECKS}
    report["same"] = all(check["same"] for check in report["checks"].values())
    report["work"] = str(work) if args.keep else None
    print(json.dumps(report, indent=1))
    return 0 if report["same"] else 1


if __name__ == "__main__":
    sys.exit(main())
