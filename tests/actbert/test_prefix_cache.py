"""The frozen text prefix kept per text (``pretraining/prefix_cache.py``): the same state as
running the prefix, the prefix run once per text, and only when it is deterministic."""

import pytest
import torch

from actbert import ActBertForPretraining
from actbert.pretraining.prefix_cache import PrefixCache, prefix_deterministic
from actbert.pretraining.train import freeze_text, frozen_text_modules
from tests.actbert.helpers import random_inputs, variant_config


def _frozen_model():
    torch.manual_seed(0)
    model = ActBertForPretraining(variant_config("stack", layered=True))
    layers = len(model.actbert.encoder.text_only)
    freeze_text(model, layers)
    model.train()
    for module in frozen_text_modules(model, layers):
        module.eval()
    return model.actbert


def _prefix_rows(model) -> list[int]:
    """Rows (texts) each run of the first text layer saw, recorded by a hook."""
    rows = []
    model.encoder.layers["text"][0].register_forward_hook(lambda m, i, o: rows.append(i[0].shape[0]))
    return rows


def test_the_cached_state_is_the_prefix_state_and_each_text_runs_once():
    model = _frozen_model()
    assert prefix_deterministic(model)
    inputs = random_inputs(model.config, batch=3, text_len=10)
    ids, mask = inputs["text_ids"], inputs["text_mask"]
    types = torch.zeros_like(ids)
    types[:, 5:] = 1
    rows = _prefix_rows(model)
    cache = PrefixCache()
    state = cache.state(model, ids, mask, types)
    expected = model.text_state(ids, mask, types, fixed_prefix=True)
    real = mask.bool()
    torch.testing.assert_close(state.hidden[real], expected.hidden[real])
    assert torch.equal(state.bias, expected.bias)
    for name, value in expected.projected.items():  # the learning projections, recomputed
        torch.testing.assert_close(state.projected[name][real], value[real], msg=name)
    assert state.projected["key"].requires_grad
    assert rows == [3, 3]  # the cache's run and the reference's
    # again, with one new text and one repeated twice: only the new one runs the prefix
    fresh = ids.clone()
    fresh[0, 2] = 1500
    again = cache.state(model, torch.stack([ids[1], fresh[0], ids[1]]), mask[[1, 0, 1]], types[[1, 0, 1]])
    assert rows == [3, 3, 1] and len(cache.rows) == 4
    torch.testing.assert_close(again.hidden[0][real[1]], expected.hidden[1][real[1]])
    # the same words in another segment layout are another text
    cache.state(model, ids[:1], mask[:1], torch.zeros_like(ids[:1]))
    assert rows[-1] == 1 and len(cache.rows) == 5


def test_a_cache_over_its_limit_still_answers_and_keeps_nothing():
    model = _frozen_model()
    inputs = random_inputs(model.config, batch=2, text_len=8)
    rows = _prefix_rows(model)
    cache = PrefixCache(limit_bytes=0)
    for _ in range(2):
        state = cache.state(model, inputs["text_ids"], inputs["text_mask"])
    assert rows == [2, 2] and not cache.rows and cache.bytes == 0
    expected = model.text_state(inputs["text_ids"], inputs["text_mask"], fixed_prefix=True)
    real = inputs["text_mask"].bool()
    torch.testing.assert_close(state.hidden[real], expected.hidden[real])


def test_left_padding_is_refused():
    model = _frozen_model()
    mask = torch.tensor([[0, 1, 1]])
    with pytest.raises(ValueError, match="right-padded"):
        PrefixCache().state(model, torch.tensor([[0, 101, 102]]), mask)


def test_a_learning_or_dropping_prefix_is_not_deterministic():
    model = _frozen_model()
    assert prefix_deterministic(model)
    model.embeddings["text"].train()  # its dropout draws again
    assert not prefix_deterministic(model)
    unfrozen = ActBertForPretraining(variant_config("stack", layered=True)).actbert.eval()
    assert not prefix_deterministic(unfrozen)  # its weights learn


def test_the_objective_keeps_the_clean_texts(tmp_path):
    """In the trainer's setting (frozen prefix in eval mode) the objective's matching and
    alignment passes read the cache: a second step on the same samples runs no clean prefix."""
    from actbert.corpus import ClipGroups, read_corpus
    from actbert.pretraining.objectives import PretrainingObjective
    from actbert.pretraining.train import Collator, TrainConfig, model_for_corpus
    from actbert.tokenizer import ActBertTokenizer
    from tests.actbert.corpus_helpers import make_corpus

    corpus = read_corpus(make_corpus(tmp_path, videos=4, clips=4))
    data = ClipGroups(corpus, clips_per_sample=2, seed=0)
    tok = ActBertTokenizer(max_length=64)
    model = model_for_corpus(TrainConfig(corpus="", out="", preset="tiny"), corpus, data.sample(0))
    layers = len(model.actbert.encoder.text_only)
    freeze_text(model, layers)
    model.train()
    for module in frozen_text_modules(model, layers):
        module.eval()
    objective = PretrainingObjective(model, cls_id=tok.cls_id, sep_id=tok.sep_id)
    batch = Collator(tok, seed=0)([data[i] for i in range(len(data))])
    objective(batch)
    stored = len(objective.prefix_cache.rows)
    assert stored == len({tuple(r[m.bool()].tolist()) for r, m in
                          zip(batch.clean["text_ids"], batch.clean["text_mask"])})
    widths = []
    model.actbert.encoder.layers["text"][0].register_forward_hook(
        lambda m, i, o: widths.append(i[0].shape[1]))
    objective(batch)
    # the masked texts and the video-only pass' placeholder [CLS] [SEP]; not the clean texts
    assert sorted(widths) == [2, batch.inputs["text_ids"].shape[1]]
    assert len(objective.prefix_cache.rows) == stored
