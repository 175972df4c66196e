"""Pretraining: losses fall, checkpoints resume, and 2 gloo ranks equal 1 rank."""

import json
import os
import socket
import subprocess
import sys
from dataclasses import replace

import pytest

import torch

from actbert.config import ActBertConfig
from actbert.corpus import ClipGroups, read_corpus
from actbert.data import collate
from actbert.model import ActBertForPretraining
from actbert.pretraining.objectives import PretrainingObjective
from actbert.pretraining.train import Collator, TrainConfig, lr_factor, model_for_corpus, train
from actbert.tokenizer import ActBertTokenizer
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
                         checkpoint_every=20, keep_every=40, log_every=1, progress=False)
    corpus_data = read_corpus(corpus)
    data = ClipGroups(corpus_data, clips_per_sample=2, seed=0)
    torch.manual_seed(config.seed)  # the same initial weights as train() draws
    before = held_out_losses(model_for_corpus(config, corpus_data, data.sample(0)), data)
    summary = train(config)
    after = held_out_losses(ActBertForPretraining.from_pretrained(tmp_path / "run/last"), data)
    # Matching needs longer than 80 tiny steps to leave chance level, and the masked action and
    # region terms have ~4 targets per pass over these 12 samples (15% of 24 clips): too few to
    # generalise here; test_each_objective_fits_a_fixed_batch shows their gradients flow.
    for term in ("text", "align", "total"):
        assert after[term] < before[term], (term, before[term], after[term])
    assert summary["history"][0]["step"] == 1
    log = [json.loads(line) for line in (tmp_path / "run/train.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(1, 81))
    kept = sorted(p.name for p in (tmp_path / "run").glob("step-*"))
    assert kept == ["step-40", "step-80"]  # --keep-every: models to pick the step on val
    kept80 = ActBertForPretraining.from_pretrained(tmp_path / "run/step-80").state_dict()
    last = ActBertForPretraining.from_pretrained(tmp_path / "run/last").state_dict()
    assert kept80.keys() == last.keys() and all(torch.equal(kept80[k], last[k]) for k in last)
    curve = (tmp_path / "run/loss_curve.png").read_bytes()
    assert curve[:8] == b"\x89PNG\r\n\x1a\n" and len(curve) > 10_000
    # Resume to 85 steps from the step-80 checkpoint.
    resumed = train(TrainConfig(**{**config.__dict__, "steps": 85}))
    assert [h["step"] for h in resumed["history"]] == [81, 82, 83, 84, 85]


def test_an_interrupted_run_resumes_to_the_weights_and_log_of_an_uninterrupted_one(tmp_path, monkeypatch):
    """12 samples, 4 a step: 3 steps an epoch, so the checkpoint at step 4 lies inside epoch 2.
    The interrupted run logs steps 5-6 after that checkpoint, then dies; resumed, it must go on
    inside the epoch's order with the checkpoint's dropout draws and log steps 5-6 once."""
    import actbert.pretraining.train as train_module

    corpus = make_corpus(tmp_path / "corpus")
    config = dict(corpus=str(corpus), preset="tiny", clips_per_sample=2, batch_size=4, lr=3e-3,
                  warmup_steps=2, steps=10, checkpoint_every=4, log_every=1, progress=False)
    train(TrainConfig(out=str(tmp_path / "straight"), **config))
    step = train_module._step

    def dies_at_step_7(run, order, first):
        if run.state["step"] == 6:
            raise KeyboardInterrupt
        return step(run, order, first)

    monkeypatch.setattr(train_module, "_step", dies_at_step_7)
    with pytest.raises(KeyboardInterrupt):
        train(TrainConfig(out=str(tmp_path / "run"), **config))
    monkeypatch.setattr(train_module, "_step", step)
    assert len((tmp_path / "run/train.jsonl").read_text().splitlines()) == 6  # checkpoint: step 4
    train(TrainConfig(out=str(tmp_path / "run"), **config))
    straight = ActBertForPretraining.from_pretrained(tmp_path / "straight/last").state_dict()
    resumed = ActBertForPretraining.from_pretrained(tmp_path / "run/last").state_dict()
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)
    logs = [[json.loads(line) for line in (tmp_path / d / "train.jsonl").read_text().splitlines()]
            for d in ("straight", "run")]
    assert [r["step"] for r in logs[1]] == list(range(1, 11))
    assert [r["total"] for r in logs[0]] == [r["total"] for r in logs[1]]


def test_a_resumed_optimizer_runs_the_fused_kernel_with_the_loops_update(tmp_path):
    """A trainer state saved by the per-tensor AdamW loop (runs before the fused kernel) resumes
    on the fused kernel, and its next update equals the loop's."""
    import copy

    from actbert.pretraining.train import _optimizer

    torch.manual_seed(0)
    model = torch.nn.Linear(5, 3)
    loop = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.01)
    torch.optim.lr_scheduler.LambdaLR(loop, lambda step: 1.0)  # as a run's schedule records
    for _ in range(2):
        model(torch.randn(4, 5)).square().sum().backward()
        loop.step()
        loop.zero_grad()
    torch.save({"optimizer": loop.state_dict(), "step": 2, "epoch": 0}, tmp_path / "trainer.pt")
    twin = copy.deepcopy(model)
    fused, _, state = _optimizer(TrainConfig(corpus="", out="", lr=1e-2, weight_decay=0.01), twin,
                                 tmp_path, torch.device("cpu"))
    assert state["step"] == 2 and all(group["fused"] for group in fused.param_groups)
    for group in fused.param_groups:  # the run's schedule set its own rate: compare one update
        group["lr"] = loop.param_groups[0]["lr"]
    x = torch.randn(4, 5)
    for net, optimizer in ((model, loop), (twin, fused)):
        net(x).square().sum().backward()
        optimizer.step()
    for a, b in zip(model.parameters(), twin.parameters()):
        torch.testing.assert_close(a, b)


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
              "--log-every", "1", "--json", "--precision", "fp32"]  # the arithmetic of ranks, not of bf16
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


