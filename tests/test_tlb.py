"""The per-CPU HYP TLB model: staleness, invalidation by VA and all, FIFO capacity, stats."""

import pytest

from hypemu.lpae import PAGE_HYP, LeafAttrs, map_range, unmap_range
from hypemu.tlb import TLB, Origin, TLBStats
from hypemu.walker import Fault, Regime, Translation, walk
from memfake import DictMem, PageAllocator

PGD, POOL = 0x8000_0000, 0x8010_0000
K4, M2, G1 = 1 << 12, 1 << 21, 1 << 30


def tr(va, size, pa=None):
    """A translation of ``size`` bytes at ``va`` (identity unless ``pa`` is given)."""
    level = {K4: 3, M2: 2, G1: 1}[size]
    return Translation(va=va, pa=va if pa is None else pa, level=level, size=size,
                       attrs=LeafAttrs(), mair_attr=0xFF, memtype="normal", readable=True,
                       writable=True, executable=True, descriptors=())


def test_stale_entry_served_until_invalidated():
    mem = DictMem()
    alloc = PageAllocator(mem, POOL)
    map_range(mem, alloc, PGD, 0xC000_0000, 0x8000_8000, K4, PAGE_HYP)
    hyp = Regime(ttbr=PGD)
    tlb = TLB()
    old = walk(mem.read64, hyp, 0xC000_0000)
    tlb.fill(old)
    # Remap the page to 0x8000_9000 with no TLBI. Its level-3 descriptor is L3[0] = 0x8010_1000
    # (pgd[3] -> 0x8010_0000, L2[0] -> 0x8010_1000), which the cached entry lists.
    unmap_range(mem, PGD, 0xC000_0000, K4)
    map_range(mem, alloc, PGD, 0xC000_0000, 0x8000_9000, K4, PAGE_HYP)
    assert old.descriptors == (0x8000_0018, 0x8010_0000, 0x8010_1000)
    assert tlb.lookup(0xC000_0ABC).pa_of(0xC000_0ABC) == 0x8000_8ABC       # stale
    assert walk(mem.read64, hyp, 0xC000_0ABC).pa_of(0xC000_0ABC) == 0x8000_9ABC
    assert len(tlb.invalidate_va(0xC000_0000)) == 1
    assert tlb.lookup(0xC000_0ABC) is None


def test_stale_entry_survives_unmap_and_httbr_change():
    mem = DictMem()
    map_range(mem, PageAllocator(mem, POOL), PGD, 0xC000_0000, 0x8000_8000, K4, PAGE_HYP)
    tlb = TLB()
    tlb.fill(walk(mem.read64, Regime(ttbr=PGD), 0xC000_0000))
    unmap_range(mem, PGD, 0xC000_0000, K4)
    # An empty table at 0x9000_0000 as the new HTTBR: a fresh walk faults, the TLB still hits.
    assert isinstance(walk(mem.read64, Regime(ttbr=0x9000_0000), 0xC000_0000), Fault)
    assert tlb.lookup(0xC000_0FFC).pa == 0x8000_8000


def test_invalidate_va_drops_only_that_page():
    tlb = TLB()
    for va in (0x1000, 0x2000, 0x3000):
        tlb.fill(tr(va, K4))
    assert len(tlb.invalidate_va(0x2ABC)) == 1           # operand bits[31:12] = 0x2000
    assert tlb.lookup(0x2000) is None
    assert [t.va for t in tlb.entries()] == [0x1000, 0x3000]


def test_invalidate_va_drops_containing_blocks():
    tlb = TLB()
    tlb.fill(tr(0x4020_0000, M2))       # covers 0x4020_0000..0x403F_FFFF
    tlb.fill(tr(0x8000_0000, G1))       # covers 0x8000_0000..0xBFFF_FFFF
    tlb.fill(tr(0x5000_0000, K4))
    assert len(tlb.invalidate_va(0x4030_1234)) == 1
    assert len(tlb.invalidate_va(0xBFFF_FFFF)) == 1     # last page of the 1 GiB block
    assert [t.va for t in tlb.entries()] == [0x5000_0000]
    assert len(tlb.invalidate_va(0x6000_0000)) == 0


