"""Properties of the paper-faithful tangled transformer (kv_fusion="stack") on the tiny preset."""

import math

import pytest
import torch

from actbert import ActBertConfig, ActBertForPretraining
from actbert.encoder import schedule
from actbert.layers import attention, mask_to_bias
from tests.actbert.helpers import random_inputs, variant_config


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return ActBertForPretraining(ActBertConfig.from_name("tiny")).eval()


def forward(model, inputs, **kw):
    with torch.no_grad():
        return model(**inputs, **kw)


def test_schedule_follows_layers_before():
    cfg = ActBertConfig.from_name("paddle")
    order = schedule(cfg)
    text = [i for s, i in order if s == "text"]
    assert text == list(range(12))
    assert order.index(("tangled", 0)) == order.index(("text", 9)) + 1
    assert order.index(("region", 0)) > order.index(("tangled", 0))
    assert order.index(("region", 0)) < order.index(("tangled", 1))
    assert order[-1] in {("text", 11), ("action", 2), ("region", 1)}


def test_padding_never_changes_real_positions(model):
    inputs = random_inputs(model.config, batch=2, pad=False)
    base = forward(model, inputs)
    g = torch.Generator().manual_seed(1)
    padded = {}
    for key, value in inputs.items():
        extra = 3
        if key.endswith("mask"):
            pad = torch.zeros(value.shape[0], extra, dtype=value.dtype)
        elif key == "text_ids":
            pad = torch.randint(1000, 2000, (value.shape[0], extra), generator=g)
        else:  # garbage features / locations in padded slots
            pad = torch.rand(value.shape[0], extra, value.shape[-1], generator=g) * 10
        padded[key] = torch.cat([value, pad], 1)
    out = forward(model, padded)
    for name, length in (("text_logits", 9), ("action_logits", 4), ("region_logits", 7)):
        torch.testing.assert_close(getattr(out, name)[:, :length], getattr(base, name),
                                   atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.match_logits, base.match_logits, atol=1e-5, rtol=1e-5)


def _zero_injection(model, source):
    for proj in (model.actbert.encoder.tangled[k].attention for k in range(2)):
        for module in (proj.context_key[source], proj.context_value[source]):
            torch.nn.init.zeros_(module.weight)
            torch.nn.init.zeros_(module.bias)


def test_action_reaches_text_and_region_only_through_injected_pairs():
    torch.manual_seed(0)
    model = ActBertForPretraining(ActBertConfig.from_name("tiny")).eval()
    inputs = random_inputs(model.config)
    changed = dict(inputs, action_features=inputs["action_features"] + 1.0)
    a, b = forward(model, inputs), forward(model, changed)
    assert not torch.allclose(a.hidden["text"], b.hidden["text"])
    assert not torch.allclose(a.hidden["region"], b.hidden["region"])
    # Cut c_r's pair (into text) and c_w's pair (into action and region): action no longer reaches
    # text or region.
    _zero_injection(model, "region")
    _zero_injection(model, "text")
    a, b = forward(model, inputs), forward(model, changed)
    torch.testing.assert_close(a.hidden["text"], b.hidden["text"], atol=1e-6, rtol=0)
    torch.testing.assert_close(a.hidden["region"], b.hidden["region"], atol=1e-6, rtol=0)
    assert not torch.allclose(a.hidden["action"], b.hidden["action"])


def test_text_reaches_region_through_c_w():
    torch.manual_seed(0)
    model = ActBertForPretraining(ActBertConfig.from_name("tiny")).eval()
    inputs = random_inputs(model.config)
    changed = dict(inputs, text_ids=inputs["text_ids"].roll(1, 1))
    assert not torch.allclose(forward(model, inputs).hidden["region"],
                              forward(model, changed).hidden["region"])
    _zero_injection(model, "text")  # c_w's pair is the only path from words to regions
    torch.testing.assert_close(forward(model, inputs).hidden["region"],
                               forward(model, changed).hidden["region"], atol=1e-6, rtol=0)