def test_each_objective_fits_a_fixed_batch(tmp_path):
    """Every loss term falls on one fixed batch (gradients reach every head), in both matching
    modes."""
    corpus = read_corpus(make_corpus(tmp_path, videos=4, clips=4))
    data = ClipGroups(corpus, clips_per_sample=2, seed=0)
    tok = ActBertTokenizer(max_length=64)
    for match_on in ("clean", "masked"):
        torch.manual_seed(0)
        model = model_for_corpus(TrainConfig(corpus="", out="", preset="tiny", dropout=0.0),
                                 corpus, data.sample(0)).train()
        objective = PretrainingObjective(model, cls_id=tok.cls_id, sep_id=tok.sep_id)
        batch = Collator(tok, seed=0, match_on=match_on)([data[i] for i in range(len(data))])
        optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3)
        first = {k: float(v.detach()) for k, v in objective(batch).items()}
        for _ in range(40):
            terms = objective(batch)
            optimizer.zero_grad()
            terms["total"].backward()
            optimizer.step()
        last = {k: float(v.detach()) for k, v in objective(batch).items()}
        for term in ("text", "action", "region", "match", "align"):
            assert last[term] < first[term] * 0.98, (match_on, term, first[term], last[term])


def test_objective_terms_equal_the_losses_of_the_full_forward(tmp_path):
    """The objective computes the text head only at masked words and only the matching head on
    the unmasked pairs; every term must equal the losses of the model's full outputs."""
    from actbert.pretraining import losses

    corpus = read_corpus(make_corpus(tmp_path, videos=4, clips=4))
    data = ClipGroups(corpus, clips_per_sample=2, seed=0)
    tok = ActBertTokenizer(max_length=64)
    torch.manual_seed(0)
    model = model_for_corpus(TrainConfig(corpus="", out="", preset="tiny", dropout=0.0),
                             corpus, data.sample(0)).eval()
    objective = PretrainingObjective(model, use_alignment=False, cls_id=tok.cls_id, sep_id=tok.sep_id)
    for match_on in ("clean", "masked"):
        batch = Collator(tok, seed=0, match_on=match_on)([data[i] for i in range(len(data))])
        assert (batch.text_labels != losses.IGNORE).any()
        terms = objective(batch)
        out = model(**batch.inputs)
        judged = out if batch.match_inputs is None else model(**batch.match_inputs)
        expected = {
            "text": losses.masked_lm_loss(out.text_logits, batch.text_labels),
            "action": losses.masked_action_loss(out.action_logits, batch.action_targets,
                                                batch.action_selected),
            "region": losses.masked_region_loss(out.region_logits, batch.region_targets,
                                                batch.region_labels),
            "match": losses.match_loss(judged.match_logits, batch.match_labels)}
        for name, value in expected.items():
            torch.testing.assert_close(terms[name], value, rtol=1e-5, atol=1e-6, msg=name)
    unmasked = replace(batch, text_labels=torch.full_like(batch.text_labels, losses.IGNORE))
    assert float(objective(unmasked)["text"]) == 0.0  # a batch without a masked word
    only_match = model(**batch.inputs, heads=("match",))
    assert only_match.text_logits is None and only_match.action_logits is None
    torch.testing.assert_close(only_match.match_score, out.match_score)
    with pytest.raises(ValueError, match="unknown heads"):
        model(**batch.inputs, heads=("verbs",))


