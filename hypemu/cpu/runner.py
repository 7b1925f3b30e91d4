"""The run loop of the running CPU, the trap handler, and the two services that step one
instruction: the replay that finds a data access's exact VA (for an abort's HDFAR and for a check's
report) and the stepping of a guest store to a HYP table page.

Why one module: a run is one ``emu_start`` until a sentinel, a fault, a WFI or the budget, but a
fill may pause it (``fill.Pause``); the loop resumes it at the same instruction, so the instruction
budget stays exact (the paused instruction is not counted twice).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Union

from ..decode import is_thumb_wfi, is_wfi, thumb_size
from ..engine import Engine
from ..walker import Fault
from . import exceptions, insns
from .context import ExecContext, FaultRecord
from .fill import Filler, LocateHazard, Pause, Refuse, TableStore, translate
from .state import CPSR_T, MODE_SVC, REG_CPSR, REG_PC, NotModelled

# Where the PL1 caller returns; stops the run. UDF in both states: ARM UDF #0xDDED (A1), and its
# first halfword 0xDEFD is Thumb UDF #0xFD (T1), so a BX LR from Thumb code traps on it too.
SENTINEL_WORD = 0xE7FDDEFD
PATCH_MARKER = 0xE7FA5AF5    # UDF #0xA5A5: stands for an instruction that would not trap
# The same in Thumb state: UDF #0xA5 (T1) for a 16-bit instruction, UDF.W #0xA5A5 (T2) for a 32-bit
# one (as hw1 << 16 | hw2)
THUMB_PATCH_MARKERS = {2: 0xDEA5, 4: 0xF7FAA5A5}
PAGE = 4096


@dataclass
class RunResult:
    """Why a run stopped: returned (to the PL1 caller), fault, timeout or wfi."""

    stop: str
    instructions: int
    pc: int
    fault: Optional[FaultRecord] = None


class Runner:
    """Runs the current CPU of ``ctx`` on ``engine``; owns the code words the loader patched."""

    def __init__(self, engine: Engine, ctx: ExecContext, filler: Filler) -> None:
        self.engine, self.ctx, self.filler = engine, ctx, filler
        self.patched: dict[int, int] = {}     # PA -> original word of a non-trapping instruction
        self.patched_thumb: dict[int, tuple[int, int]] = {}   # PA -> (value, size), Thumb code
        self.sentinels: set[int] = set()      # PAs where a PL1 call returns
        self._pending: Union[Refuse, Pause, None] = None
        self._base = 0                # instructions begun before the running segment
        self._live = False            # a counted segment runs: Unicorn's counter adds to _base
        ctx.log.clock = self.icount
        engine.on_fill(filler.decide, self._refused)
        engine.on_trap(self._trap)
        engine.on_interrupt(self._interrupt)

    def _refused(self, decision: Any) -> None:
        self._pending = decision

    def icount(self) -> Optional[int]:
        """The board's instruction count for an event now: the guest instructions begun so far,
        the one executing included (Unicorn counts an instruction as it starts; a fetch fill that
        translates a new block comes before its first instruction). An uncounted run (budget None,
        benchmarks only) does not advance it."""
        if self._live:
            return self._base + self.engine.executed()
        return self._base

    # --- the run loop ---------------------------------------------------------------------------
    def _here(self) -> int:
        """The PC with the state in bit 0 (1: Thumb), as ``Engine.start`` takes it: Unicorn's
        emu_start chooses the state from the start address's bit 0, not from CPSR.T (probed)."""
        regs = self.engine.regs
        return regs.read(REG_PC) | (regs.read(REG_CPSR) >> 5 & 1)

    def run_guest(self, pc: int, budget: Optional[int]) -> RunResult:
        """Run the current CPU from ``pc`` until it returns to a sentinel, faults, waits in WFI or
        has executed ``budget`` instructions (counted exactly by Unicorn). ``pc`` is an
        interworking address: bit 0 set starts in Thumb state (a BX). ``budget`` None: uncounted
        (benchmark decomposition only; the run's instructions are reported as 0)."""
        ctx, engine = self.ctx, self.engine
        self._pending, ctx.fault, ctx.returned = None, None, False
        engine.use_hyp_tlb(ctx.st.mmu_on)   # the kernel side may have switched CPU or mode
        done = 0      # instructions of earlier segments: a run pauses once at each new hazard
        start = ctx.stats.instructions
        while True:
            left = None if budget is None else budget - done
            self._base, self._live = start + done, left is not None
            err = engine.start(pc, left) if left is None or left > 0 else None
            self._live = False
            executed = 0 if left is None else (engine.executed() if left > 0 else 1)
            self._base = start + done + executed   # the count stays there between segments
            stop_pc = engine.regs.read(REG_PC)
            pause = self._pending
            if not isinstance(pause, Pause):
                break
            # Unicorn counted the instruction whose fill was refused; it runs again on resume
            done += executed - 1 if budget is not None else 0
            here = self._here()   # stop_pc with the state in bit 0
            if isinstance(pause.reason, LocateHazard):
                self._locate(pause.reason, here)   # then resume at the same instruction
                pc = here
            elif isinstance(pause.reason, TableStore):
                pc = self._step_table_store(here, pause.reason)
                after = self._pending
                if after is None:
                    done += 1          # the store completed
                elif isinstance(after, Pause) and isinstance(after.reason, LocateHazard):
                    self._locate(after.reason, pc)   # a new hazard on another page: resume there
                else:              # the store faulted: deliver the abort at it
                    executed = 1       # (done already holds the segment before it)
                    break
            else:
                raise RuntimeError(f"internal: a run paused for {pause.reason!r} outside a replay")
        if isinstance(self._pending, Refuse):
            self._deliver_abort(self._pending, stop_pc)
        executed += done
        counted = executed if budget is None else min(executed, budget)
        ctx.stats.instructions += counted
        self._base = ctx.stats.instructions
        if ctx.fault is not None:
            return RunResult("fault", counted, stop_pc, ctx.fault)
        if ctx.returned:
            return RunResult("returned", counted, stop_pc)
        if err is not None:
            raise NotModelled(f"cpu{ctx.st.id}: Unicorn stopped at {stop_pc:#x}: {err}")
        if budget is not None and executed > budget:
            return RunResult("timeout", counted, stop_pc)
        wfi = self._wfi_before(stop_pc)
        if wfi is not None:
            return RunResult("wfi", counted, wfi)   # the WFI itself, not the next instruction
        raise NotModelled(f"cpu{ctx.st.id}: run stopped at {stop_pc:#x} for no modelled reason")

    # --- hooks ----------------------------------------------------------------------------------
    def _trap(self, pc: int, cpsr: int) -> None:
        ctx, engine = self.ctx, self.engine
        ctx.stats.traps += 1
        page = engine.code_pages.get((engine.tlbs.hyp, pc >> 12))   # the fetch's soft-TLB entry
        if page is not None:
            pa = page << 12 | pc & 0xFFF
        else:
            t = translate(ctx.st, engine.read64, pc, "fetch")
            if isinstance(t, Fault):
                # Unicorn ran this word from code it had translated before the model's TLB lost
                # the page (a TLBI just dropped it): the fetch itself faults, as on hardware.
                self._pending = Refuse(t, pc)
                engine.stop()
                return
            pa = t if isinstance(t, int) else t.pa_of(pc)
        if pa in self.sentinels and ctx.st.mode == MODE_SVC:
            ctx.returned = True
            engine.stop()
            return
        if cpsr & CPSR_T:
            value, size = self.read_thumb(pc, pa)
            insns.execute_thumb(ctx, value, size, pc)
        else:
            insns.execute(ctx, self.patched.get(pa) or engine.read32(pa), pc)
        if ctx.fault is not None:
            engine.stop()

    def _wfi_before(self, stop_pc: int) -> Optional[int]:
        """The address of the WFI a quiet stop at ``stop_pc`` followed (Unicorn stops past it),
        or None. In Thumb state WFI.W (4 bytes back) or WFI (2 bytes back)."""
        if not self.engine.regs.read(REG_CPSR) & CPSR_T:
            return stop_pc - 4 if is_wfi(self.read_code_word(stop_pc - 4)) else None
        for size in (4, 2):
            try:
                value, found = self.read_thumb(stop_pc - size)
            except NotModelled:
                continue
            if found == size and is_thumb_wfi(value, size):
                return stop_pc - size
        return None

    def _interrupt(self, intno: int, pc: int) -> None:
        what = {2: "SVC (supervisor call)", 7: "BKPT"}.get(intno, f"exception {intno}")
        raise NotModelled(f"cpu{self.ctx.st.id}: {what} near {pc:#x} is not modelled")

    # --- code words -----------------------------------------------------------------------------
    def read_thumb(self, va: int, pa: Optional[int] = None) -> tuple[int, int]:
        """The Thumb instruction at ``va`` (its first halfword at ``pa`` when known): (value,
        size), a 32-bit one as ``hw1 << 16 | hw2`` (its second halfword may lie on the next
        page)."""
        if pa is None:
            pa = self._code_pa(va)
        patched = self.patched_thumb.get(pa)
        if patched is not None:
            return patched
        hw1 = self.engine.read(pa, 2)
        first = int.from_bytes(hw1, "little")
        if thumb_size(first) == 2:
            return first, 2
        second_pa = pa + 2 if (va + 2) & 0xFFF else self._code_pa(va + 2)
        return first << 16 | int.from_bytes(self.engine.read(second_pa, 2), "little"), 4

    def _code_pa(self, va: int) -> int:
        t = translate(self.ctx.st, self.engine.read64, va, "fetch")
        if isinstance(t, Fault):
            raise NotModelled(f"cpu{self.ctx.st.id}: instruction at {va:#x} is not mapped")
        return t if isinstance(t, int) else t.pa_of(va)

    def read_code_word(self, va: int) -> int:
        """The instruction word at ``va`` of the current CPU (translated through the model)."""
        pa = self._code_pa(va)
        return self.patched.get(pa) or self.engine.read32(pa)

    # --- aborts and the one-instruction services ------------------------------------------------
    def _deliver_abort(self, refused: Refuse, pc: int) -> None:
        """A fill the model refused: work out the exact VA, take the abort, record the fault. A
        fetch faults at the instruction, or, for a 32-bit Thumb instruction whose second halfword
        lies on the refused page, at that halfword: HIFAR holds the VA whose fetch faulted, ELR_hyp
        the instruction (the preferred return address)."""
        self._pending = None
        access = refused.abort.access
        if access == "fetch":
            va = max(pc, refused.page_va)
        else:
            va = self.exact_data_va(pc, refused.page_va)
        if refused.located is not None:   # a check reported this access: its VA is HDFAR's
            refused.located(va)
        self.ctx.fault = exceptions.abort(self.ctx, refused.abort, va, pc)

    def _locate(self, reason: LocateHazard, pc: int) -> None:
        """A check's report on a data access paused the run at the instruction: find the exact VA
        (the fill hook only sees the page) and resume; the next fill serves the access."""
        reason.located(self.exact_data_va(pc, reason.page_va))

    def exact_data_va(self, pc: int, page_va: int) -> int:
        """The fill hook only sees the page of a data access. Replay the one instruction at ``pc``
        with that page lent to a scratch frame and a memory watch, which sees exact addresses; then
        restore registers and the scratch frame (reference: HDFAR). An access that straddles into
        the page from below reports the page's first byte."""
        engine, filler = self.engine, self.filler
        saved_regs = engine.context_save()
        scratch = engine.scratch
        saved_frame = engine.read(scratch, PAGE)
        seen: list[int] = []
        # The instruction may sit in the very page it accesses: the frame holds that page's bytes
        # (as fetched), so the replay runs the same instruction.
        code = translate(self.ctx.st, engine.read64, page_va, "fetch")
        if not isinstance(code, Fault):
            pa = code if isinstance(code, int) else code.pa_of(page_va)
            if engine.is_ram(pa):
                engine.write(scratch, engine.read(pa, PAGE))

        def on_access(address: int) -> None:
            if scratch <= address < scratch + PAGE:
                seen.append(page_va + address - scratch)

        handle = engine.watch_memory(on_access)
        observing, filler.observing = filler.observing, False
        tracing, filler.tracing = filler.tracing, False
        filler.lent_va = page_va
        engine.flush_soft_tlb()
        try:
            engine.start(pc | self.ctx.in_thumb(), 1)
        finally:
            filler.lent_va = None
            filler.observing, filler.tracing = observing, tracing
            engine.unwatch(handle)
            engine.context_restore(saved_regs)
            engine.write(scratch, saved_frame)
            engine.flush_soft_tlb()
            self._pending = None
        return seen[0] if seen else page_va

    def _step_table_store(self, pc: int, store: TableStore) -> int:
        """A guest store to a HYP table page paused the run: execute that one instruction with
        the page writable, show every page it changed to the observer, write-protect the pages
        again (flush Unicorn's soft TLB) and return the PC to resume at."""
        engine = self.engine
        self._pending = None
        written = {store.page: engine.read(store.page, PAGE)}   # table page -> its bytes before
        self.filler.stepping = written
        self._base, self._live = self._base - 1, True   # the paused segment counted the store
        try:
            err = engine.start(pc | self.ctx.in_thumb(), 1)
        finally:
            self.filler.stepping = None
            self._base, self._live = self._base + 1, False
        if err is not None and self._pending is None:
            raise NotModelled(f"cpu{self.ctx.st.id}: the store to a HYP table page at {pc:#x} "
                              f"stopped Unicorn: {err}")
        self.ctx.observer.table_stored(written, self.ctx.st.id, pc & ~1)
        engine.flush_soft_tlb()
        return self._here()
