"""``python -m actbert evaluate``: the held-out protocols, the scorers and the JSON, on synthetic
corpora whose ground truth is known by construction."""

import json
import math

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

from actbert import ActBertConfig, ActBertForPretraining
from actbert.checkpoint import minilm_dir
from actbert.cli import build_parser
from actbert.corpus import read_corpus
from actbert.data import collate
from actbert.evaluation.baselines import Bm25Scorer, MiniLMEncoder, RandomScorer
from actbert.evaluation.captioner import Captioner, CaptionerConfig
from actbert.evaluation.evaluate import EvalConfig, evaluate
from actbert.evaluation.runners import METRICS, SYSTEMS, TASKS
from actbert.evaluation.scorer import ModelScorer
from actbert.evaluation.tasks import (check_disjoint, load_split, multiple_choice, questions,
                                      rerank_grid, retrieval_figures, retrieval_queries, score_grid,
                                      segmentation_frames, segmentation_labels, step_localization)
from actbert.tokenizer import ActBertTokenizer
from tests.actbert.corpus_helpers import VERBS, make_eval_corpus


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def corpus_path(tmp_path_factory):
    return make_eval_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return ActBertForPretraining(ActBertConfig.from_name("tiny")).eval()


# ---- the held-out data -------------------------------------------------------------------------