def test_attention_maps_are_labelled_normalised_and_include_injected(model):
    inputs = random_inputs(model.config)
    out = forward(model, inputs, output_attentions=True)
    cfg = model.config
    lengths = {"text": 9, "action": 4, "region": 7}
    labels = {(m.block, m.query, m.key) for m in out.attentions}
    for k in range(cfg.tangled.num_blocks):
        block = f"tangled.{k}"
        expected = {(block, "action", "text"), (block, "action", "region")}
        expected |= {(block, s, s) for s in lengths} | {(block, s, "injected") for s in lengths}
        assert expected <= labels
        maps = {(m.query, m.key): m for m in out.attentions if m.block == block}
        for stream, length in lengths.items():
            own, injected = maps[(stream, stream)].probs, maps[(stream, "injected")].probs
            assert own.shape == (2, cfg.tangled.num_heads, length, length)
            assert injected.shape == (2, cfg.tangled.num_heads, length, lengths["action"])
            total = own.sum(-1) + injected.sum(-1)
            torch.testing.assert_close(total, torch.ones_like(total))
            # Padded action slot (batch 1, last) gets no weight as an injected key.
            assert injected[1, ..., -1].abs().max() < 1e-6
        assert maps[("text", "injected")].injected_from == "c_r"
        assert maps[("region", "injected")].injected_from == "c_w"
    layer_maps = [m for m in out.attentions if m.block == "text.0"]
    assert len(layer_maps) == 1 and layer_maps[0].probs.shape == (2, cfg.text.num_heads, 9, 9)
    total_layers = sum(cfg.stream(s).num_layers for s in lengths)
    assert len({m.block for m in out.attentions}) == total_layers + cfg.tangled.num_blocks


def test_outputs_identical_with_and_without_attention(model):
    inputs = random_inputs(model.config)
    a, b = forward(model, inputs), forward(model, inputs, output_attentions=True)
    for name in ("text_logits", "action_logits", "region_logits", "match_logits", "match_score"):
        assert torch.equal(getattr(a, name), getattr(b, name))


@torch.no_grad()
def naive_attention(q, k, v, mask):
    """Loops over batch, head and query position; mask (B, L_k) with 1 = real."""
    batch, heads, lq, d = q.shape
    out = torch.zeros_like(q)
    for b in range(batch):
        for h in range(heads):
            for i in range(lq):
                scores = [float(q[b, h, i] @ k[b, h, j]) / math.sqrt(d) + (0 if mask[b, j] else -10000)
                          for j in range(k.shape[2])]
                weights = torch.softmax(torch.tensor(scores, dtype=torch.float64), 0)
                out[b, h, i] = (weights[:, None] * v[b, h].double()).sum(0).float()
    return out


