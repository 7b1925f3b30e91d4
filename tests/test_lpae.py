"""LPAE descriptor encode/decode and the map_range table builder."""

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from hypemu.lpae import (
    PAGE_HYP,
    PAGE_SIZE,
    LeafAttrs,
    TableAttrs,
    base_lower_bound,
    bit,
    bits,
    decode_descriptor,
    encode_block,
    encode_page,
    encode_table,
    input_size,
    map_range,
    start_level,
    table_index,
    unmap_range,
)
from hypemu.walker import Fault, Regime, Translation, walk
from memfake import DictMem, PageAllocator

PGD = 0x8000_0000
POOL = 0x8010_0000


def leaf_attrs():
    return st.builds(LeafAttrs, attr_indx=st.integers(0, 7), ns=st.booleans(),
                     ap=st.integers(0, 3), sh=st.integers(0, 3), af=st.booleans(),
                     ng=st.booleans(), contiguous=st.booleans(), pxn=st.booleans(),
                     xn=st.booleans(), sw=st.integers(0, 15))


def table_attrs():
    return st.builds(TableAttrs, pxn_table=st.booleans(), xn_table=st.booleans(),
                     ap_table=st.integers(0, 3), ns_table=st.booleans())


# ---- bit helpers -------------------------------------------------------------------------------

def test_bits_in_arm_order():
    # 0x75F = 0b0111_0101_1111: bits[4:2] = 0b111, bits[9:8] = 0b11, bit 10 = 1, bit 5 = 0.
    assert bits(0x75F, 4, 2) == 0b111
    assert bits(0x75F, 9, 8) == 0b11
    assert bit(0x75F, 10) == 1 and bit(0x75F, 5) == 0
    # 0xF800_0000_8000_2003: bits[62:61] = 0b11, bit 63 = 1, bits[39:12] = 0x80002.
    assert bits(0xF800_0000_8000_2003, 62, 61) == 0b11
    assert bit(0xF800_0000_8000_2003, 63) == 1
    assert bits(0xF800_0000_8000_2003, 39, 12) == 0x80002


# ---- encoding ----------------------------------------------------------------------------------

def test_page_hyp_is_the_kernel_value():
    # AttrIndx 7 << 2 = 0x1C, AP[1] 0b01 << 6 = 0x40, SH 0b11 << 8 = 0x300, AF 1 << 10 = 0x400,
    # page 0b11: 0x1C + 0x40 + 0x300 + 0x400 + 0x3 = 0x75F; software bit 55 = 0x0080_0000_0000_0000.
    assert encode_page(0x8000_1000, PAGE_HYP) == 0x0080_0000_8000_175F
    for pa in (0, 0x1000, 0xFF_FFFF_F000):
        assert encode_page(pa, PAGE_HYP) == pa | 0x0080_0000_0000_075F


def test_encode_table():
    # bits[1:0] = 0b11 plus the address.
    assert encode_table(0x8000_2000) == 0x8000_2003
    # PXNTable 1<<59 | XNTable 1<<60 | APTable 0b11<<61 | NSTable 1<<63 = 0xF800_0000_0000_0000.
    assert encode_table(0x8000_2000, TableAttrs(True, True, 0b11, True)) == 0xF800_0000_8000_2003
    # XNTable alone: 1 << 60 = 0x1000_0000_0000_0000; APTable[1] alone: 1 << 62.
    assert encode_table(0x8000_2000, TableAttrs(xn_table=True)) == 0x1000_0000_8000_2003
    assert encode_table(0x8000_2000, TableAttrs(ap_table=0b10)) == 0x4000_0000_8000_2003


def test_encode_blocks():
    # Default LeafAttrs: AP 0b01 << 6 = 0x40, AF 0x400, block 0b01 -> 0x441.
    assert encode_block(0x4000_0000, 1, LeafAttrs()) == 0x4000_0441
    # XN is bit 54 = 0x0040_0000_0000_0000; a 40-bit 1 GiB block at 0xFF_C000_0000.
    assert encode_block(0xFF_C000_0000, 1, LeafAttrs(xn=True)) == 0x0040_00FF_C000_0441
    # AP 0b11 << 6 = 0xC0, AttrIndx 1 << 2 = 0x4, AF 0x400, 0b01: 0x4C5.
    assert encode_block(0x8_0060_0000, 2, LeafAttrs(ap=0b11, attr_indx=1)) == 0x8_0060_04C5


