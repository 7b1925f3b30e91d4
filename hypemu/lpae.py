"""LPAE long-descriptor translation table entries and the mapping builder.

The HYP regime always uses the long-descriptor format with a 4 KiB granule (ARM DDI 0406C.c,
B3.6 "Long-descriptor translation table format"). This module turns descriptors into values and
back, and writes whole mappings into simulated RAM the way the kernel's ``__create_hyp_mappings()``
does, so that the walker (``hypemu.walker``) has real descriptors in memory to walk and the guest
can change them.

Descriptor layout (bits[1:0]: 0b11 table at levels 1-2 or page at level 3, 0b01 block at levels 1-2,
reserved at level 3, x0 invalid):

- table: next-level table address [39:12]; PXNTable 59, XNTable 60, APTable [62:61], NSTable 63.
- block/page: output address [39:30] (1 GiB), [39:21] (2 MiB) or [39:12] (4 KiB page); lower
  attributes AttrIndx [4:2], NS 5, AP[2:1] [7:6], SH [9:8], AF 10, nG 11; upper attributes
  Contiguous 52, PXN 53, XN 54, software bits [58:55] (ignored by hardware).

Bits[47:40] lie inside the address field of ARMv8's AArch32 format and must be zero for a 40-bit
physical address space; ``Descriptor.high_bits`` exposes them so the walker can raise its address
size fault (see ``hypemu.walker`` for that choice).
"""

from __future__ import annotations

import dataclasses
import functools

from dataclasses import dataclass
from typing import Any, Callable, Iterator, Protocol

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
PA_BITS = 40
"""Output (physical) address size of LPAE in ARMv7: 40 bits."""
TABLE_SIZE = PAGE_SIZE
"""Every table below the start level is one 4 KiB page of 512 descriptors."""
DESCRIPTOR_SIZE = 8

LEVEL_SHIFT = {1: 30, 2: 21, 3: 12}
"""log2 of the VA range one descriptor maps at each lookup level (4 KiB granule)."""
LEVEL_SIZE = {level: 1 << shift for level, shift in LEVEL_SHIFT.items()}
"""Bytes one descriptor maps: 1 GiB at level 1, 2 MiB at level 2, 4 KiB at level 3."""

_KIND_INVALID = "invalid"
_KIND_TABLE = "table"
_KIND_BLOCK = "block"
_KIND_PAGE = "page"
_KIND_RESERVED = "reserved"


def bits(value: int, hi: int, lo: int) -> int:
    """Return ``value<hi:lo>``, in the ARM ARM's order (high bit first)."""
    return (value >> lo) & ((1 << (hi - lo + 1)) - 1)


def bit(value: int, n: int) -> int:
    """Return ``value<n>``."""
    return (value >> n) & 1


def _check_field(name: str, value: int, width: int) -> None:
    if not 0 <= value < (1 << width):
        raise ValueError(f"{name} must fit in {width} bits, got {value:#x}")


@dataclass(frozen=True)
class LeafAttrs:
    """Attributes of a block or page descriptor, one field per architectural field.

    ``ap`` is AP[2:1] (bits[7:6]): AP[2] = 1 makes the mapping read-only; in HYP AP[1] should be
    one.
    """

    attr_indx: int = 0  # AttrIndx, bits[4:2]: index of the HMAIR byte
    ns: bool = False  # NS, bit 5
    ap: int = 0b01  # AP[2:1], bits[7:6]
    sh: int = 0  # SH[1:0], bits[9:8]: 0b00 non-shareable, 0b10 outer, 0b11 inner shareable
    af: bool = True  # AF, bit 10: 0 gives an access flag fault
    ng: bool = False  # nG, bit 11
    contiguous: bool = False  # Contiguous hint, bit 52
    pxn: bool = False  # PXN, bit 53
    xn: bool = False  # XN, bit 54
    sw: int = 0  # bits[58:55], ignored by hardware, kept for software (the kernel uses bit 55)

    def __post_init__(self) -> None:
        _check_field("attr_indx", self.attr_indx, 3)
        _check_field("ap", self.ap, 2)
        _check_field("sh", self.sh, 2)
        _check_field("sw", self.sw, 4)

    def to_bits(self) -> int:
        """The attribute bits of a descriptor (address and type bits zero)."""
        return (self.attr_indx << 2 | int(self.ns) << 5 | self.ap << 6 | self.sh << 8
                | int(self.af) << 10 | int(self.ng) << 11 | int(self.contiguous) << 52
                | int(self.pxn) << 53 | int(self.xn) << 54 | self.sw << 55)

    @classmethod
    def from_bits(cls, raw: int) -> LeafAttrs:
        """The attributes held in a block or page descriptor."""
        return cls(attr_indx=bits(raw, 4, 2), ns=bool(bit(raw, 5)), ap=bits(raw, 7, 6),
                   sh=bits(raw, 9, 8), af=bool(bit(raw, 10)), ng=bool(bit(raw, 11)),
                   contiguous=bool(bit(raw, 52)), pxn=bool(bit(raw, 53)), xn=bool(bit(raw, 54)),
                   sw=bits(raw, 58, 55))


