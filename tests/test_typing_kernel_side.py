"""The kernel side, the loader and injection are ``mypy --strict`` clean (the modules this layer
owns; imports of other modules are followed silently)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODULES = ["hypemu/kvm", "hypemu/loader.py", "hypemu/inject.py", "hypemu/layout.py"]


def test_the_kernel_side_is_mypy_strict_clean(tmp_path):
    pytest.importorskip("mypy", reason="mypy is not installed (pip install -e '.[test]')")
    proc = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent",
                           "--cache-dir", str(tmp_path), *MODULES], cwd=ROOT, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
