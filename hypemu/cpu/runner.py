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

from ..decode import is_wfi
from ..engine import Engine
from ..walker import Fault
from . import exceptions, insns
from .context import ExecContext, FaultRecord
from .fill import Filler, LocateHazard, Pause, Refuse, TableStore, translate
from .state import CPSR_T, MODE_SVC, REG_PC, NotModelled

SENTINEL_WORD = 0xE7FDEAFD   # UDF #0xDEAD: where the PL1 caller returns; stops the run
PATCH_MARKER = 0xE7FA5AF5    # UDF #0xA5A5: stands for an instruction that would not trap
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
        self.sentinels: set[int] = set()      # PAs where a PL1 call returns
        self._pending: Union[Refuse, Pause, None] = None
        engine.on_fill(filler.decide, self._refused)
        engine.on_trap(self._trap)
        engine.on_interrupt(self._interrupt)

    def _refused(self, decision: Any) -> None:
        self._pending = decision

    # --- the run loop ---------------------------------------------------------------------------
    def run(self, pc: int, budget: Optional[int]) -> RunResult:
        """Run the current CPU from ``pc`` until it returns to a sentinel, faults, waits in WFI or
        has executed ``budget`` instructions (counted exactly by Unicorn). ``budget`` None: uncounted
        (benchmark decomposition only; the run's instructions are reported as 0)."""
        ctx, engine = self.ctx, self.engine
        self._pending, ctx.fault, ctx.returned = None, None, False
        done = 0      # instructions of earlier segments: a run pauses once at each new hazard
        while True:
            left = None if budget is None else budget - done
            err = engine.start(pc, left) if left is None or left > 0 else None
            executed = 0 if left is None else (engine.executed() if left > 0 else 1)
            stop_pc = engine.regs.read(REG_PC)
            pause = self._pending
            if not isinstance(pause, Pause):
                break
            # Unicorn counted the instruction whose fill was refused; it runs again on resume
            done += executed - 1 if budget is not None else 0
            if isinstance(pause.reason, LocateHazard):
                self._locate(pause.reason, stop_pc)   # then resume at the same instruction
                pc = stop_pc
            elif isinstance(pause.reason, TableStore):
                pc = self._step_table_store(stop_pc, pause.reason)
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
        if ctx.fault is not None:
            return RunResult("fault", counted, stop_pc, ctx.fault)
        if ctx.returned:
            return RunResult("returned", counted, stop_pc)
        if err is not None:
            raise NotModelled(f"cpu{ctx.st.id}: Unicorn stopped at {stop_pc:#x}: {err}")
        if budget is not None and executed > budget:
            return RunResult("timeout", counted, stop_pc)
        if is_wfi(self.read_code_word(stop_pc - 4)):
            return RunResult("wfi", counted, stop_pc - 4)   # the WFI itself, not the next word
        raise NotModelled(f"cpu{ctx.st.id}: run stopped at {stop_pc:#x} for no modelled reason")

    # --- hooks ----------------------------------------------------------------------------------
    def _trap(self, pc: int, cpsr: int) -> None:
        ctx, engine = self.ctx, self.engine
        ctx.stats.traps += 1
        t = translate(ctx.st, engine.read64, pc, "fetch")
        if isinstance(t, Fault):
            # Unicorn ran this word from code it had translated before the model's TLB lost the
            # page (a TLBI just dropped it): the fetch itself faults, as it would on hardware.
            self._pending = Refuse(t, pc)
            engine.stop()
            return
        pa = t if isinstance(t, int) else t.pa_of(pc)
        if pa in self.sentinels and ctx.st.mode == MODE_SVC:
            ctx.returned = True
            engine.stop()
            return
        if cpsr & CPSR_T:   # e.g. after a BX to an odd address
            raise NotModelled(f"cpu{ctx.st.id}: a trapped instruction in Thumb state at {pc:#x} "
                              f"(hypemu decodes ARM state only)")
        word = self.patched.get(pa) or engine.read32(pa)
        insns.execute(ctx, word, pc)
        if ctx.fault is not None:
            engine.stop()

    def _interrupt(self, intno: int, pc: int) -> None:
        what = {2: "SVC (supervisor call)", 7: "BKPT"}.get(intno, f"exception {intno}")
        raise NotModelled(f"cpu{self.ctx.st.id}: {what} near {pc:#x} is not modelled")

    # --- code words -----------------------------------------------------------------------------
    def read_code_word(self, va: int) -> int:
        """The instruction word at ``va`` of the current CPU (translated through the model)."""
        t = translate(self.ctx.st, self.engine.read64, va, "fetch")
        if isinstance(t, Fault):
            raise NotModelled(f"cpu{self.ctx.st.id}: trapped instruction at {va:#x} is not mapped")
        pa = t if isinstance(t, int) else t.pa_of(va)
        return self.patched.get(pa) or self.engine.read32(pa)

    # --- aborts and the one-instruction services ------------------------------------------------
    def _deliver_abort(self, refused: Refuse, pc: int) -> None:
        """A fill the model refused: work out the exact VA, take the abort, record the fault."""
        self._pending = None
        access = refused.abort.access
        va = pc if access == "fetch" else self.exact_data_va(pc, refused.page_va)
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
        filler.lent_va = page_va
        engine.flush_soft_tlb()
        try:
            engine.start(pc, 1)
        finally:
            filler.lent_va = None
            filler.observing = observing
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
        try:
            err = engine.start(pc, 1)
        finally:
            self.filler.stepping = None
        if err is not None and self._pending is None:
            raise NotModelled(f"cpu{self.ctx.st.id}: the store to a HYP table page at {pc:#x} "
                              f"stopped Unicorn: {err}")
        self.ctx.observer.table_stored(written, self.ctx.st.id, pc)
        engine.flush_soft_tlb()
        return engine.regs.read(REG_PC)
