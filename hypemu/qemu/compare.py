"""hypemu's run next to QEMU's replay of it: one row per compared value, each with ``agree``.

``agree`` is ``yes``, ``no``, ``allowed`` (a named difference of ``allowed``) or ``hazard`` (a
difference in a run where hypemu named a hazard: what the hazard lets silicon do either way).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from ..export import Export
from . import allowed
from .registers import MODES
from .replay import Replayed

REGISTERS = ("HTTBR", "HTCR", "HSCTLR", "HMAIR0", "HMAIR1", "HVBAR", "SP_hyp", "ELR_hyp",
             "SPSR_hyp", "HSR", "HDFAR", "HIFAR")
FAULT_VECTORS = {"prefetch_abort": "prefetch_abort", "data_abort": "data_abort",
                 "undefined": "undefined"}


@dataclass
class Row:
    what: str
    hypemu: str
    qemu: str
    agree: str = "yes"
    note: Optional[str] = None
    cpu: Optional[int] = None          # the CPU the row is about (None: the whole run)

    def to_dict(self) -> dict[str, Any]:
        return {"what": self.what, "hypemu": self.hypemu, "qemu": self.qemu, "agree": self.agree,
                "note": self.note}


@dataclass
class Comparison:
    """All rows of one scenario, the notes on hypemu's hazards, and the verdict."""

    rows: list[Row] = field(default_factory=list)
    hazards: list[str] = field(default_factory=list)

    @property
    def agrees(self) -> bool:
        return all(r.agree != "no" for r in self.rows)

    @property
    def allowed(self) -> list[str]:
        return sorted({r.note for r in self.rows if r.agree == "allowed" and r.note})


def _hex(value: Optional[int]) -> str:
    return "unreadable" if value is None else f"{value:#x}"


def _outcome_rows(result: Any, rep: Replayed) -> Row:
    """The outcome row; its CPU is the one that ended either run early (None if neither did)."""
    end, fault = rep.ending, result.fault
    qemu = end.text()
    cpu = fault["cpu"] if fault else end.cpu
    if result.outcome in ("ok", "hazard"):
        return Row("outcome", "every call returned", qemu,
                   "yes" if end.how == "returned" else "no", cpu=cpu)
    if result.outcome == "timeout":
        return Row("outcome", "timeout (its instruction budget)", qemu,
                   "yes" if end.how == "running" else "no", cpu=cpu)
    hyp = f"{fault['kind']} on cpu{fault['cpu']} at {fault['pc']:#x}"
    same = end.how == "vector" and end.cpu == fault["cpu"] and end.vector == fault["kind"]
    return Row("outcome", hyp, qemu, "yes" if same else "no", cpu=cpu)


def _call_rows(ex: Export, rep: Replayed) -> list[Row]:
    calls = [(i, a) for i, a in enumerate(ex.actions) if a.kind == "hvc" and a.result is not None]
    rows = []
    for index, a in calls:
        got = rep.results.get(index)
        if got != a.result:
            args = ", ".join(f"{x:#x}" for x in a.args)
            rows.append(Row(f"hvc[{index}] cpu{a.cpu} ({args}) r0", _hex(a.result), _hex(got), "no",
                            cpu=a.cpu))
    agree = len(calls) - len(rows)
    summary = Row(f"r0 of {len(calls)} HVCs", f"{len(calls)} results", f"{agree} the same",
                  "yes" if not rows else "no")
    return [summary] + rows


def _cpu_rows(cpu: dict[str, Any], qemu: Optional[dict[str, Optional[int]]]) -> list[Row]:
    n = cpu["id"]
    qmode = "off" if qemu is None else MODES.get(qemu["mode"] or 0, f"{qemu['mode']:#x}")
    rows = [Row(f"cpu{n} mode", cpu["mode"], qmode, "yes" if qmode == cpu["mode"] else "no", cpu=n)]
    if cpu["mode"] == "off" or qemu is None:
        return rows
    for name in REGISTERS:
        hv, qv = cpu["hyp"][name], qemu.get(name)
        row = Row(f"cpu{n} {name}", _hex(hv), _hex(qv), cpu=n)
        if qv != hv:
            why = allowed.allowed(name, hv, qv) if qv is not None else None
            row.agree, row.note = ("allowed", why) if why else ("no", None)
        rows.append(row)
    return rows


