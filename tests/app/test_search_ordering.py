"""The Search page says, in one line above the results, which ordering the search used."""

from __future__ import annotations

import pytest

from actbert.rerank_policy import POLICY_NAME, make_policy, write_policy
from indexer.index.search import Searcher
from indexer.library.store import Library
from tests.app.tiny_library import build_tiny_library

QUERY = "crack an egg into the bowl"


@pytest.fixture(scope="module")
def library_dir(tmp_path_factory):
    return build_tiny_library(tmp_path_factory.mktemp("ordering_library"))


def _order_lines(at) -> list[str]:
    return [str(c.value) for c in at.caption if str(c.value).startswith("Order: ")]


@pytest.mark.parametrize("helps", [None, True, False])
def test_search_page_shows_the_ordering(library_dir, app_for, helps):
    checkpoint = library_dir / "models" / "actbert"
    (checkpoint / POLICY_NAME).unlink(missing_ok=True)
    if helps is not None:
        r1 = (7.4, 14.8) if helps else (14.8, 7.4)
        write_policy(checkpoint, make_policy("val", *r1, [-1.0, 2.0], 5, 12, "c.jsonl", checkpoint))
    at = app_for(library_dir, q=QUERY).run()
    assert not at.exception and not at.error
    expected = Searcher(Library(library_dir, readonly=True)).search(QUERY, k=12)
    assert _order_lines(at) == [f"Order: {expected.ordering}"]
    assert ("matching head rerank of the top 5 (auto" in expected.ordering) == bool(helps)
    # The line comes before the first result card.
    elements = [e for e in at.main if e.type in ("caption", "button")]
    first_card = next(i for i, e in enumerate(elements) if getattr(e, "label", "") == "Open clip")
    order_line = next(i for i, e in enumerate(elements)
                      if e.type == "caption" and str(e.value).startswith("Order: "))
    assert order_line < first_card
