"""A scenario's steps on a board, as ``hypemu.run`` runs them: each step's ``remap`` injections
first, then the step; and the check ``hypemu validate`` makes of each call's function name.

Why apart from ``machine``: the Machine API's own step methods (``boot``, ``call``, ``hotplug``)
know nothing of the scenario's step list; this is the one place that walks it, so that ``run``,
``Machine.run_step`` and ``hypemu tables --after-step`` apply injections the same way.
"""

from __future__ import annotations

from typing import Any, Optional, Protocol, Union

from . import events
from .cpu import CpuComplex
from .errors import ScenarioError, UnknownFunction
from .inject import Injector
from .kvm import Kernel, StepRunner
from .scenario import BootStep, CallStep, HotplugStep, Remap, Scenario


class Board(Protocol):
    """What the steps use of a ``Machine``."""

    scenario: Scenario
    core: CpuComplex
    kernel: Kernel
    injector: Injector
    runner: StepRunner
    calls: list[dict[str, Any]]
    step_index: Optional[int]

    def boot(self, cpus: Union[str, list[int]] = "all") -> None: ...

    def call(self, cpu: int, fn: Union[str, int], *args: int) -> int: ...

    def hotplug(self, cpu: int, state: str) -> None: ...

    def symbol(self, name: str) -> int: ...


def step_bound(s: Scenario) -> list[str]:
    """The injections that belong to a step (``remap ... at: N``), named for a warning."""
    return [f"inject[{i}] (before steps[{e.at}])" for i, e in enumerate(s.inject)
            if isinstance(e, Remap)]


def run_step(m: Board, index: int) -> Optional[int]:
    """``steps[index]``: its step event, the remaps due before it, the step; r0 of a call."""
    s, step, r0 = m.scenario, m.scenario.steps[index], None
    m.step_index = index
    line = s.step_lines[index] if index < len(s.step_lines) else None
    m.core.log.record(events.STEP, f"steps[{index}] {step.label()}", index, None,
                      f"line {line}" if line else "")
    m.injector.before_step(index, m.kernel, m.runner.new_step)
    try:
        match step:
            case BootStep(cpus=cpus):
                m.boot("all" if cpus == "all" else list(cpus))
            case CallStep(cpu=cpu, fn=fn, args=args):
                r0 = m.call(cpu, fn, *args)
                m.calls.append({"cpu": cpu, "fn": fn if isinstance(fn, str) else f"{fn:#x}",
                                "r0": r0})
            case HotplugStep(cpu=cpu, state=state):
                m.hotplug(cpu, state)
    except UnknownFunction as err:   # only the built runtime code knows its functions
        raise step_error(s, index, step.TAG, err) from None
    return r0


def check_call_names(m: Board) -> None:
    """Every call step's function name against the built runtime code (``hypemu validate``)."""
    for index, step in enumerate(m.scenario.steps):
        if isinstance(step, CallStep) and isinstance(step.fn, str):
            try:
                m.symbol(step.fn)
            except UnknownFunction as err:
                raise step_error(m.scenario, index, step.TAG, err) from None


def step_error(s: Scenario, index: int, tag: str, err: Exception) -> ScenarioError:
    """An input error of ``steps[index]``, at its line."""
    line = s.step_lines[index] if index < len(s.step_lines) else None
    return ScenarioError(f"steps[{index}].{tag}", str(err), s.file, line if s.file else None)
