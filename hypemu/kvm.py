"""The kernel side (PL1, modelled in Python): what ``kvm_mmu_init()``, ``init_hyp_mode()`` and
``cpu_init_hyp_mode()`` of Linux v3.10 do, on the simulated board.

- places the image and allocates pages (``layout``), refusing impossible layouts with a reason;
- loads the guest code of ``asm/`` (or the user's init code) into RAM;
- builds the boot pgd (idmap of the init page + the trampoline) and the runtime pgd (trampoline +
  HYP text, data and per-CPU stacks at their kernel VAs) as real LPAE descriptors with PAGE_HYP;
- copies the init code to a bounce page when it crosses a page boundary;
- runs the per-CPU init: the stub install (the CPU entered the kernel in HYP), the HVC that points
  HVBAR at the init vectors, phase 1 and phase 2, in either call convention (DESIGN.md 3b);
- CPU hotplug: a CPU powered off loses its HYP state; powered on, it runs the stub and the init again
  against the tables the kernel still has;
- the single-step design that dual-step replaced (Linux v3.9): one HYP table holding the idmap and
  the runtime mappings, one init HVC, and the idmap removed from that table once the boot CPUs are
  up (``remove_idmap``), which is what breaks a later hotplug.

Deviation: the PL1 side runs flat (its MMU is off): the kernel's own code is called at its PA.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from . import cp15, events, inject, lpae
from .asm import Program, assemble_file
from .cpu import MODE_HYP, MODE_SVC, CpuComplex, FaultRecord, CPSR_A, CPSR_F, CPSR_I
from .layout import PAGE_MASK, PAGE_SIZE, ConfigError, Layout, check_idmap, check_trampoline
from .layout import page_align_up, plan
from .scenario import Corrupt, Scenario, Skip

def _asm_dir() -> Path:
    """The guest sources: asm/ of the source tree (editable installs, a checkout), else where a
    wheel install put them (setup.cfg data_files: <prefix>/share/hypemu/asm)."""
    tree = Path(__file__).resolve().parent.parent / "asm"
    if (tree / "hyp-init.S").is_file():
        return tree
    return Path(sys.prefix) / "share" / "hypemu" / "asm"


ASM_DIR = _asm_dir()
CALL_ABIS = {"seed": 0, "linux-3.10": 1}
PROBE_VALUE = 0x4B564D21   # "KVM!": the kernel data word hyp_probe reads back
# Fill for the parts of the kernel image that hold no modelled code (UDF #0xDEA0). A real kernel has
# other code there; hypemu makes a stray jump into it (what a missing bounce page causes) show up
# as an undefined instruction at the address it landed on, instead of sliding through zeros.
IMAGE_POISON = 0xE7FDEAF0
STUB_OFFSET = 0x100        # the stub's place in the PL1 page
SENTINEL_OFFSET = PAGE_SIZE - 4

# The constants the kernel side predefines for every guest source (DESIGN.md 3b). One table.
GUEST_CONSTANTS_DOC = {
    "TRAMPOLINE_VA": "the trampoline VA (hyp.trampoline_va)",
    "PAGE_SHIFT": "12", "PAGE_SIZE": "4096",
    "HTCR_MASK": "0x3F03: HTCR fields the init code derives (T0SZ, IRGN0, ORGN0, SH0), as v3.10",
    "TTBCR_T0SZ": "0x7",
    "VTCR_MASK": "0x3FDF: VTCR fields the init code sets", "VTCR_HTCR_SH": "0x3F00",
    "VTCR_SL0_L1": "0x40: stage-2 walks start at level 1",
    "VTCR_T0SZ_40BIT": "0x18: T0SZ = -8 with its sign bit S: a 40-bit IPA",
    "HSCTLR_MASK": "0x02281007: M A C I WXN FI EE", "HSCTLR_M/_A/_C/_I/_WXN/_FI/_EE": "bits",
    "CALL_ABI": "0 (seed) or 1 (linux-3.10)", "CALL_ABI_SEED": "0", "CALL_ABI_LINUX": "1",
    "HSR_EC_SHIFT": "26", "HSR_EC_HVC": "0x12",
    "HYP_PROBE_VA": "HYP VA of the kernel data word that hyp_probe reads",
    "PSR_MODE_SVC/_HYP, PSR_A_BIT/_I_BIT/_F_BIT": "CPSR mode numbers and mask bits",
}


def guest_constants(trampoline_va: int, call_abi: str, probe_va: int = 0) -> dict[str, int]:
    return {
        "TRAMPOLINE_VA": trampoline_va, "PAGE_SHIFT": 12, "PAGE_SIZE": PAGE_SIZE,
        "HTCR_MASK": 0x3F03, "TTBCR_T0SZ": 0x7, "VTCR_MASK": 0x3FDF, "VTCR_HTCR_SH": 0x3F00,
        "VTCR_SL0_L1": 0x40, "VTCR_T0SZ_40BIT": 0x18,
        "HSCTLR_MASK": 0x02281007, "HSCTLR_M": cp15.HSCTLR_M, "HSCTLR_A": cp15.HSCTLR_A,
        "HSCTLR_C": cp15.HSCTLR_C, "HSCTLR_I": cp15.HSCTLR_I, "HSCTLR_WXN": cp15.HSCTLR_WXN,
        "HSCTLR_FI": cp15.HSCTLR_FI, "HSCTLR_EE": cp15.HSCTLR_EE,
        "CALL_ABI": CALL_ABIS[call_abi], "CALL_ABI_SEED": 0, "CALL_ABI_LINUX": 1,
        "HSR_EC_SHIFT": 26, "HSR_EC_HVC": 0x12, "HYP_PROBE_VA": probe_va,
        "PSR_MODE_SVC": MODE_SVC, "PSR_MODE_HYP": MODE_HYP, "PSR_A_BIT": CPSR_A,
        "PSR_I_BIT": CPSR_I, "PSR_F_BIT": CPSR_F,
    }


class GuestFault(Exception):
    """The guest took an exception the init or call flow did not expect."""

    def __init__(self, record: FaultRecord, during: str):
        self.record, self.during = record, during
        super().__init__(f"{record.kind} on cpu{record.cpu} at {record.pc:#x} during {during}")


class BudgetExhausted(Exception):
    """The step's instruction budget ran out (the ``timeout`` outcome)."""

    def __init__(self, cpu: int, pc: int, during: str, budget: int, wfi: bool = False):
        self.cpu, self.pc, self.during, self.budget = cpu, pc, during, budget
        why = ("waits in WFI and no interrupt is modelled" if wfi
               else f"ran out of its instruction budget ({budget})")
        super().__init__(f"cpu{cpu} {why} at pc {pc:#x} during {during}")


