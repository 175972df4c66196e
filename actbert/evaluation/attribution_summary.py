"""``evaluate --tasks attribution``: what the matching score depends on, over a split's queries.

The pairs are the retrieval task's: each ground-truth step description with its target clip
(``tasks.retrieval_queries``), at most ``pairs`` of them (a seeded sample, in query order). For
each pair, ``actbert.attribution`` and ``actbert.faithfulness`` give:

- the occlusion effect of every element on the match probability, and each head's faithfulness
  (Spearman of its attention with the drops; the rollout's likewise) -> ``grid`` and ``rollout``:
  their means over the pairs (a cell is the mean over the pairs where it is defined; ``grid_pairs``
  counts them);
- the drop of the match probability and of the embedding cosine when EVERY element of a stream is
  removed at once (``attribution.kind_drops``: all words -> [MASK], all regions masked, the action
  slot emptied) -> ``stream_drop[signal][stream]``, the mean over the pairs that have that stream,
  with a 95% bootstrap interval that resamples whole videos (``intervals``), and
  ``depends_most``: the stream whose removal costs the match probability most.

Not a table of systems and metrics: the result's ``attribution`` entry is ``AttributionSummary``'s
JSON, drawn by the report card and the Model page (``actbert.reporting.figures.attribution_figures``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..attribution import PairText, kind_drops, occlusion
from ..data import pair_elements
from ..faithfulness import faithfulness, pair_attentions
from .intervals import bootstrap
from .tasks import SplitClips, retrieval_queries

PAIRS = 100
SIGNALS = ("match", "similarity")
STREAMS = ("words", "regions", "action")  # the kinds of ``attribution.KINDS``, in the order shown


@dataclass(frozen=True)
class AttributionSummary:
    """Means over the sampled (description, true clip) pairs (module docstring). ``grid``
    (blocks, heads) and ``grid_pairs`` as ``faithfulness.Faithfulness`` lays them out (None: no
    pair defines the cell); ``stream_drop`` / ``stream_ci`` by signal (match, similarity) and
    stream (words, regions, action); ``sample``: the pairs, as ``{"video_id", "clip", "query"}``."""

    system: str
    pairs: int
    of_pairs: int
    seed: int
    blocks: list[str]
    grid: list[list[float | None]]
    grid_pairs: list[list[int]]
    rollout: float | None
    rollout_pairs: int
    stream_drop: dict[str, dict[str, float | None]]
    stream_ci: dict[str, dict[str, list[float] | None]]
    stream_pairs: dict[str, int]
    depends_most: str | None
    sample: list[dict]

    @property
    def grid_range(self) -> tuple[float, float] | None:
        """(lowest, highest) mean faithfulness of a head (None: no cell defined)."""
        values = [v for row in self.grid for v in row if v is not None]
        return (min(values), max(values)) if values else None

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "AttributionSummary":
        return cls(**{k: data[k] for k in cls.__dataclass_fields__})


def sampled_queries(held: SplitClips, pairs: int, seed: int) -> tuple[list, int]:
    """(at most ``pairs`` retrieval queries, in query order, a seeded sample; how many there were)."""
    queries = retrieval_queries(held)
    if len(queries) > pairs:
        rng = np.random.default_rng([seed, 26])
        keep = np.sort(rng.choice(len(queries), pairs, replace=False))
        return [queries[i] for i in keep], len(queries)
    return queries, len(queries)


def _mean(values: np.ndarray) -> float | None:
    values = values[np.isfinite(values)]
    return float(values.mean()) if len(values) else None


def summarize(model, tokenizer, held: SplitClips, pairs: int = PAIRS, seed: int = 0,
              system: str = "actbert", resamples: int = 1000) -> AttributionSummary:
    """Attribution and faithfulness of ``model`` over a sample of ``held``'s query pairs."""
    queries, total = sampled_queries(held, pairs, seed)
    if not queries:
        raise ValueError(f"split {held.name!r} has no ground-truth step that overlaps a clip")
    grids, rollouts, blocks = [], [], None
    drops = {s: {k: [] for k in STREAMS} for s in SIGNALS}
    sample = []
    for q in queries:
        text = PairText.encode(tokenizer, q.description)
        inputs = held.inputs(q.target, model.config.max_regions)
        elements = pair_elements(text.ids, inputs, text.special_ids)
        _, _, match_effect, _ = occlusion(model, text, inputs, elements)
        faith = faithfulness(pair_attentions(model, text, inputs), elements, -match_effect,
                             model.config.match_input)
        blocks = blocks or list(faith.blocks)
        grids.append(faith.grid)
        rollouts.append(faith.rollout)
        for kind, (match, cosine) in kind_drops(model, text, inputs).items():
            drops["match"][kind].append(match)
            drops["similarity"][kind].append(cosine)
        clip = held.clips[q.target]
        sample.append({"video_id": held.corpus.videos[clip.video].video_id, "clip": clip.index,
                       "query": q.description})
    stacked = np.stack(grids)                       # (pairs, blocks, heads)
    defined = np.isfinite(stacked)
    grid_sum = np.where(defined, stacked, 0.0).sum(0)
    counts = defined.sum(0)
    grid = [[float(s / n) if n else None for s, n in zip(row_s, row_n)]
            for row_s, row_n in zip(grid_sum, counts)]
    arrays = {s: {k: np.asarray(v, np.float64) for k, v in by.items()} for s, by in drops.items()}
    videos = np.array([q.video for q in queries])

    def figures(idx: np.ndarray) -> dict[str, float]:
        out = {}
        for signal, by_kind in arrays.items():
            for kind, values in by_kind.items():
                mean = _mean(values[idx])
                out[f"{signal}:{kind}"] = np.nan if mean is None else mean
        return out

    # an interval only where every resample has pairs of that stream
    boot = {k: v if np.isfinite(v).all() else None for k, v in bootstrap(
        {system: figures}, len(queries), seed=[seed, 26], resamples=resamples,
        groups=videos).intervals()[system].items()}
    stream_drop = {s: {k: _mean(arrays[s][k]) for k in STREAMS} for s in SIGNALS}
    match = {k: v for k, v in stream_drop["match"].items() if v is not None}
    return AttributionSummary(
        system=system, pairs=len(queries), of_pairs=total, seed=seed, blocks=blocks,
        grid=grid, grid_pairs=counts.astype(int).tolist(), rollout=_mean(np.asarray(rollouts)),
        rollout_pairs=int(np.isfinite(rollouts).sum()), stream_drop=stream_drop,
        stream_ci={s: {k: boot.get(f"{s}:{k}") for k in STREAMS} for s in SIGNALS},
        stream_pairs={k: int(np.isfinite(arrays["match"][k]).sum()) for k in STREAMS},
        depends_most=max(match, key=match.get) if match else None, sample=sample)


