"""The core engine's benchmarks: one CPU's init, a runtime HVC, the HYP MMU loop against bare
Unicorn, TLB fills, the walker alone, trapped system-register instructions.

``python benchmarks/bench_core.py [--quick] [--json FILE]`` runs these alone (the same as
``hypemu bench --only`` with their names). Method and columns: hypemu/bench.py.
"""

from __future__ import annotations

import sys

from benchlib import PAGE, Bare, bare_runtime, board, counts_of, hyp_function
from benchlib import hyp_scratch, run_standalone
from hypemu.asm import assemble
from hypemu.bench import Case, Target, benchmark, per_op, rate, seconds
from hypemu.walker import forget_walks, Translation, walk

LOOP_WORDS = 1024                # hyp_sum over the 4 KiB HYP data page
LOOP_INSNS_PER_WORD = 4          # ldr, add, subs, bne
TRAP_PAIRS = 8                   # MRC + MCR pairs unrolled in one round of the trap loop
TRAP_INSN = "mrc p15, 4, r1, c12, c0, 0"   # HVBAR: traps on bare Unicorn in User mode too
FLOOR_VA = 0x20000
LOOP_TARGET = Target("ratio", "<=", 1.10, "ratio <= 1.10")         # the model alone
BUDGET_TARGET = Target("ratio", "<=", 1.5, "ratio <= 1.5")         # with the exact budget


@benchmark("init_per_cpu", "ms", full={"reps": 50}, quick={"reps": 1},
           target=Target("value", "<=", 0.3, "<= 0.3 ms"))
def init_per_cpu(reps: int) -> Case:
    """One CPU's HYP bring-up, warm: stub install, HVC to the stub, phase 1, phase 2."""
    m = board()
    c = counts_of(m, lambda: m.kernel.boot_cpu(0))

    def one() -> float:
        m.events.clear()
        return seconds(lambda: [m.kernel.boot_cpu(0) for _ in range(reps)])
    return Case(one, figure=per_op(reps, 1e3), detail=lambda cost: (
        f"{c['traps']} trapped instructions, {c['tlb_fills']} TLB fills, {c['walks']} walks, "
        f"{c['instructions']} instructions per init"))


@benchmark("hvc_roundtrip", "us", full={"calls": 300}, quick={"calls": 1},
           target=Target("ratio", "<=", 1.5, "ratio <= 1.5"),
           baseline="bare Unicorn through as many Python-served traps (C-API PC access)")
def hvc_roundtrip(calls: int) -> Case:
    """A runtime HVC from the kernel side and back: Machine.call(0, "hyp_probe")."""
    m = board()
    m.call(0, "hyp_probe")     # warm: the counts are those of every later call
    c = counts_of(m, lambda: m.call(0, "hyp_probe"))
    call = m.call

    def one() -> float:
        m.events.clear()
        return seconds(lambda: [call(0, "hyp_probe") for _ in range(calls)])

    # The floor: one bare emu_start per call through as many trapping instructions, each stepped
    # over by a Python hook that does nothing else (PC read and written through the C API, as
    # hypemu does), its soft TLB warm as hypemu's is (a mode switch keeps it).
    floor = Bare(trap_hook=True, fill_hook=True)
    source = "\n".join([TRAP_INSN] * c["traps"] + ["bx lr"])
    floor.map(FLOOR_VA, PAGE, assemble(source, FLOOR_VA).code)
    floor_call = floor.call(FLOOR_VA)

    def floor_one() -> float:
        return seconds(lambda: [floor_call() for _ in range(calls)])
    return Case(one, floor_one, figure=per_op(calls, 1e6), detail=lambda cost: (
        f"{c['traps']} trapped instructions (HVC, MRC HSR, MRS/MSR SPSR, ERET, the return), "
        f"{c['tlb_fills']} TLB fills, {c['instructions']} instructions per call; baseline: one "
        f"bare emu_start through {c['traps']} traps that a Python hook only steps over "
        f"(C-API PC access)"))


def _loop(counted: bool, rounds: int, checks: bool = False, note: str = "") -> Case:
    """hyp_sum over the HYP data page with the MMU on and a warm TLB, against the same code bytes
    on bare Unicorn (flat memory, no MMU, no hooks, no count)."""
    m = board(counted=counted, checks=checks)
    data_va = m.layout.kva(m.layout.hyp_data)
    bare = bare_runtime(m)
    bare_sum = bare.call(m.symbol("hyp_sum"), data_va, LOOP_WORDS, rounds)
    hyp_sum = lambda: m.call(0, "hyp_sum", data_va, LOOP_WORDS, rounds)  # noqa: E731
    bare_sum()
    if hyp_sum() != bare.r0():
        raise RuntimeError("hyp_sum: hypemu and bare Unicorn disagree: not the same work")
    insns = rounds * LOOP_WORDS * LOOP_INSNS_PER_WORD
    return Case(lambda: seconds(hyp_sum), lambda: seconds(bare_sum), figure=per_op(1, 1e3),
                detail=lambda cost: f"{insns:,} instructions per run, {insns / cost / 1e6:.0f} MIPS"
                                    + note)