@pytest.mark.parametrize("call", [
    lambda: encode_block(0x4020_0000, 1, LeafAttrs()),   # not 1 GiB aligned
    lambda: encode_block(0x0000_1000, 2, LeafAttrs()),   # not 2 MiB aligned
    lambda: encode_block(0, 3, LeafAttrs()),             # no blocks at level 3
    lambda: encode_block(0, 0, LeafAttrs()),
    lambda: encode_page(1 << 40, LeafAttrs()),           # beyond 40 bits
    lambda: encode_page(0x123, LeafAttrs()),             # misaligned
    lambda: encode_table(0x8000_0800),                   # tables are 4 KiB aligned
    lambda: LeafAttrs(attr_indx=8),
    lambda: LeafAttrs(ap=4),
    lambda: LeafAttrs(sw=16),
    lambda: TableAttrs(ap_table=4),
    lambda: decode_descriptor(0, 0),
    lambda: decode_descriptor(1 << 64, 1),
])
def test_encoding_errors(call):
    with pytest.raises(ValueError):
        call()


# ---- decoding ----------------------------------------------------------------------------------

@pytest.mark.parametrize("raw, level, kind, address", [
    (0, 1, "invalid", 0),
    (0x8000_2002, 2, "invalid", 0),        # bits[1:0] = 0b10: invalid
    (0x8000_2001, 3, "reserved", 0),       # 0b01 at level 3
    (0x8000_2003, 3, "page", 0x8000_2000),
    (0x8000_2003, 1, "table", 0x8000_2000),
    (0x8000_2003, 2, "table", 0x8000_2000),
    (0x4000_0441, 1, "block", 0x4000_0000),
    (0x4020_0441, 2, "block", 0x4020_0000),
    (0x4020_0441, 1, "block", 0x4000_0000),  # level 1 output address is bits[39:30] only
])
def test_decode_kinds(raw, level, kind, address):
    d = decode_descriptor(raw, level)
    assert (d.kind, d.address, d.level, d.raw) == (kind, address, level, raw)
    assert (d.leaf is not None) == (kind in ("block", "page"))
    assert (d.table is not None) == (kind == "table")


def test_decode_high_bits():
    # bits[47:40] of 0x0000_FF00_8000_2003 are 0xFF; the address stays bits[39:12].
    d = decode_descriptor(0x0000_FF00_8000_2003, 1)
    assert (d.kind, d.address, d.high_bits) == ("table", 0x8000_2000, 0xFF)
    assert decode_descriptor(0x0000_0100_0000_0003, 3).high_bits == 0x01
    # bits[51:48] are not part of the address field.
    assert decode_descriptor(0x000F_0000_0000_0003, 3).high_bits == 0


def test_decode_page_hyp_fields():
    d = decode_descriptor(0x0080_0000_8000_175F, 3)
    assert d.leaf == PAGE_HYP and d.address == 0x8000_1000


@given(attrs=leaf_attrs(), frame=st.integers(0, (1 << 28) - 1))
def test_page_round_trip(attrs, frame):
    pa = frame << 12
    d = decode_descriptor(encode_page(pa, attrs), 3)
    assert (d.kind, d.address, d.leaf, d.high_bits) == ("page", pa, attrs, 0)


@given(attrs=leaf_attrs(), level=st.sampled_from([1, 2]), data=st.data())
def test_block_round_trip(attrs, level, data):
    shift = 30 if level == 1 else 21
    pa = data.draw(st.integers(0, (1 << (40 - shift)) - 1)) << shift
    d = decode_descriptor(encode_block(pa, level, attrs), level)
    assert (d.kind, d.address, d.leaf) == ("block", pa, attrs)


