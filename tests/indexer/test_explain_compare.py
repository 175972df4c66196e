"""Explaining and comparing on a real tiny library: ``actbert explain`` and ``indexer search
--compare`` against naive references (one forward per pair, cosines of a loop of encoded clips),
the cached second index keyed by the weights fingerprint, and the "as if absent" re-rank."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from actbert.cli import main as actbert_main
from actbert.data import Element, VideoFeatures, clip_inputs, collate, drop_regions, remove_elements
from actbert.tokenizer import ActBertTokenizer
from indexer.cli import main as indexer_main
from indexer.index.compare import COMPARE_DIR
from indexer.index.embed import model_fingerprint
from indexer.index.service import ClipService
from indexer.library.export import export_corpus
from indexer.library.store import Library
from tests.app.tiny_library import build_tiny_library, tiny_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")
QUERY = "crack the egg into the bowl"


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """The tiny library, its corpus.jsonl, and a no-region ablation (another random tiny model
    whose train_config.json says use_regions false) named in library.json."""
    root = build_tiny_library(tmp_path_factory.mktemp("explain_library"))
    library = Library(root)
    export_corpus(library)
    ablation = root / "models" / "no_regions"
    tiny_model(seed=7).save_pretrained(ablation)
    (ablation / "train_config.json").write_text(json.dumps({"use_regions": False}))
    library.update_manifest(model_no_regions={"checkpoint": "models/no_regions"})
    return library


def _video(inputs):
    batch = collate([inputs])
    batch.pop("region_classes")
    return batch


def test_actbert_explain_json_against_single_forwards(library, capsys):
    clip = library.catalog.clips_by_id([1])[1]
    rc = actbert_main(["explain", "--library", str(library.root), "--clip",
                       f"{clip.video_id}:{clip.clip_index}", QUERY, "--json", "--curves"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    model = tiny_model()  # the library's model: seed 0, as build_tiny_library saved it
    tok = ActBertTokenizer()
    enc = tok(QUERY)
    features = VideoFeatures.load(library.root / clip.feature_path)
    inputs = clip_inputs(features, [clip.clip_index], model.config.max_regions)
    with torch.no_grad():
        full = float(model(text_ids=enc.ids, text_mask=enc.mask, heads=("match",),
                           **_video(inputs)).match_score[0])
    assert out["match"] == pytest.approx(full, abs=1e-5)
    kinds = [e["kind"] for e in out["elements"]]
    assert kinds.count("word") == len(enc.tokens[0]) - 2 and kinds.count("action") == 1
    assert kinds.count("region") == len(inputs.real_region_rows())
    last = out["elements"][-2]  # the last region: removed by hand, one forward
    ids, removed = remove_elements(enc.ids[0], inputs, [Element(last["kind"], last["index"])], tok.mask_id)
    with torch.no_grad():
        alone = float(model(text_ids=ids[None], text_mask=enc.mask, heads=("match",),
                            **_video(removed)).match_score[0])
    assert last["match_effect"] == pytest.approx(alone - full, abs=1e-5)
    assert "@" in last["label"]  # region labels name the detector class and the frame time
    assert len(out["faithfulness"]["grid"]) == len(out["faithfulness"]["blocks"])
    n = sum(k in ("word", "region", "action") for k in kinds)
    for curve in out["curves"].values():
        assert len(curve["deletion"]) == n + 1
        assert curve["deletion"][0] == pytest.approx(full, abs=1e-5)    # nothing removed yet
        assert curve["insertion"][-1] == pytest.approx(full, abs=1e-5)  # everything back


def test_actbert_explain_rejects_a_bad_clip(library, capsys):
    assert actbert_main(["explain", "--library", str(library.root), "--clip", "7", QUERY]) == 1
    assert "VIDEO_ID:INDEX" in capsys.readouterr().err


def test_search_compare_against_a_loop_of_cosines(library, capsys):
    args = ["search", str(library.root), QUERY, "--compare", "--json", "--mode", "vector",
            "--rerank", "0", "--k", "5"]
    assert indexer_main(args) == 0
    out = json.loads(capsys.readouterr().out)
    ablation = library.root / "models" / "no_regions"
    folder = library.root / COMPARE_DIR / f"{model_fingerprint(ablation)}-no-regions"
    assert (folder / "index.json").is_file() or any(folder.iterdir())
    # Reference: the ablation's query vector against every clip encoded alone, regions removed.
    model = tiny_model(seed=7)
    tok = ActBertTokenizer()
    enc = tok(QUERY)
    with torch.no_grad():
        q = model.encode_text(enc.ids, enc.mask)[0]
        scores = {}
        for clip in library.catalog.clips_by_id(range(0, 10_000)).values():
            features = VideoFeatures.load(library.root / clip.feature_path)
            batch = drop_regions(_video(clip_inputs(features, [clip.clip_index], model.config.max_regions)))
            scores[clip.clip_id] = float(model.encode_video(**batch)[0] @ q)
    expected = sorted(scores, key=scores.get, reverse=True)[:5]
    second = [h["clip_id"] for h in out["second"]["hits"]]
    assert second == expected
    np.testing.assert_allclose([h["score"] for h in out["second"]["hits"]],
                               [scores[c] for c in expected], atol=1e-5)
    first = [h["clip_id"] for h in out["first"]["hits"]]
    for rank, hit in enumerate(out["second"]["hits"], 1):
        before = first.index(hit["clip_id"]) + 1 if hit["clip_id"] in first else None
        assert hit["rank_first"] == before
        assert hit["rank_change"] == (None if before is None else before - rank)
    # Cached: a second run loads the same files instead of embedding again.
    stamps = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    assert indexer_main(args) == 0
    capsys.readouterr()
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == stamps


def test_rank_without_regions_against_single_forwards(library):
    service = ClipService(library)
    hits = service.search(QUERY, k=6, mode="vector", rerank=0).hits
    ids = [h.clip.clip_id for h in hits]
    got = service.rank_without(QUERY, ids, "all regions")
    model, tok = tiny_model(), ActBertTokenizer()
    enc = tok(QUERY)
    without = {}
    for hit in hits:
        features = VideoFeatures.load(library.root / hit.clip.feature_path)
        batch = drop_regions(_video(clip_inputs(features, [hit.clip.clip_index], 36)))
        with torch.no_grad():
            without[hit.clip.clip_id] = float(model(text_ids=enc.ids, text_mask=enc.mask,
                                                    heads=("match",), **batch).match_score[0])
    order = sorted(without, key=without.get, reverse=True)
    for row in got:
        assert row.score_without == pytest.approx(without[row.clip_id], abs=1e-5)
        assert row.rank_without == order.index(row.clip_id) + 1
        assert row.change == row.rank - row.rank_without
    why = service.explain(ids[0], QUERY)
    assert why.labels and isinstance(why.why(), str)


def test_side_by_side_shares_the_catalog_reads_and_equals_two_searches(library):
    """The second model's search reuses the first's narration scores and clip rows (no BM25 query
    of its own, rows read only for clips the first did not see), and the report is what two
    independent searches give; given the page's own result, only the second model searches."""
    from indexer.index.compare import second_searcher, side_by_side

    first = ClipService(library).searcher
    second = second_searcher(first)
    assert second.text_twins == ()  # another random text stream: its own text states
    options = {"k": 5, "mode": "hybrid", "rerank": 0}
    alone = [s.search(QUERY, **options) for s in (first, second)]
    statements: list[str] = []
    library.catalog._db.set_trace_callback(statements.append)
    try:
        report = side_by_side(first, second, QUERY, **options)
        bm25 = [s for s in statements if "bm25" in s]
        statements.clear()
        page = first.search(QUERY, **options)
        seen = set(page.shared.rows)
        statements.clear()
        after = side_by_side(first, second, QUERY, first_result=page, **options)
        after_statements = list(statements)
    finally:
        library.catalog._db.set_trace_callback(None)
    assert len(bm25) == 1  # one narration search for both models
    assert not any("bm25" in s for s in after_statements)  # the page's scores reused
    asked = [int(i) for s in after_statements if "clips.id IN" in s
             for i in re.search(r"clips\.id IN \(([^)]*)\)", s).group(1).split(",")]
    assert asked and not set(asked) & seen  # only rows the page did not read are read
    for side, result in zip(("first", "second"), alone):
        for got in (report, after):
            assert [h["clip_id"] for h in got[side]["hits"]] == [h.clip.clip_id for h in result.hits]
            assert [h["fused_score"] for h in got[side]["hits"]] == [h.fused_score for h in result.hits]
            assert [h["narration"] for h in got[side]["hits"]] == [h.clip.narration for h in result.hits]
    first_ranks = {h.clip.clip_id: r for r, h in enumerate(alone[0].hits, 1)}
    for rank, hit in enumerate(report["second"]["hits"], 1):
        before = first_ranks.get(hit["clip_id"])
        assert hit["rank_change"] == (None if before is None else before - rank)
    with pytest.raises(ValueError, match="not"):
        side_by_side(first, second, "another query", first_result=page, **options)


