"""ActBERT: embeddings, the tangled encoder, poolers and heads.

Masks are 1 for real elements and are turned into additive attention biases once, here.
Region slot 0 is the global region token (``embeddings.add_global_region``); action slot 0 and
text slot 0 ([CLS]) are what the poolers read.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from .config import STREAMS, ActBertConfig
from .embeddings import GLOBAL_REGION_LOCATION, TextEmbeddings, VisualEmbeddings
from .encoder import Encoder
from .heads import AlignmentHead, ClassifierHead, Pooler, TiedMaskedLMHead
from .layers import mask_to_bias
from .states import TextState, VideoState
from .tangled import AttentionMap

PRETRAINING_HEADS = ("text", "action", "region", "match")


@dataclass(frozen=True)
class EncoderOutput:
    """hidden[s] (B, L_s, D_s); pooled[s] (B, D_tangled); attentions in schedule order."""

    hidden: dict[str, torch.Tensor]
    pooled: dict[str, torch.Tensor]
    attentions: tuple[AttentionMap, ...] = ()


@dataclass(frozen=True)
class ActBertOutput:
    """Logits of the four pretraining heads and the matching probability.

    text_logits (B, L_text, vocab), action_logits (B, L_action, verbs), region_logits
    (B, L_region, region classes), match_logits (B, 2) with index 0 = matched, match_score (B,) =
    softmax(match_logits)[:, 0] (with ``config.match_alignment_weight`` w > 0: sigmoid of the
    logit margin + w * alignment_cosine), alignment_cosine (B,): the cosine of the pair's
    text-only and video-only embeddings where the score reads it (else None), attentions: every
    map when ``output_attentions=True``.
    """

    text_logits: torch.Tensor | None
    action_logits: torch.Tensor | None
    region_logits: torch.Tensor | None
    match_logits: torch.Tensor
    match_score: torch.Tensor | None
    attentions: tuple[AttentionMap, ...] = ()
    alignment_cosine: torch.Tensor | None = None
    hidden: dict[str, torch.Tensor] = field(default_factory=dict)
    pooled: dict[str, torch.Tensor] = field(default_factory=dict)


def _init_weights(module: nn.Module, std: float) -> None:
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, std=std)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def _broadcast_text(text: dict[str, torch.Tensor | None], batch: int) -> dict:
    """One caption against N videos: expand the text inputs to batch N."""
    return {k: (v.expand(batch, *v.shape[1:]) if v is not None and v.shape[0] == 1 else v)
            for k, v in text.items()}


def _expand(x: torch.Tensor, batch: int) -> torch.Tensor:
    """A batch of 1 broadcast to ``batch`` rows (a view); other batches as they are."""
    return x.expand(batch, *x.shape[1:]) if x.shape[0] == 1 and batch != 1 else x


class ActBertModel(nn.Module):
    """The three-stream encoder with poolers, without pretraining heads."""

    def __init__(self, config: ActBertConfig) -> None:
        super().__init__()
        self.config = config
        self.embeddings = nn.ModuleDict({
            "text": TextEmbeddings(config.text),
            "action": VisualEmbeddings(config.action),
            "region": VisualEmbeddings(config.region),
        })
        self.encoder = Encoder(config)
        self.pooler = nn.ModuleDict({
            s: Pooler(config.stream(s).hidden_size, config.tangled.hidden_size) for s in STREAMS
        })

    def forward(
        self,
        text_ids: torch.Tensor,
        text_mask: torch.Tensor,
        action_features: torch.Tensor,
        action_mask: torch.Tensor,
        region_features: torch.Tensor,
        region_locations: torch.Tensor,
        region_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        output_attentions: bool = False,
        action_positions: torch.Tensor | None = None,
        action_segments: torch.Tensor | None = None,
        region_positions: torch.Tensor | None = None,
        region_segments: torch.Tensor | None = None,
        region_tokens: torch.Tensor | None = None,
        wanted: dict[str, torch.Tensor] | None = None,
    ) -> EncoderOutput:
        """text_ids (B, L_text) int; action_features (B, L_action, F_action); region_features
        (B, L_region, F_region) with the global token in slot 0; region_locations (B, L_region, 5);
        masks (B, L) with 1 = real. A text batch of 1 is broadcast against a video batch of N.
        ``wanted[s]`` (B, L_s) bool: only those positions of stream s are read (``Encoder``)."""
        batch = action_features.shape[0]
        text = _broadcast_text(
            {"ids": text_ids, "mask": text_mask, "types": token_type_ids}, batch)
        dtype = self.embeddings["action"].feature.weight.dtype
        hidden, bias = self._video(action_features, action_mask, region_features, region_locations,
                                   region_mask, action_positions, action_segments, region_positions,
                                   region_segments, region_tokens)
        hidden["text"] = self.embeddings["text"](text["ids"], text["types"])
        bias["text"] = mask_to_bias(text["mask"], dtype)
        hidden, maps = self.encoder(hidden, bias, output_attentions, wanted=wanted)
        pooled = {s: self.pooler[s](hidden[s]) for s in STREAMS}
        return EncoderOutput(hidden, pooled, tuple(maps))

    def _video(self, action_features, action_mask, region_features, region_locations, region_mask,
               action_positions=None, action_segments=None, region_positions=None,
               region_segments=None, region_tokens=None) -> tuple[dict, dict]:
        """The action and region embeddings and attention biases."""
        dtype = self.embeddings["action"].feature.weight.dtype
        hidden = {
            "action": self.embeddings["action"](
                action_features.to(dtype), positions=action_positions, segments=action_segments),
            "region": self.embeddings["region"](
                region_features.to(dtype), region_locations.to(dtype), region_positions,
                region_segments, region_tokens),
        }
        return hidden, {"action": mask_to_bias(action_mask, dtype),
                        "region": mask_to_bias(region_mask, dtype)}

    def _first_projections(self, stream: str, hidden: torch.Tensor) -> dict[str, torch.Tensor]:
        """The first tangled block's projections of a stream entering it (none without blocks)."""
        if not len(self.encoder.tangled):
            return {}
        return self.encoder.tangled[0].attention.project(stream, hidden)

    def text_state(self, text_ids: torch.Tensor, text_mask: torch.Tensor,
                   token_type_ids: torch.Tensor | None = None, fixed_prefix: bool = False) -> TextState:
        """The text through the layers that see only the text (``Encoder.text_only``).
        ``fixed_prefix``: those layers (and the embeddings) are frozen, so they run without
        recording gradients (pretraining shares one such state between its matching and
        alignment passes); the first tangled block's projections of them still learn."""
        dtype = self.embeddings["action"].feature.weight.dtype
        with torch.set_grad_enabled(torch.is_grad_enabled() and not fixed_prefix):
            hidden = self.embeddings["text"](text_ids, token_type_ids)
            bias = mask_to_bias(text_mask, dtype)
            for _, index in self.encoder.text_only:
                hidden, _ = self.encoder.layers["text"][index](hidden, bias)
        return TextState(hidden, bias, self._first_projections("text", hidden))

    def _text_prefix(self) -> list[nn.Module]:
        """What the text passes before the first tangled block: its embeddings and text-only layers."""
        return [self.embeddings["text"], *(self.encoder.layers["text"][i] for _, i in self.encoder.text_only)]

    def text_prefix_frozen(self) -> bool:
        """Whether nothing before the first tangled block of the text stream learns."""
        return not any(p.requires_grad for m in self._text_prefix() for p in m.parameters())

    def shares_text_prefix(self, other: "ActBertModel") -> bool:
        """Whether ``other`` turns any text into the same ``text_state`` hidden and bias: the same
        text-only schedule, dtype and every weight and buffer of the embeddings and text-only
        layers equal (two models pretrained from one BERT with those layers frozen)."""
        if self.encoder.text_only != other.encoder.text_only:
            return False
        mine = [m.state_dict() for m in self._text_prefix()]
        theirs = [m.state_dict() for m in other._text_prefix()]
        return all(a.keys() == b.keys() and all(
            a[k].dtype == b[k].dtype and a[k].shape == b[k].shape and torch.equal(a[k], b[k]) for k in a)
            for a, b in zip(mine, theirs))

    def adopt_text_state(self, text: TextState) -> TextState:
        """A ``text_state`` made by a model that ``shares_text_prefix`` with this one, given this
        model's own projections of it (its first tangled block's): the state this model's
        ``text_state`` makes of the same text, without running the text-only layers again."""
        return TextState(text.hidden, text.bias, self._first_projections("text", text.hidden))

    def video_state(self, action_features, action_mask, region_features, region_locations,
                    region_mask, action_positions=None, action_segments=None, region_positions=None,
                    region_segments=None, region_tokens=None) -> VideoState:
        """The video inputs (as ``forward``) through what sees only the video
        (``Encoder.video_only``): ``forward_text_state(text, video=...)`` continues from it."""
        hidden, bias = self._video(action_features, action_mask, region_features, region_locations,
                                   region_mask, action_positions, action_segments, region_positions,
                                   region_segments, region_tokens)
        for kind, index in self.encoder.video_only:
            hidden[kind], _ = self.encoder.layers[kind][index](hidden[kind], bias[kind])
        return VideoState.of(hidden, bias, {s: self._first_projections(s, h) for s, h in hidden.items()})

    def forward_text_state(self, text: TextState, video: VideoState | None = None,
                           pooled: tuple[str, ...] | None = None, **inputs: torch.Tensor) -> EncoderOutput:
        """``forward`` from a ``text_state`` and a ``video_state`` (or the video keyword inputs of
        ``forward``); a batch of 1 on either side is shared by the other side's rows: the same
        numbers, without running the text-only and video-only parts again. ``pooled``: the streams
        whose pooled output is wanted, and then hidden holds their position 0 only (see
        ``Encoder.forward``); None: every stream at every position."""
        if video is None:
            video = self.video_state(**inputs)
        elif inputs:
            raise TypeError("give the video as a video_state or as inputs, not both")
        batch = max(len(video), text.hidden.shape[0])
        hidden = {s: _expand(h, batch) for s, h in video.hidden.items()}
        bias = {s: _expand(b, batch) for s, b in video.bias.items()}
        hidden["text"], bias["text"] = _expand(text.hidden, batch), _expand(text.bias, batch)
        projected = {**video.projected, "text": text.projected}
        hidden, _ = self.encoder(hidden, bias, skip=self.encoder.text_only + self.encoder.video_only,
                                 projected=projected, pooled=pooled)
        return EncoderOutput(hidden, {s: self.pooler[s](hidden[s]) for s in (pooled or STREAMS)}, ())

    def fuse(self, pooled: dict[str, torch.Tensor]) -> torch.Tensor:
        """PaddleVideo's joint representation: text * region + action ("mul") or the sum."""
        if self.config.tangled.fusion == "mul":
            return pooled["text"] * pooled["region"] + pooled["action"]
        return pooled["text"] + pooled["region"] + pooled["action"]

    def pair(self, pooled: dict[str, torch.Tensor]) -> torch.Tensor:
        """What the matching head reads (``config.match_input``): the pooled text [CLS] output
        (the paper) or PaddleVideo's fused poolers."""
        return pooled["text"] if self.config.match_input == "cls" else self.fuse(pooled)


