"""Attribution and faithfulness against independent references: hand-built removals, the clip
contract's own builder, a one-pair-at-a-time loop of forward passes, the integrated-gradients
completeness identity, and a PLANTED model whose scores read exactly one word and one region."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from actbert import faithfulness as fa
from actbert.attribution import Attribution, PairText, attribute, match_occlusions, match_scores
from actbert.data import (REGION_TOKEN, SEP_TOKEN, ClipInputs, Element, clip_inputs, collate,
                          drop_regions, mask_words, pair_elements, remove_actions, remove_clips,
                          remove_elements, remove_regions)
from actbert.tangled import AttentionMap
from actbert.tokenizer import ActBertTokenizer
from tests.actbert.test_data import make_features
from tests.app.tiny_library import tiny_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")
QUERY = "whisk the eggs"


@pytest.fixture(scope="module")
def tokenizer():
    return ActBertTokenizer()


def video(samples):
    batch = collate(samples)
    batch.pop("region_classes")
    return batch


# ---- (c) removal, by hand and against the clip contract --------------------------------------


def hand_inputs() -> ClipInputs:
    """Two clips: global, r(1), r(2), [SEP], r(3); features 1-d valued 10, 20, -, 30."""
    f = torch.tensor([[20.0], [10.0], [20.0], [0.0], [30.0]])
    return ClipInputs(
        action_features=torch.tensor([[1.0, 2.0], [3.0, 4.0]]),
        region_features=f, region_locations=torch.arange(25.0).reshape(5, 5),
        region_positions=torch.tensor([0, 1, 2, 2, 3]), region_segments=torch.tensor([0, 0, 0, 0, 1]),
        region_classes=torch.tensor([[1.0], [2.0], [0.0], [3.0]]),
        region_tokens=torch.tensor([REGION_TOKEN, REGION_TOKEN, REGION_TOKEN, SEP_TOKEN, REGION_TOKEN]),
        clips=(4, 5), region_rows=np.array([-1, 7, 8, -1, 9]))


def test_mask_words_by_hand():
    ids = torch.tensor([101, 5, 6, 7, 102])
    assert mask_words(ids, [1, 3], 103).tolist() == [101, 103, 6, 103, 102]
    assert ids.tolist() == [101, 5, 6, 7, 102]  # pure: the input is untouched


def test_pair_elements_by_hand():
    ids = torch.tensor([101, 5, 6, 102, 0])
    got = pair_elements(ids, hand_inputs(), special_ids=(0, 101, 102, 103))
    assert got == [Element("word", 1), Element("word", 2), Element("region", 1), Element("region", 2),
                   Element("region", 4), Element("action", 0), Element("action", 1),
                   Element("clip", 0), Element("clip", 1)]


def test_remove_regions_by_hand():
    out = remove_regions(hand_inputs(), [2])
    # slot 2 gone; the global token is the mean of the regions left (10 and 30)
    assert out.region_features[:, 0].tolist() == [20.0, 10.0, 0.0, 30.0]
    assert out.region_locations[:, 0].tolist() == [0.0, 5.0, 15.0, 20.0]
    assert out.region_positions.tolist() == [0, 1, 2, 3]  # others keep theirs
    assert out.region_segments.tolist() == [0, 0, 0, 1]
    assert out.region_classes[:, 0].tolist() == [1.0, 0.0, 3.0]
    assert out.region_rows.tolist() == [-1, 7, -1, 9]
    with pytest.raises(ValueError, match="global"):
        remove_regions(hand_inputs(), [0])


def test_remove_actions_and_words_by_hand():
    text, out = remove_elements(torch.tensor([101, 5, 102]), hand_inputs(),
                                [Element("action", 1), Element("word", 1)], mask_id=103)
    assert text.tolist() == [101, 103, 102]
    assert out.action_features.tolist() == [[1.0, 2.0], [0.0, 0.0]]
    assert remove_actions(hand_inputs(), [0]).action_features.tolist() == [[0.0, 0.0], [3.0, 4.0]]


def test_remove_clip_by_hand():
    out = remove_clips(hand_inputs(), [0])
    assert out.action_features.tolist() == [[3.0, 4.0]] and out.clips == (5,)
    assert out.region_features[:, 0].tolist() == [30.0, 30.0]
    assert out.region_positions.tolist() == [0, 1] and out.region_segments.tolist() == [0, 0]
    assert out.region_tokens.tolist() == [REGION_TOKEN, REGION_TOKEN]


@pytest.mark.parametrize("gone", [[0], [1], [2], [0, 2]])
def test_remove_clips_equals_the_contract_on_the_clips_left(gone):
    features = make_features(clips=3, regions_per_clip=4)
    group = clip_inputs(features, [0, 1, 2], max_regions=36)
    expected = clip_inputs(features, [c for c in [0, 1, 2] if c not in gone], max_regions=36)
    got = remove_clips(group, gone)
    for name in ("action_features", "region_features", "region_locations", "region_positions",
                 "region_segments", "region_classes", "region_tokens"):
        torch.testing.assert_close(getattr(got, name), getattr(expected, name), msg=name)
    assert got.clips == expected.clips
    np.testing.assert_array_equal(got.region_rows, expected.region_rows)


def test_removing_every_region_is_the_no_region_ablation():
    sample = clip_inputs(make_features(), [1], max_regions=36)
    slots = [e.index for e in pair_elements(torch.tensor([101, 102]), sample, (101, 102))
             if e.kind == "region"]
    got = video([remove_regions(sample, slots)])
    expected = drop_regions(video([sample]))
    for name, value in expected.items():
        torch.testing.assert_close(got[name], value, msg=name)


@pytest.mark.parametrize("clips", [[1], [0, 1]])
def test_remove_all_regions_is_the_no_region_ablation_and_keeps_the_seps(clips):
    """What a model pretrained without regions is fed: the no-region ablation's input for one
    clip; in a group, the global token and the [SEP] slots between clips stay."""
    from actbert.data import remove_all_regions

    sample = clip_inputs(make_features(), clips, max_regions=36)
    got = remove_all_regions(sample)
    tokens = sample.region_tokens.tolist()
    assert got.region_tokens.tolist() == [REGION_TOKEN] + [t for t in tokens[1:] if t == SEP_TOKEN]
    if len(clips) == 1:
        for name, value in drop_regions(video([sample])).items():
            torch.testing.assert_close(video([got])[name], value, msg=name)


def test_both_effects_join_by_hand():
    """Two models' attributions of one pair: joined on kind, index and label; an element one
    model lacks (the regions of a model fed none; a slot holding another box) is None there."""
    from actbert.attribution import both_effects

    def made(rows):
        return Attribution(tuple(Element(k, i) for k, i, _, _ in rows), tuple(label for _, _, label, _ in rows),
                           0.5, 0.1, np.array([v for *_, v in rows]), np.zeros(len(rows)))

    first = made([("word", 1, "word 'whisk'", -0.3), ("region", 1, "region bowl@0s", -0.2),
                  ("region", 2, "region egg@1s", 0.1), ("action", 0, "action", -0.05)])
    second = made([("word", 1, "word 'whisk'", -0.1), ("region", 2, "region whisk@1s", -0.4),
                   ("action", 0, "action", 0.02)])
    got = [(r.element.kind, r.element.index, r.label, r.first, r.second)
           for r in both_effects(first, second)]
    assert got == [("word", 1, "word 'whisk'", -0.3, -0.1), ("region", 1, "region bowl@0s", -0.2, None),
                   ("region", 2, "region egg@1s", 0.1, None), ("action", 0, "action", -0.05, 0.02),
                   ("region", 2, "region whisk@1s", None, -0.4)]
    assert both_effects(first, second)[1].to_json() == {
        "kind": "region", "index": 1, "label": "region bowl@0s", "first": -0.2, "second": None}


def test_a_removed_region_is_a_masked_slot():
    """Removing a slot = the model sees the pair with that slot's mask 0 (and the global token
    the mean of the others): the same match score through the real model."""
    model = tiny_model()
    sample = clip_inputs(make_features(), [1], max_regions=36)
    ids = torch.tensor([[101, 2000, 2001, 102]])
    removed = video([remove_regions(sample, [2])])
    masked = video([sample])
    masked["region_mask"][0, 2] = 0
    masked["region_features"][0, 0] = sample.region_features[[1, 3, 4]].mean(0)
    with torch.no_grad():
        a = model(text_ids=ids, text_mask=torch.ones_like(ids), heads=("match",), **removed)
        b = model(text_ids=ids, text_mask=torch.ones_like(ids), heads=("match",), **masked)
    torch.testing.assert_close(a.match_logits, b.match_logits, atol=1e-5, rtol=1e-5)


# ---- (b) the batched occlusion is a loop of single forwards ----------------------------------


@pytest.mark.parametrize("kv_fusion,clips", [("stack", [1]), ("paddle", [1]), ("stack", [0, 1, 2])])
def test_batched_occlusion_equals_one_forward_per_removal(tokenizer, kv_fusion, clips):
    model = tiny_model(kv_fusion=kv_fusion, seed=3)
    text = PairText.encode(tokenizer, QUERY)
    sample = clip_inputs(make_features(seed=1), clips, max_regions=36)
    got = attribute(model, text, sample, gradients=False)
    assert len(got.elements) == len(pair_elements(text.ids, sample, text.special_ids))

    def one(ids, inputs):
        with torch.no_grad():
            batch = video([inputs])
            match = model(text_ids=ids[None], text_mask=text.mask[None], heads=("match",), **batch)
            t = model.encode_text(ids[None], text.mask[None])
            v = model.encode_video(**batch, cls_id=text.cls_id, sep_id=text.sep_id)
        return float(match.match_score[0]), float((t * v).sum())

    full = one(text.ids, sample)
    assert got.match == pytest.approx(full[0], abs=1e-6)
    assert got.similarity == pytest.approx(full[1], abs=1e-6)
    for i, element in enumerate(got.elements):
        ids, inputs = remove_elements(text.ids, sample, [element], text.mask_id)
        match, cosine = one(ids, inputs)
        assert got.match_effect[i] == pytest.approx(match - full[0], abs=1e-6), element
        assert got.similarity_effect[i] == pytest.approx(cosine - full[1], abs=1e-6), element


@pytest.mark.parametrize("kv_fusion", ["stack", "paddle"])
def test_one_text_against_many_clips_equals_one_forward_per_removal(tokenizer, kv_fusion):
    """A results page's occlusions (shared text states, clips of different region counts, a
    group, rows split over several forwards) are each pair's removals scored one at a time."""
    model = tiny_model(kv_fusion=kv_fusion, seed=4)
    text = PairText.encode(tokenizer, QUERY)
    clips = [clip_inputs(make_features(regions_per_clip=4, seed=1), [1], 36),
             clip_inputs(make_features(regions_per_clip=1, seed=2), [0], 36),
             clip_inputs(make_features(regions_per_clip=6, seed=3), [0, 2], 36)]
    got = match_occlusions(model, text, clips, batch_size=7)
    assert len(got) == len(clips)

    def one(ids, inputs) -> float:
        with torch.no_grad():
            return float(model(text_ids=ids[None], text_mask=text.mask[None], heads=("match",),
                               **video([inputs])).match_score[0])

    for sample, result in zip(clips, got):
        assert list(result.elements) == pair_elements(text.ids, sample, text.special_ids)
        full = one(text.ids, sample)
        assert result.match == pytest.approx(full, abs=1e-5)
        for element, effect in zip(result.elements, result.match_effect):
            removed = one(*remove_elements(text.ids, sample, [element], text.mask_id))
            assert effect == pytest.approx(removed - full, abs=1e-5), element


