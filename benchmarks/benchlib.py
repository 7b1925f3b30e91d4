"""Fixtures shared by the benchmark suite (``bench_*.py``): booted boards, guest code placed in HYP,
and the bare-Unicorn baselines.

A baseline is bare Unicorn by definition: flat memory, no MMU model, no hooks unless the row names
one. That is why this file imports unicorn (inside the hypemu package only engine.py does).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable, Optional

from unicorn import UC_ARCH_ARM, UC_CTL_IO_WRITE, UC_CTL_TLB_FLUSH, UC_HOOK_BLOCK
from unicorn import UC_HOOK_INSN_INVALID
from unicorn import UC_HOOK_TLB_FILL, UC_MODE_ARM, UC_PROT_ALL, UC_TLB_VIRTUAL, Uc
from unicorn.arm_const import UC_ARM_REG_CPSR, UC_ARM_REG_LR, UC_ARM_REG_PC, UC_ARM_REG_R0
from unicorn.arm_const import UC_ARM_REG_SP, UC_CPU_ARM_CORTEX_A15

from hypemu.asm import assemble
from hypemu.bench import Benchmark
from hypemu.engine import REG_PC, Registers
from hypemu.engine_budget import ENV as NATIVE_BUDGET_ENV
from hypemu.machine import Machine
from hypemu.scenario import from_mapping

ROOT = Path(__file__).resolve().parent.parent
SCENARIO_DIR = ROOT / "scenarios"
BUDGET = 10**10            # the largest limits.instructions: no benchmark run ever reaches it
PAGE = 4096
HYP_SCRATCH = 64 << 20     # RAM offset of the memory the suite maps into HYP (far above the image)
MODE_USR = 0x10


# --- boards ---------------------------------------------------------------------------------------
def board(cpus: int = 1, ram_size: Optional[str] = None, counted: bool = True,
          checks: bool = True, boot: bool = True) -> Machine:
    """A board of ``cpus`` CPUs (default RAM: 1 GiB), booted, with the hazard checks on as users
    run it (``checks`` False: off, for the mmu_loop pair). ``counted`` False: no instruction
    budget at all, from the start: an engine with the count= budget (no native block hook) that
    never counts (Unicorn 2.1.4 misbehaves when a counted emu_start is followed by an uncounted
    one on the same instance); only the suite runs hypemu that way, to measure what the exact
    budget costs."""
    spec: dict = {"name": "bench", "machine": {"cpus": cpus}, "limits": {"instructions": BUDGET}}
    if ram_size:
        spec["machine"]["ram"] = {"size": ram_size}
    scenario = from_mapping(spec)
    saved = os.environ.get(NATIVE_BUDGET_ENV)
    if not counted:
        os.environ[NATIVE_BUDGET_ENV] = "0"
    try:
        machine = Machine(scenario, checks=checks)
    finally:
        if saved is None:
            os.environ.pop(NATIVE_BUDGET_ENV, None)
        else:
            os.environ[NATIVE_BUDGET_ENV] = saved
    if not counted:
        machine.kernel.budget.limit = None
    if boot:
        machine.boot()
    return machine


def counts_of(m: Machine, fn: Callable[[], object]) -> dict[str, int]:
    """What one ``fn()`` costs the model: trapped instructions, instructions, fills, walks, HVCs."""
    names = ("traps", "instructions", "tlb_fills", "walks", "hvcs")
    stats = m.core.stats
    before = [getattr(stats, name) for name in names]
    fn()
    return {name: getattr(stats, name) - old for name, old in zip(names, before)}


def hyp_scratch(m: Machine, size: int, offset: int = 0) -> tuple[int, int]:
    """Map ``size`` bytes of RAM (at HYP_SCRATCH + ``offset`` in the first bank) into the runtime
    HYP table, as KVM maps its VM structures; returns (HYP VA, PA)."""
    pa = m.layout.banks[0].base + HYP_SCRATCH + offset
    return m.map_hyp(pa, size), pa


def hyp_function(m: Machine, source: str, offset: int) -> tuple[int, bytes]:
    """Assemble ``source`` at a fresh HYP VA and load it there. Returns that VA (``Machine.call``
    takes it as the function) and the code bytes."""
    va, pa = hyp_scratch(m, PAGE, offset)
    code = assemble(source, va).code
    if len(code) > PAGE:
        raise ValueError(f"benchmark code of {len(code)} bytes does not fit a page")
    m.core.load_code(pa, code)
    return va, code


# --- bare Unicorn ---------------------------------------------------------------------------------
class Bare:
    """Bare Unicorn with the Cortex-A15 model hypemu uses, flat memory (VA = PA), no hooks.

    ``counted``: every run is an ``emu_start(count=BUDGET)`` (one Unicorn instance never mixes the
    two kinds). ``fill_hook``: Unicorn's virtual TLB with a Python fill hook that only answers
    identity (the floor of any fill served from Python). ``trap_hook``: User mode, and a Python
    invalid-instruction hook that only steps over the instruction (the floor of any trap), reading
    and writing the PC the cheapest way Python has, the C-API access hypemu itself uses
    (``engine.Registers``; the binding's ``reg_read``/``reg_write`` cost about three times as
    much, which made the floor too high).
    ``block_hook``: a Python hook on every translated block that adds up its instructions (the
    other exact way to count them)."""

    STOP = 0x10000          # the return address of every call: a page that is never executed
    STACK_TOP = 0x12000

    def __init__(self, counted: bool = False, fill_hook: bool = False, trap_hook: bool = False,
                 block_hook: bool = False):
        uc = Uc(UC_ARCH_ARM, UC_MODE_ARM)
        uc.ctl_set_cpu_model(UC_CPU_ARM_CORTEX_A15)
        uc.ctl_set_page_size(PAGE)
        self.uc, self.count = uc, BUDGET if counted else 0
        self.regs = Registers(uc)
        self.fills = self.traps = self.instructions = 0
        if fill_hook:
            uc.ctl_set_tlb_mode(UC_TLB_VIRTUAL)
            uc.hook_add(UC_HOOK_TLB_FILL, self._fill)
        if trap_hook:
            uc.hook_add(UC_HOOK_INSN_INVALID, self._trap)
        if block_hook:
            uc.hook_add(UC_HOOK_BLOCK, self._block)
        self.user = trap_hook
        self.map(self.STOP, 2 * PAGE)

    def _fill(self, uc, va, access, entry, data) -> bool:
        self.fills += 1
        entry.paddr, entry.perms = va, UC_PROT_ALL
        return True

    def _trap(self, uc, data) -> bool:
        self.traps += 1
        regs = self.regs
        regs.write(REG_PC, regs.read(REG_PC) + 4)
        return True

    def _block(self, uc, address, size, data) -> None:
        self.instructions += size // 4   # ARM state: 4 bytes an instruction

    def map(self, va: int, size: int, data: bytes = b"") -> None:
        start, end = va & ~(PAGE - 1), (va + max(size, len(data)) + PAGE - 1) & ~(PAGE - 1)
        self.uc.mem_map(start, end - start)
        if data:
            self.uc.mem_write(va, data)

    def r0(self) -> int:
        return self.uc.reg_read(UC_ARM_REG_R0)

    def flush_tlb(self) -> None:
        self.uc.ctl(UC_CTL_TLB_FLUSH, UC_CTL_IO_WRITE)

    def call(self, pc: int, *args: int) -> Callable[[], None]:
        """A callable that runs the function at ``pc`` with ``args`` (r0-r3) until it returns."""
        uc = self.uc

        def go() -> None:
            if self.user:   # first: a mode change swaps the banked SP and LR
                uc.reg_write(UC_ARM_REG_CPSR, MODE_USR)
            for n, value in enumerate(args):
                uc.reg_write(UC_ARM_REG_R0 + n, value)
            uc.reg_write(UC_ARM_REG_SP, self.STACK_TOP)
            uc.reg_write(UC_ARM_REG_LR, self.STOP)
            uc.emu_start(pc, self.STOP, count=self.count)
            if uc.reg_read(UC_ARM_REG_PC) != self.STOP:
                raise RuntimeError(f"bare run stopped at {uc.reg_read(UC_ARM_REG_PC):#x}")
        return go


def bare_runtime(m: Machine, **hooks: bool) -> Bare:
    """Bare Unicorn (see ``Bare`` for ``hooks``) holding the board's runtime HYP code and its HYP
    data page at their HYP VAs, flat: the same code bytes hypemu runs, without the model."""
    bare = Bare(**hooks)
    program = m.kernel.image.runtime
    bare.map(program.base, len(program.code), program.code)
    bare.map(m.layout.kva(m.layout.hyp_data), PAGE, m.read_phys(m.layout.hyp_data, PAGE))
    return bare


# --- running one file on its own ------------------------------------------------------------------
def run_standalone(namespace: dict) -> int:
    """``python benchmarks/bench_X.py [--quick] [--json FILE]``: the benchmarks of that file only."""
    from hypemu.cli import main
    names = [obj.name for obj in namespace.values() if isinstance(obj, Benchmark)]
    return main(["bench", "--only", *names, *sys.argv[1:]])
