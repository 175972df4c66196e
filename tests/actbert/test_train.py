"""Pretraining: losses fall, checkpoints resume, and 2 gloo ranks equal 1 rank."""

import json
import os
import socket
import subprocess
import sys

import pytest

import torch

from actbert.corpus import ClipGroups, read_corpus
from actbert.model import ActBertForPretraining
from actbert.objectives import PretrainingObjective
from actbert.tokenizer import ActBertTokenizer
from actbert.train import Collator, TrainConfig, lr_factor, model_for_corpus, train
from tests.actbert.corpus_helpers import make_corpus

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_lr_schedule_by_hand():
    config = TrainConfig(corpus="", out="", steps=110, warmup_steps=10, schedule="linear")
    assert lr_factor(0, config) == pytest.approx(0.1)
    assert lr_factor(9, config) == pytest.approx(1.0)
    assert lr_factor(60, config) == pytest.approx(0.5)
    cosine = TrainConfig(corpus="", out="", steps=110, warmup_steps=10, schedule="cosine")
    assert lr_factor(60, cosine) == pytest.approx(0.5)


def test_negatives_come_from_other_videos_half_of_them_same_task(tmp_path):
    corpus = read_corpus(make_corpus(tmp_path, videos=6, clips=4))
    hard = ClipGroups(corpus, clips_per_sample=2, seed=0, hard_negatives=1.0)
    for i in range(len(hard)):
        j = hard.negative_for(i)
        vi, vj = hard.items[i][0], hard.items[j][0]
        assert vi != vj and corpus.videos[vi].task == corpus.videos[vj].task
        assert j == hard.negative_for(i)  # deterministic
    mixed = ClipGroups(corpus, clips_per_sample=2, seed=0)
    same = [corpus.videos[mixed.items[i][0]].task == corpus.videos[mixed.items[j][0]].task
            for epoch in range(20) for i in range(len(mixed))
            if not mixed.set_epoch(epoch) and (j := mixed.negative_for(i)) is not None]
    # Hard half always same-task; the other half picks any other video (2 of 5 share the task).
    assert 0.6 < sum(same) / len(same) < 0.8
    with pytest.raises(ValueError, match="hard_negatives"):
        ClipGroups(corpus, clips_per_sample=2, hard_negatives=1.5)


def test_training_lowers_losses_and_resumes(tmp_path):
    corpus = make_corpus(tmp_path / "corpus")
    config = TrainConfig(corpus=str(corpus), out=str(tmp_path / "run"), preset="tiny",
                         clips_per_sample=2, batch_size=4, steps=80, lr=3e-3, warmup_steps=2,
                         checkpoint_every=20, log_every=1, progress=False)
    corpus_data = read_corpus(corpus)
    data = ClipGroups(corpus_data, clips_per_sample=2, seed=0)
    torch.manual_seed(config.seed)  # the same initial weights as train() draws
    before = held_out_losses(model_for_corpus(config, corpus_data, data.sample(0)), data)
    summary = train(config)
    after = held_out_losses(ActBertForPretraining.from_pretrained(tmp_path / "run/last"), data)
    # Matching needs longer than 80 tiny steps to leave chance level: the mini test covers it.
    for term in ("text", "action", "region", "align", "total"):
        assert after[term] < before[term], (term, before[term], after[term])
    assert summary["history"][0]["step"] == 1
    log = [json.loads(line) for line in (tmp_path / "run/train.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(1, 81))
    # Resume to 85 steps from the step-80 checkpoint.
    resumed = train(TrainConfig(**{**config.__dict__, "steps": 85}))
    assert [h["step"] for h in resumed["history"]] == [81, 82, 83, 84, 85]


@torch.no_grad()
def held_out_losses(model, data, repeats=6):
    """Mean losses over every sample under several masking draws (eval mode)."""
    model.eval()
    tok = ActBertTokenizer(max_length=64)
    collator = Collator(tok, seed=123)
    objective = PretrainingObjective(model, cls_id=tok.cls_id, sep_id=tok.sep_id)
    totals = {}
    for epoch in range(repeats):
        collator.epoch = epoch
        terms = objective(collator([data[i] for i in range(len(data))]))
        for k, v in terms.items():
            totals[k] = totals.get(k, 0.0) + float(v) / repeats
    return totals


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_gloo_ranks_match_one_rank(tmp_path):
    corpus = make_corpus(tmp_path / "corpus", videos=8)
    common = ["--corpus", str(corpus), "--preset", "tiny", "--steps", "4", "--batch-size", "4",
              "--clips-per-sample", "2", "--lr", "1e-3", "--warmup-steps", "1", "--dropout", "0",
              "--log-every", "1", "--json"]
    env = {**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "actbert", "train", "--out", str(tmp_path / "one"),
                    *common], check=True, cwd=ROOT, env=env, capture_output=True, timeout=300)
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                    "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
                    "-m", "actbert", "train", "--out", str(tmp_path / "two"), *common],
                   check=True, cwd=ROOT, env=env, capture_output=True, timeout=300)
    one = [json.loads(x) for x in (tmp_path / "one/train.jsonl").read_text().splitlines()]
    two = [json.loads(x) for x in (tmp_path / "two/train.jsonl").read_text().splitlines()]
    assert len(one) == len(two) == 4
    for a, b in zip(one, two):
        for term in ("text", "action", "region", "match", "align", "total"):
            assert a[term] == pytest.approx(b[term], rel=1e-3, abs=1e-4), (a["step"], term)


def test_alignment_pairs_each_text_with_its_own_video_even_when_swapped(tmp_path):
    corpus = read_corpus(make_corpus(tmp_path, videos=6, clips=4))
    data = ClipGroups(corpus, clips_per_sample=2, seed=0)
    items = [data[i] for i in range(len(data))]
    batch = Collator(ActBertTokenizer(max_length=64), seed=5)(items)
    labels = batch.match_labels.tolist()
    assert 0 < sum(labels) < len(labels)  # both kinds present
    for b, ((_, positive, negative), swapped) in enumerate(zip(items, labels)):
        shown = negative if swapped else positive
        n = positive.video.action_features.shape[0]
        # The alignment input holds the sample's own video; the joint input the shown one.
        assert torch.equal(batch.clean["action_features"][b, :n], positive.video.action_features)
        assert int(batch.clean["action_mask"][b].sum()) == n
        m = shown.video.region_features.shape[0]
        assert torch.equal(batch.inputs["region_locations"][b, :m], shown.video.region_locations)
        if swapped:  # and the two videos differ, so the test could tell them apart
            assert not torch.equal(positive.video.action_features[:1], negative.video.action_features[:1])


def test_a_time_budget_stops_after_at_least_one_step_with_a_checkpoint(tmp_path):
    corpus = make_corpus(tmp_path / "corpus")
    out = tmp_path / "run"
    summary = train(TrainConfig(corpus=str(corpus), out=str(out), preset="tiny", clips_per_sample=2,
                                batch_size=4, steps=50, max_seconds=1e-9, progress=False))
    assert summary["steps"] == 1  # any step outlasts a nanosecond; the first always runs
    assert (out / "last" / "model.safetensors").is_file() and (out / "last" / "trainer.pt").is_file()
