"""Distant supervision from the tasks' step lists (actbert/pretraining/step_list.py): the lists, the
matching of narrations to them (against a bag-of-words encoder computed by hand, and MiniLM on
clear cases), the rows that read a step text, and a training run that uses them."""

from dataclasses import replace

import numpy as np
import pytest

from actbert.corpus import ClipGroups, read_corpus, write_corpus
from actbert.pretraining.step_list import match_sentences, reads_step_text, step_texts, task_step_lists
from actbert.pretraining.train import TrainConfig, distant_supervision, train

from .corpus_helpers import make_corpus


def bag_of_words(vocabulary):
    """A unit-vector bag-of-words encoder: the cosine of two texts is computable by hand."""
    def encode(texts):
        out = np.zeros((len(texts), len(vocabulary)))
        for i, text in enumerate(texts):
            for word in text.split():
                if word in vocabulary:
                    out[i, vocabulary.index(word)] += 1
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1, norms)
    return encode


def with_steps(corpus_path):
    """The helper corpus with ground-truth steps: task0's videos cut, task1's pour."""
    corpus = read_corpus(corpus_path)
    videos = []
    for v in corpus.videos:
        steps = ({"start_sec": 0.0, "end_sec": 4.0, "description": "cut the tomato", "verb": "cut"},
                 {"start_sec": 4.0, "end_sec": 8.0, "description": "peel the carrot", "verb": "peel"}) \
            if v.task == "task0" else \
            ({"start_sec": 0.0, "end_sec": 4.0, "description": "pour the milk", "verb": "pour"},)
        videos.append(replace(v, steps=steps))
    write_corpus(corpus_path, videos, list(corpus.verbs), list(corpus.region_classes))
    return read_corpus(corpus_path)


def test_a_tasks_list_is_its_videos_distinct_descriptions_in_time_order(tmp_path):
    corpus = with_steps(make_corpus(tmp_path, videos=4, clips=4))
    assert task_step_lists(corpus) == {"task0": ("cut the tomato", "peel the carrot"),
                                       "task1": ("pour the milk",)}
    later = replace(corpus.videos[0], steps=tuple(reversed(corpus.videos[0].steps)))
    assert task_step_lists(replace(corpus, videos=(later,)))["task0"] == ("cut the tomato", "peel the carrot")
    assert task_step_lists(replace(corpus, videos=(replace(later, task=None),))) == {}


def test_sentences_match_the_closest_step_above_the_threshold_by_hand():
    encode = bag_of_words(["cut", "the", "tomato", "peel", "carrot", "now", "subscribe"])
    steps = ["cut the tomato", "peel the carrot"]
    # cosines by hand: "now cut the tomato" vs step 0 = 3 / (2 x sqrt 3) = 0.866, vs step 1 = 1/(2 sqrt 3)
    # "the" alone: 1/sqrt 3 = 0.577 with both (tie: the earlier step); "subscribe": 0 with both
    got = match_sentences(["now cut the tomato", "peel carrot", "the", "subscribe", ""], steps, encode, 0.5)
    assert got == ["cut the tomato", "peel the carrot", "cut the tomato", None, None]
    assert match_sentences(["the"], steps, encode, 0.6) == [None]  # 0.577 < 0.6
    assert match_sentences(["now cut the tomato"], [], encode, 0.0) == [None]
    assert match_sentences([], steps, encode, 0.0) == []


def test_minilm_matches_asr_narrations_to_their_steps_and_not_chatter():
    from actbert.sentence_encoder import MiniLMEncoder

    steps = ["crack an egg into the bowl", "whisk the eggs", "pour the eggs into the pan"]
    got = match_sentences(["um now crack an ag into the ball", "give the eggs a quick whisk",
                           "don't forget to like and subscribe"], steps, MiniLMEncoder().encode, 0.4)
    assert got == ["crack an egg into the bowl", "whisk the eggs", None]


def test_rows_read_their_step_text_with_the_share_per_epoch(tmp_path):
    corpus = with_steps(make_corpus(tmp_path, videos=6, clips=4))
    encode = bag_of_words(["cut", "the", "tomato", "peel", "carrot", "pour", "milk"])
    texts = step_texts(corpus, task_step_lists(corpus), encode, 0.9)
    # make_corpus narrates "now <verb> the <noun>"; only verbs of the video's own task's list match
    for (vi, c), text in texts.items():
        assert corpus.videos[vi].narrations[c].endswith(text.split(" ", 1)[1])
        assert text in task_step_lists(corpus)[corpus.videos[vi].task]
    expected = {(vi, c) for vi, v in enumerate(corpus.videos) for c, n in enumerate(v.narrations)
                if n.split()[1:] in ([["cut", "the", "tomato"], ["peel", "the", "carrot"]]
                                     if v.task == "task0" else [["pour", "the", "milk"]])}
    assert set(texts) == expected and texts
    data = ClipGroups(corpus, clips_per_sample=2, seed=3)
    plain = [data[i][1].sentences for i in range(len(data))]
    data.step_texts = texts
    data.step_share = 1.0
    for i in range(len(data)):
        vi, _, group = data.items[i]
        assert data[i][1].sentences == tuple(texts.get((vi, c), s) for c, s in zip(group, plain[i]))
    data.step_share = 0.5
    draws = [reads_step_text(3, epoch, i, k, 0.5) for epoch in range(40) for i in range(len(data))
             for k in range(2)]
    assert 0.4 < np.mean(draws) < 0.6
    assert draws == [reads_step_text(3, epoch, i, k, 0.5) for epoch in range(40)
                     for i in range(len(data)) for k in range(2)]  # deterministic
    assert not reads_step_text(3, 0, 0, 0, 0.0)


def test_training_with_step_lists_runs_and_refuses_a_corpus_without_steps(tmp_path):
    corpus = make_corpus(tmp_path / "plain", videos=6, clips=4)
    base = dict(preset="tiny", clips_per_sample=2, batch_size=4, steps=3, warmup_steps=1,
                progress=False, step_list_share=0.5)
    with pytest.raises(ValueError, match="ground-truth steps"):
        train(TrainConfig(corpus=str(corpus), out=str(tmp_path / "no"), **base))
    stepped = make_corpus(tmp_path / "stepped", videos=6, clips=4)
    with_steps(stepped)
    summary = train(TrainConfig(corpus=str(stepped), out=str(tmp_path / "run"), **base))
    assert summary["steps"] == 3 and np.isfinite(summary["final"]["total"])
    data = ClipGroups(read_corpus(stepped), clips_per_sample=2)
    distant_supervision(data, TrainConfig(corpus=str(stepped), out="", step_list_share=1.0,
                                          step_list_threshold=0.5))
    assert data.step_share == 1.0 and data.step_texts  # MiniLM matched "now cut the tomato" ...
    with pytest.raises(ValueError, match="share"):
        distant_supervision(data, TrainConfig(corpus=str(stepped), out="", step_list_share=1.5))