def compare(result: Any, ex: Export, rep: Replayed,
            qemu_cpus: dict[int, dict[str, Optional[int]]]) -> Comparison:
    """``result``: hypemu's ``Result``; ``qemu_cpus``: the registers of every vCPU that is on."""
    out = Comparison()
    out.rows.append(_outcome_rows(result, rep))
    out.rows += _call_rows(ex, rep)
    for cpu in result.cpus:
        out.rows += _cpu_rows(cpu, qemu_cpus.get(cpu["id"]))
    if result.hazards:
        _excuse(out.rows, result.hazards)
        out.hazards = [hazard_note(h, out, ex, rep) for h in result.hazards]
    return out


def _excuse(rows: list[Row], hazards: list[dict[str, Any]]) -> None:
    """A difference in a run where hypemu named a hazard is ``hazard`` when that hazard can explain
    it: one of that CPU, or one of the kernel side (no CPU: any CPU may cache what it changed).
    The outcome and the HVC summary follow the rows they summarize."""
    cpus = {h.get("cpu") for h in hazards}
    for row in rows:
        if row.agree == "no" and row.cpu is not None and (row.cpu in cpus or None in cpus):
            row.agree, row.note = "hazard", "hypemu named a hazard on this CPU in this run"
    calls = [r for r in rows if r.what.startswith("hvc[")]
    for row in rows:
        summary = row.what.startswith("r0 of ") and all(r.agree == "hazard" for r in calls)
        if row.agree == "no" and row.cpu is None and (summary or row is rows[0]):
            row.agree, row.note = "hazard", "hypemu named a hazard in this run"


QEMU_DOES = {
    "stale_tlb": "QEMU served the stale TLB entry too",
    "bbm": "QEMU took the descriptor changed without break-before-make without complaint",
    "missing_isb": "QEMU applied the register write at once (it needs no ISB)",
    "missing_dsb": "QEMU completed the TLB maintenance at once (it needs no DSB)",
}


def _last_call(ex: Export, rep: Replayed, cpu: Optional[int]) -> str:
    """``the last call on cpuN returned 0x... with no fault`` on QEMU, for a hazard's note."""
    calls = [(i, a) for i, a in enumerate(ex.actions)
             if a.kind == "hvc" and (cpu is None or a.cpu == cpu) and i in rep.results]
    if not calls:
        return rep.ending.text()
    index, a = calls[-1]
    end = "" if rep.ending.how == "returned" else f"; then {rep.ending.text()}"
    return f"the last call on cpu{a.cpu} returned {rep.results[index]:#x} with no fault{end}"


def hazard_note(h: dict[str, Any], cmp: Comparison, ex: Export, rep: Replayed) -> str:
    """What QEMU did where hypemu named hazard ``h``."""
    where = f" on cpu{h['cpu']}" if h.get("cpu") is not None else ""
    at = f" at {h['pc']:#x} ({h['disasm']})" if h.get("pc") is not None else ""
    differs = [r for r in cmp.rows if r.agree == "hazard"]
    if differs:
        what = "; ".join(f"{r.what}: QEMU {r.qemu}, hypemu {r.hypemu}" for r in differs[:4])
        qemu = f"QEMU went another way: {what}"
    else:
        qemu = (f"{QEMU_DOES.get(h['kind'], 'QEMU ran as hypemu did')}, with the same results: "
                f"{_last_call(ex, rep, h.get('cpu'))}")
    return f"hypemu: {h['kind']}{where}{at}; {qemu}; on silicon either is allowed"
