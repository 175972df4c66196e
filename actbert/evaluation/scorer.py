"""ActBERT as a scorer of the evaluated split (``tasks.SplitClips``): a checkpoint loaded for it
(``load_checkpoint``) and ``ModelScorer``, the model's matching-head and embedding scores of
(text, clip) pairs and its per-clip visual outputs, each clip one input, cached."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..data import collate, drop_regions
from ..model import ActBertForPretraining
from ..tokenizer import ActBertTokenizer
from .baselines import gather_cosine
from .tasks import SplitClips


def load_checkpoint(directory: str | Path, split: SplitClips, device: str = "cpu") -> ActBertForPretraining:
    """A ``save_pretrained`` model in eval mode, checked against the split's feature widths."""
    model = ActBertForPretraining.from_pretrained(directory).to(device).eval()
    sizes = {"action": split.features[0].action_features.shape[1],
             "region": split.features[0].region_features.shape[1]}
    for stream, size in sizes.items():
        if size != model.config.stream(stream).feature_size:
            raise ValueError(f"{directory}: the model takes {stream} features of width "
                             f"{model.config.stream(stream).feature_size}, the corpus has {size}")
    return model


class ModelScorer:
    """ActBERT's scores and outputs for one split's clips, each clip one input, cached.

    ``match``: P(matched) from the matching head (reading what ``config.match_input`` names) of a
    joint forward.
    The text layers that run before the first tangled block see only the text, so they run once
    per text and are broadcast against a batch of clips (the same numbers as ``model(...)``).
    ``cosine``: text-only embedding . video-only embedding. ``use_regions=False`` feeds the clips
    without regions (only the global region token, zeroed), as pretraining's ablation does.
    """

    def __init__(self, model: ActBertForPretraining, tokenizer: ActBertTokenizer, split: SplitClips,
                 use_regions: bool = True, batch_size: int = 64, device: str = "cpu") -> None:
        self.model, self.tok, self.split = model, tokenizer, split
        self.use_regions, self.batch_size, self.device = use_regions, batch_size, device
        self._match: dict[tuple[str, int], float] = {}
        self._text: dict[str, np.ndarray] = {}
        self._video: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def video_batch(self, clips: Sequence[int]) -> dict[str, torch.Tensor]:
        """Collated video inputs of the clips (regions removed when ``use_regions`` is False)."""
        video = collate([self.split.inputs(c, self.model.config.max_regions) for c in clips])
        video.pop("region_classes")
        if not self.use_regions:
            video = drop_regions(video)
        return {k: v.to(self.device) for k, v in video.items()}

    @torch.inference_mode()
    def _joint(self, text: str, clips: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """Fused pooled outputs (N, D) and match probabilities (N,) of one text against clips (the
        text-only layers run once, ``ActBertForPretraining.match``; a score that reads the
        alignment cosine takes it from this scorer's cached embeddings, the same numbers)."""
        enc = self.tok([text])
        state = self.model.text_state(enc.ids.to(self.device), enc.mask.to(self.device))
        fused, scores = [], []
        for start in range(0, len(clips), self.batch_size):
            chunk = clips[start:start + self.batch_size]
            out = self.model.match(state, score=False, **self.video_batch(chunk))
            cosine = (torch.from_numpy(self.cosine([text] * len(chunk), chunk))
                      if self.model.config.match_alignment_weight else None)
            scores.append(self.model.match_probability(out.match_logits.cpu(), cosine))
            fused.append(self.model.actbert.fuse(out.pooled).float().cpu())
        return torch.cat(fused).numpy(), torch.cat(scores).numpy()

    def _by_text(self, texts: Sequence[str], clips: Sequence[int]) -> dict[str, list[int]]:
        groups: dict[str, list[int]] = {}
        for t, c in zip(texts, clips):
            groups.setdefault(t, []).append(int(c))
        return {t: list(dict.fromkeys(cs)) for t, cs in groups.items()}

    def match(self, texts: Sequence[str], clips: Sequence[int]) -> np.ndarray:
        """(P,) matching probabilities of text i with clip i."""
        missing = [(t, int(c)) for t, c in zip(texts, clips) if (t, int(c)) not in self._match]
        groups = self._by_text([t for t, _ in missing], [c for _, c in missing])
        for text, group in groups.items():
            _, scores = self._joint(text, group)
            self._match.update({(text, c): float(s) for c, s in zip(group, scores)})
        return np.array([self._match[(t, int(c))] for t, c in zip(texts, clips)])

    def fused(self, texts: Sequence[str], clips: Sequence[int]) -> np.ndarray:
        """(P, D) fused pooled outputs of the joint forward of text i with clip i."""
        rows: dict[tuple[str, int], np.ndarray] = {}
        for text, group in self._by_text(texts, clips).items():
            feats, scores = self._joint(text, group)
            rows.update({(text, c): f for c, f in zip(group, feats)})
            self._match.update({(text, c): float(s) for c, s in zip(group, scores)})
        return np.stack([rows[(t, int(c))] for t, c in zip(texts, clips)])

    @torch.inference_mode()
    def text_embeddings(self, texts: Sequence[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self._text))
        for start in range(0, len(missing), self.batch_size):
            chunk = missing[start:start + self.batch_size]
            enc = self.tok(chunk)
            vecs = self.model.encode_text(enc.ids.to(self.device), enc.mask.to(self.device))
            self._text.update(zip(chunk, vecs.float().cpu().numpy()))
        return np.stack([self._text[t] for t in texts]) if texts else np.zeros((0, 0), np.float32)

    @torch.inference_mode()
    def _video_outputs(self, clips: Sequence[int]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Per clip, from the video-only forward (text = [CLS] [SEP]): the [ACT] slot's hidden
        state (D_action), the pooled region output (D_tangled) and the video embedding."""
        missing = list(dict.fromkeys(int(c) for c in clips if int(c) not in self._video))
        ids = torch.tensor([[self.tok.cls_id, self.tok.sep_id]], device=self.device)
        for start in range(0, len(missing), self.batch_size):
            chunk = missing[start:start + self.batch_size]
            out = self.model.actbert(text_ids=ids, text_mask=torch.ones_like(ids),
                                     **self.video_batch(chunk))
            vec = self.model.align.embed_video(out.pooled["action"], out.pooled["region"])
            for i, c in enumerate(chunk):
                self._video[c] = (out.hidden["action"][i, 0].float().cpu().numpy(),
                                  out.pooled["region"][i].float().cpu().numpy(),
                                  vec[i].float().cpu().numpy())
        return [self._video[int(c)] for c in clips]

    def cosine(self, texts: Sequence[str], clips: Sequence[int]) -> np.ndarray:
        """(P,) cosine of the text-only and video-only embeddings of each pair."""
        unique = list(dict.fromkeys(int(c) for c in clips))
        vectors = np.stack([v[2] for v in self._video_outputs(unique)]) if unique else None
        column = {c: i for i, c in enumerate(unique)}
        return gather_cosine(self.text_embeddings, vectors, texts, [column[int(c)] for c in clips])

    def visual_features(self, clips: Sequence[int]) -> np.ndarray:
        """(C, D_action + D_tangled): [ACT] hidden state ++ pooled region output per clip."""
        return np.stack([np.concatenate(v[:2]) for v in self._video_outputs(clips)])

    def action_memory(self, clips: Sequence[int]) -> list[np.ndarray]:
        """[(C, D_action) [ACT] hidden states]: the action transformer's output alone (the paper's
        captioning encoder, 4.2.2; feed the clips without regions for its protocol)."""
        return [np.stack([v[0] for v in self._video_outputs(clips)])]

    def caption_memory(self, clips: Sequence[int]) -> list[np.ndarray]:
        """[(C, D_action) [ACT] hidden states, (C, D_tangled) pooled region outputs]."""
        outputs = self._video_outputs(clips)
        return [np.stack([v[0] for v in outputs]), np.stack([v[1] for v in outputs])]