def test_integrated_gradients_are_complete_on_the_real_model(tokenizer):
    """Sum of the attributions = score(full) - score(baseline), the baseline computed directly:
    every word [MASK], region and action features zero (attributions are negated)."""
    model = tiny_model(seed=5)
    with torch.no_grad():  # a random tiny head barely moves; a sharper one tests the match path
        model.heads["match"].weight.mul_(200.0)
    text = PairText.encode(tokenizer, QUERY)
    sample = clip_inputs(make_features(seed=2), [1], max_regions=36)
    got = attribute(model, text, sample, steps=512)
    words = [e.index for e in got.elements if e.kind == "word"]
    batch = video([sample])
    batch["region_features"] = torch.zeros_like(batch["region_features"])
    batch["action_features"] = torch.zeros_like(batch["action_features"])
    ids = mask_words(text.ids, words, text.mask_id)[None]
    with torch.no_grad():
        base_match = float(model(text_ids=ids, text_mask=text.mask[None], heads=("match",),
                                 **batch).match_score[0])
        base_cos = float((model.encode_text(ids, text.mask[None]) * model.encode_video(
            **batch, cls_id=text.cls_id, sep_id=text.sep_id)).sum())
    for total, full, base in ((got.match_gradient.sum(), got.match, base_match),
                              (got.similarity_gradient.sum(), got.similarity, base_cos)):
        assert abs(full - base) > 1e-4
        assert -total == pytest.approx(full - base, rel=0.02)


