"""The README is a front door and docs/ holds the rest: docs/cli.md's reference is what the parsers
say (it fails on drift: run ``python docs/make_cli_md.py``), the README stays short and every
relative link of the README and docs/ reaches a file."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))


def _docs_script(name: str):
    """A generator script of docs/ (``make_cli_md``, ``make_known_limits``), loaded as a module."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "docs" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_md_is_what_the_parsers_say(monkeypatch):
    make = _docs_script("make_cli_md")
    monkeypatch.setenv("COLUMNS", "80")  # render() fixes the width itself
    current = make.CLI_MD.read_text()
    assert make.render(current) == current, "docs/cli.md is out of date: run python docs/make_cli_md.py"
    for command in ("indexer ingest", "indexer search", "actbert train", "actbert evaluate"):
        assert f"### {command}\n" in current
    assert "--config CONFIG" in current  # a flag read from the parser, not written by hand


def test_known_limits_md_is_what_the_shipped_evaluation_loses():
    """docs/known_limits.md is generated from assets/demo/eval_test.json (run python
    docs/make_known_limits.py when the shipped evaluation changes), and the README links it."""
    make = _docs_script("make_known_limits")
    current = make.KNOWN_LIMITS_MD.read_text()
    assert make.render() == current, "docs/known_limits.md is out of date: run python docs/make_known_limits.py"
    head = re.search(r"Comparisons the model loses \(test split, .*\): (\d+), (\d+) with a paired", current)
    assert head, current[:2000]
    readme = " ".join(README.read_text().split())
    assert "docs/known_limits.md" in readme
    assert f"loses {head.group(1)} comparisons, {head.group(2)} of them" in readme, "the README's count is stale"


def test_the_generator_sees_a_changed_parser(monkeypatch):
    """A flag added to a parser changes the generated text (the test above would fail)."""
    make = _docs_script("make_cli_md")
    before = make.render_reference()
    from actbert.cli import model as model_cli

    original = model_cli.add_ship_cli

    def with_extra_flag(sub):
        original(sub)
        sub.choices["ship"].add_argument("--brand-new-flag")

    monkeypatch.setattr(model_cli, "add_ship_cli", with_extra_flag)
    after = make.render_reference()
    assert "--brand-new-flag" in after and "--brand-new-flag" not in before


def test_the_readme_is_a_front_door():
    text = README.read_text()
    assert len(text.splitlines()) <= 150
    assert "make run" in text and "make test" in text
    for doc in ("cli", "architecture", "evaluation", "results", "scale-out"):
        assert f"docs/{doc}.md" in text
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^run:", makefile, re.M) and re.search(r"^test:", makefile, re.M)


@pytest.mark.parametrize("page", [README, *DOCS], ids=lambda p: p.name)
def test_relative_links_reach_files(page):
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text())
    missing = [t for t in targets if "://" not in t and not (page.parent / t).exists()]
    assert not missing


def test_the_glossary_defines_the_house_words():
    glossary = (ROOT / "docs" / "architecture.md").read_text().split("## Glossary", 1)[1]
    for word in ("floor", "clip contract", "ship", "delta", "tangled", "states", "manifest", "seam"):
        assert f"**{word}**" in glossary
