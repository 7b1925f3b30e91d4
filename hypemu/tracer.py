"""The trace a person reads: which events (``--trace=KINDS``, ``--cpu N``) and in which words.

Why a module of its own: the event log is plain data recorded cheaply while the guest runs
(``events``, ``cpu.mmulog``); the words (descriptors decoded, HSR decoded, tables named, where a
TLB entry came from) are built here, only when a trace is printed. ``tarmac`` gives the same
events in a Tarmac-like form. Each line starts with the board's instruction count; the scenario's
steps head their sections (``steps[2] cpu0 call hyp_read (line 9)``) whatever the filter, so
three calls are three sections.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Optional, Sequence

from . import events as ev
from .errors import OptionError
from .events import Event
from .lpae import decode_descriptor
from .ptdump import SHAREABILITY, memory_type
from .regdecode import hsr_text
from .trace import disassemble

GROUPS: dict[str, tuple[str, ...]] = {
    "sysreg": (ev.SYSREG,), "barrier": (ev.BARRIER,), "tlbi": (ev.TLBI,),
    "exception": (ev.EXCEPTION,), "call": (ev.HVC, ev.ERET), "kernel": (ev.KERNEL, ev.INJECT),
    "hazard": (ev.HAZARD, ev.UNPREDICTABLE), "walk": (ev.WALK,), "fill": (ev.FILL,),
}
"""What each ``--trace`` kind selects: event kinds of the log (``step`` events head sections)."""
DEFAULT_KINDS = tuple(k for k in GROUPS if k not in ("walk", "fill"))
"""Plain ``--trace``: every event but the MMU's walks and fills (``all`` adds them)."""

SIZES = {1 << 12: "4 KiB", 1 << 21: "2 MiB", 1 << 30: "1 GiB"}


def parse_kinds(text: str) -> tuple[str, ...]:
    """``sysreg,tlbi`` -> those kinds; ``all`` -> every kind; ``""`` -> ``DEFAULT_KINDS``.
    OptionError (exit 2) for a kind that does not exist."""
    if not text:
        return DEFAULT_KINDS
    kinds: list[str] = []
    for word in (w.strip() for w in text.split(",")):
        if word == "all":
            kinds += GROUPS
        elif word in GROUPS:
            kinds.append(word)
        else:
            raise OptionError(f"--trace: no event kind {word!r}; the kinds are "
                              f"{', '.join(GROUPS)}, or all")
    return tuple(dict.fromkeys(kinds))


@dataclass(frozen=True)
class Selection:
    """Which events a trace shows: these kinds (``GROUPS`` keys), of this CPU (None: all)."""

    kinds: tuple[str, ...] = DEFAULT_KINDS
    cpu: Optional[int] = None

    def wants(self, e: Event) -> bool:
        if e.kind == ev.STEP:
            return True
        if self.cpu is not None and e.cpu != self.cpu:
            return False
        return any(e.kind in GROUPS[k] for k in self.kinds)


def select(events: Iterable[Event], selection: Selection) -> list[Event]:
    """The events of ``selection``, in order, with every step heading."""
    return [e for e in events if selection.wants(e)]


def table_names(layout: Optional[Mapping[str, Any]]) -> dict[int, str]:
    """pgd PA -> ``boot`` / ``runtime`` (``hyp``: the one table of single-step), from a result's
    layout."""
    if not layout:
        return {}
    boot, runtime = layout["boot_pgd"], layout["runtime_pgd"]
    return {boot: "hyp"} if boot == runtime else {boot: "boot", runtime: "runtime"}


