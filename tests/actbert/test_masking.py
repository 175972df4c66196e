"""Masking statistics under a fixed seed, against the paper's rates."""

import torch

from actbert.pretraining.masking import mask_features, mask_tokens

SPECIAL = (0, 100, 101, 102, 103)


def test_token_masking_rates_and_rules():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, 30000, (512, 64), generator=g)
    ids[:, 0], ids[:, 40] = 101, 102
    mask = torch.ones_like(ids)
    mask[:, 41:] = 0
    ids[:, 41:] = 0
    out, labels = mask_tokens(ids, mask, torch.Generator().manual_seed(1), mask_id=103,
                              vocab_size=30522, special_ids=SPECIAL)
    selected = labels != -1
    candidates = 512 * 39
    assert abs(selected.sum().item() / candidates - 0.15) < 0.01
    assert not selected[:, [0, 40]].any() and not selected[:, 41:].any()
    assert torch.equal(labels[selected], ids[selected])
    assert torch.equal(out[~selected], ids[~selected])
    n = selected.sum().item()
    to_mask = (out[selected] == 103).sum().item() / n
    kept = (out[selected] == ids[selected]).sum().item() / n
    assert abs(to_mask - 0.8) < 0.02 and abs(kept - 0.1) < 0.02
    assert abs(1 - to_mask - kept - 0.1) < 0.02  # random replacements


def test_token_masking_is_deterministic_per_generator():
    ids = torch.randint(1000, 30000, (8, 20))
    mask = torch.ones_like(ids)
    a = mask_tokens(ids, mask, torch.Generator().manual_seed(5), mask_id=103, vocab_size=30522,
                    special_ids=SPECIAL)
    b = mask_tokens(ids, mask, torch.Generator().manual_seed(5), mask_id=103, vocab_size=30522,
                    special_ids=SPECIAL)
    c = mask_tokens(ids, mask, torch.Generator().manual_seed(6), mask_id=103, vocab_size=30522,
                    special_ids=SPECIAL)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[1], c[1])


def test_feature_masking_rates_and_global_token():
    features = torch.rand(1024, 37, 8) + 0.1
    mask = torch.ones(1024, 37, dtype=torch.long)
    mask[:, 30:] = 0
    out, labels = mask_features(features, mask, torch.Generator().manual_seed(2), skip_first=True)
    selected = labels == 1
    assert not selected[:, 0].any() and not selected[:, 30:].any()
    assert abs(selected.sum().item() / (1024 * 29) - 0.15) < 0.01
    zeroed = (out.abs().sum(-1) == 0)
    assert not (zeroed & ~selected).any()
    assert abs(zeroed.sum().item() / selected.sum().item() - 0.9) < 0.02
    assert torch.equal(out[~zeroed], features[~zeroed])
