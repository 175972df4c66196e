"""ClipIndex against numpy brute force, hand-computed factory choices and real files on disk."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import faiss
import numpy as np
import pytest

from indexer.cli.features import run_index_info
from indexer.index import clip_index as index_module
from indexer.index import files as index_files
from indexer.index.clip_index import (
    ClipIndex,
    ClipIndexError,
    IndexCorruptError,
    IndexMismatchError,
    IndexMissingError,
    recommended_factory,
)

ROOT = Path(__file__).resolve().parents[2]
MODEL = {"checkpoint": "ckpt/mini.safetensors", "checkpoint_sha256": "ab" * 32, "config": {"preset": "mini"}}


@pytest.fixture(autouse=True)
def one_faiss_thread():
    """FAISS's OpenMP thread teams crawl on a busy 2-core machine (k-means on 2,500 points: 30 s);
    one thread keeps these tests fast and steady. OpenMP keeps the setting per calling thread."""
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(before)


def unit(rows: int, dim: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((rows, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def brute_force(queries: np.ndarray, x: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Independent reference: full sort of every inner product in float64."""
    scores = queries.astype(np.float64) @ x.astype(np.float64).T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, order, 1), ids[order]


def test_factory_follows_the_size_rule():
    # 4 * sqrt(N) rounded to a power of two: 1264.9 -> 1024, 4000 -> 4096, 12649 -> 16384
    assert recommended_factory(99_999, 256) == "IDMap2,Flat"
    assert recommended_factory(100_000, 256) == "IVF1024_HNSW32,Flat"
    assert recommended_factory(1_000_000, 256) == "IVF4096_HNSW32,Flat"
    assert recommended_factory(10_000_000, 256) == "IVF16384_HNSW32,PQ64"
    assert recommended_factory(5_000, 256, compress=True) == "IVF256_HNSW32,PQ64"  # 4 * 70.7 = 283 -> 256
    assert recommended_factory(500_000, 30, compress=True) == "IVF2048_HNSW32,PQ6"  # largest divisor of 30 <= 7


def test_exact_search_equals_numpy_brute_force():
    x, queries = unit(2000, 48, 0), unit(7, 48, 1)
    ids = np.random.default_rng(2).choice(10**9, 2000, replace=False).astype(np.int64)
    index = ClipIndex.build(x * 3.0, ids)  # scaled input: the index normalises
    assert index.factory == "IDMap2,Flat" and len(index) == 2000
    scores, found = index.search(queries, 10)
    want_scores, want_ids = brute_force(queries, x, ids, 10)
    np.testing.assert_array_equal(found, want_ids)
    np.testing.assert_allclose(scores, want_scores, atol=1e-5)
    np.testing.assert_array_equal(index.ids(), np.sort(ids))


def test_add_update_remove_round_trip_tracks_the_catalog():
    dim, rng = 16, np.random.default_rng(3)
    index = ClipIndex.empty(dim)
    catalog: dict[int, np.ndarray] = {}
    for step in range(12):
        new_ids = rng.choice(500, 20, replace=False)
        vectors = unit(20, dim, 100 + step)
        index.add(vectors, new_ids)  # ids already held are updated
        catalog.update({int(i): v for i, v in zip(new_ids, vectors)})
        gone = rng.choice(500, 15, replace=False)
        removed = index.remove(gone)
        assert removed == sum(int(g) in catalog for g in gone)
        for g in gone:
            catalog.pop(int(g), None)
        assert index.ids().tolist() == sorted(catalog) and len(index) == len(catalog)
    ids = np.array(sorted(catalog))
    x = np.stack([catalog[i] for i in ids])
    queries = unit(5, dim, 9)
    scores, found = index.search(queries, 8)
    want_scores, want_ids = brute_force(queries, x, ids, 8)
    np.testing.assert_array_equal(found, want_ids)
    np.testing.assert_allclose(scores, want_scores, atol=1e-5)
    np.testing.assert_allclose(index.reconstruct(int(ids[0])), catalog[int(ids[0])], atol=1e-6)
    with pytest.raises(KeyError):
        index.reconstruct(10_000)


def test_search_pads_with_minus_one_and_minus_inf():
    index = ClipIndex.build(unit(3, 8, 0), [7, 8, 9])
    scores, found = index.search(unit(2, 8, 1), 5)
    assert found.shape == (2, 5) and (found[:, 3:] == -1).all() and np.isneginf(scores[:, 3:]).all()
    assert sorted(found[0, :3].tolist()) == [7, 8, 9]


