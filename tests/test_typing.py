"""``mypy --strict`` over the whole package: it ships ``py.typed``, so its hints are a promise to
users' type checkers."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "hypemu"


@pytest.mark.skipif(importlib.util.find_spec("mypy") is None, reason="mypy is not installed "
                    "(pip install -e '.[test]')")
def test_the_package_passes_mypy_strict():
    result = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent",
                             "--no-error-summary", str(PACKAGE)],
                            capture_output=True, text=True, cwd=PACKAGE.parent)
    assert result.returncode == 0, result.stdout + result.stderr
