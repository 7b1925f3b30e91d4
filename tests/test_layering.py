"""The dependency rules of ARCHITECTURE.md, read from the source: only the engine adapter imports
Unicorn; the CPU package never imports the hazard checks, nor the checks the CPU."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "hypemu"


def imports_of(path: Path) -> set[str]:
    """Absolute names of every module ``path`` imports (relative imports resolved)."""
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    package = parts[:-1]   # the package a relative import starts from (also for __init__)
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
                names |= {f"{module}.{a.name}" for a in node.names} if not node.module else {module}
            else:
                names.add(node.module or "")
    return names


def sources(under: str = "") -> list[Path]:
    return sorted((PACKAGE / under).rglob("*.py")) if under else sorted(PACKAGE.rglob("*.py"))


def test_only_the_engine_adapters_import_unicorn():
    users = {p.relative_to(PACKAGE).as_posix() for p in sources()
             if any(n == "unicorn" or n.startswith("unicorn.") for n in imports_of(p))}
    assert users <= {"engine.py", "engine_budget.py", "engine_pool.py", "engine_regs.py",
                     "engine_ram.py"} and "engine.py" in users


def test_the_cpu_and_the_checks_do_not_import_each_other():
    for path in sources("cpu"):
        assert not any(n.startswith("hypemu.hazards") for n in imports_of(path)), path
    assert not any(n.startswith("hypemu.cpu") for n in imports_of(PACKAGE / "hazards.py"))
    assert not any(n.startswith("hypemu.cpu") for n in imports_of(PACKAGE / "observer.py"))