def note(summary: AttributionSummary) -> str:
    """One line for the result's notes."""
    sampled = (f"a seeded sample of {summary.pairs} of the {summary.of_pairs}"
               if summary.pairs < summary.of_pairs else f"all {summary.pairs}")
    low_high = summary.grid_range
    spread = f"head faithfulness from {low_high[0]:+.2f} to {low_high[1]:+.2f}" if low_high else \
        "no head faithfulness defined"
    drops = ", ".join(f"{k} {v:.3f}" for k, v in summary.stream_drop["match"].items() if v is not None)
    return (f"attribution: {sampled} (step description, true clip) pairs (--attribution-pairs); "
            f"{spread}; mean match drop with a stream removed: {drops}; the match depends most on "
            f"{summary.depends_most}")


def table_lines(summary: AttributionSummary) -> list[str]:
    """The summary as the text table's lines (``evaluate`` without ``--json``)."""
    lines = [f"attribution ({summary.system}, {summary.pairs} of {summary.of_pairs} pairs)"]
    for signal, by_stream in summary.stream_drop.items():
        shown = ", ".join(
            f"{stream} {v:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if (ci := summary.stream_ci[signal][stream]) else "")
            for stream, v in by_stream.items() if v is not None)
        lines.append(f"  {signal} drop, stream removed: {shown}")
    low_high = summary.grid_range
    if low_high:
        lines.append(f"  head faithfulness (Spearman, mean over pairs) {low_high[0]:+.2f} .. "
                     f"{low_high[1]:+.2f}; rollout "
                     + (f"{summary.rollout:+.2f}" if summary.rollout is not None else "undefined"))
    for block, row in zip(summary.blocks, summary.grid):
        lines.append(f"  {block:<12} " + " ".join("  .  " if v is None else f"{v:+.2f}" for v in row))
    return lines
