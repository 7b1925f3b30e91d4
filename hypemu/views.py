"""The inspection views of a scenario: its HYP tables at a chosen step, and its memory map.

Why apart from ``machine``: these views drive a Machine through its public step API
(``run_step``, which applies the remaps as ``run`` does) to the point the user picks, and build
the memory map of a board the kernel side refused, for which no Machine exists. ``hypemu tables``
and ``hypemu map`` are these functions and a printer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from . import memmap
from .kvm import BudgetExhausted, GuestFault
from .layout import ConfigError
from .machine import Machine
from .ptdump import TableDump
from .scenario import Scenario
from .errors import OptionError


@dataclass
class Stopped:
    """A board driven up to a step: the machine (None when the layout was refused), how many steps
    ran to completion, and why it stopped earlier than asked (a fault, a budget, a refusal)."""

    machine: Optional[Machine]
    steps_done: int
    ended: Optional[str] = None


def machine_after(scenario: Scenario, after_step: Optional[int] = None) -> Stopped:
    """Build the board and run its steps up to and including ``steps[after_step]`` (all of them
    for None), applying each ``remap`` injection before the step it names, as ``run`` does. A step
    that faults or runs out of budget ends the drive there: its tables are what the fault saw."""
    steps = scenario.steps
    if after_step is not None and not 0 <= after_step < len(steps):
        raise OptionError(f"--after-step {after_step}: the scenario has steps 0..{len(steps) - 1}")
    try:
        m = Machine(scenario)
    except ConfigError as err:
        return Stopped(None, 0, f"config_error: {err.reason}")
    last = len(steps) - 1 if after_step is None else after_step
    for index in range(last + 1):
        try:
            m.run_step(index)   # with the remaps due before it, as run does
        except (GuestFault, BudgetExhausted) as err:
            return Stopped(m, index, f"steps[{index}] ended the run: {err}")
    return Stopped(m, last + 1)


def table_dumps(m: Machine, cpu: int = 0) -> list[TableDump]:
    """Every HYP table of the board: boot and runtime, or the one table of single-step."""
    return [m.tables("runtime", cpu)] if not m.kernel.design.trampoline else \
        [m.tables("boot", cpu), m.tables("runtime", cpu)]


def memory_map(scenario: Scenario) -> memmap.MemoryMap:
    """The memory map of the board as the kernel side builds it (before any step), or, when the
    kernel side refuses the layout, its plan and the collision it was refused for."""
    try:
        m = Machine(scenario)
    except ConfigError as err:
        return memmap.refused_map(scenario, err.reason)
    k = m.kernel
    return memmap.from_parts(scenario, m.layout,
                             memmap.pgd_names(k.boot_pgd, k.runtime_pgd, not k.design.trampoline),
                             table_names=table_pages(table_dumps(m)))


def table_pages(dumps: list[TableDump]) -> dict[int, str]:
    """Which table each next-level table page is, from the walks: ``{pa: "runtime L3 table"}``
    (``"boot+runtime ..."`` if both tables lead to it)."""
    owners: dict[int, dict[str, None]] = {}
    for d in dumps:
        for r in d.ranges:
            for level, pa in r.path[1:]:
                owners.setdefault(pa & ~0xFFF, {})[f"{d.name} L{level} table"] = None
    return {pa: " + ".join(names) for pa, names in owners.items()}
