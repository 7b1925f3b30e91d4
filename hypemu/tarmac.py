"""The trace in a Tarmac-like form (``hypemu run --trace-format tarmac``), for people whose tools
read the Tarmac traces of Arm's Fast Models.

Why a module of its own: Tarmac is one record per line, timestamped, with its own record types;
hypemu has only the instructions that made an event (it runs the rest natively), so it writes:
``IT`` for each such instruction (once), ``R`` for a system-register write, a TLB maintenance
operation (``--------``: no operand) and the registers an exception entry sets, ``MR8`` for each
descriptor a walk read (a physical read), ``E`` for an exception entry. The timestamp is the
board's instruction count, in ``clk`` units; every record names its CPU (``cpu0``). What Tarmac
has no record for (kernel-side actions, step headings, fills, what a TLBI removed, hazards) is a
``hypemu`` text line in the same place, in the words of the plain trace.
"""

from __future__ import annotations

from typing import Mapping, Optional, Sequence

from . import cp15
from . import events as ev
from .events import Event
from .trace import disassemble
from .tracer import Words, describe, heading

_WIDE = {row.name for row in cp15.REGISTERS if row.is64}


def _value(name: str, value: int) -> str:
    """A register value as Tarmac shows it: 8 hex digits, or two halves for a 64-bit one."""
    if name in _WIDE:
        return f"{value >> 32:08x}_{value & 0xFFFFFFFF:08x}"
    return f"{value & 0xFFFFFFFF:08x}"


def _records(e: Event, w: Words) -> list[str]:
    """The records of one event, without the timestamp and CPU."""
    d = e.data
    if e.kind == ev.SYSREG and e.value is not None:
        return [f"R {e.name} {_value(e.name, e.value)}"]
    if e.kind == ev.TLBI:
        operand = f"{e.value:08x}" if e.value is not None else "--------"
        return [f"R {e.name} {operand}"] + [f"hypemu tlbi: {line}" for line in describe(e, w)]
    if e.kind == ev.WALK and d is not None:
        reads = [f"MR8 {x['pa']:08x} {x['value'] >> 32:08x}_{x['value'] & 0xFFFFFFFF:08x}"
                 for x in d["descriptors"] if x["value"] is not None]
        return [f"hypemu walk: {describe(e, w)[0]}"] + reads
    if e.kind == ev.EXCEPTION:
        hsr = e.value if e.value is not None else 0
        at = d["from_pc"] if d is not None else e.pc or 0
        records = [f"E {at:08x} {hsr:08x} {e.name.upper()}"]
        if d is not None:
            records += [f"R ELR_hyp {d['elr']:08x}", f"R SPSR_hyp {d['spsr']:08x}",
                        f"R cpsr {d['cpsr']:08x}"]
        if e.value is not None:
            records.append(f"R HSR {hsr:08x}")
        return records
    if e.kind == ev.ERET and d is not None:
        return [f"R cpsr {d['spsr']:08x}"]
    return [f"hypemu {e.kind}: {line}" for line in describe(e, w)]


def lines(events: Sequence[Event], tables: Optional[Mapping[int, str]] = None) -> list[str]:
    """``<count> clk cpuN <record>``, an ``IT`` record before the first event of each trapped
    instruction."""
    w, out = Words(tables or {}), []
    last: tuple[int, int, int] | None = None
    for e in events:
        count = e.icount if e.icount is not None else 0
        if e.kind == ev.STEP:
            out.append(f"{count} clk hypemu {heading(e)}")
            continue
        stamp = f"{count} clk cpu{e.cpu}"
        if e.insn is not None and e.pc is not None and (count, e.cpu, e.pc) != last:
            last = (count, e.cpu, e.pc)
            mode = f"{e.mode}_n" if e.mode else "unknown"
            state = "T" if e.thumb else "A"
            out.append(f"{stamp} IT ({count}) {e.pc:08x} {e.insn:08x} {state} {mode} : "
                       f"{disassemble(e.insn, e.pc, e.thumb).upper()}")
        out += [f"{stamp} {record}" for record in _records(e, w)]
    return out
