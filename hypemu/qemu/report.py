"""The cross-check's output: a table per scenario with ``agree`` per row, the allowed differences
and hazard notes that apply, and the verdict; or the same as JSON lines."""

from __future__ import annotations

import json

from .allowed import RESET_NOTE
from .crosscheck import Crosscheck


def text(check: Crosscheck) -> str:
    """The table, every row with its ``agree``, then the notes and the verdict."""
    head = f"{check.file} ({check.name})"
    if check.verdict == "not comparable":
        return f"{head}: not comparable: {check.reason}"
    lines = [f"{head}: {check.board}, {check.actions} kernel-side actions replayed"]
    rows = check.comparison.rows
    w1 = max(len(r.what) for r in rows)
    w2 = max(max(len(r.hypemu) for r in rows[1:]), 6)   # the outcome row may be long: it overflows
    w3 = max(max(len(r.qemu) for r in rows[1:]), 4)
    lines.append(f"  {'what':<{w1}}  {'hypemu':<{w2}}  {'QEMU':<{w3}}  agree")
    for r in rows:
        lines.append(f"  {r.what:<{w1}}  {r.hypemu:<{w2}}  {r.qemu:<{w3}}  {r.agree}")
    for note in check.comparison.allowed:
        lines.append(f"  allowed: {note}")
    for note in check.comparison.hazards:
        lines.append(f"  hazard: {note}")
    lines.append(f"  verdict: {check.verdict}")
    return "\n".join(lines)


def summary(checks: list[Crosscheck]) -> str:
    counts = {v: sum(c.verdict == v for c in checks) for v in ("agree", "disagree",
                                                                "not comparable")}
    return (f"crosscheck: {counts['agree']} agree, {counts['disagree']} disagree, "
            f"{counts['not comparable']} not comparable\n{RESET_NOTE}")


def json_line(check: Crosscheck) -> str:
    return json.dumps(check.to_dict(), sort_keys=True)
