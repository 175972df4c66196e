""""Why this clip?" on the Search and Attention pages through AppTest, on tiny libraries (random
weights: UI tests, not quality claims). Expected values come from the service called directly."""

from __future__ import annotations

import json
import re

import pytest

from actbert import faithfulness as fa
from indexer.index.compare import second_searcher, side_by_side
from indexer.index.service import ClipService
from indexer.library.store import Library
from tests.app.tiny_library import build_tiny_library, tiny_model

QUERY = "crack an egg into the bowl"


def _clean(at) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _captions(at) -> list[str]:
    """The captions as shown (user strings reach Markdown backslash-escaped)."""
    return [re.sub(r"\\([^\w\s]|_)", r"\1", str(c.value)) for c in at.caption]


def _titles(at) -> list[str]:
    return [json.loads(c.proto.spec)["layout"].get("title", {}).get("text", "") for c in at.get("plotly_chart")]


@pytest.fixture(scope="module")
def compare_library(tmp_path_factory, tiny_library):
    """The tiny library's videos with a no-region ablation named in library.json."""
    root = build_tiny_library(tmp_path_factory.mktemp("compare_library"), corpus=tiny_library / "corpus")
    ablation = root / "models" / "no_regions"
    tiny_model(seed=7).save_pretrained(ablation)
    (ablation / "train_config.json").write_text(json.dumps({"use_regions": False}))
    library = Library(root)
    library.update_manifest(model_no_regions={"checkpoint": "models/no_regions"})
    library.close()
    return root


def test_search_why_lines_and_absent_rerank(compare_library, app_for):
    at = app_for(compare_library).run()
    at.text_input[0].set_value(QUERY).run()
    _clean(at)
    service = ClipService(Library(compare_library, readonly=True))
    hits = service.search(QUERY, k=12).hits
    whys = [c for c in _captions(at) if c.startswith("why: ")]
    assert whys == [f"why: {service.explain(h.clip.clip_id, QUERY).why(3)}" for h in hits]

    at.button_group(key="_absent").set_value("all regions").run()
    _clean(at)
    rows = {r.clip_id: r for r in service.rank_without(QUERY, [h.clip.clip_id for h in hits], "all regions")}
    changes = [c for c in _captions(at) if c.startswith("without: rank")]
    in_order = sorted(rows.values(), key=lambda r: r.rank_without)
    assert changes == [f"without: rank {r.rank} → {r.rank_without} "
                       f"{'▲' if r.change > 0 else '▼' if r.change < 0 else '='}{abs(r.change) or ''} · "
                       f"match {r.score:.3f} → {r.score_without:.3f} ({r.removed} removed)" for r in in_order]
    assert all(r.removed > 0 for r in in_order)


def test_search_side_by_side_with_the_no_region_model(compare_library, app_for):
    at = app_for(compare_library).run()
    at.text_input[0].set_value(QUERY).run()
    at.toggle(key="_compare").set_value(True).run()
    _clean(at)
    library = Library(compare_library, readonly=True)
    first = ClipService(library).searcher
    expected = side_by_side(first, second_searcher(first), QUERY, k=12, mode="hybrid", video=None, task=None)
    assert len(at.dataframe) == 2  # first model, second model
    second = at.dataframe[1].value
    assert list(second["clip"]) == [h["clip_id"] for h in expected["second"]["hits"]]
    assert [None if v != v else v for v in second["change"]] == \
        [h["rank_change"] for h in expected["second"]["hits"]]
    assert any("(no regions)" in m.value for m in at.markdown)


def test_attention_page_attribution_faithfulness_and_curves(tiny_library, app_for):
    library = Library(tiny_library, readonly=True)
    clip = library.catalog.clip_ids()[0]
    at = app_for(tiny_library, q=QUERY, clip=str(clip)).run()
    at.switch_page("views/attention.py").run()
    _clean(at)
    titles = _titles(at)
    maps = [t for t in titles if "tangled.0 · head mean" in t]
    bars = [t for t in titles if t.startswith("attribution of the")]
    assert len(bars) == len(maps) == 8
    assert any(t.startswith("faithfulness") for t in titles)
    assert "deletion curves" in titles and "insertion curves" in titles
    service = ClipService(library)
    attribution = service.explain(clip, QUERY, gradients=True)
    assert f"why: {attribution.why()}" in " ".join(_captions(at))
    # heads marked on the layer x head summary: exactly the unfaithful ones that it shows
    faith = fa.faithfulness(service.attention(clip, QUERY).sample.maps, attribution.elements,
                            -attribution.match_effect)
    summary = json.loads(at.get("plotly_chart")[[i for i, t in enumerate(titles) if t.startswith("mass")][0]].proto.spec)
    marks = [d for d in summary["data"] if d.get("type") == "scatter"]
    shown_blocks = summary["layout"]["yaxis"]["ticktext"]
    expected = [(b, h) for b, h in faith.unfaithful() if b in shown_blocks]
    got = list(zip((shown_blocks[int(y)] for y in marks[0]["y"]), marks[0]["x"])) if marks else []
    assert expected and sorted(got) == sorted(expected)

    at.button_group(key="_word_mode").set_value("attribution").run()
    _clean(at)
    assert any(c.startswith("Attribution mode") for c in _captions(at))


