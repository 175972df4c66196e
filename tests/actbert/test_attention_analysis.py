"""Attention analysis against hand-computed values and the real tiny model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from actbert import attention_analysis as aa
from actbert.config import ActBertConfig
from actbert.model import ActBertForPretraining
from actbert.tangled import AttentionMap, resample_nearest
from tests.actbert.helpers import random_inputs


def amap(block, depth, query, key, rows) -> AttentionMap:
    """One map with a single head: rows (L_q, L_k) -> probs (1, 1, L_q, L_k)."""
    return AttentionMap(block, depth, query, key, torch.tensor(rows, dtype=torch.float32)[None, None])


# A hand-made stack tangled block: L_text = 2, L_action = 1, L_region = 2.
STACK = [
    amap("tangled.0", 0, "action", "text", [[0.4, 0.6]]),
    amap("tangled.0", 0, "action", "region", [[0.25, 0.75]]),
    amap("tangled.0", 0, "text", "text", [[0.3, 0.2], [0.5, 0.5]]),
    amap("tangled.0", 0, "text", "injected", [[0.5], [0.0]]),
    amap("tangled.0", 0, "action", "action", [[0.9]]),
    amap("tangled.0", 0, "action", "injected", [[0.1]]),
    amap("tangled.0", 0, "region", "region", [[0.8, 0.0], [0.0, 0.6]]),
    amap("tangled.0", 0, "region", "injected", [[0.2], [0.4]]),
]


def test_word_to_region_stack_by_hand():
    result = aa.word_to_region(STACK, "tangled.0", word=0)
    # word 0 puts 0.5 on the c_r pair of the one action slot, which is 0.25 r0 + 0.75 r1
    assert result.mass == pytest.approx(0.5)
    np.testing.assert_allclose(result.weights, [0.25, 0.75])
    assert "injected c_r" in result.method


def test_word_to_region_paddle_by_hand():
    paddle = [
        amap("tangled.0", 0, "action", "text", [[0.4, 0.6], [0.9, 0.1]]),
        amap("tangled.0", 0, "action", "region", [[1.0, 0.0, 0.0], [0.0, 0.5, 0.5]]),
        amap("tangled.0", 0, "text", "text", [[1.0, 0.0], [0.0, 1.0]]),
    ]
    result = aa.word_to_region(paddle, "tangled.0", word=1)
    # slot 0 looks at word 1 with 0.6 and at r0; slot 1 with 0.1 and at r1, r2 half each
    raw = np.array([0.6, 0.05, 0.05])
    assert result.mass == pytest.approx(raw.sum())
    np.testing.assert_allclose(result.weights, raw / raw.sum(), rtol=1e-6)
    assert "paddle" in result.method


def test_word_to_region_refuses_a_stream_layer():
    with pytest.raises(ValueError, match="not a tangled block"):
        aa.word_to_region([amap("text.0", 0, "text", "text", [[1.0]])], "text.0", 0)


def test_rollout_of_one_text_layer_is_half_attention_half_identity():
    maps = [amap("text.0", 0, "text", "text", [[0.2, 0.8], [0.6, 0.4]]),
            amap("action.0", 1, "action", "action", [[1.0]]),
            amap("region.0", 2, "region", "region", [[1.0]])]
    r = aa.rollout(maps)
    expected = np.eye(4)
    expected[:2, :2] = [[0.6, 0.4], [0.3, 0.7]]
    np.testing.assert_allclose(r, expected, atol=1e-7)


def test_rollout_of_a_stack_tangled_block_by_hand():
    r = aa.rollout(STACK)
    # joint axis: t0 t1 | a0 | r0 r1. Each row: 0.5 * mixing + 0.5 * identity.
    expected = np.array([
        [0.65, 0.10, 0.0, 0.0625, 0.1875],   # t0: text 0.3/0.2; c_r 0.5 * (0.25, 0.75)
        [0.25, 0.75, 0.0, 0.0, 0.0],         # t1: text 0.5/0.5
        [0.02, 0.03, 0.95, 0.0, 0.0],        # a0: action 0.9; c_w 0.1 * (0.4, 0.6)
        [0.04, 0.06, 0.0, 0.9, 0.0],         # r0: region 0.8; c_w 0.2 * (0.4, 0.6)
        [0.08, 0.12, 0.0, 0.0, 0.8],         # r1: region 0.6; c_w 0.4 * (0.4, 0.6)
    ])
    np.testing.assert_allclose(r, expected, atol=1e-7)
    np.testing.assert_allclose(aa.rollout_slice(r, aa.stream_lengths(STACK), "text", "region"),
                               expected[:2, 3:], atol=1e-7)


def test_nearest_matrix_matches_the_model_resampling():
    x = torch.randn(1, 3, 5)
    for length in (1, 2, 7, 11):
        ours = aa.nearest_matrix(length, 3) @ x[0].numpy()
        np.testing.assert_allclose(ours, resample_nearest(x, length)[0].numpy(), atol=1e-6)


@pytest.fixture(scope="module", params=["stack", "paddle"])
def model_maps(request):
    config = ActBertConfig.from_name("tiny", tangled={"kv_fusion": request.param})
    torch.manual_seed(0)
    model = ActBertForPretraining(config).eval()
    inputs = random_inputs(config, batch=1, text_len=7, actions=3, regions=5)
    with torch.no_grad():
        out = model(**inputs, output_attentions=True)
    return request.param, out.attentions


def test_real_model_rollout_is_row_stochastic(model_maps):
    _, maps = model_maps
    r = aa.rollout(maps)
    lengths = aa.stream_lengths(maps)
    assert r.shape == (sum(lengths.values()),) * 2
    assert (r >= -1e-7).all()
    np.testing.assert_allclose(r.sum(1), 1.0, atol=1e-5)


def test_real_model_pairs_and_summary(model_maps):
    mode, maps = model_maps
    pairs = aa.block_pairs(maps, "tangled.0")
    injected = [p for p in pairs if p[1] == "injected"]
    assert len(injected) == (3 if mode == "stack" else 0)
    blocks, mass = aa.head_summary(maps, "text", "text", "mass")
    assert mass.shape == (len(blocks), 4)
    if mode == "stack":
        _, inj = aa.head_summary(maps, "text", "injected", "mass")
        tangled = [i for i, b in enumerate(blocks) if b.startswith("tangled.")]
        # own keys and injected pairs share one softmax
        np.testing.assert_allclose(mass[tangled] + inj, 1.0, atol=1e-5)
    else:
        np.testing.assert_allclose(mass, 1.0, atol=1e-5)
    word = aa.word_to_region(maps, "tangled.1", 2, head=1)
    np.testing.assert_allclose(word.weights.sum(), 1.0, atol=1e-6)
    if mode == "stack":
        p_ti = aa.head_matrix(aa.find(maps, "tangled.1", "text", "injected"), 1)
        assert word.mass == pytest.approx(float(p_ti[2].sum()), rel=1e-5)


def test_statistics_by_hand():
    uniform = [amap("text.0", 0, "text", "text", [[0.25] * 4] * 2)]
    one_hot = [amap("text.0", 0, "text", "text", [[0, 1.0, 0, 0]] * 2)]
    assert aa.head_summary(uniform, "text", "text", "entropy")[1][0, 0] == pytest.approx(1.0)
    assert aa.head_summary(one_hot, "text", "text", "entropy")[1][0, 0] == pytest.approx(0.0, abs=1e-6)
    assert aa.head_summary(uniform, "text", "text", "max")[1][0, 0] == pytest.approx(0.25)
    with pytest.raises(ValueError, match="statistic"):
        aa.head_summary(uniform, "text", "text", "median")


def test_head_matrix_mean_and_range():
    probs = torch.tensor([[[[1.0, 0.0]], [[0.0, 1.0]]]])
    m = AttentionMap("text.0", 0, "text", "text", probs)
    np.testing.assert_allclose(aa.head_matrix(m), [[0.5, 0.5]])
    np.testing.assert_allclose(aa.head_matrix(m, 1), [[0.0, 1.0]])
    with pytest.raises(ValueError, match="out of range"):
        aa.head_matrix(m, 2)


SHIPPED_CONFIG = Path(__file__).resolve().parents[2] / "assets" / "demo" / "actbert" / "config.json"


@pytest.mark.parametrize("config", [
    pytest.param(lambda: ActBertConfig.from_name(
        "tiny", text={"num_heads": 8}, action={"num_heads": 2}, region={"num_heads": 5}),
        id="tiny-unequal-heads"),
    pytest.param(lambda: ActBertConfig.from_json(SHIPPED_CONFIG.read_text()), id="shipped-model"),
])
def test_summary_of_every_pair_with_unequal_head_counts(config):
    """Streams and tangled blocks with different head counts (the shipped model: 12 text heads,
    4 action and region heads, 6 tangled heads): every pair and statistic gives one row per block,
    the block's own heads filled and the missing ones NaN."""
    config = config()
    torch.manual_seed(0)
    model = ActBertForPretraining(config).eval()
    with torch.no_grad():
        maps = model(**random_inputs(config, batch=1, text_len=6, actions=2, regions=4),
                     output_attentions=True).attentions
    pairs = {(m.query, m.key) for m in maps}
    assert ("text", "text") in pairs and ("region", "region") in pairs
    for query, key in pairs:
        for statistic in aa.STATISTICS:
            names, grid = aa.head_summary(maps, query, key, statistic)
            widest = max(aa.num_heads(maps, b) for b in names)
            assert grid.shape == (len(names), widest)
            for row, block in zip(grid, names):
                heads = aa.num_heads(maps, block)
                assert np.isfinite(row[:heads]).all() and np.isnan(row[heads:]).all()
                if statistic == "max":
                    found = aa.find(maps, block, query, key)
                    expected = [aa.head_matrix(found, h).max(-1).mean() for h in range(heads)]
                    np.testing.assert_allclose(row[:heads], expected, rtol=1e-5)