def test_actbert_explain_compare_both_models_against_single_forwards(library, capsys):
    """``actbert explain --compare``: the library's no-region ablation explains the same pair,
    fed without regions, and both models' effects are joined element by element."""
    clip = library.catalog.clips_by_id([2])[2]
    rc = actbert_main(["explain", "--library", str(library.root), "--clip",
                       f"{clip.video_id}:{clip.clip_index}", QUERY, "--json", "--compare"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    second = out["compare"]
    assert second["checkpoint"].endswith("no_regions") and second["uses_regions"] is False
    assert out["uses_regions"] is True
    ablation, tok = tiny_model(seed=7), ActBertTokenizer()
    enc = tok(QUERY)
    features = VideoFeatures.load(library.root / clip.feature_path)
    inputs = clip_inputs(features, [clip.clip_index], ablation.config.max_regions)
    with torch.no_grad():
        full = float(ablation(text_ids=enc.ids, text_mask=enc.mask, heads=("match",),
                              **drop_regions(_video(inputs))).match_score[0])
    assert second["match"] == pytest.approx(full, abs=1e-5)
    assert {e["kind"] for e in second["elements"]} == {"word", "action"}  # fed no regions
    word = second["elements"][0]  # the first word masked by hand, one forward of the ablation
    ids = enc.ids[0].clone()
    ids[word["index"]] = tok.mask_id
    with torch.no_grad():
        alone = float(ablation(text_ids=ids[None], text_mask=enc.mask, heads=("match",),
                               **drop_regions(_video(inputs))).match_score[0])
    assert word["match_effect"] == pytest.approx(alone - full, abs=1e-5)
    # the join: every element of the library model's pair in its order, each model's effect
    first_effects = {(e["kind"], e["index"]): e["match_effect"] for e in out["elements"]}
    second_effects = {(e["kind"], e["index"]): e["match_effect"] for e in second["elements"]}
    assert [(r["kind"], r["index"]) for r in out["both"]] == list(first_effects)
    for row in out["both"]:
        key = (row["kind"], row["index"])
        assert row["first"] == pytest.approx(first_effects[key], abs=1e-6)
        assert row["second"] == (None if key not in second_effects else
                                 pytest.approx(second_effects[key], abs=1e-6))
    assert any(r["kind"] == "region" and r["second"] is None for r in out["both"])


def test_actbert_explain_compare_needs_a_second_model(tmp_path, library, capsys):
    """A library.json without ``model_no_regions`` and no checkpoint named: a one-line error."""
    import shutil

    root = tmp_path / "lib"
    shutil.copytree(library.root, root)
    manifest = json.loads((root / "library.json").read_text())
    manifest.pop("model_no_regions")
    (root / "library.json").write_text(json.dumps(manifest))
    clip = library.catalog.clips_by_id([1])[1]
    assert actbert_main(["explain", "--library", str(root), "--clip",
                         f"{clip.video_id}:{clip.clip_index}", QUERY, "--compare"]) == 1
    assert "model_no_regions" in capsys.readouterr().err


def test_disagreement_by_hand():
    from indexer.index.compare import disagreement

    assert disagreement([1, 2, 3], [1, 2, 3]) == (1.0, 0.0)
    # 3 and 4 swap places: overlap 1, footrule (0 + 0 + 1 + 1) / 4
    assert disagreement([1, 2, 3, 4], [1, 2, 4, 3]) == (1.0, 0.5)
    # disjoint lists of 2: every clip is at 1 or 2 in one list and 3 in the other
    assert disagreement([1, 2], [3, 4]) == (0.0, (2 + 1 + 2 + 1) / 4)
    # clip 5 only in the second list, at 1: |3 - 1|; 2 drops from 2 to absent: |2 - 3|
    assert disagreement([1, 2], [5, 1]) == (0.5, (abs(1 - 2) + abs(2 - 3) + abs(3 - 1)) / 3)
    assert disagreement([], []) == (1.0, 0.0)


def _same_text_checkpoint(library):
    """A second model with the library model's embeddings and text-only layers (as two models
    pretrained from one BERT with those layers frozen) and its own other weights (seed 7)."""
    folder = library.root / "models" / "same_text"
    if not folder.is_dir():
        model, donor = tiny_model(seed=7), tiny_model()
        for mine, theirs in zip(model.actbert._text_prefix(), donor.actbert._text_prefix()):
            mine.load_state_dict(theirs.state_dict())
        model.save_pretrained(folder)
    return folder


def test_shares_text_prefix_by_hand(library):
    from actbert.model import ActBertForPretraining

    first, other = tiny_model(), tiny_model(seed=7)
    same = ActBertForPretraining.from_pretrained(_same_text_checkpoint(library)).eval()
    assert same.shares_text_prefix(first) and first.shares_text_prefix(same)
    assert not other.shares_text_prefix(first)
    with torch.no_grad():
        same.actbert.encoder.layers["text"][0].output.dense.bias[3] += 1e-6
    assert not same.shares_text_prefix(first)


def test_side_by_side_shares_the_text_state_between_twin_text_layers(library):
    """A second model whose text-only layers are the first's: the query's text-only layers run
    once (counted by forward hooks on both models' first text layer) and both results, reranked
    by the matching head, are exactly those of two independent searches."""
    from indexer.index.compare import second_searcher, side_by_side

    first = ClipService(library).searcher
    second = second_searcher(first, _same_text_checkpoint(library))
    assert second.text_twins == (first.model,)
    options = {"k": 5, "mode": "vector", "rerank": 5}
    alone = [s.search(QUERY, **options) for s in (first, second)]
    calls = {"first": 0, "second": 0}
    hooks = [s.model.actbert.encoder.layers["text"][0].register_forward_hook(
        lambda *_, name=name: calls.__setitem__(name, calls[name] + 1))
        for name, s in (("first", first), ("second", second))]
    try:
        report = side_by_side(first, second, QUERY, **options)
    finally:
        for hook in hooks:
            hook.remove()
    assert calls == {"first": 1, "second": 0}
    for side, result in zip(("first", "second"), alone):
        assert [(h["clip_id"], h["score"], h["rerank_score"]) for h in report[side]["hits"]] == \
            [(h.clip.clip_id, h.score, h.rerank_score) for h in result.hits]
    assert all(h["rerank_score"] is not None for h in report["second"]["hits"])
