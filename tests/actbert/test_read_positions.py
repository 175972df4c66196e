"""``wanted`` positions (the masked pass computes a stream's last layer only where its losses and
poolers read): the same numbers and gradients there as the full computation."""

import pytest
import torch

from actbert import ActBertForPretraining
from actbert.layers import BertLayer, mask_to_bias
from actbert.pretraining import losses
from actbert.pretraining.objectives import PretrainingBatch, read_positions
from tests.actbert.helpers import random_inputs, variant_config


def _no_dropout(model: torch.nn.Module) -> None:
    for m in model.modules():  # dropout draws would differ between the two computations
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
        if hasattr(m, "dropout") and isinstance(m.dropout, float):
            m.dropout = 0.0


@pytest.mark.parametrize("packed", [False, True])
def test_a_layer_computes_the_wanted_positions_alone(packed):
    torch.manual_seed(0)
    layer = BertLayer(8, 2, 16, 0.0, 0.0).train()
    layer.packed = packed
    rows = []
    layer.intermediate.dense.register_forward_hook(lambda m, i, o: rows.append(i[0].reshape(-1, 8).shape[0]))
    hidden = torch.randn(2, 5, 8)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    wanted = torch.tensor([[1, 0, 1, 0, 0], [0, 0, 0, 1, 0]], dtype=torch.bool)
    full, _ = layer(hidden, mask_to_bias(mask))
    part, _ = layer(hidden, mask_to_bias(mask), wanted=wanted)
    assert rows[-1] == 3  # the output and feed-forward layers ran on the 3 wanted rows
    torch.testing.assert_close(part[wanted], full[wanted])
    assert torch.equal(part[~wanted], hidden[~wanted])  # the others keep their input
    # the gradient of what the wanted positions feed equals the full computation's
    grads = []
    for kwargs in ({}, {"wanted": wanted}):
        layer.zero_grad()
        layer(hidden, mask_to_bias(mask), **kwargs)[0][wanted].square().sum().backward()
        grads.append({n: p.grad.clone() for n, p in layer.named_parameters()})
    for name, grad in grads[0].items():
        torch.testing.assert_close(grads[1][name], grad, msg=name)


def test_the_model_reads_the_same_numbers_at_the_wanted_positions():
    """A layered tiny model (text and region end with their own layers): hidden states at the
    wanted positions, every pooled vector and the gradients of a loss reading them are the full
    forward's; the last layers' feed-forward saw the wanted rows only."""
    torch.manual_seed(0)
    model = ActBertForPretraining(variant_config("stack", layered=True))
    _no_dropout(model)
    model.train()
    inputs = random_inputs(model.config, batch=3, text_len=12, regions=8)
    text = torch.zeros(3, 12, dtype=torch.bool)
    text[:, 0], text[0, 3], text[2, 5] = True, True, True
    region = torch.zeros(3, 9, dtype=torch.bool)
    region[:, 0], region[1, 4] = True, True
    wanted = {"text": text, "region": region}
    rows = []
    model.actbert.encoder.layers["text"][-1].intermediate.dense.register_forward_hook(
        lambda m, i, o: rows.append(i[0].reshape(-1, i[0].shape[-1]).shape[0]))

    def run(**kwargs):
        model.zero_grad()
        out = model(**inputs, score=False, **kwargs)
        loss = (sum(out.pooled[s].square().sum() for s in out.pooled)
                + out.hidden["text"][text].square().sum() + out.region_logits[region].square().sum())
        loss.backward()
        return out, {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    full, full_grads = run()
    part, part_grads = run(wanted=wanted)
    assert rows == [3 * 12, int(text.sum())]
    torch.testing.assert_close(part.hidden["text"][text], full.hidden["text"][text])
    torch.testing.assert_close(part.hidden["region"][region], full.hidden["region"][region])
    torch.testing.assert_close(part.action_logits, full.action_logits)  # the action stream: all
    for s in full.pooled:
        torch.testing.assert_close(part.pooled[s], full.pooled[s])
    torch.testing.assert_close(part.match_logits, full.match_logits)
    assert part_grads.keys() == full_grads.keys()
    for name, grad in full_grads.items():
        torch.testing.assert_close(part_grads[name], grad, rtol=1e-4, atol=1e-5, msg=name)


def test_read_positions_by_hand():
    labels = torch.tensor([[-1, 7, -1, -1], [-1, -1, -1, 9]])
    region_labels = torch.tensor([[-1, 1, -1], [1, -1, -1]])  # slot 0 (global) left out
    batch = PretrainingBatch(inputs={"region_mask": torch.ones(2, 4, dtype=torch.long)},
                             text_labels=labels, action_targets=torch.zeros(2, 1),
                             region_targets=torch.zeros(2, 3, 5), region_labels=region_labels,
                             match_labels=torch.zeros(2, dtype=torch.long))
    read = read_positions(batch)
    assert read["text"].tolist() == [[True, True, False, False], [True, False, False, True]]
    assert read["region"].tolist() == [[True, False, True, False], [True, True, False, False]]
    assert set(read) == {"text", "region"} and (labels == losses.IGNORE).any()
