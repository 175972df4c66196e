"""Distant supervision from a task's step list (Lin et al., CVPR 2022, "Learning To Recognize
Procedural Activities with Distant Supervision"; CrossTask's weak supervision, Zhukov et al. 2019).

CrossTask gives, for each task, the list of its steps (from wikiHow): which steps the task has,
never when a video shows them nor which videos do. Lin et al. pair each ASR sentence with the step
of that list its text is closest to (a sentence encoder) and train on the step's description as a
distant label. Here the list of a task is the distinct step descriptions of the training videos of
that task (timing and per-video presence unused), each narrated clip's narration is matched to its
own task's list by MiniLM sentence embeddings, and a clip whose best match reaches ``threshold``
gets that description as its *step text*. A pretraining row then reads the step text instead of the
narration with probability ``share`` (drawn per epoch): the text stream also sees the vocabulary
of the step descriptions people search with, while the pairing stays as noisy as the narration
it comes from (a line said before its step is matched to its step and shown with the wrong clip).

Pure functions over plain data (the encoder is any ``encode(texts) -> (N, D) unit vectors``), and
``corpus_step_texts``: a corpus' lists and step texts with MiniLM, what ``actbert train`` and
``actbert train-dual`` call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..corpus import Corpus, reads_step_text  # noqa: F401  (the per-epoch draw, ClipGroups')
from ..sentence_encoder import MiniLMEncoder

Encode = Callable[[Sequence[str]], np.ndarray]


def task_step_lists(corpus: Corpus) -> dict[str, tuple[str, ...]]:
    """Each task's step list: the distinct step descriptions of its videos in ``corpus``, in order
    of first appearance (videos in corpus order, steps in time order). Videos without a task or
    without ground-truth steps add nothing."""
    lists: dict[str, dict[str, None]] = {}
    for video in corpus.videos:
        if video.task is None:
            continue
        for step in sorted(video.steps, key=lambda s: float(s["start_sec"])):
            lists.setdefault(video.task, {})[str(step["description"])] = None
    return {task: tuple(steps) for task, steps in lists.items() if steps}


def match_sentences(sentences: Sequence[str], steps: Sequence[str], encode: Encode,
                    threshold: float) -> list[str | None]:
    """For each sentence, the step of ``steps`` with the highest cosine to it when that cosine is
    at least ``threshold`` (ties: the earlier step), else None; an empty sentence gets None."""
    if not sentences:
        return []
    if not steps:
        return [None] * len(sentences)
    cosine = encode(list(sentences)) @ encode(list(steps)).T  # (S, K): unit vectors
    best = np.argmax(cosine, axis=1)
    return [steps[int(k)] if sentence and cosine[i, k] >= threshold else None
            for i, (sentence, k) in enumerate(zip(sentences, best))]


def step_texts(corpus: Corpus, step_lists: dict[str, tuple[str, ...]], encode: Encode,
               threshold: float) -> dict[tuple[int, int], str]:
    """``{(video index in corpus, clip index): step text}`` for every narrated clip whose
    narration matches a step of its video's task list (``match_sentences``)."""
    out: dict[tuple[int, int], str] = {}
    for vi, video in enumerate(corpus.videos):
        steps = step_lists.get(video.task or "", ())
        clips = video.narrated_clips()
        matched = match_sentences([video.narrations[c] or "" for c in clips], steps, encode, threshold)
        out.update({(vi, c): text for c, text in zip(clips, matched) if text is not None})
    return out


def corpus_step_texts(corpus: Corpus, threshold: float, where: str
                      ) -> tuple[dict[str, tuple[str, ...]], dict[tuple[int, int], str]]:
    """The tasks' step lists of ``corpus`` and its clips' step texts matched by MiniLM;
    ``ValueError`` naming ``where`` when no video has a task and ground-truth steps."""
    lists = task_step_lists(corpus)
    if not lists:
        raise ValueError(f"{where}: step lists need videos with a task and ground-truth steps "
                         "(their descriptions are the tasks' step lists)")
    return lists, step_texts(corpus, lists, MiniLMEncoder().encode, threshold)