@dataclass
class Budget:
    """Instructions left in the current step (limits.instructions, counted exactly). ``limit`` None
    runs uncounted: only the benchmark suite does that, to measure the budget's own cost."""

    limit: Optional[int]
    used: int = 0

    @property
    def left(self) -> Optional[int]:
        return None if self.limit is None else self.limit - self.used


@dataclass
class GuestImage:
    """The assembled guest programs, at their final addresses."""

    pl1: Program
    stub: Program
    init: Program
    runtime: Program


BUILTIN_INIT = {"dual-step": "hyp-init.S", "single-step": "hyp-init-single.S"}


def _init_source(scenario: Scenario) -> Path:
    """The init source: built-in for the scenario's design, or the user's (the scenario loader
    resolved it to an absolute path)."""
    if scenario.code == "builtin":
        return ASM_DIR / BUILTIN_INIT[scenario.init]
    return Path(scenario.code)


class TableMemory:
    """Physical memory as the kernel side writes HYP page tables: every descriptor write is shown
    to the hazard checks (a change to a descriptor some TLB may cache is how ``bbm`` is found)."""

    def __init__(self, core: CpuComplex):
        self.engine, self.core = core.engine, core

    def read64(self, pa: int) -> int:
        return self.engine.read64(pa)

    def write64(self, pa: int, value: int) -> None:
        old = self.engine.read64(pa)
        self.engine.write64(pa, value)
        if old != value:
            self.core.descriptor_stored(pa, old, value)

    def new_table(self, pa: int) -> None:
        """A page becomes a HYP table page (zeroed; watched for guest stores)."""
        self.engine.write(pa, bytes(PAGE_SIZE))
        self.core.watch_table_page(pa)


