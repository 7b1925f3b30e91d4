"""README.md stays the truth: its Python example runs, and its key table is the one the loader
generates from DEFAULTS."""

from __future__ import annotations

import re
from pathlib import Path

from hypemu.scenario import key_table

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_python_example_runs(monkeypatch):
    monkeypatch.chdir(ROOT)
    block = re.search(r"```python\n(.*?)```", README, re.S).group(1)
    namespace: dict = {}
    exec(compile(block, "README.md", "exec"), namespace)
    assert namespace["result"].passed and namespace["m"].booted == {0, 1}
    assert [h.kind for h in namespace["m"].hazards] == ["bbm"]   # as its comment says


def test_key_table_matches_the_loader():
    assert key_table().strip() in README


def test_make_targets_are_documented():
    makefile = (ROOT / "Makefile").read_text()
    assert "make run" in README and "make test" in README
    assert re.search(r"^run:", makefile, re.M) and re.search(r"^test:", makefile, re.M)
    assert (ROOT / ".ci" / "run").read_text().strip().endswith("make test")