class ActBertForPretraining(nn.Module):
    """ActBERT with its four pretraining heads and the retrieval alignment head."""

    def __init__(self, config: ActBertConfig) -> None:
        super().__init__()
        self.config = config
        self.actbert = ActBertModel(config)
        self.heads = nn.ModuleDict({
            "text": TiedMaskedLMHead(config.text),
            "action": ClassifierHead(config.action),
            "region": ClassifierHead(config.region),
            "match": nn.Linear(config.tangled.hidden_size, 2),
        })
        self.align = AlignmentHead(config)
        self.apply(lambda m: _init_weights(m, config.initializer_range))

    def forward(self, *, output_attentions: bool = False, heads: Collection[str] | None = None,
                score: bool = True, wanted: dict[str, torch.Tensor] | None = None,
                **inputs: torch.Tensor) -> ActBertOutput:
        """Keyword inputs as ``ActBertModel.forward``; returns the logits of ``heads`` (default:
        all four; a head left out gets ``None``, e.g. the text head's (B, L, vocab) product, the
        largest of a step, when only the matching score is needed). ``score=False``: no
        ``match_score`` (pretraining reads the logits only, and so skips the alignment passes
        the score needs when ``config.match_alignment_weight`` > 0). ``wanted[s]`` (B, L_s)
        bool: the positions of stream s a caller reads (``Encoder``); logits and hidden states
        elsewhere in that stream are not the model's."""
        out = self.actbert(**inputs, output_attentions=output_attentions, wanted=wanted)
        asked = set(PRETRAINING_HEADS if heads is None else heads)
        if asked - set(PRETRAINING_HEADS):
            raise ValueError(f"unknown heads {sorted(asked - set(PRETRAINING_HEADS))}")
        match_logits = self.heads["match"](self.actbert.pair(out.pooled))
        cosine = None
        if score and self.config.match_alignment_weight:
            text = {k: inputs[k] for k in ("text_ids", "text_mask", "token_type_ids") if k in inputs}
            video = {k: v for k, v in inputs.items() if k not in text}
            cosine = (self.encode_text(**text) * self.encode_video(**video)).sum(-1)
        return ActBertOutput(
            text_logits=self.text_logits(out.hidden["text"]) if "text" in asked else None,
            action_logits=self.heads["action"](out.hidden["action"]) if "action" in asked else None,
            region_logits=self.heads["region"](out.hidden["region"]) if "region" in asked else None,
            match_logits=match_logits,
            match_score=self.match_probability(match_logits, cosine) if score else None,
            alignment_cosine=cosine,
            attentions=out.attentions,
            hidden=out.hidden,
            pooled=out.pooled,
        )

    def text_state(self, text_ids: torch.Tensor, text_mask: torch.Tensor,
                   token_type_ids: torch.Tensor | None = None) -> TextState:
        """Run a query's text-only layers once (``match`` shares them across candidates)."""
        return self.actbert.text_state(text_ids, text_mask, token_type_ids)

    def shares_text_prefix(self, other: "ActBertForPretraining") -> bool:
        """``ActBertModel.shares_text_prefix``: another model's text states serve this one."""
        return self.actbert.shares_text_prefix(other.actbert)

    def adopt_text_state(self, text: TextState) -> TextState:
        """``ActBertModel.adopt_text_state``: a text state of a model sharing the text prefix."""
        return self.actbert.adopt_text_state(text)

    def video_state(self, **video: torch.Tensor) -> VideoState:
        """Run a batch of videos' video-only part once (``match`` shares it across queries)."""
        return self.actbert.video_state(**video)

    def match(self, text: TextState, video: VideoState | None = None, score: bool = True,
              **inputs: torch.Tensor) -> ActBertOutput:
        """The matching head on one text state against a batch of videos (a ``video_state`` or
        the video keyword inputs of ``forward``): ``match_logits``, ``match_score`` and ``pooled``
        (the other heads None); the same numbers as ``forward(..., heads=("match",))``. Only what
        the poolers read is computed: ``hidden[s]`` is position 0 of each stream, (B, 1, D_s).
        ``score=False`` as ``forward``."""
        cosine = None
        if score and self.config.match_alignment_weight:
            if video is None:
                video, inputs = self.actbert.video_state(**inputs), {}
            cosine = (self.encode_text_state(text) * self.encode_video_state(video)).sum(-1)
        out = self.actbert.forward_text_state(text, video, pooled=STREAMS, **inputs)
        match_logits = self.heads["match"](self.actbert.pair(out.pooled))
        return ActBertOutput(text_logits=None, action_logits=None, region_logits=None,
                             match_logits=match_logits,
                             match_score=self.match_probability(match_logits, cosine) if score else None,
                             alignment_cosine=cosine, hidden=out.hidden, pooled=out.pooled)

    def match_probability(self, match_logits: torch.Tensor, cosine: torch.Tensor | None = None) -> torch.Tensor:
        """The matching score (B,): the head's softmax, ``softmax(match_logits)[:, 0]``; with the
        pair's alignment ``cosine`` (B,) and ``config.match_alignment_weight`` w, the sigmoid of
        the head's margin plus w * cosine (the same number when w * cosine is 0)."""
        logits = match_logits.float()
        if cosine is None:
            return torch.softmax(logits, -1)[:, 0]
        weight = self.config.match_alignment_weight
        return torch.sigmoid(logits[:, 0] - logits[:, 1] + weight * cosine.float())

    def text_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """The masked language model head on text states (..., D) -> (..., vocab)."""
        return self.heads["text"](hidden, self.actbert.embeddings["text"].word_embeddings.weight)

    # ---- one side alone, for the index -------------------------------------------------------

    def _placeholder_video(self, batch: int, device: torch.device) -> dict[str, torch.Tensor]:
        """The absent video side: one [ACT] slot with a zero feature and the global region token
        alone (zero feature, whole-frame location), so every attention keeps a real key."""
        cfg = self.config
        return {
            "action_features": torch.zeros(batch, 1, cfg.action.feature_size, device=device),
            "action_mask": torch.ones(batch, 1, dtype=torch.long, device=device),
            "region_features": torch.zeros(batch, 1, cfg.region.feature_size, device=device),
            "region_locations": torch.tensor(GLOBAL_REGION_LOCATION, device=device).expand(batch, 1, 5),
            "region_mask": torch.ones(batch, 1, dtype=torch.long, device=device),
        }

    def _placeholder_text(self, batch: int, device: torch.device, cls_id: int, sep_id: int):
        """The absent text side: ``[CLS] [SEP]``."""
        ids = torch.tensor([cls_id, sep_id], device=device).expand(batch, 2)
        return {"text_ids": ids, "text_mask": torch.ones_like(ids)}

    def encode_text(self, text_ids: torch.Tensor, text_mask: torch.Tensor,
                    token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """(B, L_text) token ids -> (B, embed_size) unit vectors."""
        if self.training:  # the full forward, its dropout draws in their order
            video = self._placeholder_video(text_ids.shape[0], text_ids.device)
            out = self.actbert(text_ids=text_ids, text_mask=text_mask, token_type_ids=token_type_ids,
                               **video)
            return self.align.embed_text(out.pooled["text"])
        return self.encode_text_state(self.text_state(text_ids, text_mask, token_type_ids))

    def placeholder_state(self, batch: int = 1) -> VideoState:
        """The ``video_state`` of the placeholder video ``encode_text`` runs texts against."""
        return self.actbert.video_state(**self._placeholder_video(batch, self.align.text.weight.device))

    def encode_text_state(self, text: TextState, placeholder: VideoState | None = None) -> torch.Tensor:
        """``encode_text`` from a ``text_state`` (the query path shares it with its rerank): the
        forward against the placeholder video (``placeholder``: its ``placeholder_state()``,
        kept by the caller), computing only what the pooled text needs."""
        if placeholder is None:
            placeholder = self.placeholder_state(text.hidden.shape[0])
        out = self.actbert.forward_text_state(text, placeholder, pooled=("text",))
        return self.align.embed_text(out.pooled["text"])

    def encode_video_state(self, video: VideoState, cls_id: int = 101, sep_id: int = 102) -> torch.Tensor:
        """``encode_video`` from a ``video_state`` (the matching score shares it with its joint
        pass): the forward against the text ``[CLS] [SEP]``, computing only the pooled video."""
        device = self.align.video.weight.device
        text = self.text_state(**self._placeholder_text(1, device, cls_id, sep_id))
        out = self.actbert.forward_text_state(text, video, pooled=("action", "region"))
        return self.align.embed_video(out.pooled["action"], out.pooled["region"])

    def encode_video(self, action_features: torch.Tensor, action_mask: torch.Tensor,
                     region_features: torch.Tensor, region_locations: torch.Tensor,
                     region_mask: torch.Tensor, cls_id: int = 101, sep_id: int = 102,
                     **positions: torch.Tensor) -> torch.Tensor:
        """Action and region inputs (as ``forward``) -> (B, embed_size) unit vectors."""
        out = self.video_only_forward(action_features, action_mask, region_features,
                                      region_locations, region_mask, cls_id, sep_id, **positions)
        return self.align.embed_video(out.pooled["action"], out.pooled["region"])

    def video_only_forward(self, action_features: torch.Tensor, action_mask: torch.Tensor,
                           region_features: torch.Tensor, region_locations: torch.Tensor,
                           region_mask: torch.Tensor, cls_id: int = 101, sep_id: int = 102,
                           wanted: dict[str, torch.Tensor] | None = None,
                           **positions: torch.Tensor) -> EncoderOutput:
        """The joint forward of a video with the text ``[CLS] [SEP]``: what ``encode_video`` pools
        and what the Clip page's action head reads (pretraining trains that head on it too).
        ``wanted``: as ``ActBertModel.forward``."""
        text = self._placeholder_text(action_features.shape[0], action_features.device,
                                      cls_id, sep_id)
        return self.actbert(**text, action_features=action_features, action_mask=action_mask,
                            region_features=region_features, region_locations=region_locations,
                            region_mask=region_mask, wanted=wanted, **positions)

    # ---- checkpoints -------------------------------------------------------------------------

    def save_pretrained(self, directory: str | Path) -> None:
        from .checkpoint import save_pretrained

        save_pretrained(self, directory)

    @classmethod
    def from_pretrained(cls, directory: str | Path, map_location: str = "cpu") -> "ActBertForPretraining":
        from .checkpoint import load_pretrained

        return load_pretrained(cls, directory, map_location)

    @classmethod
    def from_paddle(cls, path: str | Path, **overrides) -> "ActBertForPretraining":
        from .paddle.convert import load_paddle

        return load_paddle(cls, path, **overrides)


def build_model(preset: str = "mini", text_init: str | Path | None = "auto", **changes):
    """A fresh ``ActBertForPretraining`` from a preset.

    ``text_init="auto"`` initialises the ``mini`` text stream from the packaged MiniLM weights
    (other presets stay random unless a BERT directory is given); ``None`` keeps random weights.
    """
    from .checkpoint import init_text_from_bert, minilm_dir

    model = ActBertForPretraining(ActBertConfig.from_name(preset, **changes))
    if text_init == "auto":
        text_init = minilm_dir() if preset == "mini" else None
    if text_init is not None:
        init_text_from_bert(model, text_init)
    return model
