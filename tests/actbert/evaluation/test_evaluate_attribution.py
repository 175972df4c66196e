"""``actbert evaluate --tasks attribution``: the JSON entry, its figures recomputed pair by pair
with the per-pair functions and independent forward passes, and its report card section."""

import json
import warnings

import numpy as np
import pytest
import torch

from actbert import ActBertConfig, ActBertForPretraining
from actbert import faithfulness as fa
from actbert.attribution import PairText, attribute
from actbert.cli import build_parser
from actbert.corpus import read_corpus
from actbert.data import clip_inputs, collate, drop_regions, mask_words
from actbert.evaluation.tasks import load_split, retrieval_queries
from actbert.evaluation.result import EvaluationResult
from actbert.reporting.report import report_html
from actbert.tokenizer import ActBertTokenizer
from tests.actbert.corpus_helpers import make_eval_corpus

pytestmark = pytest.mark.usefixtures("one_torch_thread")
PAIRS = 5


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    folder = tmp_path_factory.mktemp("attribution")
    corpus = make_eval_corpus(folder / "corpus", train_videos=2, val_videos=3, test_videos=1)
    torch.manual_seed(0)
    model = ActBertForPretraining(ActBertConfig.from_name("tiny")).eval()
    model.save_pretrained(folder / "model")
    args = build_parser().parse_args(["evaluate", "--corpus", str(corpus), "--checkpoint", str(folder / "model"),
                              "--split", "val", "--tasks", "attribution", "--attribution-pairs",
                              str(PAIRS), "--resamples", "50", "--threads", "1", "--json"])
    return folder, corpus, model, args


def _match(model, ids, mask, video) -> float:
    """One pair's match probability, one forward pass."""
    with torch.no_grad():
        return float(model(text_ids=ids[None], text_mask=mask[None], heads=("match",),
                           **video).match_score[0])


def test_attribution_entry_is_the_per_pair_figures_averaged(evaluated, capsys):
    folder, corpus_path, model, args = evaluated
    assert args.func(args) == 0
    result = json.loads(capsys.readouterr().out)
    entry = result["attribution"]
    assert set(result) == {"attribution", "ci", "differences", "timings_s", "notes", "info", "protocols"}
    assert result["protocols"] == {} and "attribution" in result["timings_s"]
    held = load_split(read_corpus(corpus_path), "val")
    queries = retrieval_queries(held)
    assert entry["pairs"] == PAIRS and entry["of_pairs"] == len(queries) == 9
    assert any(f"a seeded sample of {PAIRS} of the 9" in n for n in result["notes"])
    assert len({(p["video_id"], p["clip"], p["query"]) for p in entry["sample"]}) == PAIRS

    tok = ActBertTokenizer(max_length=64)
    grids, rollouts = [], []
    drops = {k: [] for k in ("words", "regions", "action")}
    by_description = {q.description: q for q in queries}
    for pair in entry["sample"]:
        q = by_description[pair["query"]]
        clip = held.clips[q.target]
        assert (held.corpus.videos[clip.video].video_id, clip.index) == (pair["video_id"], pair["clip"])
        features = held.features[clip.video]
        inputs = clip_inputs(features, [clip.index], model.config.max_regions)
        text = PairText.encode(tok, q.description)
        attribution = attribute(model, text, inputs, gradients=False)
        maps = fa.pair_attentions(model, text, inputs)
        faith = fa.faithfulness(maps, attribution.elements, -attribution.match_effect,
                                model.config.match_input)
        grids.append(faith.grid)
        rollouts.append(faith.rollout)
        # each stream removed as the model's own inputs say it: every word masked, the clip
        # without regions (global token alone, zero feature), the action feature zeroed
        video = collate([inputs])
        video.pop("region_classes")
        words = [i for i, t in enumerate(text.ids.tolist()) if t not in text.special_ids]
        full = _match(model, text.ids, text.mask, video)
        drops["words"].append(full - _match(model, mask_words(text.ids, words, text.mask_id),
                                            text.mask, video))
        drops["regions"].append(full - _match(model, text.ids, text.mask, drop_regions(video)))
        drops["action"].append(full - _match(model, text.ids, text.mask,
                                             {**video, "action_features": torch.zeros_like(video["action_features"])}))
    with warnings.catch_warnings():  # a cell no pair defines is NaN ("mean of empty slice")
        warnings.simplefilter("ignore", RuntimeWarning)
        expected_grid = np.nanmean(np.stack(grids), 0)
    assert entry["blocks"] == list(faith.blocks)
    got = np.array([[np.nan if v is None else v for v in row] for row in entry["grid"]])
    np.testing.assert_allclose(got, expected_grid, atol=2e-4)
    assert entry["grid_pairs"] == np.isfinite(np.stack(grids)).sum(0).tolist()
    assert entry["rollout"] == pytest.approx(np.nanmean(rollouts), abs=2e-4)
    for stream, values in drops.items():
        assert entry["stream_drop"]["match"][stream] == pytest.approx(np.mean(values), abs=1e-4), stream
        low, high = entry["stream_ci"]["match"][stream]
        assert low - 1e-4 <= entry["stream_drop"]["match"][stream] <= high + 1e-4
        assert entry["stream_pairs"][stream] == PAIRS
    means = {k: np.mean(v) for k, v in drops.items()}
    assert entry["depends_most"] == max(means, key=means.get)
    assert set(entry["stream_drop"]["similarity"]) == {"words", "regions", "action"}

    # the record beside the model carries it, and the report card draws it
    record = json.loads((folder / "model" / "evaluation_val.json").read_text())
    assert record["attribution"] == entry
    page = report_html(EvaluationResult.from_json(result), "python -m actbert evaluate", plotly_js="")
    assert "id='attribution'" in page
    assert 'data-figure="attribution:faithfulness"' in page and 'data-figure="attribution:streams"' in page
    assert f"the match depends most on <b>{entry['depends_most']}</b>" in page


def test_attribution_runs_only_when_named():
    from actbert.evaluation.evaluate import EvalConfig
    from actbert.evaluation.runners import TASKS

    default = EvalConfig(corpus="c", checkpoint="m").tasks
    assert default == TASKS and "attribution" not in default
    with pytest.raises(ValueError, match="attribution-pairs"):
        EvalConfig(corpus="c", checkpoint="m", tasks=("attribution",), attribution_pairs=0)