def test_every_video_input_is_the_shown_video(tmp_path):
    """Videos differ in clip count, region count and boxes: a swapped row must carry the negative
    video's features AND its masks, locations, positions, segments and tokens (the old collator
    mixed the negative's features with the positive's masks), and the forward pass must run."""
    corpus = read_corpus(make_corpus(tmp_path, videos=6, clips=3, ragged=True))
    data = ClipGroups(corpus, clips_per_sample=3, seed=0)
    items = [data[i] for i in range(len(data))]
    tok = ActBertTokenizer(max_length=64)
    torch.manual_seed(0)
    model = model_for_corpus(TrainConfig(corpus="", out="", preset="tiny"), corpus, data.sample(0)).eval()
    for match_on in ("clean", "masked"):
        batch = Collator(tok, seed=5, match_on=match_on)(items)
        swapped = batch.match_labels.tolist()
        assert 0 < sum(swapped) < len(swapped)
        shown = collate([(n if s else p).video for (_, p, n), s in zip(items, swapped)])
        judged = batch.match_inputs if match_on == "clean" else batch.inputs
        for key in ("action_mask", "action_positions", "action_segments", "region_mask",
                    "region_locations", "region_positions", "region_segments", "region_tokens"):
            assert torch.equal(judged[key], shown[key]), (match_on, key)
        if match_on == "clean":  # unmasked: the very features of the shown videos
            assert torch.equal(judged["region_features"], shown["region_features"])
            assert torch.equal(judged["action_features"], shown["action_features"])
            own = collate([p.video for _, p, _ in items])  # masked modelling on the own videos
            assert torch.equal(batch.inputs["region_mask"], own["region_mask"])
        with torch.no_grad():
            out = model(**judged)
        assert out.match_logits.shape == (len(items), 2)
        assert PretrainingObjective(model, cls_id=tok.cls_id, sep_id=tok.sep_id)(batch)["total"].isfinite()


def test_clip_group_text_has_a_segment_and_a_sep_per_clip_and_shares_the_budget(tmp_path):
    corpus = read_corpus(make_corpus(tmp_path, videos=4, clips=3))
    data = ClipGroups(corpus, clips_per_sample=3, seed=0)
    long_first = "and " * 80 + "then"  # a narration longer than the whole text budget
    items = [(i, replace(p, sentences=(long_first, *p.sentences[1:])), n)
             for i, p, n in (data[j] for j in range(2))]
    tok = ActBertTokenizer(max_length=32)
    batch = Collator(tok, seed=0)(items)
    for b, (_, positive, _) in enumerate(items):
        ids = batch.clean["text_ids"][b][batch.clean["text_mask"][b] == 1].tolist()
        segments = batch.clean["token_type_ids"][b][batch.clean["text_mask"][b] == 1].tolist()
        assert len(ids) <= 32 and ids[0] == tok.cls_id and ids[-1] == tok.sep_id
        assert ids.count(tok.sep_id) == 3  # one [SEP] after each clip's sentence
        assert sorted(set(segments)) == [0, 1, 2] and segments == sorted(segments)
        words = tok.decode([i for i, s in zip(ids, segments) if s == 2])
        assert words == positive.sentences[2]  # the last clip keeps its words


