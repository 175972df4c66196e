"""A FAISS file that declares more than it holds is refused before FAISS allocates it (issue 29,
item 4): a crafted index file whose library manifest matches (size, SHA-256, count, width) gives
`search` and `index-info` one line, and the process never holds the declared gigabytes."""

from __future__ import annotations

import hashlib
import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from indexer.__main__ import main
from tests.app.tiny_library import build_tiny_library
from tests.indexer.library_helpers import copy_library

ROOT = Path(__file__).resolve().parents[2]
DECLARED_FLOATS = 2**29  # 2 GiB of vectors declared by a file of a few KB


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    return build_tiny_library(tmp_path_factory.mktemp("template"))


def craft(lib: Path) -> Path:
    """Rewrite the library's index file so its flat vectors array declares ``DECLARED_FLOATS``
    floats, and the manifest so every recorded fact (bytes, SHA-256, name) matches the new file."""
    folder = lib / "index"
    manifest = json.loads((folder / "manifest.json").read_text())
    old = folder / manifest["index_file"]
    data = bytearray(old.read_bytes())
    assert data[:4] == b"IxM2" and data[37:41] == b"IxFI"  # IDMap2 header, then the flat index's
    struct.pack_into("<Q", data, 74, DECLARED_FLOATS)  # the length of the flat index's vectors
    digest = hashlib.sha256(data).hexdigest()
    new = folder / f"clips-{digest[:16]}.faiss"
    new.write_bytes(bytes(data))
    old.unlink()
    manifest.update(index_file=new.name, bytes=len(data), sha256=digest)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return new


@pytest.mark.parametrize("command", ["search", "index-info"])
def test_a_crafted_index_file_is_one_line_before_any_allocation(template, tmp_path, capsys, command):
    lib = copy_library(template, tmp_path / "lib")
    craft(lib)
    argv = ["search", str(lib), "cut the tomato", "--mode", "vector"] if command == "search" \
        else ["index-info", str(lib / "index")]
    assert main(argv) != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "declares 536,870,912 x 4 bytes of vectors" in err and "reindex" in err, err


def test_the_refusal_holds_no_declared_memory(template, tmp_path):
    """The peak memory of a process loading the crafted index grows by far less than it declares."""
    lib = copy_library(template, tmp_path / "lib")
    craft(lib)
    code = ("import resource, sys; from indexer.index.files import load; from indexer.errors import ClipIndexError\n"
            "peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024\n"
            "before = peak()\n"
            "try: load(sys.argv[1])\n"
            "except ClipIndexError as e: print(e)\n"
            "print(peak() - before)")
    out = subprocess.run([sys.executable, "-c", code, str(lib / "index")], cwd=ROOT, capture_output=True,
                         text=True, timeout=300, check=True).stdout.splitlines()
    assert "declares" in out[0], out
    assert int(out[-1]) < 256, f"peak grew by {out[-1]} MB while refusing a file declaring 2 GiB"


def test_a_file_deleted_by_a_save_between_the_checks_is_read_again(tmp_path, monkeypatch):
    """A reader's checks run one after another: a save may delete the file it has just checksummed
    before its declared sizes are read (seen with four readers and two writers on a loaded
    machine). The load retries and returns the index the new manifest names, never an OSError."""
    import faiss
    import numpy as np

    from indexer.index import files

    folder = tmp_path / "index"
    first = faiss.IndexIDMap2(faiss.IndexFlatIP(4))
    first.add_with_ids(np.eye(4, dtype="float32"), np.arange(4))
    files.save(folder, first, factory="Flat", nprobe=1, model={"m": 1}, auto_factory=False)
    second = faiss.IndexIDMap2(faiss.IndexFlatIP(4))
    second.add_with_ids(np.eye(4, dtype="float32")[:3], np.arange(3))
    original, calls = files.check_declared_sizes, []

    def save_meanwhile(path):
        calls.append(path.name)
        if len(calls) == 1:  # a writer replaces the index: the file just checksummed is deleted
            files.save(folder, second, factory="Flat", nprobe=1, model={"m": 1}, auto_factory=False)
        return original(path)

    monkeypatch.setattr(files, "check_declared_sizes", save_meanwhile)
    index, manifest = files.load(folder, expected_model={"m": 1})
    assert index.ntotal == 3 and manifest["count"] == 3 and len(calls) == 2 and calls[0] != calls[1]