class Kernel:
    """The PL1 kernel of the board: its memory plan, its HYP page tables and its init calls."""

    def __init__(self, core: CpuComplex, scenario: Scenario):
        self.core, self.scenario = core, scenario
        self.mem = TableMemory(core)
        self.single_step = scenario.init == "single-step"
        self.idmap_removed = False
        self.budget = Budget(scenario.instructions)
        self.layout = self._plan()
        self.image = self._assemble()
        self.injections: list[dict] = []
        self.ready: set[int] = set()          # CPUs whose HYP init completed (runtime vectors set)
        self._load()
        self.boot_pgd, self.runtime_pgd = self._build_tables()
        for index, c in enumerate(scenario.inject):
            if isinstance(c, Corrupt):
                self._injected(index, lambda: inject.corrupt(self, c.table, c.va, c.field, c.value))

    # --- placement and loading ------------------------------------------------------------------
    def _plan(self) -> Layout:
        s = self.scenario
        consts = guest_constants(s.trampoline_va, s.call_abi)
        init = assemble_file(_init_source(s), 0, constants=consts)
        runtime = assemble_file(ASM_DIR / "hyp-runtime.S", 0, constants=consts)
        init_size = init.address("__kvm_hyp_init_end") - init.address("__kvm_hyp_init")
        layout = plan(s.banks, s.page_offset, s.text_offset, s.hyp_idmap_offset, init_size,
                      len(runtime.code), s.trampoline_va)
        if self.single_step:   # no trampoline, so nothing to bounce: the idmap covers every page
            check_idmap(layout)
        else:
            if layout.crosses_page() and s.bounce_page == "auto" and layout.init_size <= PAGE_SIZE:
                layout.bounce_page = layout.alloc_page("the bounce page")
            check_trampoline(layout)
        for cpu in range(s.cpus):
            layout.stacks.append(layout.alloc_page(f"cpu{cpu}'s HYP stack"))
        return layout

    def _assemble(self) -> GuestImage:
        lay, s = self.layout, self.scenario
        consts = guest_constants(s.trampoline_va, s.call_abi, lay.kva(lay.hyp_data))
        init = assemble_file(_init_source(s), lay.idmap_start, constants=consts)
        start = init.address("__kvm_hyp_init")   # the first thing in it: the loader checked
        if start & 0x1F:
            raise ConfigError(f"__kvm_hyp_init at {start:#x} is not 32-byte aligned (HVBAR[4:0] are RES0)")
        return GuestImage(
            pl1=assemble_file(ASM_DIR / "kvm-call.S", lay.pl1_text, constants=consts),
            stub=assemble_file(ASM_DIR / "hyp-stub.S", lay.pl1_text + STUB_OFFSET, constants=consts),
            init=init,
            runtime=assemble_file(ASM_DIR / "hyp-runtime.S", lay.kva(lay.hyp_text), constants=consts))

    def _load(self) -> None:
        lay, img, core = self.layout, self.image, self.core
        fill = IMAGE_POISON.to_bytes(4, "little") * ((lay.image_end - lay.image_base) // 4)
        core.engine.write(lay.image_base, fill)
        core.load_code(lay.pl1_text, img.pl1.code)
        core.load_code(lay.pl1_text + STUB_OFFSET, img.stub.code)
        core.add_sentinel(lay.pl1_text + SENTINEL_OFFSET)
        init_code, runtime_code = self._apply_skips(img.init.code[:lay.init_size], img.runtime.code)
        core.load_code(lay.idmap_start, init_code)
        if lay.bounce_page is not None:
            core.load_code(lay.init_pa, init_code)   # the kernel's memcpy to the bounce page
        core.load_code(lay.hyp_text, runtime_code)
        core.engine.write32(lay.hyp_data, PROBE_VALUE)

    def _apply_skips(self, init_code: bytes, runtime_code: bytes) -> tuple[bytes, bytes]:
        """inject: skip: the chosen instructions of the init and runtime code become NOPs."""
        programs = {"init": self.image.init, "runtime": self.image.runtime}
        sizes = {"init": len(init_code), "runtime": len(runtime_code)}
        code = {"init": init_code, "runtime": runtime_code}
        for index, item in enumerate(self.scenario.inject):
            if not isinstance(item, Skip):
                continue
            target = item.mnemonic or {"symbol": item.symbol, "offset": item.offset}
            sites = self._injected(index, lambda: inject.skip_sites(programs, sizes, target), record=False)
            for prog in programs:
                code[prog] = inject.nop_out(code[prog], [off for name, off in sites if name == prog])
            addresses = [programs[name].base + off for name, off in sites]
            what = item.what
            self.injections.append({"kind": "skip", "what": what, "addresses": addresses})
            self.core.record(events.INJECT, "skip", len(addresses), pc=addresses[0],
                             detail=f"{what}: {len(addresses)} instruction(s) made NOPs at "
                                    + ", ".join(f"{a:#x}" for a in addresses))
        return code["init"], code["runtime"]

    def _injected(self, index: Optional[int], action, record: bool = True):
        """Run one injection; an InjectError learns which ``inject[i]`` it came from."""
        try:
            result = action()
        except inject.InjectError as err:
            err.index = index
            raise
        if record:
            self.injections.append(result)
        return result

    def pgd(self, table: str) -> int:
        """The PA of the ``boot`` or ``runtime`` HYP pgd (the same table for single-step)."""
        return {"boot": self.boot_pgd, "runtime": self.runtime_pgd}[table]

    def hyp_tlbi(self, va: int) -> None:
        """PL1 cannot invalidate the HYP TLB: ask HYP (TLBIMVAHIS, then DSB and ISB) through an HVC
        on the first online CPU that has finished its HYP init. With none, no TLB can hold ``va``."""
        if not self.ready:
            self.core.record(events.KERNEL, "no HYP TLB to invalidate", va, pc=0,
                             detail="no CPU is in HYP: every HYP TLB is empty")
            return
        self.hvc(min(self.ready), self.symbol("hyp_tlbi_va_is"), va,
                 during=f"the HYP TLB invalidation of {va:#x}")

    @property
    def sentinel(self) -> int:
        return self.layout.pl1_text + SENTINEL_OFFSET

    def symbol(self, name: str) -> int:
        """The HYP VA of a runtime HYP function (``fn:`` of a call step)."""
        return self.image.runtime.address(name)

    # --- HYP page tables ------------------------------------------------------------------------
    @property
    def idmap_range(self) -> tuple[int, int]:
        """The pages the HYP idmap covers: [first, end)."""
        lay = self.layout
        return lay.init_pa & PAGE_MASK, page_align_up(lay.init_pa + lay.init_size)

    def _build_tables(self) -> tuple[int, int]:
        """Dual-step: the boot pgd (idmap + trampoline) and the runtime pgd (trampoline + kernel
        mappings). Single-step: one pgd with the idmap and the kernel mappings (returned twice)."""
        lay = self.layout
        first, end = self.idmap_range
        if self.single_step:
            pgd = self._new_pgd("the HYP pgd")
            self._map(pgd, first, first, end - first, "the HYP idmap")
            self._map_runtime(pgd)
            self._check_idmap_alone(pgd)
            return pgd, pgd
        boot = self._new_pgd("the boot HYP pgd")
        runtime = self._new_pgd("the runtime HYP pgd")
        self._map(boot, first, first, end - first, "the HYP idmap")
        for pgd in (boot, runtime):
            self._map(pgd, lay.trampoline_va, lay.trampoline_pa, PAGE_SIZE, "the trampoline")
        self._map_runtime(runtime)
        return boot, runtime

    def _new_pgd(self, what: str) -> int:
        pa = self.layout.alloc_page(what)
        self.mem.new_table(pa)
        return pa

    def _map_runtime(self, runtime: int) -> None:
        lay = self.layout
        self.map_kernel(runtime, lay.hyp_text, lay.hyp_text_size, "the HYP text")
        self.map_kernel(runtime, lay.hyp_data, PAGE_SIZE, "the HYP data")
        for cpu, stack in enumerate(lay.stacks):
            self.map_kernel(runtime, stack, PAGE_SIZE, f"cpu{cpu}'s HYP stack")

    def _idmap_l1_slots(self) -> range:
        """The level-1 entries (1 GiB each) that the idmap lives under."""
        first, end = self.idmap_range
        return range(first >> 30, ((end - 1) >> 30) + 1)

    def _check_idmap_alone(self, pgd: int) -> None:
        """v3.9's teardown clears whole level-1 entries (pud_clear): refuse a layout where a runtime
        mapping shares one with the idmap, since the teardown would unmap it too."""
        first, end = self.idmap_range
        for slot in self._idmap_l1_slots():
            lo, hi = slot << 30, (slot + 1) << 30
            for what, pa, size in self._runtime_objects():
                va = self.layout.kva(pa & PAGE_MASK)
                if va < hi and va + size > lo:
                    raise ConfigError(f"single-step: {what} (HYP VA {va:#x}) shares the level-1 entry "
                                      f"[{lo:#x}, {hi:#x}) with the HYP idmap [{first:#x}, {end:#x}): "
                                      f"removing the idmap after boot would unmap it too")

    def _runtime_objects(self) -> list[tuple[str, int, int]]:
        lay = self.layout
        objs = [("the HYP text", lay.hyp_text, lay.hyp_text_size), ("the HYP data", lay.hyp_data, PAGE_SIZE)]
        objs += [(f"cpu{n}'s HYP stack", pa, PAGE_SIZE) for n, pa in enumerate(lay.stacks)]
        return objs

    def remove_idmap(self) -> None:
        """The single-step design's teardown once the boot CPUs are up (v3.9's kvm_clear_hyp_idmap):
        clear the level-1 entries holding the idmap in the one HYP table. From PL1 no HYP TLB
        maintenance is possible, so CPUs that cached idmap translations keep them."""
        for slot in self._idmap_l1_slots():
            self.mem.write64(self.runtime_pgd + 8 * slot, 0)
        first, end = self.idmap_range
        self.idmap_removed = True
        self.core.record(events.KERNEL, "remove the HYP idmap", pc=0,
                         detail=f"[{first:#x}, {end:#x}) cleared from the HYP pgd {self.runtime_pgd:#x}")

    def map_kernel(self, pgd: int, pa: int, size: int, what: str) -> None:
        """create_hyp_mappings(): map a kernel object at its kernel VA (== its HYP VA)."""
        va = self.layout.kva(pa & PAGE_MASK)
        size = page_align_up(pa + size) - (pa & PAGE_MASK)
        tramp = self.layout.trampoline_va
        if not self.single_step and va <= tramp < va + size:
            raise ConfigError(f"{what} would be mapped at the trampoline VA {tramp:#x}")
        if va + size > 1 << 32:
            raise ConfigError(f"{what} at PA {pa:#x} has no 32-bit kernel VA "
                              f"(page_offset {self.layout.page_offset:#x})")
        self._map(pgd, va, pa & PAGE_MASK, size, what)

    def _map(self, pgd: int, va: int, pa: int, size: int, what: str) -> None:
        try:
            lpae.map_range(self.mem, self.alloc_table, pgd, va, pa, size,
                           lpae.PAGE_HYP)
        except ValueError as err:
            raise ConfigError(f"cannot map {what}: {err}") from None

    def alloc_table(self) -> int:
        """A zeroed page for a HYP page table (the kernel's pte/pmd allocation)."""
        pa = self.layout.alloc_page("a HYP page table")
        self.layout.tables.append(pa)
        self.mem.new_table(pa)
        return pa

    # --- per-CPU init -----------------------------------------------------------------------------
    def _run_call(self, cpu: int, pc: int, during: str) -> int:
        """Run the current CPU from ``pc`` until it returns to the sentinel in SVC."""
        core = self.core
        if self.budget.left is not None and self.budget.left < 1:
            raise BudgetExhausted(cpu, pc, during, self.budget.limit)
        result = core.run(pc, self.budget.left)
        self.budget.used += result.instructions
        if result.stop == "fault":
            raise GuestFault(result.fault, during)
        if result.stop in ("timeout", "wfi"):
            raise BudgetExhausted(cpu, result.pc, during, self.budget.limit, result.stop == "wfi")
        return core.reg(0)

    def hvc(self, cpu: int, r0: int = 0, r1: int = 0, r2: int = 0, r3: int = 0,
            during: str = "a HYP call") -> int:
        """kvm_call_hyp(r0, r1, r2, r3) from SVC: the value HYP returns in r0."""
        core = self.core
        st = core.select(cpu)
        if st.mode != MODE_SVC:
            raise RuntimeError(f"cpu{cpu} is not in SVC (mode {st.mode:#x}): cannot make an HVC")
        for n, value in enumerate((r0, r1, r2, r3)):
            core.set_reg(n, value)
        core.set_reg(14, self.sentinel)
        return self._run_call(cpu, self.image.pl1.address("kvm_call_hyp"), during)

    def install_stub(self, cpu: int) -> None:
        """The CPU enters the kernel in HYP (MMU off): __hyp_stub_install points HVBAR at the stub
        and drops to SVC."""
        core = self.core
        core.power_on(cpu, MODE_HYP)
        core.record(events.KERNEL, "enter kernel in HYP", pc=self.image.stub.address("__hyp_stub_install"))
        core.set_reg(14, self.sentinel)
        self._run_call(cpu, self.image.stub.address("__hyp_stub_install"), "the HYP stub install")

    def init_cpu(self, cpu: int) -> None:
        """cpu_init_hyp_mode(): point HVBAR at the init vectors through the stub, then the init HVCs
        in the scenario's call convention: phase 1 (boot pgd, no stack) and phase 2 (runtime pgd,
        stack, vectors) for dual-step; one HVC with the one pgd for single-step."""
        lay = self.layout
        vectors_pa = lay.init_pa + (self.image.init.address("__kvm_hyp_init") - lay.idmap_start)
        self.hvc(cpu, vectors_pa, during="the HVC to the stub (set HVBAR)")
        stack_top = lay.kva(lay.stacks[cpu]) + PAGE_SIZE
        vectors = self.image.runtime.address("__kvm_hyp_vector")
        if self.single_step:
            calls = (("HYP init (single-step)", self.runtime_pgd, stack_top, vectors),)
        else:
            calls = (("HYP init phase 1", self.boot_pgd, 0, 0),
                     ("HYP init phase 2", self.runtime_pgd, stack_top, vectors))
        for during, pgd, stack, vec in calls:
            self.core.record(events.KERNEL, during, pgd, pc=self.image.pl1.address("kvm_call_hyp"),
                             detail=f"pgd {pgd:#x} stack {stack:#x} vectors {vec:#x}")
            if self.scenario.call_abi == "seed":
                self.hvc(cpu, pgd & 0xFFFFFFFF, pgd >> 32, stack, vec, during=during)
            else:
                self.hvc(cpu, stack, vec, pgd & 0xFFFFFFFF, pgd >> 32, during=during)

    def boot_cpu(self, cpu: int) -> None:
        self.install_stub(cpu)
        self.init_cpu(cpu)
        self.ready.add(cpu)

    def power_off(self, cpu: int) -> None:
        """CPU hotplug off: the CPU loses its HYP state (registers and TLB) with its power."""
        self.ready.discard(cpu)
        self.core.power_off(cpu)
