"""The kernel side (PL1, modelled in Python): what ``kvm_mmu_init()``, ``init_hyp_mode()`` and
``cpu_init_hyp_mode()`` of Linux v3.10 do, on the simulated board.

- ``config``: ``KernelConfig``, and ``from_scenario``, the one place that reads a Scenario;
- ``plan``: the layout, the linked guest image and the HYP tables, before any board exists (every
  refusal, ``ConfigError``, is made there);
- ``designs``: the init designs, one class each (dual-step, single-step);
- (the init HVC's call conventions and the predefined constants: ``hypemu.guest_abi``);
- ``tables``: table memory and the mapping builder; ``runner``: the step runner and its budget;
- ``kernel``: the kernel side on the running board (loading, per-CPU init, hotplug, table edits).
"""

from __future__ import annotations

from .config import ASM_DIR, BUILTIN_INIT, KernelConfig, from_scenario
from ..guest_abi import GUEST_CONSTANTS_DOC, PROBE_VALUE, guest_constants
from .kernel import Kernel
from .plan import BoardPlan, plan_board
from .runner import Budget, BudgetExhausted, GuestFault, StepRunner

__all__ = ["ASM_DIR", "BUILTIN_INIT", "BoardPlan", "Budget", "BudgetExhausted",
           "GUEST_CONSTANTS_DOC", "GuestFault", "Kernel", "KernelConfig", "PROBE_VALUE",
           "StepRunner", "from_scenario", "guest_constants", "plan_board"]