# ---- (a) the planted model -------------------------------------------------------------------


class Planted(nn.Module):
    """Scores that read exactly one word and one region, by hand: w = how often ``word_id``
    occurs (column 0 of the word embeddings is 1 there, 0 for every other token), r = the sum of
    column 0 of the real region features (0 except in the planted region). Match logit
    4 (w + r) - 4; text vector (w, 1) and video vector (r, 1), normalised."""

    def __init__(self, word_id: int) -> None:
        super().__init__()
        torch.manual_seed(0)
        words = nn.Embedding(30522, 6)
        with torch.no_grad():
            words.weight[:, 0] = 0.0
            words.weight[word_id, 0] = 1.0
        self.actbert = SimpleNamespace(embeddings={"text": SimpleNamespace(word_embeddings=words)})
        self.words = words

    def _w(self, ids, mask):
        return (self.words(ids)[..., 0] * mask).sum(1)

    @staticmethod
    def _r(region_features, region_mask):
        return (region_features[:, 1:, 0] * region_mask[:, 1:]).sum(1)

    def forward(self, text_ids, text_mask, region_features, region_mask, heads=None, **_):
        logit = 4 * (self._w(text_ids, text_mask) + self._r(region_features, region_mask)) - 4
        logits = torch.stack([logit, -logit], -1)
        return SimpleNamespace(match_logits=logits, match_score=torch.softmax(logits, -1)[:, 0])

    def encode_text(self, ids, mask):
        return nn.functional.normalize(torch.stack([self._w(ids, mask), torch.ones(len(ids))], -1), dim=-1)

    def encode_video(self, region_features, region_mask, **_):
        r = self._r(region_features, region_mask)
        return nn.functional.normalize(torch.stack([r, torch.ones_like(r)], -1), dim=-1)