def test_match_head_reads_the_text_cls_in_the_paper_and_the_fused_poolers_in_paddle():
    from tests.actbert.helpers import random_inputs

    for preset, expected in (("tiny", "cls"), ("paddle", "fused")):
        config = ActBertConfig.from_name(preset) if preset == "tiny" else ActBertConfig.from_name(
            "tiny", tangled={"kv_fusion": "paddle"}, match_input="fused")
        assert ActBertConfig.from_name(preset).match_input == expected
        torch.manual_seed(0)
        model = ActBertForPretraining(config).eval()
        inputs = random_inputs(config)
        with torch.no_grad():
            out = model(**inputs)
            pooled = out.pooled
            read = pooled["text"] if expected == "cls" else model.actbert.fuse(pooled)
            torch.testing.assert_close(out.match_logits, model.heads["match"](read))


def test_text_init_loads_a_bert_directory_into_the_text_stream(tmp_path):
    """``actbert train --text-init DIR``: an HF-format BERT directory (here one of the tiny text
    stream's sizes, random) initialises the text stream of a fresh model."""
    from safetensors.torch import save_file

    text = ActBertConfig.from_name("tiny").text
    g = torch.Generator().manual_seed(1)
    state = {"embeddings.word_embeddings.weight": torch.randn(text.num_classes, text.hidden_size, generator=g),
             "embeddings.token_type_embeddings.weight": torch.randn(2, text.hidden_size, generator=g),
             "encoder.layer.1.output.dense.weight": torch.randn(text.hidden_size, text.intermediate_size,
                                                                generator=g)}
    bert = tmp_path / "bert"
    bert.mkdir()
    save_file(state, str(bert / "model.safetensors"))
    (bert / "config.json").write_text(json.dumps({
        "hidden_size": text.hidden_size, "num_hidden_layers": text.num_layers,
        "num_attention_heads": text.num_heads, "vocab_size": text.num_classes,
        "intermediate_size": text.intermediate_size}))
    corpus = read_corpus(make_corpus(tmp_path / "corpus"))
    data = ClipGroups(corpus, clips_per_sample=2, seed=0)
    model = model_for_corpus(TrainConfig(corpus="", out="", preset="tiny", text_init=str(bert)),
                             corpus, data.sample(0))
    ours = model.state_dict()
    assert torch.equal(ours["actbert.embeddings.text.word_embeddings.weight"],
                       state["embeddings.word_embeddings.weight"])
    assert torch.equal(ours["actbert.encoder.layers.text.1.output.dense.weight"],
                       state["encoder.layer.1.output.dense.weight"])
    rows = ours["actbert.embeddings.text.token_type_embeddings.weight"]
    assert torch.equal(rows, state["embeddings.token_type_embeddings.weight"][torch.arange(len(rows)) % 2])
    # and through the command line
    from actbert.cli import main

    assert main(["train", "--corpus", str(tmp_path / "corpus" / "corpus.jsonl"), "--out",
                 str(tmp_path / "run"), "--preset", "tiny", "--text-init", str(bert), "--steps", "1",
                 "--batch-size", "2", "--clips-per-sample", "2", "--json"]) == 0
    trained = ActBertForPretraining.from_pretrained(tmp_path / "run" / "last").state_dict()
    assert torch.allclose(trained["actbert.embeddings.text.word_embeddings.weight"],
                          state["embeddings.word_embeddings.weight"], atol=1e-2)


