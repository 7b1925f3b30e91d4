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


def summary(spec: SweepSpec, rows: Iterable[dict[str, Any]], new: Optional[int] = None) -> str:
    rows = list(rows)
    counts = Counter(r["outcome"] for r in rows)
    head = f"sweep {spec.name}: {len(rows)} points"
    if new is not None:
        head += f" ({new} run now, {len(rows) - new} already in the output)"
    lines = [head + ": " + ", ".join(f"{o} {counts[o]}" for o in OUTCOMES if counts[o])]
    for outcome in OUTCOMES:
        mine = [r for r in rows if r["outcome"] == outcome]
        if not mine:
            continue
        lines.append(f"  {outcome} ({len(mine)}):")
        for axis in spec.axes:
            seen = {repr(r[axis.path]): r[axis.path] for r in mine}
            lines.append(f"    {axis.path}: {_covered(axis, list(seen.values()))}")
        lines.extend(_reasons(spec, mine))
    return "\n".join(lines)


def _where(spec: SweepSpec, rows: list[dict[str, Any]]) -> str:
    """The axes on which ``rows`` do not cover every value, with the values they cover."""
    parts = []
    for axis in spec.axes:
        seen = {repr(r[axis.path]): r[axis.path] for r in rows}
        covered = _covered(axis, list(seen.values()))
        if covered != "all":
            parts.append(f"{axis.path} {covered}")
    return "; ".join(parts) or "anywhere on the grid"


def _reasons(spec: SweepSpec, rows: list[dict[str, Any]]) -> list[str]:
    by_class: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        if row["reason_class"]:
            by_class[row["reason_class"]].append(row)
    out = []
    for name, mine in sorted(by_class.items(), key=lambda item: (-len(item[1]), item[0])):
        example = min(mine, key=lambda r: r["index"])["reason"] or ""
        out.append(f"    {name} ({len(mine)}): where {_where(spec, mine)}")
        if example:
            out.append(f"      e.g. {example}")
    bounced = sum(1 for r in rows if r["bounce_page"])
    if bounced:
        out.append(f"    bounce page used: {bounced} of {len(rows)}")
    hazards = Counter(k for r in rows if r["hazards"] for k in r["hazards"].split(","))
    if hazards:
        out.append("    hazards: " + ", ".join(f"{k} {n}" for k, n in sorted(hazards.items())))
    return out
