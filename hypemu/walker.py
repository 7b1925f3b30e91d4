"""The HYP stage 1 translation table walk (long-descriptor format, 4 KiB granule).

Follows the ARMv7 pseudocode ``TranslationTableWalkLD()`` for the Non-secure PL2 (HYP) regime
(ARM DDI 0406C.c, B3 "Virtual Memory System Architecture", with LPAE and the Virtualization
Extensions), in its order: input-range check and base address, the level loop, the address size
and access flag checks, then the permission check. A walk returns a ``Translation`` or a ``Fault``,
never raises one.

Choices where ARMv7 leaves the behaviour open (each resolved as ARMv8's AArch32 pseudocode, ARM DDI
0487, resolves it, so that the model agrees with later cores running this code):

- HTTBR bits[63:40] non-zero: an address size fault at level 0 (see ``_start``). Deviation from
  ARMv7.
- Descriptor bits[47:40] non-zero: an address size fault at that level. Deviation from ARMv7.
- HTTBR bits[x-1:3] non-zero (misaligned base): UNPREDICTABLE; the bits are treated as zero.
- In HYP tables AP[1] = 0, nG = 1, PXN = 1, PXNTable = 1 and APTable[0] = 1 are UNPREDICTABLE in
  ARMv7; they are ignored (HYP has a single privilege level, so only AP[2], XN, XNTable and
  APTable[1] matter).
Each UNPREDICTABLE case met on a walk is named in ``Translation.unpredictable`` so that a checker
can report it as a hazard instead of the model silently picking one outcome.

Deviation: descriptors are read little-endian whatever HSCTLR.EE says (the caller's ``read64``
decides); the memory type comes from the upper nibble of the HMAIR byte alone, without flagging the
encodings ARMv7 calls UNPREDICTABLE; and fetches from Device memory not marked XN are permitted.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Callable

from .hexrepr import hex_repr
from .lpae import (
    DESCRIPTOR_SIZE,
    LEVEL_SHIFT,
    LEVEL_SIZE,
    Descriptor,
    LeafAttrs,
    base_lower_bound,
    bits,
    decode_descriptor,
    input_size,
    start_level,
)

ACCESS_KINDS = ("read", "write", "fetch")
FAULT_TYPES = ("translation", "access_flag", "permission", "address_size", "external")

ReadPhys = Callable[[int], int]
"""Reads the little-endian 64-bit descriptor at a physical address."""


@dataclass(frozen=True)
class Regime:
    """The HYP translation regime registers a walk depends on.

    ``ttbr`` is the 64-bit HTTBR, ``t0sz`` HTCR.T0SZ, ``wxn`` HSCTLR.WXN and ``mair`` HMAIR1:HMAIR0
    (HMAIR1 << 32 | HMAIR0), so that AttrIndx n selects byte n.
    """

    ttbr: int
    t0sz: int = 0
    wxn: bool = False
    mair: int = 0

    def __post_init__(self) -> None:
        for name in ("ttbr", "mair"):
            if not 0 <= getattr(self, name) < (1 << 64):
                raise ValueError(f"{name} must be a 64-bit value, got {getattr(self, name)!r}")
        input_size(self.t0sz)  # validates T0SZ


@dataclass(frozen=True)
class Translation:
    """A successful walk: what a TLB entry holds.

    Permissions are resolved here, once, from the leaf and every table on the path, so that a TLB
    hit is checked (``check_access``) without reading RAM again. ``descriptors`` lists the PA of
    every descriptor read, in walk order, so that a later change to any of them can be detected.
    """

    va: int  # base of the VA range covered, aligned to size
    pa: int  # output base
    level: int
    size: int  # 1 << 30, 1 << 21 or 1 << 12
    attrs: LeafAttrs
    mair_attr: int  # the HMAIR byte selected by AttrIndx
    memtype: str  # 'device' (Device or Strongly-ordered) or 'normal'
    readable: bool
    writable: bool
    executable: bool
    descriptors: tuple[int, ...]
    unpredictable: tuple[str, ...] = ()  # UNPREDICTABLE ARMv7 cases met on the walk, by name
    # where Machine.translate found it: "walk" (a fresh walk) or "tlb" (the CPU's TLB model)
    source: str = field(default="walk", compare=False)
    # the words the walk read at ``descriptors``, in the same order (empty when not known): what
    # a check that remembers an entry's descriptors needs, without reading them again
    values: tuple[int, ...] = field(default=(), compare=False, repr=False)

    def __repr__(self) -> str:
        return hex_repr(self, decimal=("level",))

    def covers(self, va: int) -> bool:
        """True if ``va`` lies in the range this translation maps."""
        return self.va <= va < self.va + self.size

    def pa_of(self, va: int) -> int:
        """The physical address of ``va``, which must lie inside this translation."""
        if not self.covers(va):
            raise ValueError(f"VA {va:#x} is outside the translation {self.va:#x}+{self.size:#x}")
        return self.pa + (va - self.va)


@dataclass(frozen=True)
class Fault:
    """A failed walk or access, named after the pseudocode's fault types.

    ``level`` is the lookup level reported in the status code (0 only for an address size fault on
    HTTBR itself); ``va`` is the exact faulting VA. ``s1ptw`` (a stage 2 fault on a stage 1 walk) is
    always False in HYP, which has no stage 2.
    """

    type: str
    level: int
    va: int
    access: str
    s1ptw: bool = False
    descriptors: tuple[int, ...] = ()

    def __repr__(self) -> str:
        return hex_repr(self, decimal=("level",))

    def __post_init__(self) -> None:
        if self.type not in FAULT_TYPES:
            raise ValueError(f"fault type must be one of {FAULT_TYPES}, got {self.type!r}")
        if self.access not in ACCESS_KINDS:
            raise ValueError(f"access must be one of {ACCESS_KINDS}, got {self.access!r}")
        if not 0 <= self.level <= 3:
            raise ValueError(f"fault level must be 0..3, got {self.level!r}")


class _Path:
    """What the level loop gathers on its way down: descriptor PAs and table restrictions. (A
    plain class with slots: one is made per walk, and a dataclass with factories costs more.)"""

    __slots__ = ("descriptors", "values", "xn_table", "ro_table", "notes")

    def __init__(self, notes: list[str]) -> None:
        self.descriptors: list[int] = []
        self.values: list[int] = []   # the descriptors as read
        self.xn_table = False
        self.ro_table = False   # APTable[1] somewhere on the path
        self.notes = notes


@functools.lru_cache(maxsize=64)
def _index_masks(t0sz: int) -> tuple[tuple[int, int], ...]:
    """(shift, index mask) of each lookup level 0-3 for a T0SZ (``lpae.table_index``, once per
    T0SZ instead of once per level of every walk); level 0 is unused."""
    return ((0, 0),) + tuple((LEVEL_SHIFT[level], (1 << (input_size(t0sz) - LEVEL_SHIFT[level]
                                                          if level == start_level(t0sz) else 9)) - 1)
                             for level in (1, 2, 3))


@functools.lru_cache(maxsize=256)
def _base(ttbr: int, t0sz: int) -> tuple[int, int, tuple[str, ...]] | None:
    """HTTBR's part of ``_start``, the same for every walk of a regime: (start level, start table
    PA, notes), or None for an address size fault."""
    if bits(ttbr, 63, 40):
        return None
    x = base_lower_bound(t0sz)
    notes = ("HTTBR base address misaligned (bits[x-1:3] non-zero, treated as zero)",) \
        if bits(ttbr, x - 1, 3) else ()
    return start_level(t0sz), bits(ttbr, 39, x) << x, notes


def _start(regime: Regime, va: int, access: str) -> tuple[int, int, list[str]] | Fault:
    """Input-range check and base address: (start level, start table PA, notes) or a fault.

    A VA with bits above 32-T0SZ set has no table: translation fault, reported at level 1 (ARMv7
    TranslationTableWalkLD: ``if !basefound || disabled then level = 1; ... DAbort_Translation``).
    Deviation: ARMv7 makes HTTBR bits[63:40] UNK/SBZP and walks from HTTBR<39:x> alone; here any of
    them set is an address size fault at level 0 (LDFSC 0b000000), as ARMv8's AArch32 HTTBR defines
    for bits[47:40] ("an Address size fault is generated"), extended to the RES0 bits[63:48]. The
    check comes after the range check, in the pseudocode's order.
    """
    if va >> input_size(regime.t0sz):
        return Fault("translation", 1, va, access)
    base = _base(regime.ttbr, regime.t0sz)
    if base is None:
        return Fault("address_size", 0, va, access)
    level, address, notes = base
    return level, address, list(notes)


def _table_step(desc: Descriptor, path: _Path) -> None:
    """Accumulate a table descriptor's hierarchical attributes (stage 1, single privilege level).

    XNTable and APTable[1] restrict the whole subtree. PXNTable and APTable[0] concern PL0/PL1 only:
    in HYP tables they are UNPREDICTABLE if set (ARMv7) and are ignored, as ARMv8 does
    (``pxn_table and ap_table[0] apply only in EL1&0 translation regimes``). NSTable is ignored: a
    Non-secure walk is Non-secure throughout.
    """
    attrs = desc.table
    if attrs is None:
        raise ValueError(f"internal: a level-{desc.level} {desc.kind} descriptor has no table attrs")
    path.xn_table |= attrs.xn_table
    path.ro_table |= bool(attrs.ap_table & 0b10)
    if attrs.ap_table & 0b01:
        path.notes.append(f"APTable[0]=1 in a HYP level-{desc.level} table descriptor (ignored)")
    if attrs.pxn_table:
        path.notes.append(f"PXNTable=1 in a HYP level-{desc.level} table descriptor (ignored)")


def _walk_levels(read64: ReadPhys, regime: Regime, va: int, access: str, level: int, base: int,
                 path: _Path) -> Descriptor | Fault:
    """The level loop: read descriptors until a block or page; faults on the way.

    A descriptor read from a PA with no memory is a synchronous external abort on the walk at that
    level (LDFSC 0b0101LL; ``read64`` raises LookupError there).
    Invalid entries (bits[1:0] = x0) and 0b01 at level 3 give a translation fault at that level;
    bits[47:40] non-zero in a valid descriptor give an address size fault at that level (Deviation:
    ARMv7 treats them as SBZ and ignores them; this follows ARMv8's AArch32 walk, which faults).
    """
    masks = _index_masks(regime.t0sz)
    while True:
        shift, mask = masks[level]
        slot = base + DESCRIPTOR_SIZE * ((va >> shift) & mask)   # lpae.table_index
        path.descriptors.append(slot)
        try:
            raw = read64(slot)
            path.values.append(raw)
        except LookupError:   # no memory there: synchronous external abort on the table walk
            return Fault("external", level, va, access, descriptors=tuple(path.descriptors))
        desc = decode_descriptor(raw, level)
        if not desc.valid:
            return Fault("translation", level, va, access, descriptors=tuple(path.descriptors))
        if desc.high_bits:
            return Fault("address_size", level, va, access, descriptors=tuple(path.descriptors))
        if desc.kind != "table":
            return desc
        _table_step(desc, path)
        base, level = desc.address, level + 1


def _leaf_notes(attrs: LeafAttrs, level: int) -> list[str]:
    """UNPREDICTABLE leaf settings in a HYP table: AP[1]=0, PXN=1, nG=1 (all ignored)."""
    if attrs.ap & 0b01 and not attrs.pxn and not attrs.ng:
        return []   # the usual leaf: nothing to note
    checks = (("AP[1]=0", not attrs.ap & 0b01), ("PXN=1", attrs.pxn), ("nG=1", attrs.ng))
    return [f"{name} in a HYP level-{level} leaf descriptor (ignored)"
            for name, bad in checks if bad]


def _memtype(mair_attr: int) -> str:
    """Memory type from an HMAIR byte: 0b0000xxxx is Strongly-ordered or Device, the rest Normal."""
    return "device" if mair_attr >> 4 == 0 else "normal"


def _translation(regime: Regime, va: int, leaf: Descriptor, path: _Path) -> Translation:
    """Build the TLB-entry view of a leaf: output range, attributes, resolved permissions.

    HYP permissions (single privilege level): always readable; writable unless AP[2] or an
    APTable[1] on the path; executable unless XN, an XNTable on the path, or HSCTLR.WXN with a
    writable mapping. PXN does not apply in HYP.
    """
    attrs, size = leaf.leaf, LEVEL_SIZE[leaf.level]
    if attrs is None:
        raise ValueError(f"internal: a level-{leaf.level} {leaf.kind} descriptor has no leaf attrs")
    writable = not attrs.ap & 0b10 and not path.ro_table
    executable = not (attrs.xn or path.xn_table) and not (regime.wxn and writable)
    mair_attr = bits(regime.mair, 8 * attrs.attr_indx + 7, 8 * attrs.attr_indx)
    return Translation(va=va & ~(size - 1), pa=leaf.address, level=leaf.level, size=size,
                       attrs=attrs, mair_attr=mair_attr, memtype=_memtype(mair_attr),
                       readable=True, writable=writable, executable=executable,
                       descriptors=tuple(path.descriptors),
                       unpredictable=tuple(path.notes + _leaf_notes(attrs, leaf.level)),
                       values=tuple(path.values))


def _check_request(va: int, access: str) -> None:
    if access not in ACCESS_KINDS:
        raise ValueError(f"access must be one of {ACCESS_KINDS}, got {access!r}")
    if not 0 <= va < (1 << 32):
        raise ValueError(f"VA {va:#x} is not a 32-bit address")


def table_walk(read64: ReadPhys, regime: Regime, va: int,
               access: str = "read") -> Translation | Fault:
    """The walk up to, but not including, the permission check.

    For callers that cache the translation whatever this access may do with it (a TLB fill): HYP
    grants read to every valid mapping, so the result is what a TLB would hold. Returns translation,
    address size or access flag faults. The access flag is checked on the leaf only; there is no
    hardware access flag management in ARMv7 LPAE, so AF = 0 always faults.
    """
    _check_request(va, access)
    key = (regime.ttbr, regime.t0sz, regime.wxn, regime.mair, va >> 12)
    known = _WALKS.get(key)
    if known is not None and _still_reads(read64, known.descriptors, known.values):
        return known
    start = _start(regime, va, access)
    if isinstance(start, Fault):
        return start
    level, base, notes = start
    path = _Path(notes=notes)
    leaf = _walk_levels(read64, regime, va, access, level, base, path)
    if isinstance(leaf, Fault):
        return leaf
    if leaf.leaf is None or not leaf.leaf.af:
        return Fault("access_flag", leaf.level, va, access, descriptors=tuple(path.descriptors))
    result = _translation(regime, va, leaf, path)
    if len(_WALKS) >= MAX_WALKS:
        _WALKS.clear()
    _WALKS[key] = result
    return result


# Walks that ended in a Translation (which holds the descriptor words read), by regime and VA
# page. A walk is a pure function of the regime, the VA and the words at the descriptor PAs it
# reads (each PA follows from the regime, the VA and the words before it), so a page walked again
# whose words still read the same gives the same Translation: re-reading them replaces the level
# loop and the building of the result. Exact for any memory (the words are read through the
# caller's read64).
_WALKS: dict[tuple[int, int, bool, int, int], Translation] = {}
MAX_WALKS = 4096


def forget_walks() -> None:
    """Empty the memo (a benchmark of the walk itself)."""
    _WALKS.clear()


def _still_reads(read64: ReadPhys, pas: tuple[int, ...], values: tuple[int, ...]) -> bool:
    try:
        for pa, value in zip(pas, values):
            if read64(pa) != value:
                return False
    except LookupError:   # no memory there now: walk again (an external abort)
        return False
    return True


def check_access(t: Translation, va: int, access: str) -> Fault | None:
    """The permission check for one access through ``t`` (a fresh walk or a TLB hit).

    A write to a read-only mapping or a fetch from an execute-never one is a permission fault at the
    translation's level. Uses only what ``t`` cached: a TLB hit never re-reads the tables.
    """
    if access == "read":
        allowed = t.readable
    elif access == "fetch":
        allowed = t.executable
    elif access == "write":
        allowed = t.writable
    else:
        raise ValueError(f"access must be one of {ACCESS_KINDS}, got {access!r}")
    if allowed:
        return None
    return Fault("permission", t.level, va, access, descriptors=t.descriptors)


def same_mapping(a: Translation, b: Translation | Fault, va: int) -> bool:
    """Would an access of ``va`` be the same through ``b`` as through ``a``: the same PA,
    permissions and memory attributes (a TLB entry against a fresh walk, say)?"""
    return (isinstance(b, Translation) and a.pa_of(va) == b.pa_of(va)
            and (a.readable, a.writable, a.executable) == (b.readable, b.writable, b.executable)
            and (a.memtype, a.mair_attr) == (b.memtype, b.mair_attr))


def walk(read64: ReadPhys, regime: Regime, va: int, access: str = "read") -> Translation | Fault:
    """Translate ``va`` for ``access`` ('read', 'write' or 'fetch') in the HYP regime.

    ``table_walk`` followed by ``check_access``: the ARM ARM's order (walk faults, then access flag,
    then permission). Returns the Translation or the first Fault; never raises a fault.
    """
    result = table_walk(read64, regime, va, access)
    if isinstance(result, Fault):
        return result
    return check_access(result, va, access) or result