def test_overlapping_entries_smallest_first():
    tlb = TLB()
    tlb.fill(tr(0x4020_0000, M2, pa=0x1_0000_0000))
    tlb.fill(tr(0x4020_1000, K4, pa=0x2_0000_0000))
    assert tlb.lookup(0x4020_1800).size == K4
    assert tlb.lookup(0x4020_2000).size == M2
    assert len(tlb.invalidate_va(0x4020_1FFF)) == 2      # bits[11:0] ignored; both ranges contain it
    assert len(tlb) == 0


def test_block_lookup_covers_whole_range():
    tlb = TLB()
    tlb.fill(tr(0x4000_0000, G1, pa=0x1_0000_0000))
    hit = tlb.lookup(0x7FFF_FFFF)
    assert hit.pa_of(0x7FFF_FFFF) == 0x1_3FFF_FFFF   # 0x1_0000_0000 + 0x3FFF_FFFF
    assert tlb.lookup(0x8000_0000) is None


def test_lookup_prefers_the_smallest_entry_covering_the_va():
    """A 4 KiB entry inside a cached 2 MiB block inside a cached 1 GiB block: each VA finds the
    smallest entry that covers it; a miss of all three counts one miss."""
    tlb = TLB()
    tlb.fill(tr(0x4000_0000, G1, pa=0x1_0000_0000))
    tlb.fill(tr(0x4020_0000, M2, pa=0x9000_0000))
    tlb.fill(tr(0x4020_3000, K4, pa=0x7000_0000))
    assert tlb.lookup(0x4020_3ABC).pa_of(0x4020_3ABC) == 0x7000_0ABC
    assert tlb.lookup(0x4020_4ABC).pa_of(0x4020_4ABC) == 0x9000_4ABC
    assert tlb.lookup(0x4060_0000).pa_of(0x4060_0000) == 0x1_0060_0000
    misses = tlb.stats.misses
    assert tlb.lookup(0x8000_0000) is None and tlb.stats.misses == misses + 1


def test_invalidate_all():
    tlb = TLB()
    for va in (0x1000, 0x20_0000, 0x4000_0000):
        tlb.fill(tr(va, K4))
    assert len(tlb.invalidate_all()) == 3
    assert len(tlb) == 0 and tlb.lookup(0x1000) is None
    assert len(tlb.invalidate_all()) == 0


def test_capacity_evicts_fifo():
    tlb = TLB(capacity=2)
    a, b, c, d, e = (tr(va, K4) for va in (0x1000, 0x2000, 0x3000, 0x4000, 0x5000))
    assert tlb.fill(a) is None and tlb.fill(b) is None
    assert tlb.fill(c) is a                          # oldest out
    assert tlb.entries() == [b, c]
    assert tlb.fill(d) is b
    assert tlb.fill(c) is None                       # refill: replaces, becomes newest
    assert tlb.entries() == [d, c]
    assert tlb.fill(e) is d
    assert tlb.entries() == [c, e]


def test_unlimited_capacity_keeps_everything():
    tlb = TLB()
    for n in range(1000):
        assert tlb.fill(tr(n * K4, K4)) is None
    assert len(tlb) == 1000 and tlb.stats.evictions == 0


def test_stats():
    tlb = TLB(capacity=1)
    tlb.fill(tr(0x1000, K4))         # fills 1
    tlb.lookup(0x1004)               # hit 1
    tlb.lookup(0x5000)               # miss 1
    tlb.fill(tr(0x2000, K4))         # fills 2, evicts 0x1000
    tlb.lookup(0x1000)               # miss 2
    tlb.invalidate_va(0x2000)        # 1 entry dropped
    tlb.invalidate_all()             # nothing left
    assert tlb.stats == TLBStats(hits=1, misses=2, fills=2, evictions=1, invalidations=1)


def test_bad_capacity():
    with pytest.raises(ValueError):
        TLB(capacity=-1)


def test_a_refill_without_an_origin_forgets_the_earlier_one():
    """The origin belongs to the fill that gave it: after the entry is removed and filled again
    (the same Translation object, as the walker's memo returns it) without one, none is left."""
    tlb = TLB()
    t = tr(0xC000_0000, K4)
    origin = Origin(ttbr=0x8000_D000, pc=0x8000_9000, icount=7)
    tlb.fill(t, origin)
    assert tlb.origin(t) == origin
    tlb.invalidate_all()
    assert tlb.origin(t) == origin          # kept past the removal, for reports about it
    tlb.fill(t)
    assert tlb.origin(t) is None
