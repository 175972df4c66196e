"""Why a clip matches a text: what the scores lose when one element is removed.

Two scores, as search uses them: the matching head's probability that the text describes the clip
(``match_score``, the rerank score) and the cosine of the text's and the clip's index vectors
(``encode_text`` . ``encode_video``, the FAISS score). Elements and what removing one means are the
clip contract's (``actbert.data.pair_elements`` / ``remove_elements``: a word -> [MASK], a region
slot masked out, the action slot emptied, a clip of a group taken out), so the attention view,
search and this module agree on which elements exist.

- Occlusion: the full pair and every one-element removal go through the model as ONE batch;
  effect = score(without the element) - score(full pair), so a negative effect means the element
  supports the match.
- Integrated gradients (Sundararajan et al., 2017), a second method over the same elements: words
  move from the [MASK] embedding to their own, region RoI features and action features from zero
  (the global region token, the mean of the regions, follows them), midpoint rule; a clip of a
  group gets the sum of its slots. Signs as occlusion: negative = supports the match.

Faithfulness of attention against these effects lives in ``actbert.faithfulness``.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from .data import ClipInputs, Element, VideoFeatures, collate, pair_elements, remove_elements

SIGNALS = ("match", "similarity")


@dataclass(frozen=True)
class PairText:
    """One text, unbatched: ids and mask (L,), WordPieces (for labels), and the tokenizer's
    special ids ([MASK] replaces a removed word; [CLS]/[SEP] build the video side's placeholder
    text)."""

    ids: torch.Tensor
    mask: torch.Tensor
    tokens: tuple[str, ...]
    mask_id: int
    cls_id: int
    sep_id: int
    special_ids: tuple[int, ...]

    @classmethod
    def encode(cls, tokenizer, query: str) -> "PairText":
        enc = tokenizer(query)
        return cls(enc.ids[0], enc.mask[0], tuple(enc.tokens[0]), tokenizer.mask_id,
                   tokenizer.cls_id, tokenizer.sep_id, tuple(tokenizer.special_ids))


@dataclass(frozen=True)
class Attribution:
    """Per element (same order as ``elements`` and ``labels``): the effect of removing it on the
    match probability and on the cosine (occlusion), and the integrated gradients of both (None
    when not computed). ``match`` / ``similarity``: the full pair's scores."""

    elements: tuple[Element, ...]
    labels: tuple[str, ...]
    match: float
    similarity: float
    match_effect: np.ndarray
    similarity_effect: np.ndarray
    match_gradient: np.ndarray | None = None
    similarity_gradient: np.ndarray | None = None

    def values(self, signal: str = "match", method: str = "occlusion") -> np.ndarray:
        """(n,) one signal by one method (``occlusion`` or ``gradient``)."""
        if signal not in SIGNALS or method not in ("occlusion", "gradient"):
            raise ValueError(f"signal must be one of {SIGNALS} and method occlusion or gradient")
        found = getattr(self, f"{signal}_{'effect' if method == 'occlusion' else 'gradient'}")
        if found is None:
            raise ValueError("this attribution was computed without gradients")
        return found

    def top(self, k: int = 3, signal: str = "match") -> list[tuple[str, float]]:
        """The ``k`` elements whose removal lowers ``signal`` most, with the (negative) change."""
        return top_elements(self.labels, self.values(signal), k)

    def why(self, k: int = 3, signal: str = "match") -> str:
        """One line: ``region whisk@2s -0.31, word 'eggs' -0.22, action -0.05``."""
        return why_line(self.labels, self.values(signal), k)

    def to_json(self) -> dict:
        def listed(x):
            return None if x is None else [round(float(v), 6) for v in x]
        return {"match": self.match, "similarity": self.similarity,
                "elements": [{"kind": e.kind, "index": e.index, "label": label,
                              "match_effect": round(float(m), 6),
                              "similarity_effect": round(float(s), 6)}
                             for e, label, m, s in zip(self.elements, self.labels,
                                                       self.match_effect, self.similarity_effect)],
                "match_gradient": listed(self.match_gradient),
                "similarity_gradient": listed(self.similarity_gradient), "why": self.why()}

    @classmethod
    def from_json(cls, data: dict) -> "Attribution":
        rows = data["elements"]
        arr = lambda x: None if x is None else np.asarray(x, np.float64)  # noqa: E731
        return cls(tuple(Element(r["kind"], r["index"]) for r in rows),
                   tuple(r["label"] for r in rows), data["match"], data["similarity"],
                   arr([r["match_effect"] for r in rows]), arr([r["similarity_effect"] for r in rows]),
                   arr(data.get("match_gradient")), arr(data.get("similarity_gradient")))