@pytest.fixture(scope="module")
def planted(tokenizer):
    features = make_features(regions_per_clip=4, seed=4)
    features.region_features[:, 0] = 0.0
    row = int(np.flatnonzero(features.region_clip == 1)[2])
    features.region_features[row, 0] = 1.0
    sample = clip_inputs(features, [1], max_regions=36)
    slot = int(np.flatnonzero(sample.region_rows == row)[0])
    text = PairText.encode(tokenizer, QUERY)
    word = text.tokens.index("eggs")
    model = Planted(tokenizer.vocab["eggs"])
    return SimpleNamespace(model=model, text=text, sample=sample, slot=slot, word=word,
                           attribution=attribute(model, text, sample, steps=64))


def test_planted_word_and_region_come_first_by_both_methods(planted):
    got = planted.attribution
    wanted = {Element("word", planted.word), Element("region", planted.slot)}
    s8 = 1 / (1 + math.exp(-8))
    assert got.match == pytest.approx(s8) and got.similarity == pytest.approx(1.0)
    for signal in ("match", "similarity"):
        for method in ("occlusion", "gradient"):
            values = got.values(signal, method)
            first = {got.elements[i] for i in np.argsort(values)[:2]}
            assert first == wanted, (signal, method)
            others = [v for e, v in zip(got.elements, values) if e not in wanted]
            assert np.allclose(others, 0.0, atol=1e-6), (signal, method)
    # by hand: removing either one takes the logit from 4 to 0, the cosine from 1 to 1/sqrt(2)
    i = got.elements.index(Element("word", planted.word))
    assert got.match_effect[i] == pytest.approx(0.5 - s8)
    assert got.similarity_effect[i] == pytest.approx(1 / math.sqrt(2) - 1)
    assert got.why(2).startswith(("word 'eggs' -0.50, region r", "region r"))
    assert Attribution.from_json(got.to_json()).why() == got.why()


