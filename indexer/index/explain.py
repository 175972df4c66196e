"""Attribution of search results: ``actbert.attribution`` on a library's clips, as search sees them.

A clip's inputs are the searcher's (``Searcher.clip_inputs``: the clip contract with the model's
region limit; a no-region model's clips without regions), its region slots are named by the
detector's classes and frame times, and "as if absent" re-ranks score the page's clips with one
kind of element removed through the clip contract's removal, in one batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from actbert.attribution import (Attribution, PairText, attribute, element_labels, kind_elements,
                                  match_occlusions, match_scores, region_names, why_line)
from actbert.data import remove_elements
from indexer.index.search import Searcher
from indexer.library.catalog import Clip
from indexer.library.feature_cache import load_features
from indexer.library.inspector import region_class_names

# What the Search page's toggle can take away: (label, actbert kind, vocabulary source)
ABSENT = {"all regions": "regions", "the action": "action", "object words": "words",
          "verb words": "words"}


def pair_text(searcher: Searcher, query: str) -> PairText:
    return PairText.encode(searcher.tokenizer, query)


def clip_attribution(searcher: Searcher, clip: Clip, query: str, gradients: bool = False,
                     steps: int = 16) -> Attribution:
    """Occlusion (and with ``gradients`` integrated gradients) of ``query`` against ``clip``."""
    inputs = searcher.clip_inputs(clip)
    features = load_features(searcher.library, clip.feature_path)
    names = region_names(features, inputs, region_class_names(searcher.library))
    return attribute(searcher.model, pair_text(searcher, query), inputs, names, gradients, steps)


def why_lines(searcher: Searcher, query: str, clips: list[Clip], k: int = 3) -> dict[int, str]:
    """clip id -> the "why" line of each clip (``Attribution.why``: the ``k`` elements whose
    removal lowers the match probability most), every clip's occlusions in shared batches
    (``actbert.attribution.match_occlusions``): what a results page's why lines cost together."""
    if not clips:
        return {}
    text = pair_text(searcher, query)
    inputs = [searcher.clip_inputs(c) for c in clips]
    classes = region_class_names(searcher.library)
    out = {}
    for clip, sample, result in zip(clips, inputs, match_occlusions(searcher.model, text, inputs)):
        names = region_names(load_features(searcher.library, clip.feature_path), sample, classes)
        labels = element_labels(list(result.elements), text, sample, names)
        out[clip.clip_id] = why_line(labels, result.match_effect, k)
    return out


def vocabulary(searcher: Searcher, absent: str) -> list[str] | None:
    """The words a word kind removes: the detector's class names (object words) or the verbs
    the model was pretrained on (verb words)."""
    if absent == "object words":
        return [w for name in region_class_names(searcher.library)[1:] for w in name.split()]
    if absent == "verb words":
        return list(searcher.model.config.extra.get("verbs") or searcher.library.manifest.verbs)
    return None


@dataclass(frozen=True)
class AbsentRank:
    """A clip's match probability with everything and without the chosen kind, and its rank
    among the page's clips by each (1 = first); ``change`` = rank with - rank without
    (positive: it moves up when the kind is absent)."""

    clip_id: int
    score: float
    score_without: float
    rank: int
    rank_without: int
    removed: int  # how many elements were removed from this pair

    @property
    def change(self) -> int:
        return self.rank - self.rank_without


def rank_without(searcher: Searcher, query: str, clips: list[Clip], absent: str) -> list[AbsentRank]:
    """The page's clips ranked by the matching head with and without ``absent`` (a key of
    ``ABSENT``): 2 x len(clips) pairs in one batched pass."""
    if absent not in ABSENT:
        raise ValueError(f"absent must be one of {sorted(ABSENT)}, got {absent!r}")
    text = pair_text(searcher, query)
    words = vocabulary(searcher, absent)
    ids, videos, counts = [], [], []
    for clip in clips:
        inputs = searcher.clip_inputs(clip)
        gone = kind_elements(text, inputs, ABSENT[absent], words)
        removed_ids, removed = remove_elements(text.ids, inputs, gone, text.mask_id)
        ids += [text.ids, removed_ids]
        videos += [inputs, removed]
        counts.append(len(gone))
    if not clips:
        return []
    import torch

    stacked = torch.stack(ids)
    scores = match_scores(searcher.model, stacked, text.mask.expand_as(stacked), videos)
    full, without = scores[0::2], scores[1::2]
    rank = np.empty(len(clips), int)
    rank[np.argsort(-full, kind="stable")] = np.arange(1, len(clips) + 1)
    rank_w = np.empty(len(clips), int)
    rank_w[np.argsort(-without, kind="stable")] = np.arange(1, len(clips) + 1)
    return [AbsentRank(c.clip_id, float(f), float(w), int(r), int(rw), n)
            for c, f, w, r, rw, n in zip(clips, full, without, rank, rank_w, counts)]


def clip_faithfulness(searcher: Searcher, clip: Clip, query: str, attribution: Attribution,
                      maps) -> tuple:
    """(``Faithfulness`` of every head and the rollout, deletion/insertion ``Curve`` per ranking:
    attention, rollout, gradient (when computed), occlusion) for the pair's attention ``maps``."""
    from actbert import faithfulness as fa

    model = searcher.model
    drop = -attribution.match_effect
    grid = fa.faithfulness(maps, attribution.elements, drop, model.config.match_input)
    rankings = {"attention": fa.mean_attention(maps, attribution.elements),
                "rollout": fa.rollout_attention(maps, attribution.elements, model.config.match_input),
                "occlusion": drop}
    if attribution.match_gradient is not None:
        rankings["gradient"] = -attribution.match_gradient
    curves = fa.curves(model, pair_text(searcher, query), searcher.clip_inputs(clip),
                       list(attribution.elements), rankings)
    return grid, curves
