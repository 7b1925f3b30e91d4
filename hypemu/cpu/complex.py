"""All CPUs of a board on one Unicorn instance: the public face of the CPU model.

``CpuComplex`` powers CPUs on and off, selects the one that runs (swapping register contexts),
loads code, runs, translates, and takes table stores from outside the guest; the work is done by
``state``, ``insns``, ``exceptions``, ``fill`` and ``runner``. ``CpuComplexView`` is the read-only
view an observer (the hazard checks) is given.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Mapping, Optional

from .. import events
from ..decode import barrier_kind, needs_patch, needs_patch_thumb, thumb_size, thumb_stream
from ..engine import Engine
from ..observer import CpuObserver, NullObserver, Outcome
from ..tlb import TLB, Origin
from ..walker import Fault, Regime, Translation, walk
from .context import ExecContext, Stats
from .fill import Filler, translate, translate_with
from .runner import PATCH_MARKER, SENTINEL_WORD, THUMB_PATCH_MARKERS, Runner, RunResult
from .state import (CPSR_A, CPSR_F, CPSR_I, MODE_NAMES, MODE_SVC, MODE_USR, REG_CPSR,
                    REG_PC, REG_SP, CpuState, NotModelled)


PAGE = 4096


_PATCH_MEMO: dict[tuple[bytes, bool], tuple[bytes, tuple[tuple[int, int], ...]]] = {}


def _patched_code(code: bytes, barriers: bool) -> tuple[bytes, tuple[tuple[int, int], ...]]:
    """``code`` with the words the model emulates replaced by the trap marker, and (offset, word)
    of each. Remembered per content: a sweep loads the same few images thousands of times."""
    known = _PATCH_MEMO.get((code, barriers))
    if known is not None:
        return known
    data = bytearray(code)
    marks = []
    for off in range(0, len(data) - len(data) % 4, 4):
        word = int.from_bytes(data[off:off + 4], "little")
        if needs_patch(word) or (barriers and barrier_kind(word) is not None):
            marks.append((off, word))
            data[off:off + 4] = PATCH_MARKER.to_bytes(4, "little")
    if len(_PATCH_MEMO) > 256:
        _PATCH_MEMO.clear()
    known = _PATCH_MEMO[(code, barriers)] = (bytes(data), tuple(marks))
    return known


class CpuComplex:
    """All CPUs of a board on one Unicorn instance, with the HYP model in its hooks. ``engine``: a
    ready instance with exactly these banks, reset (``engine_pool`` lends one), else a new one."""

    def __init__(self, banks: list[tuple[int, int]], ncpus: int, tlb_entries: int = 0,
                 log: Optional[events.EventLog] = None, thumb: bool = False,
                 engine: Optional[Engine] = None) -> None:
        # thumb: Thumb code may run on it
        self.engine = engine if engine is not None else Engine(banks, thumb=thumb)
        self.regs = self.engine.regs
        self.cpus = [CpuState(i, TLB(tlb_entries)) for i in range(ncpus)]
        self.log = log if log is not None else events.EventLog()
        self.stats = Stats()
        self.ctx = ExecContext(self.cpus, self.regs, self.log, NullObserver(),
                               self.engine.flush_soft_tlb, self.engine.use_hyp_tlb, self.stats)
        self.filler = Filler(self.ctx, self.engine.read64, self.engine.read, self.engine.is_ram,
                             self.engine.scratch)
        self.runner = Runner(self.engine, self.ctx, self.filler)
        self.log.mode = lambda: MODE_NAMES.get(self.ctx.st.mode)
        for cpu in self.cpus:
            self._init_context(cpu)
        self.engine.context_restore(self.cpus[0].context)

    def _init_context(self, cpu: CpuState) -> None:
        for n in range(15):
            self.regs.write(n, 0)
        self.regs.write(REG_CPSR, MODE_USR)
        cpu.context = self.engine.context_save()

    # --- the observer -----------------------------------------------------------------------------
    def attach(self, observer: CpuObserver) -> None:
        """Show the CPUs' work to ``observer`` (before any code is loaded: with an enabled
        observer the loader patches the barriers to trap)."""
        self.ctx.observer = observer
        self.filler.observing = observer.enabled

    def record_detail(self, on: bool = True) -> None:
        """With ``on``, the log also gets every HYP walk and fill (``cpu.mmulog``), what each TLBI
        removed, and the registers of calls and exceptions (the trace asks for it)."""
        self.log.detailed = on
        self.filler.tracing = on

    @property
    def observer(self) -> CpuObserver:
        return self.ctx.observer

    def view(self) -> "CpuComplexView":
        return CpuComplexView(self)

    @property
    def cur(self) -> CpuState:
        """The CPU that runs now."""
        return self.ctx.st

    @property
    def events(self) -> list[events.Event]:
        return self.log.events

    # --- loading code ---------------------------------------------------------------------------
    def load_code(self, pa: int, code: bytes, thumb: bool = False) -> None:
        """Write guest code at ``pa``. Privileged instructions that would not trap in Unicorn's User
        mode (MRS CPSR, MSR CPSR, CPS) are replaced by a trap marker and remembered by address, so the
        model emulates them where they stand. With an observer, so are the barriers (ISB, DSB,
        DMB): it sees each one execute, at no cost to the code between them (a code hook would
        cost every instruction once Unicorn counts them). Reads of such a word by the guest return
        the marker. Deviation: the scan cannot tell code from data, so a literal that happens to
        encode one of these instructions is patched too (and still reads back as the marker).

        ``thumb``: the code is Thumb code, scanned instruction by instruction from its start (a
        16-bit instruction gets a 16-bit marker); the same deviation applies, and data inside the
        code can also put the scan out of step with the instructions after it. The engine is told
        that Thumb code may run (``Engine.thumb_code``)."""
        if thumb:
            self._load_thumb(pa, code)
            return
        barriers = self.observer.enabled
        data, marks = _patched_code(bytes(code), barriers)
        patched = self.runner.patched
        for old in [a for a in patched if pa <= a < pa + len(code)]:
            del patched[old]
        for off, word in marks:
            patched[pa + off] = word
        self.engine.write(pa, data)

    def _load_thumb(self, pa: int, code: bytes) -> None:
        data = bytearray(code)
        barriers = self.observer.enabled
        patched = self.runner.patched_thumb
        for off, value, size in thumb_stream(code):   # markers keep each instruction's size
            patched.pop(pa + off, None)
            if needs_patch_thumb(value, size) or (barriers and size == 4
                                                  and barrier_kind(value, thumb=True)):
                patched[pa + off] = (value, size)
                marker = THUMB_PATCH_MARKERS[size]
                halves = (marker,) if size == 2 else (marker >> 16, marker & 0xFFFF)
                data[off:off + size] = b"".join(h.to_bytes(2, "little") for h in halves)
        self.engine.thumb_code = True
        self.engine.write(pa, bytes(data))

    def add_sentinel(self, pa: int) -> None:
        """Place the return sentinel at ``pa``: a PL1 call whose LR points here ends the run."""
        self.engine.write32(pa, SENTINEL_WORD)
        self.runner.sentinels.add(pa)

    # --- CPU selection and registers ------------------------------------------------------------
    def select(self, cpu_id: int) -> CpuState:
        """Make ``cpu_id`` the CPU that Unicorn runs (swapping register contexts)."""
        target = self.cpus[cpu_id]
        if target is not self.cur:
            self.engine.context_update(self.cur.context)
            self.engine.context_restore(target.context)
            self.ctx.st = target
            self.log.cpu = target.id
            self.engine.flush_soft_tlb()
        return target

    def reg(self, n: int) -> int:
        return self.regs.read(n)

    def set_reg(self, n: int, value: int) -> None:
        self.regs.write(n, value & 0xFFFFFFFF)

    def set_call_regs(self, args: tuple[int, int, int, int], lr: int) -> None:
        """R0-R3 and LR of a call from PL1 (one engine call)."""
        self.regs.write_call(args, lr)

    def cpsr(self) -> int:
        """The architectural CPSR of the current CPU."""
        return self.ctx.cpsr()

    def banked_sp(self, cpu: CpuState, mode: int) -> int:
        if cpu.mode == mode:
            return self.regs.read(REG_SP) if cpu is self.cur else self._context_sp(cpu)
        return cpu.sp[mode]

    def _context_sp(self, cpu: CpuState) -> int:
        saved = self.engine.context_save()
        self.engine.context_restore(cpu.context)
        sp = self.regs.read(REG_SP)
        self.engine.context_restore(saved)
        return sp

    def power_on(self, cpu_id: int, mode: int = MODE_SVC) -> CpuState:
        """A CPU powered (back) on: cp15 registers at reset values, TLB empty, in ``mode`` (SVC, or
        HYP when the boot loader enters the kernel in HYP) with A/I/F masked."""
        st = self.select(cpu_id)
        self.ctx.set_cpsr(mode | CPSR_A | CPSR_I | CPSR_F)
        self._reset_hyp_state(st)
        st.online = True
        return st

    def power_off(self, cpu_id: int) -> CpuState:
        """A CPU powered off: its HYP registers go back to their reset values (HYP MMU off, HVBAR
        and HTTBR at reset), its TLB is empty and it runs nothing until ``power_on``."""
        st = self.select(cpu_id)
        self.record(events.KERNEL, "cpu off", detail="HYP registers at reset, TLB empty")
        if self.observer.enabled:   # a power-down sequence ends its maintenance with a DSB
            self.observer.barrier(st.id, "dsb")
        self._reset_hyp_state(st)
        st.online = False
        return st

    def _reset_hyp_state(self, st: CpuState) -> None:
        if self.observer.enabled:
            self.observer.reset(st.id)
        st.reset_hyp(self.regs)   # callers select ``st`` first: its SP is the live one
        self.engine.flush_soft_tlb()

    # --- events ---------------------------------------------------------------------------------
    def record(self, kind: str, name: str, value: Optional[int] = None, pc: Optional[int] = None,
               detail: str = "") -> None:
        """An event of the current CPU from outside the guest: at ``pc`` where a guest address
        belongs to it (the code a step enters), else with no PC (the kernel side runs none)."""
        self.log.record(kind, name, value, pc, detail)

    # --- running and translating -----------------------------------------------------------------
    def run_guest(self, pc: int, budget: Optional[int]) -> RunResult:
        """See ``runner.Runner.run``."""
        return self.runner.run_guest(pc, budget)

    def translate(self, va: int, access: str = "read", cpu: Optional[CpuState] = None,
                  ttbr: Optional[int] = None, hyp: bool = False) -> Translation | Fault | int:
        """Translate through the model (``fill.translate``) for ``cpu`` (default: the current
        one). ``ttbr``: a fresh walk of that table with the CPU's HTCR/HMAIR/HSCTLR.WXN."""
        st = cpu or self.cur
        if ttbr is not None:
            return walk(self.engine.read64, replace(st.hyp_regime(), ttbr=ttbr), va, access)
        return translate(st, self.engine.read64, va, access, hyp)

    def code_word(self, pc: int) -> Optional[int]:
        """The instruction word at ``pc`` for the current CPU, or None when it cannot be fetched."""
        try:
            if self.ctx.in_thumb():
                return self.runner.read_thumb(pc)[0]
            return self.runner.read_code_word(pc)
        except (NotModelled, LookupError):   # not mapped, or no RAM there
            return None

    # --- HYP page tables: written from outside the guest ----------------------------------------
    def watch_table_page(self, pa: int) -> None:
        """``pa`` holds a HYP page table: with an observer, guest stores to it are stepped and
        shown to it."""
        if self.observer.enabled:
            self.filler.table_pages.add(pa)

    def descriptor_stored(self, pa: int, old: int, new: int) -> None:
        """The kernel side wrote a descriptor: the observer sees it, and the next access of every
        page asks the model again."""
        if self.observer.enabled:
            self.observer.descriptor_stored(pa, old, new)
            self.engine.flush_soft_tlb()

    def write_phys(self, pa: int, data: bytes) -> None:
        """Write RAM from outside the guest; the table pages it changes go to the observer."""
        pages: list[int] = []
        if self.observer.enabled:
            first, last = pa & ~0xFFF, (pa + max(len(data), 1) - 1) & ~0xFFF
            pages = [p for p in range(first, last + 1, PAGE) if p in self.filler.table_pages]
        before = {p: self.engine.read(p, PAGE) for p in pages}
        self.engine.write(pa, data)
        if pages:
            self.observer.table_stored(before, None, None)
            self.engine.flush_soft_tlb()