def planted_maps(text_len: int, region_len: int, word: int, slot: int) -> list[AttentionMap]:
    """One tangled-like block, 2 heads: head 0 looks only at the planted word and region, head 1
    is uniform."""
    def probs(n_q, n_k, target):
        focused = torch.zeros(n_q, n_k)
        focused[:, target] = 1.0
        return torch.stack([focused, torch.full((n_q, n_k), 1.0 / n_k)])[None]
    return [AttentionMap("tangled.0", 0, "text", "text", probs(text_len, text_len, word)),
            AttentionMap("tangled.0", 0, "action", "region", probs(1, region_len, slot))]


def test_planted_head_is_faithful_and_a_uniform_head_is_not(planted):
    got = planted.attribution
    maps = planted_maps(len(planted.text.tokens), planted.sample.region_features.shape[0],
                        planted.word, planted.slot)
    grid = fa.faithfulness(maps, got.elements, -got.match_effect, rollout=False).grid
    assert grid[0, 0] > 0.95
    assert abs(grid[0, 1]) < 0.05
    result = fa.Faithfulness(("tangled.0",), grid, 0.0)
    assert result.unfaithful(0.2) == [("tangled.0", 1)]


def test_planted_deletion_and_insertion_curves_by_hand(planted):
    got = planted.attribution
    drop = -got.match_effect
    curves = fa.curves(planted.model, planted.text, planted.sample, list(got.elements),
                       {"occlusion": drop, "reversed": -drop})
    n = sum(e.kind in ("word", "region", "action") for e in got.elements)
    s = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    # most important first: the word or the region (equal drops), then the other, then nothing
    np.testing.assert_allclose(curves["occlusion"].deletion, [s(8), 0.5] + [s(-8)] * (n - 1), atol=1e-6)
    np.testing.assert_allclose(curves["occlusion"].insertion, [s(-8), 0.5] + [s(8)] * (n - 1), atol=1e-6)
    assert curves["occlusion"].deletion_area < curves["reversed"].deletion_area
    assert curves["occlusion"].insertion_area > curves["reversed"].insertion_area


# ---- faithfulness pieces by hand ---------------------------------------------------------------


def test_spearman_by_hand():
    assert fa.spearman([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)
    assert fa.spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    # ties averaged: ranks (1.5, 1.5, 3) against (1, 2, 3) -> 1.5 / sqrt(1.5 * 2)
    assert fa.spearman([1, 1, 2], [1, 2, 3]) == pytest.approx(1.5 / math.sqrt(3.0))
    assert fa.spearman([1, 1, 1], [1, 2, 3]) == 0.0
    assert math.isnan(fa.spearman([1, np.nan], [1, 2]))


def test_head_attention_by_hand():
    maps = [AttentionMap("tangled.0", 0, "text", "text", torch.tensor([[[[0.5, 0.5], [1.0, 0.0]]]])),
            AttentionMap("tangled.0", 0, "text", "injected", torch.tensor([[[[0.25], [0.75]]]]))]
    elements = [Element("word", 0), Element("word", 1), Element("action", 0), Element("region", 1)]
    got = fa.head_attention(maps, "tangled.0", elements)
    # word 0 receives (0.5 + 1.0) / 2 queries x 2 keys; the injected pair stands for action slot 0
    np.testing.assert_allclose(got[0, :3], [1.5, 0.5, 0.5])
    assert math.isnan(got[0, 3])


def test_real_model_faithfulness_grid_shape(tokenizer):
    model = tiny_model()
    text = PairText.encode(tokenizer, QUERY)
    sample = clip_inputs(make_features(), [1], max_regions=36)
    got = attribute(model, text, sample, gradients=False)
    maps = fa.pair_attentions(model, text, sample)
    result = fa.faithfulness(maps, got.elements, -got.match_effect, model.config.match_input)
    assert result.blocks[0] == "text.0" and "tangled.0" in result.blocks
    assert result.grid.shape == (len(result.blocks), 4)
    finite = result.grid[np.isfinite(result.grid)]
    assert finite.size and (np.abs(finite) <= 1 + 1e-9).all()
    assert np.isnan(result.grid[result.blocks.index("action.0")]).all()  # one action slot
    scores = match_scores(model, text.ids[None], text.mask[None], [sample])
    assert scores[0] == pytest.approx(got.match, abs=1e-6)