@dataclass(frozen=True)
class BothEffects:
    """One element of a (text, clip) pair under two models: the change of ``signal`` when it is
    removed, under the first and the second model (None: that model's pair has no such element,
    as a model fed no regions has no region slots)."""

    element: Element
    label: str
    first: float | None
    second: float | None

    def to_json(self) -> dict:
        rounded = lambda v: None if v is None else round(float(v), 6)  # noqa: E731
        return {"kind": self.element.kind, "index": self.element.index, "label": self.label,
                "first": rounded(self.first), "second": rounded(self.second)}


def both_effects(first: Attribution, second: Attribution, signal: str = "match",
                 method: str = "occlusion") -> list[BothEffects]:
    """The two models' attributions of the same pair joined element by element: the first's
    elements in order, then those only the second has. An element is the same under both when
    its kind, index and label agree (the clip contract names them alike; a region slot that holds
    another box under another region limit has another label, and two rows)."""
    keyed = [{(e, label): v for e, label, v in zip(a.elements, a.labels, a.values(signal, method))}
             for a in (first, second)]
    order = list(keyed[0]) + [k for k in keyed[1] if k not in keyed[0]]
    return [BothEffects(e, label, keyed[0].get((e, label)), keyed[1].get((e, label)))
            for e, label in order]


def top_elements(labels, effect: np.ndarray, k: int = 3) -> list[tuple[str, float]]:
    """The ``k`` elements whose removal lowers the score most (most negative ``effect`` first,
    only those below 0), as (label, change)."""
    order = [i for i in np.argsort(effect, kind="stable") if effect[i] < 0][:k]
    return [(labels[i], float(effect[i])) for i in order]


def why_line(labels, effect: np.ndarray, k: int = 3) -> str:
    """``region whisk@2s -0.31, word 'eggs' -0.22, action -0.05`` (``top_elements``)."""
    top = top_elements(labels, effect, k)
    return ", ".join(f"{label} {_signed(value)}" for label, value in top) if top else \
        "no single element's removal lowers the score"


def _signed(value: float) -> str:
    """-0.31; changes under 0.01 keep two significant digits (-0.0042) instead of reading -0.00."""
    return f"{value:+.2f}" if abs(value) >= 0.01 else f"{value:+.2g}"


def region_names(features: VideoFeatures, inputs: ClipInputs, class_names: list[str]) -> dict[int, str]:
    """Region slot -> ``"<detector class>@<frame time>s"`` (``bowl@2s``) for every real slot,
    read from the provenance the clip contract recorded (``region_rows``)."""
    names = {}
    rows = inputs.region_rows if inputs.region_rows is not None else []
    for slot, row in enumerate(rows):
        if row < 0:
            continue
        dist = features.region_classes[row]
        k = int(np.argmax(dist[1:]) + 1) if len(dist) > 1 else 0
        name = class_names[k] if k < len(class_names) else f"class {k}"
        names[slot] = f"{name}@{features.region_time_sec[row]:.0f}s"
    return names


def element_labels(elements: list[Element], text: PairText, inputs: ClipInputs,
                   names: dict[int, str] | None = None) -> tuple[str, ...]:
    """``word 'eggs'``, ``region bowl@2s`` (``names`` from ``region_names``; else ``region rN``,
    the N-th real region, as the attention view numbers them), ``action`` (``action k`` in a group),
    ``clip k`` (the clip's index in its video)."""
    ordinal = {e.index: n for n, e in enumerate((e for e in elements if e.kind == "region"), 1)}
    group = inputs.action_features.shape[0] > 1
    out = []
    for e in elements:
        if e.kind == "word":
            out.append(f"word '{text.tokens[e.index]}'")
        elif e.kind == "region":
            out.append(f"region {(names or {}).get(e.index, f'r{ordinal[e.index]}')}")
        elif e.kind == "action":
            out.append(f"action {e.index + 1}" if group else "action")
        else:
            out.append(f"clip {inputs.clips[e.index] if inputs.clips else e.index}")
    return tuple(out)


def _video(samples: list[ClipInputs]) -> dict[str, torch.Tensor]:
    batch = collate(samples)
    batch.pop("region_classes")
    return batch