def test_similar_excludes_the_clip_and_matches_brute_force():
    x = unit(300, 24, 4)
    ids = np.arange(300, dtype=np.int64) * 10
    index = ClipIndex.build(x, ids)
    scores, found = index.similar(50, 5)  # row 5
    _, want = brute_force(x[5:6], x, ids, 6)
    assert 50 not in found.tolist() and found.tolist() == want[0, 1:].tolist()
    assert scores.shape == (5,) and (np.diff(scores) <= 1e-7).all()


def test_ivf_index_removes_reconstructs_and_is_exact_with_every_list_probed():
    x = unit(4000, 32, 5)
    ids = np.arange(4000, dtype=np.int64) * 7 + 3
    index = ClipIndex.build(x, ids, factory="IVF16_HNSW32,Flat")
    assert index.factory == "IVF16_HNSW32,Flat" and 1 <= index.nprobe <= 16
    index.remove(ids[:100])
    keep_x, keep_ids = x[100:], ids[100:]
    index.nprobe = 16
    queries = np.concatenate([x[:5], unit(5, 32, 6)])  # removed clips' own vectors among the queries
    scores, found = index.search(queries, 10)
    want_scores, want_ids = brute_force(queries, keep_x, keep_ids, 10)
    np.testing.assert_array_equal(found, want_ids)
    np.testing.assert_allclose(scores, want_scores, atol=1e-5)
    np.testing.assert_allclose(index.reconstruct(int(ids[200])), x[200], atol=1e-6)
    np.testing.assert_array_equal(index.ids(), np.sort(keep_ids))
    with pytest.raises(ValueError, match="nprobe"):
        index.nprobe = 17


def test_calibrated_nprobe_meets_the_recall_target():
    rng = np.random.default_rng(7)
    centres = unit(40, 32, 8)
    x = centres[rng.integers(0, 40, 6000)] + rng.standard_normal((6000, 32)).astype(np.float32) * 0.15
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    ids = np.arange(6000, dtype=np.int64)
    index = ClipIndex.build(x, ids, factory="IVF64_HNSW32,Flat", target_recall=0.95)
    assert index.nprobe < 64
    queries = x[rng.choice(6000, 200, replace=False)] + rng.standard_normal((200, 32)).astype(np.float32) * 0.05
    _, found = index.search(queries, 10)
    _, want = brute_force(unit_rows(queries), x, ids, 10)
    recall = np.mean([len(set(f) & set(w)) / 10 for f, w in zip(found.tolist(), want.tolist())])
    assert recall >= 0.9, recall


def unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_growth_past_flat_recommends_and_rebuilds(monkeypatch, caplog):
    monkeypatch.setattr(index_module, "FLAT_MAX", 1000)
    x = unit(1500, 16, 9)
    ids = np.arange(1500, dtype=np.int64)
    index = ClipIndex.empty(16)
    index.add(x[:900], ids[:900])
    assert not index.needs_rebuild()
    index.add(x[900:], ids[900:])
    assert index.needs_rebuild() and "recommended" in caplog.text and index.factory == "IDMap2,Flat"
    index.rebuild()
    # 4 * sqrt(1500) = 154.9 -> 128 lists
    assert index.factory == "IVF128_HNSW32,Flat" and not index.needs_rebuild() and len(index) == 1500
    index.nprobe = 128
    queries = unit(4, 16, 10)
    _, found = index.search(queries, 5)
    np.testing.assert_array_equal(found, brute_force(queries, x, ids, 5)[1])


def test_bad_input_is_a_clear_error():
    index = ClipIndex.build(unit(10, 8, 0), np.arange(10))
    with pytest.raises(ValueError, match="width 9"):
        index.add(unit(2, 9, 1), [20, 21])
    with pytest.raises(ValueError, match="duplicates"):
        index.add(unit(2, 8, 1), [20, 20])
    with pytest.raises(ValueError, match=">= 0"):
        index.add(unit(1, 8, 1), [-1])
    with pytest.raises(ValueError, match="all zeros"):
        index.add(np.zeros((1, 8)), [30])
    with pytest.raises(ValueError, match="NaN"):
        index.search(np.full((1, 8), np.nan), 3)
    with pytest.raises(ValueError, match="2 ids for 1 vectors"):
        index.add(unit(1, 8, 1), [40, 41])
    with pytest.raises(ValueError, match="factory must be"):
        ClipIndex.build(unit(10, 8, 0), np.arange(10), factory="HNSW32")