@dataclass(frozen=True)
class TableAttrs:
    """Hierarchical attributes of a table descriptor; they restrict the whole subtree below it."""

    pxn_table: bool = False  # PXNTable, bit 59
    xn_table: bool = False  # XNTable, bit 60
    ap_table: int = 0  # APTable[1:0], bits[62:61]: APTable[1] forces read-only
    ns_table: bool = False  # NSTable, bit 63

    def __post_init__(self) -> None:
        _check_field("ap_table", self.ap_table, 2)

    def to_bits(self) -> int:
        """The attribute bits of a table descriptor."""
        return (int(self.pxn_table) << 59 | int(self.xn_table) << 60 | self.ap_table << 61
                | int(self.ns_table) << 63)

    @classmethod
    def from_bits(cls, raw: int) -> TableAttrs:
        """The hierarchical attributes held in a table descriptor."""
        return cls(pxn_table=bool(bit(raw, 59)), xn_table=bool(bit(raw, 60)),
                   ap_table=bits(raw, 62, 61), ns_table=bool(bit(raw, 63)))


PAGE_HYP = LeafAttrs(attr_indx=7, ap=0b01, sh=0b11, af=True, sw=0b0001)
"""Linux v3.10's PAGE_HYP for normal memory: AttrIndx 7 (write-back), AP[1] (should be one in HYP),
inner shareable, AF, and software bit 55 (kernel bookkeeping, ignored by hardware).
encode_page(pa, PAGE_HYP) == pa | 0x0080_0000_0000_075F."""


def _check_level(level: int) -> None:
    if level not in LEVEL_SHIFT:
        raise ValueError(f"lookup level must be 1, 2 or 3, got {level!r}")


def _check_output(pa: int, align: int, what: str) -> None:
    if not 0 <= pa < (1 << PA_BITS):
        raise ValueError(f"{what} {pa:#x} does not fit in the {PA_BITS}-bit physical address space")
    if pa % align:
        raise ValueError(f"{what} {pa:#x} is not aligned to {align:#x}")


def encode_table(next_table_pa: int, attrs: TableAttrs = TableAttrs()) -> int:
    """A table descriptor (level 1 or 2) pointing at a 4 KiB-aligned next-level table."""
    _check_output(next_table_pa, TABLE_SIZE, "next-level table address")
    return next_table_pa | attrs.to_bits() | 0b11


def encode_block(pa: int, level: int, attrs: LeafAttrs) -> int:
    """A block descriptor: 1 GiB at level 1, 2 MiB at level 2 (blocks do not exist at level 3)."""
    if level not in (1, 2):
        raise ValueError(f"blocks exist only at levels 1 and 2, got level {level!r}")
    _check_output(pa, LEVEL_SIZE[level], f"level-{level} block address")
    return pa | attrs.to_bits() | 0b01


def encode_page(pa: int, attrs: LeafAttrs) -> int:
    """A level-3 page descriptor for a 4 KiB page."""
    _check_output(pa, PAGE_SIZE, "page address")
    return pa | attrs.to_bits() | 0b11


