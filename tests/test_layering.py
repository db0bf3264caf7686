"""The layering of the code base: ``screening`` never imports ``pipelines``, the science never reaches into
the ingest sources, nothing imports the command line, and no two modules import each other in a circle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PACKAGES = ("screening", "pipelines")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {
        _module_name(path): path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if "data" not in path.relative_to(ROOT / package).parts
    }


def _imports(path: Path, module: str, known: set[str], *, top_level_only: bool) -> set[str]:
    """Project modules that ``module`` imports (anywhere in the file, or at module level only)."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in nodes:
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names
            ]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


def _graph(*, top_level_only: bool) -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {
        name: _imports(path, name, known, top_level_only=top_level_only) for name, path in modules.items()
    }


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    cycles, state, stack = [], {}, []

    def visit(node: str) -> None:
        state[node] = "active"
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "active":
                cycles.append([*stack[stack.index(target) :], target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return cycles


def test_the_walker_sees_imports_at_every_level():
    graph = _graph(top_level_only=False)
    assert "pipelines.rundir" in graph["pipelines.run"]
    assert "screening.stages" in graph["screening.api"]  # imported inside screen()


def test_screening_never_imports_pipelines():
    offenders = {
        module: sorted(t for t in targets if t.startswith("pipelines"))
        for module, targets in _graph(top_level_only=False).items()
        if module.startswith("screening")
    }
    assert not {m: t for m, t in offenders.items() if t}


def test_science_never_reaches_into_the_sources():
    science = (
        "screening.thermo",
        "screening.transport",
        "screening.models",
        "screening.stages",
        "screening.graphs",
    )
    offenders = {
        module: sorted(t for t in targets if t.startswith("screening.sources"))
        for module, targets in _graph(top_level_only=False).items()
        if module.startswith(science)
    }
    assert not {m: t for m, t in offenders.items() if t}


def test_nothing_imports_the_command_line():
    importers = [m for m, targets in _graph(top_level_only=False).items() if "pipelines.cli" in targets]
    assert importers == []


@pytest.mark.parametrize("top_level_only", [True, False], ids=["module level", "anywhere"])
def test_no_import_cycles(top_level_only):
    assert _cycles(_graph(top_level_only=top_level_only)) == []
