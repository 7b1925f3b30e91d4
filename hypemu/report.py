"""The readable summary of a Result, as ``hypemu run`` prints it."""

from __future__ import annotations

from typing import Any, Optional

from . import regdecode, timeline
from .result import Result
from .scenario import Scenario


def _hex(value: Optional[int]) -> str:
    return "null" if value is None else f"{value:#x}"


def _name(value: Any) -> str:
    """A value that is not an address (a fault status name, a level), ``null`` for none."""
    return "null" if value is None else str(value)


def _cpu_detail(cpu: dict[str, Any], lay: Optional[dict[str, Any]], verbose: bool) -> list[str]:
    """The exception state of a CPU (HSR, ELR_hyp, SPSR_hyp, HDFAR, HIFAR), and with ``verbose``
    HSCTLR, HTCR, HTTBR and HSR decoded field by field."""
    hyp = cpu["hyp"]
    lines = ["      " + " ".join(f"{k}={_hex(hyp[k])}" for k in
                                 ("HSR", "ELR_hyp", "SPSR_hyp", "HDFAR", "HIFAR"))]
    if verbose:
        pgds = {}
        if lay:
            pgds = ({"HYP pgd": lay["runtime_pgd"]} if lay["boot_pgd"] == lay["runtime_pgd"]
                    else {"boot pgd": lay["boot_pgd"], "runtime pgd": lay["runtime_pgd"]})
        lines += [f"      HSCTLR: {regdecode.hsctlr_text(hyp['HSCTLR'])}",
                  f"      HTCR:   {regdecode.htcr_text(hyp['HTCR'])}",
                  f"      HTTBR:  {regdecode.httbr_text(hyp['HTTBR'], hyp['HTCR'], pgds)}"]
    return lines + [f"      HSR:    {regdecode.hsr_text(hyp['HSR'])}"]


def _at_fault(result: Result) -> list[dict[str, Any]]:
    """The hazards reported at the faulting instruction itself (e.g. the exception entry that read
    an unsynchronized HVBAR): consequences of the fault, shown with it."""
    f = result.fault
    if not f:
        return []
    return [h for h in result.hazards if (h["cpu"], h["pc"]) == (f["cpu"], f["pc"])]


def _hazard_lines(hazard: dict[str, Any], lead: str) -> list[str]:
    where = ("kernel side" if hazard["cpu"] is None else
             f"cpu{hazard['cpu']} pc={_hex(hazard['pc'])} {hazard.get('disasm') or ''}".rstrip())
    va = f" va={_hex(hazard['va'])}" if hazard["va"] is not None else ""
    return [f"{lead}: {hazard['kind']} {where}{va}", f"          {hazard['detail']}"]


def summary(result: Result, verbose: bool = False, scenario: Optional[Scenario] = None) -> str:
    """A short, readable account: verdict, outcome, layout, HYP registers per CPU (the exception
    state of a faulting CPU; every register decoded with ``verbose``), the timeline of the
    ``scenario``'s steps (when given), statistics."""
    verdict = "PASS" if result.passed else "FAIL"
    lines = [f"{verdict} {result.name}: outcome {result.outcome} (expected {result.expected})"]
    if result.file:
        lines[0] += f"  [{result.file}]"
    if result.isa != "arm":
        lines[0] += f"  (kernel built for {result.isa})"
    lines += [f"  mismatch: {m}" for m in result.mismatch]
    if result.reason:
        lines.append(f"  reason: {result.reason}")
    at_fault = _at_fault(result)
    if result.fault:
        f = result.fault
        lines.append(f"  fault: cpu{f['cpu']} {f['kind']} pc={_hex(f['pc'])} va={_hex(f['va'])} "
                     f"fsc={_name(f['fsc'])} level={_name(f['level'])} hsr={_hex(f['hsr'])}")
        for hazard in at_fault:   # right below its cause, not among the run's own hazards
            lines += _hazard_lines(hazard, "    at the faulting instruction, hazard")
    lay = result.layout
    if lay:
        bounce = _hex(lay["bounce_page"])
        idmap = f"idmap [{_hex(lay['idmap_start'])}, {_hex(lay['idmap_end'])})"
        if lay["trampoline_va"] is None:   # single-step: one table, no trampoline
            lines += [f"  layout: one HYP pgd {_hex(lay['runtime_pgd'])} (single-step), {idmap}"]
        else:
            lines += [f"  layout: boot pgd {_hex(lay['boot_pgd'])}, runtime pgd {_hex(lay['runtime_pgd'])}",
                      f"          {idmap}, trampoline {_hex(lay['trampoline_va'])} -> "
                      f"{_hex(lay['trampoline_pa'])}, bounce page {bounce}"]
    for cpu in result.cpus:
        hyp = cpu["hyp"]
        regs = " ".join(f"{k}={_hex(hyp[k])}" for k in
                        ("HTTBR", "HTCR", "HSCTLR", "HMAIR0", "HMAIR1", "HVBAR", "SP_hyp"))
        state = "online" if cpu["online"] else "offline"
        lines.append(f"  cpu{cpu['id']} ({state}, {cpu.get('mode', '?')}): {regs}")
        if verbose or (result.fault and result.fault.get("cpu") == cpu["id"]):
            lines += _cpu_detail(cpu, lay, verbose)
    if scenario is not None and result.cpus:   # no timeline where no board was built
        lines.append("  timeline:")
        lines += ["    " + line for line in timeline.lines(
            scenario.steps, result.events, result.calls, len(result.cpus), result.outcome,
            result.reason, timeline.remap_order(scenario.inject))]
    else:
        for call in result.calls:
            lines.append(f"  call cpu{call['cpu']} {call['fn']} -> r0={_hex(call['r0'])}")
    for hazard in result.hazards:
        if hazard not in at_fault:
            lines += _hazard_lines(hazard, "  hazard")
    st = result.stats
    if st:
        lines.append(f"  stats: {st.get('instructions', 0)} instructions, {st.get('tlb_fills', 0)} TLB "
                     f"fills, {st.get('walks', 0)} walks, {st.get('hvcs', 0)} HVCs, "
                     f"{st.get('seconds', 0.0):.4f} s")
    return "\n".join(lines)
