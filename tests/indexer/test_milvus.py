"""The clip index on Milvus Lite (embedded, a real Milvus engine in-process): build, search, add,
remove and filters checked against a numpy exact search; a library exported to Milvus searches
and stays equal to its catalog like the FAISS one."""

import json

import numpy as np
import pytest

from indexer.index.files import IndexMismatchError, IndexMissingError
from indexer.index.milvus_backend import MilvusIndex, filter_expression
from indexer.index.recall import exact_top_k
from indexer.index.vector_index import VectorIndex
from indexer.library.store import Library

DIM = 32
MODEL = {"checkpoint": "models/actbert", "fingerprint": "test"}


def clustered(n: int, seed: int) -> np.ndarray:
    """Unit vectors around 20 centres (neighbours are close: recall is meaningful)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(20, DIM))
    x = centres[rng.integers(0, 20, n)] + 0.3 * rng.normal(size=(n, DIM))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def video_and_task(ids):
    """Attributes the catalog would give: clip i lies in video v{i % 7}, of task t{i // 2 % 3};
    one video id carries quotes and a backslash (a filter value is data, never expression)."""
    videos = [f"v{i % 7}" if i % 7 else 'v0 "x" \\ or true' for i in ids]
    return videos, [f"t{i // 2 % 3}" for i in ids]


@pytest.fixture(scope="module")
def uri(tmp_path_factory):
    """One Milvus Lite database (one embedded server) for the module."""
    return str(tmp_path_factory.mktemp("milvus") / "clips.db")


@pytest.fixture(scope="module")
def built(uri):
    x = clustered(1500, seed=0)
    ids = np.arange(1500, dtype=np.int64) * 3 + 5  # catalog ids are not positions
    index = MilvusIndex.build(x, ids, uri, "clips", model=MODEL, attributes=video_and_task)
    return index, x, ids, uri


def test_build_search_recall_and_scores_against_exact(built):
    index, x, ids, _ = built
    assert len(index) == 1500 and np.array_equal(index.ids(), ids)
    queries = clustered(60, seed=1)
    scores, found = index.search(queries, 10)
    truth = ids[exact_top_k(queries, x, 10)]
    recall = np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth)])
    assert recall >= 0.95, recall
    cosines = np.take_along_axis(queries @ x.T, np.searchsorted(ids, found), axis=1)
    np.testing.assert_allclose(scores, cosines, atol=1e-5)
    assert (np.diff(scores, axis=1) <= 1e-6).all()  # best first


def test_a_milvus_index_is_a_vector_index(built):
    index, x, ids, _ = built
    assert isinstance(index, VectorIndex) and index.filters and not index.on_gpu
    np.testing.assert_allclose(index.reconstruct_many(ids[[7, 3]]), x[[7, 3]], atol=1e-6)
    assert index.reconstruct_many(np.zeros(0, np.int64)).shape == (0, DIM)


def test_filters_are_pushed_down_and_exact(built):
    index, x, ids, _ = built
    query = clustered(1, seed=2)
    videos, tasks = map(np.array, video_and_task(ids))
    for video, task in (("v3", None), (None, "t1"), ("v5", "t2"), (videos[0], None)):
        _, found = index.search(query, 10, video=video, task=task)
        keep = (videos == video if video else True) & (tasks == task if task else True)
        subset = ids[keep]
        want = subset[exact_top_k(query, x[keep], 10)[0]]
        assert len(want) == 10 and found[0].tolist() == want.tolist(), (video, task)
    _, none = index.search(query, 5, video="no such video")
    assert (none == -1).all()
    assert filter_expression('a"b\\', "t") == 'video_id == "a\\"b\\\\" and task == "t"'


def test_add_update_remove_and_reopen(built):
    index, _, _, uri = built
    new = clustered(5, seed=3)
    new_ids = np.array([10_000, 10_001, 10_002, 10_003, 10_004])
    index.add(new, new_ids)
    _, found = index.search(new, 1)
    assert found[:, 0].tolist() == new_ids.tolist()
    index.add(-new[:1], new_ids[:1])  # an id already held is replaced
    np.testing.assert_allclose(index.reconstruct(10_000), -new[0], atol=1e-6)
    assert index.remove([10_001, 10_002, 999_999]) == 2
    _, found = index.search(new[1:3], 3)
    assert not {10_001, 10_002} & set(found.ravel().tolist())
    index.save()
    again = MilvusIndex.open(uri, "clips", expected_model=MODEL, attributes=video_and_task)
    assert np.array_equal(again.ids(), index.ids()) and len(again) == 1500 + 3
    with pytest.raises(IndexMismatchError, match="model"):
        MilvusIndex.open(uri, "clips", expected_model={"other": 1}, attributes=video_and_task)
    with pytest.raises(IndexMissingError):
        MilvusIndex.open(uri, "absent", attributes=video_and_task)


def test_a_library_exported_to_milvus_searches_like_faiss(tmp_path, uri):
    from indexer.cli import main
    from indexer.index.backends import backend_of, open_index
    from indexer.index.clip_index import ClipIndex
    from indexer.index.reconcile import index_state, reconcile_index
    from indexer.index.search import Searcher
    from tests.app.tiny_library import build_tiny_library

    root = build_tiny_library(tmp_path / "lib")
    faiss_index = ClipIndex.load(root / "index")
    assert main(["export-milvus", str(root), "--uri", uri, "--collection", "library_clips"]) == 0
    library = Library(root)
    assert backend_of(library)["name"] == "milvus" and backend_of(library)["uri"] == uri
    milvus = open_index(library)
    assert np.array_equal(milvus.ids(), faiss_index.ids())
    queries = np.stack([faiss_index.reconstruct(int(i)) for i in faiss_index.ids()[:4]])
    want_scores, want_ids = faiss_index.search(queries, 6)
    got_scores, got_ids = milvus.search(queries, 6)
    assert got_ids.tolist() == want_ids.tolist()
    np.testing.assert_allclose(got_scores, want_scores, atol=1e-5)

    searcher = Searcher(library)
    assert searcher.index.factory == "milvus"
    video = library.catalog.videos("done")[1]["video_id"]
    result = searcher.search("cut the tomato", k=5, mode="vector", rerank=0, video=video)
    assert result.hits and {h.clip.video_id for h in result.hits} == {video}

    # A deletion goes through the catalog; the writer's reconcile brings Milvus to it.
    removed = library.catalog.delete_video(video)
    _, report = reconcile_index(library)
    assert report["removed"] == len(removed)
    assert np.array_equal(open_index(library).ids(), np.array(library.catalog.clip_ids()))
    assert index_state(library)["state"] == "ok"
    assert json.loads((root / "library.json").read_text())["index_backend"]["name"] == "milvus"
