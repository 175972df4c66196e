"""A library's status: each video's state, errors, clip count and stage times, the catalog's
counts, the recorded model and both indexes against the catalog. ``indexer status --json`` prints
``LibraryStatus.to_json()``; the explorer's Library page shows the same record
(``indexer.index.service.LibraryService.status``)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from indexer.index.reconcile import index_state
from indexer.index.region_index import region_state
from indexer.library.manifest import ModelEntry
from indexer.library.store import Library


@dataclass(frozen=True)
class VideoStatus:
    """One video of the catalog as the status shows it."""

    video_id: str
    path: str
    status: str                          # pending, done or failed
    error: str | None                    # why it failed (or was interrupted)
    warnings: list[str]                  # problems that left it usable (a transcript, a truncated file)
    clips: int
    duration_sec: float | None
    seconds_per_stage: dict[str, float]  # probe, text, actions, regions, write, total
    task: str | None
    split: str | None


@dataclass(frozen=True)
class LibraryStatus:
    """The library at ``library``: ``counts`` of videos per status and of clips (``Catalog.stats``),
    the ``model`` library.json names, the clip ``index`` and the ``region_index`` against the
    catalog (``reconcile.index_state``, ``region_index.region_state``: ``state`` and ``problem``
    first), and every video."""

    library: str
    counts: dict[str, int]
    model: ModelEntry | None
    index: dict
    region_index: dict
    videos: list[VideoStatus]

    def to_json(self) -> dict:
        return {"library": self.library, "counts": self.counts,
                "model": self.model.to_json() if self.model else None, "index": self.index,
                "region_index": self.region_index, "videos": [asdict(video) for video in self.videos]}


def library_status(library: Library) -> LibraryStatus:
    """The status of ``library`` now (read-only)."""
    counts = library.catalog.clip_counts()
    videos = [VideoStatus(
        video_id=row["video_id"], path=row["path"], status=row["status"], error=row["error"],
        warnings=json.loads(row["warnings"]), clips=counts.get(row["id"], 0), duration_sec=row["duration_sec"],
        seconds_per_stage=json.loads(row["timings"]), task=row["task"], split=row["split"])
        for row in library.catalog.videos()]
    return LibraryStatus(str(library.root), library.catalog.stats(), library.manifest.model,
                         index_state(library), region_state(library), videos)
