"""The dual-encoder baseline (``dual_encoder``, ``dual_training``) on a tiny corpus whose clips
encode their verb: training lowers the InfoNCE loss, the trained encoder ranks a planted matching
pair above a non-matching one, and it loads back from safetensors + JSON; in ``evaluate``, its rows
and the probes' ``raw_features`` rows (``raw_features``) against independent recomputations."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from actbert import ActBertConfig, ActBertForPretraining
from actbert.cli import main
from actbert.corpus import read_corpus
from actbert.data import VideoFeatures, collate
from actbert.evaluation.dual_encoder import DualEncoder, DualEncoderScorer
from actbert.evaluation.evaluate import EvalConfig, evaluate
from actbert.evaluation.raw_features import BilinearPairs, RawFeatures
from actbert.evaluation.tasks import load_split, retrieval_queries
from actbert.finetuning.dual_training import DualTrainConfig, info_nce, train_dual
from actbert.tokenizer import ActBertTokenizer
from tests.actbert.corpus_helpers import NOUNS, VERBS, make_corpus, make_eval_corpus

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_info_nce_by_hand():
    text = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]]), dim=-1)
    video = torch.nn.functional.normalize(torch.tensor([[1.0, 0.2], [0.0, 1.0], [1.0, 1.0]]), dim=-1)
    same = torch.tensor([[1, 0, 1], [0, 1, 0], [1, 0, 1]], dtype=torch.bool)  # texts 0 and 2 equal
    logits = (10 * text @ video.T).numpy()
    expected = 0.0
    for grid in (logits, logits.T):
        for i in range(3):
            keep = [j for j in range(3) if j == i or not same[i, j]]
            expected += -(grid[i, i] - np.log(np.exp(grid[i, keep]).sum())) / 6
    assert float(info_nce(text, video, torch.tensor(10.0), same)) == pytest.approx(expected, rel=1e-5)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dual")
    corpus = make_corpus(folder / "corpus", videos=6, clips=4)
    config = DualTrainConfig(corpus=str(corpus), out=str(folder / "run"), steps=60, batch_size=8,
                             lr=3e-3, freeze_text=True, warmup_steps=5, width=32, layers=1,
                             embed_size=32, log_every=10)
    return corpus, config, train_dual(config)


def test_training_lowers_the_loss_and_writes_safetensors_and_json(trained):
    _, config, summary = trained
    losses = summary["losses"]
    assert len(losses) == 60 and np.mean(losses[-10:]) < 0.6 * np.mean(losses[:10])
    files = {p.name for p in Path(config.out).iterdir()}
    assert {"config.json", "model.safetensors", "train.jsonl", "train_config.json"} <= files
    assert not any(name.endswith((".pt", ".bin", ".pkl")) for name in files)
    assert json.loads((Path(config.out) / "config.json").read_text())["kind"] == "dual_encoder"


def test_the_trained_encoder_ranks_the_planted_pair_first(trained, tmp_path):
    _, config, _ = trained
    # Held-out clips of a fresh draw: each action feature encodes its verb.
    corpus = read_corpus(make_corpus(tmp_path, videos=2, clips=4, seed=5))
    split = load_split(corpus, "train")
    scorer = DualEncoderScorer(DualEncoder.from_pretrained(config.out), split, batch_size=3)
    verb_of = [VERBS.index(v.verbs[c][0]) for v in corpus.videos for c in range(4)]
    wins = total = 0
    for k, verb in enumerate(VERBS):
        text = f"now {verb} the {NOUNS[k]}"
        matching = [c for c, v in enumerate(verb_of) if v == k]
        others = [c for c, v in enumerate(verb_of) if v != k]
        if not matching:
            continue
        scores = scorer.cosine([text] * len(verb_of), list(range(len(verb_of))))
        wins += sum(scores[m] > scores[o] for m in matching for o in others)
        total += len(matching) * len(others)
    assert wins / total > 0.9
    # Scores are cosines of the two towers' unit vectors, cached per text and clip.
    vectors = scorer.visual_features([0, 1])
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(scorer.cosine(["now cut the tomato"], [1]),
                               scorer.text_embeddings(["now cut the tomato"]) @ vectors[1], atol=1e-6)


def test_train_dual_command(tmp_path, capsys):
    corpus = make_corpus(tmp_path / "corpus", videos=2, clips=4)
    assert main(["train-dual", "--corpus", str(corpus), "--out", str(tmp_path / "run"), "--steps", "2",
                 "--batch-size", "4", "--width", "16", "--layers", "1", "--embed-size", "8",
                 "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["steps"] == 2 and summary["pairs"] == 8
    assert main(["train-dual", "--corpus", str(corpus), "--out", str(tmp_path / "r2"),
                 "--split", "test"]) == 1


# ---- in the evaluation: dual_encoder and raw_features rows ---------------------------------------

@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    folder = tmp_path_factory.mktemp("eval")
    corpus = make_eval_corpus(folder / "corpus", train_videos=12, test_videos=3)
    torch.manual_seed(0)
    ActBertForPretraining(ActBertConfig.from_name("tiny")).eval().save_pretrained(folder / "model")
    train_dual(DualTrainConfig(corpus=str(corpus), out=str(folder / "dual"), steps=30, batch_size=8,
                               freeze_text=True, warmup_steps=3, width=32, layers=1, embed_size=32))
    config = EvalConfig(corpus=str(corpus), checkpoint=str(folder / "model"),
                        dual_encoder=str(folder / "dual"), resamples=50,
                        tasks=("retrieval", "step_localization", "segmentation", "videoqa",
                               "matching", "masked_action"))
    return corpus, folder, evaluate(config).to_json()


def test_dual_encoder_rows_are_its_cosine_ranking(evaluated):
    corpus, folder, result = evaluated
    held = load_split(read_corpus(corpus), "test")
    model = DualEncoder.from_pretrained(folder / "dual")
    queries = retrieval_queries(held)
    enc = ActBertTokenizer(max_length=64)([q.description for q in queries])
    video = collate([held.inputs(c, 36) for c in range(len(held.clips))])
    video.pop("region_classes")
    with torch.no_grad():
        grid = (model.encode_text(enc.ids, enc.mask) @ model.encode_video(**video).T).numpy()
    target = grid[np.arange(len(queries)), [q.target for q in queries]]
    ranks = (grid > target[:, None]).sum(1)  # no ties among float cosines
    assert result["retrieval"]["dual_encoder"]["r1"] == pytest.approx(100 * np.mean(ranks < 1), abs=1e-3)
    assert result["retrieval"]["dual_encoder"]["r5"] == pytest.approx(100 * np.mean(ranks < 5), abs=1e-3)
    for task in ("step_localization", "videoqa", "matching", "segmentation"):
        assert "dual_encoder" in result[task], task
    assert set(result["masked_action"]["dual_encoder"]) == {"top1_probe"}
    assert set(result["matching"]["dual_encoder"]) == {"auc", "auc_same_task"}
    assert "diff:actbert-dual_encoder" in result["ci"]["retrieval"]
    assert result["info"]["dual_encoder"] == str(folder / "dual")


def test_raw_features_rows_beside_every_probe(evaluated):
    corpus, _, result = evaluated
    assert set(result["segmentation"]["raw_features"]) == {"frame_accuracy"}
    assert set(result["videoqa"]["raw_features"]) == {"accuracy_linear"}
    assert set(result["masked_action"]["raw_features"]) == {"top1_probe"}
    assert {"top1_masked", "top1_video_only", "top1_probe"} == set(result["masked_action"]["actbert"])
    assert result["protocols"]["segmentation"]["raw_features"]["frame_accuracy"] == "probe"
    assert "diff:actbert-raw_features" in result["ci"]["segmentation"]
    # Each step clip's action feature encodes its verb: the raw verb probe reads it.
    assert result["masked_action"]["raw_features"]["top1_probe"] > 80


def test_raw_features_are_the_action_feature_and_the_mean_region_feature(tmp_path):
    corpus = read_corpus(make_eval_corpus(tmp_path, train_videos=0, test_videos=2))
    held = load_split(corpus, "test")
    got = RawFeatures(held, max_regions=36).visual_features([0, 7])
    for row, clip in zip(got, (0, 7)):
        c = held.clips[clip]
        features = VideoFeatures.load(corpus.videos[c.video].features)
        regions = features.region_features[features.region_clip == c.index]
        np.testing.assert_allclose(row, np.concatenate([features.action_features[c.index],
                                                        regions.mean(0)]), atol=1e-6)


def test_bilinear_pair_features_are_outer_products_of_principal_components():
    rng = np.random.default_rng(0)
    texts, videos = rng.normal(size=(40, 6)), rng.normal(size=(40, 5))
    pair = BilinearPairs(texts, videos, dims=3)
    x = pair(texts[:2], videos[:2])
    t = (texts - texts.mean(0)) / (texts.std(0) + 1e-6)
    v = (videos - videos.mean(0)) / (videos.std(0) + 1e-6)
    t_axes, v_axes = np.linalg.svd(t)[2][:3], np.linalg.svd(v)[2][:3]
    for i in range(2):
        want = np.abs(np.outer(t[i] @ t_axes.T, v[i] @ v_axes.T))  # axes' signs are arbitrary
        np.testing.assert_allclose(np.abs(x[i].reshape(3, 3)), want, atol=1e-8)


def test_train_dual_reads_the_step_lists_as_actbert_train_does(tmp_path, capsys):
    """Perfect narration: a step clip's narration IS its step description, so it matches its own
    step (cosine 1); the fillers ("um okay so" ...) match none of "<verb> the <food>"."""
    from actbert.finetuning.dual_training import training_pairs

    corpus = make_eval_corpus(tmp_path / "corpus", train_videos=4, test_videos=1)
    texts, _, step_of = training_pairs(str(corpus), "train", 36, step_threshold=0.4)
    steps = {s["description"] for v in read_corpus(corpus).split("train").videos for s in v.steps}
    assert step_of == [t if t in steps else None for t in texts] and len(steps) == 12
    assert training_pairs(str(corpus), "train", 36)[2] == [None] * len(texts)
    assert main(["train-dual", "--corpus", str(corpus), "--out", str(tmp_path / "run"), "--steps", "2",
                 "--batch-size", "4", "--width", "16", "--layers", "1", "--embed-size", "8",
                 "--step-list-share", "0.5", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["pairs_with_a_step_text"] == 12