def test_init_keeps_the_models_verb_classes_on_a_corpus_that_lists_others(tmp_path):
    """``actbert train --init`` on a corpus whose header lists other verbs, or the same ones in
    another order, trains the action head on its own classes (it crashed on a size mismatch, and
    a reordering silently permuted the targets)."""
    from actbert.corpus import write_corpus
    from actbert.pretraining.train import targets_for_model

    first = make_corpus(tmp_path / "a")
    base = dict(clips_per_sample=2, batch_size=4, steps=2, lr=1e-3, warmup_steps=1, log_every=1,
                progress=False, preset="tiny")
    train(TrainConfig(corpus=str(first), out=str(tmp_path / "run1"), **base))
    model = ActBertForPretraining.from_pretrained(tmp_path / "run1" / "last")
    assert model.config.extra["verbs"] == ["cut", "pour", "stir", "peel"]
    corpus = read_corpus(first)
    other = tmp_path / "a" / "other.jsonl"
    write_corpus(other, list(corpus.videos), ["peel", "stir", "whisk", "pour", "cut"],
                 list(corpus.region_classes))
    retargeted = targets_for_model(read_corpus(other), model)
    assert retargeted.verbs == ("cut", "pour", "stir", "peel")
    assert retargeted.verb_targets(("pour",)).tolist() == [0.0, 1.0, 0.0, 0.0]
    assert retargeted.verb_targets(("whisk",)).tolist() == [0.0] * 4
    summary = train(TrainConfig(corpus=str(other), out=str(tmp_path / "run2"),
                                init=str(tmp_path / "run1" / "last"), **base))
    assert summary["steps"] == 2 and torch.isfinite(torch.tensor(summary["final"]["action"]))
    again = ActBertForPretraining.from_pretrained(tmp_path / "run2" / "last")
    assert again.config.extra["verbs"] == ["cut", "pour", "stir", "peel"]
    # a model that names no verbs must have as many classes as the corpus lists
    model.config.extra.pop("verbs")
    with pytest.raises(ValueError, match="4 classes and names none, but the corpus has 5 verbs"):
        targets_for_model(read_corpus(other), model)


def test_a_fresh_model_takes_its_verb_classes_from_the_training_split_only(tmp_path):
    """The corpus header's verbs come from every split's narrations; a fresh model's classes are
    those the training narrations use in at least the header's ``min_verb_count`` clips, in the
    header's order (a verb only a val video says got a class before)."""
    from actbert.corpus import write_corpus

    corpus = read_corpus(make_corpus(tmp_path / "a", videos=6))
    videos = list(corpus.videos)
    # the last video moves to val and is the only one to say "whisk"
    videos[-1] = replace(videos[-1], split="val", verbs=((("whisk",),) + videos[-1].verbs[1:]))
    header = ["whisk", "cut", "pour", "stir", "peel"]
    train_clips = [set(clip) for v in videos if v.split == "train" for clip in v.verbs]
    counts = {verb: sum(verb in clip for clip in train_clips) for verb in header}
    need = max(counts.values())  # a threshold only the most frequent training verbs meet
    expected = [verb for verb in header if counts[verb] >= need]
    assert counts["whisk"] == 0 and 0 < len(expected) < 4
    path = tmp_path / "a" / "split.jsonl"
    base = dict(clips_per_sample=2, batch_size=4, steps=1, lr=1e-3, warmup_steps=1, log_every=1,
                progress=False, preset="tiny")
    for threshold, want in ((None, ["cut", "pour", "stir", "peel"]), (need, expected)):
        meta = {} if threshold is None else {"min_verb_count": threshold}
        write_corpus(path, videos, header, list(corpus.region_classes), **meta)
        out = tmp_path / f"run{threshold}"
        train(TrainConfig(corpus=str(path), out=str(out), **base))
        model = ActBertForPretraining.from_pretrained(out / "last")
        assert model.config.extra["verbs"] == want
        assert model.config.action.num_classes == len(want)


