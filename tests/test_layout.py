"""The package's shape: the public surface is ``__all__``, and no module imports itself back.

Imports are read from the source (every ``import``, at module level, under
``TYPE_CHECKING`` or inside a function), so a cycle hidden behind a lazy
import counts too. The same holds between the folders (``_wire/``,
``_ratelimit/``, ``_bulk/``, ``_resources/``, ``_cli/``, ``testing/``) and the
core modules beside them: data flows downward only.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path
from typing import TypeVar

import llmobs_async

PACKAGE = Path(llmobs_async.__file__).resolve().parent


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        out.update(t for t in targets if t in known and t != name)
    return out


def test_no_module_imports_itself_back() -> None:
    modules = _modules()
    graph = {name: _imports(name, path, set(modules)) for name, path in modules.items()}
    # A package's __init__ importing its own submodules is how re-exports work.
    graph = {
        name: {t for t in targets if not t.startswith(name + ".")}
        for name, targets in graph.items()
    }
    cycles = []
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                cycles.append([*trail[trail.index(target) :], target])
            elif target not in state:
                visit(target, [*trail, target])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []


def test_every_module_imports_on_its_own() -> None:
    imported = {"llmobs_async"}
    for info in pkgutil.walk_packages(llmobs_async.__path__, "llmobs_async."):
        if info.name.endswith(("pytest_plugin", "__main__")):
            continue  # run by pytest and by ``python -m``, not imported
        importlib.import_module(info.name)
        imported.add(info.name)
    # Every module of every subpackage was reached, not only the flat ones.
    everything = set(_modules()) - {"llmobs_async.__main__", "llmobs_async.testing.pytest_plugin"}
    assert imported == everything


def _part(name: str) -> str:
    """The folder or core module a module belongs to: ``_bulk``, ``_transport``, ``errors``."""
    return name.split(".")[1]


def _part_graph() -> dict[str, dict[str, set[str]]]:
    """Imports between parts (the package's own ``__init__`` aside): part -> part -> modules."""
    modules = _modules()
    graph: dict[str, dict[str, set[str]]] = {}
    for name, path in modules.items():
        if name == "llmobs_async":
            continue
        for target in _imports(name, path, set(modules)):
            if target != "llmobs_async" and _part(target) != _part(name):
                graph.setdefault(_part(name), {}).setdefault(_part(target), set()).add(name)
    return graph


def test_folders_and_core_modules_import_each_other_downward_only() -> None:
    graph = _part_graph()
    cycles = []
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph.get(node, {})):
            if state.get(target) == 1:
                cycles.append([*trail[trail.index(target) :], target])
            elif target not in state:
                visit(target, [*trail, target])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []


_CORE = ("_transport", "_routes", "_config", "_retry", "_scrub", "_errorbody", "_options")
_ABOVE_THE_CORE = {"_bulk", "_resources", "experiments", "_client", "_cli", "testing"}
# What each part must never import: the layers above it, and its neighbours where
# keeping them apart is the point (the fake shares no wire or bulk code with the client
# it tests, so a bug there cannot hide in both).
_NEVER = {
    "errors": {"models", "pagination", "_json", "_wire", *_CORE, "_ratelimit", *_ABOVE_THE_CORE},
    "models": {"pagination", "_wire", *_CORE, "_ratelimit", *_ABOVE_THE_CORE},
    "_wire": {*_CORE, "_response", "_ratelimit", *_ABOVE_THE_CORE},
    "_ratelimit": {"models", "pagination", "_wire", *_CORE, "_response", *_ABOVE_THE_CORE},
    **{core: {"_wire", *_ABOVE_THE_CORE} for core in _CORE},
    "_response": {"_wire", *_ABOVE_THE_CORE},
    "_bulk": {
        "_ratelimit",
        "_options",
        "_response",
        "_resources",
        "experiments",
        "_client",
        "_cli",
        "testing",
    },
    "_resources": {"_ratelimit", "experiments", "_client", "_cli", "testing"},
    # The runner uses the client's public calls: never the transport, the gate or the wire.
    "experiments": {
        *_CORE,
        "_pool",
        "_ratelimit",
        "_wire",
        "_response",
        "_client",
        "_cli",
        "testing",
    },
    "_client": {"_cli", "testing"},
    "testing": {
        "_wire",
        "_json",
        *_CORE,
        "_response",
        "_bulk",
        "_resources",
        "experiments",
        "_client",
        "_cli",
    },
}


def test_each_part_imports_nothing_above_it() -> None:
    graph = _part_graph()
    assert set(_NEVER) <= {_part(name) for name in _modules() if name != "llmobs_async"}
    wrong = {
        (part, target): sorted(graph[part][target])
        for part, never in _NEVER.items()
        for target in never
        if target in graph.get(part, {})
    }
    assert wrong == {}


def test_the_concern_packages_init_is_only_a_docstring() -> None:
    # Importing one module of these folders imports none of its siblings: an __init__
    # that re-exported them would run _wire/jsonapi.py (which imports models) whenever
    # anything imports _wire/records.py, and so on. Its docstring names every module.
    for folder in ("_wire", "_ratelimit", "_bulk"):
        tree = ast.parse((PACKAGE / folder / "__init__.py").read_text())
        assert len(tree.body) == 1, folder
        docstring = ast.get_docstring(tree)
        assert docstring, folder
        for module in (PACKAGE / folder).glob("*.py"):
            if module.name != "__init__.py":
                assert module.stem in docstring, (folder, module.stem)


def test_the_public_surface_is_all_and_only_all() -> None:
    # "@py..." names are pytest's: it rewrites the asserts of a package that ships a plugin.
    public = {n for n in dir(llmobs_async) if not n.startswith(("_", "@"))}
    modules = {"errors", "models", "pagination", "testing"}
    assert public - modules == set(llmobs_async.__all__) - modules - {"__version__"}
    for name in llmobs_async.__all__:
        value = getattr(llmobs_async, name)
        assert getattr(value, "__doc__", None) or name in (
            "FLUSH",
            "SITES",
            "UNSET",
            "__version__",
        ), name


def test_every_public_name_of_the_submodules_is_documented_and_listed() -> None:
    for module in (llmobs_async.errors, llmobs_async.models, llmobs_async.pagination):
        listed = set(module.__all__)
        defined = {
            n
            for n, v in vars(module).items()
            if not n.startswith("_")
            and getattr(v, "__module__", None) == module.__name__
            and not isinstance(v, TypeVar)
        }
        assert defined <= listed | {"STATUS_CLASSES", "NO_EXTRA"}, (
            module.__name__,
            defined - listed,
        )
        for name in listed:
            assert getattr(module, name) is not None, name
