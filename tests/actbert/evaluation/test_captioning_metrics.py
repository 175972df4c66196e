"""Captioning metrics (pycocoevalcap through our wrapper) against independent references: sacrebleu
for BLEU, hand-computed ROUGE-L and METEOR 1.5 values, and a naive CIDEr-D written from its
definition (Vedantam et al. 2015, section 4: tf-idf n-gram vectors, df from the references,
clipped hypothesis counts, Gaussian length penalty sigma = 6, times 10)."""

import math
from collections import Counter

import pytest
import sacrebleu

from actbert.evaluation.captioning_metrics import (_tokenize, caption_scores, java_available,
                                                   simple_tokenize)

REFS = {
    "a": ["a man is slicing a tomato on a board", "someone cuts a red tomato"],
    "b": ["a woman pours water into a pot", "water is poured into the pot"],
    "c": ["the chef stirs the soup in a pot", "a man is stirring soup"],
    "d": ["a person spreads butter on bread", "butter is spread on a slice of bread"],
}
HYPS = {
    "a": "a man is cutting a tomato",
    "b": "a woman pours water into the pot",
    "c": "a man stirs the soup",
    "d": "a person is spreading butter on the bread",
}


@pytest.fixture(scope="module")
def scores():
    return caption_scores(REFS, HYPS, java=False)


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_bleu_matches_sacrebleu(scores, order):
    keys = sorted(REFS)
    bleu = sacrebleu.metrics.BLEU(tokenize="none", smooth_method="none", max_ngram_order=order,
                                  effective_order=False)
    ref_streams = [[REFS[k][i] for k in keys] for i in range(2)]
    expected = bleu.corpus_score([HYPS[k] for k in keys], ref_streams).score / 100
    assert scores.bleu[order - 1] == pytest.approx(expected, abs=1e-6)


def test_bleu_hand_computed_brevity_penalty():
    # Hypothesis of 4 words, closest reference 6 words: every n-gram matches, BP = exp(1 - 6/4).
    s = caption_scores({0: ["the cat sat on the mat"]}, {0: "the cat sat on"}, java=False, meteor=False)
    assert s.bleu4 == pytest.approx(math.exp(1 - 6 / 4), abs=1e-6)
    assert s.bleu3 == pytest.approx(math.exp(1 - 6 / 4), abs=1e-6)


def test_rouge_l_hand_computed():
    # LCS("the cat on the mat", "the cat sat on the mat") = 5: P = 1, R = 5/6, beta = 1.2.
    p, r, b2 = 1.0, 5 / 6, 1.2 ** 2
    first = (1 + b2) * p * r / (r + b2 * p)
    # LCS("a dog runs", "the cat sat") = 0.
    s = caption_scores({0: ["the cat sat on the mat"], 1: ["the cat sat"]},
                       {0: "the cat on the mat", 1: "a dog runs"}, java=False, meteor=False)
    assert s.rouge_l == pytest.approx((first + 0.0) / 2, abs=1e-9)


def _ngrams(words, n):
    return Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))


def naive_cider_d(refs, hyps, sigma=6.0):
    keys = list(refs)
    log_n = math.log(len(keys))
    df = Counter()
    for k in keys:
        df.update({g for r in refs[k] for n in range(1, 5) for g in _ngrams(r.split(), n)})

    def vector(words, n):
        return {g: tf * (log_n - math.log(max(1.0, df[g]))) for g, tf in _ngrams(words, n).items()}

    total = 0.0
    for k in keys:
        hyp = hyps[k].split()
        item = 0.0
        for n in range(1, 5):
            vh = vector(hyp, n)
            per_ref = []
            for ref in refs[k]:
                vr = vector(ref.split(), n)
                dot = sum(min(v, vr.get(g, 0.0)) * vr.get(g, 0.0) for g, v in vh.items())
                norm_h = math.sqrt(sum(v * v for v in vh.values()))
                norm_r = math.sqrt(sum(v * v for v in vr.values()))
                sim = dot / (norm_h * norm_r) if norm_h and norm_r else 0.0
                per_ref.append(sim * math.exp(-((len(hyp) - len(ref.split())) ** 2) / (2 * sigma ** 2)))
            item += sum(per_ref) / len(per_ref)
        total += 10.0 * item / 4
    return total / len(keys)


