"""hypemu: a simulator of the Linux KVM/ARM HYP-mode bring-up on Unicorn, with a Python-modelled HYP.

Public API (docs/DESIGN.md section 6; typed, see ``py.typed``):

- ``load_scenario(path_or_mapping) -> Scenario``: read and validate a scenario (nothing runs).
- ``run(scenario) -> Result``: build a board, run every step, judge the outcome against ``expect``.
- ``Machine(scenario)``: a board for step-by-step use in other rigs (``boot``, ``call``, ``hotplug``,
  ``translate``, ``read_phys``/``write_phys``, ``map_hyp``, ``hyp_registers``, ``events``,
  ``export`` -> ``Export``: the memory image and the kernel-side actions, for other emulators).
- ``Result``: what a run produced; ``Result.to_dict()`` is the JSON object that ``RESULT_SCHEMA``
  (a JSON Schema file shipped in this package) describes.
- Errors (``hypemu.errors``; whose fault it is): ``HypemuError`` is the base of them all.
  ``InputError``: the input is wrong: ``ScenarioError`` (``FILE:LINE: key: message``) and
  ``AsmError`` (user init code that does not assemble). ``ConfigError``: the kernel side refuses
  the layout (``.reason``). ``NotModelled``: the guest did something hypemu does not model.
  ``UsageError`` (a ``ValueError``): a ``Machine`` call that cannot be done. For step-by-step use
  ``GuestFault`` (the guest took an exception the flow did not expect; ``.record`` is a
  ``FaultRecord``) and ``BudgetExhausted`` (a step's instruction budget ran out). Anything else
  is a bug of hypemu. ``StepInjectionWarning``: a Machine driven by ``boot``/``call``/``hotplug``
  does not apply its scenario's ``remap`` injections (``run_step``/``run_steps`` do).
- ``SCENARIO_SCHEMA`` / ``scenario_schema()``: the JSON Schema of scenario files, generated from
  the typed models of ``hypemu.scenario``.
- ``sweep(sweep_file_or_mapping, jobs=1, out=None, ray=None)``: run a sweep (``hypemu.sweep``),
  yielding one row (a dict) per point; ``pandas.DataFrame(hypemu.sweep(...))`` is a table of them.
- Types that appear in those signatures and results: ``Scenario``, ``Translation`` and ``Fault``
  (what ``Machine.translate`` returns; a Translation's ``source`` is ``"tlb"`` or ``"walk"``),
  ``FaultRecord``, ``Event``, ``Hazard`` (``Machine.hazards``: the fields of the JSON report,
  ``disasm`` included), ``Layout`` (``Machine.layout``: the JSON layout's fields) and
  ``TableDump`` (``Machine.tables``). Their reprs show addresses in hex.

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
# The JSON Schema (draft 2020-12) of a scenario file's data, generated from hypemu.scenario's models.
SCENARIO_SCHEMA: Path = Path(__file__).resolve().with_name("scenario.schema.json")

_API = {
    "ConfigError": "errors", "HypemuError": "errors", "InputError": "errors",
    "UsageError": "errors", "Machine": "machine", "Result": "result", "run": "result",
    "DEFAULT_SCENARIO": "scenario", "Scenario": "scenario", "ScenarioError": "errors",
    "load_scenario": "scenario", "NotModelled": "errors", "FaultRecord": "cpu", "GuestFault": "kvm",
    "BudgetExhausted": "kvm", "AsmError": "asm", "Translation": "walker", "Fault": "walker",
    "Event": "events", "Export": "export", "Hazard": "hazards", "Layout": "layout",
    "StepInjectionWarning": "errors", "TableDump": "ptdump", "sweep": "sweep",
}
# Literal, so that type checkers know what ``from hypemu import ...`` may name.
__all__ = [
    "AsmError", "BudgetExhausted", "ConfigError", "DEFAULT_SCENARIO", "Event", "Export", "Fault",
    "FaultRecord", "GuestFault", "Hazard", "HypemuError", "InputError", "Layout", "Machine",
    "NotModelled", "RESULT_SCHEMA", "Result", "SCENARIO_SCHEMA", "Scenario", "ScenarioError",
    "StepInjectionWarning", "TableDump", "Translation", "UsageError", "__version__",
    "load_scenario", "result_schema", "run", "scenario_schema", "sweep",
]

if TYPE_CHECKING:   # what type checkers see; at run time ``__getattr__`` imports on first use
    from .asm import AsmError
    from .cpu import FaultRecord
    from .errors import (ConfigError, HypemuError, InputError, NotModelled, ScenarioError,
                         StepInjectionWarning, UsageError)
    from .events import Event
    from .export import Export
    from .hazards import Hazard
    from .layout import Layout
    from .ptdump import TableDump
    from .kvm import BudgetExhausted, GuestFault
    from .machine import Machine
    from .result import Result, run
    from .scenario import DEFAULT_SCENARIO, Scenario, load_scenario
    from .sweep import sweep
    from .walker import Fault, Translation


def result_schema() -> dict[str, Any]:
    """The JSON Schema of a result (``RESULT_SCHEMA``), parsed: validate ``Result.to_dict()`` or a
    line of ``hypemu run --json`` against it with any JSON Schema (draft 2020-12) validator."""
    import json
    with open(RESULT_SCHEMA, encoding="utf-8") as handle:
        schema: dict[str, Any] = json.load(handle)
    return schema


def scenario_schema() -> dict[str, Any]:
    """The JSON Schema of a scenario file (``SCENARIO_SCHEMA``), parsed: every key with its type,
    default and meaning, for editors and other tools. It checks the shape of the data; the loader
    also checks the rules across keys (alignment, overlaps, which CPUs are up at each step)."""
    import json
    with open(SCENARIO_SCHEMA, encoding="utf-8") as handle:
        schema: dict[str, Any] = json.load(handle)
    return schema


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module(f".{_API[name]}", __name__), name)
    raise AttributeError(f"module 'hypemu' has no attribute {name!r}")
