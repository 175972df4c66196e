import pytest

from actbert.tokenizer import ActBertTokenizer, share_budget


@pytest.fixture(scope="module")
def tok():
    return ActBertTokenizer(max_length=12)


def test_wordpieces_and_special_tokens(tok):
    # "unaffable" is BERT's own WordPiece example (google-research/bert README).
    enc = tok("Unaffable chefs [ACT] slice onions")
    assert enc.tokens[0] == ["[CLS]", "una", "##ffa", "##ble", "chefs", "[ACT]", "slice",
                             "onions", "[SEP]"]
    assert enc.ids[0, 0].item() == 101 and enc.ids[0, -1].item() == 102
    assert tok.vocab_size == 30522 and tok.act_id == 1 and tok.region_id == 2


def test_truncation_keeps_the_start_and_ends_with_sep(tok):
    enc = tok("one two three four five six seven eight nine ten eleven twelve thirteen")
    assert enc.ids.shape == (1, 12)
    assert enc.tokens[0][:3] == ["[CLS]", "one", "two"] and enc.tokens[0][-1] == "[SEP]"
    assert enc.tokens[0][-2] == "ten"


def test_batch_padding_to_longest(tok):
    enc = tok(["pour", "stir the soup"])
    assert enc.ids.shape == (2, 5)
    assert enc.mask.tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]
    assert enc.ids[0, 3:].tolist() == [0, 0]
    assert tok.decode(enc.ids[1].tolist()) == "stir the soup"


def test_share_budget_by_hand():
    assert share_budget([3, 10, 10], 15) == [3, 6, 6]      # the short one keeps all, the rest share
    assert share_budget([3, 10, 10], 16) == [3, 7, 6]      # the remainder goes to the earliest
    assert share_budget([3, 10, 10], 100) == [3, 10, 10]
    assert share_budget([5, 5], 3) == [2, 1]
    assert share_budget([0, 8], 5) == [0, 5]
    assert share_budget([], 5) == []
    with pytest.raises(ValueError):
        share_budget([1], -1)


def test_clip_groups_get_a_segment_and_sep_per_clip(tok):
    enc = tok.encode_groups([["cut the tomato", "", "pour the milk"], ["stir"]])
    assert enc.tokens[0] == ["[CLS]", "cut", "the", "tomato", "[SEP]", "pour", "the", "milk", "[SEP]"]
    assert enc.segments[0].tolist() == [0, 0, 0, 0, 0, 2, 2, 2, 2]  # an empty narration adds nothing
    assert enc.tokens[1] == ["[CLS]", "stir", "[SEP]"] and enc.mask[1].tolist() == [1, 1, 1] + [0] * 6
    empty = tok.encode_groups([["", ""]])
    assert empty.tokens[0] == ["[CLS]", "[SEP]"]
