"""The bad-input run (issue 29, "what must be shown"): a folder of good videos plus many kinds of bad
input, fed to ``indexer ingest`` and the other commands, each command under ``/usr/bin/time -v``.
Prints one JSON object: per kind, the command, its exit code, peak RSS, the video's status or the
command's one-line reason, and whether a traceback appeared; then the totals and ``ok`` (every good
video done, every bad one with a one-line reason, no traceback, every peak under ``--max-rss-mb``).

The kinds (``KINDS`` in the output): videos that are not videos (empty, text, header only, zeroed
media, an image named .mp4, a 16000x16000 PNG named .mp4, audio only, a FIFO, a folder, symlink
loops and dangling links), videos that are odd but usable (8K, one frame, 16x16, portrait, VP9
without transcript, a cut-off file, a header declaring 600 s over 30 s of packets, a newline in the
name), transcripts (unparsable, UTF-16 with an odd byte, one 5.6 MB line, Markdown and HTML
narration), ground truth (a verb list, a NaN time, nesting 100,000 deep), and library-level inputs
(hostile catalog ids given to delete, truncated / NaN / other-width feature files met by repair,
shards of another extractor given to merge, a crafted FAISS file, a config of 10,000 layers, a
vocabulary of 20M, a library.json that is a list or names its model by an int, a garbage
safetensors model, a code-running pickle as --action-weights, --device cuda:N past the last GPU,
--k -3, a similar of a missing clip, a stale lock, an unreachable Milvus).

Usage: python bench/bad_inputs.py [--out DIR] [--max-rss-mb 3072]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

from actbert.config import ActBertConfig
from actbert.model import ActBertForPretraining
from indexer.features.detector import build_detector, save_detector
from indexer.features.i3d import FEATURE_SIZE as I3D_FEATURE_SIZE

ROOT = Path(__file__).resolve().parents[1]
from indexer.features.regions import RegionExtractor  # noqa: E402
from indexer.features.video import write_video  # noqa: E402
from indexer.index.embed import set_library_model  # noqa: E402
from indexer.index.search import build_index  # noqa: E402
from indexer.library.store import Library  # noqa: E402
from synthkitchen.corpus import generate  # noqa: E402

ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
SRT = "1\n00:00:00,000 --> 00:00:01,500\nnow cut the tomato\n\n2\n00:00:01,500 --> 00:00:02,500\nstir it\n"
GOOD_STEP = {"start_sec": 0.0, "end_sec": 1.0, "verb": "cut", "description": "cut the tomato"}


def frames(n, w=96, h=64, seed=0):
    """``n`` frames of one colour with a bar moving across (cheap to encode at any size)."""
    colour = np.random.default_rng(seed).integers(0, 255, 3).astype(np.uint8)
    for i in range(n):
        frame = np.empty((h, w, 3), np.uint8)
        frame[:] = colour
        x = (i * w) // max(n, 1)
        frame[:, x:x + max(1, w // 10)] = 255 - colour
        yield frame


def png(path: Path, width: int, height: int) -> None:
    """A black RGB PNG written row by row (a 16000x16000 one is under 1 MB, never held whole)."""
    pack = lambda kind, data: (struct.pack(">I", len(data)) + kind + data  # noqa: E731
                               + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    squash, row, idat = zlib.compressobj(9), b"\x00" * (1 + 3 * width), []
    for _ in range(height):
        idat.append(squash.compress(row))
    idat.append(squash.flush())
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + pack(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                     + pack(b"IDAT", b"".join(idat)) + pack(b"IEND", b""))


def declare_duration(path: Path, seconds: float) -> None:
    """Rewrite a Matroska file's Segment Info Duration (element 0x4489, in milliseconds)."""
    data = bytearray(path.read_bytes())
    at = data.find(b"\x44\x89")
    size = data[at + 2] & 0x7F
    struct.pack_into(">f" if size == 4 else ">d", data, at + 3, seconds * 1000.0)
    path.write_bytes(bytes(data))


