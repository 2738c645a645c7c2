"""Which parts of the service may import which: read from the source, every import statement
counted (inside functions and `if TYPE_CHECKING:` blocks too), like grimp / import-linter do.

Backends named by "module:Name" strings (registry.py) are plug-ins, not imports.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Folders installed under other names ([tool.setuptools.package-dir] in pyproject.toml).
PACKAGE_DIRS = {
    "procsupervisor": ROOT / "procsupervisor",
    "procsupervisor.workers": ROOT / "workers",
    "procsupervisor.cache": ROOT / "cache",
}


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package, folder in PACKAGE_DIRS.items():
        for path in folder.rglob("*.py"):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([package, *parts])] = path
    return found


MODULES = _modules()


def _imported_names(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            # `from package import module` imports the module too
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def _imports(module: str) -> set[str]:
    return {name for name in _imported_names(MODULES[module]) if name in MODULES} - {module}


GRAPH = {module: _imports(module) for module in MODULES}


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def _reachable(start: str) -> dict[str, list[str]]:
    """Every module `start` imports directly or through others, with one chain to it."""
    chains = {start: [start]}
    todo = [start]
    while todo:
        current = todo.pop()
        for target in sorted(GRAPH[current]):
            if target not in chains:
                chains[target] = [*chains[current], target]
                todo.append(target)
    return chains


def _violations(sources: str, forbidden: tuple[str, ...]) -> list[str]:
    found = []
    for module in MODULES:
        if not _within(module, sources):
            continue
        for target, chain in _reachable(module).items():
            if any(_within(target, prefix) for prefix in forbidden):
                found.append(" -> ".join(chain))
    return found


def test_the_graph_sees_imports_inside_functions_and_type_checking_blocks() -> None:
    # backends.py imports the queue interface inside make_queue and under TYPE_CHECKING
    assert "procsupervisor.queues.base" in GRAPH["procsupervisor.backends"]
    assert "procsupervisor.config" in GRAPH["procsupervisor.backends"]


@pytest.mark.parametrize(
    ("sources", "forbidden"),
    [
        # The configuration names its backends; it imports none of them.
        (
            "procsupervisor.config",
            ("procsupervisor.queues", "procsupervisor.storage", "procsupervisor.backends"),
        ),
        # Queues and storage are independent of each other and of every consumer.
        (
            "procsupervisor.queues",
            (
                "procsupervisor.storage",
                "procsupervisor.supervisor",
                "procsupervisor.workers",
                "procsupervisor.cache",
            ),
        ),
        (
            "procsupervisor.storage",
            (
                "procsupervisor.queues",
                "procsupervisor.supervisor",
                "procsupervisor.workers",
                "procsupervisor.cache",
            ),
        ),
    ],
)
def test_forbidden_imports(sources: str, forbidden: tuple[str, ...]) -> None:
    assert _violations(sources, forbidden) == []


def test_no_import_loop_through_config_backends_queues_or_storage() -> None:
    watched = (
        "procsupervisor.config",
        "procsupervisor.backends",
        "procsupervisor.registry",
        "procsupervisor.queues",
        "procsupervisor.storage",
    )
    loops = []
    for module in MODULES:
        if not any(_within(module, prefix) for prefix in watched):
            continue
        for target in GRAPH[module]:
            back = _reachable(target)
            if module in back:
                loops.append(" -> ".join([module, *back[module]]))
    assert loops == []
