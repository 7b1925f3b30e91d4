"""The running CPU as its trapped instructions see it: state, registers, the event log, the
observer, the other CPUs (broadcast TLB maintenance) and the one engine service they need (drop
Unicorn's soft TLB). It implements ``cp15.WriteContext``, so a register row's ``write=`` function
acts on it; ``insns`` and ``exceptions`` act on it too. No engine import: a unit test builds one
over a ``state.DictRegisters``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

from .. import events
from ..hexrepr import hex_repr
from ..observer import CpuObserver, NullObserver
from ..tlb import entry_data
from ..walker import Translation
from ..decode import it_advance
from .state import CPSR_T, REG_CPSR, REG_PC, CpuState, RegisterFile, itstate, with_itstate


@dataclass
class Stats:
    instructions: int = 0
    tlb_fills: int = 0
    walks: int = 0
    hvcs: int = 0
    traps: int = 0


@dataclass
class FaultRecord:
    """An exception the flow did not expect, as the result reports it (ARCHITECTURE.md, Result)."""

    cpu: int
    kind: str                 # prefetch_abort | data_abort | undefined
    pc: int
    va: Optional[int] = None
    fsc: Optional[str] = None  # translation | access_flag | permission | address_size | external ...
    level: Optional[int] = None
    hsr: Optional[int] = None  # None when the exception is taken to PL1 (not modelled)
    detail: str = ""

    def __repr__(self) -> str:
        return hex_repr(self, decimal=("cpu", "level"))

    def to_dict(self) -> dict[str, Optional[int | str]]:
        """The result's ``fault`` object."""
        return {"cpu": self.cpu, "kind": self.kind, "pc": self.pc, "va": self.va, "fsc": self.fsc,
                "level": self.level, "hsr": self.hsr}


@dataclass
class ExecContext:
    """The CPU that runs now (``st``) with what its instructions act on. ``fault`` and
    ``returned`` are how an instruction ends the run (the runner stops the engine)."""

    cpus: Sequence[CpuState]
    regs: RegisterFile
    log: events.EventLog = field(default_factory=events.EventLog)
    observer: CpuObserver = field(default_factory=NullObserver)
    flush_soft_tlb: Callable[[], None] = lambda: None
    # use_hyp_tlb(on): which of Unicorn's two soft TLBs runs, the HYP MMU's or the flat one's
    use_hyp_tlb: Callable[[bool], None] = lambda on: None
    stats: Stats = field(default_factory=Stats)
    st: CpuState = field(init=False)
    fault: Optional[FaultRecord] = None
    returned: bool = False
    # the trapped instruction being emulated: Thumb state or not, and its size in bytes
    thumb: bool = False
    size: int = 4
    # record(kind, name, value, pc, detail=""): an event of this CPU; the log's own method
    record: Callable[..., None] = field(init=False)
    # Unicorn's soft TLB may hold a translation made with a HYP MMU on: set by every fill in that
    # regime (cpu.fill), cleared by a flush through this context; True until one is known
    hyp_fills: bool = True

    def __post_init__(self) -> None:
        self.st = self.cpus[0]
        self.record = self.log.record

    # --- registers ------------------------------------------------------------------------------
    def reg(self, n: int) -> int:
        return self.regs.read(n)

    def set_reg(self, n: int, value: int) -> None:
        self.regs.write(n, value & 0xFFFFFFFF)

    def next(self, pc: int) -> None:
        """Continue after the instruction at ``pc``. In Thumb state ITSTATE advances (ITAdvance(),
        ARM ARM A2.5.2) and the PC keeps the state (Unicorn's PC write takes it from bit 0)."""
        if not self.thumb:
            self.regs.write(REG_PC, pc + 4)
            return
        cpsr = self.regs.read(REG_CPSR)
        it = itstate(cpsr)
        if it:
            self.regs.write(REG_CPSR, with_itstate(cpsr, it_advance(it)))
        self.regs.write(REG_PC, pc + self.size | 1)

    def branch(self, target: int, thumb: bool) -> None:
        """Continue at ``target`` in Thumb (``thumb``) or ARM state."""
        self.regs.write(REG_PC, target | 1 if thumb else target)

    def in_thumb(self) -> bool:
        """CPSR.T of the register file: the state the CPU executes in."""
        return bool(self.regs.read(REG_CPSR) & CPSR_T)

    def cpsr(self) -> int:
        return self.st.read_cpsr(self.regs)

    def set_cpsr(self, value: int) -> None:
        """The translation regime follows the mode, and no mode switch flushes Unicorn's soft
        TLB: PL1 and HYP with HSCTLR.M = 0 are both flat, with the same permissions, and share
        one soft TLB; the HYP MMU has the other (``Engine.use_hyp_tlb``), which keeps what the
        TLB model and the HYP regime gave it while PL1 runs: neither changes with the mode, and
        whatever does change them flushes (both switches, exception entry and ERET, synchronize
        the context: no unsynchronized register write is pending across them)."""
        st = self.st
        if st.write_cpsr(self.regs, value):
            self.use_hyp_tlb(st.mmu_on)

    def drop_soft_tlb(self) -> None:
        """Flush Unicorn's soft TLB and know that it holds nothing of the HYP MMU now."""
        self.flush_soft_tlb()
        self.hyp_fills = False

    # --- cp15.WriteContext ----------------------------------------------------------------------
    def store(self, name: str, value: int, pc: int) -> None:
        st = self.st
        if self.observer.enabled:
            self.observer.sysreg_written(st.id, name, st.sysregs[name], pc)
        st.sysregs[name] = value
        self.log.record(events.SYSREG, name, value, pc)

    def regime_changed(self) -> None:
        """Unicorn's soft TLB goes only if it may hold a translation of the HYP MMU: a flat
        regime (the MMU off, as while phase 1 writes HTCR, HMAIRn and HTTBR) does not depend on
        these registers. An HSCTLR write that turns the MMU on flushes (on now); one that turns
        it off flushes if a translation was made while it was on."""
        self.st.regime = None
        if self.hyp_fills or self.st.mmu_on:
            self.drop_soft_tlb()
        self.use_hyp_tlb(self.st.mmu_on)

    def invalidate_hyp_tlb(self, va: Optional[int], broadcast: bool, op: str, pc: int) -> None:
        """TLBIALLH / TLBIMVAH act on this CPU's TLB; the IS forms on every online CPU (the inner
        shareable domain is the whole board; a powered-off CPU's TLB is empty anyway). Deviation:
        the model applies them at once; the hazard checks, not the TLB, judge whether a DSB/ISB
        followed."""
        targets = [c for c in self.cpus if c.online] if broadcast else [self.st]
        removed: dict[int, list[Translation]] = {}
        for cpu in targets:
            dropped = cpu.tlb.invalidate_all() if va is None else cpu.tlb.invalidate_va(va)
            if dropped:
                removed[cpu.id] = dropped
        data: Optional[dict[str, Any]] = None
        if self.log.detailed:   # what it removed, per CPU (the trace's "what TLBIALLH dropped")
            data = {"cpus": [c.id for c in targets], "removed": [
                {"cpu": c.id, **entry_data(t, c.tlb.origin(t))}
                for c in targets for t in removed.get(c.id, ())]}
        self.log.record(events.TLBI, op, va, pc, "", data)
        if removed:
            if self.observer.enabled:
                self.observer.tlbi(self.st.id, removed, op, pc)
            self.drop_soft_tlb()

    def barrier(self, kind: str) -> None:
        if self.observer.enabled:
            self.observer.barrier(self.st.id, kind)
