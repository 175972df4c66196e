"""The action objective reads the video: the verb stop-list and the video-only action term."""

import pytest
import torch
import torch.nn.functional as F

from actbert.corpus import ClipGroups, read_corpus
from actbert.pretraining.objectives import PretrainingObjective, VIDEO_KEYS
from actbert.pretraining.train import Collator, TrainConfig, model_for_corpus, train
from actbert.pretraining.verbs import read_stoplist, restrict_action_head, without_verbs
from actbert.tokenizer import ActBertTokenizer
from tests.actbert.corpus_helpers import make_corpus


def _tiny_model(tmp_path):
    corpus = read_corpus(make_corpus(tmp_path / "c"))
    data = ClipGroups(corpus, clips_per_sample=2, seed=0)
    torch.manual_seed(0)
    config = TrainConfig(corpus="", out="", preset="tiny", dropout=0.0)
    return corpus, data, model_for_corpus(config, corpus, data.sample(0)).eval()


def test_stoplist_reads_a_file_with_comments_or_a_comma_list(tmp_path):
    path = tmp_path / "stop.txt"
    path.write_text("# talk\nWelcome\nsubscribe  # to the channel\n\nwelcome\n")
    assert read_stoplist(str(path)) == ("welcome", "subscribe")
    assert read_stoplist("hit, bark") == ("hit", "bark")
    assert read_stoplist(None) == ()


def test_stopped_verbs_leave_the_targets_and_the_header(tmp_path):
    corpus = read_corpus(make_corpus(tmp_path / "c"))  # verbs cut, pour, stir, peel
    cleaned = without_verbs(corpus, ("pour",))
    assert cleaned.verbs == ("cut", "stir", "peel")
    for before, after in zip(corpus.videos, cleaned.videos):
        assert [tuple(v for v in clip if v != "pour") for clip in before.verbs] == list(after.verbs)
    poured = [(vi, c) for vi, v in enumerate(corpus.videos) for c, clip in enumerate(v.verbs) if "pour" in clip]
    assert poured
    data = ClipGroups(cleaned, clips_per_sample=1, seed=0)
    for i, (vi, start, _) in enumerate(data.items):
        if (vi, start) in poured:  # a clip whose only verb was stopped has no action target
            assert float(data.sample(i).verb_targets.sum()) == 0.0


def test_restricting_the_head_keeps_the_logits_of_the_kept_verbs(tmp_path):
    corpus, data, model = _tiny_model(tmp_path)
    verbs = list(model.config.extra["verbs"])
    batch = Collator(ActBertTokenizer(), seed=0)([data[0], data[1]]).clean
    with torch.no_grad():
        before = model(**batch, heads=("action",)).action_logits
        restrict_action_head(model, ("pour", "nothing-like-it"))
        after = model(**batch, heads=("action",)).action_logits
    kept = [i for i, v in enumerate(verbs) if v != "pour"]
    assert model.config.extra["verbs"] == [verbs[i] for i in kept]
    assert model.config.action.num_classes == len(kept) == after.shape[-1]
    torch.testing.assert_close(after, before[..., kept])


def test_video_only_action_term_equals_the_head_on_the_textless_forward(tmp_path):
    corpus, data, model = _tiny_model(tmp_path)
    tok = ActBertTokenizer()
    batch = Collator(tok, seed=0)([data[i] for i in range(4)])
    objective = PretrainingObjective(model, use_alignment=False, cls_id=tok.cls_id, sep_id=tok.sep_id,
                                     action_video_weight=2.0)
    terms = objective(batch)
    # By hand: the text is [CLS] [SEP] for every row, the clean video with every feature visible.
    clean = batch.clean
    ids = torch.tensor([[tok.cls_id, tok.sep_id]] * 4)
    logits = model(text_ids=ids, text_mask=torch.ones_like(ids),
                   **{k: clean[k] for k in VIDEO_KEYS}, heads=("action",)).action_logits
    per_slot = []
    for b in range(4):
        for a in range(clean["action_mask"].shape[1]):
            target = batch.clean_action_targets[b, a]
            if clean["action_mask"][b, a] and target.sum() > 0:
                per_slot.append(-(target * F.log_softmax(logits[b, a], -1)).sum())
    want = torch.stack(per_slot).mean()
    torch.testing.assert_close(terms["action_video"], want)
    rest = sum(v for k, v in terms.items() if k not in ("total", "match", "action_video"))
    torch.testing.assert_close(terms["total"], rest + terms["match"] + 2.0 * want)
    assert "action_video" not in PretrainingObjective(model, use_alignment=False)(batch)


