"""Scenarios (format 1): the typed models, loading a scenario file safely, validating every key.

The package, one concept a module:

- ``models``: the frozen typed scenario (sections, ``BootStep | CallStep | HotplugStep``,
  ``Skip | Corrupt | Remap``, ``Expect``, ``FaultMatch``); each field declares its key once, with
  kind, default and meaning;
- ``keys``: what is derived from those declarations: the README key table, the defaults, the keys
  allowed at each level, and the JSON Schema shipped as ``hypemu/scenario.schema.json``;
- ``values``: the value kinds and how a value the user wrote becomes a typed one;
- ``sections``, ``steps``, ``guest``: the rules across keys (alignment, overlaps, the CPU timeline,
  the init-code contract);
- ``yamlfile``: safe YAML loading and the line of every key; ``load``: the one way in.

An input error reads ``FILE:LINE: key.path: what is wrong`` (``key.path`` with dots and ``[i]`` for
list items, ``(file)`` for a problem with the file as a whole); without a file (the Python API) it
is ``key.path: what is wrong``.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ScenarioError
from ..layout import Bank
from .keys import DEFAULTS, INJECT_DEFAULTS, KEYS, STEP_DEFAULTS, default_of, json_schema, key_table
from .load import DEFAULT_SCENARIO, from_mapping, load_file, load_scenario
from .models import (BOUNCE_PAGE, CALL_ABIS, CORRUPT_FIELDS, FAULT_FSCS, FAULT_KINDS, FORMAT,
                     HAZARD_KINDS, HOTPLUG_STATES, INIT_KINDS, INJECT_TABLES, MAX_ARGS, MAX_BANKS,
                     MAX_CPUS, OUTCOMES, PHYS_LIMIT, SKIP_BARRIERS, BootStep, CallStep, Corrupt,
                     Expect, FaultMatch, HotplugStep, HypSection, Injection, KernelSection, Limits,
                     MachineSection, Remap, Scenario, Skip, Step)
from .steps import INJECT_KINDS, STEP_KINDS
from .values import parse_size
from .yamlfile import FILE_KEY, MAX_FILE_BYTES, line_of, located

# The JSON Schema (draft 2020-12) of a scenario file's data, generated from the models.
SCENARIO_SCHEMA: Path = Path(__file__).resolve().parent.parent / "scenario.schema.json"

__all__ = [
    "BOUNCE_PAGE", "Bank", "BootStep", "CALL_ABIS", "CORRUPT_FIELDS", "CallStep", "Corrupt",
    "DEFAULTS", "DEFAULT_SCENARIO", "Expect", "FAULT_FSCS", "FAULT_KINDS", "FILE_KEY", "FORMAT",
    "FaultMatch", "HAZARD_KINDS", "HOTPLUG_STATES", "HotplugStep", "HypSection", "INIT_KINDS",
    "INJECT_DEFAULTS", "INJECT_KINDS", "INJECT_TABLES", "Injection", "KEYS", "KernelSection",
    "Limits", "MAX_ARGS", "MAX_BANKS", "MAX_CPUS", "MAX_FILE_BYTES", "MachineSection", "OUTCOMES",
    "PHYS_LIMIT", "Remap", "SCENARIO_SCHEMA", "SKIP_BARRIERS", "STEP_DEFAULTS", "STEP_KINDS",
    "Scenario", "ScenarioError", "Skip", "Step", "default_of", "from_mapping", "json_schema",
    "key_table", "line_of", "load_file", "load_scenario", "located", "parse_size",
]
