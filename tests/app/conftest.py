"""Fixtures of the app tests: tiny libraries (see tiny_library.py: real videos, catalog and index;
RANDOM features and model weights, for UI tests only) and an AppTest factory."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.app.tiny_library import build_tiny_library

APP = Path(__file__).resolve().parents[2] / "app" / "streamlit_app.py"
SHIPPED_MODEL = Path(__file__).resolve().parents[2] / "assets" / "demo" / "actbert"


@pytest.fixture(scope="session")
def tiny_library(tmp_path_factory) -> Path:
    """A stack-mode (paper) tiny library with two SynthKitchen videos."""
    return build_tiny_library(tmp_path_factory.mktemp("tiny_library"))


@pytest.fixture(scope="session")
def paddle_library(tmp_path_factory, tiny_library) -> Path:
    """The same videos with a kv_fusion="paddle" model (no injected attention maps)."""
    return build_tiny_library(tmp_path_factory.mktemp("paddle_library"), corpus=tiny_library / "corpus",
                              kv_fusion="paddle")


@pytest.fixture(scope="session")
def shipped_library(tmp_path_factory, tiny_library) -> Path:
    """The same videos served by the shipped demo model (assets/demo/actbert: 12 text heads, 4 action
    and region heads, 6 tangled heads) on random features of its widths."""
    return build_tiny_library(tmp_path_factory.mktemp("shipped_library"), corpus=tiny_library / "corpus",
                              model=SHIPPED_MODEL)


@pytest.fixture(scope="session")
def evaluated_library(tmp_path_factory, tiny_library) -> Path:
    """The same videos with a model that has a training record and an evaluation beside it, made by
    the real commands: a ``tiny`` model and its no-regions ablation trained for a few steps on the
    synthetic evaluation corpus (the fixture's feature widths), evaluated by ``actbert evaluate``
    on that corpus's test split (which writes ``evaluation_test.json``, and the report page into
    ``ROOT/report``); the library's index is rebuilt with that model. Random quality: for UI tests only."""
    from actbert.cli import main
    from indexer.index.embed import set_library_model
    from indexer.index.search import build_index
    from indexer.library.store import Library
    from tests.actbert.corpus_helpers import make_eval_corpus

    root = build_tiny_library(tmp_path_factory.mktemp("evaluated_library"),
                              corpus=tiny_library / "corpus")
    corpus = make_eval_corpus(root / "eval_corpus", train_videos=4, test_videos=3)
    runs = root / "models"
    for name, extra in (("run", []), ("run_no_regions", ["--no-regions"])):
        assert main(["train", "--corpus", str(corpus), "--out", str(runs / name), "--preset", "tiny",
                     "--steps", "4", "--batch-size", "2", "--clips-per-sample", "2",
                     "--log-every", "1", "--json", *extra]) == 0
    library = Library(root)
    set_library_model(library, runs / "run" / "last")
    library.update_manifest(model_no_regions={"checkpoint": "models/run_no_regions/last"})
    build_index(library)
    library.close()
    assert main(["evaluate", "--corpus", str(corpus), "--checkpoint", str(runs / "run" / "last"),
                 "--ablation-checkpoint", str(runs / "run_no_regions" / "last"),
                 "--tasks", "retrieval,videoqa", "--resamples", "30", "--threads", "1",
                 "--report", str(root / "report"), "--json"]) == 0
    return root


@pytest.fixture
def app_for(monkeypatch):
    """``app_for(library_dir, **query_params)`` -> an AppTest of the router, not yet run."""
    from streamlit.testing.v1 import AppTest

    def make(library: Path | str, **params: str) -> AppTest:
        monkeypatch.setenv("ACTBERT_LIBRARY", str(library))
        at = AppTest.from_file(str(APP), default_timeout=120)
        for key, value in params.items():
            at.query_params[key] = value
        return at

    return make
