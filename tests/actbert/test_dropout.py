"""The CPU dropout (``actbert/dropout.py``): the keep rate of every 16-bit slice, the scale, the
identity outside training, the gradient, and the model's attention dropout against a naive one."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from actbert.dropout import SLICES, Dropout, dropout, keep_mask, keep_threshold
from actbert.layers import attention, attention_probs


def test_keep_threshold_rounds_the_keep_probability_to_a_65536th():
    assert keep_threshold(0.1) == 58982  # 0.9 * 65536 = 58982.4
    assert keep_threshold(0.0) == SLICES and keep_threshold(1.0) == 0
    assert abs(keep_threshold(0.37) / SLICES - 0.63) <= 0.5 / SLICES
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        keep_threshold(1.5)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_each_slice_of_a_draw_keeps_at_the_rate(p):
    """Every one of the four 16-bit slices of a 64-bit draw keeps an element with probability
    kept / 65536: a slice that was not uniform (e.g. a sign bit never set) would show here."""
    n = 4 * 250_000
    mask = keep_mask((n,), keep_threshold(p), generator=torch.Generator().manual_seed(3))
    rate = keep_threshold(p) / SLICES
    bound = 5 * math.sqrt(rate * (1 - rate) / (n // 4))  # 5 sigma of one slice's mean
    for s in range(4):
        assert abs(mask[s::4].float().mean().item() - rate) < bound
    # neighbouring elements (slices of one draw) are independent: P(both kept) = rate^2
    both = (mask[0::4] & mask[1::4]).float().mean().item()
    assert abs(both - rate ** 2) < 5 * math.sqrt(rate ** 2 * (1 - rate ** 2) / (n // 4))


def test_kept_elements_are_scaled_so_the_expectation_is_the_input():
    torch.manual_seed(0)
    x = torch.rand(400, 500) + 0.5
    out = dropout(x, 0.1)
    kept = out != 0
    assert torch.allclose(out[kept], x[kept] * SLICES / keep_threshold(0.1))
    # the mean of many draws approaches x (the scale is the inverse of the real keep rate)
    draws = torch.stack([dropout(torch.ones(200_000), 0.3) for _ in range(10)])
    assert abs(draws.mean().item() - 1.0) < 5 * math.sqrt(0.3 / 0.7 / draws.numel())


def test_identity_outside_training_and_at_zero_and_all_dropped_at_one():
    x = torch.randn(7, 9)
    assert dropout(x, 0.1, training=False) is x and dropout(x, 0.0) is x
    assert torch.equal(dropout(x, 1.0), torch.zeros_like(x))
    module = Dropout(0.25).eval()
    assert module(x) is x and module.p == 0.25


def test_the_gradient_is_the_mask_times_the_scale():
    torch.manual_seed(1)
    x = torch.randn(64, 32, requires_grad=True)
    out = Dropout(0.2).train()(x)
    out.sum().backward()
    expected = (out != 0).float() * SLICES / keep_threshold(0.2)
    assert torch.equal(x.grad, expected)


def test_the_same_seed_gives_the_same_mask():
    torch.manual_seed(5)
    a = dropout(torch.ones(1000), 0.1)
    torch.manual_seed(5)
    assert torch.equal(a, dropout(torch.ones(1000), 0.1))


def test_attention_dropout_on_cpu_is_a_naive_attention_with_that_mask():
    """With dropout the kernel's math path is spelled out; redrawn with the same seed, the naive
    softmax(q k^T / sqrt(d) + bias), masked and scaled, times v gives the same context, and the
    returned probabilities are the undropped ones."""
    g = torch.Generator().manual_seed(2)
    q, k, v = (torch.randn(3, 4, 6, 8, generator=g) for _ in range(3))
    bias = torch.zeros(3, 1, 1, 6)
    bias[1, ..., 4:] = -10000.0
    torch.manual_seed(9)
    context, probs = attention(q, k, v, bias, dropout=0.1, need_probs=True)
    naive = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(8) + bias, -1)
    torch.manual_seed(9)
    mask = keep_mask(naive.shape, keep_threshold(0.1))
    expected = (naive * mask * SLICES / keep_threshold(0.1)) @ v
    assert torch.allclose(context, expected, atol=1e-5)
    assert torch.allclose(probs, attention_probs(q, k, bias))
    # without dropout: the fused kernel, the undropped numbers
    assert torch.allclose(attention(q, k, v, bias)[0], naive @ v, atol=1e-5)
    assert not torch.allclose(context, naive @ v, atol=1e-3)


def test_other_devices_keep_torch_dropout(monkeypatch):
    calls = []
    monkeypatch.setattr(F, "dropout", lambda x, p, training: calls.append((x.device.type, p)) or x)
    dropout(torch.ones(3, device="meta"), 0.3)
    dropout(torch.ones(3), 0.3)  # a CPU tensor: keep_mask's draw, not F.dropout
    assert calls == [("meta", 0.3)]
