"""The command line's modules: small, and importing one another without a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import llmobs_async._cli

PACKAGE = Path(llmobs_async._cli.__file__).parent


def _imports(path: Path) -> set[str]:
    """The sibling modules ``path`` imports (``from . import x``, ``from .x import y``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(alias.name for alias in node.names)
    return found


def test_no_module_imports_in_a_cycle_and_none_imports_the_entry_point() -> None:
    graph = {path.stem: _imports(path) for path in PACKAGE.glob("*.py")}
    for name, imported in graph.items():
        assert "__init__" not in imported, f"{name} imports the package's entry point"
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"import cycle: {' -> '.join((*path, name))}"
        if name in done:
            return
        for other in graph.get(name, ()):
            visit(other, (*path, name))
        done.add(name)

    for name in graph:
        visit(name, ())
    assert {"parser", "common"} <= graph["__init__"]  # the entry point is the top of the graph


def test_modules_stay_small() -> None:
    sizes = {path.name: len(path.read_text().splitlines()) for path in PACKAGE.glob("*.py")}
    assert max(sizes.values()) <= 400, sizes