@dataclass(frozen=True)
class Descriptor:
    """One decoded descriptor.

    ``address`` is the next table (kind 'table') or the output address of the block/page, taken
    from bits[39:12], [39:30] or [39:21]; 0 for 'invalid' and 'reserved'. ``high_bits`` is
    bits[47:40], which a 40-bit implementation requires to be zero.
    """

    kind: str
    raw: int
    level: int
    address: int
    leaf: LeafAttrs | None
    table: TableAttrs | None
    high_bits: int

    @property
    def valid(self) -> bool:
        """True for table, block and page descriptors."""
        return self.kind in (_KIND_TABLE, _KIND_BLOCK, _KIND_PAGE)


def _kind(raw: int, level: int) -> str:
    if not raw & 0b01:
        return _KIND_INVALID
    if raw & 0b10:
        return _KIND_PAGE if level == 3 else _KIND_TABLE
    return _KIND_RESERVED if level == 3 else _KIND_BLOCK


LEAF_ATTR_BITS = 0x07F0_0000_0000_0FFC    # bits[58:52] and [11:2]: what LeafAttrs holds
TABLE_ATTR_BITS = 0xF800_0000_0000_0000   # bits[63:59]: what TableAttrs holds


@functools.lru_cache(maxsize=256)
def _leaf_attrs(attr_bits: int) -> LeafAttrs:
    return LeafAttrs.from_bits(attr_bits)


@functools.lru_cache(maxsize=64)
def _table_attrs(attr_bits: int) -> TableAttrs:
    return TableAttrs.from_bits(attr_bits)


@functools.lru_cache(maxsize=4096)
def decode_descriptor(raw: int, level: int) -> Descriptor:
    """Decode the 64-bit descriptor ``raw`` read at lookup ``level`` (1, 2 or 3).

    Pure, and its results are frozen, so it is memoized: a walk reads the same table descriptors
    again and again, and a table's pages share their attribute bits (the walker's hot path)."""
    _check_level(level)
    if not 0 <= raw < (1 << 64):
        raise ValueError(f"descriptor {raw!r} is not a 64-bit value")
    kind = _kind(raw, level)
    high = bits(raw, 47, 40)
    if kind == _KIND_TABLE:
        return Descriptor(kind, raw, level, bits(raw, 39, 12) << 12, None,
                          _table_attrs(raw & TABLE_ATTR_BITS), high)
    if kind in (_KIND_BLOCK, _KIND_PAGE):
        shift = LEVEL_SHIFT[level]
        return Descriptor(kind, raw, level, bits(raw, 39, shift) << shift,
                          _leaf_attrs(raw & LEAF_ATTR_BITS), None, high)
    return Descriptor(kind, raw, level, 0, None, None, high)


def edit_leaf(raw: int, level: int, *, valid: bool | None = None, output: int | None = None,
              **attrs: Any) -> int:
    """``raw``, a block or page descriptor at ``level`` (or the invalid word one was made into: its
    other bits are kept), with some fields replaced: the valid bit (bit 0), the output address
    (bits[39:30], [39:21] or [39:12], aligned to the level's size) and ``LeafAttrs`` fields by name.
    What a kernel bug or a remap changes in a live descriptor, one field at a time."""
    _check_level(level)
    new = raw
    if attrs:
        leaf = dataclasses.replace(LeafAttrs.from_bits(raw), **attrs)
        new = (new & ~LEAF_ATTR_BITS) | leaf.to_bits()
    if output is not None:
        shift = LEVEL_SHIFT[level]
        _check_output(output, 1 << shift, f"level-{level} output address")
        address = ((1 << PA_BITS) - 1) & ~((1 << shift) - 1)
        new = (new & ~address) | output
    if valid is not None:
        new = (new & ~1) | int(valid)
    return new


class PhysMem(Protocol):
    """Physical memory as the table builder sees it: aligned little-endian 64-bit words."""

    def read64(self, pa: int) -> int:
        """The little-endian 64-bit word at physical address ``pa``."""
        ...

    def write64(self, pa: int, value: int) -> None:
        """Store ``value`` as a little-endian 64-bit word at ``pa``."""
        ...