class Words:
    """Turns the plain data of events into words; knows the names of the tables."""

    def __init__(self, tables: Mapping[int, str]) -> None:
        self.tables = dict(tables)

    def table(self, ttbr: int) -> str:
        """``the boot table (HTTBR 0x8000d000)``; ``HTTBR 0x...`` for a table not named."""
        name = self.tables.get(ttbr & 0xFF_FFFF_FFFF)
        return f"the {name} table (HTTBR {ttbr:#x})" if name else f"HTTBR {ttbr:#x}"

    def origin(self, origin: Optional[Mapping[str, Any]]) -> str:
        """``filled from the boot table (HTTBR ...) at pc 0x... (instruction 40)``."""
        if origin is None:
            return "origin not recorded"
        count = f" (instruction {origin['icount']})" if origin["icount"] is not None else ""
        return f"filled from {self.table(origin['ttbr'])} at pc {origin['pc']:#x}{count}"

    def entry(self, e: Mapping[str, Any], with_origin: bool = True) -> str:
        """``VA 0x80009000+4 KiB -> PA 0x80009000 rwx Normal WBWA L3``, and where it came from."""
        size = SIZES.get(e["size"], f"{e['size']:#x}")
        text = (f"VA {e['va']:#x}+{size} -> PA {e['pa']:#x} {e['perms']} "
                f"{memory_type(e['mair_attr'])[0]} L{e['level']}")
        return f"{text}, {self.origin(e.get('origin'))}" if with_origin else text

    @staticmethod
    def fault(f: Mapping[str, Any]) -> str:
        return f"{f['type'].replace('_', ' ')} fault at level {f['level']}"

    @staticmethod
    def descriptor(d: Mapping[str, Any]) -> str:
        """``L2 0x80013ff8: 0x0000000080014003 table -> 0x80014000`` (every field that matters)."""
        head = f"L{d['level']} {d['pa']:#x}: "
        if d["value"] is None:
            return head + "no memory there (external abort on the walk)"
        desc = decode_descriptor(d["value"], d["level"])
        head += f"{d['value']:#018x} "
        if desc.kind == "table" and desc.table is not None:
            t = desc.table
            return head + (f"table -> {desc.address:#x} APTable={t.ap_table:#04b} "
                           f"XNTable={int(t.xn_table)} PXNTable={int(t.pxn_table)}")
        if desc.leaf is None:
            return head + f"{desc.kind} (bits[1:0] = {d['value'] & 3:#04b})"
        a = desc.leaf
        return head + (f"{desc.kind} -> {desc.address:#x} AttrIndx={a.attr_indx} "
                       f"AP={a.ap:#04b}({'RO' if a.ap & 2 else 'RW'}) SH={SHAREABILITY[a.sh]} "
                       f"AF={int(a.af)} XN={int(a.xn)} PXN={int(a.pxn)} nG={int(a.ng)}")


def _regs(data: Mapping[str, Any]) -> str:
    return " ".join(f"r{n}={data[f'r{n}']:#x}" for n in range(4))


def describe(e: Event, w: Words) -> list[str]:
    """What an event says: its first line, then continuation lines."""
    d = e.data
    value = "" if e.value is None else f" = {e.value:#x}"
    match e.kind:
        case ev.HVC:
            if d is None:
                return [f"hvc #{e.value:#x}"]
            return [f"hvc #{e.value:#x} {_regs(d)} -> {d['target']:#x}"]
        case ev.ERET:
            regs = f" {_regs(d)}" if d is not None else ""
            return [f"eret -> {e.value:#x} ({e.detail}){regs}"]
        case ev.EXCEPTION:
            hsr = f"HSR={e.value:#x} ({hsr_text(e.value)})" if e.value is not None else "no HSR"
            if d is None:
                return [f"{e.name} {e.detail}", hsr]
            return [f"{e.name} -> {d['target']:#x} (vector +{d['vector']:#04x}) from pc "
                    f"{d['from_pc']:#x}",
                    f"ELR_hyp={d['elr']:#x} SPSR_hyp={d['spsr']:#x} {hsr}"]
        case ev.TLBI:
            return _tlbi(e, w)
        case ev.WALK if d is not None:
            return _walk(e, d, w)
        case ev.FILL if d is not None:
            return _fill(e, d, w)
        case ev.HAZARD:
            where = f" at VA {e.value:#x}" if e.value is not None else ""
            return [f"{e.name}{where}", e.detail]
    detail = f"  ({e.detail})" if e.detail else ""
    return [f"{e.name}{value}{detail}"]


