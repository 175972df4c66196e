"""Video captioning metrics (BLEU-1..4, METEOR, ROUGE-L, CIDEr-D) through ``pycocoevalcap``, the
maintained Python 3 port of the coco-caption toolkit that captioning papers (ActBERT's YouCook2
table included) report with.

- BLEU: corpus-level, brevity penalty over the whole corpus with the closest reference length.
- ROUGE-L: LCS-based F-measure with beta = 1.2, averaged over captions.
- CIDEr: coco-caption's CIDEr-D (document frequencies from the references, Gaussian length
  penalty with sigma = 6, clipped n-gram counts, times 10), averaged over captions.
- METEOR: METEOR 1.5 (``meteor-1.5.jar -l en -norm``), which needs Java.

``CaptionUnits``: per-caption statistics from which the figures of any multiset of the captions
follow, for bootstrap intervals without rescoring each resample: BLEU re-aggregated from each
caption's clipped n-gram matches, n-gram counts and lengths (exactly the corpus BLEU of the
resample), ROUGE-L and CIDEr-D averaged per caption (CIDEr-D's document frequencies stay those of
the whole set). METEOR 1.5 is a corpus-level score only.

Tokenisation: coco-caption's Stanford PTB tokenizer (Java) lowercases, splits punctuation and drops
punctuation tokens. Without Java, captions go through ``simple_tokenize`` (a Python approximation
of it: identical on plain words and common punctuation) and METEOR is left out (``None``, with the
reason in ``meteor_note``), never replaced by an approximation.
"""

from __future__ import annotations

import logging
import math
import re
import shutil
import subprocess
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

log = logging.getLogger(__name__)

# Tokens coco-caption's PTB tokenizer step removes (after lowercasing, so "-lrb-" stays, as there).
PUNCTUATION = frozenset(["''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!",
                         ",", ":", "-", "--", "...", ";"])
_CONTRACTION = re.compile(r"(?i)\b(\w+)(n't|'s|'re|'ve|'ll|'d|'m)\b")
_PUNCT = re.compile(r"""(\.\.\.|--|[,;:!?"%$#]|(?<!\d)\.|\.(?!\d)|'(?!\w))""")
_BRACKETS = {"(": " -lrb- ", ")": " -rrb- ", "{": " -lcb- ", "}": " -rcb- ", "[": " -lsb- ",
             "]": " -rsb- "}


def corpus_bleu(correct: Sequence[float], guess: Sequence[float], testlen: float, reflen: float,
                tiny: float = 1e-15, small: float = 1e-9) -> list[float]:
    """coco-caption's corpus BLEU-1..n from statistics summed over captions: clipped n-gram
    matches, hypothesis n-gram counts, hypothesis and (closest) reference lengths."""
    bleus, product = [], 1.0
    for k, (c, g) in enumerate(zip(correct, guess)):
        product *= (float(c) + tiny) / (float(g) + small)
        bleus.append(product ** (1.0 / (k + 1)))
    ratio = (testlen + tiny) / (reflen + small)
    return [b * math.exp(1 - 1 / ratio) for b in bleus] if ratio < 1 else bleus


@dataclass(frozen=True)
class CaptionUnits:
    """Per-caption statistics (rows in the order of ``keys``): BLEU's ``correct`` and ``guess``
    (N, 4), ``testlen`` and ``reflen`` (N,) (the closest reference length), ``rouge_l`` and
    ``cider`` (N,), each caption's score."""

    keys: tuple
    correct: np.ndarray
    guess: np.ndarray
    testlen: np.ndarray
    reflen: np.ndarray
    rouge_l: np.ndarray
    cider: np.ndarray

    def figures(self, idx: np.ndarray) -> dict[str, float]:
        """BLEU-3, BLEU-4, ROUGE-L (percent) and CIDEr-D (raw) of the captions ``idx`` (repeats
        allowed): on every caption, the figures ``caption_scores`` reports."""
        bleu = corpus_bleu(self.correct[idx].sum(0), self.guess[idx].sum(0),
                           float(self.testlen[idx].sum()), float(self.reflen[idx].sum()))
        return {"bleu3": 100 * bleu[2], "bleu4": 100 * bleu[3],
                "rouge_l": 100 * float(self.rouge_l[idx].mean()), "cider": float(self.cider[idx].mean())}


def caption_units(tok_refs: dict, tok_hyps: dict, rouge_l: Sequence[float],
                  cider: Sequence[float]) -> CaptionUnits:
    """The ``CaptionUnits`` of tokenised captions (coco-caption's own n-gram counting)."""
    from pycocoevalcap.bleu.bleu_scorer import cook_refs, cook_test

    keys = tuple(tok_refs)
    comps = [cook_test(tok_hyps[k][0], cook_refs(tok_refs[k]), eff="closest") for k in keys]
    return CaptionUnits(
        keys=keys, correct=np.array([c["correct"] for c in comps], np.float64),
        guess=np.array([c["guess"] for c in comps], np.float64),
        testlen=np.array([c["testlen"] for c in comps], np.float64),
        reflen=np.array([c["reflen"] for c in comps], np.float64),
        rouge_l=np.asarray(rouge_l, np.float64), cider=np.asarray(cider, np.float64))


