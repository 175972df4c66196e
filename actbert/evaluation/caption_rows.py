"""Captioning's rows of ``evaluate`` (paper 4.2.2): a transformer decoder (``captioner``) per
system trained on the train split's clips and step descriptions, scored against the held-out
clips' step descriptions (``captioning_metrics``), with chance's mean-of-draws row
(``chance.random_captions``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from . import chance
from .captioner import Captioner, CaptionerConfig
from .captioning_metrics import caption_scores
from .outcomes import Outcomes
from .tasks import captioned_clips

if TYPE_CHECKING:
    import numpy as np

    from ..tokenizer import ActBertTokenizer
    from .config import EvalConfig
    from .scorer import ModelScorer
    from .tasks import SplitClips


class Evaluation(Protocol):
    """What captioning reads of a run (``runners.Evaluation``, which calls it): a protocol, so that
    this module does not import the runner that imports it."""

    config: EvalConfig
    held: SplitClips
    train: SplitClips | None
    tokenizer: ActBertTokenizer
    notes: list[str]
    dual_encoder: object

    def scorer(self, system: str, split: SplitClips | None = None,
               use_regions: bool | None = None) -> ModelScorer: ...

    def _need_train(self, task: str, steps: bool = False) -> bool: ...

    def _train_clips(self) -> list[tuple[int, tuple[str, ...]]]: ...

    def _videos_of(self, clips) -> np.ndarray: ...

# captioning row -> (model, with regions): the paper's protocol has no region transformer (4.2.2)
CAPTION_SYSTEMS = {"actbert": ("actbert", False), "actbert_no_regions": ("actbert_no_regions", False),
                   "actbert_with_regions": ("actbert", True)}


def captioning_outcomes(run: Evaluation) -> dict:
    """{"captioning": Outcomes} of one run (``{}`` inside when the train split cannot train)."""
    test = captioned_clips(run.held)
    if not test:
        raise ValueError(f"split {run.held.name!r} has no clip that overlaps a step")
    references = {clip: list(refs) for clip, refs in test}
    clips = [clip for clip, _ in test]
    hypotheses = {}
    if run._need_train("captioning", steps=True):
        train = run._train_clips()
        captions = [refs[0] for _, refs in train]
        for system, (model_system, regions) in CAPTION_SYSTEMS.items():
            tr, te = (run.scorer(model_system, split, regions) for split in (run.train, None))
            memory = (lambda s: s.caption_memory) if regions else (lambda s: s.action_memory)
            captioner = Captioner(run.tokenizer, CaptionerConfig(
                epochs=run.config.caption_epochs, min_steps=run.config.caption_min_steps,
                seed=run.config.seed))
            captioner.fit(memory(tr)([c for c, _ in train]), captions)
            hypotheses[system] = dict(zip(clips, captioner.generate(memory(te)(clips))))
        if run.dual_encoder:
            run.notes.append("captioning: no dual_encoder row (the baseline is evaluated "
                             "where a cosine or a probe applies)")
        run.notes.append("captioning: actbert and actbert_no_regions follow the paper (4.2.2): "
                         "the action transformer alone encodes the clip (no region inputs; "
                         "memory = the [ACT] hidden state); actbert_with_regions adds the "
                         "region inputs and the pooled region output to the memory")
    figures, meteor = {}, {}
    for system, hyps in hypotheses.items():
        scores = caption_scores(references, hyps, meteor=run.config.meteor)
        figures[system] = scores.units.figures
        meteor[system] = {"meteor": None if scores.meteor is None else 100 * scores.meteor}
    if not hypotheses:
        return {"captioning": {}}
    figures["random"], _ = chance.random_captions(references, captions, run.config.seed)
    meteor["random"] = {"meteor": None}
    run.notes.append(f"captioning: BLEU, METEOR, ROUGE-L in percent, CIDEr-D raw; "
                     f"{scores.tokenizer}; {scores.meteor_note}; intervals resample the "
                     f"videos of the {len(clips)} captions (BLEU re-aggregated exactly; "
                     "ROUGE-L and CIDEr-D averaged per caption, CIDEr-D with the whole set's "
                     "document frequencies); METEOR has none (a corpus-level score)")
    return {"captioning": Outcomes(len(clips), "captions", figures, run._videos_of(clips),
                                   fixed=meteor)}
