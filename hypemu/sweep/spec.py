"""A sweep file: a base scenario, axes over scenario keys, and how to sample them.

Read with the scenario files' own YAML loader (safe, one document, the line of every key), so a
sweep file with errors is a ``ScenarioError`` at ``FILE:LINE: key.path: message`` (exit 2), found
before any point runs. Each axis is a key path of the README key table (``machine.ram.size``; an
item of a list by its index, ``steps[1].hotplug.cpu``, ``machine.ram[1].base``); its values are a
list, or ``{range: [lo, hi], step: s}`` (linear, both ends included when on the step), or
``{range: [lo, hi], scale: log2}`` (lo, 2 lo, 4 lo ... up to hi), or ``{values: [...]}``; a
mapping may add ``also: [paths]`` (more keys set to the same value: the CPU a hotplug step and
the call after it name) and ``labels: [...]`` (one word per value, what the rows hold instead of
a value such as a list of injections). ``sample`` is ``grid`` (every
combination) or ``{random: N, seed: S}`` (N distinct combinations of the grid, drawn with seed S).
"""

from __future__ import annotations

import copy
import os
import random
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from ..errors import ScenarioError
from ..scenario import from_mapping, line_of, load_file, parse_size
from ..scenario.keys import KEYS, kind_of
from ..scenario.values import Int, describe, join, suggest
from ..scenario.yamlfile import FILE_KEY, parse, read_text

TOP_KEYS = ("name", "description", "base", "axes", "sample")
MAX_AXIS_VALUES = 1_000_000
MAX_GRID = 10**12         # points a grid may name (a random sample draws from it)
_PART = re.compile(r"[^.\[\]]+|\[\d+\]")
_TABLE_PATHS = tuple(path for path, _, _ in KEYS)


@dataclass(frozen=True)
class Axis:
    """One axis: a scenario key path, its values in order, and the line that declares it."""

    path: str
    values: tuple[Any, ...]
    line: int
    hexa: bool = False      # an address or a size: shown in hex / binary units
    also: tuple[str, ...] = ()               # more key paths set to the same value
    labels: Optional[tuple[str, ...]] = None  # what rows, summary and plot show for each value

    @property
    def row_values(self) -> tuple[Any, ...]:
        """The values as rows hold them: the labels where the sweep file gives them."""
        return self.labels if self.labels is not None else self.values

    @property
    def paths(self) -> tuple[str, ...]:
        return (self.path, *self.also)

    @property
    def numeric(self) -> bool:
        return all(isinstance(v, int) and not isinstance(v, bool) for v in self.row_values)