def audio_only(path: Path) -> None:
    import av

    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=16000)
        samples = np.zeros((1, 16000), np.float32)
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
        frame.sample_rate = 16000
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


# ---- the video folder: kind -> (file name, expected "done" / "failed", text the reason holds) -----


def video_folder(root: Path) -> dict[str, tuple[str, str, str]]:
    videos, truth = root / "videos", root / "ground_truth"
    videos.mkdir(parents=True)
    truth.mkdir()
    kinds: dict[str, tuple[str, str, str]] = {}

    def video(name, n=24, seed=0, **kw):
        write_video(videos / name, frames(n, seed=seed, **kw), fps=12)

    # Good videos: two SynthKitchen ones (narration, ground truth) and plain ones.
    sk = root / "sk"
    for path in generate(sk, 2, seed=11, size=(128, 96), fps=8, step_sec=(1.5, 2.0)):
        for companion in (path, path.with_suffix(".vtt")):
            shutil.copy(companion, videos / companion.name)
        shutil.copy(sk / "ground_truth" / f"{path.stem}.json", truth / f"{path.stem}.json")
        kinds[f"good: SynthKitchen {path.stem}"] = (path.name, "done", "")
    video("good.mp4", seed=1)
    (videos / "good.srt").write_text(SRT)
    kinds["good: plain video with SRT"] = ("good.mp4", "done", "")

    (videos / "empty.mp4").write_bytes(b"")
    kinds["empty file"] = ("empty.mp4", "failed", "empty")
    (videos / "notes.mp4").write_text("a text file, not a video\n")
    kinds["text file named .mp4"] = ("notes.mp4", "failed", "not a video")
    video("header_only.mp4", seed=2)
    (videos / "header_only.mp4").write_bytes((videos / "header_only.mp4").read_bytes()[:200])
    kinds["header only (200 bytes)"] = ("header_only.mp4", "failed", "")
    video("garbage.mp4", seed=3)
    data = bytearray((videos / "garbage.mp4").read_bytes())
    at = data.find(b"mdat")
    size = int.from_bytes(data[at - 4:at], "big")
    data[at + 4:at - 4 + size] = bytes(size - 8)
    (videos / "garbage.mp4").write_bytes(bytes(data))
    kinds["media data zeroed"] = ("garbage.mp4", "failed", "")
    png(videos / "image.mp4", 64, 48)
    kinds["small PNG named .mp4"] = ("image.mp4", "failed", "image")
    png(videos / "huge_png.mp4", 16000, 16000)
    kinds["16000x16000 PNG named .mp4"] = ("huge_png.mp4", "failed", "")
    audio_only(videos / "audio_only.mp4")
    kinds["audio only"] = ("audio_only.mp4", "failed", "")
    os.mkfifo(videos / "fifo.mp4")
    kinds["FIFO named .mp4"] = ("fifo.mp4", "failed", "not a regular file")
    (videos / "folder.mp4").mkdir()
    (videos / "loop.mp4").symlink_to(videos / "loop.mp4")
    kinds["symlink loop"] = ("loop.mp4", "failed", "symlink")
    (videos / "dangling.mp4").symlink_to(root / "nowhere.mp4")
    kinds["dangling symlink"] = ("dangling.mp4", "failed", "symlink")

    write_video(videos / "8k.mp4", frames(12, w=7680, h=4320, seed=4), fps=12)
    kinds["8K video (7680x4320)"] = ("8k.mp4", "done", "")
    video("one_frame.mp4", n=1, seed=5)
    kinds["one frame"] = ("one_frame.mp4", "done", "")
    video("tiny.mp4", seed=6, w=16, h=16)
    kinds["16x16 pixels"] = ("tiny.mp4", "done", "")
    video("portrait.mp4", seed=7, w=64, h=112)
    kinds["portrait"] = ("portrait.mp4", "done", "")
    write_video(videos / "vp9.webm", frames(24, seed=8), fps=12, codec="vp9")
    kinds["VP9 without transcript"] = ("vp9.webm", "done", "no transcript")
    video("half.mp4", n=84, seed=9)
    (videos / "half.mp4").write_bytes((videos / "half.mp4").read_bytes()[:(videos / "half.mp4").stat().st_size // 2])
    kinds["cut-off file"] = ("half.mp4", "done", "truncated")
    write_video(videos / "lying.mkv", frames(30 * 12, w=64, h=48, seed=10), fps=12)
    declare_duration(videos / "lying.mkv", 600.0)
    kinds["header declares 600 s, packets hold 30 s"] = ("lying.mkv", "done", "header announces")
    video("new\nline.mp4", seed=11)
    kinds["newline in the file name"] = ("new\nline.mp4", "done", "")

    video("bad_srt.mp4", seed=12)
    (videos / "bad_srt.srt").write_text("1\n00:00:xx --> yy\nhello\n")
    kinds["unparsable SRT"] = ("bad_srt.mp4", "done", "unusable")
    video("utf16.mp4", seed=13)
    (videos / "utf16.srt").write_bytes(SRT.encode("utf-16") + b"\x00")
    kinds["UTF-16 SRT with an odd byte"] = ("utf16.mp4", "done", "")
    video("huge_line.mp4", seed=14)
    (videos / "huge_line.srt").write_text("1\n00:00:00,000 --> 00:00:02,000\n" + "stir the soup " * 400_000)
    kinds["5.6 MB transcript line"] = ("huge_line.mp4", "done", "cut")
    video("markdown.mp4", seed=15)
    (videos / "markdown.srt").write_text("1\n00:00:00,000 --> 00:00:02,000\n![t](http://127.0.0.1:9/track.png) "
                                         "<img src='http://127.0.0.1:9/x.png'> :red[red] `tick`\n")
    kinds["Markdown and HTML narration"] = ("markdown.mp4", "done", "")

    for n, (name, content) in enumerate({
            "verb_list": json.dumps({"task": "salad", "steps": [{**GOOD_STEP, "verb": ["cut", "slice"]}]}),
            "nan_start": json.dumps({"task": "salad", "steps": [{**GOOD_STEP, "start_sec": float("nan")}]}),
            "deep": '{"task": "salad", "steps": ' + "[" * 100_000 + "]" * 100_000 + "}"}.items()):
        video(f"{name}.mp4", seed=20 + n)
        (truth / f"{name}.json").write_text(content)
        kinds[f"ground truth: {name.replace('_', ' ')}"] = (f"{name}.mp4", "done", "ground truth")
    return kinds


# ---- running a command -----------------------------------------------------------------------------


def run(args: list[str], timeout: int = 900) -> dict:
    """``python -m indexer ARGS`` under /usr/bin/time -v: rc, seconds, peak RSS (MB), stderr's last
    line, whether a traceback appeared."""
    started = time.monotonic()
    proc = subprocess.run(["/usr/bin/time", "-v", "timeout", str(timeout), sys.executable, "-m", "indexer", *args],
                          cwd=ROOT, env=ENV, capture_output=True, text=True)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    err = proc.stderr[:proc.stderr.find("\tCommand being timed")].strip()
    lines = [line for line in err.splitlines() if line.strip() and "RANDOM weights" not in line
             and not line.startswith("Command exited with non-zero status")  # /usr/bin/time's own
             and not line.startswith(("usage:", " "))]  # argparse's usage above its one-line error
    return {"rc": proc.returncode, "seconds": round(time.monotonic() - started, 1),
            "peak_rss_mb": round(int(rss.group(1)) / 1024) if rss else None,
            "traceback": "Traceback" in proc.stderr or "Traceback" in proc.stdout,
            "stderr_lines": len(lines), "reason": lines[-1][:300] if lines else "", "stdout": proc.stdout}


def tiny_model(detector: Path | None, folder: Path) -> Path:
    import torch

    region = {"feature_size": 1}
    if detector is not None:
        regions = RegionExtractor(detector)
        region = {"feature_size": regions.model.roi_heads.box_predictor.cls_score.in_features,
                  "num_classes": len(regions.class_names)}
    torch.manual_seed(0)
    config = ActBertConfig.from_name("tiny", action={"feature_size": I3D_FEATURE_SIZE}, region=region)
    ActBertForPretraining(config).eval().save_pretrained(folder)
    return folder


def library_with_model(path: Path, detector: Path) -> Path:
    library = Library.create(path)
    set_library_model(library, tiny_model(detector, library.root / "models" / "actbert"))
    build_index(library)
    library.close()
    return path


def copy(lib: Path, to: Path) -> Path:
    shutil.copytree(lib, to, ignore=shutil.ignore_patterns(".lock"))
    return to


def crafted_faiss(lib: Path) -> None:
    """The index file's flat vectors declare 2^29 floats; the manifest matches the new file."""
    folder = lib / "index"
    manifest = json.loads((folder / "manifest.json").read_text())
    old = folder / manifest["index_file"]
    data = bytearray(old.read_bytes())
    struct.pack_into("<Q", data, 74, 2**29)
    digest = hashlib.sha256(data).hexdigest()
    new = folder / f"clips-{digest[:16]}.faiss"
    new.write_bytes(bytes(data))
    old.unlink()
    manifest.update(index_file=new.name, bytes=len(data), sha256=digest)
    (folder / "manifest.json").write_text(json.dumps(manifest))


def edit_config(lib: Path, change) -> None:
    path = lib / "models" / "actbert" / "config.json"
    config = json.loads(path.read_text())
    change(config)
    path.write_text(json.dumps(config))


def first_feature(lib: Path) -> Path:
    return sorted((lib / "features").glob("*.safetensors"))[0]


def nan_features(path: Path) -> None:
    from actbert.data import VideoFeatures

    features = VideoFeatures.load(path)
    features.action_features[0, 0] = np.nan
    features.save(path)


def wider_features(path: Path) -> None:
    from dataclasses import replace

    from actbert.data import VideoFeatures

    features = VideoFeatures.load(path)
    replace(features, action_features=np.zeros((features.num_clips, 512), np.float32)).save(path)


def hostile_row(lib: Path, victim: Path) -> str:
    """A catalog row whose id climbs out of the library to ``victim`` (a hand-edited catalog)."""
    from indexer.library.catalog import Catalog

    video_id = os.path.relpath(victim.with_suffix(""), lib / "features")
    with Catalog(lib / "catalog.sqlite") as catalog:
        rowid = catalog.upsert_video(video_id, str(victim), "hostile", 8)
        catalog.update_video(rowid, status="done", feature_path=f"features/{video_id}.safetensors")
    return video_id


def stale_lock(lib: Path) -> None:
    proc = subprocess.Popen(["true"])
    proc.wait()
    record = {"pid": proc.pid, "host": socket.gethostname(), "command": "indexer ingest v",
              "since": time.time() - 100}
    (lib / ".lock").write_text(json.dumps(record).ljust(300))


class Gadget:
    """A pickle that runs ``touch PATH`` when loaded without restrictions."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="work folder (default: a temporary one, removed)")
    parser.add_argument("--max-rss-mb", type=int, default=3072)
    parser.add_argument("--reuse", action="store_true",
                        help="with --out: keep the folder and the ingest of an earlier run, rerun the other commands")
    args = parser.parse_args()
    work = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bad_inputs_"))
    work.mkdir(parents=True, exist_ok=True)
    import torch

    torch.manual_seed(0)
    detector = work / "det.safetensors"
    if not (args.reuse and detector.is_file()):
        detector = save_detector(build_detector("tiny", 4).eval(), work / "det", arch="tiny",
                                 class_names=("bowl", "knife", "tomato"))
    ingest_flags = ["--action-weights", "none", "--detector", str(detector), "--score-threshold", "0"]
    rows: list[dict] = []
    lib, recorded = work / "lib", work / "ingest_run.json"
    if args.reuse and recorded.is_file():  # the folder and its ingest from an earlier run of this script
        kinds, result = (json.loads(recorded.read_text())[k] for k in ("kinds", "result"))
        for case in work.glob("case*"):
            shutil.rmtree(case)
        shutil.rmtree(work / "victim_dir", ignore_errors=True)
        shutil.rmtree(work / "shard_r3d", ignore_errors=True)
    else:
        kinds = video_folder(work / "in")
        library_with_model(lib, detector)
        # 1. One ingest over the whole folder: every video gets a status and a one-line reason.
        result = run(["ingest", str(work / "in" / "videos"), "--library", str(lib), "--json", *ingest_flags])
        recorded.write_text(json.dumps({"kinds": kinds, "result": result}))
    library = Library(lib, readonly=True)
    by_name = {Path(r["path"]).name: r for r in library.catalog.videos()}
    for kind, (name, expect, text) in kinds.items():
        row = by_name.get(name)
        status = row["status"] if row else "not listed"
        reason = (row["error"] if status == "failed" else "; ".join(json.loads(row["warnings"]))) if row else \
            "not a video file: skipped by discovery"
        ok = (status == expect or (row is None and expect == "failed")) and "\n" not in (reason or "") \
            and text.lower() in (reason or "").lower() and not result["traceback"]
        rows.append({"kind": kind, "command": "ingest (one run over the folder)", "expect": expect,
                     "status": status, "reason": (reason or "")[:200], "rc": result["rc"],
                     "peak_rss_mb": result["peak_rss_mb"], "traceback": result["traceback"], "ok": bool(ok)})
    rows.append({"kind": "folder named .mp4", "command": "ingest (one run over the folder)", "expect": "skipped",
                 "status": "not listed" if "folder.mp4" not in by_name else by_name["folder.mp4"]["status"],
                 "reason": "a folder is not a video file", "rc": result["rc"], "peak_rss_mb": result["peak_rss_mb"],
                 "traceback": result["traceback"], "ok": "folder.mp4" not in by_name or by_name["folder.mp4"]["status"] == "failed"})
    ingest_run = {k: result[k] for k in ("rc", "seconds", "peak_rss_mb", "traceback")}
    library.close()

    # 2. Library-level inputs, each on its own copy of the ingested library, one command each.
    def case(kind: str, argv: list[str], expect_rc, must: str = "", after=None) -> None:
        r = run(argv)
        checked = after() if after else True
        ok = (r["rc"] == expect_rc if isinstance(expect_rc, int) else r["rc"] != 0) and not r["traceback"] \
            and (r["rc"] == 0 or r["stderr_lines"] == 1) and must.lower() in (r["reason"] + r["stdout"]).lower() \
            and checked
        rows.append({"kind": kind, "command": " ".join(a if len(a) < 60 else "..." + a[-40:] for a in argv[:3]),
                     "expect": f"rc {expect_rc}", "status": f"rc {r['rc']}", "reason": r["reason"] or r["stdout"].strip()[-200:],
                     "rc": r["rc"], "peak_rss_mb": r["peak_rss_mb"], "traceback": r["traceback"], "ok": bool(ok)})

    n = iter(range(1000))

    def fresh() -> Path:
        return copy(lib, work / f"case{next(n)}")

    victim = work / "victim_dir" / "victim.safetensors"
    victim.parent.mkdir()
    victim.write_bytes(b"precious")
    target = fresh()
    hostile = hostile_row(target, victim)
    case("hostile catalog id (../../victim) given to delete", ["delete", str(target), hostile], 0,
         "refused", after=lambda: victim.read_bytes() == b"precious")
    target = fresh()
    hostile_row(target, victim)
    case("hostile catalog id met by repair", ["repair", str(target)], 0, "",
         after=lambda: victim.read_bytes() == b"precious")

    for kind, spoil in (("truncated feature file", lambda p: p.write_bytes(p.read_bytes()[:300])),
                        ("NaN features", nan_features), ("features 512 wide (another extractor)", wider_features)):
        target = fresh()
        spoil(first_feature(target))
        case(f"{kind} met by reindex", ["reindex", str(target)], 0, "failed")
        case(f"{kind}: repair after it", ["repair", str(target)], 0, "")
        case(f"{kind}: search after reindex", ["search", str(target), "cut the tomato", "--mode", "vector"], 0)

    shard = work / "shard_r3d"
    Library.create(shard).close()
    manifest = json.loads((shard / "library.json").read_text())
    manifest["extractors"] = {"actions": {"name": "r3d_18", "version": "1", "preset": "fast"}}
    (shard / "library.json").write_text(json.dumps(manifest))
    target = fresh()
    case("merge of a shard made by another extractor", ["merge", str(target), str(shard)], "nonzero",
         "other extractors")

    target = fresh()
    crafted_faiss(target)
    case("crafted FAISS file (declares 2 GiB), search", ["search", str(target), "cut", "--mode", "vector"],
         "nonzero", "declares")
    case("crafted FAISS file (declares 2 GiB), index-info", ["index-info", str(target / "index")], "nonzero",
         "declares")

    target = fresh()
    edit_config(target, lambda c: c["text"].update(num_layers=10_000))
    case("config.json of 10,000 layers", ["search", str(target), "cut the tomato"], "nonzero", "")
    target = fresh()
    edit_config(target, lambda c: c["text"].update(num_classes=20_000_000))  # the word vocabulary
    case("vocabulary of 20M", ["search", str(target), "cut the tomato"], "nonzero", "")
    target = fresh()
    (target / "models" / "actbert" / "model.safetensors").write_bytes(b"\xff" * 64)
    case("garbage model.safetensors", ["search", str(target), "cut the tomato"], "nonzero", "")

    for kind, content in (("library.json is a list", "[1, 2]"), ("library.json names its model by an int", None)):
        target = fresh()
        if content is None:
            manifest = json.loads((target / "library.json").read_text())
            manifest["model"] = 7
            content = json.dumps(manifest)
        (target / "library.json").write_text(content)
        case(kind, ["status", str(target)], "nonzero", "")

    evil, ran = work / "evil.pt", work / "code_ran"
    evil.write_bytes(pickle.dumps({"weight": Gadget(str(ran))}))
    case("code-running pickle as --action-weights", ["ingest", str(work / "in" / "videos"), "--library",
         str(fresh()), "--action-backbone", "r3d_18", "--action-weights", str(evil), "--no-regions"],
         "nonzero", "refused", after=lambda: not ran.exists())
    import torch as _torch

    missing = f"cuda:{_torch.cuda.device_count()}"
    case(f"--device {missing} (past the last GPU)", ["ingest", str(work / "in" / "videos"), "--library",
         str(fresh()), "--device", missing, "--no-regions"], "nonzero", f"--device {missing}")
    case("search --k -3", ["search", str(lib), "cut", "--k", "-3"], "nonzero", "-3")
    case("similar of a missing clip id", ["similar", str(lib), "999999"], "nonzero", "no clip 999999")
    target = fresh()
    stale_lock(target)
    case("stale lock of a dead process", ["repair", str(target)], 0, "")
    port = free_port()
    case("unreachable Milvus", ["export-milvus", str(lib), "--uri", f"http://127.0.0.1:{port}"], "nonzero",
         "cannot reach Milvus")

    good = [r for r in rows if r["kind"].startswith("good:")]
    peaks = [r["peak_rss_mb"] for r in rows if r["peak_rss_mb"] is not None]
    report = {
        "kinds": len(rows) - len(good), "good_videos": len(good),
        "good_done": sum(r["status"] == "done" for r in good),
        "bad_with_one_line_reason": sum(r["ok"] for r in rows if r not in good),
        "tracebacks": sum(r["traceback"] for r in rows), "max_peak_rss_mb": max(peaks),
        "ingest_run": ingest_run, "rows": rows,
        "ok": all(r["ok"] for r in rows) and max(peaks) < args.max_rss_mb,
        "work": str(work), "load_average": os.getloadavg(),
    }
    print(json.dumps(report, indent=1))
    if not args.out:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