def test_targets_truth_and_frames_follow_the_construction(corpus_path):
    corpus = read_corpus(corpus_path)
    split = load_split(corpus, "test")
    assert {v.split for v in split.corpus.videos} == {"test"} and len(split.clips) == 4 * 6
    for query in split.queries:
        # Each step lies on one clip c: [4c + 0.5, 4c + 4]; that clip is its target.
        c = int(query.start_sec // 4)
        assert query.target == split.video_clips[query.video][c]
    video = split.corpus.videos[0]
    labels = segmentation_labels(corpus)
    assert labels == ["background", *VERBS]
    frame_clips, frame_labels = segmentation_frames(split, labels)[0]
    expected = np.zeros(24, np.int64)
    for step in video.steps:
        for t in range(24):
            if step["start_sec"] <= t < step["end_sec"]:
                expected[t] = 1 + VERBS.index(step["verb"])
    assert frame_labels.tolist() == expected.tolist()
    assert frame_clips.tolist() == [split.video_clips[0][t // 4] for t in range(24)]


def test_questions_hold_the_true_description_among_five_distinct(corpus_path):
    split = load_split(read_corpus(corpus_path), "test")
    qs = questions(split, seed=3)
    assert len(qs) == 4 * 3  # one per step clip
    for q in qs:
        clip = split.clips[q.clip]
        truth = [s["description"] for s in split.corpus.videos[clip.video].steps
                 if s["start_sec"] // 4 == clip.index]
        assert q.candidates[q.answer] == truth[0] and q.references == (truth[0],)
        assert len(set(q.candidates)) == 5
    assert questions(split, seed=3) == qs and questions(split, seed=4) != qs
    assert len({q.answer for q in qs}) > 1  # the true answer is not always in one place


def test_a_shared_task_instance_is_refused(tmp_path, tiny_model):
    path = make_eval_corpus(tmp_path, train_videos=3, test_videos=2, shared_instance=True)
    corpus = read_corpus(path)
    with pytest.raises(ValueError, match="shares task instances"):
        check_disjoint(corpus.split("train"), corpus.split("test"))
    tiny_model.save_pretrained(tmp_path / "model")
    with pytest.raises(ValueError, match="instance0"):
        evaluate(EvalConfig(corpus=str(path), checkpoint=str(tmp_path / "model")))


# ---- scorers against independent references ----------------------------------------------------

def test_model_scorer_equals_the_plain_forward(corpus_path, tiny_model):
    split = load_split(read_corpus(corpus_path), "test")
    tok = ActBertTokenizer(max_length=64)
    texts = ["cut the apple", "pour the milk into a bowl slowly"]
    clips = list(range(len(split.clips)))
    for use_regions in (True, False):
        scorer = ModelScorer(tiny_model, tok, split, use_regions, batch_size=5)  # uneven chunks
        got = score_grid(scorer.match, texts, clips)
        video = collate([split.inputs(c, tiny_model.config.max_regions) for c in clips])
        video.pop("region_classes")
        if not use_regions:
            video = {k: (v[:, :1] if k.startswith("region") else v) for k, v in video.items()}
            video["region_features"] = torch.zeros_like(video["region_features"])
        with torch.no_grad():
            for row, text in zip(got, texts):
                enc = tok([text])
                want = tiny_model(text_ids=enc.ids, text_mask=enc.mask, **video).match_score
                np.testing.assert_allclose(row, want.numpy(), atol=1e-5)
            enc = tok(texts)
            want = tiny_model.encode_text(enc.ids, enc.mask) @ tiny_model.encode_video(**video).T
        np.testing.assert_allclose(score_grid(scorer.cosine, texts, clips), want.numpy(), atol=1e-5)


def _layer_norm(x, w, b, eps=1e-12):
    return (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + eps) * w + b


def naive_minilm(ids, w):
    """all-MiniLM-L6-v2 by hand (float64 numpy): BERT, mean pooling, L2 normalisation."""
    g = {k: v.astype(np.float64) for k, v in w.items()}
    x = (g["embeddings.word_embeddings.weight"][ids] + g["embeddings.position_embeddings.weight"][:len(ids)]
         + g["embeddings.token_type_embeddings.weight"][0])
    x = _layer_norm(x, g["embeddings.LayerNorm.weight"], g["embeddings.LayerNorm.bias"])
    erf = np.vectorize(math.erf)
    for layer in range(6):
        p = f"encoder.layer.{layer}."
        lin = lambda h, name: h @ g[p + name + ".weight"].T + g[p + name + ".bias"]  # noqa: E731
        q, k, v = (lin(x, f"attention.self.{n}").reshape(len(ids), 12, 32).transpose(1, 0, 2)
                   for n in ("query", "key", "value"))
        s = q @ k.transpose(0, 2, 1) / math.sqrt(32)
        a = np.exp(s - s.max(-1, keepdims=True))
        ctx = ((a / a.sum(-1, keepdims=True)) @ v).transpose(1, 0, 2).reshape(len(ids), 384)
        x = _layer_norm(lin(ctx, "attention.output.dense") + x, g[p + "attention.output.LayerNorm.weight"],
                        g[p + "attention.output.LayerNorm.bias"])
        h = lin(x, "intermediate.dense")
        h = 0.5 * h * (1 + erf(h / math.sqrt(2)))
        x = _layer_norm(lin(h, "output.dense") + x, g[p + "output.LayerNorm.weight"],
                        g[p + "output.LayerNorm.bias"])
    pooled = x.mean(0)
    return pooled / np.linalg.norm(pooled)


def test_minilm_encoder_matches_a_naive_bert():
    texts = ["cut the tomato", "pour the milk into the pan and stir it well", "hello"]
    encoder = MiniLMEncoder()
    got = encoder.encode(texts)  # one padded batch
    weights = load_file(str(minilm_dir() / "model.safetensors"))
    for text, row in zip(texts, got):
        ids = encoder.tokenizer([text]).ids[0].numpy()
        np.testing.assert_allclose(row, naive_minilm(ids, weights), atol=2e-5)
    same, other = got[0] @ encoder.encode(["slice the tomato"])[0], got[0] @ got[2]
    assert same > other


def test_bm25_is_okapi_by_hand():
    docs = ["cut the apple", "pour the milk", "stir the soup", "peel the carrot", ""]
    scores = Bm25Scorer(docs).scores("cut apple")
    k1, b, avgdl = 1.5, 0.75, 12 / 5
    idf = math.log(5 - 1 + 0.5) - math.log(1 + 0.5)  # each word in one document
    term = idf * 1 * (k1 + 1) / (1 + k1 * (1 - b + b * 3 / avgdl))
    np.testing.assert_allclose(scores, [2 * term, 0, 0, 0, 0])
    assert Bm25Scorer(["", ""]).scores("cut").tolist() == [0.0, 0.0]


def test_rerank_puts_the_reranked_top_k_first_in_their_new_order():
    first = np.array([[0.9, 0.8, 0.1, 0.5]])
    rescored = {0: 0.2, 1: 0.7}
    grid = rerank_grid(first, lambda t, c: np.array([rescored[i] for i in c]), ["q"], k=2)
    assert np.argsort(-grid[0]).tolist() == [1, 0, 3, 2]


def test_random_guesses_are_at_chance(tmp_path):
    split = load_split(read_corpus(make_eval_corpus(tmp_path, 0, 16, clips=10)), "test")
    qs, queries = questions(split, seed=0), retrieval_queries(split)
    texts, targets = [q.description for q in queries], [q.target for q in queries]
    r10, median, mc, recall = [], [], [], []
    for seed in range(20):
        figures = retrieval_figures(score_grid(RandomScorer(seed), texts, range(160)), targets)
        r10.append(figures["r10"])
        median.append(figures["median_rank"])
        mc.append(multiple_choice(qs, RandomScorer(seed)))
        recall.append(step_localization(split, RandomScorer(seed)))
    assert 3.5 < np.mean(r10) < 9.5          # chance 10 / 160 = 6.25 %
    assert 65 < np.mean(median) < 95         # chance about 80
    assert 15 < np.mean(mc) < 25             # chance 1 / 5
    assert 6 < np.mean(recall) < 14          # one true clip of 10 per step


# ---- trained heads -----------------------------------------------------------------------------

def test_captioner_learns_to_say_what_the_memory_encodes():
    captions = ["cut the apple", "pour the milk into the bowl", "stir the soup",
                "peel the carrot with a knife", "flip the pancake"]
    memory = [np.eye(5, dtype=np.float32), np.zeros((5, 3), np.float32)]
    captioner = Captioner(ActBertTokenizer(), CaptionerConfig(width=64, epochs=120, min_steps=0,
                                                              batch_size=5, lr=3e-3, dropout=0.0))
    losses = captioner.fit(memory, captions)
    assert losses[-1] < 0.1 * losses[0]
    assert captioner.generate(memory) == captions
    # A small training set gets more epochs: at least min_steps updates (here 1 batch per epoch).
    short = Captioner(ActBertTokenizer(), CaptionerConfig(width=16, epochs=2, min_steps=7, batch_size=5))
    assert len(short.fit(memory, captions)) == 7


# ---- the whole command -------------------------------------------------------------------------

def test_evaluate_json_structure_and_perfect_narration_baselines(tmp_path, corpus_path, tiny_model,
                                                                  capsys):
    library = corpus_path.parent
    tiny_model.save_pretrained(library / "models/actbert")
    (library / "library.json").write_text(json.dumps({"format": 1, "model": {"checkpoint": "models/actbert"}}))
    args = build_parser().parse_args(["evaluate", "--library", str(library), "--json", "--no-meteor",
                              "--caption-epochs", "3", "--caption-min-steps", "10", "--threads", "1"])
    assert args.func(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == set(TASKS) | {"ci", "differences", "timings_s", "notes", "info", "protocols"}
    assert result["protocols"]["videoqa"]["actbert"] == {
        "accuracy": "zero_shot", "accuracy_embedding": "zero_shot", "accuracy_linear": "probe"}
    assert set(result["protocols"]["captioning"]["actbert"].values()) == {"probe"}
    assert any("retrieval_visual_only: skipped" in n for n in result["notes"])  # no narrated flags
    expected_systems = {"segmentation": {"actbert", "actbert_no_regions", "random", "majority",
                                         "raw_features"},
                        "captioning": {"actbert", "actbert_no_regions", "actbert_with_regions",
                                       "random"},
                        "masked_action": {"actbert", "actbert_no_regions", "majority", "random",
                                          "raw_features"},
                        "videoqa": set(SYSTEMS) | {"raw_features"},
                        "retrieval": set(SYSTEMS) | {"actbert_vector", "actbert_hybrid", "hybrid_narration_only"}}
    vector = {k.removesuffix("_embedding"): v for k, v in result["retrieval"]["actbert"].items()
              if k.endswith("_embedding")}
    assert result["retrieval"]["actbert_vector"] == vector  # the index's ranking alone
    assert "diff:actbert_hybrid-bm25" in result["ci"]["retrieval"]
    # plain RRF without the video is the BM25 ranking itself
    assert result["retrieval"]["hybrid_narration_only"]["r1"] == result["retrieval"]["bm25"]["r1"]
    for task in TASKS:
        assert set(result[task]) == expected_systems.get(task, set(SYSTEMS)), task
        for system, figures in result[task].items():
            if system != "raw_features":  # a probe row: only the probes' metrics
                assert set(METRICS[task]) <= set(figures), (task, system)
            extra = set(figures) - set(METRICS[task]) - {"top1_probe"}  # the verb probe
            assert all(k.rsplit("_", 1)[0] in METRICS[task] for k in extra), extra
            for key, value in figures.items():
                assert value is None if key == "meteor" else (math.isfinite(value) and value >= 0)
    assert set(result["retrieval"]["actbert"]) == {f"{m}{s}" for m in METRICS["retrieval"]
                                                   for s in ("", "_embedding", "_rerank")}
    assert set(result["videoqa"]["actbert"]) == {"accuracy", "accuracy_embedding", "accuracy_linear"}
    # A step clip's narration IS its description: narration search is perfect.
    for name in ("bm25", "minilm"):
        assert result["retrieval"][name]["r1"] == 100.0 and result["retrieval"][name]["median_rank"] == 1
        assert result["step_localization"][name]["recall"] == 100.0
        assert result["videoqa"][name]["accuracy"] == 100.0
    assert any("not the paper's ablation" in n for n in result["notes"])
    # Intervals: every metric of every system but captioning's METEOR (corpus-level); they hold
    # the point figure.
    assert set(result["ci"]) == set(TASKS)
    for task, by_system in result["ci"].items():
        no_interval = {"meteor"} if task == "captioning" else set()
        for system, figures in result[task].items():
            assert set(by_system[system]) == set(figures) - no_interval, (task, system)
            for metric, (low, high) in by_system[system].items():
                assert low <= figures[metric] <= high, (task, system, metric)
        for a, b in (("actbert", "actbert_no_regions"), ("actbert", "bm25")):
            if b not in result[task]:
                assert f"diff:{a}-{b}" not in by_system and f"{a}-{b}" not in result["differences"][task]
                continue
            point = result["differences"][task][f"{a}-{b}"]
            assert set(point) == set(by_system[f"diff:{a}-{b}"]) == (set(result[task][a]) & set(result[task][b])) - no_interval
            for metric, value in point.items():
                assert value == pytest.approx(result[task][a][metric] - result[task][b][metric], abs=2e-4)
    # Perfect narration search is perfect on every resample.
    assert result["ci"]["retrieval"]["bm25"]["r1"] == [100.0, 100.0]
    assert result["ci"]["videoqa"]["minilm"]["accuracy"] == [100.0, 100.0]
    assert set(result["timings_s"]) == {"load", *TASKS}
    # Random segmentation: the expectation of a uniform guess over the labels seen in training
    # (every frame label here is seen), recomputed independently; majority: train's majority.
    corpus = read_corpus(corpus_path)
    held, train = load_split(corpus, "test"), load_split(corpus, "train")
    labels = segmentation_labels(held.corpus, train.corpus)
    train_labels = np.concatenate([y for _, y in segmentation_frames(train, labels)])
    held_labels = np.concatenate([y for _, y in segmentation_frames(held, labels)])
    seen = np.unique(train_labels)
    assert set(held_labels) <= set(seen)
    assert result["segmentation"]["random"]["frame_accuracy"] == pytest.approx(100 / len(seen), abs=1e-3)
    majority = np.bincount(train_labels).argmax()
    assert result["segmentation"]["majority"]["frame_accuracy"] == pytest.approx(
        100 * np.mean(held_labels == majority), abs=1e-3)
    # The random rows are expectations: the same on every resample, and protocol "chance".
    assert result["ci"]["videoqa"]["random"]["accuracy"] == [20.0, 20.0]
    assert result["matching"]["random"] == {"auc": 50.0, "auc_same_task": 50.0}
    assert result["protocols"]["retrieval"]["random"]["r1"] == "chance"
    assert result["info"]["bootstrap"]["resampled"]["retrieval"] == "4 videos (12 queries)"
    train_ids = set(result["info"]["train_video_ids"])
    assert train_ids == {v.video_id for v in corpus.split("train").videos}
    assert {v.task_instance for v in corpus.videos if v.video_id in train_ids}.isdisjoint(
        {v.task_instance for v in corpus.split("test").videos})


def test_noisy_narration_and_determinism(tmp_path, tiny_model):
    path = make_eval_corpus(tmp_path, train_videos=4, test_videos=3, perfect_narration=False)
    tiny_model.save_pretrained(tmp_path / "model")
    config = EvalConfig(corpus=str(path), checkpoint=str(tmp_path / "model"),
                        tasks=("retrieval", "videoqa"), seed=5)
    first, second = evaluate(config), evaluate(config)
    assert first.table("retrieval") == second.table("retrieval")
    assert first.table("videoqa") == second.table("videoqa")
    # Fillers never name a step: narration search knows nothing (R@1 by ties at most chance).
    assert first.table("retrieval")["bm25"]["r1"] < 50
    with pytest.raises(ValueError, match="no videos in split 'val'"):
        evaluate(EvalConfig(corpus=str(path), checkpoint=str(tmp_path / "model"), split="val"))


def test_without_a_train_split_the_trained_heads_are_left_out(tmp_path, tiny_model):
    path = make_eval_corpus(tmp_path, train_videos=0, test_videos=3)
    tiny_model.save_pretrained(tmp_path / "model")
    result = evaluate(EvalConfig(corpus=str(path), checkpoint=str(tmp_path / "model"),
                                 tasks=("segmentation", "videoqa", "captioning"), meteor=False))
    assert set(result.table("segmentation")) == {"random"}
    assert "accuracy_linear" not in result.table("videoqa")["actbert"]
    assert result.tables["captioning"] == {} and "captioning" not in result.task_tables()
    assert sum("to train on" in n for n in result.notes) == 3
