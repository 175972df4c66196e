"""Guards of the architecture docs/architecture.md draws: SQL only in the catalog, no import upward (between
the floors app -> synthkitchen -> indexer -> actbert, inside indexer, and inside actbert: cli ->
reporting -> paddle -> finetuning -> evaluation -> benchmarks -> pretraining -> the model).

Both read the source with ``ast`` (nothing is imported), so they also see imports inside functions
and SQL in f-strings. Tests are not scanned: they corrupt catalogs with SQL on purpose.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("actbert", "indexer", "synthkitchen", "app", "bench", "lab")

# ---- SQL only in the catalog ----------------------------------------------------------------------

CATALOG_MODULES = {"indexer/library/catalog.py"}
SQL_KEYWORDS = ("SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "PRAGMA", "BEGIN", "ALTER", "DROP",
                "REPLACE", "WITH", "VACUUM", "ATTACH")
DB_CALLS = {"execute", "executemany", "executescript"}


def _sources(*packages: str) -> list[Path]:
    return sorted(p for package in packages for p in (ROOT / package).rglob("*.py")
                  if "__pycache__" not in p.parts)


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _looks_like_sql(text: str, whole: bool = True) -> bool:
    """An upper-case SQL keyword, then more of the statement (``whole``: in this very string;
    otherwise the start of an f-string, whose expressions follow)."""
    words = text.split(None, 1)
    return bool(words) and words[0] in SQL_KEYWORDS and (len(words) == 2 or not whole)


def _is_catalog(node: ast.expr) -> bool:
    """``catalog`` or ``<anything>.catalog``: the receiver of ``catalog.query(...)``."""
    return (isinstance(node, ast.Name) and node.id == "catalog") or \
        (isinstance(node, ast.Attribute) and node.attr == "catalog")


def sql_uses(source: str) -> list[tuple[int, str]]:
    """(line, what) for every way ``source`` talks to SQLite: SQL text (a string or the start of an
    f-string), ``.execute*()`` calls, ``catalog.query()`` calls, ``sqlite3`` imports."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and _looks_like_sql(node.value):
            found.append((node.lineno, f"SQL text {node.value.strip()[:40]!r}"))
        elif isinstance(node, ast.JoinedStr) and node.values:
            first = node.values[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str) and \
                    _looks_like_sql(first.value, whole=False):
                found.append((node.lineno, f"SQL f-string {first.value.strip()[:40]!r}"))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in DB_CALLS:
                found.append((node.lineno, f".{node.func.attr}() call"))
            elif node.func.attr == "query" and _is_catalog(node.func.value):
                found.append((node.lineno, "catalog.query() call"))
        elif isinstance(node, ast.Import) and any(a.name.split(".")[0] == "sqlite3" for a in node.names):
            found.append((node.lineno, "import sqlite3"))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "sqlite3":
            found.append((node.lineno, "from sqlite3 import"))
    return found


def test_sql_lives_only_in_the_catalog() -> None:
    offenders = [f"{_rel(path)}:{line}: {what}" for path in _sources(*PRODUCT)
                 if _rel(path) not in CATALOG_MODULES
                 for line, what in sql_uses(path.read_text())]
    assert not offenders, ("SQL outside the catalog (add a named method to indexer/library/catalog.py "
                           "and call it):\n" + "\n".join(offenders))
    # The catalog itself is found by the same scan (the guard sees what it is meant to see).
    assert all(sql_uses((ROOT / module).read_text()) for module in CATALOG_MODULES)


@pytest.mark.parametrize("source", [
    'rows = lib.catalog.query("SELECT 1")',
    'db.execute(name)',
    'sql = f"PRAGMA table_info({table})"',
    'q = ("DELETE FROM clips "\n     "WHERE id = ?")',
    'def f():\n    import sqlite3',
])
def test_the_sql_scan_sees(source: str) -> None:
    assert sql_uses(source)


@pytest.mark.parametrize("source", ['st.selectbox("Select a clip", [])', '"""Update the index."""',
                                    'x = "DROP"', 'searcher.query(q)'])
def test_the_sql_scan_ignores(source: str) -> None:
    assert not sql_uses(source)


# ---- nothing imports upward ---------------------------------------------------------------------

# Floors, from the ground up: actbert -> indexer -> synthkitchen (the demo world: it renders videos,
# then ingests, trains on and indexes them with the product) -> app. Inside indexer: features ->
# library -> index -> cli (the commands, on top of everything).
FORBIDDEN = {"actbert": {"indexer", "synthkitchen", "app"}, "indexer": {"synthkitchen", "app"},
             "synthkitchen": {"app"}}
