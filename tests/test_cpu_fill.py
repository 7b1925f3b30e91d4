"""The soft-TLB fill decision as a value (``Map | Refuse | Pause``), with a dict memory and a
dict register file: no engine, no board."""

from __future__ import annotations

from dataclasses import replace

from hypemu import cp15, events, lpae
from hypemu.cpu.context import ExecContext
from hypemu.cpu.fill import Filler, LocateHazard, Pause, Refuse, TableStore
from hypemu.cpu.state import CPSR_A, CPSR_F, CPSR_I, MODE_HYP, MODE_SVC, CpuState, DictRegisters
from hypemu.engine import PROT_EXEC, PROT_READ, PROT_WRITE, Map
from hypemu.observer import NullObserver
from hypemu.syndrome import ExternalAbort
from hypemu.tlb import TLB
from hypemu.walker import Fault
from memfake import DictMem, PageAllocator

PGD, POOL = 0x8000_0000, 0x8010_0000
XN = replace(lpae.PAGE_HYP, xn=True)       # read-write, execute-never
VA, PA = 0xC000_0000, 0x8040_0000
RAM = (0x8000_0000, 0x8800_0000)
SCRATCH = 0xFF_FFFF_F000


def filler(mode: int = MODE_HYP, observer=None, mmu: bool = True) -> tuple[Filler, DictMem]:
    mem = DictMem()
    alloc = PageAllocator(mem, POOL)
    lpae.map_range(mem, alloc, PGD, VA, PA, 0x2000, XN)
    lpae.map_range(mem, alloc, PGD, VA + 0x2000, 0x9000_0000, 0x1000, lpae.PAGE_HYP)  # no RAM
    st = CpuState(0, TLB())
    st.sysregs.update(HTTBR=PGD, HSCTLR=st.sysregs["HSCTLR"] | (cp15.HSCTLR_M if mmu else 0))
    ctx = ExecContext([st], DictRegisters(), events.EventLog(), observer or NullObserver())
    ctx.set_cpsr(mode | CPSR_A | CPSR_I | CPSR_F)
    f = Filler(ctx, mem.read64, lambda pa, size: bytes(size),
               lambda pa: RAM[0] <= pa < RAM[1], SCRATCH)
    f.observing = ctx.observer.enabled
    return f, mem


def test_a_mapped_page_is_granted_with_its_permissions_and_cached():
    f, _ = filler()
    assert f.decide(VA + 0x123, "read") == Map((PA + 0x123, PROT_READ | PROT_WRITE))   # XN
    assert len(f.ctx.st.tlb) == 1 and f.ctx.stats.walks == 1
    assert f.decide(VA + 0x456, "write") == Map((PA + 0x456, PROT_READ | PROT_WRITE))  # a TLB hit
    assert f.ctx.stats.walks == 1


def test_pl1_and_hyp_with_the_mmu_off_are_flat():
    assert filler(mode=MODE_SVC)[0].decide(0x8000_5000, "fetch") == \
        Map((0x8000_5000, PROT_READ | PROT_WRITE | PROT_EXEC))
    assert filler(mmu=False)[0].decide(0x8000_5000, "read").pa == 0x8000_5000


def test_faults_and_missing_ram_are_refused():
    f, _ = filler()
    refused = f.decide(VA + 0x10_0000, "read")
    assert isinstance(refused, Refuse) and isinstance(refused.abort, Fault)
    assert (refused.abort.type, refused.abort.level) == ("translation", 3)
    fetch = f.decide(VA, "fetch")                  # XN
    assert isinstance(fetch, Refuse) and fetch.abort.type == "permission"
    assert f.decide(VA + 0x2000, "read") == Refuse(ExternalAbort(VA + 0x2000, "read"), VA + 0x2000)


class Reporter(NullObserver):
    enabled = True

    def __init__(self) -> None:
        self.located: list[int] = []

    def fill(self, cpu, va, access, hit, walked, outcome, hyp):
        return self.located.append if access == "read" else None


def test_an_observer_report_pauses_a_data_access_and_a_table_page_store_pauses():
    seen = Reporter()
    f, _ = filler(observer=seen)
    paused = f.decide(VA, "read")
    assert isinstance(paused, Pause) and isinstance(paused.reason, LocateHazard)
    paused.reason.located(VA + 8)
    assert seen.located == [VA + 8]
    f.table_pages.add(PA)
    assert f.decide(VA, "write") == Pause(TableStore(PA, VA))
    f.stepping = {PA: bytes(4096)}                 # the runner steps the store: now granted
    assert f.decide(VA, "write") == Map((PA, PROT_READ | PROT_WRITE))
