"""A board running a scenario: RAM, CPUs, the kernel side, the steps, and the Result.

``Machine`` is the step-by-step API for other rigs (boot, call, hotplug, translate, physical memory);
``run`` executes a whole scenario and turns what happened into a ``Result`` (DESIGN.md section 6).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Optional, Union

from . import inject, memmap, ptdump
from .events import Event
from .hazards import Hazard
from .asm import AsmError
from .cpu import MODE_HYP, MODE_NAMES, Core, NotModelled, regime_of
from .kvm import BudgetExhausted, GuestFault, Kernel
from .layout import ConfigError
from .scenario import Scenario, ScenarioError, load_scenario
from .walker import Fault, Translation

HYP_REGISTERS = ("HTTBR", "HTCR", "HSCTLR", "HMAIR0", "HMAIR1", "HVBAR")


class Machine:
    """One simulated board with the scenario's RAM, CPUs and kernel layout, its HYP tables built
    and the scenario's ``corrupt`` injections applied; no CPU is running yet (call ``boot``).

    ``checks`` False turns the hazard checks off (nothing is reported; for benchmarks).
    Raises ``ConfigError`` when the kernel side refuses the layout (as KVM would at init)."""

    def __init__(self, scenario: Union[Scenario, Mapping[str, Any]], checks: bool = True):
        self.scenario = load_scenario(scenario)
        s = self.scenario
        self.core = Core([(b.base, b.size) for b in s.banks], s.cpus, s.tlb_entries, checks)
        self.kernel = Kernel(self.core, s)
        self.layout = self.kernel.layout

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
                raise ValueError(f"cpu {cpu} is already online")
        for cpu in todo:
            self.kernel.boot_cpu(cpu)
        if self.kernel.single_step and not self.kernel.idmap_removed:
            self.kernel.remove_idmap()

    def call(self, cpu: int, fn: Union[str, int], *args: int) -> int:
        """An HVC into the runtime HYP code: ``fn`` (a global of the runtime code, or a HYP VA) with
        up to three arguments; returns r0."""
        if len(args) > 3:
            raise ValueError(f"a HYP call takes at most 3 arguments (r1-r3), got {len(args)}")
        self._check_cpu(cpu)
        if cpu not in self.booted:
            raise ValueError(f"cpu{cpu} has not been booted (or is offline): boot it first")
        va = self.symbol(fn) if isinstance(fn, str) else fn
        regs = list(args) + [0] * (3 - len(args))
        self._new_step()
        return self.kernel.hvc(cpu, va, *regs, during=f"the call of {fn}")

    def hotplug(self, cpu: int, state: str) -> None:
        """CPU hotplug: ``off`` powers the CPU down (its HYP state is lost); ``on`` powers it up and
        re-runs the HYP init against the kept boot tables."""
        self._check_cpu(cpu)
        if state not in ("on", "off"):
            raise ValueError(f"hotplug state must be 'on' or 'off', got {state!r}")
        self._new_step()
        if state == "off":
            if not self.core.cpus[cpu].online:
                raise ValueError(f"cpu {cpu} is already offline")
            self.kernel.power_off(cpu)
        else:
            self.boot([cpu])

    def _new_step(self) -> None:
        """Each step of the API (boot, call, hotplug, remap) gets the whole budget of
        limits.instructions, as a scenario's steps do."""
        self.kernel.budget.used = 0

    @property
    def booted(self) -> set[int]:
        """The CPUs whose HYP init has completed and that are still online."""
        return set(self.kernel.ready)

    def corrupt(self, table: str, va: int, field: str, value: int) -> dict:
        """Fault injection, now: change one field (valid, af, xn, ap or output) of the leaf
        descriptor mapping ``va`` in the ``boot`` or ``runtime`` table, as a kernel bug or a stray
        write would. No TLB maintenance is done. Returns what was changed."""
        record = inject.corrupt(self.kernel, table, va, field, value)
        self.kernel.injections.append(record)
        return record

    def remap(self, table: str, va: int, to: int, bbm: bool = True, tlbi: bool = True) -> dict:
        """Fault injection, now: the kernel side points the live mapping of ``va`` at PA ``to``,
        with (or without) break-before-make and HYP TLB invalidation (an HVC to hyp_tlbi_va_is on
        the first online CPU). Returns what was changed."""
        self._new_step()
        record = inject.remap(self.kernel, table, va, to, bbm, tlbi)
        self.kernel.injections.append(record)
        return record

    def map_hyp(self, pa: int, size: int) -> int:
        """create_hyp_mappings() at runtime (as KVM does for its VM structures): map kernel memory at
        its kernel VA in the runtime table; returns that HYP VA. Like the kernel, no TLB maintenance
        is done: the range was not mapped before."""
        self.kernel.map_kernel(self.kernel.runtime_pgd, pa, size, f"kernel memory ({size:#x} bytes)")
        return self.layout.kva(pa)

    def symbol(self, name: str) -> int:
        """The HYP VA of ``name``, a global of the runtime HYP code (what a ``call`` step names).
        Reads nothing from the machine; ValueError if the runtime code has no such global."""
        try:
            return self.kernel.symbol(name)
        except KeyError:
            known = ", ".join(sorted(self.kernel.image.runtime.globals))
            raise ValueError(f"no HYP function {name!r} in the runtime code (known: {known})") from None

    # --- inspection -----------------------------------------------------------------------------
    def translate(self, cpu: int, va: int, access: str = "read",
                  pgd: Union[None, str, int] = None) -> Union[Translation, Fault, int]:
        """Translate a HYP VA through the model. ``pgd`` None: what the CPU would use now (its TLB
        model first, then a walk of its HTTBR; a plain PA when its HYP MMU is off); ``"boot"``,
        ``"runtime"`` or a PA: a fresh walk of that table with the CPU's HTCR/HMAIR/HSCTLR."""
        self._check_cpu(cpu)
        ttbr = {"boot": self.kernel.boot_pgd, "runtime": self.kernel.runtime_pgd}.get(pgd, pgd)
        return self.core.translate(va, access, cpu=self.core.cpus[cpu], ttbr=ttbr, hyp=True)

    def tables(self, pgd: Union[str, int], cpu: int = 0) -> ptdump.TableDump:
        """A ptdump-style listing of a HYP table as it is in memory now: ``"boot"``, ``"runtime"``
        (the one table of single-step, for either) or a pgd PA, walked with ``cpu``'s HTCR and
        HSCTLR, memory types resolved through its HMAIR (the PL1 MAIR, which the init code copies,
        while that CPU has not set HMAIR)."""
        self._check_cpu(cpu)
        k = self.kernel
        pa = k.pgd(pgd) if isinstance(pgd, str) else pgd
        name = ("hyp" if k.single_step else pgd) if isinstance(pgd, str) else f"pgd {pa:#x}"
        regs = self.core.cpus[cpu].sysregs
        regime, source = regime_of(regs), f"cpu{cpu}'s HMAIR"
        if not regs["HMAIR0"] and not regs["HMAIR1"]:
            source = f"cpu{cpu} has not set HMAIR: its PL1 MAIR, which the init code copies"
            regime = replace(regime, mair=regs["MAIR1"] << 32 | regs["MAIR0"])
        regions = memmap.physical_regions(self.layout, memmap.pgd_names(
            k.boot_pgd, k.runtime_pgd, k.single_step))
        namer = ptdump.Namer(self.layout, regions, trampoline=not k.single_step)
        return ptdump.dump(self.core.engine.read64, replace(regime, ttbr=pa), name, namer, source)

    def read_phys(self, pa: int, size: int) -> bytes:
        """``size`` bytes of simulated physical memory at ``pa``, as the kernel side sees it (no
        translation, no TLB). ValueError where the board has no RAM."""
        try:
            return self.core.engine.read(pa, size)
        except LookupError:
            raise ValueError(f"no RAM at PA {pa:#x}..{pa + size - 1:#x}") from None

    def write_phys(self, pa: int, data: bytes) -> None:
        """Write simulated RAM from outside the guest. A write that changes a HYP page-table
        descriptor is a kernel-side table write: the hazard checks see it (e.g. ``bbm``)."""
        checks = self.core.checks
        pages = []
        if checks is not None:
            first, last = pa & ~0xFFF, (pa + max(len(data), 1) - 1) & ~0xFFF
            pages = [p for p in range(first, last + 1, 0x1000) if p in checks.table_pages]
        before = {p: self.core.engine.read(p, 0x1000) for p in pages}
        self.core.engine.write(pa, data)
        if pages:
            checks.pages_written(before)

    def read32(self, pa: int) -> int:
        """The little-endian 32-bit word at physical address ``pa``."""
        return int.from_bytes(self.read_phys(pa, 4), "little")

    def hyp_registers(self, cpu: int) -> dict[str, int]:
        """The HYP registers of DESIGN.md section 6, plus the syndrome/return state."""
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
        return list(self.core.checks.hazards) if self.core.checks is not None else []

    def _cpu_list(self, cpus: Union[str, list[int]]) -> list[int]:
        if cpus == "all":
            return list(range(self.scenario.cpus))
        if isinstance(cpus, str) or not isinstance(cpus, (list, tuple)):
            raise ValueError(f"cpus must be 'all' or a list of CPU ids, got {cpus!r}")
        for cpu in cpus:
            self._check_cpu(cpu)
        if len(set(cpus)) != len(cpus):
            raise ValueError(f"a CPU is listed twice in {list(cpus)}")
        return list(cpus)

    def _check_cpu(self, cpu: int) -> None:
        if not isinstance(cpu, int) or isinstance(cpu, bool) or not 0 <= cpu < self.scenario.cpus:
            raise ValueError(f"cpu {cpu} does not exist (the board has {self.scenario.cpus})")


