"""``mypy --strict`` over the modules that are already strict-clean: the CPU package, the checks
and their interface, the engine adapter, and the pure core. (The rest of the package joins this
list as it becomes clean.)"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "hypemu"
STRICT = ["cpu", "hazards.py", "observer.py", "engine.py", "engine_budget.py", "cp15.py", "decode.py", "events.py",
          "tlb.py", "syndrome.py", "walker.py", "lpae.py", "trace.py"]


@pytest.mark.skipif(importlib.util.find_spec("mypy") is None, reason="mypy is not installed "
                    "(pip install -e '.[test]')")
def test_strict_modules_pass_mypy_strict():
    result = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent",
                             "--no-error-summary", *(str(PACKAGE / m) for m in STRICT)],
                            capture_output=True, text=True, cwd=PACKAGE.parent)
    assert result.returncode == 0, result.stdout + result.stderr
