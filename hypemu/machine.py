"""A board running a scenario: RAM, CPUs, the kernel side, the steps, and the Result.

``Machine`` is the step-by-step API for other rigs (boot, call, hotplug, translate, physical memory);
``hypemu.result.run`` executes a whole scenario on one and turns what happened into a ``Result``.
Which exceptions are the user's input and which are bugs: ``hypemu.errors``.
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from typing import Any, Mapping, Optional, Union

from . import inject, memmap, ptdump, stepper
from .errors import StepInjectionWarning, UnknownFunction, UsageError
from .events import Event
from .export import Export, export
from .hazards import Checks, Hazard
from .engine import Engine, EngineFactory
from .cpu import MODE_HYP, MODE_NAMES, PATCH_MARKER, CpuComplex, regime_of
from .kvm import Kernel, StepRunner, from_scenario, plan_board
from .scenario import Scenario, load_scenario
from .walker import Fault, Translation

HYP_REGISTERS = ("HTTBR", "HTCR", "HSCTLR", "HMAIR0", "HMAIR1", "HVBAR")


class Machine:
    """One simulated board with the scenario's RAM, CPUs and kernel layout, its HYP tables built
    and the scenario's ``skip`` and ``corrupt`` injections applied; no CPU is running yet (call
    ``boot``, or ``run_step``/``run_steps`` for the scenario's own steps). A ``remap`` injection
    belongs to a step: ``run_step`` applies it; driving the board with ``boot``/``call``/
    ``hotplug`` instead warns once (``StepInjectionWarning``) that it is not applied.

    ``checks`` False turns the hazard checks off (nothing is reported; for benchmarks).
    ``trace`` True records the detail of the trace in the event log: every HYP walk and fill,
    what each TLBI removed, the registers of calls and exceptions (``hypemu.tracer``).
    ``engines`` makes its Unicorn instance (a sweep's ``engine_pool.EnginePool`` reuses them).
    Raises ``ConfigError`` when the kernel side refuses the layout (as KVM would at init)."""

    def __init__(self, scenario: Union[Scenario, Mapping[str, Any]], checks: bool = True,
                 trace: bool = False, engines: EngineFactory = Engine):
        self.scenario = load_scenario(scenario)
        s = self.scenario
        config = from_scenario(s)
        self.injector = inject.Injector(list(config.injections))
        plan = plan_board(config, self.injector.patch_code)   # refusals cost no board
        banks = [(b.base, b.size) for b in s.banks]
        self.core = CpuComplex(banks, s.cpus, s.tlb_entries, thumb=plan.image.thumb,
                               engine=engines(banks, thumb=plan.image.thumb))
        self.core.record_detail(trace)
        tables = {plan.tables.boot: "boot", plan.tables.runtime: "runtime"} \
            if plan.tables.boot != plan.tables.runtime else {plan.tables.boot: "hyp"}
        self.checks = Checks(self.core.view(), self.core.log, tables) if checks else None
        if self.checks is not None:
            self.core.attach(self.checks)
        self.runner = StepRunner(self.core, config.instructions)
        self.kernel = Kernel(self.core, plan, self.runner)
        self.layout = self.kernel.layout
        self.injector.after_tables(self.kernel)
        self.calls: list[dict[str, Any]] = []   # the call steps run_step ran: {cpu, fn, r0}
        self.step_index: Optional[int] = None   # the scenario step in progress or last run
        self._stepping = False
        self._unapplied = stepper.step_bound(s)

    # --- steps ----------------------------------------------------------------------------------
    def boot(self, cpus: Union[str, list[int]] = "all") -> None:
        """Bring CPUs up, one at a time, in ascending id order for ``"all"`` and in the listed order
        otherwise: each is powered on in HYP, runs the HYP stub install, then the HYP init.
        Single-step design: once the first boot is done the kernel removes the idmap from the HYP
        table, so any later bring-up (a second ``boot`` or a hotplug) runs init without it."""
        self._new_step()
        todo = self._cpu_list(cpus)
        for cpu in todo:
            if self.core.cpus[cpu].online:
                raise UsageError(f"cpu {cpu} is already online")
        for cpu in todo:
            self.kernel.boot_cpu(cpu)
        self.kernel.after_boot()

    def call(self, cpu: int, fn: Union[str, int], *args: int) -> int:
        """An HVC into the runtime HYP code: ``fn`` (a global of the runtime code, or a HYP VA) with
        up to three arguments; returns r0."""
        if len(args) > 3:
            raise UsageError(f"a HYP call takes at most 3 arguments (r1-r3), got {len(args)}")
        self._check_cpu(cpu)
        if cpu not in self.booted:
            raise UsageError(f"cpu{cpu} has not been booted (or is offline): boot it first")
        if isinstance(fn, str):
            self.symbol(fn)                     # UnknownFunction for a name it does not have
            va = self.kernel.function(fn)       # the function pointer: bit 0 for Thumb code
        else:
            va = fn
        r1, r2, r3 = list(args) + [0] * (3 - len(args))
        self._new_step()
        name = fn if isinstance(fn, str) else f"{fn:#x}"
        return self.kernel.hvc(cpu, va, r1, r2, r3, during=f"the call of {name}")

    def hotplug(self, cpu: int, state: str) -> None:
        """CPU hotplug: ``off`` powers the CPU down (its HYP state is lost); ``on`` powers it up and
        re-runs the HYP init against the kept boot tables."""
        self._check_cpu(cpu)
        if state not in ("on", "off"):
            raise UsageError(f"hotplug state must be 'on' or 'off', got {state!r}")
        self._new_step()
        if state == "off":
            if not self.core.cpus[cpu].online:
                raise UsageError(f"cpu {cpu} is already offline")
            self.kernel.power_off(cpu)
        else:
            self.boot([cpu])

    def run_step(self, index: int) -> Optional[int]:
        """``steps[index]`` of the scenario, as ``hypemu.run`` runs it (``stepper``): first the
        ``remap`` injections due before it, then the step (a fault or a budget raises
        ``GuestFault`` / ``BudgetExhausted``). Returns r0 of a call step, else None."""
        self._unapplied = [u for u in self._unapplied if not u.endswith(f"[{index}])")]
        self._stepping = True
        try:
            return stepper.run_step(self, index)
        finally:
            self._stepping = False

    def run_steps(self) -> list[dict[str, Any]]:
        """Every step of the scenario in order (``run_step``); returns ``calls``."""
        for index in range(len(self.scenario.steps)):
            self.run_step(index)
        return self.calls

    def _new_step(self) -> None:
        """Each step of the API (boot, call, hotplug, remap) gets the whole budget of
        limits.instructions, as a scenario's steps do."""
        if self._unapplied and not self._stepping:
            warnings.warn(StepInjectionWarning(f"{self.scenario.name}: {', '.join(self._unapplied)}: "
                          f"a remap belongs to a step, applied only by Machine.run_step/run_steps "
                          f"(or hypemu.run), not by boot/call/hotplug/remap"), stacklevel=3)
            self._unapplied = []
        self.runner.new_step()

    @property
    def booted(self) -> set[int]:
        """The CPUs whose HYP init has completed and that are still online."""
        return set(self.kernel.ready)

    def corrupt(self, table: str, va: int, field: str, value: int) -> dict[str, Any]:
        """Fault injection, now: change one field (valid, af, xn, ap or output) of the leaf
        descriptor mapping ``va`` in the ``boot`` or ``runtime`` table, as a kernel bug or a stray
        write would. No TLB maintenance is done. Returns what was changed."""
        return self.injector.now(self.kernel, inject.Corrupt(table, va, field, value))

    def remap(self, table: str, va: int, to: int, bbm: bool = True,
              tlbi: bool = True) -> dict[str, Any]:
        """Fault injection, now: the kernel side points the live mapping of ``va`` at PA ``to``,
        with (or without) break-before-make and HYP TLB invalidation (an HVC to hyp_tlbi_va_is on
        the first online CPU). Returns what was changed."""
        self._new_step()
        return self.injector.now(self.kernel, inject.Remap(table, va, to, bbm, tlbi))

    @property
    def injections(self) -> list[dict[str, Any]]:
        """The injections made so far (scenario and API), as the result lists them."""
        return list(self.injector.records)

    def map_hyp(self, pa: int, size: int) -> int:
        """create_hyp_mappings() at runtime (as KVM does for its VM structures): map kernel memory at
        its kernel VA in the runtime table; returns that HYP VA. Like the kernel, no TLB maintenance
        is done: the range was not mapped before."""
        self.kernel.map_kernel(self.kernel.runtime_pgd, pa, size, f"kernel memory ({size:#x} bytes)")
        return self.layout.kva(pa)

    def symbol(self, name: str) -> int:
        """The HYP VA of ``name``, a global of the runtime HYP code (what a ``call`` step names).
        Reads nothing from the machine; ``UnknownFunction`` (a ValueError) if the runtime code has
        no such global."""
        try:
            return self.kernel.symbol(name)
        except KeyError:
            raise UnknownFunction(name, self.kernel.functions()) from None

    # --- inspection -----------------------------------------------------------------------------
    def export(self) -> Export:
        """The board for another emulator (``hypemu.Export``): RAM banks, the memory image the kernel
        side loaded (original instruction words), the PL1 registers, and every kernel-side action
        so far (enter HYP, each HVC with r0-r3 and its result, each store, power-off), in order."""
        return export(self.kernel, tuple((b.base, b.size) for b in self.scenario.banks),
                      self.scenario.cpus)

    def translate(self, cpu: int, va: int, access: str = "read",
                  pgd: Union[None, str, int] = None) -> Union[Translation, Fault, int]:
        """Translate a HYP VA through the model. ``pgd`` None: what the CPU would use now (its TLB
        model first, then a walk of its HTTBR; a plain PA when its HYP MMU is off); ``"boot"``,
        ``"runtime"`` or a PA: a fresh walk of that table with the CPU's HTCR/HMAIR/HSCTLR. A
        Translation's ``source`` says which: ``"tlb"`` or ``"walk"``."""
        self._check_cpu(cpu)
        if isinstance(pgd, str) and pgd not in ("boot", "runtime"):
            raise UsageError(f"pgd must be None, 'boot', 'runtime' or a PA, got {pgd!r}")
        ttbr = self.kernel.pgd(pgd) if isinstance(pgd, str) else pgd
        t = self.core.translate(va, access, cpu=self.core.cpus[cpu], ttbr=ttbr, hyp=True)
        if isinstance(t, Translation) and ttbr is None and any(   # (a pgd's walk is fresh even
                t is e for e in self.core.cpus[cpu].tlb.entries()):  # if it is a TLB entry's object)
            return replace(t, source="tlb")   # served by the CPU's TLB model
        return t

    def tables(self, pgd: Union[str, int], cpu: int = 0) -> ptdump.TableDump:
        """A ptdump-style listing of a HYP table as it is in memory now: ``"boot"``, ``"runtime"``
        (the one table of single-step, for either) or a pgd PA, walked with ``cpu``'s HTCR and
        HSCTLR, memory types resolved through its HMAIR (the PL1 MAIR, which the init code copies,
        while that CPU has not set HMAIR)."""
        self._check_cpu(cpu)
        k = self.kernel
        pa = k.pgd(pgd) if isinstance(pgd, str) else pgd
        single = not k.design.trampoline
        name = ("hyp" if single else pgd) if isinstance(pgd, str) else f"pgd {pa:#x}"
        regs = self.core.cpus[cpu].sysregs
        regime, source = regime_of(regs), f"cpu{cpu}'s HMAIR"
        if not regs["HMAIR0"] and not regs["HMAIR1"]:
            source = f"cpu{cpu} has not set HMAIR: its PL1 MAIR, which the init code copies"
            regime = replace(regime, mair=regs["MAIR1"] << 32 | regs["MAIR0"])
        regions = memmap.physical_regions(self.layout, memmap.pgd_names(
            k.boot_pgd, k.runtime_pgd, single))
        namer = ptdump.Namer(self.layout, regions, trampoline=not single)
        return ptdump.dump(self.core.engine.read64, replace(regime, ttbr=pa), name, namer, source)

    def read_phys(self, pa: int, size: int) -> bytes:
        """``size`` bytes of RAM at ``pa`` as loaded (no MMU, no TLB; the trap markers for barriers,
        MRS/MSR CPSR and CPS are invisible). UsageError (a ValueError) where there is no RAM."""
        try:
            data = bytearray(self.core.engine.read(pa, size))
        except LookupError:
            raise UsageError(f"no RAM at PA {pa:#x}..{pa + size - 1:#x}") from None
        patched = self.core.runner.patched
        for at in range(pa & ~3, pa + size, 4):      # the loader patches whole, aligned words
            if at in patched and self.core.engine.read(at, 4) == PATCH_MARKER.to_bytes(4, "little"):
                for i in range(max(at, pa), min(at + 4, pa + size)):
                    data[i - pa] = patched[at].to_bytes(4, "little")[i - at]
        return bytes(data)

    def write_phys(self, pa: int, data: bytes) -> None:
        """Write simulated RAM from outside the guest. A write that changes a HYP page-table
        descriptor is a kernel-side table write: the hazard checks see it (e.g. ``bbm``)."""
        self.core.write_phys(pa, data)
        self.kernel.log.write(pa, bytes(data))

    def read32(self, pa: int) -> int:
        """The little-endian 32-bit word at physical address ``pa``."""
        return int.from_bytes(self.read_phys(pa, 4), "little")

    def hyp_registers(self, cpu: int) -> dict[str, int]:
        """The HYP registers of docs/DESIGN.md section 6, plus the syndrome/return state."""
        self._check_cpu(cpu)
        st = self.core.cpus[cpu]
        regs = {name: st.sysregs[name] for name in HYP_REGISTERS}
        regs["SP_hyp"] = self.core.banked_sp(st, MODE_HYP)
        regs.update(HSR=st.sysregs["HSR"], HDFAR=st.sysregs["HDFAR"], HIFAR=st.sysregs["HIFAR"],
                    ELR_hyp=st.elr_hyp, SPSR_hyp=st.spsr[MODE_HYP])
        return regs

    def mode(self, cpu: int) -> str:
        """The CPU's modelled mode: "svc" or "hyp", or "off" for a CPU that is powered off."""
        self._check_cpu(cpu)
        st = self.core.cpus[cpu]
        return MODE_NAMES[st.mode] if st.online else "off"

    @property
    def events(self) -> list[Event]:
        """The event log so far, oldest first (the trace); read it, do not change it."""
        return self.core.events

    @property
    def hazards(self) -> list[Hazard]:
        """The hazards reported so far (empty when the machine runs with ``checks=False``)."""
        return list(self.checks.hazards) if self.checks is not None else []

    def _cpu_list(self, cpus: Union[str, list[int]]) -> list[int]:
        if cpus == "all":
            return list(range(self.scenario.cpus))
        if isinstance(cpus, str) or not isinstance(cpus, (list, tuple)):
            raise UsageError(f"cpus must be 'all' or a list of CPU ids, got {cpus!r}")
        for cpu in cpus:
            self._check_cpu(cpu)
        if len(set(cpus)) != len(cpus):
            raise UsageError(f"a CPU is listed twice in {list(cpus)}")
        return list(cpus)

    def _check_cpu(self, cpu: int) -> None:
        if not isinstance(cpu, int) or isinstance(cpu, bool) or not 0 <= cpu < self.scenario.cpus:
            raise UsageError(f"cpu {cpu} does not exist (the board has {self.scenario.cpus})")
