"""The benchmark suite (``hypemu bench``): speed is a feature, measured in one process.

Each number is either an absolute rate for a hypemu operation or a *ratio* against a baseline run in
the same process (bare Unicorn running the same code bytes with no MMU and no hooks), so numbers
from different machines can be compared. Targets (the core engine issue):

- one CPU's full HYP init (stub + phase 1 + phase 2), warm: <= 2 ms
- a HYP load loop with the MMU on and a warm TLB vs bare Unicorn: ratio <= 1.10
- Unicorn TLB misses served by the model: >= 200,000 fills/s
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from unicorn import UC_ARCH_ARM, UC_MODE_ARM, Uc
from unicorn.arm_const import UC_ARM_REG_LR, UC_ARM_REG_R0, UC_ARM_REG_R1, UC_ARM_REG_R2
from unicorn.arm_const import UC_ARM_REG_SP

from .machine import Machine
from .scenario import DEFAULT_SCENARIO, from_mapping


@dataclass
class Measure:
    name: str
    value: float
    unit: str
    target: str
    detail: str = ""

    def line(self) -> str:
        return f"{self.name:<34} {self.value:>14,.3f} {self.unit:<10} target {self.target:<10} {self.detail}"


def _best(fn: Callable[[], None], repeat: int) -> float:
    """The fastest of ``repeat`` timed runs (the least disturbed by the rest of the machine)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _machine(counted: bool = True) -> Machine:
    """The default board, booted. ``counted`` False: no instruction budget at all, from the start
    (Unicorn 2.1.4 misbehaves when a counted emu_start is followed by an uncounted one)."""
    scenario = from_mapping({**DEFAULT_SCENARIO, "limits": {"instructions": 10**10}})
    machine = Machine(scenario)
    if not counted:
        machine.kernel.budget.limit = None
    machine.boot()
    return machine


def bench_init(reps: int = 200) -> Measure:
    """A CPU's whole init, warm: re-run as CPU hotplug does (power on, stub, phase 1, phase 2)."""
    m = _machine()
    m.kernel.boot_cpu(0)
    seconds = _best(lambda: [m.kernel.boot_cpu(0) for _ in range(reps)], 3) / reps
    return Measure("cpu init (stub+phase1+phase2)", seconds * 1e3, "ms", "<= 2 ms",
                   f"{m.core.stats.traps // (reps * 3 + 2)} traps/init")


def _bare_sum(m: Machine, rounds: int, count: int) -> Callable[[], None]:
    """The same hyp_sum code bytes on a bare Unicorn: flat memory, no MMU, no hooks."""
    lay, runtime = m.layout, m.kernel.image.runtime
    uc = Uc(UC_ARCH_ARM, UC_MODE_ARM)
    uc.ctl_set_page_size(4096)
    text, data = lay.kva(lay.hyp_text), lay.kva(lay.hyp_data)
    uc.mem_map(text & ~0xFFF, (len(runtime.code) + 0xFFF) & ~0xFFF)
    uc.mem_write(text, runtime.code)
    uc.mem_map(data, 0x1000)
    uc.mem_map(0x10000, 0x2000)
    uc.mem_write(data, m.read_phys(lay.hyp_data, 0x1000))
    stop = 0x10000

    def go() -> None:
        uc.reg_write(UC_ARM_REG_R0, data)
        uc.reg_write(UC_ARM_REG_R1, 1024)
        uc.reg_write(UC_ARM_REG_R2, rounds)
        uc.reg_write(UC_ARM_REG_SP, 0x12000)
        uc.reg_write(UC_ARM_REG_LR, stop)
        uc.emu_start(runtime.address("hyp_sum"), stop, count=count)
    return go


def bench_loop(rounds: int = 4000) -> list[Measure]:
    """hyp_sum over the 4 KiB HYP data page (~4 instructions per word, 1024 words per round), with
    the exact instruction budget (as scenarios run) and uncounted (the HYP model's cost alone)."""
    timings = []
    for exact in (True, False):
        m = _machine(counted=exact)
        va = m.layout.kva(m.layout.hyp_data)
        m.call(0, "hyp_sum", va, 1024, 1)
        timings.append(_best(lambda: m.call(0, "hyp_sum", va, 1024, rounds), 5))
    counted, uncounted = timings
    bare = _bare_sum(m, rounds, 0)
    bare()
    bare_time = _best(bare, 5)
    bare_counted = _bare_sum(m, rounds, 10**10)
    bare_counted()
    bare_counted_time = _best(bare_counted, 5)
    instructions = rounds * 1024 * 4
    return [
        Measure("HYP loop vs bare, exact budget", counted / bare_time, "ratio", "<= 1.10",
                f"hypemu {counted * 1e3:.1f} ms ({instructions / counted / 1e6:.0f} MIPS), "
                f"bare {bare_time * 1e3:.1f} ms ({instructions / bare_time / 1e6:.0f} MIPS)"),
        Measure("HYP loop vs bare, uncounted", uncounted / bare_time, "ratio", "(model only)",
                f"hypemu {uncounted * 1e3:.1f} ms: the MMU/TLB model and traps without the budget"),
        Measure("bare with count= vs without", bare_counted_time / bare_time, "ratio", "(bound)",
                "Unicorn's per-instruction count hook, which the exact budget needs"),
    ]


def bench_fills(pages: int = 2048, reps: int = 20) -> Measure:
    """Every page access misses Unicorn's soft TLB (flushed at each HVC's mode switch) and is served
    from the warm TLB model: fills per second of guest run time."""
    m = _machine()
    lay = m.layout
    pa = lay.banks[0].base + (64 << 20)
    va = m.map_hyp(pa, pages * 4096)
    m.call(0, "hyp_touch", va, pages, 1)   # walks once: the TLB model is warm afterwards
    stats = m.core.stats
    walks, fills = stats.walks, stats.tlb_fills
    seconds = _best(lambda: m.call(0, "hyp_touch", va, pages, 1), reps)
    per_call = (stats.tlb_fills - fills) / reps
    assert stats.walks == walks, "the TLB model should have served every fill"
    return Measure("TLB fills served (model hits)", per_call / seconds, "fills/s", ">= 200,000",
                   f"{per_call:.0f} fills per call, {seconds * 1e3:.2f} ms per call")


def run_all() -> list[Measure]:
    return [bench_init(), *bench_loop(), bench_fills()]


def main() -> int:
    print(f"{'benchmark':<34} {'value':>14} {'unit':<10}")
    for measure in run_all():
        print(measure.line())
    return 0
