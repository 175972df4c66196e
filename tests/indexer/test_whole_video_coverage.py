"""Whole-video coverage (issue 29, item 10): the stretches of a video nobody talks over become
clips too (fixed windows flagged unnarrated), so visual search reaches them. Checked against
SynthKitchen's ground truth, which knows every step's time span: before, a video whose narration
stops after its first line was one clip, and every later step had no clip at all."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
import torch
import webvtt

from actbert.config import ActBertConfig
from actbert.corpus import ClipGroups, read_corpus
from actbert.evaluation.tasks import load_split
from actbert.model import ActBertForPretraining
from indexer.features.i3d import FEATURE_SIZE as I3D_FEATURE_SIZE
from indexer.index.embed import set_library_model
from indexer.index.search import Searcher, build_index
from indexer.library.catalog import Catalog, ClipRecord
from indexer.library.discovery import video_id_for
from indexer.library.export import export_corpus
from indexer.library.ingest import IngestSettings, ingest
from indexer.library.store import Library
from synthkitchen.corpus import generate

pytestmark = pytest.mark.usefixtures("one_torch_thread")
SETTINGS = IngestSettings(action_weights="none", regions=False)


def _overlap(a0, a1, b0, b1):
    return max(0.0, min(a1, b1) - max(a0, b0))


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """Two SynthKitchen videos; the first one's narration is cut to its first line (the issue's
    "one cue at 0-5 s" case). Ingested into a library with a tiny model and its index."""
    root = tmp_path_factory.mktemp("coverage")
    generate(root / "corpus", 2, seed=3, size=(96, 64), fps=8, step_sec=(1.5, 2.0))
    videos = root / "corpus" / "videos"
    sparse = sorted(videos.glob("*.vtt"))[0]
    first = webvtt.read(str(sparse)).captions[0]
    sparse.write_text(f"WEBVTT\n\n{first.start} --> {first.end}\n{first.text}\n")
    lib = Library.create(root / "lib")
    config = ActBertConfig.from_name("tiny", action={"feature_size": I3D_FEATURE_SIZE},
                                    region={"feature_size": 1})  # no regions: 1-wide rows
    torch.manual_seed(0)
    ActBertForPretraining(config).eval().save_pretrained(lib.root / "models" / "actbert")
    set_library_model(lib, lib.root / "models" / "actbert")
    build_index(lib)
    summary = ingest(lib, [videos], SETTINGS, progress=False)
    assert summary.done == 2 and summary.indexed, summary
    yield lib, root / "corpus", video_id_for(sparse.with_suffix(".mp4"))
    lib.close()


def _truth(lib, corpus, video_id):
    stem = Path(lib.catalog.video(video_id)["path"]).stem
    return json.loads((corpus / "ground_truth" / f"{stem}.json").read_text())


def test_every_ground_truth_step_has_a_clip(library):
    lib, corpus, sparse = library
    for row in lib.catalog.videos("done"):
        truth = _truth(lib, corpus, row["video_id"])
        clips = lib.catalog.clips_of(row["video_id"])
        for step in truth["steps"]:
            best = max(_overlap(c["start_sec"], c["end_sec"], step["start_sec"], step["end_sec"])
                       for c in clips)
            # the whole step lies inside some clip or is shared by two (windows are 6 s, steps 2 s)
            assert best >= min(1.0, step["end_sec"] - step["start_sec"]), (row["video_id"], step)
    # The sparse video: one narrated clip around its only line, the rest windows without text.
    clips = lib.catalog.clips_of(sparse)
    narrated = [c for c in clips if c["narrated"]]
    assert len(narrated) == 1 and narrated[0]["narration"]
    windows = [c for c in clips if not c["narrated"]]
    assert windows and all(c["narration"] == "" and json.loads(c["verbs"]) == [] for c in windows)
    # They fill the video from the narrated clip's end to the video's end, nothing left over 2 s.
    duration = lib.catalog.video(sparse)["duration_sec"]
    assert duration == pytest.approx(_truth(lib, corpus, sparse)["duration_sec"], abs=0.2)
    spans = sorted((c["start_sec"], c["end_sec"]) for c in clips)
    reached = 0.0
    for start, end in spans:
        assert start - reached < 2.0
        reached = max(reached, end)
    assert reached == pytest.approx(duration, abs=1e-6)
    assert min(c["start_sec"] for c in windows) >= narrated[0]["end_sec"] - 1e-6


def test_unnarrated_clips_are_found_by_the_visual_signal_only(library):
    lib, _, sparse = library
    windows = [c["id"] for c in lib.catalog.clips_of(sparse) if not c["narrated"]]
    searcher = Searcher(Library(lib.root, readonly=True))
    assert set(lib.catalog.clip_ids()) == set(int(i) for i in searcher.index.ids())
    assert windows and set(windows) <= set(int(i) for i in searcher.index.ids())
    for clip_id in windows:  # each has its vector: "more like this" starts from it
        assert len(searcher.similar(clip_id, k=3)) == 3
    every = searcher.search("crack the egg into the pan", k=len(searcher.index), mode="vector", rerank=0)
    found = {h.clip.clip_id: h for h in every.hits}
    assert set(windows) <= set(found) and all(found[i].signals == ("vector",) for i in windows)
    assert all(h.as_dict()["narrated"] is False for i, h in found.items() if i in windows)
    by_text = searcher.search("crack the egg into the pan", k=50, mode="narration", rerank=0)
    assert not {h.clip.clip_id for h in by_text.hits} & set(windows)


def test_pretraining_reads_narrated_clips_and_evaluation_every_clip(library):
    lib, corpus, sparse = library
    part = read_corpus(export_corpus(lib))
    for video in part.videos:
        rows = lib.catalog.clips_of(video.video_id)
        assert list(video.narrated) == [bool(c["narrated"]) for c in rows]
    groups = ClipGroups(part, clips_per_sample=3)
    used = {(part.videos[vi].video_id, c) for vi, _, clips in groups.items for c in clips}
    flags = {(v.video_id, c): v.narrated[c] for v in part.videos for c in range(len(v.narrated))}
    assert used == {key for key, narrated in flags.items() if narrated}
    sample = groups.sample(0)
    assert all(sample.sentences)  # every clip of a pretraining sample has its narration
    # Evaluation: the narrated split keeps its old meaning, the full one reaches every step.
    split = part.videos[0].split
    narrated, every = load_split(part, split), load_split(part, split, unnarrated=True)
    assert len(narrated.clips) == sum(flags[(v.video_id, c)] for v in narrated.corpus.videos
                                      for c in range(len(v.narrations)))
    assert len(every.clips) == sum(len(v.narrations) for v in every.corpus.videos)
    lost = [q for q in narrated.queries if q.target is None]
    assert lost and all(q.target is not None for q in every.queries)


def test_a_catalog_made_before_the_flag_still_opens(tmp_path):
    path = tmp_path / "catalog.sqlite"
    with Catalog(path) as catalog:
        rowid = catalog.upsert_video("v", "/videos/v.mp4", "fp", 1)
        catalog.complete_video(rowid, [ClipRecord(0, 0.0, 4.0, "cut it"), ClipRecord(1, 4.0, 8.0, "", narrated=False)], [])
    db = sqlite3.connect(path)  # the clips table as older versions made it
    db.execute("ALTER TABLE clips DROP COLUMN narrated")
    db.commit()
    db.close()
    with Catalog(path, readonly=True) as old:  # a reader: every clip counts as narrated
        assert [old.clip(i).narrated for i in old.clip_ids()] == [True, True]
    with Catalog(path) as catalog:  # a writer adds the column
        assert "narrated" in catalog.columns("clips")
        assert [c.narrated for c in catalog.clips_by_id(catalog.clip_ids()).values()] == [True, True]
        rowid = catalog.upsert_video("w", "/videos/w.mp4", "fp", 1)
        catalog.complete_video(rowid, [ClipRecord(0, 0.0, 6.0, "", narrated=False)], [])
        assert [c["narrated"] for c in catalog.clips_of("w")] == [0]
    np.testing.assert_array_equal([1, 1, 0], [r[0] for r in Catalog(path, readonly=True).query(
        "SELECT narrated FROM clips ORDER BY id")])