@benchmark("mmu_loop", "ms", full={"rounds": 8000}, quick={"rounds": 2}, repeats=15,
           target=BUDGET_TARGET,
           baseline="bare Unicorn, the same loop, no MMU, no hooks")
def mmu_loop(rounds: int) -> Case:
    """A HYP load loop, MMU on, warm TLB, exact instruction budget (as scenarios run) vs bare;
    hazard checks off (mmu_loop_checks has them on)."""
    return _loop(True, rounds, note=f"; budget: {_budget_name()}")


def _budget_name() -> str:
    from hypemu.engine_budget import native_unavailable
    return "native block hook" if native_unavailable() is None else \
        "emu_start(count=), see count_hook"


@benchmark("mmu_loop_uncounted", "ms", full={"rounds": 8000}, quick={"rounds": 2}, repeats=15,
           target=LOOP_TARGET,
           baseline="bare Unicorn, the same loop, no MMU, no hooks")
def mmu_loop_uncounted(rounds: int) -> Case:
    """The same loop without an instruction budget: what the HYP model itself costs."""
    return _loop(False, rounds)


@benchmark("mmu_loop_checks", "ms", full={"rounds": 8000}, quick={"rounds": 2}, repeats=15,
           target=BUDGET_TARGET,
           baseline="bare Unicorn, the same loop, no MMU, no hooks")
def mmu_loop_checks(rounds: int) -> Case:
    """The mmu_loop with the hazard checks on (DESIGN.md 1.4)."""
    return _loop(True, rounds, checks=True, note=f"; budget: {_budget_name()}")


@benchmark("count_hook", "ms", full={"rounds": 8000}, quick={"rounds": 2}, repeats=15,
           baseline="bare Unicorn, the same loop uncounted")
def count_hook(rounds: int) -> Case:
    """Bare Unicorn's own cost of emu_start(count=): the same loop counted vs uncounted."""
    m = board(boot=False)
    data_va = m.layout.kva(m.layout.hyp_data)
    runs = []
    for counted in (True, False):   # one instance each: Unicorn 2.1.4 must not mix the two
        bare = bare_runtime(m, counted=counted)
        runs.append(bare.call(m.symbol("hyp_sum"), data_va, LOOP_WORDS, rounds))
    counted_run, uncounted_run = runs
    return Case(lambda: seconds(counted_run), lambda: seconds(uncounted_run), figure=per_op(1, 1e3),
                detail=lambda cost: "Unicorn's per-instruction counting hook, which an exact "
                                    "budget through emu_start(count=) pays on every instruction")


@benchmark("count_block_hook", "ms", full={"rounds": 100}, quick={"rounds": 2},
           baseline="bare Unicorn, the same loop uncounted, no hook")
def count_block_hook(rounds: int) -> Case:
    """The other exact count on bare Unicorn: a Python block hook adding up block sizes, vs none."""
    m = board(boot=False)
    data_va = m.layout.kva(m.layout.hyp_data)
    hooked, plain = bare_runtime(m, block_hook=True), bare_runtime(m)
    hooked_run = hooked.call(m.symbol("hyp_sum"), data_va, LOOP_WORDS, rounds)
    plain_run = plain.call(m.symbol("hyp_sum"), data_va, LOOP_WORDS, rounds)
    return Case(lambda: seconds(hooked_run), lambda: seconds(plain_run), figure=per_op(1, 1e3),
                detail=lambda cost: "a Python call per translated block (4 instructions in this "
                                    "loop): why the native budget's block hook is C")


