"""Placement sweeps: one scenario, axes over its keys, every combination (or a random sample)
run as a point and reported as a row.

- ``spec``: the sweep file (axes, ranges, sampling), checked with FILE:LINE errors;
- ``points``: a point's scenario, its key, where an invalid combination is cited;
- ``rows``: a point run and turned into its row (the columns);
- ``run``: running points here or in worker processes (``ray_backend``: on a Ray cluster);
- ``output``: the append-only, resumable output file (JSON lines, CSV, Parquet);
- ``driver``: one sweep from its points to its output; ``sweep()`` is the Python API;
- ``summary``, ``progress``, ``plot``, ``command``: what ``hypemu sweep`` prints and draws.
"""

from __future__ import annotations

import sys
import types
from typing import Any, Iterator

from .driver import Sweep, sweep
from .rows import FIXED_COLUMNS, OUTCOMES, columns
from .spec import Axis, Sample, SweepSpec, from_data, load_sweep

__all__ = ["Axis", "FIXED_COLUMNS", "OUTCOMES", "Sample", "Sweep", "SweepSpec", "columns",
           "from_data", "load_sweep", "sweep"]


class _CallableModule(types.ModuleType):
    """``hypemu.sweep(...)`` is the API function, but ``hypemu.sweep`` is also this package: once
    any of its modules is imported, Python binds the name to the package. Calling the package
    calls ``sweep``, so both spellings work whatever was imported first."""

    def __call__(self, *args: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:
        return sweep(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
