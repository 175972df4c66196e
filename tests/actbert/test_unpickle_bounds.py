"""Crafted pickles against the restricted unpicklers (.pdparams and PaddleVideo LMDB records): code
execution attempts, huge declared arrays, codec bombs and lists that would expand are each refused with one line, and the
peak memory a refusal costs is measured (VmHWM of a child process, reset before each file)."""

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
    """name -> (reader, pickle bytes). reader: "pdparams" or "record"."""
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
    dag = pickle.dumps({"features": shared, "boxes": np.zeros((1, 4)), "image_h": 1, "image_w": 1,
                        "action_features": np.zeros((1, 2))}, protocol=2)
    object_array = pickle.dumps({"features": np.array([None, 1], dtype=object)}, protocol=2)
    # A zero-width word embedding "declares" a 20M-word vocabulary in 0 bytes of data
    fixture = ROOT / "tests" / "fixtures" / "paddle_actbert_small" / "actbert_small.pdparams"
    from actbert.paddle import read_pdparams

    arrays = read_pdparams(fixture)
    arrays["bert.embeddings.word_embeddings.weight"] = np.zeros((20_000_000, 0), np.float32)
    arrays["cls.predictions.decoder_weight"] = arrays["bert.embeddings.word_embeddings.weight"]
    vocab = pickle.dumps(arrays, protocol=4)
    return {
        "os.system (pdparams)": ("pdparams", _dict_of("w", os_system)),
        "builtins.eval (record)": ("record", _dict_of("features", builtins_eval)),
        "huge declared array (pdparams)": ("pdparams", _dict_of("w", huge)),
        "huge declared array (record)": ("record", _dict_of("features", huge)),
        "codec bomb x24 (record)": ("record", _dict_of("features", bomb)),
        "shared nested lists (record)": ("record", dag),
        "object array (record)": ("record", object_array),
        "20M-word vocabulary (pdparams)": ("model", vocab),
    }


CHILD = """
import base64, json, sys
sys.path.insert(0, {root!r})
from actbert.msrvtt import decode_record
from actbert.model import ActBertForPretraining

def hwm_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024

cases = json.load(open({cases!r}))
results = {{}}
for name, (reader, data) in cases.items():
    data = base64.b64decode(data)
    path = {tmp!r} + "/case.pdparams"
    open(path, "wb").write(data)
    open("/proc/self/clear_refs", "w").write("5")  # reset the peak RSS to the current RSS
    base = hwm_mb()
    try:
        if reader == "record":
            decode_record(data, "video0")
        elif reader == "pdparams":
            from actbert.paddle import read_pdparams
            read_pdparams(path)
        else:
            ActBertForPretraining.from_paddle(path, heads={{"text": 4, "action": 4, "region": 4, "tangled": 4}})
        message = None
    except Exception as exc:
        message = f"{{type(exc).__name__}}: {{exc}}"
    results[name] = {{"message": message, "peak_mb": hwm_mb(), "extra_mb": hwm_mb() - base}}
print(json.dumps(results))
"""


def test_crafted_pickles_are_refused_in_bounded_memory(tmp_path):
    cases = crafted()
    # The cases travel to the child as JSON (base64 bytes): only the crafted files are pickles.
    (tmp_path / "cases.json").write_text(json.dumps(
        {name: [reader, base64.b64encode(data).decode()] for name, (reader, data) in cases.items()}))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", CHILD.format(root=str(ROOT), cases=str(tmp_path / "cases.json"),
                                                             tmp=str(tmp_path))],
                         capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    results = json.loads(out.stdout.strip().splitlines()[-1])
    report = []
    for name, result in results.items():
        message = result["message"]
        report.append(f"{name}: +{result['extra_mb']:.0f} MB (peak RSS {result['peak_mb']:.0f} MB): {message}")
        assert message is not None, name
        assert "\n" not in message and len(message) < 400, message
        assert message.split(":")[0] in ("PaddleCheckpointError", "FeatureStoreError"), message
        assert result["extra_mb"] < PEAK_LIMIT_MB, report[-1]
    assert not Path("/tmp/pwned").exists()
    messages = {name: r["message"] for name, r in results.items()}
    assert "refusing to load os.system" in messages["os.system (pdparams)"]
    assert "refusing to load builtins.eval" in messages["builtins.eval (record)"]
    assert "more than a pickle of" in messages["huge declared array (pdparams)"]
    assert "more than a pickle of" in messages["huge declared array (record)"]
    assert "_codecs.encode is allowed only" in messages["codec bomb x24 (record)"]
    assert "must be numpy arrays" in messages["shared nested lists (record)"]
    assert "object arrays" in messages["object array (record)"]
    assert "declare a model of" in messages["20M-word vocabulary (pdparams)"]
    print("\n".join(report))