@torch.no_grad()
def match_scores(model, text_ids: torch.Tensor, text_mask: torch.Tensor,
                 videos: list[ClipInputs], batch_size: int = 128) -> np.ndarray:
    """(B,) match probabilities of pairs (text row b, video b): text_ids / text_mask (B, L) or
    (1, L) for one text against every video; ``batch_size`` rows per forward."""
    out = []
    for start in range(0, len(videos), batch_size):
        chunk = videos[start:start + batch_size]
        ids = text_ids if text_ids.shape[0] == 1 else text_ids[start:start + len(chunk)]
        mask = text_mask if text_mask.shape[0] == 1 else text_mask[start:start + len(chunk)]
        result = model(text_ids=ids, text_mask=mask, heads=("match",), **_video(chunk))
        out.append(result.match_score.float())
    return torch.cat(out).numpy().astype(np.float64)


def _variants(text: PairText, inputs: ClipInputs, elements: list[Element]):
    """The full pair, then the pair without each element: (text ids (1 + n, L), videos)."""
    rows = [(text.ids, inputs)] + [remove_elements(text.ids, inputs, [e], text.mask_id)
                                   for e in elements]
    return torch.stack([ids for ids, _ in rows]), [video for _, video in rows]


@torch.no_grad()
def occlusion(model, text: PairText, inputs: ClipInputs,
              elements: list[Element]) -> tuple[float, float, np.ndarray, np.ndarray]:
    """(full match, full cosine, match effects (n,), cosine effects (n,)). The 1 + n pairs go
    through the matching forward as one batch; a word's removal changes only the text vector and
    the others only the video vector, so the cosines take one text batch and one video batch."""
    ids, videos = _variants(text, inputs, elements)
    mask = text.mask.expand_as(ids)
    match = match_scores(model, ids, mask, videos, batch_size=len(videos))
    words = [0] + [i + 1 for i, e in enumerate(elements) if e.kind == "word"]
    other = [0] + [i + 1 for i, e in enumerate(elements) if e.kind != "word"]
    text_vec = model.encode_text(ids[words], mask[words]).float()
    video_vec = model.encode_video(**_video([videos[i] for i in other]), cls_id=text.cls_id,
                                   sep_id=text.sep_id).float()
    cosine = np.empty(len(videos))
    cosine[words] = (text_vec @ video_vec[0]).numpy()
    cosine[other] = (video_vec @ text_vec[0]).numpy()
    return float(match[0]), float(cosine[0]), match[1:] - match[0], cosine[1:] - cosine[0]


@dataclass(frozen=True)
class MatchOcclusion:
    """One clip's occlusion of the match probability (``match_occlusions``): its elements, the
    full pair's probability and each element's effect (n,), as ``occlusion`` gives them."""

    elements: tuple[Element, ...]
    match: float
    match_effect: np.ndarray


@torch.no_grad()
def match_occlusions(model, text: PairText, clips: list[ClipInputs],
                     batch_size: int = 64) -> list[MatchOcclusion]:
    """``occlusion``'s match part for ONE text against many clips (a results page), every
    removal of every clip in shared batches: the text and its one-word removals are the same for
    every clip, so they run through the text-only layers once (``model.text_state``); each clip's
    video variants (the clip, each region removed, the action emptied) run through the video-only
    part once (``model.video_state``); the rows, (text variant, video variant) pairs, continue from
    those states through the joint layers and the matching head (``model.match``),
    ``batch_size`` rows per forward. The same numbers as ``occlusion`` (up to float rounding)."""
    from .states import TextState, VideoState

    words = [e for e in pair_elements(text.ids, clips[0], text.special_ids) if e.kind == "word"] \
        if clips else []
    text_ids = torch.stack([text.ids] + [remove_elements(text.ids, clips[0], [e], text.mask_id)[0]
                                         for e in words]) if clips else text.ids[None]
    texts = model.text_state(text_ids, text.mask.expand_as(text_ids))
    rows: list[tuple[int, int]] = []   # (text variant, video variant)
    variants: list[ClipInputs] = []
    spans, elements_of = [], []
    for inputs in clips:
        elements = pair_elements(text.ids, inputs, text.special_ids)
        others = [e for e in elements if e.kind != "word"]
        first_video = len(variants)
        variants += [inputs] + [remove_elements(text.ids, inputs, [e], text.mask_id)[1] for e in others]
        start = len(rows)
        # rows in the clip's element order: the full pair, then every element's removal
        by_element = {e: (words.index(e) + 1, first_video) if e.kind == "word"
                      else (0, first_video + 1 + others.index(e)) for e in elements}
        rows += [(0, first_video)] + [by_element[e] for e in elements]
        spans.append((start, len(rows)))
        elements_of.append(tuple(elements))
    states: list[VideoState] = []
    for start in range(0, len(variants), batch_size):
        states += model.video_state(**_video(variants[start:start + batch_size])).unbatch()
    # rows of similar region counts share a forward: less padding to compute
    order = sorted(range(len(rows)), key=lambda i: states[rows[i][1]].rows["region"].shape[1])
    match = np.zeros(len(rows))
    for start in range(0, len(rows), batch_size):
        chunk = order[start:start + batch_size]
        index = torch.tensor([rows[i][0] for i in chunk])
        text_rows = TextState(texts.hidden[index], texts.bias[index],
                              {k: v[index] for k, v in texts.projected.items()})
        video_rows = VideoState.batch([states[rows[i][1]] for i in chunk])
        match[chunk] = model.match(text_rows, video_rows).match_score.float().numpy()
    out = []
    for (start, end), elements in zip(spans, elements_of):
        full = match[start]
        out.append(MatchOcclusion(elements, float(full), match[start + 1:end] - full))
    return out


