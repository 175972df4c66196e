"""Video captioning metrics (BLEU-1..4, METEOR, ROUGE-L, CIDEr-D) through ``pycocoevalcap``, the
maintained Python 3 port of the coco-caption toolkit that captioning papers (ActBERT's YouCook2
table included) report with.

- BLEU: corpus-level, brevity penalty over the whole corpus with the closest reference length.
- ROUGE-L: LCS-based F-measure with beta = 1.2, averaged over captions.
- CIDEr: coco-caption's CIDEr-D (document frequencies from the references, Gaussian length
  penalty with sigma = 6, clipped n-gram counts, times 10), averaged over captions.
- METEOR: METEOR 1.5 (``meteor-1.5.jar -l en -norm``), which needs Java.

Tokenisation: coco-caption's Stanford PTB tokenizer (Java) lowercases, splits punctuation and drops
punctuation tokens. Without Java, captions go through ``simple_tokenize`` (a Python approximation
of it: identical on plain words and common punctuation) and METEOR is left out (``None``, with the
reason in ``meteor_note``), never replaced by an approximation.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

log = logging.getLogger(__name__)

# Tokens coco-caption's PTB tokenizer step removes (after lowercasing, so "-lrb-" stays, as there).
PUNCTUATION = frozenset(["''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!",
                         ",", ":", "-", "--", "...", ";"])
_CONTRACTION = re.compile(r"(?i)\b(\w+)(n't|'s|'re|'ve|'ll|'d|'m)\b")
_PUNCT = re.compile(r"""(\.\.\.|--|[,;:!?"%$#]|(?<!\d)\.|\.(?!\d)|'(?!\w))""")
_BRACKETS = {"(": " -lrb- ", ")": " -rrb- ", "{": " -lcb- ", "}": " -rcb- ", "[": " -lsb- ",
             "]": " -rsb- "}


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
    rouge, _ = Rouge().compute_score(tok_refs, tok_hyps)
    cider, _ = Cider().compute_score(tok_refs, tok_hyps)
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
        meteor_note=note)
