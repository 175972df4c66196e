"""Reading the released PaddleVideo ActBERT checkpoint (``.pdparams``) without Paddle.

A ``.pdparams`` file is a pickle of ``{name: numpy array}`` plus a metadata entry. It is read with a
restricted unpickler (``actbert.safe_pickle``) that can only rebuild numpy arrays and plain
containers, so a malicious file cannot run code, and within a memory budget proportional to the
file's length, so a small file cannot demand gigabytes (declared array shapes, ``_codecs.encode``
chains are refused with one line; so is a model sized by a zero-width array, before it is built).
Names are mapped through an explicit table (PaddleVideo numbers its streams 1 = region, 2 = text,
3 = action); every Paddle key must be consumed and every shape must match.
Paddle stores Linear weights as [in, out]: every 2-D weight is transposed except the embeddings.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import torch

from .. import safe_pickle
from ..config import STREAMS, ActBertConfig

log = logging.getLogger(__name__)

# Released model's head counts (cannot be read from shapes).
RELEASED_HEADS = {"text": 12, "action": 12, "region": 8, "tangled": 8}

_PADDLE_STREAM = {"1": "region", "2": "text", "3": "action"}
_PADDLE_PREFIX = {"v": "region", "t": "text", "a": "action"}
# Embedding matrices are stored [rows, width] in both frameworks: never transposed.
_NOT_TRANSPOSED = {
    "bert.embeddings.word_embeddings.weight",
    "bert.embeddings.position_embeddings.weight",
    "bert.embeddings.token_type_embeddings.weight",
    "cls.predictions.decoder_weight",
}


class PaddleCheckpointError(ValueError):
    """The file is not a usable PaddleVideo ActBERT checkpoint."""


def parse_heads(text: str | None) -> dict[str, int]:
    """``"text=12,action=12,region=8,tangled=8"`` -> head counts (the CLIs' ``--heads``)."""
    heads = {}
    for item in (text or "").split(","):
        if not item:
            continue
        name, _, value = item.partition("=")
        if name not in RELEASED_HEADS or not value.isdigit():
            raise ValueError(f"--heads expects e.g. text=12,action=12,region=8,tangled=8, got {item!r}")
        heads[name] = int(value)
    return heads


def read_pdparams(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of a ``.pdparams`` file, with an optional leading ``backbone.`` stripped."""
    return safe_pickle.load_pdparams_arrays(Path(path).read_bytes(), str(path), PaddleCheckpointError)


def paddle_to_ours(name: str) -> str | None:
    """Our state-dict name for a Paddle name; None for the tied decoder weight."""
    if name == "cls.predictions.decoder_weight":
        return None
    rules = [
        (r"bert\.embeddings\.(.*)", r"actbert.embeddings.text.\1"),
        (r"bert\.v_embeddings\.image_embeddings\.(.*)", r"actbert.embeddings.region.feature.\1"),
        (r"bert\.v_embeddings\.image_location_embeddings\.(.*)", r"actbert.embeddings.region.location.\1"),
        (r"bert\.v_embeddings\.LayerNorm\.(.*)", r"actbert.embeddings.region.LayerNorm.\1"),
        (r"bert\.a_embeddings\.action_embeddings\.(.*)", r"actbert.embeddings.action.feature.\1"),
        (r"bert\.a_embeddings\.LayerNorm\.(.*)", r"actbert.embeddings.action.LayerNorm.\1"),
        (r"bert\.encoder\.layer\.(.*)", r"actbert.encoder.layers.text.\1"),
        (r"bert\.encoder\.v_layer\.(.*)", r"actbert.encoder.layers.region.\1"),
        (r"bert\.encoder\.a_layer\.(.*)", r"actbert.encoder.layers.action.\1"),
        (r"bert\.([tva])_pooler\.(.*)", lambda m: f"actbert.pooler.{_PADDLE_PREFIX[m[1]]}.{m[2]}"),
        (r"cls\.predictions\.decoder_bias", r"heads.text.bias"),
        (r"cls\.predictions\.transform\.(.*)", r"heads.text.transform.\1"),
        (r"cls\.seq_relationship\.(.*)", r"heads.match.\1"),
        (r"cls\.imagePredictions\.(.*)", r"heads.region.\1"),
        (r"cls\.actionPredictions\.(.*)", r"heads.action.\1"),
        # Tangled blocks.
        (r"bert\.encoder\.c_layer\.(\d+)\.ent_attention\.(query|key|value)([123])\.(.*)",
         lambda m: f"actbert.encoder.tangled.{m[1]}.attention.{m[2]}.{_PADDLE_STREAM[m[3]]}.{m[4]}"),
        # key_at/value_at act on ctx_at = action over TEXT (c_w); key_av/value_av on c_r.
        (r"bert\.encoder\.c_layer\.(\d+)\.ent_attention\.(key|value)_a([tv])\.(.*)",
         lambda m: f"actbert.encoder.tangled.{m[1]}.attention.context_{m[2]}."
                   f"{'text' if m[3] == 't' else 'region'}.{m[4]}"),
        (r"bert\.encoder\.c_layer\.(\d+)\.ent_output\.(dense|LayerNorm)([123])\.(.*)",
         lambda m: f"actbert.encoder.tangled.{m[1]}.output.{_PADDLE_STREAM[m[3]]}.{m[2]}.{m[4]}"),
        (r"bert\.encoder\.c_layer\.(\d+)\.([tva])_intermediate\.(.*)",
         lambda m: f"actbert.encoder.tangled.{m[1]}.ffn.{_PADDLE_PREFIX[m[2]]}.intermediate.{m[3]}"),
        (r"bert\.encoder\.c_layer\.(\d+)\.([tva])_output\.(.*)",
         lambda m: f"actbert.encoder.tangled.{m[1]}.ffn.{_PADDLE_PREFIX[m[2]]}.output.{m[3]}"),
    ]
    for pattern, replacement in rules:
        match = re.fullmatch(pattern, name)
        if match:
            return replacement(match) if callable(replacement) else match.expand(replacement)
    raise PaddleCheckpointError(f"unexpected key in the Paddle checkpoint: {name}")


def _count(arrays: dict[str, np.ndarray], pattern: str) -> int:
    return len({m[1] for k in arrays if (m := re.match(pattern, k))})


def infer_config(
    arrays: dict[str, np.ndarray],
    heads: dict[str, int] | None = None,
    layers_before: dict[str, tuple[int, ...]] | None = None,
) -> ActBertConfig:
    """The ``paddle`` preset resized to the checkpoint's shapes.

    Head counts cannot be read from shapes: they default to the released model's
    (``RELEASED_HEADS``). The tangled schedule defaults to PaddleVideo's: block k after text layer
    ``L_text - n + k`` and after action/region layer ``k``.
    """
    heads = {**RELEASED_HEADS, **(heads or {})}

    def shape(key: str) -> tuple[int, ...]:
        if key not in arrays:
            raise PaddleCheckpointError(f"not an ActBERT checkpoint: it has no {key}")
        return arrays[key].shape

    layers = {
        "text": _count(arrays, r"bert\.encoder\.layer\.(\d+)\."),
        "region": _count(arrays, r"bert\.encoder\.v_layer\.(\d+)\."),
        "action": _count(arrays, r"bert\.encoder\.a_layer\.(\d+)\."),
    }
    blocks = _count(arrays, r"bert\.encoder\.c_layer\.(\d+)\.")
    if layers_before is None:
        layers_before = {
            "text": tuple(layers["text"] - blocks + k for k in range(blocks)),
            "action": tuple(range(blocks)),
            "region": tuple(range(blocks)),
        }
    prefix = {"text": "t", "action": "a", "region": "v"}
    streams = {}
    for stream in STREAMS:
        inter = shape(f"bert.encoder.c_layer.0.{prefix[stream]}_intermediate.dense.weight")
        streams[stream] = {"hidden_size": inter[0], "intermediate_size": inter[1],
                           "num_layers": layers[stream], "num_heads": heads[stream]}
    vocab, _ = shape("bert.embeddings.word_embeddings.weight")
    streams["text"].update(num_classes=vocab,
                           max_positions=shape("bert.embeddings.position_embeddings.weight")[0],
                           type_vocab_size=shape("bert.embeddings.token_type_embeddings.weight")[0])
    streams["region"].update(feature_size=shape("bert.v_embeddings.image_embeddings.weight")[0],
                             num_classes=shape("cls.imagePredictions.decoder.weight")[1])
    streams["action"].update(feature_size=shape("bert.a_embeddings.action_embeddings.weight")[0],
                             num_classes=shape("cls.actionPredictions.decoder.weight")[1])
    width = shape("bert.encoder.c_layer.0.ent_attention.key_at.weight")[0]
    for stream, cfg in {**streams, "tangled": {"hidden_size": width}}.items():
        size = cfg["hidden_size"]
        if size % heads[stream]:
            raise PaddleCheckpointError(
                f"{stream} width {size} is not divisible by {heads[stream]} heads: pass "
                f"heads={{'{stream}': N}} (e.g. --heads {stream}=N) with the checkpoint's head count")
    try:
        return ActBertConfig.from_name(
            "paddle",
            text=streams["text"], action=streams["action"], region=streams["region"],
            tangled={"hidden_size": width, "num_heads": heads["tangled"],
                     "layers_before": layers_before},
        )
    except ValueError as exc:
        raise PaddleCheckpointError(f"checkpoint shapes give an invalid configuration: {exc}") from exc


def convert_state_dict(arrays: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """Paddle arrays -> our state dict (transposed where Paddle stores [in, out])."""
    state = {}
    for name, value in arrays.items():
        ours = paddle_to_ours(name)
        if ours is None:
            continue
        tensor = torch.from_numpy(np.ascontiguousarray(value))
        if tensor.ndim == 2 and name not in _NOT_TRANSPOSED:
            tensor = tensor.t().contiguous()
        state[ours] = tensor
    tied = arrays.get("cls.predictions.decoder_weight")
    words = arrays["bert.embeddings.word_embeddings.weight"]
    if tied is not None and not np.array_equal(tied, words):
        raise PaddleCheckpointError("cls.predictions.decoder_weight differs from the word embeddings "
                                    "(the MLM decoder is tied in ActBERT)")
    return state


# Our parameters that the Paddle checkpoint does not have (the retrieval alignment head).
NOT_IN_PADDLE = ("align.text.weight", "align.text.bias", "align.video.weight", "align.video.bias",
                 "align.logit_scale")


def load_paddle(cls, path: str | Path, heads: dict[str, int] | None = None,
                layers_before: dict[str, tuple[int, ...]] | None = None):
    """Build ``cls`` (ActBertForPretraining) from a ``.pdparams`` file; every key consumed."""
    arrays = read_pdparams(path)
    config = infer_config(arrays, heads, layers_before)
    with torch.device("meta"):  # sizes first: a model the file cannot fill is refused unbuilt
        needed = sum(p.numel() for n, p in cls(config).named_parameters() if n not in NOT_IN_PADDLE)
    held = sum(a.size for a in arrays.values())
    if needed > held:
        raise PaddleCheckpointError(f"{path}: its shapes declare a model of {needed:,} parameters but "
                                    f"it holds {held:,} values")
    try:
        model = cls(config)
    except (MemoryError, RuntimeError) as exc:
        raise PaddleCheckpointError(f"{path}: cannot build its model ({type(exc).__name__}: "
                                    f"{str(exc).splitlines()[0][:200]})") from None
    state = convert_state_dict(arrays)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state) - set(NOT_IN_PADDLE))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise PaddleCheckpointError(f"key mismatch: missing {missing[:10]}, unexpected {unexpected[:10]}")
    for name, tensor in state.items():
        if tuple(tensor.shape) != tuple(expected[name].shape):
            raise PaddleCheckpointError(
                f"{name}: checkpoint shape {tuple(tensor.shape)} != model {tuple(expected[name].shape)}")
    model.load_state_dict(state, strict=False)
    log.info("loaded %d Paddle arrays from %s into the %s configuration", len(arrays), path,
             config.name)
    return model.eval()