@contextmanager
def _words_between(model, ids: torch.Tensor, positions: list[int], mask_id: int,
                   alphas: torch.Tensor):
    """While open, the word embeddings of texts equal to ``ids`` (m, L) are, at ``positions``,
    ``E[MASK] + alpha_k (E[word] - E[MASK])`` for row k: a leaf per call, kept in the yielded
    list with the difference ``E[word] - E[MASK]`` (for the attributions)."""
    module = model.actbert.embeddings["text"].word_embeddings
    calls: list[tuple[torch.Tensor, torch.Tensor]] = []

    def hook(_module, args, output):
        if args[0].shape != ids.shape or not torch.equal(args[0], ids) or not positions:
            return None
        base = module.weight[mask_id].detach()
        delta = (output.detach()[:, positions] - base)
        point = (base + alphas[:, None, None] * delta).requires_grad_()
        out = output.clone()
        out[:, positions] = point
        calls.append((point, delta[0]))
        return out

    handle = module.register_forward_hook(hook)
    try:
        yield calls
    finally:
        handle.remove()


def integrated_gradients(model, text: PairText, inputs: ClipInputs, elements: list[Element],
                         steps: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """(match attributions (n,), cosine attributions (n,)), negated so that, like occlusion
    effects, negative = the element raises the score (module docstring for the paths)."""
    alphas = (torch.arange(steps, dtype=torch.float32) + 0.5) / steps
    words = [e.index for e in elements if e.kind == "word"]
    real = [e.index for e in elements if e.kind == "region"]
    ids = text.ids.expand(steps, -1).contiguous()
    mask = text.mask.expand(steps, -1)
    regions, actions = inputs.region_features[real], inputs.action_features
    video = _video([inputs] * steps)
    results = []
    with torch.enable_grad():
        for signal in SIGNALS:
            with _words_between(model, ids, words, text.mask_id, alphas) as calls:
                # the points of the path are the leaves: their gradients, averaged, are IG's
                region_at = (alphas[:, None, None] * regions[None]).requires_grad_()
                action_at = (alphas[:, None, None] * actions[None]).requires_grad_()
                feats = torch.zeros_like(video["region_features"])
                if real:
                    feats[:, real] = region_at
                    feats[:, 0] = region_at.mean(1)
                inputs_now = {**video, "region_features": feats, "action_features": action_at}
                if signal == "match":
                    score = model(text_ids=ids, text_mask=mask, heads=("match",),
                                  **inputs_now).match_score
                else:
                    score = (model.encode_text(ids, mask) * model.encode_video(
                        **inputs_now, cls_id=text.cls_id, sep_id=text.sep_id)).sum(-1)
                leaves = [region_at, action_at] + [point for point, _ in calls]
                grads = torch.autograd.grad(score.sum(), leaves, allow_unused=True)
            results.append(_per_element(elements, inputs, grads, calls, regions, actions, steps))
    return results[0], results[1]


def _per_element(elements, inputs, grads, calls, regions, actions, steps) -> np.ndarray:
    """Sum over feature dimensions of (input - baseline) x mean gradient, per element, negated."""
    def attr(grad, delta):
        return np.zeros(delta.shape[0]) if grad is None else \
            (delta * grad.sum(0) / steps).sum(-1).detach().double().numpy()
    region = attr(grads[0], regions)
    action = attr(grads[1], actions)
    word = sum(attr(g, delta) for g, (_, delta) in zip(grads[2:], calls)) if calls else np.zeros(0)
    word_at = {e.index: i for i, e in enumerate(e for e in elements if e.kind == "word")}
    region_at = {e.index: i for i, e in enumerate(e for e in elements if e.kind == "region")}
    out = []
    for e in elements:
        if e.kind == "word":
            out.append(word[word_at[e.index]])
        elif e.kind == "region":
            out.append(region[region_at[e.index]])
        elif e.kind == "action":
            out.append(action[e.index])
        else:  # a clip of a group: its action slot and its regions
            mine = [region_at[r] for r in region_at if int(inputs.region_segments[r]) == e.index]
            out.append(action[e.index] + region[mine].sum())
    return -np.asarray(out, np.float64)


KINDS = ("regions", "action", "words")


def whole_words(tokens) -> list[tuple[str, list[int]]]:
    """WordPieces joined into words: (word, its text positions); special tokens are left out."""
    out: list[tuple[str, list[int]]] = []
    for i, token in enumerate(tokens):
        if token.startswith("[") and token.endswith("]"):
            continue
        if token.startswith("##") and out and out[-1][1][-1] == i - 1:
            out[-1] = (out[-1][0] + token[2:], out[-1][1] + [i])
        else:
            out.append((token, [i]))
    return out


def kind_elements(text: PairText, inputs: ClipInputs, kind: str,
                  vocabulary=None) -> list[Element]:
    """Every element of one kind: ``regions`` (all real region slots), ``action`` (all action
    slots) or ``words`` (every WordPiece of the words in ``vocabulary``; None: all words), for
    ranking "as if this kind were absent"."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    elements = pair_elements(text.ids, inputs, text.special_ids)
    if kind == "regions":
        return [e for e in elements if e.kind == "region"]
    if kind == "action":
        return [e for e in elements if e.kind == "action"]
    wanted = None if vocabulary is None else {w.lower() for w in vocabulary}
    positions = {i for word, where in whole_words(text.tokens)
                 if wanted is None or word.lower() in wanted for i in where}
    return [e for e in elements if e.kind == "word" and e.index in positions]


@torch.no_grad()
def kind_drops(model, text: PairText, inputs: ClipInputs) -> dict[str, tuple[float, float]]:
    """What the pair loses when EVERY element of one kind is removed at once (``kind_elements``:
    all words, all real regions, the action slot(s)): {kind: (match drop, cosine drop)} for each
    of ``KINDS``, drop = full score - score without (positive: the score depends on that kind);
    NaN for a kind the pair has no element of. The full pair and the removals go through the
    matching forward as one batch; the cosines as ``occlusion``'s (a word kind changes only the
    text vector, the others only the video vector)."""
    present, ids, videos = [], [text.ids], [inputs]
    for kind in KINDS:
        gone = kind_elements(text, inputs, kind)
        if gone:
            removed_ids, removed = remove_elements(text.ids, inputs, gone, text.mask_id)
            present.append(kind)
            ids.append(removed_ids)
            videos.append(removed)
    stacked = torch.stack(ids)
    mask = text.mask.expand_as(stacked)
    match = match_scores(model, stacked, mask, videos, batch_size=len(videos))
    words = [0] + [i + 1 for i, k in enumerate(present) if k == "words"]
    other = [0] + [i + 1 for i, k in enumerate(present) if k != "words"]
    text_vec = model.encode_text(stacked[words], mask[words]).float()
    video_vec = model.encode_video(**_video([videos[i] for i in other]), cls_id=text.cls_id,
                                   sep_id=text.sep_id).float()
    cosine = np.empty(len(videos))
    cosine[words] = (text_vec @ video_vec[0]).numpy()
    cosine[other] = (video_vec @ text_vec[0]).numpy()
    out = {kind: (float("nan"), float("nan")) for kind in KINDS}
    for i, kind in enumerate(present, 1):
        out[kind] = (float(match[0] - match[i]), float(cosine[0] - cosine[i]))
    return out


def attribute(model, text: PairText, inputs: ClipInputs, names: dict[int, str] | None = None,
              gradients: bool = True, steps: int = 16) -> Attribution:
    """Occlusion (and, with ``gradients``, integrated gradients) of every element of the pair."""
    elements = pair_elements(text.ids, inputs, text.special_ids)
    match, cosine, match_effect, cosine_effect = occlusion(model, text, inputs, elements)
    grads = integrated_gradients(model, text, inputs, elements, steps) if gradients else (None, None)
    return Attribution(tuple(elements), element_labels(elements, text, inputs, names), match, cosine,
                       match_effect, cosine_effect, *grads)
