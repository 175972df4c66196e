"""Packed layers (``BertLayer.packed``, ``TangledBlock.packed``: the trainer's CPU speed-up) give
the real positions the numbers and gradients of the padded computation."""

import pytest
import torch

from actbert import ActBertForPretraining
from actbert.layers import BertLayer, mask_to_bias, positionwise, real_positions
from actbert.tangled import TangledBlock
from tests.actbert.helpers import random_inputs, variant_config


def _pack(model: torch.nn.Module, packed: bool) -> int:
    layers = [m for m in model.modules() if isinstance(m, (BertLayer, TangledBlock))]
    for m in layers:
        m.packed = packed
    return len(layers)


def test_real_positions_by_hand():
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 0]])
    hidden = torch.zeros(2, 4, 3)
    assert real_positions(hidden, mask_to_bias(mask)).tolist() == [0, 1, 4, 5, 6]
    # 5 of 8 real: packed; every position real (or nearly): not worth it
    assert real_positions(hidden, mask_to_bias(torch.ones(2, 4))) is None
    assert real_positions(hidden, mask_to_bias(mask), most=0.5) is None
    # a bias shared by the batch is not packed
    assert real_positions(hidden, mask_to_bias(mask[:1])) is None


def test_positionwise_computes_kept_rows_and_keeps_the_rest():
    x = torch.arange(12.0).view(2, 3, 2)
    calls = []

    def double(rows):
        calls.append(rows.shape[0])
        return rows * 2

    out = positionwise(double, torch.tensor([0, 4]), x)
    assert calls == [2]
    expected = x.clone()
    expected.view(-1, 2)[[0, 4]] *= 2
    assert torch.equal(out, expected)
    assert torch.equal(positionwise(double, None, x), x * 2)


@pytest.mark.parametrize("kv_fusion", ["stack", "paddle"])
def test_packed_model_equals_padded_at_real_positions_with_gradients(kv_fusion):
    torch.manual_seed(0)
    model = ActBertForPretraining(variant_config(kv_fusion, layered=True))
    for m in model.modules():  # dropout draws would differ between the two layouts
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
        if hasattr(m, "dropout") and isinstance(m.dropout, float):
            m.dropout = 0.0
    model.train()
    inputs = random_inputs(model.config, batch=3, text_len=12, regions=8)
    inputs["text_mask"][0, 4:] = 0  # well under 7/8 real: every stream packs
    inputs["text_mask"][2, 7:] = 0
    inputs["region_mask"][0, 3:] = 0
    inputs["region_mask"][2, 5:] = 0
    real = {"text": inputs["text_mask"].bool(), "action": inputs["action_mask"].bool(),
            "region": inputs["region_mask"].bool()}

    def run(packed: bool):
        assert _pack(model, packed) > 0
        model.zero_grad()
        out = model.actbert(**inputs)
        loss = sum(out.pooled[s].square().sum() + out.hidden[s][real[s]].square().sum() for s in real)
        loss.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        return out, grads

    rows = []
    model.actbert.encoder.layers["text"][0].intermediate.dense.register_forward_hook(
        lambda m, i, o: rows.append(i[0].reshape(-1, i[0].shape[-1]).shape[0]))
    padded, padded_grads = run(False)
    packed, packed_grads = run(True)
    assert rows == [3 * 12, int(real["text"].sum())]  # the packed run skipped the padding
    for s in real:
        torch.testing.assert_close(packed.hidden[s][real[s]], padded.hidden[s][real[s]])
        torch.testing.assert_close(packed.pooled[s], padded.pooled[s])
    assert packed_grads.keys() == padded_grads.keys()
    for name, grad in padded_grads.items():
        torch.testing.assert_close(packed_grads[name], grad, rtol=1e-4, atol=1e-5, msg=name)


def test_packed_layer_skips_padding_in_its_linear_layers():
    """The point of packing: the position-wise layers see only the real rows."""
    layer = BertLayer(8, 2, 16, 0.0, 0.0)
    layer.packed = True
    rows = []
    layer.intermediate.dense.register_forward_hook(lambda m, i, o: rows.append(i[0].shape[0]))
    mask = torch.tensor([[1, 1, 0, 0, 0], [1, 1, 1, 0, 0]])
    layer(torch.randn(2, 5, 8), mask_to_bias(mask))
    layer.packed = False
    layer(torch.randn(2, 5, 8), mask_to_bias(mask))
    assert rows == [5, 2]  # 5 real rows packed; (2, 5, 8) unpacked: a batch of 2 sequences


def test_the_trainer_packs_every_layer_on_cpu(tmp_path):
    from pathlib import Path

    from actbert.corpus import ClipGroups, read_corpus
    from actbert.pretraining.train import TrainConfig, _prepare_model
    from tests.actbert.corpus_helpers import make_corpus

    corpus = make_corpus(tmp_path / "corpus")
    config = TrainConfig(corpus=str(corpus), out=str(tmp_path / "run"), preset="tiny",
                         clips_per_sample=2, batch_size=4, steps=1, progress=False)
    data = read_corpus(corpus)
    model = _prepare_model(config, data, ClipGroups(data, clips_per_sample=2, seed=0),
                           Path(tmp_path / "none"), torch.device("cpu"))
    layers = [m for m in model.modules() if isinstance(m, (BertLayer, TangledBlock))]
    assert layers and all(m.packed for m in layers)
    # a model built elsewhere (search, evaluation, the app) computes every position, as before
    assert not any(m.packed for m in ActBertForPretraining(model.config).modules()
                   if isinstance(m, (BertLayer, TangledBlock)))
