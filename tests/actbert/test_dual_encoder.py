"""The dual-encoder baseline (``dual_encoder``, ``dual_training``) on a tiny corpus whose clips
encode their verb: training lowers the InfoNCE loss, the trained encoder ranks a planted matching
pair above a non-matching one, and it loads back from safetensors + JSON."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from actbert.__main__ import main
from actbert.corpus import read_corpus
from actbert.evaluation.dual_encoder import DualEncoder, DualEncoderScorer
from actbert.evaluation.dual_training import DualTrainConfig, info_nce, train_dual
from actbert.evaluation.tasks import load_split
from tests.actbert.corpus_helpers import NOUNS, VERBS, make_corpus

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
