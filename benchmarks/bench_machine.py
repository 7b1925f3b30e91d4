"""Whole-board benchmarks: an 8-CPU boot, CPU hotplug cycles, the scenario library, and the peak
memory of an 8-CPU 2 GiB board.

``python benchmarks/bench_machine.py [--quick] [--json FILE]`` runs these alone (the same as
``hypemu bench --only boot_8cpu hotplug_cycles scenarios rss_8cpu_2g``). Method: hypemu/bench.py.
"""

from __future__ import annotations

import gc
import os
import statistics
import subprocess
import sys

from benchlib import ROOT, SCENARIO_DIR, board, counts_of, run_standalone
from hypemu.bench import Case, Target, benchmark, per_op, rate, seconds
from hypemu.engine_pool import EnginePool
from hypemu.result import run
from hypemu.scenario import load_file

MB = 1e6

# The board of rss_8cpu_2g, in a child process so that the figure is the board's, not the suite's.
RSS_BOARD = """
from hypemu.machine import Machine
m = Machine({"name": "rss", "machine": {"cpus": 8, "ram": {"size": "2GiB"}}})
m.boot("all")
for cpu in range(8):
    m.call(cpu, "hyp_probe")
"""
RSS_BASELINE = "import hypemu.machine, hypemu.scenario\n"   # the interpreter, Unicorn and hypemu
# VmHWM: the peak RSS of this process's own address space. Not getrusage's ru_maxrss: Linux
# carries the parent's peak at fork time over into the child's, so a big parent would be counted.
RSS_REPORT = """
import resource, sys
try:
    with open("/proc/self/status") as status:
        peak = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))
except OSError:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak *= 1 if sys.platform == "darwin" else 1024
print(peak)   # bytes
"""


@benchmark("boot_8cpu", "ms", full={"boards": 3}, quick={"boards": 1})
def boot_8cpu(boards: int) -> Case:
    """A full 8-CPU boot: Machine() (RAM, layout, code, HYP tables), then boot("all")."""
    boot_times: list[float] = []

    def one_board() -> float:
        gc.collect()               # the previous board's Unicorn instance, outside the timing
        built = []
        build = seconds(lambda: built.append(board(cpus=8, boot=False)))
        boot_times.append(seconds(lambda: built[0].boot("all")))
        return build + boot_times[-1]

    def measure() -> float:
        return sum(one_board() for _ in range(boards))
    return Case(measure, figure=per_op(boards, 1e3), detail=lambda cost: (
        f"of which boot('all') {statistics.median(boot_times) * 1e3:.2f} ms (8 x stub install, "
        f"phase 1, phase 2); the rest is Machine(): Unicorn, layout, code, HYP tables"))


@benchmark("hotplug_cycles", "cycles/s", full={"cycles": 100}, quick={"cycles": 1},
           target=Target("value", ">", 100, "100 cycles < 1 s"))
def hotplug_cycles(cycles: int) -> Case:
    """CPU 1 of a 2-CPU board: hotplug off, hotplug on (HYP init again), a runtime call."""
    m = board(cpus=2)

    def cycle() -> None:
        m.hotplug(1, "off")
        m.hotplug(1, "on")
        m.call(1, "hyp_probe")
    c = counts_of(m, cycle)

    def one() -> float:
        m.events.clear()
        return seconds(lambda: [cycle() for _ in range(cycles)])
    return Case(one, figure=rate(cycles), detail=lambda cost: (
        f"{cycles} cycle{'s' if cycles != 1 else ''} in {cost:.3f} s; {c['traps']} trapped "
        f"instructions and {c['hvcs']} HVCs per cycle"))


@benchmark("scenarios", "scen/s", full={"passes": 1}, quick={"passes": 1},
           target=Target("value", ">=", 200, ">= 200/s"))
def scenarios(passes: int) -> Case:
    """The whole scenarios/ directory, as `hypemu run scenarios/*.yaml` runs it (load, run, judge;
    boards of one RAM layout on one reused Unicorn instance, engine_pool)."""
    files = sorted(SCENARIO_DIR.glob("*.yaml"))
    if not files:
        raise RuntimeError(f"no scenario files in {SCENARIO_DIR}")
    passed: list[int] = []

    def library() -> None:
        engines = EnginePool()
        passed.append(sum(run(load_file(path), engines=engines).passed for path in files))

    def one() -> float:
        return seconds(lambda: [library() for _ in range(passes)])
    return Case(one, figure=rate(len(files) * passes), detail=lambda cost: (
        f"{len(files)} scenarios, {min(passed)} met their expectation"))


def _peak_rss(code: str) -> float:
    """Peak RSS (MB) of a fresh interpreter running ``code``, as that process measures itself."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    proc = subprocess.run([sys.executable, "-c", code + RSS_REPORT], env=env, capture_output=True,
                          text=True, timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"the RSS child failed: {proc.stderr.strip().splitlines()[-1:]}")
    return int(proc.stdout.split()[-1]) / MB


@benchmark("rss_8cpu_2g", "MB", full={}, quick={}, repeats=3,
           target=Target("value", "<", 200, "< 200 MB"),
           baseline="the same interpreter without a board")
def rss_8cpu_2g() -> Case:
    """Peak RSS of a process running an 8-CPU board with 2 GiB of RAM (booted, a call per CPU)."""
    base: list[float] = []

    def baseline() -> float:
        base.append(_peak_rss(RSS_BASELINE))
        return base[-1]
    return Case(lambda: _peak_rss(RSS_BOARD), baseline, detail=lambda cost: (
        f"the board's own {cost - statistics.median(base):.1f} MB for 2,048 MB of simulated RAM "
        f"(mapped, committed only where written); baseline: the same interpreter with hypemu and "
        f"Unicorn imported and no board"))


if __name__ == "__main__":
    sys.exit(run_standalone(globals()))
