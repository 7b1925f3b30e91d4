"""The shape ARCHITECTURE.md promises, checked on the source: no import cycle between hypemu's
modules (lazy imports inside functions count too), modules and classes of a readable size, and each
third-party engine behind its one adapter."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "hypemu"
MAX_MODULE_LINES = 430    # "no module over ~400 lines"
MAX_CLASS_LINES = 260     # "no class over ~250"
ADAPTERS = {              # a third-party engine -> the only modules that may import it
    "unicorn": {"hypemu.engine", "hypemu.engine_budget", "hypemu.engine_pool",
                "hypemu.engine_regs", "hypemu.engine_ram"},
    "keystone": {"hypemu.asm.worker"},
    "capstone": {"hypemu.trace"},
    "matplotlib": {"hypemu.mapplot", "hypemu.sweep.plot"},
    "ray": {"hypemu.sweep.ray_backend"},
}


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """Every hypemu module ``name`` imports, at any depth of its code (``TYPE_CHECKING`` blocks
    excepted: they never run)."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("hypemu"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.startswith("hypemu"):
                for alias in node.names:   # ``from . import cp15`` names a module
                    sub = f"{mod}.{alias.name}"
                    out.add(sub if sub in MODULES else mod)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return {m for m in out if m in MODULES and m != name}


def _third_party(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_the_import_graph_has_no_cycle() -> None:
    # A package's __init__ re-exports its modules; a module of the package importing a sibling
    # through ``from . import x`` names x itself, so the edge into the __init__ is not taken.
    graph = {name: {m for m in _imports(name, path)
                    if not (name.startswith(m + ".") and m == name.rpartition(".")[0])}
             for name, path in MODULES.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def dfs(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                dfs(nxt)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            dfs(name)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules_and_classes_are_of_a_readable_size(name: str) -> None:
    path = MODULES[name]
    lines = path.read_text().count("\n")
    assert lines <= MAX_MODULE_LINES, f"{path.name}: {lines} lines"
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ClassDef):
            size = (node.end_lineno or node.lineno) - node.lineno + 1
            assert size <= MAX_CLASS_LINES, f"{name}.{node.name}: {size} lines"


def test_each_engine_library_is_imported_only_by_its_adapter() -> None:
    for name, path in MODULES.items():
        for lib in _third_party(path) & set(ADAPTERS):
            assert name in ADAPTERS[lib], f"{name} imports {lib}"
