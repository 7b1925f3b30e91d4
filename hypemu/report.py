"""The readable summary of a Result, as ``hypemu run`` prints it."""

from __future__ import annotations

from typing import Optional

from .machine import Result


def _hex(value: Optional[int]) -> str:
    return "-" if value is None else f"{value:#x}"


def summary(result: Result) -> str:
    """A short, readable account: verdict, outcome, layout, HYP registers per CPU, statistics."""
    verdict = "PASS" if result.passed else "FAIL"
    lines = [f"{verdict} {result.name}: outcome {result.outcome} (expected {result.expected})"]
    if result.file:
        lines[0] += f"  [{result.file}]"
    lines += [f"  mismatch: {m}" for m in result.mismatch]
    if result.reason:
        lines.append(f"  reason: {result.reason}")
    if result.fault:
        f = result.fault
        lines.append(f"  fault: cpu{f['cpu']} {f['kind']} pc={_hex(f['pc'])} va={_hex(f['va'])} "
                     f"fsc={f['fsc']} level={f['level']} hsr={_hex(f['hsr'])}")
    lay = result.layout
    if lay:
        bounce = _hex(lay["bounce_page"]) if lay["bounce_page"] is not None else "none"
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
    for call in result.calls:
        lines.append(f"  call cpu{call['cpu']} {call['fn']} -> r0={_hex(call['r0'])}")
    for hazard in result.hazards:
        where = ("kernel side" if hazard["cpu"] is None else
                 f"cpu{hazard['cpu']} pc={_hex(hazard['pc'])} {hazard.get('disasm') or ''}".rstrip())
        va = f" va={_hex(hazard['va'])}" if hazard["va"] is not None else ""
        lines.append(f"  hazard: {hazard['kind']} {where}{va}")
        lines.append(f"          {hazard['detail']}")
    st = result.stats
    if st:
        lines.append(f"  stats: {st.get('instructions', 0)} instructions, {st.get('tlb_fills', 0)} TLB "
                     f"fills, {st.get('walks', 0)} walks, {st.get('hvcs', 0)} HVCs, "
                     f"{st.get('seconds', 0.0):.4f} s")
    return "\n".join(lines)
