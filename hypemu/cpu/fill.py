"""The soft-TLB fill decision: what Unicorn may cache for one page of the running CPU.

Every Unicorn soft-TLB miss comes here. The answer is a value: ``Map((pa, perms))`` (granted),
``Refuse(abort)`` (the access aborts: a walk or permission fault, or no RAM at the PA), or
``Pause(reason)`` (the run stops before the access so that the runner can do something first: find
the exact VA for a check's report, or step a store to a HYP table page). The runner acts on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Optional, Union

from .. import cp15
from ..engine import PROT_ALL, PROT_EXEC, PROT_READ, PROT_WRITE, Map
from ..lpae import PAGE_SIZE
from ..observer import LocateVA
from ..syndrome import Abort, ExternalAbort
from ..tlb import Origin
from ..walker import Fault, Translation, check_access, table_walk, walk
from . import mmulog
from .context import ExecContext
from .state import MODE_HYP, REG_PC, CpuState, regime_of

PAGE_MASK = ~(PAGE_SIZE - 1)


@dataclass(frozen=True)
class Refuse:
    """The access aborts (the exact VA of a data access is found by the runner's replay, and
    handed to ``located`` when a check reported the access)."""

    abort: Abort
    page_va: int
    located: Optional[LocateVA] = None


@dataclass(frozen=True)
class LocateHazard:
    """A check reported this data access: find its exact VA, then resume at the instruction."""

    located: LocateVA
    page_va: int


@dataclass(frozen=True)
class TableStore:
    """A store to a watched HYP table page: step that one instruction with the page writable."""

    page: int
    va: int


@dataclass(frozen=True)
class OutsideLentPage:
    """During a replay only the lent page may be accessed (a store reaching into another page, a
    table page say, must not write it unobserved)."""


@dataclass(frozen=True)
class Pause:
    reason: Union[LocateHazard, TableStore, OutsideLentPage]


Decision = Union[Map, Refuse, Pause]


class Filler:
    """The fill decision of the CPUs of one board."""

    def __init__(self, ctx: ExecContext, read64: Callable[[int], int],
                 read: Callable[[int, int], bytes], is_ram: Callable[[int], bool],
                 scratch: int) -> None:
        self.ctx = ctx
        self.read64, self.read, self.is_ram, self.scratch = read64, read, is_ram, scratch
        self.table_pages: set[int] = set()       # watched while an observer is enabled
        self.lent_va: Optional[int] = None       # replaying one instruction with this page lent
        self.stepping: Optional[dict[int, bytes]] = None  # table page -> bytes, while stepping
        self.observing = False                   # observer enabled and not replaying
        self.tracing = False                     # the log wants walks and fills (not replaying)

    def decide(self, va: int, access: str) -> Decision:
        ctx = self.ctx
        ctx.stats.tlb_fills += 1
        if self.lent_va is not None:   # replaying one instruction for its exact data address
            if va == self.lent_va:
                return Map((self.scratch, PROT_ALL))
            if access != "fetch":
                return Pause(OutsideLentPage())
        st = ctx.st
        hit: Optional[Translation] = None
        walked: Union[Translation, Fault, None] = None
        trans: Optional[Translation] = None      # the translation the access goes through
        fault: Optional[Fault] = None
        mmu_on = st.mmu_on
        if mmu_on:
            ctx.hyp_fills = True
            hit = st.tlb.lookup(va)
            t: Union[Translation, Fault]
            if hit is None:   # the walk's faults; its permission check is the one below
                t = walked = table_walk(self.read64, st.hyp_regime(), va, access)
                ctx.stats.walks += 1
            else:
                t = hit
            if isinstance(t, Fault):
                fault = t
            else:
                trans, fault = t, check_access(t, va, access)
        if self.tracing and walked is not None:
            mmulog.walked(ctx, va, access, walked, self.read64)
        locate = None
        if self.observing:
            outcome: Union[int, Translation, Fault] = va if not mmu_on else fault or t
            locate = ctx.observer.fill(st.id, va, access, hit, walked, outcome,
                                       mmu_on or st.mode == MODE_HYP)   # MMU on: in HYP
        if self.tracing and trans is not None and locate is None:   # (a paused fill is
            mmulog.filled(ctx, va, access, hit, trans, fault, self.read64)   # served later)
        if walked is not None and walked is trans:   # into the TLB model only now: the
            origin = None                             # observer asked it what it held
            if self.observing or self.tracing:        # someone may ask where it came from
                count = ctx.log.clock()   # (mmulog.access_count, inline: on every cold fill)
                if count is not None and access == "fetch":
                    count += 1
                origin = Origin(st.sysregs["HTTBR"], ctx.regs.read(REG_PC), count)
            evicted = st.tlb.fill(trans, origin)
            if evicted is not None:
                ctx.flush_soft_tlb()   # the evicted entry may sit in Unicorn's TLB
                if self.tracing:
                    mmulog.evicted(ctx, evicted)
        if fault is not None:
            return Refuse(fault, va, locate)
        pa = va if trans is None else trans.pa_of(va)
        if not self.is_ram(pa):
            return Refuse(ExternalAbort(va, access), va, locate)
        perms = PROT_ALL
        if trans is not None:
            perms = (PROT_READ | (PROT_WRITE if trans.writable else 0)
                     | (PROT_EXEC if trans.executable else 0))
        if self.observing:
            if locate is not None:
                return Pause(LocateHazard(locate, va))   # pause once: the exact VA, then resume
            page = pa & PAGE_MASK
            if page in self.table_pages:   # table pages: a store must be seen
                if access != "write":
                    perms &= ~PROT_WRITE
                elif self.stepping is None:
                    return Pause(TableStore(page, va))
                elif page not in self.stepping:   # the stepped store spans pages
                    self.stepping[page] = self.read(page, PAGE_SIZE)
        return Map((pa, perms))


def translate(st: CpuState, read64: Callable[[int], int], va: int, access: str = "read",
              hyp: bool = False) -> Union[Translation, Fault, int]:
    """Translate through the model: a plain PA when the regime is flat, else a Translation or a
    Fault, from the TLB model first, as the CPU would. ``hyp``: the CPU's HYP regime whatever its
    mode (flat when HSCTLR.M is 0); else its current regime (PL1 is flat)."""
    enabled = st.sysregs["HSCTLR"] & cp15.HSCTLR_M if hyp else st.mmu_on
    if not enabled:
        return va
    hit = st.tlb.lookup(va)
    if hit is not None:
        return check_access(hit, va, access) or hit
    return walk(read64, st.hyp_regime(), va, access)


def translate_with(st: CpuState, read64: Callable[[int], int], regs: Mapping[str, int], va: int,
                   access: str) -> Union[Translation, Fault, int]:
    """What a HYP access would give with the system registers ``regs`` (used to judge whether
    an access depended on a register write not yet synchronized): the VA itself (flat) when
    regs' HSCTLR.M is 0, else the TLB model first, then a walk; a Fault if it is refused."""
    if not regs["HSCTLR"] & cp15.HSCTLR_M:
        return va
    t = st.tlb.lookup(va)
    if t is None:
        walked = walk(read64, regime_of(dict(regs)), va, access)
        if isinstance(walked, Fault):
            return walked
        t = walked
    return check_access(t, va, access) or t