def test_single_query_leaves_the_thread_count_as_it_was():
    index = ClipIndex.build(unit(50, 8, 0), np.arange(50))
    faiss.omp_set_num_threads(2)
    index.search(unit(1, 8, 1), 3)  # runs on one thread, then restores two
    assert faiss.omp_get_max_threads() == 2


@pytest.mark.parametrize("factory", ["IDMap2,Flat", "IVF8_HNSW32,Flat"])
def test_save_load_round_trip(tmp_path, factory):
    x, queries = unit(1000, 24, 11), unit(6, 24, 12)
    ids = np.arange(1000, dtype=np.int64) * 5 + 2
    index = ClipIndex.build(x, ids, model=MODEL, factory=factory)
    index.remove(ids[:3])
    manifest_path = index.save(tmp_path)
    manifest = json.loads(manifest_path.read_text())
    data = (tmp_path / manifest["index_file"]).read_bytes()
    assert manifest["sha256"] == hashlib.sha256(data).hexdigest() and manifest["bytes"] == len(data)
    assert (manifest["dimension"], manifest["count"], manifest["factory"], manifest["metric"]) == \
        (24, 997, factory, "inner_product")
    loaded = ClipIndex.load(tmp_path, expected_model=json.loads(json.dumps(MODEL)))
    assert loaded.model == MODEL and loaded.factory == factory and loaded.nprobe == index.nprobe
    np.testing.assert_array_equal(loaded.ids(), index.ids())
    for a, b in zip(loaded.search(queries, 10), index.search(queries, 10)):
        np.testing.assert_array_equal(a, b)
    loaded.add(unit(1, 24, 13), [1])  # the loaded index is live: updates and removals work
    loaded.remove([17])
    assert 1 in loaded and 17 not in loaded and len(loaded) == 997


def saved_index(directory: Path) -> tuple[ClipIndex, Path]:
    index = ClipIndex.build(unit(200, 8, 14), np.arange(200), model=MODEL)
    manifest = index.save(directory)
    return index, directory / json.loads(manifest.read_text())["index_file"]


def assert_reindex_error(error_type, directory: Path, match: str, **kwargs):
    with pytest.raises(error_type, match=match) as caught:
        ClipIndex.load(directory, **kwargs)
    assert isinstance(caught.value, ClipIndexError) and "python -m indexer reindex" in str(caught.value)


