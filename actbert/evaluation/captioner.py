"""Video captioning head: a small transformer decoder over ActBERT's video outputs.

- Memory: one token per visual output of a clip (the evaluation gives two: the action-stream hidden
  state of the clip's [ACT] slot and the pooled region output), each projected linearly to the
  decoder width, plus a learned embedding per memory slot, then LayerNorm.
- Vocabulary: the MiniLM WordPiece vocabulary of ``ActBertTokenizer``, restricted to the pieces
  that occur in the training captions plus [PAD], [CLS] (start) and [SEP] (end): a piece that no
  training caption contains could never be learned. The output layer is tied to the input token
  embedding. Captions are decoded back to text with the WordPiece decoder.
- Decoder: ``torch.nn.TransformerDecoder`` (post-LN, GELU), causal self-attention over the caption,
  cross-attention over the memory; learned positions.
- Training: teacher forcing, cross-entropy over real tokens, AdamW, a fixed number of epochs,
  shuffling and dropout drawn from the seed (the global torch RNG state is restored afterwards).
- Decoding: greedy, at most ``max_tokens`` pieces, stopping at [SEP].
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..tokenizer import ActBertTokenizer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CaptionerConfig:
    width: int = 128
    layers: int = 2
    heads: int = 4
    epochs: int = 15
    min_steps: int = 400          # small training sets get more epochs, at least this many updates
    batch_size: int = 32
    lr: float = 1e-3
    max_tokens: int = 24
    dropout: float = 0.1
    seed: int = 0


class CaptionDecoder(nn.Module):
    """memory: list of (B, F_i) tensors, tokens (B, L) local ids -> logits (B, L, V)."""

    def __init__(self, memory_sizes: Sequence[int], vocab_size: int, config: CaptionerConfig) -> None:
        super().__init__()
        width = config.width
        self.memory = nn.ModuleList(nn.Linear(size, width) for size in memory_sizes)
        self.memory_slot = nn.Embedding(len(memory_sizes), width)
        self.memory_norm = nn.LayerNorm(width)
        self.tokens = nn.Embedding(vocab_size, width)
        self.positions = nn.Embedding(config.max_tokens + 2, width)
        layer = nn.TransformerDecoderLayer(width, config.heads, 2 * width, config.dropout,
                                           activation="gelu", batch_first=True)
        self.decoder = nn.TransformerDecoder(layer, config.layers)
        self.bias = nn.Parameter(torch.zeros(vocab_size))

    def encode_memory(self, memory: Sequence[torch.Tensor]) -> torch.Tensor:
        """list of (B, F_i) -> (B, M, width)."""
        slots = torch.stack([proj(m) for proj, m in zip(self.memory, memory)], 1)
        return self.memory_norm(slots + self.memory_slot.weight)

    def forward(self, memory: torch.Tensor, tokens: torch.Tensor, pad_id: int = 0) -> torch.Tensor:
        """memory (B, M, width) from ``encode_memory``; tokens (B, L) -> logits (B, L, V)."""
        length = tokens.shape[1]
        x = self.tokens(tokens) + self.positions(torch.arange(length, device=tokens.device))
        causal = nn.Transformer.generate_square_subsequent_mask(length, device=tokens.device)
        h = self.decoder(x, memory, tgt_mask=causal, tgt_is_causal=True,
                         tgt_key_padding_mask=(tokens == pad_id).float() * -1e9)
        return h @ self.tokens.weight.T + self.bias  # tied output layer


class Captioner:
    """Fit on (memory, caption) pairs; generate captions for new memories."""

    def __init__(self, tokenizer: ActBertTokenizer, config: CaptionerConfig = CaptionerConfig()) -> None:
        self.tokenizer = tokenizer
        self.config = config
        self.model: CaptionDecoder | None = None
        self.vocab: np.ndarray | None = None  # local id -> WordPiece id
        self.local: dict[int, int] = {}

    def _encode(self, captions: Sequence[str]) -> torch.Tensor:
        """Captions -> (N, L) local ids: [CLS] pieces [SEP], padded with 0, at most max_tokens
        pieces (a longer caption is cut and still ends with [SEP])."""
        enc = self.tokenizer(list(captions))
        rows = []
        for ids, mask in zip(enc.ids.tolist(), enc.mask.tolist()):
            ids = [i for i, m in zip(ids, mask) if m]
            ids = ids[:self.config.max_tokens + 1] + [self.tokenizer.sep_id] \
                if len(ids) > self.config.max_tokens + 2 else ids
            rows.append([self.local[i] for i in ids])
        out = torch.zeros(len(rows), max(map(len, rows)), dtype=torch.long)
        for i, row in enumerate(rows):
            out[i, :len(row)] = torch.tensor(row)
        return out

    @staticmethod
    def _memory(memory: Sequence[np.ndarray]) -> list[torch.Tensor]:
        return [torch.as_tensor(np.asarray(m), dtype=torch.float32) for m in memory]

    def fit(self, memory: Sequence[np.ndarray], captions: Sequence[str]) -> list[float]:
        """memory: one (N, F_i) array per memory slot; captions: N strings. Returns the mean
        training loss of each epoch."""
        memory = self._memory(memory)
        if not captions or any(len(m) != len(captions) for m in memory):
            raise ValueError(f"captioning needs one memory row per caption: {len(captions)} "
                             f"captions, memory rows {[len(m) for m in memory]}")
        tok = self.tokenizer
        pieces = {i for row in tok(list(captions)).ids.tolist() for i in row}
        specials = [tok.pad_id, tok.cls_id, tok.sep_id]
        self.vocab = np.array(specials + sorted(pieces - set(specials)), dtype=np.int64)
        self.local = {int(g): i for i, g in enumerate(self.vocab)}
        cfg = self.config
        tokens = self._encode(captions)
        losses = []
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            self.model = CaptionDecoder([m.shape[1] for m in memory], len(self.vocab), cfg)
            optimizer = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=0.01)
            gen = torch.Generator().manual_seed(cfg.seed)
            self.model.train()
            batches = math.ceil(len(captions) / cfg.batch_size)
            for _ in range(max(cfg.epochs, math.ceil(cfg.min_steps / batches))):
                order = torch.randperm(len(captions), generator=gen)
                total = 0.0
                for start in range(0, len(order), cfg.batch_size):
                    idx = order[start:start + cfg.batch_size]
                    batch = tokens[idx]
                    logits = self.model(self.model.encode_memory([m[idx] for m in memory]),
                                        batch[:, :-1])
                    loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                       batch[:, 1:].reshape(-1), ignore_index=0)
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                    total += float(loss.detach()) * len(idx)
                losses.append(total / len(captions))
        self.model.eval()
        log.info("captioner: %d captions, %d pieces, loss %.3f -> %.3f", len(captions),
                 len(self.vocab), losses[0], losses[-1])
        return losses

    @torch.no_grad()
    def generate(self, memory: Sequence[np.ndarray], batch_size: int = 256) -> list[str]:
        """Greedy captions for one memory row each."""
        if self.model is None:
            raise ValueError("the captioner is not trained: call fit first")
        memory = self._memory(memory)
        start, end = self.local[self.tokenizer.cls_id], self.local[self.tokenizer.sep_id]
        out: list[str] = []
        for first in range(0, len(memory[0]), batch_size):
            mem = self.model.encode_memory([m[first:first + batch_size] for m in memory])
            tokens = torch.full((len(mem), 1), start, dtype=torch.long)
            done = torch.zeros(len(mem), dtype=torch.bool)
            for _ in range(self.config.max_tokens + 1):
                logits = self.model(mem, tokens)[:, -1]
                logits[:, [0, start]] = float("-inf")  # never [PAD] or [CLS]
                step = torch.where(done, torch.full_like(done, 0, dtype=torch.long), logits.argmax(-1))
                tokens = torch.cat([tokens, step[:, None]], 1)
                done |= step == end
                if bool(done.all()):
                    break
            for row in tokens[:, 1:].tolist():
                ids = []
                for local in row:
                    if local in (0, end):
                        break
                    ids.append(int(self.vocab[local]))
                out.append(self.tokenizer.decode(ids))
        return out
