"""A scenario's result as canonical JSON, without its timing: what two ways of running the same
scenario (two budgets, two ways of calling Unicorn) must agree on, byte for byte."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Union

import hypemu
from hypemu.scenario import from_mapping, load_file


def result_json(spec_or_path: Union[Path, Mapping[str, Any]]) -> str:
    scenario = load_file(spec_or_path) if isinstance(spec_or_path, Path) else \
        from_mapping(spec_or_path)
    data = hypemu.run(scenario).to_dict()
    data["stats"].pop("seconds", None)
    return json.dumps(data, sort_keys=True)
