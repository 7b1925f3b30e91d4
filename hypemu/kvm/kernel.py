"""The kernel side on a running board: what ``init_hyp_mode()`` and ``cpu_init_hyp_mode()`` of
Linux v3.10 do once the plan is made (``plan.plan_board``).

- loads the guest image (``loader``), the return sentinel, the bounce copy and the HYP data word,
  and installs the planned HYP tables;
- runs the per-CPU init: the stub install (the CPU entered the kernel in HYP), the HVC that points
  HVBAR at the init vectors, then the init design's calls in the scenario's call convention;
- CPU hotplug: a CPU powered off loses its HYP state; powered on, it runs the stub and the init
  again against the tables the kernel still has;
- edits its tables for the injector (it is the injector's ``TableEditor``) and for ``map_hyp``.

Deviation: the PL1 side runs flat (its MMU is off): the kernel's own code is called at its PA.
"""

from __future__ import annotations

from typing import Optional

from .. import events
from ..cpu import MODE_HYP, MODE_SVC, SENTINEL_WORD, CpuComplex
from ..layout import Layout
from ..lpae import PAGE_SIZE
from ..loader import INIT_START, load_image
from ..guest_abi import CALL_CONVENTIONS
from ..guest_abi import PROBE_VALUE
from .designs import HypTables
from .plan import BoardPlan
from .actions import ActionLog
from .runner import Budget, StepRunner
from .stub import STUBS
from .tables import TableBuilder, TableMemory


class _BoardRam:
    """The loader's ``CodeTarget`` on the board: code through the CPU model, bytes to RAM; each
    write is kept in the action log's load (the original code, before the CPU patches it)."""

    def __init__(self, core: CpuComplex, log: ActionLog):
        self.core, self.log = core, log

    def load_code(self, pa: int, code: bytes, thumb: bool = False) -> None:
        self.log.load(pa, code)
        self.core.load_code(pa, code, thumb)

    def write_ram(self, pa: int, data: bytes) -> None:
        self.log.load(pa, data)
        self.core.engine.write(pa, data)

    def fill_ram(self, pa: int, data: bytes) -> None:
        self.log.load(pa, data)
        self.core.engine.write_repeated(pa, data[:4], len(data))   # the loader's contract