def test_cider_d_matches_its_definition(scores):
    assert scores.cider == pytest.approx(naive_cider_d(REFS, HYPS), rel=1e-9)
    assert scores.cider > 0


def test_without_java_meteor_is_omitted_not_approximated(scores):
    assert scores.meteor is None
    assert "needs Java" in scores.meteor_note
    assert scores.tokenizer.startswith("simple_tokenize")
    assert set(scores.as_dict()) >= {"bleu3", "bleu4", "meteor", "rouge_l", "cider"}


def test_simple_tokenize_like_coco_caption():
    assert simple_tokenize("A man's cutting the onions, then he doesn't stop.") == \
        "a man 's cutting the onions then he does n't stop"
    assert simple_tokenize('Add salt (to taste): "pour 1.5 cups"!') == \
        "add salt -lrb- to taste -rrb- pour 1.5 cups"


def test_bad_input():
    with pytest.raises(ValueError, match="same keys"):
        caption_scores({0: ["a"]}, {1: "a"}, java=False)
    with pytest.raises(ValueError, match="without reference"):
        caption_scores({0: []}, {0: "a"}, java=False)


needs_java = pytest.mark.skipif(not java_available(), reason="needs a Java runtime (METEOR, PTB tokenizer)")


@needs_java
def test_python_tokenizer_agrees_with_stanford_ptb():
    sentences = ["A man's cutting the onions, then he doesn't stop.", "Add salt & pepper (to taste)!",
                 "Stir it -- well... ok?", "pour 1.5 cups of water; mix", 'he said "hello" to them',
                 "it's 50% done", "Cook for 3-4 minutes."]
    java = _tokenize({i: [s] for i, s in enumerate(sentences)}, use_java=True)
    assert [java[i][0] for i in range(len(sentences))] == [simple_tokenize(s) for s in sentences]


@needs_java
@pytest.mark.slow
def test_meteor_1_5_hand_computed():
    # Same 6 words in another order: P = R = 1 (so Fmean = 1 whatever the function-word weights),
    # 3 chunks ("the mat", "sat on", "the cat") over 6 matches; METEOR 1.5 English parameters
    # gamma = 0.6, beta = 0.2 (Denkowski & Lavie 2014): 1 - 0.6 * (3 / 6) ** 0.2.
    s = caption_scores({0: ["the cat sat on the mat"]}, {0: "the mat sat on the cat"}, java=True)
    assert s.meteor == pytest.approx(1 - 0.6 * 0.5 ** 0.2, abs=1e-6)
    assert s.meteor_note.startswith("METEOR 1.5")
    assert s.tokenizer.startswith("Stanford")


def test_caption_units_give_the_figures_of_every_resample():
    """The bootstrap's per-caption statistics: on all captions they give the reported figures; on a
    resample (repeats included) BLEU and ROUGE-L equal scoring that resampled corpus from scratch
    (each repeat a caption of its own), CIDEr-D the mean of the captions' scores."""
    import numpy as np

    full = caption_scores(REFS, HYPS, java=False, meteor=False)
    units = full.units
    assert units.keys == tuple(REFS)
    everything = units.figures(np.arange(len(REFS)))
    assert everything == pytest.approx({"bleu3": 100 * full.bleu3, "bleu4": 100 * full.bleu4,
                                        "rouge_l": 100 * full.rouge_l, "cider": full.cider}, rel=1e-12)
    draw = np.array([0, 0, 2, 3])  # "a" twice, "b" left out
    keys = [units.keys[i] for i in draw]
    again = caption_scores({n: REFS[k] for n, k in enumerate(keys)}, {n: HYPS[k] for n, k in enumerate(keys)},
                           java=False, meteor=False)
    resampled = units.figures(draw)
    assert resampled["bleu3"] == pytest.approx(100 * again.bleu3, rel=1e-12)
    assert resampled["bleu4"] == pytest.approx(100 * again.bleu4, rel=1e-12)
    assert resampled["rouge_l"] == pytest.approx(100 * again.rouge_l, rel=1e-12)
    assert resampled["cider"] == pytest.approx(units.cider[draw].mean(), rel=1e-12)
    assert resampled["bleu4"] != pytest.approx(everything["bleu4"])  # the draw changed the figure
