"""The package layout, measured from the source: layers, cycles, crowded folders, long modules.

Every import counts, ``TYPE_CHECKING`` and function-level ones included: a deferred import is
still an arrow between two modules. Run alone with ``pytest tests/test_layout.py``.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOPS = ("daemon", "jobs", "stores")
#: Which top-level package may import which: daemon -> jobs -> stores, never back.
ALLOWED = {"daemon": {"daemon", "jobs", "stores"}, "jobs": {"jobs", "stores"}, "stores": {"stores"}}
MAX_SIDE_BY_SIDE = 25
MAX_LINES = 450


def _modules() -> dict[str, Path]:
    found = {}
    for top in TOPS:
        for path in (ROOT / top).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imported_names(module: str, path: Path) -> Iterator[str]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def _graph() -> dict[str, set[str]]:
    """module -> the project modules it imports (the longest known prefix of each name)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for module, path in MODULES.items():
        for name in _imported_names(module, path):
            parts = name.split(".")
            for end in range(len(parts), 0, -1):
                target = ".".join(parts[:end])
                if target in MODULES:
                    if target != module:
                        graph[module].add(target)
                    break
    return graph


def test_layers_point_one_way() -> None:
    breaks = [
        f"{a} -> {b}"
        for a, targets in _graph().items()
        for b in targets
        if b.partition(".")[0] not in ALLOWED[a.partition(".")[0]]
    ]
    assert breaks == []


def test_no_import_cycles_between_modules() -> None:
    assert _cycles_of(_graph()) == []


def test_no_import_cycles_between_packages() -> None:
    """Subpackages depend one way too: ``stores.memory`` may use ``stores.openclaw``, not both
    ways round."""
    packages: dict[str, set[str]] = defaultdict(set)
    for a, targets in _graph().items():
        for b in targets:
            pa, pb = _package_of(a), _package_of(b)
            if pa != pb and not pb.startswith(pa + ".") and not pa.startswith(pb + "."):
                packages[pa].add(pb)
    cycles = _cycles_of(packages)
    assert cycles == []


def _package_of(module: str) -> str:
    path = MODULES[module]
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def _cycles_of(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    """Pairs that reach each other: every cycle shows as its pairs (a few hundred modules, so
    a plain search from each is quick enough)."""

    def reach(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for nxt in graph.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    return sorted((a, b) for a in graph for b in reach(a) if a < b and a in reach(b))


def test_no_folder_is_crowded() -> None:
    side_by_side: dict[Path, int] = defaultdict(int)
    for path in MODULES.values():
        if path.name != "__init__.py":
            side_by_side[path.parent.relative_to(ROOT)] += 1
    crowded = {str(folder): n for folder, n in side_by_side.items() if n > MAX_SIDE_BY_SIDE}
    assert crowded == {}


def test_no_module_is_long() -> None:
    lengths = {str(p.relative_to(ROOT)): len(p.read_text().splitlines()) for p in MODULES.values()}
    assert {name: n for name, n in lengths.items() if n > MAX_LINES} == {}


@pytest.mark.parametrize(
    "package", sorted(m for m, p in MODULES.items() if p.name == "__init__.py" and "." in m)
)
def test_every_subpackage_says_what_it_owns(package: str) -> None:
    docstring = ast.get_docstring(ast.parse(MODULES[package].read_text()))
    assert docstring, f"{package}/__init__.py needs a paragraph on what it owns and may import"