@given(attrs=table_attrs(), frame=st.integers(0, (1 << 28) - 1), level=st.sampled_from([1, 2]))
def test_table_round_trip(attrs, frame, level):
    d = decode_descriptor(encode_table(frame << 12, attrs), level)
    assert (d.kind, d.address, d.table) == ("table", frame << 12, attrs)


# ---- regime geometry ---------------------------------------------------------------------------

@pytest.mark.parametrize("t0sz, level, x", [
    (0, 1, 5), (1, 1, 4),                               # x = 5 - T0SZ at level 1
    (2, 2, 12), (3, 2, 11), (5, 2, 9), (7, 2, 7),       # x = 14 - T0SZ at level 2
])
def test_start_level_and_base_bound(t0sz, level, x):
    assert start_level(t0sz) == level
    assert base_lower_bound(t0sz) == x
    assert input_size(t0sz) == 32 - t0sz


def test_bad_t0sz():
    with pytest.raises(ValueError):
        start_level(8)


@pytest.mark.parametrize("va, level, t0sz, index", [
    # 0xFFFF0000 >> 30 = 3; >> 21 = 0x7FF, & 0x1FF = 511; >> 12 = 0xFFFF0, & 0x1FF = 0x1F0 = 496.
    (0xFFFF_0000, 1, 0, 3), (0xFFFF_0000, 2, 0, 511), (0xFFFF_0000, 3, 0, 496),
    (0x4000_0000, 1, 1, 1),    # T0SZ=1: level 1 indexes VA[30] only
    (0x3FE0_0000, 2, 2, 511),  # T0SZ=2: 0x3FE0_0000 >> 21 = 0x1FF
    (0x01E0_0000, 2, 7, 15),   # T0SZ=7: level 2 indexes VA[24:21]; 0x01E0_0000 >> 21 = 0xF
])
def test_table_index(va, level, t0sz, index):
    assert table_index(va, level, t0sz) == index


# ---- map_range ---------------------------------------------------------------------------------

def _three_pages():
    mem = DictMem()
    alloc = PageAllocator(mem, POOL)
    map_range(mem, alloc, PGD, 0xC000_0000, 0x8000_8000, 0x3000, PAGE_HYP)
    return mem, alloc


# VA 0xC000_0000: level 1 index 3 (slot PGD + 24), level 2 index 0, level 3 indices 0, 1, 2.
THREE_PAGES = {
    0x8000_0018: 0x8010_0003,             # table -> first allocated page (level 2)
    0x8010_0000: 0x8010_1003,             # table -> second allocated page (level 3)
    0x8010_1000: 0x0080_0000_8000_875F,   # 0x8000_8000 | PAGE_HYP
    0x8010_1008: 0x0080_0000_8000_975F,
    0x8010_1010: 0x0080_0000_8000_A75F,
}


def test_map_range_writes_real_tables():
    mem, alloc = _three_pages()
    assert mem.nonzero() == THREE_PAGES
    assert alloc.allocated == [0x8010_0000, 0x8010_1000]


def test_map_range_reuses_tables_and_accepts_identical_remap():
    mem, alloc = _three_pages()
    map_range(mem, alloc, PGD, 0xC000_5000, 0x9000_0000, 0x1000, PAGE_HYP)
    map_range(mem, alloc, PGD, 0xC000_0000, 0x8000_8000, 0x3000, PAGE_HYP)  # same values again
    # VA 0xC000_5000 is level-3 index 5: slot 0x8010_1000 + 5*8 = 0x8010_1028.
    assert mem.nonzero() == {**THREE_PAGES, 0x8010_1028: 0x0080_0000_9000_075F}
    assert len(alloc.allocated) == 2


def test_map_range_refuses_overwrite_and_writes_nothing():
    mem, alloc = _three_pages()
    with pytest.raises(ValueError, match="already holds a page"):
        # 0xC000_2000 is mapped to 0x8000_A000; 0xC000_3000 is free but must not be written either.
        map_range(mem, alloc, PGD, 0xC000_2000, 0xA000_0000, 0x2000, PAGE_HYP)
    assert mem.nonzero() == THREE_PAGES


