"""A whole scenario run: ``run(scenario) -> Result``, the outcome judged against the scenario's
``expect`` (docs/DESIGN.md section 6), and which exceptions are the user's input (``INPUT_ERRORS``)
rather than outcomes. ``Machine`` (machine.py) is the board it drives."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Union

from . import faultsite, inject, stepper
from .errors import ConfigError, InputError, NotModelled, ScenarioError
from .engine import Engine, EngineFactory
from .events import Event
from .export import Export
from .kvm import BudgetExhausted, GuestFault
from .machine import Machine
from .scenario import Expect, Scenario, load_scenario, located


@dataclass
class Result:
    """What a scenario run produced (docs/DESIGN.md section 6)."""

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
    export: Optional[Export] = field(default=None, repr=False)   # run(..., export=True) only
    isa: str = "arm"          # the instruction set the kernel's code ran in (kernel.isa)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of docs/DESIGN.md section 6 (validated by ``hypemu.RESULT_SCHEMA``);
        ``events`` and ``mismatch`` are not part of it."""
        return {"name": self.name, "file": self.file, "outcome": self.outcome,
                "expected": self.expected, "passed": self.passed, "reason": self.reason,
                "fault": self.fault, "hazards": list(self.hazards), "cpus": list(self.cpus),
                "layout": self.layout, "calls": list(self.calls), "stats": dict(self.stats),
                "injections": list(self.injections), "isa": self.isa}


def _where(s: Scenario, m: Optional[Machine]) -> str:
    """`` at steps[N] (line L)``: which step ended a run, for a fault's or a timeout's reason."""
    index = None if m is None else m.step_index
    if index is None:
        return ""
    line = s.step_lines[index] if index < len(s.step_lines) else None
    return f" at steps[{index}]" + (f" (line {line})" if line else "")


def _shown(key: str, value: Any) -> str:
    """A fault field as the summary prints it: addresses and the HSR in hex, ``null`` for none."""
    if value is None:
        return "null"
    return f"{value:#x}" if key in ("pc", "va", "hsr") and isinstance(value, int) else str(value)


def _judge(result: Result, expect: Expect) -> None:
    """Compare the outcome with the expectation: outcome, partial fault match, hazard kinds."""
    if result.outcome != result.expected:
        result.mismatch.append(f"outcome {result.outcome}, expected {result.expected}")
    if expect.fault is not None:
        got = result.fault or {}
        for key, value in expect.fault.items():
            if got.get(key) != value:
                result.mismatch.append(f"fault.{key} is {_shown(key, got.get(key))}, "
                                       f"expected {_shown(key, value)}")
    kinds = {h["kind"] for h in result.hazards}
    for kind in expect.hazards or ():
        if kind not in kinds:
            result.mismatch.append(f"hazard {kind!r} expected but not reported")
    result.passed = not result.mismatch


INPUT_ERRORS = (InputError, NotModelled)
"""What ``run`` raises for input it cannot run (never an outcome): the CLI's exit status 2, an
error (not a failure) in the pytest plugin. Anything else is a bug of hypemu (``hypemu.errors``)."""


def _inject_input_error(err: inject.InjectError, s: Scenario) -> ScenarioError:
    key = f"inject[{err.index}].{err.key}" if err.index is not None else f"inject.{err.key}"
    return located(ScenarioError(key, str(err)), s.file, s.lines)


def check_buildable(scenario: Scenario) -> Optional[str]:
    """Build the board without running a step (``hypemu validate``): an injection that does not fit
    it, or a call of a function the runtime code lacks, raises ScenarioError; a layout the kernel
    side refuses is an outcome, returned as its reason."""
    try:
        m = Machine(scenario)
        m.injector.check_remaps(m.kernel)
    except ConfigError as err:
        return err.reason
    except inject.InjectError as err:
        raise _inject_input_error(err, scenario) from None
    stepper.check_call_names(m)
    return None


def input_error_message(err: BaseException, scenario: Scenario) -> str:
    """One line for an INPUT_ERRORS exception: ``FILE:LINE: key: message`` for input errors that
    carry their place (scenario, assembler), else prefixed with the scenario file."""
    if isinstance(err, InputError) and err.file:
        return str(err)
    where = f"{scenario.file}: " if scenario.file else ""
    kind = "not modelled: " if isinstance(err, NotModelled) else ""
    return f"{where}{kind}{err}"


def run(scenario: Union[Scenario, Mapping[str, Any]], checks: bool = True,
        export: bool = False, trace: bool = False, engines: EngineFactory = Engine) -> Result:
    """Run a whole scenario and return its Result. Guest faults, budgets and kernel refusals are
    outcomes; invalid input raises an ``InputError`` (``ScenarioError``, ``AsmError``), and a guest
    doing something hypemu does not model raises ``NotModelled``. ``export``: also keep the
    board's ``Machine.export()`` in ``Result.export`` (None when no board was built). ``trace``:
    the events carry the detail of the trace (``Machine``). ``engines``: see ``Machine``."""
    s = load_scenario(scenario)
    started = time.perf_counter()
    result = Result(s.name, s.file, "ok", s.expect.outcome, isa=s.isa)
    machine = None
    try:
        machine = Machine(s, checks, trace, engines)
        result.isa = machine.kernel.isa         # what the image holds (a kernel build decides)
        result.layout = dict(machine.layout.to_dict())   # docs/DESIGN.md section 6
        result.calls = machine.calls
        machine.run_steps()
    except ConfigError as err:
        result.outcome, result.reason = "config_error", err.reason
    except GuestFault as err:
        result.outcome, result.fault = "fault", err.record.to_dict()
        site = faultsite.note(err.record, machine.layout, machine.kernel.design.trampoline) \
            if machine is not None else ""
        result.reason = (f"{err.record.kind} during {err.during}{_where(s, machine)}: "
                         f"{err.record.detail}{site}")
    except BudgetExhausted as err:
        result.outcome, result.reason = "timeout", f"{err}{_where(s, machine)}"
    except inject.InjectError as err:   # an injection that does not fit this machine: bad input
        raise _inject_input_error(err, s) from None
    if machine is not None and engines is not Engine and machine.core.engine.code.tainted:
        # a reused engine's code met stores Unicorn does not check (code_cache.blind): only a
        # fresh engine gives what a fresh run gives
        return run(s, checks, export, trace)
    if machine is not None:
        _collect(machine, result)
        result.export = machine.export() if export else None
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
    result.injections = m.injections
    result.events = list(m.events)
