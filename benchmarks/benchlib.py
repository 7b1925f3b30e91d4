"""Fixtures shared by the benchmark suite (``bench_*.py``): booted boards, guest code placed in HYP,
and the bare-Unicorn baselines.

A baseline is bare Unicorn by definition: flat memory, no MMU model, no hooks unless the row names
one. That is why this file imports unicorn (inside the hypemu package only engine.py does).
"""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path
from typing import Callable, Optional

from unicorn import UC_ARCH_ARM, UC_CTL_IO_WRITE, UC_CTL_TLB_FLUSH, UC_HOOK_BLOCK
from unicorn import UC_HOOK_INSN_INVALID
from unicorn import UC_HOOK_TLB_FILL, UC_MODE_ARM, UC_PROT_ALL, UC_TLB_VIRTUAL, Uc
from unicorn.arm_const import UC_CPU_ARM_CORTEX_A15
from unicorn.unicorn_py3.unicorn import uclib

from hypemu.asm import assemble
from hypemu.bench import Benchmark
from hypemu.engine import REG_CPSR, REG_LR, REG_PC, REG_SP, Registers
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
class _Entry(ctypes.Structure):
    _fields_ = [("paddr", ctypes.c_uint64), ("perms", ctypes.c_uint32)]   # uc_tlb_entry


# the C signatures of the fill, invalid-instruction and block hooks (as hypemu's engine has them)
_FILL_CB = ctypes.CFUNCTYPE(ctypes.c_bool, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_int,
                            ctypes.POINTER(_Entry), ctypes.c_void_p)
_INVALID_CB = ctypes.CFUNCTYPE(ctypes.c_bool, ctypes.c_void_p, ctypes.c_void_p)
_BLOCK_CB = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint32,
                             ctypes.c_void_p)


class Bare:
    """Bare Unicorn with the Cortex-A15 model hypemu uses, flat memory (VA = PA), no hooks.

    ``counted``: every run is an ``emu_start(count=BUDGET)`` (one Unicorn instance never mixes the
    two kinds). ``fill_hook``: Unicorn's virtual TLB with a Python fill hook that only answers
    identity (the floor of any fill served from Python). ``trap_hook``: User mode, and a Python
    invalid-instruction hook that only steps over the instruction (the floor of any trap).
    ``block_hook``: a Python hook on every translated block that adds up its instructions (the
    other exact way to count them).

    Each floor costs what the same work costs hypemu's own mechanism, no more: the hooks are
    ctypes callbacks registered on Unicorn's C API, as hypemu's engine registers its own (the
    binding's wrappers add two Python calls per hook), registers go through the C API
    (``engine.Registers``; the binding's ``reg_read``/``reg_write`` cost about three times as
    much), and runs through ``uc_emu_start`` itself."""

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
        self._callbacks: list[object] = []     # kept alive as long as the instance
        if fill_hook:
            uc.ctl_set_tlb_mode(UC_TLB_VIRTUAL)
            self._hook(UC_HOOK_TLB_FILL, _FILL_CB(self._fill))
        if trap_hook:
            self._hook(UC_HOOK_INSN_INVALID, _INVALID_CB(self._trap))
        if block_hook:
            self._hook(UC_HOOK_BLOCK, _BLOCK_CB(self._block))
        self.user = trap_hook
        self.map(self.STOP, 2 * PAGE)

    def _hook(self, kind: int, callback: object) -> None:
        self._callbacks.append(callback)
        handle = ctypes.c_size_t()
        if uclib.uc_hook_add(self.uc._uch, ctypes.byref(handle), kind,
                             ctypes.cast(callback, ctypes.c_void_p), None, 1, 0):
            raise RuntimeError(f"uc_hook_add({kind}) failed")

    def _fill(self, uc, va, access, entry, data) -> bool:
        self.fills += 1
        result = entry.contents
        result.paddr, result.perms = va, UC_PROT_ALL
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
        return self.regs.read(0)

    def flush_tlb(self) -> None:
        self.uc.ctl(UC_CTL_TLB_FLUSH, UC_CTL_IO_WRITE)

    def call(self, pc: int, *args: int) -> Callable[[], None]:
        """A callable that runs the function at ``pc`` with ``args`` (r0-r3) until it returns."""
        regs, handle, emu_start = self.regs, self.uc._uch, uclib.uc_emu_start
        until, count = self.STOP, self.count

        def go() -> None:
            if self.user:   # first: a mode change swaps the banked SP and LR
                regs.write(REG_CPSR, MODE_USR)
            for n, value in enumerate(args):
                regs.write(n, value)
            regs.write(REG_SP, self.STACK_TOP)
            regs.write(REG_LR, until)
            if emu_start(handle, pc, until, 0, count):
                raise RuntimeError(f"bare run failed at {regs.read(REG_PC):#x}")
            if regs.read(REG_PC) != until:
                raise RuntimeError(f"bare run stopped at {regs.read(REG_PC):#x}")
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
