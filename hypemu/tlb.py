"""A per-CPU TLB for the HYP regime that keeps what it cached until it is invalidated.

The model's point is staleness: entries are never re-validated against RAM, so after a descriptor
or HTTBR change with no TLBIALLH/TLBIMVAH, ``lookup`` still returns the old translation, as
hardware may.

- The HYP regime has no ASID (HTTBR has no ASID field) and HYP entries carry no VMID, so entries are
  keyed by VA range alone. nG is ignored in HYP (UNPREDICTABLE if set in ARMv7; ARMv8's AArch32 walk
  forces it to 0 for single-privilege regimes), so every entry is global.
- Inner-shareable broadcast (TLBIALLHIS, TLBIMVAHIS) is the caller's: apply the operation to the TLB
  of every CPU in the domain.
- Each entry may carry its ``Origin`` (the HTTBR it was walked from, the PC and instruction count
  of the access that filled it), so that a stale hit or an invalidation can say where the entry
  came from.
- Deviation: the Contiguous hint is not used to merge entries, and overlapping entries of different
  sizes may coexist (hardware may report a TLB conflict or return either); ``lookup`` prefers the
  smallest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple, Optional

from .lpae import LEVEL_SIZE
from .walker import Translation

_SIZES = tuple(sorted(LEVEL_SIZE.values()))  # 4 KiB, 2 MiB, 1 GiB: smallest first
_4K, _2M, _1G = _SIZES
_BELOW_4K, _BELOW_2M, _BELOW_1G = ~(_4K - 1), ~(_2M - 1), ~(_1G - 1)
TLBI_VA_MASK = 0xFFFF_F000
"""TLBIMVAH takes the VA in its operand bits[31:12]; the low bits are ignored."""


class Origin(NamedTuple):
    """Where a TLB entry came from: the walk of the table at ``ttbr`` (HTTBR then), for the
    access of the instruction at ``pc``, at the board's instruction count ``icount``. (A named
    tuple: one is built on every walk that fills the TLB while someone observes.)"""

    ttbr: int
    pc: int
    icount: Optional[int]

    def to_dict(self) -> dict[str, Optional[int]]:
        return {"ttbr": self.ttbr, "pc": self.pc, "icount": self.icount}


def perms(t: Translation) -> str:
    """``rwx`` with ``-`` for what the entry does not allow."""
    return "".join(c if ok else "-" for c, ok in zip("rwx", (t.readable, t.writable, t.executable)))


def entry_data(t: Translation, origin: Optional[Origin]) -> dict[str, Any]:
    """A TLB entry as plain data (for the event log): its range, output, permissions, memory
    type and origin."""
    return {"va": t.va, "size": t.size, "pa": t.pa, "level": t.level, "perms": perms(t),
            "memtype": t.memtype, "mair_attr": t.mair_attr,
            "origin": origin.to_dict() if origin is not None else None}


@dataclass
class TLBStats:
    """Counters for one TLB; ``invalidations`` counts entries dropped by TLBI, not operations."""

    hits: int = 0
    misses: int = 0
    fills: int = 0
    evictions: int = 0
    invalidations: int = 0


class TLB:
    """Cached HYP translations of one CPU, keyed by (VA base, size).

    ``capacity`` 0 keeps every entry until invalidated. With a capacity, a fill that would exceed it
    evicts the oldest entry (FIFO by insertion order), so runs are deterministic.
    """

    def __init__(self, capacity: int = 0) -> None:
        if capacity < 0:
            raise ValueError(f"TLB capacity must be >= 0 (0 = unlimited), got {capacity!r}")
        self.capacity = capacity
        self.stats = TLBStats()
        self._entries: dict[tuple[int, int], Translation] = {}  # insertion-ordered: FIFO
        # (va, size) -> (the entry, its origin): kept past the entry's removal, for reports about
        # what was removed, until the range is filled again
        self._origins: dict[tuple[int, int], tuple[Translation, Origin]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def entries(self) -> list[Translation]:
        """Every cached translation, oldest first."""
        return list(self._entries.values())

    def _covering_keys(self, va: int) -> list[tuple[int, int]]:
        keys = ((va & ~(size - 1), size) for size in _SIZES)
        return [key for key in keys if key in self._entries]

    def lookup(self, va: int) -> Translation | None:
        """The cached translation covering ``va`` (4 KiB entries first, then 2 MiB, then 1 GiB)."""
        get = self._entries.get   # unrolled: every fill asks, and most miss all three
        entry = (get((va & _BELOW_4K, _4K)) or get((va & _BELOW_2M, _2M))
                 or get((va & _BELOW_1G, _1G)))
        if entry is not None:
            self.stats.hits += 1
            return entry
        self.stats.misses += 1
        return None

    def origin(self, t: Translation) -> Origin | None:
        """Where the entry ``t`` (cached now, or removed since) came from, if its fill said."""
        found = self._origins.get((t.va, t.size))
        return found[1] if found is not None and found[0] is t else None

    def fill(self, t: Translation, origin: Optional[Origin] = None) -> Translation | None:
        """Cache ``t`` (filled as ``origin`` says); return the entry evicted to make room, if any.

        Refilling a range already cached replaces that entry (it becomes the newest) and evicts
        nothing.
        """
        key = (t.va, t.size)
        if origin is not None:
            self._origins[key] = (t, origin)
        else:   # a refill that says nothing: no earlier fill's origin survives it (the walker
            self._origins.pop(key, None)   # may hand back the very Translation it filled then)
        self.stats.fills += 1
        evicted = None
        if key in self._entries:
            del self._entries[key]
        elif self.capacity and len(self._entries) >= self.capacity:
            evicted = self._entries.pop(next(iter(self._entries)))
            self.stats.evictions += 1
        self._entries[key] = t
        return evicted

    def invalidate_all(self) -> list[Translation]:
        """TLBIALLH: drop every entry; return the entries dropped, oldest first."""
        dropped = list(self._entries.values())
        self._entries.clear()
        self.stats.invalidations += len(dropped)
        return dropped

    def invalidate_va(self, va: int) -> list[Translation]:
        """TLBIMVAH: drop every entry whose range contains ``va`` (operand bits[31:12]); return
        the entries dropped, oldest first.

        Blocks are included: invalidating any VA inside a 2 MiB or 1 GiB block entry drops it.
        """
        keys = self._covering_keys(va & TLBI_VA_MASK)
        keys.sort(key=list(self._entries).index)
        dropped = [self._entries.pop(key) for key in keys]
        self.stats.invalidations += len(dropped)
        return dropped