@dataclass(frozen=True)
class CaptionScores:
    """Corpus figures as fractions in [0, 1] (CIDEr-D in [0, 10]), coco-caption's scale.

    bleu: (BLEU-1, BLEU-2, BLEU-3, BLEU-4); meteor: None when it could not be computed, with the
    reason in ``meteor_note``; tokenizer: which tokenizer produced the tokens.
    """

    bleu: tuple[float, float, float, float]
    meteor: float | None
    rouge_l: float
    cider: float
    num_captions: int
    tokenizer: str
    meteor_note: str
    units: CaptionUnits | None = None

    @property
    def bleu3(self) -> float:
        return self.bleu[2]

    @property
    def bleu4(self) -> float:
        return self.bleu[3]

    def as_dict(self) -> dict:
        return {"bleu1": self.bleu[0], "bleu2": self.bleu[1], "bleu3": self.bleu[2],
                "bleu4": self.bleu[3], "meteor": self.meteor, "rouge_l": self.rouge_l,
                "cider": self.cider, "num_captions": self.num_captions, "tokenizer": self.tokenizer,
                "meteor_note": self.meteor_note}


@lru_cache(maxsize=1)
def java_available() -> bool:
    """True when a ``java`` executable is on PATH and runs."""
    if shutil.which("java") is None:
        return False
    try:
        return subprocess.run(["java", "-version"], capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def simple_tokenize(text: str) -> str:
    """Python approximation of coco-caption's tokenisation (Stanford PTBTokenizer -lowerCase, then
    punctuation dropped): lowercase; split off punctuation and English clitics (``don't`` -> ``do
    n't``, ``it's`` -> ``it 's``); brackets become ``-lrb-`` etc. (kept, as coco-caption keeps
    them); quotes and the punctuation in ``PUNCTUATION`` are dropped."""
    text = _CONTRACTION.sub(r"\1 \2", text.lower().replace("\n", " "))
    text = _PUNCT.sub(r" \1 ", text).translate(str.maketrans(_BRACKETS))
    return " ".join(t for t in text.split() if t not in PUNCTUATION and t != '"')


def _tokenize(captions: dict[Hashable, list[str]], use_java: bool) -> dict[Hashable, list[str]]:
    if use_java:
        from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

        return PTBTokenizer().tokenize({k: [{"caption": c} for c in v] for k, v in captions.items()})
    return {k: [simple_tokenize(c) for c in v] for k, v in captions.items()}


def _meteor(refs: dict, hyps: dict) -> tuple[float | None, str]:
    from pycocoevalcap.meteor.meteor import Meteor

    try:
        scorer = Meteor()
    except OSError as exc:
        return None, f"METEOR not computed: could not start Java ({exc})"
    try:
        score, _ = scorer.compute_score(refs, hyps)
    except (ValueError, OSError) as exc:  # the jar died (e.g. out of memory) and answered nothing
        if scorer.lock.locked():  # compute_score raised while holding it; __del__ needs it
            scorer.lock.release()
        return None, f"METEOR not computed: meteor-1.5.jar failed ({exc})"
    finally:
        del scorer  # its __del__ ends the Java process
    return float(score), "METEOR 1.5 (meteor-1.5.jar, -l en -norm)"


def caption_scores(references: Mapping[Hashable, Sequence[str]], hypotheses: Mapping[Hashable, str],
                   *, java: bool | None = None, meteor: bool = True) -> CaptionScores:
    """Score one generated caption per item against its reference captions.

    references: {item: [reference caption, ...]} (at least one each); hypotheses: {item: caption},
    same keys. ``java``: use the Java tokenizer and METEOR (default: when Java runs here).
    ``meteor=False`` skips METEOR (it loads a 60 MB paraphrase table: about 10 s).
    """
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    if set(references) != set(hypotheses):
        missing = set(references) ^ set(hypotheses)
        raise ValueError(f"references and hypotheses must have the same keys; differing: "
                         f"{sorted(map(str, missing))[:5]}")
    if not references:
        raise ValueError("no captions to score")
    refs = {k: [str(c) for c in v] for k, v in references.items()}
    empty = [k for k, v in refs.items() if not v]
    if empty:
        raise ValueError(f"items without reference captions: {sorted(map(str, empty))[:5]}")
    use_java = java_available() if java is None else java
    if use_java and not java_available():
        raise ValueError("java=True but no working `java` executable is on PATH")
    tok_refs = _tokenize(refs, use_java)
    tok_hyps = _tokenize({k: [str(hypotheses[k])] for k in refs}, use_java)

    bleu, _ = Bleu(4).compute_score(tok_refs, tok_hyps, verbose=0)
    rouge, rouge_each = Rouge().compute_score(tok_refs, tok_hyps)
    cider, cider_each = Cider().compute_score(tok_refs, tok_hyps)
    if not meteor:
        meteor_score, note = None, "METEOR not requested"
    elif not use_java:
        meteor_score, note = None, "METEOR not computed: METEOR 1.5 needs Java, which is not available"
    else:
        meteor_score, note = _meteor(tok_refs, tok_hyps)
    if meteor and meteor_score is None:
        log.warning("%s", note)
    return CaptionScores(
        bleu=tuple(float(b) for b in bleu), meteor=meteor_score, rouge_l=float(rouge),
        cider=float(cider), num_captions=len(refs),
        tokenizer="Stanford PTBTokenizer (coco-caption, Java)" if use_java else "simple_tokenize (Python)",
        meteor_note=note, units=caption_units(tok_refs, tok_hyps, rouge_each, cider_each))
