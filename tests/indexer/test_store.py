"""The SQLite catalog and the library folder."""

import sqlite3

import pytest

from indexer.library.catalog import Catalog, ClipRecord
from indexer.library.store import Library, LibraryError


@pytest.fixture()
def library(tmp_path):
    return Library.create(tmp_path / "lib")


def add_video(catalog, video_id, narrations):
    rowid = catalog.upsert_video(video_id, f"/videos/{video_id}.mp4", "fp1", 10)
    clips = [ClipRecord(i, 4.0 * i, 4.0 * i + 4, text, ("cut",) if "cut" in text else ())
             for i, text in enumerate(narrations)]
    return rowid, catalog.complete_video(rowid, clips, [(0.0, 4.0, narrations[0])],
                                         [(0, 0.0, 4.0, "cut", "cut the tomato")], task="salad")


def test_complete_video_replaces_clips_atomically(library):
    cat = library.catalog
    rowid, (removed, first) = add_video(cat, "v1", ["cut the tomato", "pour the oil"])
    assert removed == [] and len(first) == 2
    # Re-ingest: old clips removed, new ids returned, nothing duplicated.
    removed, second = cat.complete_video(rowid, [ClipRecord(0, 0, 5, "stir the soup")], [])
    assert removed == first and len(second) == 1
    assert [r["narration"] for r in cat.clips_of("v1")] == ["stir the soup"]
    assert cat.video("v1")["status"] == "done"


def test_failed_transaction_leaves_previous_state(library):
    cat = library.catalog
    rowid, (_, ids) = add_video(cat, "v1", ["cut the tomato", "pour the oil"])
    duplicate = [ClipRecord(0, 0, 1, "a"), ClipRecord(0, 1, 2, "b")]  # violates UNIQUE
    with pytest.raises(sqlite3.IntegrityError):
        cat.complete_video(rowid, duplicate, [])
    assert [r["id"] for r in cat.clips_of("v1")] == ids


def test_changed_fingerprint_resets_to_pending(library):
    cat = library.catalog
    add_video(cat, "v1", ["cut the tomato"])
    cat.upsert_video("v1", "/videos/v1.mp4", "fp1", 10)
    assert cat.video("v1")["status"] == "done"
    cat.upsert_video("v1", "/videos/v1.mp4", "fp2", 11)
    assert cat.video("v1")["status"] == "pending"


def test_fts5_narration_search_and_delete(library):
    cat = library.catalog
    add_video(cat, "v1", ["now cut the tomato slowly", "pour the oil in the pan"])
    add_video(cat, "v2", ["subscribe to my channel", "cutting the onions"])
    hits = cat.search_narration("cut tomato")
    texts = [cat.clips_by_id([h[0]])[h[0]].narration for h in hits]
    assert texts[0] == "now cut the tomato slowly"
    assert "cutting the onions" in texts  # porter stemming: cutting ~ cut
    assert "subscribe to my channel" not in texts
    removed = cat.delete_video("v1")
    assert len(removed) == 2
    assert all(cat.clips_by_id([h])=={} for h in removed)
    assert [h for h, _ in cat.search_narration("tomato")] == []


def test_stats_and_clip_ids(library):
    cat = library.catalog
    add_video(cat, "v1", ["a", "b"])
    rowid = cat.upsert_video("v2", "/videos/v2.mp4", "x", 1)
    cat.mark_failed(rowid, "NotAVideoError: not a video")
    assert cat.stats() == {"pending": 0, "done": 1, "failed": 1, "clips": 2}
    assert len(cat.clip_ids()) == 2


def test_opening_a_non_library_is_a_clear_error(tmp_path):
    with pytest.raises(LibraryError, match="not an ActBERT library"):
        Library(tmp_path)
    (tmp_path / "catalog.sqlite").write_text("garbage")
    with pytest.raises(LibraryError, match="not a readable catalog"):
        Catalog(tmp_path / "catalog.sqlite")


def test_resolve_inside_refuses_path_traversal(library, tmp_path):
    source = tmp_path / "videos"
    source.mkdir()
    (source / "a.mp4").write_bytes(b"x")
    (tmp_path / "secret.txt").write_text("no")
    library.add_source(source)
    assert library.resolve_inside(source / "a.mp4") == (source / "a.mp4").resolve()
    with pytest.raises(LibraryError, match="outside"):
        library.resolve_inside(source / ".." / "secret.txt")
    with pytest.raises(LibraryError, match="outside"):
        library.resolve_inside("/etc/passwd")
