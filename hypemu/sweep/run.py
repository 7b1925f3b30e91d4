"""Running the points of a sweep: in this process, in ``-j N`` worker processes, or on Ray
(``ray_backend``); rows come back as points finish.

Each worker keeps an ``EnginePool`` (one Unicorn instance per RAM layout, reset between points)
and runs the points it is given one by one. Points go out in chunks, so the cost of handing a
point over stays small beside its run; which worker ran a point never shows in its row.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
from typing import Any, Iterator, Optional, Sequence

from ..engine_pool import EnginePool
from .points import point_key
from .rows import run_point
from .spec import SweepSpec

CHUNK = 32   # points per task of a local worker

_worker_spec: Optional[SweepSpec] = None
_worker_pool: Optional[EnginePool] = None


def todo(spec: SweepSpec, done: set[str]) -> list[int]:
    """The grid indices of the points whose rows are not there yet, in the order to run them:
    grouped by RAM layout (the values of the ``machine.ram`` axes), then by index, so that a
    worker's engine pool meets each layout in one run of points, whatever the order of the axes
    or the sample (a row does not depend on the order)."""
    indices = spec.indices()
    if done:
        indices = [i for i in indices if point_key(spec, spec.values(i)) not in done]
    ram = [n for n, a in enumerate(spec.axes) if any(p.startswith("machine.ram") for p in a.paths)]
    if ram and len(ram) < len(spec.axes):
        total = spec.grid_size

        def layout_first(index: int) -> int:   # one int per point: millions sort in memory
            at, number = spec.positions(index), 0
            for n in ram:
                number = number * len(spec.axes[n].values) + at[n]
            return number * total + index
        indices.sort(key=layout_first)
    return indices


def run_indices(spec: SweepSpec, indices: Sequence[int],
                pool: Optional[EnginePool] = None) -> list[dict[str, Any]]:
    """The rows of ``indices``, run here one after the other."""
    engines = pool if pool is not None else EnginePool()
    return [run_point(spec, i, engines) for i in indices]


def worker_pool() -> EnginePool:
    """This process's engine pool (a worker process, local or Ray's, keeps one across tasks)."""
    global _worker_pool
    if _worker_pool is None:
        _worker_pool = EnginePool()
    return _worker_pool


def _init_worker(spec: SweepSpec) -> None:
    global _worker_spec
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C is the main process's to handle
    _worker_spec = spec


def _run_chunk(indices: list[int]) -> list[dict[str, Any]]:
    assert _worker_spec is not None
    return run_indices(_worker_spec, indices, worker_pool())


def chunks(indices: Sequence[int], size: int) -> list[list[int]]:
    return [list(indices[i:i + size]) for i in range(0, len(indices), size)]


def local_rows(spec: SweepSpec, indices: Sequence[int], jobs: int) -> Iterator[dict[str, Any]]:
    """Rows as points finish: here when ``jobs`` is 1, else in ``jobs`` worker processes."""
    if jobs <= 1 or len(indices) <= CHUNK:
        pool = EnginePool()
        for i in indices:
            yield run_point(spec, i, pool)
        return
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    context = multiprocessing.get_context(method)
    workers = context.Pool(jobs, initializer=_init_worker, initargs=(spec,))
    try:
        for rows in workers.imap_unordered(_run_chunk, chunks(indices, CHUNK)):
            yield from rows
        workers.close()
    finally:
        workers.terminate()
        workers.join()


def default_jobs() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
