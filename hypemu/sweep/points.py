"""One point of a sweep: its scenario (the base with the axis values set), its key, and the place
to cite when the combination is not a valid scenario.

The key is a hash of the base and the point's values, so a rerun of the same sweep finds the rows
it already has, and a sweep whose base changed shares none of them.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Union

from ..errors import ScenarioError
from ..scenario import Scenario, from_mapping, line_of
from ..scenario.values import join, plain_copy
from .spec import Axis, SweepSpec, set_path

KEY_FORMAT = 1   # bump when a row's meaning changes: old rows are then not reused


def point_key(spec: SweepSpec, values: tuple[Any, ...]) -> str:
    """16 hex digits naming the point (base + values), the same in every process and run."""
    digest = _base_digest(spec).copy()
    digest.update(json.dumps([[a.path, v] for a, v in zip(spec.axes, values)],
                             default=str).encode())
    return str(digest.hexdigest())[:16]


_BASES: dict[int, tuple[SweepSpec, Any]] = {}


def _base_digest(spec: SweepSpec) -> Any:
    """The hash state after the base (the same for every point of the sweep: computed once)."""
    known = _BASES.get(id(spec))
    if known is None or known[0] is not spec:
        blob = json.dumps([KEY_FORMAT, spec.base], sort_keys=True, default=str)
        known = (spec, hashlib.sha256(blob.encode()))
        _BASES.clear()
        _BASES[id(spec)] = known
    return known[1]


def scenario_at(spec: SweepSpec, values: tuple[Any, ...]) -> Union[Scenario, str]:
    """The point's scenario, or, for a combination that is not a valid scenario, the message
    ``FILE:LINE: key: what is wrong`` at the axis that makes it so (else at the base)."""
    data = plain_copy(dict(spec.base))
    for axis, value in zip(spec.axes, values):
        for path in axis.paths:
            set_path(data, path, value)
    try:
        return from_mapping(data, base_dir=spec.base_dir)
    except ScenarioError as err:
        return _located(spec, err)


def _related(axis: Axis, key: str) -> bool:
    return any(a == key or key.startswith((a + ".", a + "[")) or a.startswith((key + ".", key + "["))
               for a in axis.paths)


def _located(spec: SweepSpec, err: ScenarioError) -> str:
    for axis in spec.axes:
        if _related(axis, err.key):
            where = f"{spec.file}:{axis.line}: " if spec.file else ""
            return f"{where}{err.key}: {err.message}"
    if spec.base_file:
        return f"{spec.base_file}:{line_of(spec.base_lines, err.key)}: {err.key}: {err.message}"
    if spec.file:
        line = line_of(spec.lines, join("base", err.key))
        return f"{spec.file}:{line}: base.{err.key}: {err.message}"
    return f"{err.key}: {err.message}"
