"""hypemu: a simulator of the Linux KVM/ARM HYP-mode bring-up on Unicorn, with a Python-modelled HYP.

Public API (DESIGN.md section 6; typed, see ``py.typed``):

- ``load_scenario(path_or_mapping) -> Scenario``: read and validate a scenario (nothing runs).
- ``run(scenario) -> Result``: build a board, run every step, judge the outcome against ``expect``.
- ``Machine(scenario)``: a board for step-by-step use in other rigs (``boot``, ``call``, ``hotplug``,
  ``translate``, ``read_phys``/``write_phys``, ``map_hyp``, ``hyp_registers``, ``events``).
- ``Result``: what a run produced; ``Result.to_dict()`` is the JSON object that ``RESULT_SCHEMA``
  (a JSON Schema file shipped in this package) describes.
- Errors: ``ScenarioError`` (invalid scenario input, ``FILE:LINE: key: message``), ``ConfigError``
  (the kernel side refuses the layout; ``.reason``), ``AsmError`` (user init code that does not
  assemble), ``NotModelled`` (the guest did something hypemu does not model), and for step-by-step
  use ``GuestFault`` (the guest took an exception the flow did not expect; ``.record`` is a
  ``FaultRecord``) and ``BudgetExhausted`` (a step's instruction budget ran out).
- Types that appear in those signatures: ``Scenario``, ``Translation`` and ``Fault`` (what
  ``Machine.translate`` returns), ``FaultRecord``, ``Event``.

Everything is imported on first use, so that ``import hypemu`` (which the pytest plugin does in every
project that has hypemu installed) and ``import hypemu.lpae`` do not start Unicorn or keystone.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# The JSON Schema (draft 2020-12) of ``Result.to_dict()`` and of ``hypemu run --json`` output.
RESULT_SCHEMA: Path = Path(__file__).resolve().with_name("result.schema.json")

_API = {
    "ConfigError": "layout", "Machine": "machine", "Result": "machine", "run": "machine",
    "DEFAULT_SCENARIO": "scenario", "Scenario": "scenario", "ScenarioError": "scenario",
    "load_scenario": "scenario", "NotModelled": "cpu", "FaultRecord": "cpu", "GuestFault": "kvm",
    "BudgetExhausted": "kvm", "AsmError": "asm", "Translation": "walker", "Fault": "walker",
    "Event": "events",
}
# Literal, so that type checkers know what ``from hypemu import ...`` may name.
__all__ = [
    "AsmError", "BudgetExhausted", "ConfigError", "DEFAULT_SCENARIO", "Event", "Fault", "FaultRecord",
    "GuestFault", "Machine", "NotModelled", "RESULT_SCHEMA", "Result", "Scenario", "ScenarioError",
    "Translation", "__version__", "load_scenario", "result_schema", "run",
]

if TYPE_CHECKING:   # what type checkers see; at run time ``__getattr__`` imports on first use
    from .asm import AsmError
    from .cpu import FaultRecord, NotModelled
    from .events import Event
    from .kvm import BudgetExhausted, GuestFault
    from .layout import ConfigError
    from .machine import Machine, Result, run
    from .scenario import DEFAULT_SCENARIO, Scenario, ScenarioError, load_scenario
    from .walker import Fault, Translation


def result_schema() -> dict[str, Any]:
    """The JSON Schema of a result (``RESULT_SCHEMA``), parsed: validate ``Result.to_dict()`` or a
    line of ``hypemu run --json`` against it with any JSON Schema (draft 2020-12) validator."""
    import json
    with open(RESULT_SCHEMA, encoding="utf-8") as handle:
        schema: dict[str, Any] = json.load(handle)
    return schema


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module(f".{_API[name]}", __name__), name)
    raise AttributeError(f"module 'hypemu' has no attribute {name!r}")
