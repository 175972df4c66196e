"""The converted PaddleVideo fixture reproduces Paddle's own outputs (tests/fixtures)."""

import json
import pickle

import numpy as np
import pytest
import torch

from actbert import ActBertForPretraining
from actbert.paddle.convert import PaddleCheckpointError, read_pdparams
from actbert.pretraining import losses

FIXTURE_HEADS = {"text": 4, "action": 4, "region": 4, "tangled": 4}
TOL = 1e-4


@pytest.fixture(scope="module")
def fixture(fixtures):
    folder = fixtures / "paddle_actbert_small"
    model = ActBertForPretraining.from_paddle(folder / "actbert_small.pdparams", heads=FIXTURE_HEADS)
    return model, np.load(folder / "outputs.npz"), json.loads((folder / "meta.json").read_text())


def run_case(model, data, case, output_attentions=False):
    t = lambda k: torch.from_numpy(data[f"{case}/in/{k}"])  # noqa: E731
    with torch.no_grad():
        return model(text_ids=t("text_ids"), text_mask=t("text_mask"),
                     token_type_ids=t("token_type_ids"), action_features=t("action_feat"),
                     action_mask=t("action_mask"), region_features=t("image_feat"),
                     region_locations=t("image_loc"), region_mask=t("image_mask"),
                     output_attentions=output_attentions)


def rel_err(ours, theirs):
    ours = ours.detach().numpy() if isinstance(ours, torch.Tensor) else np.asarray(ours)
    return float(np.abs(ours - theirs).max() / max(np.abs(theirs).max(), 1e-12))


OUTPUTS = [("text_logits", "prediction_scores_t"), ("region_logits", "prediction_scores_v"),
           ("action_logits", "prediction_scores_a"), ("match_logits", "seq_relationship_score"),
           ("match_score", "retrieval_score")]


@pytest.mark.parametrize("case", ["A", "B"])
def test_every_output_matches_paddle(fixture, case):
    model, data, _ = fixture
    out = run_case(model, data, case)
    for ours, theirs in OUTPUTS:
        assert rel_err(getattr(out, ours), data[f"{case}/out/{theirs}"]) <= TOL, ours


@pytest.mark.parametrize("case", ["A", "B"])
def test_final_hidden_states_and_poolers_match(fixture, case):
    model, data, _ = fixture
    out = run_case(model, data, case)
    inter = lambda k: data[f"{case}/inter/{k}"]  # noqa: E731
    assert rel_err(out.hidden["text"], np.broadcast_to(inter("bert.encoder.layer.3"), out.hidden["text"].shape)) <= TOL
    assert rel_err(out.hidden["region"], inter("bert.encoder.v_layer.1")) <= TOL
    assert rel_err(out.hidden["action"], inter("bert.encoder.a_layer.2")) <= TOL
    for ours, theirs in (("text", "t"), ("region", "v"), ("action", "a")):
        assert rel_err(out.pooled[ours], inter(f"bert.{theirs}_pooler")) <= TOL


def test_outputs_identical_with_attention_capture(fixture):
    model, data, _ = fixture
    plain, traced = run_case(model, data, "A"), run_case(model, data, "A", output_attentions=True)
    for name, _ in OUTPUTS:
        assert torch.equal(getattr(plain, name), getattr(traced, name))
    assert traced.attentions and not plain.attentions


def test_each_loss_term_matches_paddle_torch_semantics(fixture):
    model, data, _ = fixture
    out = run_case(model, data, "A")
    t = lambda k: torch.from_numpy(data[f"A/loss/{k}"])  # noqa: E731
    terms = {
        "masked_text_loss": losses.masked_lm_loss(out.text_logits, t("text_labels")),
        "masked_img_loss": losses.masked_region_loss(out.region_logits, t("image_target"),
                                                     t("image_label")),
        "masked_action_loss": losses.masked_action_loss(out.action_logits, t("action_label")),
        "next_sentence_loss": losses.match_loss(out.match_logits, t("next_sentence_label")),
    }
    for name, value in terms.items():
        assert rel_err(value, data[f"A/loss/{name}"]) <= TOL, name
    assert rel_err(sum(terms.values()), data["A/loss/total_loss_torch_semantics"]) <= TOL


def test_state_dict_consumed_and_parameter_count(fixture):
    model, _, meta = fixture
    paddle_params = sum(p.numel() for n, p in model.named_parameters() if not n.startswith("align."))
    assert paddle_params == meta["num_params_unique"]


def test_restricted_unpickler_refuses_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pdparams"
    path.write_bytes(pickle.dumps({"bert.embeddings.word_embeddings.weight": Evil()}))
    with pytest.raises(PaddleCheckpointError, match="refusing to load builtins.print"):
        read_pdparams(path)


def test_truncated_file_is_a_clear_error(fixtures, tmp_path):
    data = (fixtures / "paddle_actbert_small/actbert_small.pdparams").read_bytes()
    path = tmp_path / "cut.pdparams"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(PaddleCheckpointError, match="not a readable .pdparams"):
        read_pdparams(path)


def test_missing_head_counts_is_a_clear_error(fixtures):
    with pytest.raises(PaddleCheckpointError, match="not divisible by 12 heads"):
        ActBertForPretraining.from_paddle(
            fixtures / "paddle_actbert_small/actbert_small.pdparams")


@pytest.mark.slow
def test_released_shapes_convert_load_and_run(fixtures, tmp_path):
    """A random .pdparams with the released model's 425 names and shapes converts and runs."""
    spec = json.loads((fixtures / "paddle_actbert_default_shapes.json").read_text())
    shapes = spec.get("shapes", spec) if isinstance(spec, dict) else dict(spec)
    rng = np.random.default_rng(0)
    arrays = {}
    for name, info in shapes.items():
        shape = info[0] if isinstance(info[0], list) else info
        arrays[name] = (rng.standard_normal(shape, dtype=np.float32) * 0.02)
    arrays["cls.predictions.decoder_weight"] = arrays["bert.embeddings.word_embeddings.weight"]
    assert len(arrays) == 425
    path = tmp_path / "ActBERT.pdparams"
    with open(path, "wb") as handle:
        pickle.dump({**arrays, "StructuredToParameterName@@": {"a": "b"}}, handle, protocol=4)
    model = ActBertForPretraining.from_paddle(path)
    cfg = model.config
    assert (cfg.text.num_layers, cfg.text.hidden_size, cfg.region.hidden_size,
            cfg.tangled.hidden_size) == (12, 768, 1024, 1024)
    assert sum(p.numel() for n, p in model.named_parameters() if not n.startswith("align.")) == 206_012_985
    from tests.actbert.helpers import random_inputs

    with torch.no_grad():
        out = model(**random_inputs(cfg, text_len=36, actions=5, regions=36))
    assert out.text_logits.shape == (2, 36, 30522) and torch.isfinite(out.match_score).all()
