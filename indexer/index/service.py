"""The services the explorer and the commands share: ``LibraryService`` (the library as a whole:
its status, folders ingested into it) and ``ClipService`` (its clips, over the catalog, features
and model).

``ClipService.search``, ``search_region`` and ``similar`` return ``SearchHit``s (a ``Clip`` and its scores); ``clip`` returns a
``ClipView`` (the ``Clip`` and its regions); ``attention`` returns a ``ClipAttention``: every
attention map of one (query, clip) forward pass with the frames already decoded and every region
slot the model saw matched to its frame and box, so a page only draws.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from indexer.index.search import Searcher, SearchHit, SearchResult
from indexer.index.status import LibraryStatus, library_status
from indexer.library import inspector
from indexer.library.catalog import Clip
from indexer.library.feature_cache import load_features
from indexer.library.ingest import IngestSettings, IngestSummary, ingest
from indexer.library.store import Library


class LibraryService:
    """One library as a whole: what the Library page and the ``ingest`` and ``status`` commands do."""

    def __init__(self, library: Library) -> None:
        self.library = library

    def status(self) -> LibraryStatus:
        """Every video's state, the catalog's counts, the model and both indexes against the catalog."""
        return library_status(self.library)

    def recorded_settings(self) -> IngestSettings:
        """The ingest settings the library recorded (the defaults for those it did not)."""
        return IngestSettings.from_record(self.library.manifest.settings)

    def ingest(self, paths: list[str | Path], settings: IngestSettings | None = None, *,
               shard: tuple[int, int] | None = None, progress: bool = False,
               on_video_done: Callable[[str], None] | None = None,
               runner: Callable[[], object] | None = None) -> IngestSummary:
        """The videos under ``paths`` ingested with ``settings`` (default: ``recorded_settings``),
        under the writer lock, the index brought to the catalog at the end
        (``indexer.library.ingest.ingest``: ``shard`` i/n, a tqdm bar when ``progress``,
        ``on_video_done(video_id)`` after each video, ``runner`` the Ray runner or the local one)."""
        return ingest(self.library, paths, settings or self.recorded_settings(), shard=shard,
                      progress=progress, on_video_done=on_video_done, runner=runner)


@dataclass(frozen=True)
class ClipAttention:
    """One (query, clip) forward pass ready to draw.

    view: the clip and its regions; sample: the attention maps and token labels; frames (F, H, W, 3)
    uint8 RGB at ``view.frame_times_sec``; slot_frame (R,) the frame index of region slot r + 1
    (slot 0 is the global token); slot_boxes (R, 4) its box in pixels of those frames."""

    view: inspector.ClipView
    sample: inspector.AttentionSample
    frames: np.ndarray
    slot_frame: np.ndarray
    slot_boxes: np.ndarray


class ClipService:
    """One library seen through its clips; the model is loaded on first need."""

    def __init__(self, library: Library, searcher: Searcher | None = None) -> None:
        self.library = library
        self._searcher = searcher

    @property
    def searcher(self) -> Searcher:
        if self._searcher is None:
            self._searcher = Searcher(self.library)
        return self._searcher

    def search(self, query: str, **options) -> SearchResult:
        """``Searcher.search`` (k, rerank, mode, video, task)."""
        return self.searcher.search(query, **options)

    def search_region(self, region: str, words: str = "", **options) -> SearchResult:
        """Clips holding regions like ``region`` (``CLIP_ID:SLOT`` or ``VIDEO:CLIP:SLOT``), fused
        with ``words`` when given (``indexer.index.region_search``; options k, video, task)."""
        from indexer.index.region_search import region_of, search_region

        clip, slot = region_of(self.library, region)
        return search_region(self.searcher, clip, slot, words, **options)

    def searchable_videos(self) -> list[str]:
        """The videos whose clips the served index holds (what a search finds by vector), sorted."""
        return self.library.catalog.videos_of_clips(self.searcher.index.ids().tolist())

    def similar(self, clip_id: int, k: int = 10) -> list[SearchHit]:
        return self.searcher.similar(clip_id, k)

    def moment(self, query: str, video_id: str):
        """Every clip of ``video_id`` scored against ``query`` as the search scores it, and the best
        span (``indexer.index.moments.VideoRelevance``)."""
        from indexer.index.moments import video_relevance

        return video_relevance(self.searcher, query, video_id)

    def clip(self, clip_id: int) -> inspector.ClipView:
        return inspector.clip_view(self.library, clip_id)

    def action_verbs(self, clip: Clip, top: int = 5) -> list[list[tuple[str, float]]]:
        """The ActBERT action head's ``top`` verbs with probabilities for every clip of the
        clip's video, in clip order (each clip encoded alone, as the index encodes it)."""
        features = load_features(self.library, clip.feature_path)
        model = self.searcher.model
        names = inspector.verb_names(self.library, model.config.action.num_classes,
                                     model.config.extra.get("verbs"))
        return inspector.action_head_verbs(model, features, list(range(features.num_clips)), names,
                                           top=top)

    def explain(self, clip_id: int, query: str, gradients: bool = False):
        """Why ``clip_id`` matches ``query``: ``actbert.attribution.Attribution`` of every element
        (``indexer.index.explain``)."""
        from indexer.index.explain import clip_attribution

        return clip_attribution(self.searcher, self.searcher.clip(clip_id), query, gradients)

    def why_lines(self, query: str, clip_ids: list[int], k: int = 3) -> dict[int, str]:
        """clip id -> its "why" line for ``query`` (``explain(...).why(k)``), the clips' occlusions
        batched together (``indexer.index.explain.why_lines``); unknown ids are left out."""
        from indexer.index.explain import why_lines

        rows = self.library.catalog.clips_by_id(clip_ids)
        return why_lines(self.searcher, query, [rows[i] for i in clip_ids if i in rows], k)

    def faithfulness(self, clip_id: int, query: str, attribution, maps):
        """Per head faithfulness and deletion/insertion curves of one pair
        (``indexer.index.explain.clip_faithfulness``)."""
        from indexer.index.explain import clip_faithfulness

        return clip_faithfulness(self.searcher, self.searcher.clip(clip_id), query, attribution, maps)

    def rank_without(self, query: str, clip_ids: list[int], absent: str):
        """The clips re-ranked by the matching head as if ``absent`` were missing."""
        from indexer.index.explain import rank_without

        rows = self.library.catalog.clips_by_id(clip_ids)
        return rank_without(self.searcher, query, [rows[i] for i in clip_ids if i in rows], absent)

    def attention(self, clip_id: int, query: str) -> ClipAttention:
        """Every attention map of ``query`` against the clip, with its frames and region slots."""
        view = self.clip(clip_id)
        features = load_features(self.library, view.clip.feature_path)
        searcher = self.searcher
        sample = inspector.attention_sample(searcher.model, searcher.tokenizer, features,
                                            view.clip.clip_index, query,
                                            inspector.region_class_names(self.library))
        rows = sample.region_rows
        slot_frame = np.searchsorted(view.frame_times_sec, features.region_time_sec[rows])
        return ClipAttention(view=view, sample=sample,
                             frames=inspector.clip_frames(self.library, view),
                             slot_frame=np.minimum(slot_frame, max(len(view.frame_times_sec) - 1, 0)),
                             slot_boxes=features.region_boxes_xyxy[rows].reshape(-1, 4))