def _touch(pages: int, calls: int, cold: bool) -> Case:
    """hyp_touch over ``pages`` distinct pages, ``calls`` times; every page misses Unicorn's soft
    TLB (flushed before each call, as the baseline's is: a mode switch keeps it). Warm: the TLB
    model serves each fill. Cold: the model is emptied (TLBIALLH, untimed) before each call, so
    each fill walks the tables too."""
    m = board()
    va, _ = hyp_scratch(m, pages * PAGE)
    flush = m.core.engine.flush_soft_tlb

    def touch() -> None:
        flush()
        m.call(0, "hyp_touch", va, pages, 1)
    empty = lambda: m.call(0, "hyp_tlbi_all")              # noqa: E731
    touch()                        # walks once: the TLB model is warm afterwards
    if cold:
        empty()
    c = counts_of(m, touch)
    if c["walks"] != (pages if cold else 0):
        raise RuntimeError(f"{'cold' if cold else 'warm'} touch walked {c['walks']} times")
    bare = bare_runtime(m, fill_hook=True)
    bare.map(va, pages * PAGE)
    bare_touch = bare.call(m.symbol("hyp_touch"), va, pages, 1)

    def hyp_one() -> float:
        total = 0.0
        for _ in range(calls):
            if cold:
                empty()
            total += seconds(touch)
        return total

    def bare_one() -> float:
        def go() -> None:
            for _ in range(calls):
                bare.flush_tlb()
                bare_touch()
        return seconds(go)
    return Case(hyp_one, bare_one, figure=rate(c["tlb_fills"] * calls), detail=lambda cost: (
        f"{c['tlb_fills']} fills and {c['walks']} walks per call ({pages} pages + code, stack, "
        f"caller); baseline: bare Unicorn whose Python fill hook only answers VA = PA"))


@benchmark("tlb_fills", "fills/s", full={"pages": 2048, "calls": 10}, quick={"pages": 16, "calls": 1},
           target=Target("value", ">=", 200_000, ">= 200,000/s"),
           baseline="bare Unicorn, the same touches, an identity fill hook")
def tlb_fills(pages: int, calls: int) -> Case:
    """A HYP guest touching many distinct pages: Unicorn soft-TLB misses served by the TLB model."""
    return _touch(pages, calls, cold=False)


@benchmark("tlb_fills_cold", "fills/s", full={"pages": 2048, "calls": 1},
           quick={"pages": 16, "calls": 1}, target=Target("value", ">=", 200_000, ">= 200,000/s"),
           baseline="bare Unicorn, the same touches, an identity fill hook")
def tlb_fills_cold(pages: int, calls: int) -> Case:
    """The same with the TLB model emptied before each pass: every fill walks the tables."""
    return _touch(pages, calls, cold=True)


@benchmark("walks", "walks/s", full={"pages": 2048}, quick={"pages": 16},
           baseline="the walk's descriptor reads alone")
def walks(pages: int) -> Case:
    """The HYP stage-1 walker alone, over distinct 4 KiB pages of the runtime table."""
    m = board()
    va, _ = hyp_scratch(m, pages * PAGE)
    regime, read64 = m.core.cpus[0].hyp_regime(), m.core.engine.read64
    vas = [va + n * PAGE for n in range(pages)]
    results = [walk(read64, regime, v, "read") for v in vas]
    if not all(isinstance(t, Translation) for t in results):
        raise RuntimeError("walks: a walk of a mapped page faulted")
    reads = [pa for t in results for pa in t.descriptors]

    def fresh() -> float:
        forget_walks()   # each page walked from scratch, not re-read from the walker's memo
        return seconds(lambda: [walk(read64, regime, v, "read") for v in vas])
    return Case(fresh, lambda: seconds(lambda: [read64(pa) for pa in reads]), figure=rate(pages),
                detail=lambda cost: (
                    f"{len(reads) / pages:.0f} descriptor reads per walk, first walks of each "
                    f"page (a page walked again whose descriptors read the same is reused: "
                    f"tlb_fills_cold); baseline: those reads alone (engine.read64: the RAM "
                    f"hypemu owns, read through mmap)"))


@benchmark("trapped_insns", "insns/s", full={"rounds": 250}, quick={"rounds": 2},
           baseline="bare Unicorn, a hook that steps over each trapped instruction")
def trapped_insns(rounds: int) -> Case:
    """HYP code doing nothing but trapped system-register accesses (MRC and MCR of HVBAR)."""
    m = board()
    pair = [TRAP_INSN, "mcr p15, 4, r1, c12, c0, 0"]   # HVBAR, read and written back
    source = "\n".join(["trap_loop:", *pair * TRAP_PAIRS, "subs r0, r0, #1", "bne trap_loop",
                        "bx lr"])
    va, code = hyp_function(m, source, 0)
    c = counts_of(m, lambda: m.call(0, va, 1))
    bare = Bare(trap_hook=True)
    bare.map(va, PAGE, code)
    bare_loop = bare.call(va, rounds)

    def hyp_one() -> float:
        m.events.clear()           # each MCR is an event; keep the log from growing
        return seconds(lambda: m.call(0, va, rounds))
    traps = 2 * TRAP_PAIRS * rounds
    return Case(hyp_one, lambda: seconds(bare_loop), figure=rate(traps), detail=lambda cost: (
        f"{traps:,} per run (+{c['traps'] - 2 * TRAP_PAIRS} for the HVC around it); baseline: "
        f"bare Unicorn whose Python hook only steps over each"))


if __name__ == "__main__":
    sys.exit(run_standalone(globals()))