class Kernel:
    """The PL1 kernel of the board: its layout, its guest image, its HYP tables and its calls."""

    def __init__(self, core: CpuComplex, plan: BoardPlan, runner: StepRunner):
        self.core, self.runner = core, runner
        self.config, self.design = plan.config, plan.design
        self.layout: Layout = plan.layout
        self.image = plan.image
        self.tables: HypTables = plan.tables
        self.sentinel = plan.sentinel
        self.log = ActionLog()                # what the kernel side did (``Machine.export``)
        self.mem = TableMemory(core, self.log)
        self.builder = TableBuilder(self.mem, self.layout, self.design.trampoline)
        self.convention = CALL_CONVENTIONS[self.config.call_abi]
        self.ready: set[int] = set()          # CPUs whose HYP init completed (runtime vectors set)
        self.stub = STUBS[self.config.stub]()
        self.primary_done = False             # the board's boot CPU has been brought up
        self._load(plan)

    def _load(self, plan: BoardPlan) -> None:
        lay, core = self.layout, self.core
        ram = _BoardRam(core, self.log)
        load_image(ram, self.image, (lay.image_base, lay.image_end))
        core.add_sentinel(self.sentinel)
        self.log.load(self.sentinel, SENTINEL_WORD.to_bytes(4, "little"))
        if lay.bounce_page is not None:
            ram.load_code(lay.init_pa, self.image.init.code,   # the kernel's memcpy to the bounce page
                          self.image.init.thumb)
        ram.write_ram(lay.hyp_data, PROBE_VALUE.to_bytes(4, "little"))
        for pa, page in plan.table_pages.items():
            self.log.load(pa, bytes(page))
            self.mem.install(pa, page)

    # --- the tables, as the injector and map_hyp edit them (``inject.TableEditor``) --------------
    @property
    def boot_pgd(self) -> int:
        return self.tables.boot

    @property
    def runtime_pgd(self) -> int:
        return self.tables.runtime

    def pgd(self, table: str) -> int:
        """The PA of the ``boot`` or ``runtime`` HYP pgd (the same table for single-step)."""
        return {"boot": self.tables.boot, "runtime": self.tables.runtime}[table]

    def read64(self, pa: int) -> int:
        return self.mem.read64(pa)

    def write64(self, pa: int, value: int) -> None:
        self.mem.write64(pa, value)

    def record(self, kind: str, name: str, value: Optional[int] = None, pc: Optional[int] = None,
               detail: str = "") -> None:
        self.core.record(kind, name, value, pc=pc, detail=detail)

    def alloc_table(self) -> int:
        """A zeroed page for a HYP page table, on the board."""
        return self.builder.alloc_table()

    def map_kernel(self, pgd: int, pa: int, size: int, what: str) -> None:
        """create_hyp_mappings() at runtime: map kernel memory at its kernel VA in ``pgd``."""
        self.builder.map_kernel(pgd, pa, size, what)

    def hyp_tlbi(self, va: int) -> None:
        """PL1 cannot invalidate the HYP TLB: ask HYP (TLBIMVAHIS, then DSB and ISB) through an HVC
        on the first online CPU that has finished its HYP init. With none, no TLB can hold ``va``."""
        if not self.ready:
            self.record(events.KERNEL, "no HYP TLB to invalidate", va,
                        detail="no CPU is in HYP: every HYP TLB is empty")
            return
        self.hvc(min(self.ready), self.function("hyp_tlbi_va_is"), va,
                 during=f"the HYP TLB invalidation of {va:#x}")

    def symbol(self, name: str) -> int:
        """The HYP VA of a label of the runtime HYP code (``fn:`` of a call step names one of
        ``functions()``); KeyError if there is none."""
        return self.image.runtime.address(name)

    def functions(self) -> list[str]:
        """The runtime HYP functions, as an unknown ``fn:`` lists them: the globals of the runtime
        code except the vector table (HVBAR's target, entered by exceptions) and the markers past
        its last word (labels a call could name, but no function)."""
        rt = self.image.runtime
        vectors = rt.address("__kvm_hyp_vector")
        return sorted(n for n in rt.globals if rt.symbols[n] != vectors and rt.symbols[n] < rt.end)

    def function(self, name: str) -> int:
        """A pointer to runtime HYP function ``name`` as the kernel passes it to kvm_call_hyp:
        its HYP VA, with bit 0 set when the runtime code is Thumb (the dispatcher's BLX
        interworks)."""
        return self.image.runtime.entry(name)

    @property
    def isa(self) -> str:
        """The instruction set of the kernel's code: ``thumb2`` when its HYP code is Thumb."""
        return "thumb2" if self.image.init.thumb else "arm"

    @property
    def budget(self) -> Budget:
        """The step runner's budget (read it there: ``Machine.runner.budget``)."""
        return self.runner.budget

    # --- calls and the per-CPU init ----------------------------------------------------------------
    def call_pl1(self, cpu: int, entry: int, r0: int = 0, during: str = "a PL1 call",
                 args: tuple[int, int, int] = (0, 0, 0)) -> int:
        """From SVC, call the kernel's code at ``entry`` with r0 (and r1-r3 = ``args``), LR = the
        sentinel; the r0 it returns."""
        core = self.core
        st = core.select(cpu)
        if st.mode != MODE_SVC:
            raise RuntimeError(f"cpu{cpu} is not in SVC (mode {st.mode:#x}): cannot call {during}")
        core.set_call_regs((r0, *args), self.sentinel)
        index = self.log.hvc(cpu, entry, self.sentinel, (r0, *args))
        r0 = self.runner.run_to_pl1(cpu, entry, during)
        self.log.returned(index, r0)
        return r0

    def hvc(self, cpu: int, r0: int = 0, r1: int = 0, r2: int = 0, r3: int = 0,
            during: str = "a HYP call") -> int:
        """kvm_call_hyp(r0, r1, r2, r3) from SVC: the value HYP returns in r0."""
        return self.call_pl1(cpu, self.image.pl1.entry("kvm_call_hyp"), r0, during, (r1, r2, r3))

    def enter_in_hyp(self, cpu: int, entry: int, r0: int, during: str, detail: str = "") -> None:
        """The CPU enters the kernel in HYP (MMU off) at ``entry`` (a BX target: Thumb when bit 0
        is set) with r0, LR = the sentinel; it must come back to the sentinel in SVC."""
        core = self.core
        core.power_on(cpu, MODE_HYP)
        self.log.enter_hyp(cpu, entry, self.sentinel, r0)
        core.record(events.KERNEL, "enter kernel in HYP", pc=entry & ~1, detail=detail)
        core.set_reg(0, r0)
        core.set_reg(14, self.sentinel)
        self.runner.run_to_pl1(cpu, entry, during)

    def read32(self, pa: int) -> int:
        return self.core.engine.read32(pa)

    def install_stub(self, cpu: int) -> None:
        """The CPU enters the kernel in HYP and installs the stub (under the stub's contract: the
        board's first CPU as the boot CPU, every later bring-up as a secondary)."""
        self.stub.install(self, cpu, primary=not self.primary_done)
        self.primary_done = True

    def init_cpu(self, cpu: int) -> None:
        """cpu_init_hyp_mode(): point HVBAR at the init vectors through the stub, then the design's
        init HVCs in the scenario's call convention."""
        lay = self.layout
        vectors_pa = lay.init_pa + (self.image.init.address(INIT_START) - lay.init_start)
        self.stub.set_vectors(self, cpu, vectors_pa)
        stack_top = lay.kva(lay.stacks[cpu]) + PAGE_SIZE
        vectors = self.image.runtime.address("__kvm_hyp_vector")
        caller = self.image.pl1.address("kvm_call_hyp")
        for call in self.design.init_calls(self.tables, stack_top, vectors):
            self.record(events.KERNEL, call.during, call.pgd, pc=caller,
                        detail=f"pgd {call.pgd:#x} stack {call.stack:#x} vectors {call.vectors:#x}")
            self.hvc(cpu, *self.convention.pack(call), during=call.during)

    def boot_cpu(self, cpu: int) -> None:
        self.install_stub(cpu)
        self.init_cpu(cpu)
        self.ready.add(cpu)

    def after_boot(self) -> None:
        """After a boot step: whatever the init design does then (single-step: remove the idmap)."""
        self.design.after_boot(self)

    def power_off(self, cpu: int) -> None:
        """CPU hotplug off: the CPU loses its HYP state (registers and TLB) with its power."""
        self.ready.discard(cpu)
        self.log.power_off(cpu)
        self.core.power_off(cpu)
