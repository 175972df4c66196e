"""Checkpoints: MiniLM initialisation, save/load round trips, golden tiny keys, and training."""

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from actbert import ActBertConfig, ActBertForPretraining
from actbert.checkpoint import CheckpointError, init_text_from_bert, minilm_dir
from actbert.model import build_model
from actbert.pretraining.masking import mask_features, mask_tokens
from actbert.pretraining.objectives import PretrainingBatch, pretraining_losses
from actbert.tokenizer import ActBertTokenizer
from tests.actbert.helpers import random_inputs

GOLDEN = Path(__file__).with_name("golden_tiny_keys.txt")


def test_tiny_state_dict_keys_match_golden_list():
    keys = list(ActBertForPretraining(ActBertConfig.from_name("tiny")).state_dict())
    assert keys == GOLDEN.read_text().split()


def test_mini_text_stream_equals_packaged_minilm():
    model = build_model("mini")
    reference = load_file(str(minilm_dir() / "model.safetensors"))
    state = model.state_dict()
    used = 0
    for key, tensor in reference.items():
        if key == "embeddings.position_ids" or key.startswith("pooler."):
            continue
        ours = ("actbert.embeddings.text." + key.removeprefix("embeddings.")
                if key.startswith("embeddings.")
                else "actbert.encoder.layers.text." + key.removeprefix("encoder.layer."))
        if key == "embeddings.token_type_embeddings.weight":  # 2 BERT rows -> one per clip, A/B
            rows = state[ours].shape[0]
            assert rows == model.config.text.type_vocab_size == 64
            assert torch.equal(state[ours], tensor[torch.arange(rows) % 2]), key
        else:
            assert torch.equal(state[ours], tensor), key
        used += 1
    assert used == len(reference) - 3  # every key but position_ids and the 2 pooler tensors


def test_bert_init_rejects_mismatched_sizes():
    model = ActBertForPretraining(ActBertConfig.from_name("tiny"))
    with pytest.raises(CheckpointError, match="hidden_size=384"):
        init_text_from_bert(model, minilm_dir())


def test_save_and_load_round_trip(tmp_path):
    torch.manual_seed(0)
    model = ActBertForPretraining(ActBertConfig.from_name("tiny")).eval()
    model.save_pretrained(tmp_path / "ckpt")
    loaded = ActBertForPretraining.from_pretrained(tmp_path / "ckpt")
    assert loaded.config == model.config
    inputs = random_inputs(model.config)
    with torch.no_grad():
        a, b = model(**inputs), loaded(**inputs)
    assert torch.equal(a.text_logits, b.text_logits) and torch.equal(a.match_score, b.match_score)
    assert not list(tmp_path.glob("ckpt/.*tmp*"))


def test_missing_checkpoint_file_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="missing config.json"):
        ActBertForPretraining.from_pretrained(tmp_path)


def test_encodings_are_unit_vectors_in_one_space():
    torch.manual_seed(0)
    model = ActBertForPretraining(ActBertConfig.from_name("tiny")).eval()
    inputs = random_inputs(model.config)
    with torch.no_grad():
        text = model.encode_text(inputs["text_ids"], inputs["text_mask"])
        video = model.encode_video(inputs["action_features"], inputs["action_mask"],
                                   inputs["region_features"], inputs["region_locations"],
                                   inputs["region_mask"])
    assert text.shape == video.shape == (2, model.config.embed_size)
    torch.testing.assert_close(text.norm(dim=-1), torch.ones(2))
    torch.testing.assert_close(video.norm(dim=-1), torch.ones(2))


def _masked_batch(model, tok, seed):
    g = torch.Generator().manual_seed(seed)
    cfg = model.config
    enc = tok(["cut the tomato on the board", "pour the milk into the cup",
               "stir the eggs in the pan", "spread butter on the bread"])
    inputs = random_inputs(cfg, batch=4, text_len=enc.ids.shape[1], seed=seed)
    inputs.update(text_ids=enc.ids, text_mask=enc.mask)
    clean = dict(inputs)
    ids, text_labels = mask_tokens(enc.ids, enc.mask, g, mask_id=tok.mask_id,
                                   vocab_size=tok.vocab_size, special_ids=tok.special_ids, prob=0.3)
    action, action_sel = mask_features(inputs["action_features"], inputs["action_mask"], g, prob=0.5)
    region, region_sel = mask_features(inputs["region_features"], inputs["region_mask"], g,
                                       prob=0.5, skip_first=True)
    verbs = torch.zeros(4, inputs["action_mask"].shape[1], cfg.action.num_classes)
    verbs[..., 1] = verbs[..., 2] = 0.5  # two verbs, l1-normalised
    region_targets = torch.softmax(torch.randn(4, region.shape[1] - 1, cfg.region.num_classes,
                                               generator=g), -1)
    inputs.update(text_ids=ids, action_features=action, region_features=region)
    return PretrainingBatch(
        inputs=inputs, text_labels=text_labels, action_targets=verbs,
        action_selected=(action_sel == 1), region_targets=region_targets,
        region_labels=region_sel[:, 1:], match_labels=torch.tensor([0, 0, 0, 1]), clean=clean)


def test_a_few_steps_lower_every_pretraining_loss():
    torch.manual_seed(0)
    model = build_model("mini")
    model.train()
    tok = ActBertTokenizer()
    batch = _masked_batch(model, tok, seed=0)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-4)
    first = None
    for _ in range(6):
        terms = pretraining_losses(model, batch)
        optimizer.zero_grad()
        terms["total"].backward()
        optimizer.step()
        first = first or {k: v.item() for k, v in terms.items()}
    model.eval()
    with torch.no_grad():
        last = {k: float(v) for k, v in pretraining_losses(model, batch).items()}
    assert set(first) == {"text", "action", "region", "match", "align", "total"}
    for name in first:
        assert last[name] < first[name], (name, first[name], last[name])


def test_a_shipped_delta_rebuilds_the_model_from_the_packaged_minilm(tmp_path):
    """``save_delta`` stores only what differs from MiniLM (float16); loading rebuilds the rest."""
    from actbert.checkpoint import save_delta
    from actbert.pretraining.train import freeze_text

    torch.manual_seed(0)
    model = build_model("mini", action={"feature_size": 16, "num_classes": 5},
                        region={"feature_size": 12, "num_classes": 7})
    freeze_text(model, 4)
    with torch.no_grad():  # "training" touched every trainable tensor
        for param in model.parameters():
            if param.requires_grad:
                param.add_(0.01)
    counts = save_delta(model, tmp_path / "ship")
    stored = load_file(str(tmp_path / "ship" / "model.safetensors"))
    assert counts["stored"] == len(stored) and counts["skipped"] > 0
    assert "actbert.encoder.layers.text.0.attention.self.query.weight" not in stored  # frozen: MiniLM's
    assert "actbert.encoder.layers.text.5.attention.self.query.weight" in stored
    assert all(v.dtype == torch.float16 for v in stored.values() if v.is_floating_point())
    loaded = ActBertForPretraining.from_pretrained(tmp_path / "ship")
    for key, value in model.state_dict().items():
        got = loaded.state_dict()[key]
        if key in stored:
            torch.testing.assert_close(got, value.half().float())
        else:
            assert torch.equal(got, value), key