INDEXER_FLOORS = ["features", "library", "index", "cli"]
# The sanctioned looks upward. Inside indexer: an ingest run ends by bringing the index to the
# catalog (a function-level import, so ``indexer.library`` loads without ``indexer.index``).
# From indexer up to synthkitchen, only the command line's assembly: ``indexer demo``,
# ``indexer synthkitchen`` and ``indexer train-detector`` are commands of the one ``indexer``
# program, so its parser mounts ``synthkitchen.cli``, and ``main`` registers SynthKitchen's
# ground-truth reader because ``indexer ingest`` and ``export-corpus`` read its corpora. The other
# way (the product discovering its demo through entry points at import) is the import side
# effect this floor plan rules out.
ALLOWED_UPWARD = {("indexer/library/ingest.py", "indexer.index.reconcile"),
                  ("indexer/cli/__init__.py", "synthkitchen.cli"),
                  ("indexer/cli/__init__.py", "synthkitchen.ground_truth")}


def imported_modules(source: str, module: str) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in ``source`` (the module named ``module``,
    e.g. ``indexer.library.ingest``), at any depth: relative imports resolved, ``from X import y``
    reported as ``X.y``, ``importlib.import_module("...")`` with a literal name included."""
    found = []
    package = module.split(".")[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) and \
                isinstance(node.args[0].value, str) and (
                    (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module") or
                    (isinstance(node.func, ast.Name) and node.func.id in ("__import__", "import_module"))):
            found.append((node.lineno, node.args[0].value))
    return found


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def indexer_floor(module: str) -> int | None:
    """The floor (index into ``INDEXER_FLOORS``) of an ``indexer`` module; -1 for the ground under
    every floor: the package's own ``__init__`` (run by every import of an ``indexer`` module, so
    whatever it imports is loaded by the lowest floor too) and its top-level modules (``errors``);
    None for ``indexer.__main__`` (the command, above everything) and outside indexer."""
    parts = module.split(".")
    if parts[0] != "indexer" or module == "indexer.__main__":
        return None
    return INDEXER_FLOORS.index(parts[1]) if len(parts) > 1 and parts[1] in INDEXER_FLOORS else -1


def _is_or_inside(module: str, allowed: str) -> bool:
    """``module`` is ``allowed`` or a name inside it (``synthkitchen.cli.add_cli``, not ``synthkitchen.client``)."""
    return module == allowed or module.startswith(allowed + ".")


def upward_imports(path: Path) -> list[str]:
    name = _module_name(path)
    top = name.split(".")[0]
    rel = _rel(path)
    problems = []
    floor = indexer_floor(name)
    for line, imported in imported_modules(path.read_text(), _scanned_name(path)):
        target = imported.split(".")
        if any(rel == a and _is_or_inside(imported, m) for a, m in ALLOWED_UPWARD):
            continue
        if target[0] in FORBIDDEN.get(top, ()):
            problems.append(f"{rel}:{line}: {top} imports {imported}")
        if floor is not None and target[0] == "indexer" and len(target) > 1 \
                and target[1] in INDEXER_FLOORS and INDEXER_FLOORS.index(target[1]) > floor:
            where = "indexer (package __init__ or top-level module)" if floor < 0 else \
                f"indexer.{INDEXER_FLOORS[floor]}"
            problems.append(f"{rel}:{line}: {where} imports {imported} (a higher floor)")
    return problems


def test_nothing_imports_upward() -> None:
    offenders = [p for path in _sources("actbert", "indexer", "synthkitchen", "app") for p in upward_imports(path)]
    assert not offenders, "imports from a higher floor:\n" + "\n".join(offenders)


def test_only_the_command_line_of_indexer_reaches_up_to_synthkitchen(tmp_path: Path, monkeypatch) -> None:
    """The scan flags ``indexer`` importing the demo world anywhere but the command line's assembly,
    and ``synthkitchen`` importing the app; ``synthkitchen`` standing on indexer and actbert is fine."""
    files = {"indexer/library/ingest.py": "from synthkitchen.corpus import generate\n",
             "indexer/cli/library.py": "def f():\n    from synthkitchen import demo\n",
             "indexer/cli/__init__.py": "from synthkitchen import cli\nfrom synthkitchen import ground_truth\n",
             "actbert/data.py": "import synthkitchen.plan\n",
             "synthkitchen/demo.py": "from indexer.library.ingest import ingest\nfrom actbert import data\n",
             "synthkitchen/render.py": "from app import render\n"}
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    flagged = {name for name in files if upward_imports(tmp_path / name)}
    assert flagged == {"indexer/library/ingest.py", "indexer/cli/library.py", "actbert/data.py",
                       "synthkitchen/render.py"}


def test_the_floor_scan_counts_package_init_files() -> None:
    """Every import of an ``indexer`` module runs ``indexer/__init__.py`` first: the scan places it
    (and ``indexer.errors``) under the lowest floor, and each subpackage's ``__init__`` on its floor."""
    assert indexer_floor("indexer") == indexer_floor("indexer.errors") == -1
    assert indexer_floor("indexer.features") == 0 and indexer_floor("indexer.cli") == 3
    assert indexer_floor("indexer.__main__") is None
    scanned = {_rel(path) for path in _sources("indexer")}
    assert {"indexer/__init__.py", "indexer/library/__init__.py", "indexer/cli/__init__.py"} <= scanned


