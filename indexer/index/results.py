"""A search's results as records: what ``indexer search --json`` prints and what the app's Search
page downloads as JSON and CSV. One record per hit, the same fields everywhere (``FIELDS``).

A record: ``rank`` (1 = first), the clip (``clip_id``, ``video_id``, ``start_sec``, ``end_sec``,
``narration``, ``task``), every signal's score (``score``: cosine of the query and clip vectors;
``rerank_score``: the matching head's probability; ``narration_score``: BM25; ``semantic_score``:
the MiniLM cosine of the query and the narration (hybrid search's semantic signal); ``region_score``:
the highest cosine of the query region and a region of the clip, ``region_slot`` that region's
slot; ``fused_score``: what ordered the hits, the reciprocal-rank fusion of a text search or the
region and text fusion of a region search (``indexer.index.region_search``); None where the signal
did not find the clip), ``signals`` (which found it), and the search that produced it (``query``:
the words, ``mode``, ``region_query``: the example region as ``VIDEO:CLIP:SLOT`` or None,
``model_fingerprint``: ``indexer.index.embed.model_fingerprint`` of the model that ranked).

CSV: one row per record in ``FIELDS`` order; None is an empty cell, ``signals`` is joined by ``;``,
and a text cell that a spreadsheet would read as a formula (starting with ``= + - @``, a tab or a
carriage return) or that starts with ``'`` gets one leading ``'`` (OWASP's advice), removed by
``read_csv``, so ``read_csv(to_csv(r)) == r``.
"""

from __future__ import annotations

import csv
import io
import json

FIELDS = ("rank", "clip_id", "video_id", "start_sec", "end_sec", "score", "rerank_score",
          "narration_score", "region_score", "region_slot", "fused_score", "signals", "narration",
          "task", "query", "mode", "region_query", "model_fingerprint", "semantic_score")
_INTS = {"rank", "clip_id", "region_slot"}
_FLOATS = {"start_sec", "end_sec", "score", "rerank_score", "narration_score", "region_score",
           "fused_score", "semantic_score"}
_FORMULA = ("=", "+", "-", "@", "\t", "\r", "'")


def records(result, model_fingerprint: str) -> list[dict]:
    """One record per hit of ``result`` (an ``indexer.index.search.SearchResult``), in its order."""
    out = []
    for rank, hit in enumerate(result.hits, 1):
        clip = hit.clip
        out.append({
            "rank": rank, "clip_id": int(clip.clip_id), "video_id": clip.video_id,
            "start_sec": float(clip.start_sec), "end_sec": float(clip.end_sec),
            "score": _float(hit.score), "rerank_score": _float(hit.rerank_score),
            "narration_score": _float(hit.narration_score), "region_score": _float(hit.region_score),
            "region_slot": None if hit.region_slot is None else int(hit.region_slot),
            "fused_score": _float(hit.fused_score), "signals": list(hit.signals),
            "narration": clip.narration, "task": clip.task or None, "query": result.query,
            "mode": result.mode, "region_query": result.region or None,
            "model_fingerprint": model_fingerprint, "semantic_score": _float(hit.semantic_score)})
    return out


def to_json(result, model_fingerprint: str, **extra) -> str:
    """The JSON document of a search: the query, mode, model fingerprint, ordering and the hits'
    ``records`` (``extra``: more top-level fields, such as timings)."""
    return json.dumps({"query": result.query, "mode": result.mode, "region_query": result.region or None,
                       "model_fingerprint": model_fingerprint, "ordering": result.ordering,
                       "rerank": result.rerank, "hits": records(result, model_fingerprint), **extra})


def to_csv(rows: list[dict]) -> str:
    """``rows`` (``records``) as CSV text with a header line."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(FIELDS)
    for row in rows:
        writer.writerow([_cell(name, row[name]) for name in FIELDS])
    return buffer.getvalue()


def read_csv(text: str) -> list[dict]:
    """The records of ``to_csv``'s text, with their types back."""
    reader = csv.DictReader(io.StringIO(text))
    if tuple(reader.fieldnames or ()) != FIELDS:
        raise ValueError(f"not a search export: columns {reader.fieldnames}")
    return [{name: _value(name, row[name]) for name in FIELDS} for row in reader]


def _float(value) -> float | None:
    return None if value is None else float(value)


def _cell(name: str, value) -> str:
    if value is None:
        return ""
    if name == "signals":
        return ";".join(value)
    if name in _FLOATS:
        return repr(float(value))  # shortest text that reads back to the same float
    text = str(value)
    return "'" + text if name not in _INTS and text.startswith(_FORMULA) else text


def _value(name: str, cell: str):
    if name == "signals":
        return [s for s in cell.split(";") if s]
    if name in _INTS:
        return int(cell) if cell else None
    if name in _FLOATS:
        return float(cell) if cell else None
    if name in ("task", "region_query") and cell == "":
        return None
    return cell[1:] if cell.startswith("'") else cell
