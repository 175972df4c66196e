"""The action vocabulary of pretraining: verbs the action head learns, and verbs it must not.

The narration's verbs label the action objective (paper 3.2.2), but narration is talk: "welcome",
"subscribe", "promise" and ASR fragments ("crac", "mov") are verbs of the talk, not actions on
screen. A declared stop-list (``configs/verb_stoplist.txt``: one verb per line, ``#`` comments)
removes them from the targets, and from the head's classes (``restrict_action_head``), so the
head's vocabulary is of actions, as the paper's.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from ..corpus import Corpus


def read_stoplist(spec: str | None) -> tuple[str, ...]:
    """``spec``: a file of verbs (one per line, ``#`` comments) or a comma-separated list."""
    if not spec:
        return ()
    path = Path(spec)
    if path.is_file():
        words = [line.split("#", 1)[0].strip() for line in path.read_text().splitlines()]
    elif "/" in spec or spec.endswith(".txt"):
        raise FileNotFoundError(f"{spec}: no verb stop-list file")
    else:
        words = [w.strip() for w in spec.split(",")]
    return tuple(dict.fromkeys(w.lower() for w in words if w))


def without_verbs(corpus: Corpus, ignore: tuple[str, ...]) -> Corpus:
    """The corpus with the ``ignore`` verbs gone from its header and from every clip's verbs (a
    clip left with none gets no action target, as a clip without verbs in the paper)."""
    if not ignore:
        return corpus
    drop = set(ignore)
    videos = tuple(replace(v, verbs=tuple(tuple(x for x in clip if x not in drop) for clip in v.verbs))
                   for v in corpus.videos)
    return replace(corpus, videos=videos, verbs=tuple(v for v in corpus.verbs if v not in drop))


@torch.no_grad()
def restrict_action_head(model, ignore: tuple[str, ...]):
    """The model with the ``ignore`` verbs removed from its action head (the decoder rows of the
    kept verbs are kept as they are, in their order); the model itself when it has none of them."""
    verbs = tuple(model.config.extra.get("verbs") or ())
    keep = [i for i, v in enumerate(verbs) if v not in set(ignore)]
    if not verbs or len(keep) == len(verbs):
        return model
    if not keep:
        raise ValueError("the verb stop-list removes every class of the action head")
    decoder = model.heads["action"].decoder
    index = torch.tensor(keep)
    new = torch.nn.Linear(decoder.in_features, len(keep)).to(decoder.weight)
    new.weight.copy_(decoder.weight[index])
    new.bias.copy_(decoder.bias[index])
    model.heads["action"].decoder = new
    model.config = model.config.replace(
        action={"num_classes": len(keep)},
        extra={**model.config.extra, "verbs": [verbs[i] for i in keep]})
    model.actbert.config = model.config
    return model