def _tlbi(e: Event, w: Words) -> list[str]:
    head = e.name + (f" VA {e.value:#x}" if e.value is not None else "")
    d = e.data
    if d is None:
        return [head]
    removed = d["removed"]
    cpus = ", ".join(f"cpu{c}" for c in d["cpus"])
    if not removed:
        return [f"{head}: removed nothing ({cpus})"]
    lines = [f"{head}: removed {len(removed)} entr{'y' if len(removed) == 1 else 'ies'} ({cpus})"]
    return lines + [f"cpu{r['cpu']}: {w.entry(r)}" for r in removed]


def _access(e: Event, d: Mapping[str, Any]) -> str:
    """``fetch 0xffff00bc`` (a fetch's exact VA is known), ``write in page 0xc000c000``."""
    if d.get("exact") is not None:
        return f"{d['access']} {d['exact']:#x}"
    return f"{d['access']} in page {e.value:#x}"


def _walk(e: Event, d: Mapping[str, Any], w: Words) -> list[str]:
    lines = [f"{_access(e, d)} through {w.table(d['ttbr'])}, T0SZ {d['t0sz']}"]
    lines += [w.descriptor(x) for x in d["descriptors"]]
    if "fault" in d:
        return lines + [f"-> {w.fault(d['fault'])}"]
    lines.append(f"-> {w.entry(d['entry'], with_origin=False)}")
    return lines + [f"! UNPREDICTABLE: {note}" for note in d.get("unpredictable", ())]


def _fill(e: Event, d: Mapping[str, Any], w: Words) -> list[str]:
    if e.name == "evict":
        return [f"evict {w.entry(d['entry'])}"]
    refused = f", refused: {w.fault(d['fault'])}" if "fault" in d else ""
    if d["source"] == "walk":
        return [f"fill {_access(e, d)} from the walk: "
                f"{w.entry(d['entry'], with_origin=False)}{refused}"]
    head = f"{_access(e, d)} from the TLB: {w.entry(d['entry'])}{refused}"
    if e.name != "stale":
        return ["fill " + head]
    fresh = d["fresh"]
    now = w.fault(fresh) if "type" in fresh else w.entry(fresh, with_origin=False)
    return ["STALE " + head, f"the tables now give {now}"]


def heading(e: Event) -> str:
    """``== steps[2] cpu0 call hyp_read(0xc000b000) (line 9)``."""
    return f"== {e.name}" + (f" ({e.detail})" if e.detail else "")


def _count(e: Event) -> str:
    return f"{e.icount:>7}" if e.icount is not None else "      -"


def text(events: Sequence[Event], tables: Optional[Mapping[int, str]] = None) -> list[str]:
    """The readable trace: ``count cpuN pc disassembly kind what``, continuation lines below."""
    w, out = Words(tables or {}), []
    for e in events:
        if e.kind == ev.STEP:
            out.append(f"{_count(e)} {heading(e)}")
            continue
        pc = "kernel" if e.pc is None else f"{e.pc:#010x}"
        dis = disassemble(e.insn, e.pc or 0, e.thumb) if e.insn is not None else ""
        first, *more = describe(e, w)
        out.append(f"{_count(e)} cpu{e.cpu} {pc:<10} {dis:<34} {e.kind:<9} {first}")
        out += [f"{'':>64}{line}" for line in more]
    return out


def event_dicts(events: Iterable[Event]) -> list[dict[str, Any]]:
    """The events as the JSON result's ``events`` (``--json --events``), with the disassembly."""
    out = []
    for e in events:
        d = e.to_dict()
        d["disasm"] = disassemble(e.insn, e.pc or 0, e.thumb) if e.insn is not None else None
        out.append(d)
    return out
