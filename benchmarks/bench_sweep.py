"""Sweep benchmarks: points per second per core, reused engines against fresh boards.

``python benchmarks/bench_sweep.py [--quick] [--json FILE]`` runs these alone (the same as
``hypemu bench --only sweep_points``). Method: hypemu/bench.py.
"""

from __future__ import annotations

import sys

from benchlib import ROOT, run_standalone
from hypemu.bench import Case, Target, benchmark, rate, seconds
from hypemu.engine_pool import EnginePool
from hypemu.result import run
from hypemu.sweep import load_sweep
from hypemu.sweep.points import scenario_at
from hypemu.sweep.rows import run_point
from hypemu.sweep.run import todo

PLACEMENT = ROOT / "sweeps" / "placement.yaml"


@benchmark("sweep_points", "points/s", full={"points": 150}, quick={"points": 4}, repeats=7,
           target=Target("value", ">=", 700, ">= 700 points/s per core"))
def sweep_points(points: int) -> Case:
    """1-CPU boots of the placement sweep (boot + a runtime call, every RAM layout): rows with
    reused engines, against fresh ``hypemu.run`` boards of the same points, one process."""
    spec = load_sweep(str(PLACEMENT))
    pool = EnginePool()
    chosen: list[int] = []
    for i in todo(spec, set())[::2]:   # in the order a sweep runs them: by RAM layout
        if len(chosen) < points and run_point(spec, i, pool)["outcome"] == "ok":
            chosen.append(i)
    layouts = {tuple(spec.values(i)[:2]) for i in chosen}

    def pooled() -> float:
        return seconds(lambda: [run_point(spec, i, pool) for i in chosen])

    def fresh() -> float:
        return seconds(lambda: [run(scenario_at(spec, spec.values(i))) for i in chosen])
    return Case(pooled, fresh, figure=rate(len(chosen)), detail=lambda cost: (
        f"{len(chosen)} booting points over {len(layouts)} RAM layouts, in the order a sweep "
        f"runs them; rows (scenario built, run, row made) on engines reused per layout (made "
        f"in the warm-up; a sweep makes one per layout, ~3 ms); baseline: a fresh board per "
        f"point; a refused layout costs only its plan (~0.2 ms)"))


if __name__ == "__main__":
    sys.exit(run_standalone(globals()))
