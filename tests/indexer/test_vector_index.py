"""``VectorIndex``: the FAISS clip index and the Milvus backend both satisfy the protocol (every
member present; every method takes the protocol's parameters, in its order, any further ones
optional), and the id bookkeeping they share (``KeyedVectors``) agrees with a plain set of ids.
Milvus instances are checked in test_milvus.py."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from indexer.index.clip_index import ClipIndex
from indexer.index.milvus_backend import MilvusIndex
from indexer.index.vector_index import KeyedVectors, VectorIndex

DATA_MEMBERS = {"model", "factory", "nprobe", "filters", "on_gpu"}


def protocol_members() -> dict[str, object]:
    """The protocol's methods and properties (its data members are ``DATA_MEMBERS``)."""
    return {name: value for name, value in vars(VectorIndex).items()
            if (not name.startswith("_") or name in ("__len__", "__contains__"))
            and (callable(value) or isinstance(value, property))}


def signature_problems(cls: type) -> list[str]:
    """How ``cls`` falls short of ``VectorIndex``, read from the class (nothing is built)."""
    problems = []
    for name, wanted in protocol_members().items():
        have = inspect.getattr_static(cls, name, None)
        if isinstance(wanted, property):
            if not isinstance(have, property):
                problems.append(f"{name}: not a property")
            continue
        if not callable(have):
            problems.append(f"{name}: missing")
            continue
        want = list(inspect.signature(wanted).parameters.values())
        got = list(inspect.signature(have).parameters.values())
        if [p.name for p in got[:len(want)]] != [p.name for p in want]:
            problems.append(f"{name}{inspect.signature(have)} does not take {inspect.signature(wanted)}")
        problems += [f"{name}: extra parameter {p.name} has no default" for p in got[len(want):]
                     if p.default is inspect.Parameter.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    return problems


def test_the_protocol_declares_what_search_and_reconcile_use():
    assert {"dim", "__len__", "__contains__", "ids", "add", "remove", "needs_rebuild", "reconstruct",
            "reconstruct_many", "search", "similar", "save"} <= set(protocol_members())


@pytest.mark.parametrize("cls", [ClipIndex, MilvusIndex])
def test_both_engines_satisfy_the_protocol_structurally(cls):
    assert signature_problems(cls) == []
    # the data members are class attributes or properties, except ``model`` (set per instance)
    assert all(inspect.getattr_static(cls, name, None) is not None for name in DATA_MEMBERS - {"model"})


def test_the_structural_check_sees_a_shortfall():
    class Short(KeyedVectors):
        def add(self, vectors):  # no ids
            pass

        def search(self, queries, k, exact):  # a required extra
            pass

    problems = signature_problems(Short)
    assert any(p.startswith("add(") for p in problems) and any("exact" in p for p in problems)
    assert any(p == "save: missing" for p in problems) and any(p == "dim: not a property" for p in problems)


def test_a_clip_index_is_a_vector_index_at_run_time():
    index = ClipIndex.empty(4, model={"checkpoint": "m"})
    assert isinstance(index, VectorIndex) and not index.filters
    assert not isinstance(object(), VectorIndex)


class ExactIndex(KeyedVectors):
    """A dictionary of vectors searched exactly: the reference the shared bookkeeping runs on."""

    def __init__(self) -> None:
        self._held = np.zeros(0, np.int64)
        self.vectors: dict[int, np.ndarray] = {}

    def add(self, vectors, ids):
        self.vectors.update(zip(map(int, ids), vectors))
        self._hold(np.asarray(ids, np.int64))

    def remove(self, ids):
        held = self._held_among(ids)
        for i in held:
            del self.vectors[int(i)]
        self._forget(held)
        return int(held.size)

    def reconstruct(self, clip_id):
        return self.vectors[int(clip_id)]

    def search(self, queries, k):
        ids = np.array(sorted(self.vectors), np.int64)
        scores = np.stack([self.vectors[i] for i in ids]) @ np.asarray(queries).reshape(-1)
        order = np.argsort(-scores, kind="stable")[:k]
        return scores[order][None], ids[order][None]


def test_the_shared_bookkeeping_agrees_with_a_set_of_ids():
    rng = np.random.default_rng(0)
    index, expected = ExactIndex(), set()
    for step in range(30):
        ids = rng.choice(60, size=rng.integers(1, 8), replace=False)
        if step % 3 == 2:
            assert index.remove(np.concatenate([ids, ids])) == len(expected & set(ids.tolist()))
            expected -= set(ids.tolist())
        else:
            vectors = rng.normal(size=(len(ids), 4))
            index.add(vectors / np.linalg.norm(vectors, axis=1, keepdims=True), ids)
            expected |= set(ids.tolist())
        assert index.ids().tolist() == sorted(expected) and len(index) == len(expected)
        assert all((i in index) == (i in expected) for i in range(-1, 61))
    held = index.ids()
    scores, found = index.similar(int(held[0]), 3)
    assert int(held[0]) not in found and len(found) == 3 and (np.diff(scores) <= 0).all()