class CpuComplexView:
    """The read-only view of the CPUs an observer gets (``observer.CpuView``)."""

    def __init__(self, cpus: CpuComplex) -> None:
        self._cpus = cpus
        self.read64 = cpus.engine.read64
        self.read = cpus.engine.read

    @property
    def ncpus(self) -> int:
        return len(self._cpus.cpus)

    def pc(self) -> int:
        return self._cpus.regs.read(REG_PC)

    def code_word(self, pc: int) -> Optional[int]:
        return self._cpus.code_word(pc)

    def code_word_at(self, pa: int) -> Optional[int]:
        engine, runner = self._cpus.engine, self._cpus.runner
        if not engine.is_ram(pa):
            return None
        if self.thumb():
            patched = runner.patched_thumb.get(pa)
            if patched is not None:
                return patched[0]
            hw1 = int.from_bytes(engine.read(pa, 2), "little")
            if thumb_size(hw1) == 2 or not engine.is_ram(pa + 2):
                return hw1
            return hw1 << 16 | int.from_bytes(engine.read(pa + 2, 2), "little")
        return runner.patched.get(pa) or engine.read32(pa)

    def thumb(self) -> bool:
        return self._cpus.ctx.in_thumb()

    def sysregs(self, cpu: int) -> Mapping[str, int]:
        return self._cpus.cpus[cpu].sysregs

    def hyp_regime(self, cpu: int) -> Regime:
        return self._cpus.cpus[cpu].hyp_regime()

    def tlb_entries(self, cpu: int) -> list[Translation]:
        return self._cpus.cpus[cpu].tlb.entries()

    def tlb_origin(self, cpu: int, t: Translation) -> Optional[Origin]:
        return self._cpus.cpus[cpu].tlb.origin(t)

    def translate_with(self, cpu: int, regs: Mapping[str, int], va: int, access: str) -> Outcome:
        return translate_with(self._cpus.cpus[cpu], self.read64, regs, va, access)


