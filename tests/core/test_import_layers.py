"""The house's layers: no import circles among toolkit's modules, and ``store/`` below
``execution/``. Read from the source (every ``import`` a module runs, at its top or in a
function; those under ``if TYPE_CHECKING:`` are for annotations and do not count)."""

from __future__ import annotations

import ast
from pathlib import Path

import toolkit

ROOT = Path(toolkit.__file__).resolve().parent


def _modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The toolkit modules ``name`` imports. A package's ``__init__`` counts only what it
    imports when it is imported (its ``__getattr__`` imports lazily, on first use)."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST, top: bool) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child, top)
            return
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and path.name == "__init__.py":
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child, False)

    visit(tree, True)
    # `import toolkit` (for toolkit.hookimpl) and toolkit.plugin are facades: lazy names only
    return {m for m in found if m in MODULES and m != name and m not in ("toolkit", "toolkit.plugin")}


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return circles


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def test_no_import_circles():
    assert _circles(GRAPH) == []


def test_store_stands_below_execution():
    upward = {
        (name, dep)
        for name, deps in GRAPH.items()
        if name.startswith("toolkit.store")
        for dep in deps
        if dep.startswith("toolkit.execution")
    }
    assert upward == set()


def test_the_checker_sees_a_circle():
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_record_statuses_are_spelled_once():
    """Status, STATUSES and FAILED_STATUSES (toolkit.records) are the one definition: no
    other module lists statuses of its own (a tuple, list or set of two or more)."""
    statuses = {"ok", "failed", "timeout", "crashed", "skipped"}
    lists = []
    for name, path in MODULES.items():
        if name in ("toolkit.records", "toolkit.conformance"):  # the suite's expectations are data
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
                words = {e.value for e in node.elts if isinstance(e, ast.Constant)}
                if len(words & statuses) >= 2:
                    lists.append(f"{name}:{node.lineno}")
    assert lists == []
