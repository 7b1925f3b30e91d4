"""The same sweep on a local Ray instance (``ray.init(num_cpus=2)``) gives the rows of ``-j 2``,
and resumes an output that local runs started (the same keys, the same rows)."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import Any, Iterator

import pytest

import hypemu
from hypemu.sweep import Sweep, load_sweep
from hypemu.sweep import ray_backend

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                                reason="ray is not installed (pip install 'hypemu[ray]')")


@pytest.fixture(scope="module")
def local_ray() -> Iterator[Any]:
    # Ray's single-machine mode, all on the loopback address (else it binds this host's interface
    # address): the test talks to no other address
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    import ray
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1",
             runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})
    yield ray
    ray.shutdown()
    os.environ.pop("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", None)


def _by_point(rows: Any) -> dict[str, dict[str, Any]]:
    return {row["point"]: row for row in rows}


def test_ray_rows_equal_the_rows_of_two_local_workers(local_ray: Any, tmp_path: Path) -> None:
    path = str(ROOT / "sweeps" / "placement.yaml")
    spec = load_sweep(path)
    assert len(spec.indices()) > ray_backend.BATCH          # several tasks
    local = _by_point(hypemu.sweep(path, jobs=2))
    out = tmp_path / "rows.jsonl"
    first = Sweep(spec, str(out), jobs=2).new_rows()
    for _ in range(100):
        next(first)
    first.close()
    job = Sweep(spec, str(out), ray="auto")                  # joins the instance started above
    assert len(job.todo) == len(local) - 100
    assert _by_point(job.rows()) == local
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(written) == len(local) and _by_point(written) == local