def test_training_with_the_stoplist_gives_a_head_without_those_verbs(tmp_path):
    corpus = make_corpus(tmp_path / "c")
    config = TrainConfig(corpus=str(corpus), out=str(tmp_path / "run"), preset="tiny",
                         clips_per_sample=2, batch_size=4, steps=30, lr=3e-3, warmup_steps=2,
                         log_every=1, progress=False, action_video_weight=1.0, ignore_verbs=("stir",))
    summary = train(config)
    from actbert.model import ActBertForPretraining

    model = ActBertForPretraining.from_pretrained(tmp_path / "run" / "last")
    assert "stir" not in model.config.extra["verbs"] and model.config.action.num_classes == 3
    history = summary["history"]
    first = sum(h["action_video"] for h in history[:5]) / 5
    last = sum(h["action_video"] for h in history[-5:]) / 5
    assert last < 0.7 * first  # the head learns the verbs from the features alone


def test_video_negatives_come_from_the_same_video_at_their_share(tmp_path):
    corpus = read_corpus(make_corpus(tmp_path / "c", videos=6, clips=6))
    data = ClipGroups(corpus, clips_per_sample=2, seed=0, hard_negatives=0.25, video_negatives=0.5)
    kinds = []
    for epoch in range(30):
        data.set_epoch(epoch)
        for i in range(len(data)):
            j = data.negative_for(i)
            assert j != i
            vi, vj = data.items[i][0], data.items[j][0]
            same_task = corpus.videos[vi].task == corpus.videos[vj].task
            kinds.append("video" if vi == vj else "task" if same_task else "other")
    share = {k: kinds.count(k) / len(kinds) for k in ("video", "task", "other")}
    # 0.5 same video; 0.25 same task + a quarter's share of the rest (2 of 5 other videos share it)
    assert 0.45 < share["video"] < 0.55
    assert 0.3 < share["task"] < 0.4
    with pytest.raises(ValueError, match="share"):
        ClipGroups(corpus, clips_per_sample=2, hard_negatives=0.6, video_negatives=0.5)


def test_kept_samples_are_built_once_and_equal_fresh_ones(tmp_path):
    from actbert import corpus as corpus_module

    corpus = read_corpus(make_corpus(tmp_path / "c"))
    fresh = ClipGroups(corpus, clips_per_sample=2, seed=0)
    kept = ClipGroups(corpus, clips_per_sample=2, seed=0)
    kept.keep_samples()
    first = [kept.sample(i) for i in range(len(kept))]
    for i, sample in enumerate(first):
        built = fresh.sample(i)
        assert built.sentences == sample.sentences
        torch.testing.assert_close(built.video.region_features, sample.video.region_features)
        torch.testing.assert_close(built.verb_targets, sample.verb_targets)
    for video in corpus.videos:  # every feature file gone: only the kept samples remain
        video.features.unlink()
    corpus_module._load_features.cache_clear()
    for i, sample in enumerate(first):
        again = kept.sample(i)
        assert again is sample
    with pytest.raises(FileNotFoundError):
        fresh.sample(0)


def test_a_frozen_text_prefix_is_shared_by_matching_and_alignment_with_the_same_losses(tmp_path):
    from actbert.pretraining import losses
    from actbert.pretraining.train import freeze_text

    corpus, data, model = _tiny_model(tmp_path)
    tok = ActBertTokenizer()
    batch = Collator(tok, seed=0)([data[i] for i in range(4)])
    model.train()  # dropout 0: the shared path must give the numbers of separate full passes
    text_only = len(model.actbert.encoder.text_only)
    assert not model.actbert.text_prefix_frozen()
    freeze_text(model, text_only)
    assert model.actbert.text_prefix_frozen()
    terms = PretrainingObjective(model, cls_id=tok.cls_id, sep_id=tok.sep_id)(batch)
    clean = batch.clean
    match = model(**batch.match_inputs, heads=("match",)).match_logits
    torch.testing.assert_close(terms["match"], losses.match_loss(match, batch.match_labels))
    text = model.encode_text(clean["text_ids"], clean["text_mask"], clean["token_type_ids"])
    video = model.encode_video(**{k: clean[k] for k in VIDEO_KEYS}, cls_id=tok.cls_id, sep_id=tok.sep_id)
    torch.testing.assert_close(terms["align"], losses.alignment_loss(text, video, model.align.logit_scale))
    terms["total"].backward()  # the first tangled block's projections of the text still learn
    block = model.actbert.encoder.tangled[0].attention
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in block.parameters())
