import pytest

from actbert.tokenizer import ActBertTokenizer


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
