"""Fixtures of the app tests: tiny libraries (see tiny_library.py: real videos, catalog and index;
RANDOM features and model weights, for UI tests only) and an AppTest factory."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.app.tiny_library import build_tiny_library

APP = Path(__file__).resolve().parents[2] / "app" / "streamlit_app.py"


@pytest.fixture(scope="session")
def tiny_library(tmp_path_factory) -> Path:
    """A stack-mode (paper) tiny library with two SynthKitchen videos."""
    return build_tiny_library(tmp_path_factory.mktemp("tiny_library"))


@pytest.fixture(scope="session")
def paddle_library(tmp_path_factory, tiny_library) -> Path:
    """The same videos with a kv_fusion="paddle" model (no injected attention maps)."""
    return build_tiny_library(tmp_path_factory.mktemp("paddle_library"), corpus=tiny_library / "corpus",
                              kv_fusion="paddle")


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