def test_model_page_draws_a_recorded_attribution(tmp_path, tiny_library, app_for):
    """An evaluation with ``--tasks attribution`` recorded beside the model: the Model page draws
    its stream removals and its faithfulness grid, with the figures of the record."""
    from actbert.evaluation.record import write_evaluation
    from actbert.evaluation.result import EvaluationResult

    root = build_tiny_library(tmp_path / "lib", corpus=tiny_library / "corpus")
    checkpoint = root / "models" / "actbert"
    entry = {"system": "actbert", "pairs": 2, "of_pairs": 5, "seed": 0,
             "blocks": ["text.0", "tangled.0"], "grid": [[0.5, None], [-0.25, 0.75]],
             "grid_pairs": [[2, 0], [2, 1]], "rollout": 0.1, "rollout_pairs": 2,
             "stream_drop": {"match": {"words": 0.3, "regions": 0.1, "action": 0.0},
                             "similarity": {"words": 0.2, "regions": 0.05, "action": None}},
             "stream_ci": {"match": {"words": [0.2, 0.4], "regions": None, "action": None},
                           "similarity": {"words": None, "regions": None, "action": None}},
             "stream_pairs": {"words": 2, "regions": 2, "action": 2}, "depends_most": "words",
             "sample": [{"video_id": "v", "clip": 0, "query": "*not markdown*"}]}
    write_evaluation(checkpoint, EvaluationResult({}, attribution=entry, info={"split": "test"}),
                     "python -m actbert evaluate --tasks attribution", "corpus.jsonl")
    at = app_for(root).run()
    at.switch_page("views/model.py").run()
    _clean(at)
    assert any("the match depends most on words" in c for c in _captions(at))
    charts = {t: json.loads(c.proto.spec) for t, c in zip(_titles(at), at.get("plotly_chart"))}
    grid = next(v for t, v in charts.items() if t.startswith("faithfulness per layer x head"))
    assert grid["data"][0]["z"] == [[0.5, None], [-0.25, 0.75]]
    streams = next(v for t, v in charts.items() if t.startswith("score lost when a stream is removed"))
    assert streams["data"][0]["x"] == ["words", "regions", "action"]
    assert streams["data"][0]["y"] == [0.3, 0.1, 0.0]
    assert streams["data"][1]["x"] == ["words", "regions"]  # the cosine: no action figure


def _both_models_expected(root, clip: int, gradients: bool):
    """Both models' attributions of (QUERY, clip), from the services called directly."""
    from actbert.attribution import both_effects

    library = Library(root, readonly=True)
    service = ClipService(library)
    other = ClipService(library, second_searcher(service.searcher))
    first, second = service.explain(clip, QUERY, gradients=gradients), other.explain(clip, QUERY)
    return first, second, both_effects(first, second)


def _assert_both_models_shown(at, clip: int, first, second, rows) -> None:
    captions = _captions(at)
    assert f"why, library model (match {first.match:.3f}): {first.why()}" in captions
    assert any(c.startswith("why, second model") and c.endswith(f"(no regions) (match {second.match:.3f}): "
                                                                 f"{second.why()}") for c in captions)
    charts = {t: json.loads(c.proto.spec) for t, c in zip(_titles(at), at.get("plotly_chart"))}
    both = charts[f"clip {clip}: match drop per element, both models"]
    assert [d["name"] for d in both["data"]] == ["library model", "second model"]
    assert both["data"][0]["y"] == pytest.approx([-r.first for r in rows])
    assert [v is None for v in both["data"][1]["y"]] == [r.second is None for r in rows]
    assert [v for v in both["data"][1]["y"] if v is not None] == \
        pytest.approx([-r.second for r in rows if r.second is not None])
    assert any(r.element.kind == "region" and r.second is None for r in rows)  # fed no regions


def test_attention_page_both_models_attributions(compare_library, app_for):
    """With the second model chosen (the side-by-side state in the link), the Attention page
    shows both models' why lines, their drops per element, and the second's beside each map."""
    library = Library(compare_library, readonly=True)
    clip = library.catalog.clip_ids()[1]
    at = app_for(compare_library, q=QUERY, clip=str(clip), compare="1").run()
    at.switch_page("views/attention.py").run()
    _clean(at)
    first, second, rows = _both_models_expected(compare_library, clip, gradients=True)
    _assert_both_models_shown(at, clip, first, second, rows)
    bars = [json.loads(c.proto.spec) for t, c in zip(_titles(at), at.get("plotly_chart"))
            if t.startswith("attribution of the text keys")]
    assert bars and all(b["data"][-1]["name"] == "second model (occlusion)" for b in bars)
    words = {e.index: -v for e, v in zip(second.elements, second.match_effect) if e.kind == "word"}
    assert [y for i, y in enumerate(bars[0]["data"][-1]["y"]) if i in words] == \
        pytest.approx([words[i] for i in sorted(words)])


def test_search_side_by_side_both_models_attributions_of_a_clip(compare_library, app_for):
    at = app_for(compare_library).run()
    at.text_input[0].set_value(QUERY).run()
    at.toggle(key="_compare").set_value(True).run()
    _clean(at)
    assert not any(t.endswith("both models") for t in _titles(at))  # nothing computed unasked
    clip = int(at.dataframe[1].value["clip"].iloc[0])
    at.selectbox(key="_compare_clip").set_value(clip).run()
    _clean(at)
    _assert_both_models_shown(at, clip, *_both_models_expected(compare_library, clip, gradients=False))
