"""hypemu: a simulator of the Linux KVM/ARM HYP-mode bring-up on Unicorn, with a Python-modelled HYP.

Public API (DESIGN.md section 6): ``load_scenario``, ``run``, ``Machine``, ``Result``, ``ConfigError``,
``ScenarioError``, ``NotModelled``, and for step-by-step use ``GuestFault`` (the guest took an
exception the flow did not expect; ``.record`` holds the fault) and ``BudgetExhausted``. They are imported on first use, so that ``import hypemu.lpae`` (or the walker, the
TLB model...) does not start Unicorn or keystone.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_API = {
    "ConfigError": "layout", "Machine": "machine", "Result": "machine", "run": "machine",
    "DEFAULT_SCENARIO": "scenario", "Scenario": "scenario", "ScenarioError": "scenario",
    "load_scenario": "scenario", "NotModelled": "cpu", "GuestFault": "kvm",
    "BudgetExhausted": "kvm",
}
__all__ = [*_API, "__version__"]


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module(f".{_API[name]}", __name__), name)
    raise AttributeError(f"module 'hypemu' has no attribute {name!r}")
