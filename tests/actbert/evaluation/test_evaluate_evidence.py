"""``actbert evaluate`` beyond the table: the visual-only retrieval subset, the rerank policy it
records on the val split, and the PNG charts, on a synthetic corpus whose ground truth is known."""

import hashlib
import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from actbert import ActBertConfig, ActBertForPretraining
from actbert.cli import build_parser
from actbert.corpus import read_corpus
from actbert.evaluation.baselines import Bm25Scorer
from actbert.evaluation.evaluate import EvalConfig, evaluate
from actbert.evaluation.result import EvaluationResult
from actbert.evaluation.metrics import metrics_from_ranks, retrieval_ranks
from actbert.evaluation.tasks import load_split, retrieval_queries, score_grid
from actbert.fusion_policy import (ALPHAS, FUSION_NAME, GAMMAS, SEMANTICS, SHORTLISTS, make_policy as make_fusion,
                                   read_fusion, write_fusion)
from actbert.reporting.plot import plot_result, plot_task
from actbert.rerank_policy import POLICY_NAME, make_policy as make_rerank_policy, read_policy, write_policy
from tests.actbert.corpus_helpers import FILLERS, make_eval_corpus

pytestmark = pytest.mark.usefixtures("one_torch_thread")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def rewrite_corpus(path, split="test", held_split="test"):
    """Held-out videos move to ``held_split``; their even steps lose their narration (the target
    clip narrates a filler) and are flagged ``narrated: false``, odd steps ``narrated: true``."""
    lines = path.read_text().splitlines()
    out = [lines[0]]
    for line in lines[1:]:
        video = json.loads(line)
        if video["split"] == split:
            video["split"] = held_split
            for j, step in enumerate(video["steps"]):
                step["narrated"] = j % 2 == 1
                if not step["narrated"]:
                    video["narrations"][int(step["start_sec"] // 4)] = FILLERS[0]
        out.append(json.dumps(video))
    path.write_text("\n".join(out) + "\n")
    return path


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("model")
    ActBertForPretraining(ActBertConfig.from_name("tiny")).eval().save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def val_run(tmp_path_factory, model_dir):
    """(corpus path, result) of retrieval, step localisation and video QA on a val split."""
    path = rewrite_corpus(make_eval_corpus(tmp_path_factory.mktemp("corpus"), train_videos=2,
                                           test_videos=4), held_split="val")
    config = EvalConfig(corpus=str(path), checkpoint=str(model_dir), split="val", seed=3,
                        tasks=("retrieval", "step_localization", "videoqa"), resamples=200)
    return path, evaluate(config).to_json()


def test_visual_only_is_retrieval_over_the_unnarrated_queries_against_all_clips(val_run):
    path, result = val_run
    held = load_split(read_corpus(path), "val")
    queries = retrieval_queries(held)
    visual = [i for i, q in enumerate(queries) if q.narrated is False]
    assert len(visual) == 4 * 2 and len(queries) == 4 * 3  # steps 0 and 2 of each video
    clips = range(len(held.clips))
    texts, targets = [q.description for q in queries], np.array([q.target for q in queries])
    ranks = retrieval_ranks(score_grid(Bm25Scorer(held.narrations), texts, clips), targets)[visual]
    m = metrics_from_ranks(ranks)
    got = result["retrieval_visual_only"]["bm25"]
    assert got == pytest.approx({"r1": m.r1, "r5": m.r5, "r10": m.r10,
                                 "median_rank": m.median_rank}, abs=1e-4)
    # The random row is chance's expectation: 24 clips, one target per query.
    random = result["retrieval_visual_only"]["random"]
    assert [random["r1"], random["r5"], random["r10"]] == pytest.approx(
        [100 / 24, 500 / 24, 1000 / 24], abs=1e-3)
    assert result["ci"]["retrieval_visual_only"]["random"]["r5"] == pytest.approx([500 / 24] * 2, abs=1e-3)
    # The narrated queries are found by narration, the unnarrated ones are not.
    assert result["retrieval"]["bm25"]["r1"] == pytest.approx(100 * 4 / 12, abs=1e-3)
    assert result["retrieval_visual_only"]["bm25"]["r1"] == 0.0
    assert set(result["retrieval_visual_only"]) == set(result["retrieval"])
    assert set(result["retrieval_visual_only"]["actbert"]) == set(result["retrieval"]["actbert"])
    ci = result["ci"]["retrieval_visual_only"]
    assert {"diff:actbert-bm25", "diff:actbert-actbert_no_regions"} <= set(ci)
    assert ci["bm25"]["r1"] == [0.0, 0.0]
    assert any(n.startswith("retrieval_visual_only: 8 of 12 queries") for n in result["notes"])
    assert result["info"]["bootstrap"]["resampled"] == {
        "retrieval": "4 videos (12 queries)", "retrieval_visual_only": "4 videos (8 queries)",
        "step_localization": "4 videos", "videoqa": "4 videos (12 questions)"}


def test_val_run_records_the_rerank_policy_beside_the_model(val_run, model_dir):
    path, result = val_run
    policy = read_policy(model_dir)
    figures = result["retrieval"]["actbert"]
    assert policy.split == "val" and policy.rerank_k == 10 and policy.queries == 12
    assert policy.r1_embedding == figures["r1_embedding"] and policy.r1_rerank == figures["r1_rerank"]
    assert policy.difference == pytest.approx(figures["r1_rerank"] - figures["r1_embedding"], abs=1e-3)
    assert policy.rerank_helps == (figures["r1_rerank"] > figures["r1_embedding"])
    low, high = policy.difference_ci
    assert low <= policy.difference <= high
    assert policy.weights_sha256 == hashlib.sha256((model_dir / "model.safetensors").read_bytes()).hexdigest()
    assert policy.corpus == str(path) and policy.timestamp
    assert any(n.startswith("rerank policy:") and POLICY_NAME in n for n in result["notes"])


def test_val_run_chooses_the_fusion_on_val_and_records_it(val_run, model_dir):
    path, result = val_run
    policy = read_fusion(model_dir)
    assert policy.split == "val" and policy.queries == 12 and policy.corpus == str(path)
    assert result["info"]["fusion"]["alpha"] == policy.alpha and result["info"]["fusion"]["gamma"] == policy.gamma
    assert len(policy.tried) == 1 + len(SHORTLISTS) * (len(ALPHAS) * len(SEMANTICS) - 1) * len(GAMMAS)
    assert result["info"]["fusion"]["shortlist"] == policy.shortlist in SHORTLISTS
    assert result["info"]["fusion"]["semantic"] == policy.semantic in SEMANTICS
    # the chosen row is what the table reports, and it keeps the vector signal's visual-only R@5
    assert result["retrieval"]["actbert_hybrid"]["r1"] == pytest.approx(policy.r1_all, abs=1e-3)
    assert result["retrieval_visual_only"]["actbert_hybrid"]["r5"] == pytest.approx(policy.r5_visual_only, abs=1e-3)
    assert policy.r5_visual_only_vector == pytest.approx(
        result["retrieval_visual_only"]["actbert_vector"]["r5"], abs=1e-3)
    assert policy.r5_visual_only >= policy.r5_visual_only_vector
    qualifying = [t["r1_all"] for t in policy.tried if t["qualifies"]]
    assert policy.r1_all == max(qualifying)
    # the same fusion without the video, and the paired intervals against MiniLM and against it
    if policy.alpha or policy.semantic:
        assert "hybrid_narration_only" in result["retrieval"]
        assert "diff:actbert_hybrid-hybrid_narration_only" in result["ci"]["retrieval"]
    assert "diff:actbert_hybrid-minilm" in result["ci"]["retrieval"]
    assert any(n.startswith("fusion policy:") and FUSION_NAME in n for n in result["notes"])


def test_a_test_split_run_fuses_by_the_recorded_policy(tmp_path, model_dir):
    path = make_eval_corpus(tmp_path, train_videos=0, test_videos=2)
    checkpoint = tmp_path / "model"
    ActBertForPretraining.from_pretrained(model_dir).save_pretrained(checkpoint)
    config = EvalConfig(corpus=str(path), checkpoint=str(checkpoint), tasks=("retrieval",), resamples=20)
    plain = evaluate(config).to_json()
    assert any(n == "actbert_hybrid: plain reciprocal rank fusion (no fusion policy recorded)"
               for n in plain["notes"])
    # alpha 0: the narration adds nothing, the hybrid is the vector ranking itself
    write_fusion(checkpoint, make_fusion(0.0, 0.0, "val", 9, 1.0, 2.0, 2.0, [], "c", checkpoint))
    vector_only = evaluate(config).to_json()
    assert vector_only["retrieval"]["actbert_hybrid"] == vector_only["retrieval"]["actbert_vector"]
    assert vector_only["retrieval"]["actbert_hybrid_rrf"] == plain["retrieval"]["actbert_hybrid"]
    assert "hybrid_narration_only" not in vector_only["retrieval"]  # no narration signal to show
    # a semantic weight: the MiniLM ranking joins, and the same fusion without the video is shown
    write_fusion(checkpoint, make_fusion(0.0, 0.0, "val", 9, 1.0, 2.0, 2.0, [], "c", checkpoint, semantic=1.0))
    meaning = evaluate(config).to_json()
    assert any(n.startswith("actbert_hybrid: narration weight 0 x coverage^0 + narration MiniLM weight 1")
               for n in meaning["notes"])
    assert meaning["retrieval"]["actbert_hybrid"] != vector_only["retrieval"]["actbert_hybrid"]
    assert "hybrid_narration_only" in meaning["retrieval"]
    assert not (checkpoint / POLICY_NAME).exists()


def test_a_test_split_run_records_no_policy(tmp_path, model_dir):
    path = make_eval_corpus(tmp_path, train_videos=0, test_videos=2)
    checkpoint = tmp_path / "model"
    ActBertForPretraining.from_pretrained(model_dir).save_pretrained(checkpoint)
    result = evaluate(EvalConfig(corpus=str(path), checkpoint=str(checkpoint), tasks=("retrieval",),
                                 resamples=50)).to_json()
    assert not (checkpoint / POLICY_NAME).exists()
    assert "retrieval_visual_only" not in result and "retrieval_visual_only" not in result["ci"]


def test_intervals_are_deterministic_from_the_seed(val_run, model_dir):
    path, result = val_run
    config = EvalConfig(corpus=str(path), checkpoint=str(model_dir), split="val", seed=3,
                        tasks=("retrieval", "step_localization", "videoqa"), resamples=200)
    again = evaluate(config).to_json()
    assert again["ci"] == result["ci"] and again["differences"] == result["differences"]
    # Four videos give few distinct replicates: fewer resamples move some percentile.
    other = evaluate(EvalConfig(**{**config.__dict__, "resamples": 37})).to_json()
    assert other["videoqa"] == result["videoqa"] and other["ci"] != result["ci"]


def _is_png(path):
    data = path.read_bytes()
    return len(data) > 1000 and data.startswith(PNG_MAGIC)


def test_plot_writes_one_png_per_task(val_run, tmp_path):
    _, result = val_run
    paths = plot_result(EvaluationResult.from_json(result), tmp_path / "plots")
    names = {"retrieval", "retrieval_visual_only", "step_localization", "videoqa"}
    assert sorted(p.name for p in paths) == sorted(f"{n}.png" for n in names)
    assert sorted(paths) == sorted((tmp_path / "plots").iterdir())
    for path in paths:
        assert _is_png(path)
        image = __import__("matplotlib.image", fromlist=["imread"]).imread(path)
        assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    # Captioning-like tables: no intervals, a None figure, a raw-scale metric.
    table = {"actbert": {"bleu4": 3.0, "meteor": None, "cider": 0.2}, "random": {"bleu4": 1.0,
                                                                                "meteor": None, "cider": 0.1}}
    assert _is_png(plot_task("captioning", table, {}, tmp_path / "captioning.png"))


def test_cli_plot_prints_the_paths(val_run, model_dir, tmp_path, capsys):
    path, _ = val_run
    args = build_parser().parse_args(["evaluate", "--corpus", str(path), "--checkpoint", str(model_dir),
                              "--split", "val", "--tasks", "videoqa", "--resamples", "20",
                              "--plot", str(tmp_path / "charts"), "--threads", "1"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert f"plot: {tmp_path / 'charts' / 'videoqa.png'}" in out
    assert _is_png(tmp_path / "charts" / "videoqa.png")
    assert "actbert-bm25 (diff)" in out and "[" in out  # differences and intervals in the table


def add_unnarrated_windows(path):
    """Test videos get per-clip flags: step 0's clip becomes an unnarrated window (no narration,
    ``narrated: false``: only whole-video coverage makes it a clip), step 2's clip narrates a
    filler (an unnarrated step on a narrated clip, as before); both steps are flagged
    ``narrated: false``, step 1 ``narrated: true``."""
    lines = path.read_text().splitlines()
    out = [lines[0]]
    for line in lines[1:]:
        video = json.loads(line)
        video["narrated"] = [True] * len(video["narrations"])
        for j, step in enumerate(video["steps"]):
            clip = int(step["start_sec"] // 4)
            step["narrated"] = j == 1
            if j == 0:
                video["narrated"][clip], video["narrations"][clip] = False, ""
            elif j == 2:
                video["narrations"][clip] = FILLERS[0]
        out.append(json.dumps(video))
    path.write_text("\n".join(out) + "\n")
    return path


def test_visual_only_all_steps_searches_the_unnarrated_windows_too(tmp_path, model_dir):
    path = add_unnarrated_windows(make_eval_corpus(tmp_path, train_videos=0, test_videos=4))
    result = evaluate(EvalConfig(corpus=str(path), checkpoint=str(model_dir), tasks=("retrieval",),
                                 resamples=50, seed=1)).to_json()
    corpus = read_corpus(path)
    narrated, every = load_split(corpus, "test"), load_split(corpus, "test", unnarrated=True)
    assert (len(narrated.clips), len(every.clips)) == (4 * 5, 4 * 6)
    # The old keys keep their meaning: narrated clips only, so step 0 has no target there.
    assert result["info"]["bootstrap"]["resampled"] == {
        "retrieval": "4 videos (8 queries)", "retrieval_visual_only": "4 videos (4 queries)",
        "retrieval_visual_only_all_steps": "4 videos (8 queries)"}
    assert result["retrieval_visual_only"]["random"]["r5"] == pytest.approx(500 / 20, abs=1e-3)
    assert result["info"]["clips"] == 20 and result["info"]["unnarrated_clips"] == 4
    # The new subset: steps 0 and 2 of every video, against all 24 clips (hand-built reference).
    steps = [(vi, s) for vi, v in enumerate(every.corpus.videos) for j, s in enumerate(v.steps) if j != 1]
    texts = [s["description"] for _, s in steps]
    targets = np.array([every.video_clips[vi][int(s["start_sec"] // 4)] for vi, s in steps])
    assert all(not every.corpus.videos[every.clips[t].video].narrated[every.clips[t].index] or
               every.clips[t].narration == FILLERS[0] for t in targets)
    m = metrics_from_ranks(retrieval_ranks(score_grid(Bm25Scorer(every.narrations), texts,
                                                      range(24)), targets))
    got = result["retrieval_visual_only_all_steps"]
    assert got["bm25"] == pytest.approx({"r1": m.r1, "r5": m.r5, "r10": m.r10,
                                         "median_rank": m.median_rank}, abs=1e-4)
    assert got["random"]["r5"] == pytest.approx(500 / 24, abs=1e-3)
    assert set(got) == set(result["retrieval"]) and "actbert_vector" in got
    assert any(n.startswith("retrieval_visual_only_all_steps: 8 of the 8 unnarrated steps against "
                            "all 24 clips (4 of them unnarrated windows)") for n in result["notes"])
    # the test split's fusion is read once and reused by the all-steps queries: one note says so
    assert sum(n.startswith("actbert_hybrid: ") for n in result["notes"]) == 1


def test_a_test_split_run_warns_when_the_fusion_policy_is_for_other_weights(tmp_path, model_dir, caplog):
    """A model shipped over another's folder keeps the other's fusion policy: the test run says
    that its hybrid row is plain RRF, not what search serves, instead of reporting it silently."""
    path = make_eval_corpus(tmp_path, train_videos=0, test_videos=2)
    checkpoint = tmp_path / "model"
    ActBertForPretraining.from_pretrained(model_dir).save_pretrained(checkpoint)
    config = EvalConfig(corpus=str(path), checkpoint=str(checkpoint), tasks=("retrieval",), resamples=20)
    write_fusion(checkpoint, make_fusion(0.0, 0.0, "val", 9, 1.0, 2.0, 2.0, [], "c", checkpoint))
    stale = json.loads((checkpoint / FUSION_NAME).read_text())
    (checkpoint / FUSION_NAME).write_text(json.dumps({**stale, "weights_sha256": "0" * 64}))
    with caplog.at_level("WARNING", logger="actbert.evaluation.runners"):
        result = evaluate(config).to_json()
    assert any("recorded for other weights" in r.getMessage() for r in caplog.records)
    assert "actbert_hybrid: plain reciprocal rank fusion (no fusion policy recorded)" in result["notes"]
    caplog.clear()
    write_fusion(checkpoint, make_fusion(0.0, 0.0, "val", 9, 1.0, 2.0, 2.0, [], "c", checkpoint))
    with caplog.at_level("WARNING", logger="actbert.evaluation.runners"):
        evaluate(config)
    assert not any("recorded for other weights" in r.getMessage() for r in caplog.records)


def test_a_test_split_run_serves_the_rerank_the_policy_chose(tmp_path, model_dir):
    """The vector and hybrid rows are what search serves: the matching-head rerank of the
    embeddings' top N when the model's rerank policy says it helps (search's ``--rerank auto``),
    at the policy's depth, and the embeddings alone otherwise."""
    path = make_eval_corpus(tmp_path, train_videos=0, test_videos=4)
    checkpoint = tmp_path / "model"
    ActBertForPretraining.from_pretrained(model_dir).save_pretrained(checkpoint)
    config = EvalConfig(corpus=str(path), checkpoint=str(checkpoint), tasks=("retrieval",), resamples=20)
    write_fusion(checkpoint, make_fusion(0.0, 0.0, "val", 9, 1.0, 2.0, 2.0, [], "c", checkpoint))

    def figures(row, suffix=""):
        return [row[m + suffix] for m in ("r1", "r5", "r10", "median_rank")]

    def rerank_policy(helps, depth):
        r1 = (1.0, 2.0) if helps else (2.0, 1.0)
        write_policy(checkpoint, make_rerank_policy("val", *r1, [-1.0, 1.0], depth, 9, "c", checkpoint))

    plain = evaluate(config).to_json()["retrieval"]
    assert figures(plain["actbert_vector"]) == figures(plain["actbert"], "_embedding")
    # the rerank of the top 10 moves targets on this corpus (else this test could not tell them apart)
    assert figures(plain["actbert"], "_rerank") != figures(plain["actbert"], "_embedding")
    rerank_policy(True, 10)
    result = evaluate(config).to_json()
    served = result["retrieval"]
    assert figures(served["actbert_vector"]) == figures(served["actbert"], "_rerank")
    # fusion weight 0: the hybrid is its vector signal, here the reranked order
    assert figures(served["actbert_hybrid"]) == figures(served["actbert_vector"])
    assert "actbert_vector: served as the matching-head rerank of the embeddings' top 10 " \
           "(the rerank policy)" in result["notes"]
    # a policy recorded at another depth is served at its own, not at the run's --rerank-k
    rerank_policy(True, 14)
    deeper = evaluate(config).to_json()["retrieval"]
    at_14 = evaluate(replace(config, rerank_k=14)).to_json()["retrieval"]["actbert"]
    assert figures(at_14, "_rerank") not in (figures(served["actbert"], "_rerank"),
                                             figures(served["actbert"], "_embedding"))
    assert figures(deeper["actbert_vector"]) == figures(at_14, "_rerank")
    # a policy where the rerank did not help: the embeddings again
    rerank_policy(False, 10)
    kept = evaluate(config).to_json()["retrieval"]
    assert figures(kept["actbert_vector"]) == figures(kept["actbert"], "_embedding")
    # a fusion with a shortlist of 5 reorders the served (reranked) order's top 5: its R@5 is the
    # vector's, not the embeddings' (which differ here, else this could not tell them apart)
    rerank_policy(True, 10)
    write_fusion(checkpoint, make_fusion(1.0, 0.0, "val", 9, 1.0, 2.0, 2.0, [], "c", checkpoint, shortlist=5))
    short = evaluate(config).to_json()["retrieval"]
    assert short["actbert"]["r5_rerank"] != short["actbert"]["r5_embedding"]
    assert short["actbert_hybrid"]["r5"] == short["actbert_vector"]["r5"] == short["actbert"]["r5_rerank"]