def test_fast_kernel_matches_naive_attention():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 5 if n == "q" else 7, 8, generator=g) for n in "qkv")
    mask = torch.ones(2, 7, dtype=torch.long)
    mask[1, 4:] = 0
    fast, probs = attention(q, k, v, mask_to_bias(mask), need_probs=True)
    torch.testing.assert_close(fast, naive_attention(q, k, v, mask), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(probs @ v, fast, atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_tangled_block_matches_naive_stacked_attention(model):
    """Re-derive the first tangled block's text, action and region contexts by hand."""
    inputs = random_inputs(model.config)
    block = model.actbert.encoder.tangled[0]
    att = block.attention
    g = torch.Generator().manual_seed(3)
    hidden = {s: torch.randn(2, n, model.config.stream(s).hidden_size, generator=g)
              for s, n in (("text", 9), ("action", 4), ("region", 7))}
    masks = {"text": inputs["text_mask"], "action": inputs["action_mask"],
             "region": inputs["region_mask"]}
    heads = model.config.tangled.num_heads

    def split(x):
        return x.view(x.shape[0], x.shape[1], heads, -1).transpose(1, 2)

    def merge(x):
        return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], -1)

    q = {s: split(att.query[s](h)) for s, h in hidden.items()}
    k = {s: split(att.key[s](h)) for s, h in hidden.items()}
    v = {s: split(att.value[s](h)) for s, h in hidden.items()}
    # Eq. 1 and 2: two action query projections, W_q^1 over words and W_q^2 over regions, apart
    # from the action stream's own query.
    q1 = split(att.context_query["text"](hidden["action"]))
    q2 = split(att.context_query["region"](hidden["action"]))
    assert not torch.allclose(q1, q["action"]) and not torch.allclose(q1, q2)
    c_w = merge(naive_attention(q1, k["text"], v["text"], masks["text"]))
    c_r = merge(naive_attention(q2, k["region"], v["region"], masks["region"]))
    pair = {"text": c_r, "action": c_w, "region": c_w}
    source = {"text": "region", "action": "text", "region": "text"}
    expected = {}
    for s in hidden:
        keys = torch.cat([k[s], split(att.context_key[source[s]](pair[s]))], 2)
        values = torch.cat([v[s], split(att.context_value[source[s]](pair[s]))], 2)
        mask = torch.cat([masks[s], masks["action"]], 1)
        expected[s] = merge(naive_attention(q[s], keys, values, mask))
    contexts, _ = att(hidden, {s: mask_to_bias(m) for s, m in masks.items()})
    for s in hidden:
        torch.testing.assert_close(contexts[s], expected[s], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kv_fusion", ["stack", "paddle"])
def test_match_from_a_shared_text_state_equals_the_full_forward(kv_fusion):
    """The text-only layers run once per query and are shared by N candidate videos."""
    torch.manual_seed(0)
    base = ActBertConfig.from_name("tiny").to_dict()
    cfg = ActBertConfig.from_dict({**base, "tangled": {**base["tangled"], "kv_fusion": kv_fusion}})
    model = ActBertForPretraining(cfg).eval()
    assert model.actbert.encoder.text_only  # the shared part is not empty
    inputs = random_inputs(cfg, batch=3, pad=True)
    video = {k: v for k, v in inputs.items() if not k.startswith("text")}
    for row in range(3):
        text = {"text_ids": inputs["text_ids"][row:row + 1], "text_mask": inputs["text_mask"][row:row + 1]}
        with torch.no_grad():
            want = model(**text, **video, heads=("match",))
            got = model.match(model.text_state(**text), **video)
        torch.testing.assert_close(got.match_score, want.match_score, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(got.pooled["action"], want.pooled["action"], rtol=1e-5, atol=1e-6)


def _unequal_inputs(cfg, batch=4):
    """Random inputs whose rows have different real region (and text, action) counts."""
    inputs = random_inputs(cfg, batch=batch, regions=8, pad=True)
    inputs["region_mask"][2, -5:] = 0
    inputs["region_mask"][3, -1:] = 0
    return inputs


VARIANTS = [("stack", False), ("paddle", False), ("stack", True), ("paddle", True)]


@pytest.mark.parametrize("kv_fusion,layered", VARIANTS)
def test_pooled_forward_is_position_0_of_the_full_forward(kv_fusion, layered):
    """``Encoder.forward(pooled=...)`` computes each stream's last layer at position 0 alone (keys
    and values from every position): the same numbers as the full forward there, with padding."""
    torch.manual_seed(0)
    cfg = variant_config(kv_fusion, layered)
    model = ActBertForPretraining(cfg).eval()
    assert bool(model.actbert.encoder.video_only) == layered
    inputs = _unequal_inputs(cfg)
    with torch.no_grad():
        full = model.actbert(**inputs)
        text = model.actbert.text_state(inputs["text_ids"], inputs["text_mask"])
        video = {k: v for k, v in inputs.items() if not k.startswith("text")}
        pooled = model.actbert.forward_text_state(text, pooled=("text", "action", "region"), **video)
        text_only = model.actbert.forward_text_state(text, pooled=("text",), **video)
    for s in ("text", "action", "region"):
        assert pooled.hidden[s].shape == (4, 1, cfg.stream(s).hidden_size)
        torch.testing.assert_close(pooled.hidden[s], full.hidden[s][:, :1], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(pooled.pooled[s], full.pooled[s], atol=1e-5, rtol=1e-5)
    assert set(text_only.hidden) == set(text_only.pooled) == {"text"}
    torch.testing.assert_close(text_only.pooled["text"], full.pooled["text"], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("dropout", [False, True])
def test_first_only_layer_equals_the_full_layer_at_position_0(dropout):
    """BertLayer(first_only=True): position 0 from unprojected keys and values (no dropout) or
    from the projected ones (training with attention dropout), probabilities included."""
    from actbert.layers import BertLayer

    torch.manual_seed(0)
    layer = BertLayer(32, 4, 64, dropout=0.0, attn_dropout=0.0)
    g = torch.Generator().manual_seed(1)
    hidden = torch.randn(3, 7, 32, generator=g)
    mask = torch.ones(3, 7, dtype=torch.long)
    mask[1, 4:] = 0
    mask[2, 2:] = 0
    hidden[2, 2:] = 1e4  # padded slots hold anything
    if dropout:  # the projected path, taken when attention dropout is active
        layer.train()
        layer.attention.self.dropout = 1e-9
    with torch.no_grad():
        full, probs = layer(hidden, mask_to_bias(mask), need_probs=True)
        first, first_probs = layer(hidden, mask_to_bias(mask), need_probs=True, first_only=True)
    assert first.shape == (3, 1, 32) and first_probs.shape == (3, 4, 1, 7)
    torch.testing.assert_close(first, full[:, :1], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(first_probs, probs[:, :, :1], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("kv_fusion,layered", VARIANTS)
def test_match_from_cached_video_states_equals_the_full_forward(kv_fusion, layered):
    """Clips' video states computed once, cut to their real slots (``unbatch``) and batched again
    in any order and company (``VideoState.batch``, padded to the batch's longest): ``match`` on
    them gives the plain forward's scores and pooled outputs."""
    from actbert.states import VideoState

    torch.manual_seed(0)
    cfg = variant_config(kv_fusion, layered)
    model = ActBertForPretraining(cfg).eval()
    with torch.no_grad():  # a sharp head, so that scores differ between clips
        for weight in model.heads["match"].parameters():
            weight.mul_(300.0)
    inputs = _unequal_inputs(cfg)
    video = {k: v for k, v in inputs.items() if not k.startswith("text")}
    with torch.no_grad():
        states = model.video_state(**video).unbatch()
        assert [s.hidden["region"].shape[1] for s in states] == inputs["region_mask"].sum(1).tolist()
        for row in range(2):
            text = {"text_ids": inputs["text_ids"][row:row + 1], "text_mask": inputs["text_mask"][row:row + 1]}
            want = model(**text, **video, heads=("match",))
            state = model.text_state(**text)
            for order in ([3, 1, 0, 2], [2], [2, 0]):
                got = model.match(state, VideoState.batch([states[i] for i in order]))
                torch.testing.assert_close(got.match_score, want.match_score[order], rtol=1e-5, atol=1e-6)
                for s in ("text", "action", "region"):
                    torch.testing.assert_close(got.pooled[s], want.pooled[s][order], rtol=1e-5, atol=1e-6)
                    assert got.hidden[s].shape == (len(order), 1, cfg.stream(s).hidden_size)
        assert len(set(want.match_score.tolist())) > 1
        with pytest.raises(TypeError):
            model.match(state, VideoState.batch(states), **video)


@pytest.mark.parametrize("kv_fusion,layered", VARIANTS)
def test_encode_text_from_a_text_state_equals_the_full_forward(kv_fusion, layered):
    """encode_text (eval) runs the text-only layers once (``text_state``, shared with the rerank)
    and then only what the pooled text needs: the full forward's text embedding."""
    torch.manual_seed(0)
    cfg = variant_config(kv_fusion, layered)
    model = ActBertForPretraining(cfg).eval()
    inputs = _unequal_inputs(cfg)
    with torch.no_grad():
        out = model.actbert(text_ids=inputs["text_ids"], text_mask=inputs["text_mask"],
                            **model._placeholder_video(4, torch.device("cpu")))
        want = model.align.embed_text(out.pooled["text"])
        torch.testing.assert_close(model.encode_text(inputs["text_ids"], inputs["text_mask"]), want,
                                   atol=1e-6, rtol=1e-5)
        state = model.text_state(inputs["text_ids"][:1], inputs["text_mask"][:1])
        torch.testing.assert_close(model.encode_text_state(state), want[:1], atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(model.encode_text_state(state, model.placeholder_state()), want[:1],
                                   atol=1e-6, rtol=1e-5)
