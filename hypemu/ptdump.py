"""A ptdump-style listing of one HYP translation table, read from simulated RAM.

Why: a fault or a refused layout is understood from the descriptors, and the kernel engineer's tool
for that is the kernel's page-table dump (``0xc0000000-0xc0800000   8M  RW NX SHD MEM/CACHED/WBWA``).
Here every valid leaf is listed with what the hardware would make of it: the descriptors are decoded
by ``lpae.decode_descriptor`` and each leaf is translated by ``walker.table_walk`` itself (so APTable/XNTable on
the path, HSCTLR.WXN and the UNPREDICTABLE cases are resolved exactly as the model's own walks resolve
them), its memory type resolved through HMAIR, its range named from the layout (``memmap``). Runs of
leaves with equal attributes and contiguous VA and PA are coalesced. Non-zero descriptors the walk
would fault on (invalid, reserved, bits[47:40] set, no memory behind a table) are listed too.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Optional

from .layout import Layout
from .lpae import (DESCRIPTOR_SIZE, LEVEL_SHIFT, LEVEL_SIZE, PA_BITS, LeafAttrs, base_lower_bound,
                   decode_descriptor, input_size, start_level)
from .memmap import Region, size_text
from .walker import Fault, ReadPhys, Regime, Translation, table_walk

_AF = LeafAttrs(ap=0, af=True).to_bits()   # the access flag alone (bit 10)

SHAREABILITY = {0b00: "NSH", 0b01: "SH?", 0b10: "OSH", 0b11: "ISH"}
"""SH[1:0] of a Normal mapping; 0b01 is reserved (UNPREDICTABLE in ARMv7)."""


def _cache_policy(nibble: int) -> Optional[str]:
    """One half of a Normal HMAIR attribute (ARM DDI 0406C.c, B4.1.104 MAIR0/MAIR1: 0b0100
    non-cacheable; 0b00RW write-through transient, 0b01RW write-back transient, 0b10RW
    write-through, 0b11RW write-back, R/W the read/write-allocate hints). None for 0b0000."""
    if nibble == 0b0100:
        return "NC"
    if nibble == 0:
        return None
    policy = "WB" if nibble & 0b0100 else "WT"
    alloc = ("RA" if nibble & 0b10 else "") + ("WA" if nibble & 0b01 else "")
    alloc = "WA" if alloc == "RAWA" else alloc or "noalloc"   # WBWA: read and write allocate
    transient = " transient" if not nibble & 0b1000 else ""
    return f"{policy}{alloc}{transient}"


def memory_type(attr: int) -> tuple[str, Optional[str]]:
    """The memory type an HMAIR byte selects, named as ARMv8 names it, and a note when ARMv7 calls
    the encoding UNPREDICTABLE (then hypemu's walker takes it as its upper nibble says: Device for
    0b0000xxxx, else Normal).

    0x00 Device-nGnRnE (ARMv7 Strongly-ordered), 0x04 Device-nGnRE (ARMv7 Device), 0x08/0x0C
    Device-nGRE/-GRE (ARMv8; UNPREDICTABLE in ARMv7); Normal: outer
    policy in bits[7:4], inner in bits[3:0] (``Normal WBWA`` when both are write-back read- and
    write-allocate, as Linux's PAGE_HYP with the kernel's MAIR gives)."""
    outer, inner = attr >> 4, attr & 0xF
    if outer == 0:
        named = {0b0000: "Device-nGnRnE", 0b0100: "Device-nGnRE"}.get(inner)
        if named:
            return named, None
        later = {0b1000: "Device-nGRE", 0b1100: "Device-GRE"}.get(inner)   # ARMv8 only
        return (later or f"Device (attr {attr:#04x})",
                f"HMAIR attribute {attr:#04x} is UNPREDICTABLE in ARMv7")
    o, i = _cache_policy(outer), _cache_policy(inner)
    if i is None:
        return f"Normal (attr {attr:#04x})", f"HMAIR attribute {attr:#04x} is UNPREDICTABLE in ARMv7"
    return (f"Normal {o}" if o == i else f"Normal I:{i} O:{o}"), None


@dataclass(frozen=True)
class TableRange:
    """A coalesced run of ``count`` leaf descriptors: [va, va+size) -> [pa, pa+size).

    ``path`` holds (level, descriptor PA) for the walk of the run's first VA; ``last_leaf`` the PA of
    the run's last leaf descriptor. ``writable``/``executable`` are the walker's resolved HYP
    permissions; ``fault`` names the fault every access would take (``access_flag``), else None.
    """

    va: int
    size: int
    pa: int
    level: int
    kind: str
    count: int
    writable: bool
    executable: bool
    attrs: LeafAttrs
    mair_attr: int
    memtype: str
    path: tuple[tuple[int, int], ...]
    last_leaf: int
    what: str
    unpredictable: tuple[str, ...] = ()
    fault: Optional[str] = None

    @property
    def va_end(self) -> int:
        return self.va + self.size

    def _key(self) -> tuple[Any, ...]:
        return (self.level, self.kind, self.writable, self.executable, self.attrs, self.mair_attr,
                self.what, self.unpredictable, self.fault)

    def extends(self, other: TableRange) -> bool:
        """True if ``other`` continues this run: next VA, next PA, equal attributes and name."""
        return (other.va == self.va_end and other.pa == self.pa + self.size
                and other._key() == self._key())

    def joined(self, other: TableRange) -> TableRange:
        return replace(self, size=self.size + other.size, count=self.count + other.count,
                       last_leaf=other.last_leaf)

    def to_dict(self) -> dict[str, Any]:
        a = self.attrs
        return {"va": self.va, "va_end": self.va_end, "pa": self.pa, "size": self.size,
                "level": self.level, "kind": self.kind, "count": self.count,
                "ap": "RW" if self.writable else "RO", "xn": not self.executable,
                "memtype": self.memtype, "attr_indx": a.attr_indx, "mair_attr": self.mair_attr,
                "sh": SHAREABILITY[a.sh], "af": a.af, "ng": a.ng, "contiguous": a.contiguous,
                "what": self.what, "fault": self.fault, "unpredictable": list(self.unpredictable),
                "descriptors": [{"level": lv, "pa": pa} for lv, pa in self.path],
                "last_descriptor": self.last_leaf}


@dataclass(frozen=True)
class BadDescriptor:
    """A non-zero descriptor a walk through it would fault on, and why."""

    va: int
    size: int
    level: int
    pa: int          # where the descriptor is (for ``no memory``: the table's own PA)
    raw: Optional[int]
    why: str

    def to_dict(self) -> dict[str, Any]:
        return {"va": self.va, "size": self.size, "level": self.level, "pa": self.pa,
                "raw": self.raw, "why": self.why}


@dataclass
class TableDump:
    """One HYP table as ``hypemu tables`` lists it."""

    name: str                    # "boot", "runtime", "hyp" (single-step) or "pgd 0x..."
    pgd: int
    regime: Regime               # the walk inputs (HTTBR = pgd, T0SZ, WXN, HMAIR)
    mair_source: str             # whose HMAIR resolved the memory types
    ranges: list[TableRange] = field(default_factory=list)
    invalid: list[BadDescriptor] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        r = self.regime
        return {"name": self.name, "pgd": self.pgd, "t0sz": r.t0sz, "wxn": r.wxn, "hmair": r.mair,
                "hmair_source": self.mair_source,
                "ranges": [x.to_dict() for x in self.ranges],
                "invalid": [x.to_dict() for x in self.invalid]}

    def text(self) -> str:
        """The listing: a header, one line per run (with its descriptors' PAs), then the notes."""
        r = self.regime
        lines = [f"{self.name} table: pgd {self.pgd:#x}, T0SZ {r.t0sz}, WXN {int(r.wxn)}, "
                 f"HMAIR {r.mair:#018x} ({self.mair_source})"]
        rows = [(x.va, _range_lines(x)) for x in self.ranges]
        rows += [(b.va, [_bad_line(b)]) for b in self.invalid]
        for _, row in sorted(rows, key=lambda item: item[0]):
            lines += row
        if not self.ranges and not self.invalid:
            lines.append("  (empty: no valid descriptor)")
        return "\n".join(lines)


def _range_lines(x: TableRange) -> list[str]:
    a = x.attrs
    path = " ".join(f"L{lv}@{pa:#x}" for lv, pa in x.path)
    if x.count > 1:
        path += f"..{x.last_leaf:#x}"
    lines = [f"  {x.va:#010x}-{x.va_end:#010x} -> {x.pa:#012x}-{x.pa + x.size:#012x} "
             f"{size_text(x.size):>8} L{x.level} {x.kind:<5} "
             f"{'RW' if x.writable else 'RO'} {'x ' if x.executable else 'NX'} "
             f"{x.memtype:<13} {SHAREABILITY[a.sh]} {'AF' if a.af else 'af=0'}  {x.what}  [{path}]"]
    if x.fault:
        lines.append(f"      ! every access faults: {x.fault.replace('_', ' ')} fault")
    return lines + [f"      ! UNPREDICTABLE: {note}" for note in x.unpredictable]


def _bad_line(b: BadDescriptor) -> str:
    raw = "" if b.raw is None else f" {b.raw:#018x}"
    return f"  {b.va:#010x}-{b.va + b.size:#010x}  ! L{b.level} descriptor{raw} at {b.pa:#x}: {b.why}"


class Namer:
    """Names a mapping from the layout: the trampoline, the idmap, or the physical region it maps
    at its kernel VA (HYP text, data, the stack of cpuN...)."""

    def __init__(self, layout: Layout, regions: list[Region], trampoline: bool):
        self.layout, self.trampoline = layout, trampoline
        self.regions = [r for r in regions if r.kind not in ("ram", "hole", "lowmem_end", "image")]
        self.ram = [r for r in regions if r.kind == "ram"]
        lay = layout
        self.idmap = (lay.init_pa & ~0xFFF, (lay.init_pa + lay.init_size + 0xFFF) & ~0xFFF)

    def _region(self, pa: int) -> Optional[Region]:
        inside = [r for r in self.regions if r.start <= pa < r.end]
        return min(inside, key=lambda r: r.size) if inside else None

    def __call__(self, va: int, pa: int) -> str:
        lay = self.layout
        if self.trampoline and lay.trampoline_va <= va < lay.trampoline_va + 0x1000:
            return "trampoline" if pa == lay.trampoline_pa else "trampoline VA, not the init page"
        if va == pa and self.idmap[0] <= pa < self.idmap[1]:
            return "idmap"
        region = self._region(pa)
        at_kva = va == lay.kva(pa)
        if region is None:
            if not any(r.start <= pa < r.end for r in self.ram):
                return "no RAM at this PA"
            return "kernel memory" if at_kva else f"RAM, not at its kernel VA {lay.kva(pa):#x}"
        return region.name if at_kva else f"{region.name} at a VA other than its kernel VA"


def dump(read64: ReadPhys, regime: Regime, name: str, namer: Namer,
         mair_source: str) -> TableDump:
    """Walk the whole table at ``regime.ttbr`` (from its start level) and list it. ValueError for
    a pgd that is not a 40-bit PA aligned as HTTBR requires (its low bits would be ignored)."""
    align = 1 << base_lower_bound(regime.t0sz)
    if not 0 <= regime.ttbr < 1 << PA_BITS or regime.ttbr % align:
        raise ValueError(f"pgd {regime.ttbr:#x} is not a {PA_BITS}-bit PA aligned to {align:#x}")
    table = TableDump(name, regime.ttbr, regime, mair_source)
    level = start_level(regime.t0sz)
    entries = 1 << (input_size(regime.t0sz) - LEVEL_SHIFT[level])
    _visit(read64, regime, table, namer, regime.ttbr, level, 0, entries, ())
    coalesced: list[TableRange] = []
    for r in table.ranges:
        if coalesced and coalesced[-1].extends(r):
            coalesced[-1] = coalesced[-1].joined(r)
        else:
            coalesced.append(r)
    table.ranges = coalesced
    return table


def _visit(read64: ReadPhys, regime: Regime, out: TableDump, namer: Namer, base: int, level: int,
           va_base: int, entries: int, path: tuple[tuple[int, int], ...]) -> None:
    """List the ``entries`` descriptors of the level-``level`` table at ``base``, in VA order."""
    shift = LEVEL_SHIFT[level]
    for index in range(entries):
        slot, va = base + DESCRIPTOR_SIZE * index, va_base + (index << shift)
        try:
            raw = read64(slot)
        except LookupError:
            out.invalid.append(BadDescriptor(va_base, entries << shift, level, base, None,
                                             "no memory behind this table (external abort on "
                                             "the walk)"))
            return
        if raw == 0:
            continue
        desc = decode_descriptor(raw, level)
        here = path + ((level, slot),)
        why = None if desc.valid else (
            "reserved (0b01 at level 3): translation fault" if desc.kind == "reserved"
            else f"invalid (bits[1:0] = {raw & 3:#04b}): translation fault")
        if why is None and desc.high_bits:
            why = f"bits[47:40] = {desc.high_bits:#x} (a 40-bit PA): address size fault"
        if why is not None:
            out.invalid.append(BadDescriptor(va, LEVEL_SIZE[level], level, slot, raw, why))
        elif desc.kind == "table":
            _visit(read64, regime, out, namer, desc.address, level + 1, va, 512, here)
        else:
            out.ranges.append(_leaf(read64, regime, namer, va, slot, raw, here))


def _leaf(read64: ReadPhys, regime: Regime, namer: Namer, va: int, slot: int, raw: int,
          path: tuple[tuple[int, int], ...]) -> TableRange:
    """One leaf as the walker translates it. A leaf with AF = 0 is walked as if AF were set (to
    resolve its permissions) and marked with the access flag fault every access takes."""
    result: Translation | Fault = table_walk(read64, regime, va)
    fault = None
    if isinstance(result, Fault) and result.type == "access_flag":
        fault = "access_flag"
        result = table_walk(lambda pa: raw | _AF if pa == slot else read64(pa), regime, va)
        if isinstance(result, Translation):
            result = replace(result, attrs=replace(result.attrs, af=False))
    if isinstance(result, Fault):   # cannot happen for a leaf reached by valid tables
        raise RuntimeError(f"internal: the walk of leaf VA {va:#x} faulted ({result.type})")
    memtype, note = memory_type(result.mair_attr)
    notes = result.unpredictable + ((note,) if note else ())
    if result.attrs.sh == 0b01:
        notes += ("SH = 0b01 (reserved) in a leaf descriptor",)
    return TableRange(result.va, result.size, result.pa, result.level,
                      "page" if result.level == 3 else "block", 1, result.writable,
                      result.executable, result.attrs, result.mair_attr, memtype, path, slot,
                      namer(result.va, result.pa), notes, fault)
