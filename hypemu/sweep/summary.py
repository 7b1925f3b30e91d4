"""What ``hypemu sweep`` prints at the end: the outcome counts, for each outcome the axis values it
covers (a range for numbers, the set for words), and the reasons grouped by their class with
one example each."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any, Iterable, Optional

from .rows import OUTCOMES
from .spec import Axis, SweepSpec

_UNITS = ((1 << 40, "TiB"), (1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB"))


def show_value(axis: Optional[Axis], value: Any) -> str:
    """An axis value as a reader wants it: sizes in binary units (``16MiB``) when exact, other
    addresses in hex, words as they are."""
    if isinstance(value, bool) or not isinstance(value, int):
        return str(value) if not isinstance(value, (list, dict)) else _compact(value)
    if axis is not None and axis.hexa:
        if "size" in axis.path:
            for unit, name in _UNITS:
                if value >= unit and value % unit == 0:
                    return f"{value // unit}{name}"
        return hex(value)
    return str(value)


def _compact(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_compact(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_compact(v) for v in value) + "]"
    return show_value(None, value)


def _covered(axis: Axis, values: list[Any]) -> str:
    """The values of ``axis`` some rows have: ``all``, a range of numbers, or the list."""
    if len(values) == len({repr(v) for v in axis.row_values}):
        return "all"
    if axis.numeric and len(values) > 6:
        return (f"{show_value(axis, min(values))}..{show_value(axis, max(values))} "
                f"({len(values)} of {len(axis.values)} values)")
    order = {repr(v): i for i, v in enumerate(axis.row_values)}
    return ", ".join(show_value(axis, v) for v in sorted(values, key=lambda v: order.get(repr(v), 0)))


class _Group:
    """The rows of one outcome, or of one reason class: how many, the axis values they cover, the
    reason of the first (by index)."""

    def __init__(self, naxes: int) -> None:
        self.count = 0
        self.values: list[dict[str, Any]] = [{} for _ in range(naxes)]
        self.first: Optional[tuple[int, str]] = None

    def add(self, row: dict[str, Any], axes: tuple[Axis, ...]) -> None:
        self.count += 1
        for seen, axis in zip(self.values, axes):
            value = row[axis.path]
            seen.setdefault(repr(value), value)
        if row["reason"] and (self.first is None or row["index"] < self.first[0]):
            self.first = (row["index"], row["reason"])


class Tally:
    """The summary's figures, added up row by row (a sweep's rows are not all kept in memory)."""

    def __init__(self, spec: SweepSpec) -> None:
        self.spec = spec
        self.total = 0
        self.outcomes: dict[str, _Group] = {}
        self.classes: dict[str, dict[str, _Group]] = defaultdict(dict)
        self.bounced: Counter[str] = Counter()
        self.hazards: dict[str, Counter[str]] = defaultdict(Counter)

    def add(self, row: dict[str, Any]) -> None:
        axes, n = self.spec.axes, len(self.spec.axes)
        outcome = row["outcome"]
        self.total += 1
        self.outcomes.setdefault(outcome, _Group(n)).add(row, axes)
        if row["reason_class"]:
            self.classes[outcome].setdefault(row["reason_class"], _Group(n)).add(row, axes)
        self.bounced[outcome] += bool(row["bounce_page"])
        if row["hazards"]:
            self.hazards[outcome].update(row["hazards"].split(","))

    def text(self, new: Optional[int] = None) -> str:
        spec = self.spec
        head = f"sweep {spec.name}: {self.total} points"
        if new is not None:
            head += f" ({new} run now, {self.total - new} already in the output)"
        present = [o for o in OUTCOMES if o in self.outcomes]
        lines = [head + ": " + ", ".join(f"{o} {self.outcomes[o].count}" for o in present)]
        for outcome in present:
            group = self.outcomes[outcome]
            lines.append(f"  {outcome} ({group.count}):")
            for axis, seen in zip(spec.axes, group.values):
                lines.append(f"    {axis.path}: {_covered(axis, list(seen.values()))}")
            for name, mine in sorted(self.classes[outcome].items(),
                                     key=lambda item: (-item[1].count, item[0])):
                lines.append(f"    {name} ({mine.count}): where {_where(spec, mine)}")
                if mine.first:
                    lines.append(f"      e.g. {mine.first[1]}")
            if self.bounced[outcome]:
                lines.append(f"    bounce page used: {self.bounced[outcome]} of {group.count}")
            if self.hazards[outcome]:
                lines.append("    hazards: " + ", ".join(
                    f"{k} {n}" for k, n in sorted(self.hazards[outcome].items())))
        return "\n".join(lines)


def summary(spec: SweepSpec, rows: Iterable[dict[str, Any]], new: Optional[int] = None) -> str:
    """The summary of ``rows`` (see ``Tally``)."""
    tally = Tally(spec)
    for row in rows:
        tally.add(row)
    return tally.text(new)


def _where(spec: SweepSpec, group: _Group) -> str:
    """The axes on which a group does not cover every value, with the values it covers."""
    parts = []
    for axis, seen in zip(spec.axes, group.values):
        covered = _covered(axis, list(seen.values()))
        if covered != "all":
            parts.append(f"{axis.path} {covered}")
    return "; ".join(parts) or "anywhere on the grid"
