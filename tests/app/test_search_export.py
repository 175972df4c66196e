"""Export of a search: the Search page's CSV and JSON downloads and ``indexer search --json`` carry
the same records (``indexer.index.results``); the CSV read back equals the JSON records, and both
equal the searcher's hits (called directly) and the model's fingerprint computed from its weights."""

from __future__ import annotations

import csv
import io
import json

import pytest
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

from indexer.__main__ import main
from indexer.index import results
from indexer.index.embed import library_model_dir, model_fingerprint
from indexer.index.search import Searcher
from indexer.library.store import Library

QUERY = "crack an egg into the bowl"


def _check_against_hits(rows: list[dict], library_dir, k: int, mode: str) -> None:
    lib = Library(library_dir, readonly=True)
    expected = Searcher(lib).search(QUERY, k=k, mode=mode)
    weights = model_fingerprint(library_model_dir(lib))
    assert [r["rank"] for r in rows] == list(range(1, len(expected.hits) + 1))
    for row, hit in zip(rows, expected.hits):
        clip = hit.clip
        assert (row["clip_id"], row["video_id"], row["narration"]) == (clip.clip_id, clip.video_id, clip.narration)
        assert (row["start_sec"], row["end_sec"]) == pytest.approx((clip.start_sec, clip.end_sec))
        for name in ("score", "rerank_score", "narration_score", "fused_score"):
            value = getattr(hit, name)
            assert row[name] == (None if value is None else pytest.approx(value, rel=1e-6)), name
        assert row["signals"] == list(hit.signals)
        assert (row["query"], row["mode"], row["model_fingerprint"]) == (QUERY, mode, weights)


def test_cli_json_has_the_export_records(tiny_library, capsys):
    assert main(["search", str(tiny_library), QUERY, "--k", "5", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["query"] == QUERY and out["model_fingerprint"] == out["hits"][0]["model_fingerprint"]
    assert set(out["hits"][0]) == set(results.FIELDS)
    _check_against_hits(out["hits"], tiny_library, 5, "hybrid")


def test_csv_reads_back_as_the_records_even_for_formula_like_text():
    rows = [{"rank": 1, "clip_id": 7, "video_id": "=cmd|' /C calc'!A0", "start_sec": 0.1,
             "end_sec": 2.0000000000000004, "score": None, "rerank_score": 0.5,
             "narration_score": -1.25, "region_score": None, "region_slot": None, "fused_score": 1 / 61,
             "signals": ["narration"], "narration": "'quoted, \"comma\"\nand a new line", "task": None,
             "query": "+1 @a -b", "mode": "hybrid", "region_query": None, "model_fingerprint": "abc",
             "semantic_score": 0.375},
            {"rank": 2, "clip_id": 9, "video_id": "v", "start_sec": 4.0, "end_sec": 8.0, "score": 0.125,
             "rerank_score": None, "narration_score": None, "region_score": -0.5, "region_slot": 0,
             "fused_score": -0.1875, "signals": ["region", "vector"], "narration": "", "task": "t",
             "query": "", "mode": "region", "region_query": "-v:0:3", "model_fingerprint": "abc",
             "semantic_score": None}]
    text = results.to_csv(rows)
    row = next(csv.DictReader(io.StringIO(text)))
    texts = [row[name] for name in ("video_id", "narration", "query")]
    assert texts[0].startswith("'=") and texts[2].startswith("'+")  # no formula for a spreadsheet
    assert results.read_csv(text) == rows


def test_search_page_downloads_csv_and_json(tiny_library, app_for, monkeypatch):
    stored: list[tuple[str, bytes]] = []  # what the page handed Streamlit to download
    load = MemoryMediaFileStorage.load_and_get_id

    def record(self, path_or_data, mimetype, kind, filename=None):
        stored.append((filename, path_or_data))
        return load(self, path_or_data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", record)
    at = app_for(tiny_library, q=QUERY, mode="vector", k="4").run()
    assert not at.exception and not at.error
    labels = [d.label for d in at.get("download_button")]
    assert "Results as CSV" in labels and "Results as JSON" in labels
    files = {name: data for name, data in stored if name and name.startswith("search_results")}
    as_csv = results.read_csv(files["search_results.csv"].decode() if isinstance(
        files["search_results.csv"], bytes) else files["search_results.csv"])
    as_json = json.loads(files["search_results.json"])
    assert as_csv == as_json["hits"]
    assert as_json["query"] == QUERY and as_json["mode"] == "vector"
    _check_against_hits(as_json["hits"], tiny_library, 4, "vector")
