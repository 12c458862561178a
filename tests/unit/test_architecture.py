"""The package's shape holds (issue 12): the layers import one way, with no cycle between
duban modules even through imports inside functions; no module grows past 400 lines; the
package's top level stays a handful of modules beside its folders; and the engine stays a
pure core, importing no storage, entry point or I/O library.

Imports are read from the source (an AST walk), not by importing it: a function-level
import counts as much as one at the top, since it runs the same module the first time the
function is called. Only what a type checker alone reads (`if TYPE_CHECKING:`) is left out.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import duban

PACKAGE = Path(duban.__file__).parent
MAX_LINES = 400
MAX_LOOSE = 7
# What the pure core may never reach: third-party libraries of storage, entry points and I/O,
# and the duban layers built on it.
ENGINE_FORBIDDEN_LIBRARIES = frozenset({"sqlalchemy", "sqlmodel", "click", "apscheduler", "fastapi", "starlette",
                                        "uvicorn", "jinja2", "httpx", "psycopg"})
ENGINE_FORBIDDEN_LAYERS = ("duban.storage", "duban.service", "duban.commands", "duban.web", "duban.cli",
                           "duban.bootstrap", "duban.delivery", "duban.exports", "duban.present")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its ``__init__``)."""
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_nodes(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement under ``body``, at any depth, less `if TYPE_CHECKING:` bodies
    (their ``else:`` runs, so it counts)."""
    stack: list[ast.AST] = list(reversed(body))
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
            continue
        if isinstance(node, ast.If) and _type_checking_only(node):
            stack.extend(reversed(node.orelse))
            continue
        stack.extend(reversed(list(ast.iter_child_nodes(node))))


def _resolve(importer: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute module a ``from … import`` names (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    base = importer.split(".") if is_package else importer.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def parse_imports(source: str, name: str, is_package: bool, known: set[str] | dict[str, Path]) -> dict[str, int]:
    """What module ``name`` (source ``source``) imports: each imported name, duban modules and
    third-party ones alike, with the first line importing it. ``from duban.x import y`` is
    module duban.x.y when y is one of the ``known`` modules, else duban.x."""
    found: dict[str, int] = {}
    for node in _import_nodes(ast.parse(source).body):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = _resolve(name, is_package, node)
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        for target in targets:
            found.setdefault(target, node.lineno)
    return found


@cache
def imports(name: str) -> dict[str, int]:
    path = modules()[name]
    return parse_imports(path.read_text(encoding="utf-8"), name, path.name == "__init__.py", modules())


def duban_imports(name: str) -> set[str]:
    """The duban modules ``name`` imports (an import of a name inside a module is an import
    of that module; of a module that does not exist, of the nearest enclosing one)."""
    found = set()
    for target in imports(name):
        while target and target not in modules():
            target = target.rpartition(".")[0]
        if target.startswith("duban") and target != name:
            found.add(target)
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm,
    iterative), each sorted, the list sorted: every import cycle is inside one of them."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
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
                    found.append(sorted(component))
    return sorted(found)


def describe(component: list[str], graph: dict[str, set[str]]) -> str:
    """A component as its members and the imports that tie them, with the importing line."""
    members = set(component)
    edges = [f"{a} → {b} (line {_line_of(a, b)})" for a in component for b in sorted(graph[a] & members)]
    return " ↔ ".join(component) + "\n    " + "\n    ".join(edges)


def _line_of(importer: str, imported: str) -> int:
    return min(line for target, line in imports(importer).items()
               if target == imported or target.startswith(imported + "."))


class TestLayers:
    def test_the_walk_sees_function_level_and_skips_type_checking_imports(self) -> None:
        """The walk finds an import inside a function, resolves `from duban.x import y` to the module y and
        relative imports to their package, and leaves out what only `if TYPE_CHECKING:` imports."""
        source = ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import sqlalchemy\nelse:\n"
                  "    import json\ndef f():\n    from duban.engine import model, Case\n    import click\n"
                  "class C:\n    def g(self):\n        from .. import errors\n        from .sibling import x\n")
        known = {"duban.engine.model", "duban.errors", "duban.commands.sibling"}
        found = parse_imports(source, "duban.commands.here", False, known)
        assert set(found) == {"typing", "json", "duban.engine.model", "duban.engine", "click", "duban.errors",
                              "duban.commands.sibling"}
        assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
        assert cycles({"a": {"b"}, "b": set()}) == []

    def test_no_import_cycle_between_duban_modules(self) -> None:
        """No two duban modules import each other, directly or round a longer loop, at any level of the code."""
        graph = {name: duban_imports(name) for name in modules()}
        found = cycles(graph)
        assert found == [], "import cycles:\n" + "\n".join(describe(c, graph) for c in found)

    def test_the_engine_imports_no_storage_entry_point_or_io_library(self) -> None:
        """duban.engine imports none of the storage, web, CLI or scheduler libraries, and no duban layer built on it."""
        offenders = []
        for name in modules():
            if not (name == "duban.engine" or name.startswith("duban.engine.")):
                continue
            for target, line in imports(name).items():
                if target.split(".")[0] in ENGINE_FORBIDDEN_LIBRARIES or any(
                        target == layer or target.startswith(layer + ".") for layer in ENGINE_FORBIDDEN_LAYERS):
                    offenders.append(f"{name} line {line}: {target}")
        assert offenders == [], "the engine imports:\n" + "\n".join(offenders)


class TestSize:
    def test_no_module_over_400_lines(self) -> None:
        """Every module of the package is at most 400 lines (one concept each)."""
        sizes = {name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in modules().items()}
        offenders = sorted((f"{name}: {n} lines" for name, n in sizes.items() if n > MAX_LINES))
        assert offenders == [], f"over {MAX_LINES} lines:\n" + "\n".join(offenders)

    def test_at_most_seven_loose_modules_at_the_top(self) -> None:
        """Beside its folders, the package's top level holds at most seven modules."""
        loose = sorted(p.name for p in PACKAGE.glob("*.py"))
        assert len(loose) <= MAX_LOOSE, loose
