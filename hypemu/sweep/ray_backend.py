"""The same sweep on a Ray cluster (``hypemu sweep --ray ADDRESS|auto``; the extra
``hypemu[ray]``). The only importer of ray.

The points still to run go out in tasks of ``BATCH`` points (a task costs Ray a few
milliseconds, a point ~1-3 ms: a few hundred per task keep the overhead small and the tasks many);
each task runs its points with its own engine pool, like a local worker, and returns their rows,
which are yielded (so written to the output) as each task finishes. At most ``IN_FLIGHT`` tasks
per CPU of the cluster are submitted at once, so a 10-million-point sweep does not put every task
in Ray's object store up front. The rows are the local ones (``rows.run_point``): the same resume
and determinism rules hold. Workers need hypemu installed (the same version) on every node.
"""

from __future__ import annotations

from typing import Any, Iterator, Sequence

from ..errors import InputError
from .spec import SweepSpec

BATCH = 256
IN_FLIGHT = 4

RAY_MISSING = ("--ray needs ray, which is not installed: pip install 'hypemu[ray]' "
               "(or run without --ray: -j N uses this machine's cores)")


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise InputError(RAY_MISSING) from None
    return ray


def _run_batch(spec: SweepSpec, indices: list[int]) -> list[dict[str, Any]]:
    from .run import run_indices, worker_pool
    return run_indices(spec, indices, worker_pool())


def connect(address: str) -> None:
    """Join the cluster at ``address`` (``auto``: the one this machine belongs to, or
    RAY_ADDRESS), unless this process already did."""
    ray = _ray()
    if not ray.is_initialized():
        try:
            ray.init(address=address, log_to_driver=False)
        except (ConnectionError, ValueError, RuntimeError) as err:
            raise InputError(f"--ray {address}: cannot join a Ray cluster there: {err}") from None


def ray_rows(spec: SweepSpec, indices: Sequence[int], address: str) -> Iterator[dict[str, Any]]:
    """Rows of ``indices`` as the cluster's tasks finish."""
    ray = _ray()
    connect(address)
    task = ray.remote(_run_batch)
    spec_ref = ray.put(spec)
    batches = [list(indices[i:i + BATCH]) for i in range(0, len(indices), BATCH)]
    limit = max(1, int(ray.cluster_resources().get("CPU", 1)) * IN_FLIGHT)
    pending: list[Any] = []
    try:
        for batch in batches:
            if len(pending) >= limit:
                done, pending = ray.wait(pending, num_returns=1)
                yield from _rows_of(ray, done)
            pending.append(task.remote(spec_ref, batch))
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            yield from _rows_of(ray, done)
    finally:
        for ref in pending:
            ray.cancel(ref)


def _rows_of(ray: Any, refs: list[Any]) -> Iterator[dict[str, Any]]:
    for ref in refs:
        yield from ray.get(ref)