@dataclass(frozen=True)
class Sample:
    kind: str = "grid"      # or "random"
    count: int = 0
    seed: int = 0


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep: every point is ``base`` with one value of each axis set."""

    name: str
    description: str
    base: Mapping[str, Any]
    axes: tuple[Axis, ...]
    sample: Sample = field(default_factory=Sample)
    file: Optional[str] = None
    base_dir: Optional[str] = None          # where the base's relative paths (hyp.code) start
    base_file: Optional[str] = None
    base_lines: Mapping[str, int] = field(default_factory=dict)
    lines: Mapping[str, int] = field(default_factory=dict)

    @property
    def grid_size(self) -> int:
        total = 1
        for axis in self.axes:
            total *= len(axis.values)
        return total

    def indices(self) -> list[int]:
        """The grid indices of the points to run, ascending."""
        total = self.grid_size
        if self.sample.kind == "grid" or self.sample.count >= total:
            return list(range(total))
        return sorted(random.Random(self.sample.seed).sample(range(total), self.sample.count))

    def positions(self, index: int) -> tuple[int, ...]:
        """Which value of each axis grid point ``index`` takes (the last axis varies fastest)."""
        out = []
        for axis in reversed(self.axes):
            index, at = divmod(index, len(axis.values))
            out.append(at)
        return tuple(reversed(out))

    def values(self, index: int) -> tuple[Any, ...]:
        """The axis values of grid point ``index``."""
        return tuple(a.values[at] for a, at in zip(self.axes, self.positions(index)))


def load_sweep(path: str) -> SweepSpec:
    """Read and check a sweep file; ``ScenarioError`` (``FILE:LINE: key: message``) if it is wrong."""
    text = read_text(path)
    try:
        data, lines = parse(text)
    except ScenarioError as err:
        raise err.at(path, err.line or 1) from None
    try:
        return from_data(data, path, lines)
    except ScenarioError as err:
        if err.file:
            raise
        raise err.at(path, err.line or line_of(lines, err.key)) from None


def from_data(data: Any, file: Optional[str] = None,
              lines: Optional[Mapping[str, int]] = None) -> SweepSpec:
    """A SweepSpec from plain data (a parsed sweep file, or a mapping from Python)."""
    lines = dict(lines or {})
    if not isinstance(data, Mapping):
        raise ScenarioError(FILE_KEY, f"expected a mapping (name, base, axes, sample), got "
                                      f"{describe(data)}")
    for key in data:
        if key not in TOP_KEYS:
            raise ScenarioError(join("", key), f"unknown key{suggest(str(key), TOP_KEYS)}")
    for key in ("name", "base", "axes"):
        if key not in data:
            raise ScenarioError(FILE_KEY, f"{key!r} is required")
    name, description = data["name"], data.get("description", "")
    if not isinstance(name, str) or not name:
        raise ScenarioError("name", f"expected a non-empty string, got {describe(name)}")
    if not isinstance(description, str):
        raise ScenarioError("description", f"expected a string, got {describe(description)}")
    here = os.path.dirname(os.path.abspath(file)) if file else None
    base, base_dir, base_file, base_lines = _base(data["base"], here, name)
    axes = _axes(data["axes"], lines, base)
    spec = SweepSpec(name, description, base, axes, _sample(data.get("sample", "grid")), file,
                     base_dir, base_file, base_lines, lines)
    if spec.grid_size > MAX_GRID:
        raise ScenarioError("axes", f"the grid has {spec.grid_size:,} points: more than "
                                    f"{MAX_GRID:,}")
    return spec


def _base(value: Any, here: Optional[str], name: str
          ) -> tuple[dict[str, Any], Optional[str], Optional[str], dict[str, int]]:
    """The base scenario as plain data: ``{file: PATH}`` (relative to the sweep file) or a mapping.
    It must be a valid scenario on its own (errors cite its own file)."""
    if isinstance(value, Mapping) and set(value) == {"file"}:
        if not isinstance(value["file"], str):
            raise ScenarioError("base.file", f"expected a path, got {describe(value['file'])}")
        path = os.path.join(here or ".", value["file"])
        if not os.path.isfile(path):
            raise ScenarioError("base.file", f"no scenario file {path}")
        load_file(path)                                   # its errors, at its lines
        data, lines = parse(read_text(path))
        return dict(data), os.path.dirname(os.path.abspath(path)), path, lines
    if not isinstance(value, Mapping):
        raise ScenarioError("base", f"expected {{file: PATH}} or a scenario mapping, got "
                                    f"{describe(value)}")
    data = {"name": name, **copy.deepcopy(dict(value))}
    try:
        from_mapping(data, base_dir=here)
    except ScenarioError as err:
        raise ScenarioError(f"base.{err.key}" if err.key != FILE_KEY else "base",
                            err.message) from None
    return data, here, None, {}


def table_path(path: str) -> str:
    """The README key table's name for ``path``: list indices become ``[]``, a RAM bank's
    index is dropped (``machine.ram[1].base`` is a ``machine.ram.base``)."""
    general = re.sub(r"\[\d+\]", "[]", path)
    return general.replace("machine.ram[].", "machine.ram.")


def _axes(value: Any, lines: Mapping[str, int], base: Mapping[str, Any]) -> tuple[Axis, ...]:
    if not isinstance(value, Mapping) or not value:
        raise ScenarioError("axes", f"expected a mapping of scenario key paths to values, got "
                                    f"{describe(value)}")
    axes = []
    for path, spec in value.items():
        key = join("axes", path)
        try:
            axes.append(_axis(str(path), spec, key, lines, base))
        except ScenarioError as err:   # cited as axes.PATH..., at the line of the quoted key
            shown = err.key.replace(key, f"axes.{path}", 1)
            raise ScenarioError(shown, err.message, line=err.line or line_of(lines, err.key)) from None
    return tuple(axes)


def _axis(path: str, spec: Any, key: str, lines: Mapping[str, int], base: Mapping[str, Any]) -> Axis:
    sized = _sized(path, key)
    extra = spec if isinstance(spec, Mapping) else {}
    for name in extra:
        if name not in AXIS_KEYS:
            raise ScenarioError(join(key, name), f"unknown key{suggest(str(name), AXIS_KEYS)}")
    also = extra.get("also", [])
    if not isinstance(also, list) or not all(isinstance(p, str) for p in also):
        raise ScenarioError(join(key, "also"), f"expected a list of key paths, got {describe(also)}")
    for other in also:
        _sized(other, join(key, "also"))
    if "values" in extra:
        if "range" in extra:
            raise ScenarioError(key, "values or range, not both")
        spec = extra["values"]
        if not isinstance(spec, list):
            raise ScenarioError(join(key, "values"), f"expected a list, got {describe(spec)}")
    values = _values(spec, key, sized)
    labels = extra.get("labels")
    if labels is not None and (not isinstance(labels, list) or len(labels) != len(values)
                               or not all(isinstance(x, str) for x in labels)
                               or len(set(labels)) != len(labels)):
        raise ScenarioError(join(key, "labels"), f"expected {len(values)} distinct words, one per "
                                                 f"value, got {describe(labels)}")
    trial = copy.deepcopy(dict(base))
    for target in (path, *also):
        set_path(trial, target, values[0], key)          # reachable in the base?
    return Axis(path, values, line_of(lines, key), hexa=bool(sized), also=tuple(also),
                labels=tuple(labels) if labels is not None else None)


AXIS_KEYS = ("values", "range", "step", "scale", "also", "labels")


def _sized(path: str, key: str) -> bool:
    """Check ``path`` names a key of the table; whether its values are sizes or addresses."""
    general = table_path(path)
    if general not in _TABLE_PATHS:
        raise ScenarioError(key, f"{path} is not a scenario key of the README key table"
                                 f"{suggest(general, _TABLE_PATHS)}")
    kind = kind_of(general)
    return bool(isinstance(kind, Int) and kind.size or "size" in kind.text
                or "address" in kind.text)


def _values(spec: Any, key: str, sized: bool) -> tuple[Any, ...]:
    if isinstance(spec, list):
        if not spec:
            raise ScenarioError(key, "an axis needs at least one value")
        return tuple(_number(v, key) if sized else v for v in spec)
    if not isinstance(spec, Mapping) or "range" not in spec:
        raise ScenarioError(key, f"expected a list of values, {{values: [...]}}, {{range: [lo, hi], "
                                 f"step: N}} or {{range: [lo, hi], scale: log2}}, got {describe(spec)}")
    bounds = spec["range"]
    if not isinstance(bounds, list) or len(bounds) != 2:
        raise ScenarioError(join(key, "range"), f"expected [lo, hi], got {describe(bounds)}")
    lo, hi = (_number(v, join(key, "range")) for v in bounds)
    if lo > hi:
        raise ScenarioError(join(key, "range"), f"lo {lo:#x} is above hi {hi:#x}")
    scale = spec.get("scale", "linear")
    if scale == "log2":
        if "step" in spec or lo <= 0:
            raise ScenarioError(join(key, "scale"), "log2 takes no step and needs lo > 0")
        out = [lo << k for k in range((hi // lo).bit_length()) if lo << k <= hi]
    elif scale == "linear":
        if "step" not in spec:
            raise ScenarioError(key, "a linear range needs a step (or scale: log2)")
        step = _number(spec["step"], join(key, "step"))
        if step <= 0:
            raise ScenarioError(join(key, "step"), "must be positive")
        if (hi - lo) // step + 1 > MAX_AXIS_VALUES:
            raise ScenarioError(key, f"more than {MAX_AXIS_VALUES:,} values")
        out = list(range(lo, hi + 1, step))
    else:
        raise ScenarioError(join(key, "scale"), f"expected linear or log2, got {describe(scale)}")
    return tuple(out)


def _number(value: Any, key: str) -> Any:
    """Sizes as integers (``16MiB``, ``0x1000``); words such as ``auto`` stay as they are."""
    try:
        return parse_size(value, key)
    except ScenarioError:
        if isinstance(value, str) and re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", value):
            return value
        raise


def _sample(value: Any) -> Sample:
    if value == "grid":
        return Sample()
    if isinstance(value, Mapping) and "random" in value:
        for extra in value:
            if extra not in ("random", "seed"):
                raise ScenarioError(join("sample", extra), f"unknown key{suggest(str(extra), ('random', 'seed'))}")
        count, seed = value["random"], value.get("seed", 0)
        for what, number in (("random", count), ("seed", seed)):
            if isinstance(number, bool) or not isinstance(number, int) or number < 0:
                raise ScenarioError(join("sample", what), f"expected an integer >= 0, got "
                                                          f"{describe(number)}")
        return Sample("random", count, seed)
    raise ScenarioError("sample", f"expected grid or {{random: N, seed: S}}, got {describe(value)}")


def set_path(data: dict[str, Any], path: str, value: Any, key: str = "") -> None:
    """Set the scenario key ``path`` of ``data`` (plain data) to ``value``, creating the
    mappings on the way; a list item must exist in the base. ScenarioError at ``key`` otherwise."""
    parts = _PART.findall(path)
    node: Any = data
    for here, part in enumerate(parts):
        last = here == len(parts) - 1
        if part.startswith("["):
            index = int(part[1:-1])
            if not isinstance(node, list) or index >= len(node):
                raise ScenarioError(key or path, f"the base has no {''.join(parts[:here + 1])}: "
                                                 f"an axis can only set an item the base lists")
            if last:
                node[index] = value
            else:
                node = node[index]
            continue
        if not isinstance(node, dict):
            raise ScenarioError(key or path, f"the base's {'.'.join(parts[:here])} is a list: "
                                             f"name an item of it ({'.'.join(parts[:here])}[0]...)")
        if last:
            node[part] = value
        else:
            node = node.setdefault(part, {})