def test_frozen_text_layers_run_without_dropout_while_the_rest_trains(tmp_path):
    """--freeze-text-layers: the fixed layers are a feature extractor (eval mode, the same state for
    the same words every step); every other module still trains with dropout."""
    from pathlib import Path

    from actbert.pretraining.train import _prepare_model, frozen_text_modules

    corpus = make_corpus(tmp_path / "corpus")
    config = TrainConfig(corpus=str(corpus), out=str(tmp_path / "run"), preset="tiny",
                         clips_per_sample=2, batch_size=4, steps=1, freeze_text_layers=1,
                         dropout=0.5, progress=False)
    corpus_data = read_corpus(corpus)
    data = ClipGroups(corpus_data, clips_per_sample=2, seed=0)
    model = _prepare_model(config, corpus_data, data, Path(tmp_path / "none"), torch.device("cpu"))
    frozen = frozen_text_modules(model, 1)
    fixed = [m for f in frozen for m in f.modules()]
    assert fixed and not any(m.training for m in fixed)
    fixed = {id(m) for m in fixed}
    trained = [m for m in model.modules() if id(m) not in fixed]
    assert trained and all(m.training for m in trained)
    ids = torch.tensor([[101, 2000, 2001, 102]])
    layer = model.actbert.encoder.layers["text"][0]
    hidden = model.actbert.embeddings["text"](ids, None)
    bias = torch.zeros(1, 1, 1, 4)
    assert torch.equal(layer(hidden, bias)[0], layer(hidden, bias)[0])  # no dropout draws
    second = model.actbert.encoder.layers["text"][1]
    assert not torch.equal(second(hidden, bias)[0], second(hidden, bias)[0])  # dropout 0.5 draws


def test_auto_precision_is_bf16_on_gpus_and_on_cpus_with_bf16_matrix_units(monkeypatch):
    from actbert import device as device_module
    from actbert.pretraining import train as train_module

    amx = "processor\t: 0\nflags\t\t: fpu sse avx512f avx512_bf16 amx_bf16 amx_tile\n"
    plain = "processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_bf16\n"  # bf16 dot products, no AMX
    assert device_module.has_bf16_matrix_units(amx)
    assert not device_module.has_bf16_matrix_units(plain)
    assert not device_module.has_bf16_matrix_units("flags\t\t: fpu amx_bf16x\nmodel name\t: amx_bf16\n")
    for has_amx, expected in ((True, torch.bfloat16), (False, None)):
        monkeypatch.setattr(train_module, "cpu_has_bf16_matrix_units", lambda has_amx=has_amx: has_amx)
        dtype, scaler = train_module._precision(TrainConfig(corpus="c", out="o"), torch.device("cpu"))
        assert dtype is expected and scaler is None
        assert train_module._precision(TrainConfig(corpus="c", out="o", precision="fp32"), torch.device("cpu"))[0] is None
    assert train_module._precision(TrainConfig(corpus="c", out="o"), torch.device("cuda"))[0] is torch.bfloat16


def test_the_alignment_weight_is_written_into_the_model_and_leaves_training_unchanged(tmp_path):
    """``match_alignment_weight`` sets the trained model's matching score (its config, fresh or
    ``--init``); pretraining reads the head's logits only, so the losses are those of a run
    without it, number for number."""
    corpus = make_corpus(tmp_path / "a")
    base = dict(corpus=str(corpus), clips_per_sample=2, batch_size=4, steps=3, lr=1e-3, warmup_steps=1,
                log_every=1, progress=False, preset="tiny", dropout=0.0)
    plain = train(TrainConfig(out=str(tmp_path / "plain"), **base))
    summed = train(TrainConfig(out=str(tmp_path / "summed"), match_alignment_weight=12.5, **base))
    speed = "samples_per_s"
    assert {k: v for k, v in summed["final"].items() if k != speed} == {k: v for k, v in plain["final"].items() if k != speed}
    assert ActBertForPretraining.from_pretrained(tmp_path / "plain" / "last").config.match_alignment_weight == 0
    assert ActBertForPretraining.from_pretrained(tmp_path / "summed" / "last").config.match_alignment_weight == 12.5
    train(TrainConfig(out=str(tmp_path / "again"), **{**base, "steps": 1},
                      init=str(tmp_path / "plain" / "last"), match_alignment_weight=4.0))
    assert ActBertForPretraining.from_pretrained(tmp_path / "again" / "last").config.match_alignment_weight == 4.0
    train(TrainConfig(out=str(tmp_path / "kept"), **{**base, "steps": 1}, init=str(tmp_path / "again" / "last")))
    assert ActBertForPretraining.from_pretrained(tmp_path / "kept" / "last").config.match_alignment_weight == 4.0