def _check_t0sz(t0sz: int) -> None:
    if not 0 <= t0sz <= 7:
        raise ValueError(f"T0SZ must be 0..7 in the HYP regime, got {t0sz!r}")


def input_size(t0sz: int) -> int:
    """Bits of VA translated by HTTBR: 32 - T0SZ."""
    _check_t0sz(t0sz)
    return 32 - t0sz


def start_level(t0sz: int) -> int:
    """First lookup level: 1 when T0SZ is 0 or 1 (VA[31:30] or VA[30] index level 1), else 2.

    ARM DDI 0406C.c, TranslationTableWalkLD():
    ``currentlevel = if T0SZ<2:1> == '00' then 1 else 2``.
    """
    _check_t0sz(t0sz)
    return 1 if t0sz < 2 else 2


def base_lower_bound(t0sz: int) -> int:
    """Alignment (log2 bytes) of the start-level table: HTTBR holds its address in bits[39:x].

    x = 5 - T0SZ at level 1 (a 32-byte, 4-entry table for T0SZ = 0), 14 - T0SZ at level 2: the
    pseudocode's ``baselowerbound``.
    """
    level = start_level(t0sz)
    return 3 + input_size(t0sz) - LEVEL_SHIFT[level]


def table_index(va: int, level: int, t0sz: int = 0) -> int:
    """Index of ``va``'s descriptor in its level-``level`` table.

    Below the start level a table has 512 entries (VA bits[shift+8:shift]); the start-level table
    has only as many entries as the input size leaves (4 for T0SZ = 0: VA[31:30]).
    """
    shift = LEVEL_SHIFT[level]
    width = input_size(t0sz) - shift if level == start_level(t0sz) else 9
    return (va >> shift) & ((1 << width) - 1)


def _check_span(va: int, size: int, t0sz: int) -> None:
    for name, value in (("va", va), ("size", size)):
        if value < 0 or value % PAGE_SIZE:
            raise ValueError(f"{name} {value:#x} is not a non-negative multiple of {PAGE_SIZE:#x}")
    if va + size > (1 << input_size(t0sz)):
        raise ValueError(f"VA range {va:#x}+{size:#x} exceeds the {input_size(t0sz)}-bit input "
                         f"range of T0SZ={t0sz}")


def _check_pgd(pgd_pa: int, t0sz: int) -> None:
    _check_output(pgd_pa, 1 << base_lower_bound(t0sz), "pgd address")


def _slot_for(mem: PhysMem, pgd_pa: int, t0sz: int, va: int, target: int,
             alloc: Callable[[], int] | None) -> tuple[int, int]:
    """Follow table descriptors for ``va`` from the pgd towards level ``target``.

    Returns (level, PA of the descriptor) where the descent stopped: at ``target``, or above it at
    the first entry that is not a table descriptor. With ``alloc``, invalid entries above ``target``
    are filled with fresh zeroed tables instead (as the kernel's pud/pmd allocation does).
    """
    level, table = start_level(t0sz), pgd_pa
    width = input_size(t0sz) - LEVEL_SHIFT[level]   # table_index's widths, computed once
    while True:
        slot = table + DESCRIPTOR_SIZE * ((va >> LEVEL_SHIFT[level]) & ((1 << width) - 1))
        width = 9
        if level == target:
            return level, slot
        raw = mem.read64(slot)
        if _kind(raw, level) == _KIND_TABLE:
            table = bits(raw, 39, 12) << 12
        elif raw & 0b01 or alloc is None:
            return level, slot
        else:
            table = alloc()
            _check_output(table, TABLE_SIZE, "alloc_table() result")
            mem.write64(slot, encode_table(table))
        level += 1


def _chunks(va: int, pa: int, size: int, first_block_level: int) -> Iterator[tuple[int, int, int]]:
    """Split a mapping into (level, va, pa) leaves, the largest block each step allows.

    A block of level L is used where va and pa are both aligned to it and the rest of the range
    covers it; ``first_block_level`` 3 gives pages only.
    """
    offset = 0
    while offset < size:
        cur_va, cur_pa, left = va + offset, pa + offset, size - offset
        level = next(lvl for lvl in range(first_block_level, 4)
                     if lvl == 3 or (not (cur_va | cur_pa) % LEVEL_SIZE[lvl]
                                     and left >= LEVEL_SIZE[lvl]))
        yield level, cur_va, cur_pa
        offset += LEVEL_SIZE[level]