def test_the_floor_scan_sees_an_init_that_imports_upward(tmp_path: Path, monkeypatch) -> None:
    package = tmp_path / "indexer"
    package.mkdir()
    (package / "__init__.py").write_text("from indexer.index import search\n")
    (package / "errors.py").write_text("from indexer.library.store import Library\n")
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    assert upward_imports(package / "__init__.py") and upward_imports(package / "errors.py")


def _project_modules_after(statement: str) -> list[str]:
    """The project's modules loaded by running ``statement`` in a fresh interpreter, sorted."""
    code = (f"import sys; {statement}; print(' '.join(sorted(m for m in sys.modules "
            "if m.split('.')[0] in ('actbert', 'indexer', 'synthkitchen', 'app'))))")
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          check=True, env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout.split()


def test_importing_a_leaf_of_indexer_loads_nothing_else() -> None:
    """``import indexer.errors`` runs ``indexer/__init__.py`` and nothing more of the project (no
    registration side effect: readers are registered by the programs that use them)."""
    assert _project_modules_after("import indexer.errors") == ["indexer", "indexer.errors"]


def test_importing_synthkitchen_registers_nothing() -> None:
    """The package loads nothing else, and its ground-truth reader joins ingest's readers only when
    ``register()`` is called."""
    assert _project_modules_after("import synthkitchen") == ["synthkitchen"]
    code = ("from indexer.library import ground_truth; import synthkitchen.ground_truth as sk; "
            "print(len(ground_truth.readers())); sk.register(); print(len(ground_truth.readers()))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout.split()
    assert out == ["0", "1"]


# ---- no import cycle ------------------------------------------------------------------------------

def import_graph(packages: tuple[str, ...] = ("actbert", "indexer", "synthkitchen", "app")) -> dict[str, set[str]]:
    """module -> the project modules it imports (at any depth, ``TYPE_CHECKING`` blocks included:
    a type needed both ways is a cycle too), package ``__init__`` files as their package's name.
    ``from pkg import name`` is an edge to ``pkg.name`` when that is a module, else to ``pkg``."""
    paths = {_module_name(path): path for path in _sources(*packages)}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        edges = set()
        for _, imported in imported_modules(path.read_text(), _scanned_name(path)):
            parts = imported.split(".")
            target = next((".".join(parts[:n]) for n in range(len(parts), 0, -1)
                           if ".".join(parts[:n]) in paths), None)
            if target is not None and target != name:
                edges.add(target)
        graph[name] = edges
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
    return sorted(cycles)


def test_no_import_cycle() -> None:
    graph = import_graph()
    assert {"indexer", "actbert", "synthkitchen", "app", "indexer.cli", "actbert.cli",
            "actbert.evaluation"} <= set(graph)
    assert "actbert.checkpoint" in graph["actbert.model"]  # edges are read (a function-level import)
    cycles = import_cycles(graph)
    assert not cycles, ("modules that import each other (move the shared type or operation into "
                        "one of them, or below both):\n" + "\n".join(" <-> ".join(c) for c in cycles))


def test_the_cycle_search_finds_what_a_hand_drawn_graph_has() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e", "d"}, "f": {"g"},
             "g": {"f"}}
    assert import_cycles(graph) == [["a", "b", "c"], ["f", "g"]]
    assert import_cycles({"x": {"y"}, "y": set()}) == []


