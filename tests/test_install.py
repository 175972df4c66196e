"""One install, one check: pyproject.toml's dependencies and extras are requirements.txt's pins (what
`make setup` installs), `pip install .` ships every package and takes no test or scale-out package, no
product module edits ``sys.path``, and CI installs the browser before the tests."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
SELF = PROJECT["name"]


def _normal(requirement: str) -> str:
    """A requirement line without spaces, with one kind of quote."""
    return re.sub(r"\s+", "", requirement).replace('"', "'")


def _name(requirement: str) -> str:
    return re.match(r"[A-Za-z0-9_.-]+", requirement).group(0).lower()


def _pinned_lines() -> set[str]:
    lines = (line.split("#", 1)[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines())
    return {_normal(line) for line in lines if line}


def test_pyproject_declares_exactly_the_pins_make_setup_installs() -> None:
    extras = PROJECT["optional-dependencies"]
    declared = {_normal(r) for r in PROJECT["dependencies"]}
    declared |= {_normal(r) for group in extras.values() for r in group if _name(r) != SELF}
    assert declared == _pinned_lines(), (
        f"only in pyproject.toml: {sorted(declared - _pinned_lines())}; "
        f"only in requirements.txt: {sorted(_pinned_lines() - declared)}")
    assert set(extras) == {"app", "eval", "scale", "test"}
    assert _normal(f"{SELF}[app,eval,scale]") in {_normal(r) for r in extras["test"]}


def test_installing_the_package_takes_no_test_or_scale_out_dependency() -> None:
    core = {_name(r) for r in PROJECT["dependencies"]}
    extras = PROJECT["optional-dependencies"]
    for group in ("test", "scale"):
        names = {_name(r) for r in extras[group]} - {SELF, "setuptools"}
        assert names and not names & core, f"{group} packages among the dependencies: {names & core}"
    assert {"pytest", "playwright", "ray", "pymilvus", "ruff", "streamlit"}.isdisjoint(core)


def test_pip_install_ships_every_package_of_the_checkout() -> None:
    """Each top-level package (a folder with ``__init__.py``: actbert, indexer, synthkitchen, app) is
    one setuptools' ``packages.find`` includes, so ``pip install .`` ships what the commands import."""
    include = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    assert packages >= {"actbert", "indexer", "synthkitchen", "app"}
    assert all(any(fnmatch.fnmatch(name, pattern) for pattern in include) for name in packages), (packages, include)


def test_no_module_outside_the_tests_edits_sys_path() -> None:
    """`make setup` installs the project editable: scripts and `streamlit run` import it as it is."""
    offenders = [str(p.relative_to(ROOT)) for folder in ("actbert", "indexer", "synthkitchen", "app", "bench", "lab")
                 for p in (ROOT / folder).rglob("*.py") if "sys.path.insert" in p.read_text()]
    assert not offenders


def test_ci_installs_the_browser_and_make_test_does_not() -> None:
    """`make test` never installs a browser as root; .ci/run asks for it first, so CI still runs
    the browser test."""
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert ci.index("make browser") < ci.index("make test")
    makefile = (ROOT / "Makefile").read_text()
    test_rule = re.search(r"^test:(.*)$", makefile, re.M).group(1)
    assert "browser" not in test_rule.split()