def test_map_range_refuses_block_over_table():
    mem, alloc = _three_pages()
    with pytest.raises(ValueError, match="already holds a table"):
        map_range(mem, alloc, PGD, 0xC000_0000, 0x4000_0000, 0x20_0000, PAGE_HYP, blocks=True)


def test_map_range_refuses_to_descend_through_block():
    mem = DictMem()
    alloc = PageAllocator(mem, POOL)
    map_range(mem, alloc, PGD, 0x4000_0000, 0x4000_0000, 1 << 30, PAGE_HYP, blocks=True)
    # One level-1 block at index 1: 0x4000_0000 | (0x0080_0000_0000_075F - 0b11) | 0b01.
    assert mem.nonzero() == {0x8000_0008: 0x0080_0000_4000_075D}
    with pytest.raises(ValueError, match="is a block"):
        map_range(mem, alloc, PGD, 0x4000_1000, 0x9000_0000, 0x1000, PAGE_HYP)


def test_map_range_blocks_mixed_sizes():
    mem = DictMem()
    alloc = PageAllocator(mem, POOL)
    # 1 GiB + 2 MiB + 4 KiB from VA 0x4000_0000 to PA 0x1_0000_0000, LeafAttrs() bits = 0x440.
    map_range(mem, alloc, PGD, 0x4000_0000, 0x1_0000_0000, 0x4020_1000, LeafAttrs(), blocks=True)
    assert mem.nonzero() == {
        0x8000_0008: 0x1_0000_0441,   # L1[1]: 1 GiB block at PA 0x1_0000_0000
        0x8000_0010: 0x8010_0003,     # L1[2] (VA 0x8000_0000): table
        0x8010_0000: 0x1_4000_0441,   # L2[0]: 2 MiB block at PA 0x1_4000_0000
        0x8010_0008: 0x8010_1003,     # L2[1] (VA 0x8020_0000): table
        0x8010_1000: 0x1_4020_0443,   # L3[0]: page at PA 0x1_4020_0000
    }


def test_map_range_blocks_need_pa_alignment():
    mem = DictMem()
    alloc = PageAllocator(mem, POOL)
    # PA 0x1_0000_1000 is not 2 MiB aligned: 512 pages, one level-1 and one level-2 table entry.
    map_range(mem, alloc, PGD, 0x4000_0000, 0x1_0000_1000, 0x20_0000, LeafAttrs(), blocks=True)
    assert len(mem.nonzero()) == 512 + 2


def test_map_range_start_level_2_uses_2m_blocks():
    mem = DictMem()
    alloc = PageAllocator(mem, POOL)
    # T0SZ=2: a 1 GiB input space with a 512-entry level-2 pgd; no level 1, so no 1 GiB blocks.
    map_range(mem, alloc, PGD, 0, 0x4000_0000, 1 << 30, LeafAttrs(), t0sz=2, blocks=True)
    words = mem.nonzero()
    assert len(words) == 512 and alloc.allocated == []
    assert words[PGD] == 0x4000_0441
    # index 511: PA 0x4000_0000 + 511 * 2 MiB = 0x7FE0_0000.
    assert words[PGD + 511 * 8] == 0x7FE0_0441


@pytest.mark.parametrize("kwargs", [
    dict(va=0xC000_0800, pa=0x8000_0000, size=0x1000),
    dict(va=0xC000_0000, pa=0x8000_0800, size=0x1000),
    dict(va=0xC000_0000, pa=0x8000_0000, size=0x800),
    dict(va=0x3FFF_F000, pa=0x8000_0000, size=0x2000, t0sz=2),   # ends at 0x4000_1000 > 1 GiB
    dict(va=0, pa=0xFF_FFFF_F000, size=0x2000),                    # beyond 40-bit PA
    dict(va=0, pa=0, size=0x1000, pgd_pa=0x8000_0010),             # pgd must be 32-byte aligned
    dict(va=0, pa=0, size=0x1000, alloc=lambda: 0x8000_0800),      # alloc_table() misaligned
])
def test_map_range_argument_errors(kwargs):
    mem = DictMem()
    alloc = kwargs.pop("alloc", PageAllocator(mem, POOL))
    pgd = kwargs.pop("pgd_pa", PGD)
    with pytest.raises(ValueError):
        map_range(mem, alloc, pgd, attrs=PAGE_HYP, **kwargs)


