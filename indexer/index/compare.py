"""A second model beside the library's: one query, two rankings, each clip's rank change.

The second model is the library's no-region ablation (library.json ``model_no_regions``) unless
another checkpoint folder is named (an ``actbert ship`` output or any ``save_pretrained`` folder).
Its clip vectors are made by the clip contract exactly as the library's own (``embed_library``,
with the second model's region limit); a model pretrained without regions (its
``train_config.json`` says ``"use_regions": false``) is fed its clips with every region removed,
as pretraining and evaluation fed it. The vectors are kept as a FAISS index in
``LIB/compare/<weights fingerprint>/`` (``<weights fingerprint>-no-regions/`` for a model fed none),
written under the writer lock, and rebuilt when the library's finished clips are no longer the ones
it holds.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from actbert.checkpoint import uses_regions
from actbert.data import ClipInputs, remove_all_regions
from indexer.errors import ClipIndexError, LibraryError
from indexer.index.clip_index import ClipIndex
from indexer.index.embed import embed_library, load_model
from indexer.index.reconcile import model_record
from indexer.index.search import SharedQuery, Searcher, SearchResult
from indexer.library.catalog import Clip
from indexer.library.store import Library

log = logging.getLogger(__name__)

COMPARE_DIR = "compare"


def compare_checkpoint(library: Library, checkpoint: str | Path | None = None) -> Path:
    """The second model's folder: ``checkpoint``, else library.json's ``model_no_regions``."""
    if checkpoint:
        return Path(checkpoint)
    found = library.manifest.model_no_regions
    if found is None:
        raise LibraryError(f"{library.root / 'library.json'} names no 'model_no_regions': pass a "
                           "checkpoint folder to compare with")
    return found.folder(library.root)


def compare_index(library: Library, checkpoint: str | Path, clip_ids) -> ClipIndex:
    """The second model's index of the library's finished clips (``clip_ids``): loaded from
    ``LIB/compare/<fingerprint>/`` when it holds exactly those clips, else embedded and saved."""
    entry = model_record(library, checkpoint)
    record = entry.to_json()  # what the index manifest records
    # fed without regions: other vectors of the same weights (and never those of an index made
    # before the run folder's training record was read)
    suffix = "" if uses_regions(checkpoint) else "-no-regions"
    folder = library.root / COMPARE_DIR / f"{entry.fingerprint}{suffix}"
    wanted = set(int(i) for i in clip_ids)
    try:
        index = ClipIndex.load(folder, expected_model=record, library=library.root)
        if set(index.ids().tolist()) == wanted:
            return index
    except ClipIndexError:
        pass
    with library.writing():
        log.info("embedding the library with %s into %s", checkpoint, folder)
        net = load_model(str(checkpoint))
        vectors, ids = embed_library(library, net, use_regions=uses_regions(checkpoint))
        index = ClipIndex.build(vectors, ids, model=record) if len(ids) else \
            ClipIndex.empty(net.config.embed_size, model=record)
        index.save(folder)
    return index


class CompareSearcher(Searcher):
    """A ``Searcher`` over the second model's index; a model pretrained without regions reranks
    its clips with every region removed (the clip contract's ``remove_regions``)."""

    def __init__(self, library: Library, checkpoint: str | Path, index: ClipIndex) -> None:
        super().__init__(library, checkpoint, index=index)
        self.use_regions = uses_regions(checkpoint)

    def clip_inputs(self, clip: Clip) -> ClipInputs:
        inputs = super().clip_inputs(clip)
        return inputs if self.use_regions else remove_all_regions(inputs)


def second_searcher(first: Searcher, checkpoint: str | Path | None = None) -> CompareSearcher:
    """The second model's searcher over the library ``first`` searches. When its text-only
    layers are ``first``'s (two models pretrained from one BERT with them frozen, as the shipped
    model and its no-region ablation are), ``first``'s query text states serve it
    (``Searcher.text_twins``)."""
    folder = compare_checkpoint(first.library, checkpoint)
    second = CompareSearcher(first.library, folder,
                             compare_index(first.library, folder, first.index.ids()))
    if second.model.shares_text_prefix(first.model):
        second.text_twins = (first.model,)
    return second


@dataclass(frozen=True)
class RankChange:
    """One clip of either top list: its rank under each model (1 = first; None = not in that
    list) and ``change`` = first rank - second rank (positive: the second model ranks it higher)."""

    clip_id: int
    first_rank: int | None
    second_rank: int | None

    @property
    def change(self) -> int | None:
        if self.first_rank is None or self.second_rank is None:
            return None
        return self.first_rank - self.second_rank


def rank_changes(first: SearchResult, second: SearchResult) -> list[RankChange]:
    """Every clip of either list, in the second list's order, then the first's leftovers."""
    a = {h.clip.clip_id: r for r, h in enumerate(first.hits, 1)}
    b = {h.clip.clip_id: r for r, h in enumerate(second.hits, 1)}
    order = list(b) + [c for c in a if c not in b]
    return [RankChange(c, a.get(c), b.get(c)) for c in order]


def disagreement(first: list[int], second: list[int]) -> tuple[float, float]:
    """How far two top-k lists of clip ids disagree: (overlap, footrule). ``overlap``: the share
    of the k places both lists fill with the same clips (k: the longer list); ``footrule``: the
    mean over the clips of either list of |rank in first - rank in second|, a clip missing from a
    list ranked k + 1 there (Spearman's footrule with location parameter k + 1, Fagin et al. 2003)."""
    k = max(len(first), len(second))
    if not k:
        return 1.0, 0.0
    a = {c: r for r, c in enumerate(first, 1)}
    b = {c: r for r, c in enumerate(second, 1)}
    union = list(dict.fromkeys([*first, *second]))
    footrule = sum(abs(a.get(c, k + 1) - b.get(c, k + 1)) for c in union) / len(union)
    return len(a.keys() & b.keys()) / k, footrule


def side_by_side(first: Searcher, second: Searcher, query: str,
                 first_result: SearchResult | None = None, **options) -> dict:
    """Both models' results for ``query`` (the same search options) and the rank changes, as a
    JSON-ready dict. ``first_result``: ``first``'s search of ``query`` with these options, already
    made (the Search page's): only the second model searches then. The second search takes what
    the first left in ``SharedQuery``: the catalog's narration scores and clip rows, and the
    query's text state when the two models share their text-only layers."""
    if first_result is None:
        first_result = first.search(query, **options)
    elif first_result.query != query:
        raise ValueError(f"the first result is of {first_result.query!r}, not {query!r}")
    shared = first_result.shared if first_result.shared is not None else SharedQuery(query)
    results = [first_result, second.search(query, shared=shared, **options)]
    changes = {c.clip_id: c for c in rank_changes(*results)}

    def listed(searcher: Searcher, result: SearchResult, other: str) -> dict:
        return {"checkpoint": str(searcher.checkpoint), "ordering": result.ordering,
                "timings_ms": result.timings_ms,
                "hits": [{**h.as_dict(), "rank": r,
                          f"rank_{other}": getattr(changes[h.clip.clip_id], f"{other}_rank"),
                          "rank_change": changes[h.clip.clip_id].change}
                         for r, h in enumerate(result.hits, 1)]}

    return {"query": query, "first": listed(first, results[0], "second"),
            "second": listed(second, results[1], "first"),
            "uses_regions": {"first": uses_regions(first.checkpoint),
                             "second": uses_regions(second.checkpoint)}}