def _encode_leaf(pa: int, level: int, attrs: LeafAttrs) -> int:
    return encode_page(pa, attrs) if level == 3 else encode_block(pa, level, attrs)


def _refuse_conflict(mem: PhysMem, pgd_pa: int, t0sz: int, va: int, level: int, new: int) -> None:
    """Raise ValueError if writing ``new`` for ``va`` at ``level`` would clobber a valid entry."""
    found, slot = _slot_for(mem, pgd_pa, t0sz, va, level, None)
    old = mem.read64(slot)
    if found < level and old & 0b01:
        raise ValueError(f"map_range: VA {va:#x}: level-{found} entry at PA {slot:#x} is a block "
                         f"({old:#x}); refusing to map a level-{level} entry through it")
    if found == level and old & 0b01 and old != new:
        raise ValueError(f"map_range: VA {va:#x}: level-{level} entry at PA {slot:#x} already "
                         f"holds a {_kind(old, level)} descriptor {old:#x}; refusing to replace "
                         f"it with {new:#x}")


def map_range(mem: PhysMem, alloc_table: Callable[[], int], pgd_pa: int, va: int, pa: int,
              size: int, attrs: LeafAttrs, *, t0sz: int = 0, blocks: bool = False) -> None:
    """Map [va, va+size) to [pa, pa+size) in the HYP table at ``pgd_pa``.

    Like the kernel's ``__create_hyp_mappings()``: 4 KiB pages at level 3, allocating zeroed
    next-level tables with ``alloc_table()`` where a table entry is invalid and reusing existing
    table descriptors. ``blocks=True`` uses 1 GiB / 2 MiB blocks where va, pa and the remaining
    size allow (1 GiB only when the walk starts at level 1). Rewriting an identical leaf is
    allowed; replacing a different valid entry, or descending through a block, raises ValueError.
    Every entry is checked before anything is written, so a refused mapping leaves the tables
    unchanged.
    """
    _check_span(va, size, t0sz)
    _check_output(pa, PAGE_SIZE, "pa")
    if pa + size > (1 << PA_BITS):
        raise ValueError(f"PA range {pa:#x}+{size:#x} exceeds the {PA_BITS}-bit physical space")
    _check_pgd(pgd_pa, t0sz)
    first_block_level = start_level(t0sz) if blocks else 3
    leaves = [(level, cur_va, _encode_leaf(cur_pa, level, attrs))
              for level, cur_va, cur_pa in _chunks(va, pa, size, first_block_level)]
    for level, cur_va, desc in leaves:
        _refuse_conflict(mem, pgd_pa, t0sz, cur_va, level, desc)
    for level, cur_va, desc in leaves:
        _, slot = _slot_for(mem, pgd_pa, t0sz, cur_va, level, alloc_table)
        mem.write64(slot, desc)


def unmap_range(mem: PhysMem, pgd_pa: int, va: int, size: int, *, t0sz: int = 0) -> None:
    """Write invalid (zero) descriptors over every leaf in [va, va+size); tables stay allocated.

    Like the kernel, this does no TLB maintenance: a TLB may keep serving the old translations. A
    block only partly inside the range raises ValueError (nothing is written), since splitting it
    would need a new table.
    """
    _check_span(va, size, t0sz)
    _check_pgd(pgd_pa, t0sz)
    slots, offset = [], 0
    while offset < size:
        cur = va + offset
        level, slot = _slot_for(mem, pgd_pa, t0sz, cur, 3, None)
        span = LEVEL_SIZE[level]
        if mem.read64(slot) & 0b01:
            if cur % span or size - offset < span:
                raise ValueError(f"unmap_range: VA {cur:#x}: the level-{level} block at PA "
                                 f"{slot:#x} lies only partly inside {va:#x}+{size:#x}")
            slots.append(slot)
        offset += span - cur % span
    for slot in slots:
        mem.write64(slot, 0)
