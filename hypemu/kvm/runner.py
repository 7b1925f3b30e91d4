"""The step runner: runs a kernel-side call on the current CPU until it returns to PL1, within the
step's instruction budget, and turns a guest exception or an exhausted budget into an exception
the step reports (outcomes ``fault`` and ``timeout``).

The budget is the runner's: every call of a step draws from it, and ``new_step`` refills it (each
step of a scenario, and each step of the Machine API, gets the whole of limits.instructions).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..cpu import CpuComplex, FaultRecord


class GuestFault(Exception):
    """The guest took an exception the init or call flow did not expect."""

    def __init__(self, record: FaultRecord, during: str):
        self.record, self.during = record, during
        super().__init__(f"{record.kind} on cpu{record.cpu} at {record.pc:#x} during {during}")


class BudgetExhausted(Exception):
    """The step's instruction budget ran out (the ``timeout`` outcome)."""

    def __init__(self, cpu: int, pc: int, during: str, budget: Optional[int], wfi: bool = False):
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


class StepRunner:
    """Runs guest code for the kernel side, step by step, against one budget."""

    def __init__(self, core: CpuComplex, instructions: Optional[int]):
        self.core = core
        self.budget = Budget(instructions)

    def new_step(self) -> None:
        """A new step starts with the whole budget."""
        self.budget.used = 0

    def run_to_pl1(self, cpu: int, pc: int, during: str) -> int:
        """Run the current CPU from ``pc`` until it returns to the PL1 sentinel in SVC; r0 then.
        GuestFault or BudgetExhausted (a WFI, with no interrupt modelled, never ends) otherwise."""
        budget = self.budget
        if budget.left is not None and budget.left < 1:
            raise BudgetExhausted(cpu, pc, during, budget.limit)
        result = self.core.run_guest(pc, budget.left)
        budget.used += result.instructions
        if result.stop == "fault":
            assert result.fault is not None
            raise GuestFault(result.fault, during)
        if result.stop in ("timeout", "wfi"):
            raise BudgetExhausted(cpu, result.pc, during, budget.limit, result.stop == "wfi")
        return self.core.reg(0)