# ---- unmap_range -------------------------------------------------------------------------------

def test_unmap_range_zeroes_leaves_keeps_tables():
    mem, _ = _three_pages()
    unmap_range(mem, PGD, 0xC000_1000, 0x1000)
    expected = dict(THREE_PAGES)
    del expected[0x8010_1008]
    assert mem.nonzero() == expected
    fault = walk(mem.read64, Regime(PGD), 0xC000_1234)
    assert isinstance(fault, Fault) and (fault.type, fault.level) == ("translation", 3)
    unmap_range(mem, PGD, 0xC000_0000, 0x20_0000)   # covers holes and the remaining pages
    assert mem.nonzero() == {0x8000_0018: 0x8010_0003, 0x8010_0000: 0x8010_1003}
    unmap_range(mem, PGD, 0, 0x8000_0000)           # nothing mapped there: no-op
    assert len(mem.nonzero()) == 2


def test_unmap_range_blocks():
    mem = DictMem()
    map_range(mem, PageAllocator(mem, POOL), PGD, 0x4000_0000, 0x4000_0000, 1 << 30,
              LeafAttrs(), blocks=True)
    with pytest.raises(ValueError, match="partly"):
        unmap_range(mem, PGD, 0x4000_0000, 0x20_0000)
    unmap_range(mem, PGD, 0x4000_0000, 1 << 30)
    assert mem.nonzero() == {}


# ---- property: what map_range builds, the walker reads back ------------------------------------

@st.composite
def mappings(draw):
    t0sz = draw(st.integers(0, 7))
    blocks = draw(st.booleans())
    if blocks:
        align = draw(st.sampled_from([PAGE_SIZE, 1 << 21] + ([1 << 30] if t0sz < 2 else [])))
        gigs = draw(st.integers(0, 1)) if t0sz < 2 else 0
        size = (gigs << 30) + (draw(st.integers(0, 3)) << 21) + (draw(st.integers(0, 16)) << 12)
    else:
        align = draw(st.sampled_from([PAGE_SIZE, 1 << 21]))
        size = draw(st.integers(1, 700)) << 12
    limit = 1 << input_size(t0sz)
    assume(0 < size <= limit)
    va = draw(st.integers(0, (limit - size) // align)) * align
    pa = draw(st.integers(0, ((1 << 40) - size) // align)) * align
    return t0sz, blocks, va, pa, size, draw(leaf_attrs())


@settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(m=mappings(), data=st.data())
def test_mappings_walk_back(m, data):
    t0sz, blocks, va, pa, size, attrs = m
    mem = DictMem()
    pgd = 0x80_0000_0000
    map_range(mem, PageAllocator(mem, pgd + 0x1000), pgd, va, pa, size, attrs,
              t0sz=t0sz, blocks=blocks)
    regime = Regime(ttbr=pgd, t0sz=t0sz)
    offsets = [0, size - 1, size // 2] + data.draw(st.lists(st.integers(0, size - 1), max_size=4))
    for off in offsets:
        r = walk(mem.read64, regime, va + off)
        if not attrs.af:
            assert isinstance(r, Fault) and r.type == "access_flag"
            continue
        assert isinstance(r, Translation)
        assert r.pa_of(va + off) == pa + off
        assert r.attrs == attrs
        assert va <= r.va and r.va + r.size <= va + size
        assert blocks or r.level == 3
        assert r.writable == (not attrs.ap & 0b10) and r.executable == (not attrs.xn)
    for outside in (va - 1, va + size):
        if 0 <= outside < 1 << input_size(t0sz):
            r = walk(mem.read64, regime, outside)
            assert isinstance(r, Fault) and r.type == "translation"