@dataclass
class Result:
    """What a scenario run produced (DESIGN.md section 6)."""

    name: str
    file: Optional[str]
    outcome: str
    expected: str
    passed: bool = False
    reason: Optional[str] = None
    fault: Optional[dict[str, Any]] = None
    hazards: list[dict[str, Any]] = field(default_factory=list)
    cpus: list[dict[str, Any]] = field(default_factory=list)
    layout: Optional[dict[str, Any]] = None
    calls: list[dict[str, Any]] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    injections: list[dict[str, Any]] = field(default_factory=list)
    mismatch: list[str] = field(default_factory=list)   # why ``passed`` is False, one line each

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of DESIGN.md section 6 (validated by ``hypemu.RESULT_SCHEMA``);
        ``events`` and ``mismatch`` are not part of it."""
        return {"name": self.name, "file": self.file, "outcome": self.outcome,
                "expected": self.expected, "passed": self.passed, "reason": self.reason,
                "fault": self.fault, "hazards": list(self.hazards), "cpus": list(self.cpus),
                "layout": self.layout, "calls": list(self.calls), "stats": dict(self.stats),
                "injections": list(self.injections)}


def _layout_dict(m: Machine) -> dict:
    """The layout of DESIGN.md section 6. Single-step: boot and runtime pgd are the one HYP table,
    and there is no trampoline (null)."""
    lay, single = m.layout, m.kernel.single_step
    return {"boot_pgd": m.kernel.boot_pgd, "runtime_pgd": m.kernel.runtime_pgd,
            "idmap_start": lay.init_pa, "idmap_end": lay.init_pa + lay.init_size,
            "trampoline_va": None if single else lay.trampoline_va,
            "trampoline_pa": None if single else lay.trampoline_pa,
            "bounce_page": lay.bounce_page}


def _where(s: Scenario, index: Optional[int]) -> str:
    """`` at steps[N] (line L)``: which step ended a run, for a fault's or a timeout's reason."""
    if index is None:
        return ""
    line = s.step_lines[index] if index < len(s.step_lines) else None
    return f" at steps[{index}]" + (f" (line {line})" if line else "")


def _run_steps(m: Machine, result: Result, at: list[int]) -> None:
    """Run the steps; ``at`` gets the index of the step in progress (for the reason of an end)."""
    remaps = [(i, item["remap"]) for i, item in enumerate(m.scenario.inject) if "remap" in item]
    for index, step in enumerate(m.scenario.steps):
        at[:] = [index]
        for inject_index, r in remaps:
            if r["at"] == index:
                m._new_step()
                m.kernel._injected(inject_index, lambda: inject.remap(
                    m.kernel, r["table"], r["va"], r["to"], r["bbm"], r["tlbi"], r["at"]))
        try:
            _run_step(m, step, result)
        except ValueError as err:   # e.g. a call of a function the runtime code does not have
            s = m.scenario
            line = s.step_lines[index] if index < len(s.step_lines) else None
            key = f"steps[{index}].{next(iter(step))}"
            raise ScenarioError(key, str(err), s.file, line if s.file else None) from None


def _run_step(m: Machine, step: dict, result: Result) -> None:
    """One step (each Machine step method starts a fresh instruction budget)."""
    if "boot" in step:
        m.boot(step["boot"])
    elif "call" in step:
        c = step["call"]
        value = m.call(c.get("cpu", 0), c["fn"], *c.get("args", []))
        result.calls.append({"cpu": c.get("cpu", 0), "fn": c["fn"], "r0": value})
    elif "hotplug" in step:
        m.hotplug(step["hotplug"]["cpu"], step["hotplug"]["state"])
    else:
        raise ValueError(f"unknown step {sorted(step)}")


def _judge(result: Result, expect: dict) -> None:
    """Compare the outcome with the expectation: outcome, partial fault match, hazard kinds."""
    if result.outcome != result.expected:
        result.mismatch.append(f"outcome {result.outcome}, expected {result.expected}")
    want_fault = expect.get("fault")
    if want_fault:
        got = result.fault or {}
        for key, value in want_fault.items():
            if got.get(key) != value:
                result.mismatch.append(f"fault.{key} is {got.get(key)!r}, expected {value!r}")
    kinds = {h["kind"] for h in result.hazards}
    for kind in expect.get("hazards") or []:
        if kind not in kinds:
            result.mismatch.append(f"hazard {kind!r} expected but not reported")
    result.passed = not result.mismatch


INPUT_ERRORS = (ScenarioError, AsmError, ValueError, NotImplementedError, NotModelled)
"""What ``run`` raises for input it cannot run (never an outcome): the CLI's exit status 2, an
error (not a failure) in the pytest plugin."""


def _inject_input_error(err: inject.InjectError, s: Scenario) -> ScenarioError:
    key = f"inject[{err.index}].{err.key}" if err.index is not None else f"inject.{err.key}"
    error = ScenarioError(key, str(err))
    return error.located(s.file, s.lines) if s.file else error


def check_buildable(scenario: Scenario) -> Optional[str]:
    """Build the board without running a step (``hypemu validate``): an injection that does not fit
    it raises ScenarioError; a layout the kernel side refuses is an outcome, returned as its reason."""
    try:
        m = Machine(scenario)
        for index, item in enumerate(scenario.inject):
            if "remap" in item:
                r = item["remap"]
                m.kernel._injected(index, lambda: inject.check_remap(m.kernel, r["table"], r["va"],
                                                                     r["to"]), record=False)
    except ConfigError as err:
        return err.reason
    except inject.InjectError as err:
        raise _inject_input_error(err, scenario) from None
    return None


def input_error_message(err: BaseException, scenario: Scenario) -> str:
    """One line for an INPUT_ERRORS exception: ``FILE:LINE: key: message`` for scenario and
    assembler errors (they carry their place), else prefixed with the scenario file."""
    if isinstance(err, (ScenarioError, AsmError)):
        return str(err)
    where = f"{scenario.file}: " if scenario.file else ""
    kind = "not modelled: " if isinstance(err, NotModelled) else ""
    return f"{where}{kind}{err}"


def run(scenario: Union[Scenario, Mapping[str, Any]], checks: bool = True) -> Result:
    """Run a whole scenario and return its Result. Guest faults, budgets and kernel refusals are
    outcomes; invalid input raises (ScenarioError, ValueError, NotImplementedError), and a guest doing
    something hypemu does not model raises NotModelled."""
    s = load_scenario(scenario)
    started = time.perf_counter()
    result = Result(s.name, s.file, "ok", s.expect.get("outcome", "ok"))
    machine = None
    at: list[int] = []     # the step in progress
    try:
        machine = Machine(s, checks)
        result.layout = _layout_dict(machine)
        _run_steps(machine, result, at)
    except ConfigError as err:
        result.outcome, result.reason = "config_error", err.reason
    except GuestFault as err:
        result.outcome, result.fault = "fault", err.record.to_dict()
        result.reason = (f"{err.record.kind} during {err.during}{_where(s, at[0] if at else None)}: "
                         f"{err.record.detail}")
    except BudgetExhausted as err:
        result.outcome, result.reason = "timeout", f"{err}{_where(s, at[0] if at else None)}"
    except inject.InjectError as err:   # an injection that does not fit this machine: bad input
        raise _inject_input_error(err, s) from None
    if machine is not None:
        _collect(machine, result)
        if result.hazards and result.outcome == "ok":
            result.outcome = "hazard"
    result.stats["seconds"] = round(time.perf_counter() - started, 6)
    _judge(result, s.expect)
    return result


def _collect(m: Machine, result: Result) -> None:
    for cpu in range(m.scenario.cpus):
        result.cpus.append({"id": cpu, "online": m.core.cpus[cpu].online, "mode": m.mode(cpu),
                            "hyp": m.hyp_registers(cpu)})
    st = m.core.stats
    result.stats.update(instructions=st.instructions, tlb_fills=st.tlb_fills, walks=st.walks,
                        hvcs=st.hvcs)
    result.hazards = [h.to_dict() for h in m.hazards]
    result.injections = list(m.kernel.injections)
    result.events = list(m.events)