def test_the_graph_sees_type_checking_imports_and_package_init_files(tmp_path: Path, monkeypatch) -> None:
    """A cycle through a ``TYPE_CHECKING`` import, and one through a package ``__init__``, on a
    tree written here."""
    files = {
        "pkg/__init__.py": "from pkg.sub import leaf\n",
        "pkg/sub/__init__.py": "",
        "pkg/sub/leaf.py": "def f():\n    import pkg\n",
        "pkg/runners.py": "from . import rows\n",
        "pkg/rows.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .runners import Run\n",
        "pkg/alone.py": "from pkg.sub import leaf as _\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    graph = import_graph(("pkg",))
    assert graph["pkg.alone"] == {"pkg.sub.leaf"} and graph["pkg.sub"] == set()
    assert import_cycles(graph) == [["pkg", "pkg.sub.leaf"], ["pkg.rows", "pkg.runners"]]


# Inside actbert, from the ground up: the top-level modules are the model and its data format (the
# floor the indexer and the app build on); pretraining/ trains it; benchmarks/ reads the paper's
# datasets into corpora and holds its numbers; evaluation/ measures the model (the harness);
# finetuning/ trains for the evaluations on the harness's splits and scorers; paddle/ checks the
# released checkpoint's MSR-VTT figures; reporting/ draws a result; cli/ holds the commands. The model
# never depends on how it is trained or measured. ``actbert/__main__.py`` (``python -m actbert``)
# stands above every floor.
ACTBERT_FLOORS = ["model", "pretraining", "benchmarks", "evaluation", "finetuning", "paddle", "reporting",
                  "cli"]
ACTBERT_TOP = {"actbert.__main__"}
# Modules below their package's floor: the released checkpoint's converter is how the model reads
# PaddleVideo's weights (``ActBertForPretraining.from_paddle``), so it stands on the model floor, and
# so does ``actbert/paddle/__init__.py``, which every import of it runs.
ON_THE_MODEL_FLOOR = ("actbert.paddle.convert", "actbert.paddle.__init__")


def actbert_floor(module: str) -> str | None:
    """The floor of an ``actbert`` module: ``model`` for a top-level module (or the package itself)
    and for ``ON_THE_MODEL_FLOOR``, else its subpackage; None outside actbert and for
    ``__main__``."""
    parts = module.split(".")
    if parts[0] != "actbert" or module in ACTBERT_TOP:
        return None
    if module in ON_THE_MODEL_FLOOR:
        return "model"
    return parts[1] if len(parts) > 2 and parts[1] in ACTBERT_FLOORS else "model"


def imported_floor(imported: str) -> str | None:
    """The floor an import of ``imported`` (a module, or ``module.name``) reaches into: importing a
    subpackage (``from actbert import evaluation``) counts as its floor; the package of a module
    on the model floor counts as the model floor. None outside actbert's subpackages."""
    parts = imported.split(".")
    if parts[0] != "actbert" or len(parts) < 2 or parts[1] not in ACTBERT_FLOORS:
        return None
    for module in ON_THE_MODEL_FLOOR:
        name = module.removesuffix(".__init__")
        if imported == name or (not module.endswith(".__init__") and imported.startswith(name + ".")):
            return "model"
    return parts[1]


def actbert_upward_imports(source: str, module: str) -> list[str]:
    """(line: what) for each import of the ``actbert`` module ``module`` from a higher actbert
    floor; ``from actbert import evaluation`` counts as importing the subpackage."""
    floor = actbert_floor(module)
    if floor is None:
        return []
    problems = []
    for line, imported in imported_modules(source, module):
        target = imported_floor(imported)
        if target is not None and ACTBERT_FLOORS.index(target) > ACTBERT_FLOORS.index(floor):
            problems.append(f"{line}: {module} ({floor} floor) imports {imported} ({target} floor)")
    return problems


def _scanned_name(path: Path) -> str:
    """The module name ``imported_modules`` resolves relative imports from (a package's
    ``__init__`` is a module inside the package)."""
    return _module_name(path) + (".__init__" if path.name == "__init__.py" else "")


def test_actbert_floors_import_nothing_from_above() -> None:
    """``actbert``'s top-level modules (the model) import nothing from its subpackages (but the
    released checkpoint's converter), and each subpackage nothing from a higher one;
    ``__main__`` may import all."""
    floors = {_module_name(p): actbert_floor(_scanned_name(p)) for p in _sources("actbert")}
    assert floors["actbert"] == floors["actbert.model"] == floors["actbert.rerank_policy"] == "model"
    assert floors["actbert.pretraining"] == floors["actbert.pretraining.train"] == "pretraining"
    assert floors["actbert.evaluation.evaluate"] == "evaluation" and floors["actbert.__main__"] is None
    assert floors["actbert.paddle"] == floors["actbert.paddle.convert"] == "model"
    assert floors["actbert.paddle.parity"] == "paddle" and floors["actbert.cli"] == "cli"
    assert {floor for floor in floors.values() if floor} == set(ACTBERT_FLOORS)  # every floor is real
    offenders = [f"{_rel(path)}:{problem}" for path in _sources("actbert")
                 for problem in actbert_upward_imports(path.read_text(), _scanned_name(path))]
    assert not offenders, ("actbert imports from a higher floor (move the dependency down to the "
                           "floor that needs it):\n" + "\n".join(offenders))


@pytest.mark.parametrize("module, source, upward", [
    ("actbert.model", "from .evaluation.metrics import retrieval_ranks", True),
    ("actbert.data", "def f():\n    from actbert.pretraining import masking", True),
    ("actbert.__init__", "from . import evaluation", True),
    ("actbert.pretraining.train", "from ..reporting.report import report_html", True),
    ("actbert.checkpoint", "importlib.import_module('actbert.evaluation.evaluate')", True),
    ("actbert.evaluation.evaluate", "from ..finetuning.finetune import finetune", True),
    ("actbert.benchmarks.corpus", "from ..evaluation.metrics import retrieval_metrics", True),
    ("actbert.reporting.figures", "from ..cli import main", True),
    ("actbert.model", "from .paddle.parity import evaluate_msrvtt", True),
    ("actbert.paddle.convert", "from .parity import load_checkpoint", True),
    ("actbert.paddle.__init__", "from . import parity", True),
    ("actbert.model", "def f():\n    from .paddle.convert import load_paddle", False),
    ("actbert.model", "from . import paddle", False),
    ("actbert.__main__", "from .cli import main", False),
    ("actbert.reporting.report", "from ..pretraining.curves import read_log", False),
    ("actbert.finetuning.finetune", "from ..evaluation.scorer import ModelScorer", False),
    ("actbert.paddle.parity", "from ..benchmarks.msrvtt import MsrvttCaption", False),
    ("actbert.evaluation.tasks", "from ..model import ActBertForPretraining", False),
    ("actbert.model", "from .evaluationary import x", False),
])
def test_the_actbert_floor_scan(module: str, source: str, upward: bool) -> None:
    assert bool(actbert_upward_imports(source, module)) == upward


def test_the_import_scan_sees_function_level_and_relative_imports() -> None:
    source = "def f():\n    from indexer.index import search\n\nfrom ..app import views\n"
    found = sorted(m for _, m in imported_modules(source, "actbert.sub.mod"))
    assert found == ["actbert.app.views", "indexer.index.search"]
    assert [m for _, m in imported_modules("importlib.import_module('app.views')", "actbert.x")] == \
        ["app.views"]


def test_paths_derived_from_module_locations_still_reach_their_folders() -> None:
    """Moving a module changes what ``Path(__file__).parents[n]`` means: the demo's shipped assets
    and the app's script must still be found."""
    from app.__main__ import APP
    from synthkitchen.demo import ASSETS

    assert ASSETS == ROOT / "assets" / "demo" and (ASSETS / "detector.safetensors").is_file()
    assert APP.is_file()


# ---- typed seams ----------------------------------------------------------------------------------

def raw_manifest_reads(source: str) -> list[tuple[int, str]]:
    """(line, what) for each ``<x>.manifest[...]`` or ``<x>.manifest.get(...)``: library.json
    navigated by strings instead of ``LibraryManifest``'s fields."""
    found = []
    for node in ast.walk(ast.parse(source)):
        target = node.value if isinstance(node, ast.Subscript) else \
            node.func.value if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
            and node.func.attr == "get" else None
        if isinstance(target, ast.Attribute) and target.attr == "manifest":
            found.append((node.lineno, ast.unparse(node)[:60]))
    return found


def test_library_json_is_read_through_its_typed_record() -> None:
    offenders = [f"{_rel(path)}:{line}: {what}" for path in _sources("indexer", "synthkitchen", "app", "bench")
                 for line, what in raw_manifest_reads(path.read_text())]
    assert not offenders, ("library.json read by key (use the fields of "
                           "indexer.library.manifest.LibraryManifest):\n" + "\n".join(offenders))
    assert raw_manifest_reads('m = library.manifest["model"]\nlibrary.manifest.get("verbs")\n')
    assert not raw_manifest_reads("library.manifest.model\nmanifest.get('x')\nindex.get(1)\n")


def test_the_app_reaches_the_indexer_through_its_services_not_its_command_line() -> None:
    offenders = [f"{_rel(path)}:{line}: imports {imported}" for path in _sources("app")
                 for line, imported in imported_modules(path.read_text(), _scanned_name(path))
                 if _is_or_inside(imported, "indexer.cli")]
    assert not offenders, "the app imports indexer's command line:\n" + "\n".join(offenders)