def test_corrupted_index_file_is_a_clear_error(tmp_path):
    _, path = saved_index(tmp_path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    assert_reindex_error(IndexCorruptError, tmp_path, "SHA-256")
    path.write_bytes(bytes(data[:100]))
    assert_reindex_error(IndexCorruptError, tmp_path, "truncated")
    path.unlink()
    assert_reindex_error(IndexCorruptError, tmp_path, "missing")


def test_manifest_problems_are_clear_errors(tmp_path):
    _, path = saved_index(tmp_path)
    manifest_path = tmp_path / "manifest.json"
    good = json.loads(manifest_path.read_text())
    manifest_path.write_text(json.dumps({**good, "count": 199}))
    assert_reindex_error(IndexCorruptError, tmp_path, "disagrees with its manifest: count 200")
    manifest_path.write_text(json.dumps({**good, "format": 99}))
    assert_reindex_error(IndexMismatchError, tmp_path, "format 99")
    manifest_path.write_text("{not json")
    assert_reindex_error(IndexCorruptError, tmp_path, "unreadable")
    manifest_path.write_text(json.dumps({k: v for k, v in good.items() if k != "sha256"}))
    assert_reindex_error(IndexCorruptError, tmp_path, "lacks sha256")
    manifest_path.unlink()
    assert_reindex_error(IndexMissingError, tmp_path / "nowhere", "no clip index", library="/data/lib")
    with pytest.raises(IndexMissingError, match="reindex /data/lib`"):
        ClipIndex.load(tmp_path, library="/data/lib")


def test_model_mismatch_is_a_clear_error(tmp_path):
    saved_index(tmp_path)
    other = {**MODEL, "config": {"preset": "base"}}
    assert_reindex_error(IndexMismatchError, tmp_path, "built from model .*mini.* not the model in use .*base",
                         expected_model=other)
    assert ClipIndex.load(tmp_path, expected_model=MODEL).model == MODEL


def test_index_info_cli(tmp_path, capsys):
    _, path = saved_index(tmp_path)
    assert run_index_info(argparse.Namespace(directory=tmp_path, json=True)) == 0
    assert json.loads(capsys.readouterr().out)["count"] == 200
    path.write_bytes(b"garbage")
    assert run_index_info(argparse.Namespace(directory=tmp_path, json=False)) == 1
    assert "python -m indexer reindex" in capsys.readouterr().err


def test_searches_during_adds_return_only_catalog_ids():
    """Writers add to the catalog first, then the index; readers must only see catalog ids, with the
    score each id's own vector gives (no torn or mismatched rows)."""
    dim, batches, batch = 32, 40, 250
    all_x = unit(batches * batch, dim, 15)
    catalog: set[int] = set()
    catalog_lock = threading.Lock()
    index = ClipIndex.build(all_x[:batch], np.arange(batch))
    catalog.update(range(batch))
    stop, failures, searches = threading.Event(), [], [0]
    queries = unit(8, dim, 16)

    def reader() -> None:
        while not stop.is_set():
            scores, found = index.search(queries, 20)
            with catalog_lock:
                seen = set(catalog)
            for q, s_row, f_row in zip(queries, scores, found):
                for s, f in zip(s_row, f_row):
                    if f < 0:
                        continue
                    if f not in seen or abs(float(q @ all_x[f]) - s) > 1e-4:
                        failures.append((int(f), float(s)))
            searches[0] += 1

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for b in range(1, batches):
        new = np.arange(b * batch, (b + 1) * batch)
        with catalog_lock:
            catalog.update(new.tolist())
        index.add(all_x[new], new)
        index.add(all_x[new[:10]], new[:10])  # re-ingest: an update of existing ids
    stop.set()
    for t in threads:
        t.join()
    assert not failures, failures[:5]
    assert searches[0] > 0 and len(index) == batches * batch


CHILD = """
import sys, numpy as np
sys.path.insert(0, {root!r})
from indexer.index.clip_index import ClipIndex
rng = np.random.default_rng(0)
versions = [ClipIndex.build(rng.standard_normal((100_000, 64), dtype=np.float32), np.arange(100_000) + offset,
                            model={{"version": offset}}, factory="IDMap2,Flat") for offset in (1, 2)]
print("ready", flush=True)
while True:
    for index in versions:
        index.save({directory!r})
"""


@pytest.mark.slow
def test_save_killed_midway_leaves_a_loadable_index(tmp_path):
    """A child saves two other 26 MB indexes in a loop and is SIGKILLed at random moments; each time
    the directory must load, verify, and hold one complete version (the original or a newer one)."""
    original, _ = saved_index(tmp_path)
    rng = np.random.default_rng(17)
    mid_write = 0
    for trial in range(5):
        child = subprocess.Popen([sys.executable, "-c", CHILD.format(root=str(ROOT), directory=str(tmp_path))],
                                 stdout=subprocess.PIPE, text=True)
        assert child.stdout.readline().strip() == "ready"
        time.sleep(float(rng.uniform(0.05, 1.5)))
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        loaded = ClipIndex.load(tmp_path)
        version = loaded.model["version"] if "version" in loaded.model else 0
        want = {0: 200, 1: 100_000, 2: 100_000}[version]
        assert len(loaded) == want and loaded.ids()[0] == (0 if version == 0 else version)
        mid_write += bool(list(tmp_path.glob(".clips.faiss.tmp-*")))  # killed while writing the file
    assert mid_write >= 1, "no kill landed inside a write: the test did not test anything"
    original.save(tmp_path)  # a save touches only its own files; the lock holder sweeps the rest
    index_files.remove_orphans(tmp_path)
    assert not list(tmp_path.glob(".*.tmp-*")) and len(list(tmp_path.glob("clips-*.faiss"))) == 1
    assert len(ClipIndex.load(tmp_path, expected_model=MODEL)) == 200


def test_compressed_index_keeps_ids_and_finds_stored_vectors(tmp_path):
    x = unit(2500, 16, 18)
    ids = np.arange(2500, dtype=np.int64) + 10_000
    index = ClipIndex.build(x, ids, compress=True)
    assert index.factory == "IVF256_HNSW32,PQ4"  # 4 * sqrt(2500) = 200 -> 256 lists, 16 / 4 = 4 bytes
    index.remove(ids[:50])
    index.nprobe = 256
    _, found = index.search(x[:200], 5)
    assert not set(found.ravel().tolist()) & set(ids[:50].tolist())
    assert np.mean(found[50:, 0] == ids[50:200]) > 0.5  # PQ codes: the clip itself usually ranks first
    index.save(tmp_path)
    np.testing.assert_array_equal(ClipIndex.load(tmp_path).ids(), ids[50:])
