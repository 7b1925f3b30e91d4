"""The table dump (Machine.tables, hypemu.ptdump) against an independent walk written here from the
descriptor format (ARM DDI 0406C.c B3.6), and the memory types against hand-decoded HMAIR bytes."""

from __future__ import annotations

import pytest

from hypemu import lpae
from hypemu.machine import Machine
from hypemu.ptdump import memory_type
from hypemu.scenario import from_mapping

from conftest import machine, scenario

ADDR_MASK = (1 << 40) - 1          # output address bits [39:0]
SHIFT = {1: 30, 2: 21, 3: 12}
SH_NAMES = {0: "NSH", 1: "SH?", 2: "OSH", 3: "ISH"}


def own_walk(m: Machine, pgd: int) -> dict[int, dict]:
    """Every valid leaf of the table at ``pgd`` (T0SZ = 0: four level-1 entries), by VA: its PA,
    size, level, raw descriptor and the PA of each descriptor on its path. Written from the
    format, not from hypemu's decoders."""
    leaves: dict[int, dict] = {}

    def visit(table: int, level: int, va_base: int, entries: int, path: list[int]) -> None:
        for i in range(entries):
            slot = table + 8 * i
            raw = int.from_bytes(m.read_phys(slot, 8), "little")
            va = va_base + (i << SHIFT[level])
            if raw & 0b01 == 0:
                continue
            if level < 3 and raw & 0b10:
                visit(raw & ADDR_MASK & ~0xFFF, level + 1, va, 512, path + [slot])
            elif level == 3 and raw & 0b10 or level < 3:
                size = 1 << SHIFT[level]
                leaves[va] = {"pa": raw & ADDR_MASK & ~(size - 1), "size": size, "level": level,
                              "raw": raw, "path": path + [slot]}

    visit(pgd, 1, 0, 4, [])
    return leaves


def dumped_leaves(dump) -> dict[int, dict]:
    """The dump's coalesced runs, expanded back into single leaves."""
    out = {}
    for r in dump.ranges:
        each = r.size // r.count
        for k in range(r.count):
            out[r.va + k * each] = {"pa": r.pa + k * each, "size": each, "level": r.level, "run": r}
    return out


def hmair_byte(m: Machine, index: int) -> int:
    regs = m.hyp_registers(0)
    return (regs["HMAIR1"] << 32 | regs["HMAIR0"]) >> (8 * index) & 0xFF


def check_against_own_walk(m: Machine, table: str) -> None:
    dump = m.tables(table)
    mine, theirs = own_walk(m, dump.pgd), dumped_leaves(dump)
    assert sorted(mine) == sorted(theirs)
    for va, leaf in mine.items():
        got, raw = theirs[va], leaf["raw"]
        run = got["run"]
        assert (got["pa"], got["size"], got["level"]) == (leaf["pa"], leaf["size"], leaf["level"])
        assert run.writable == (not raw >> 7 & 1)                      # AP[2]
        assert run.executable == (not raw >> 54 & 1)                   # XN
        assert run.attrs.af == bool(raw >> 10 & 1)
        assert run.to_dict()["sh"] == SH_NAMES[raw >> 8 & 3]
        assert run.mair_attr == hmair_byte(m, raw >> 2 & 7)
        if va == run.va:                                               # the run's first leaf
            assert [pa for _, pa in run.path] == leaf["path"]
            assert [lv for lv, _ in run.path] == [1, 2, 3][:len(leaf["path"])]
        if va + leaf["size"] == run.va_end:                            # its last leaf
            assert run.last_leaf == leaf["path"][-1]


@pytest.mark.parametrize("table", ["boot", "runtime"])
def test_the_default_boards_tables_match_an_independent_walk(booted, table):
    check_against_own_walk(booted, table)


def test_a_four_cpu_board_with_extra_mappings_and_a_block_matches_too():
    m = machine(machine={"cpus": 4})
    m.boot()
    m.map_hyp(m.layout.alloc_page("test") , 0x1000)
    block = lpae.encode_block(0x80000000, 1, lpae.PAGE_HYP)
    m.write_phys(m.kernel.runtime_pgd, block.to_bytes(8, "little"))   # VA 0: a 1 GiB block
    check_against_own_walk(m, "runtime")
    first = m.tables("runtime").ranges[0]
    assert (first.va, first.size, first.level, first.kind) == (0, 1 << 30, 1, "block")
    assert first.what == "RAM, not at its kernel VA 0xc0000000"


def test_the_default_boards_ranges_are_named_from_the_layout(booted):
    lay = booted.layout
    boot = [(r.va, r.pa, r.what) for r in booted.tables("boot").ranges]
    assert boot == [(0x80009000, 0x80009000, "idmap"), (0xFFFF0000, 0x80009000, "trampoline")]
    runtime = {r.what: (r.va, r.pa) for r in booted.tables("runtime").ranges}
    assert runtime == {"HYP text": (0xC000A000, lay.hyp_text), "HYP data": (0xC000B000, lay.hyp_data),
                       "stack of cpu0": (0xC000C000, lay.stacks[0]),
                       "trampoline": (0xFFFF0000, 0x80009000)}
    for r in booted.tables("runtime").ranges:   # PAGE_HYP through the kernel's MAIR: attr 7 = 0xFF
        assert (r.memtype, r.mair_attr, r.writable, r.executable) == ("Normal WBWA", 0xFF, True, True)
        assert r.to_dict()["sh"] == "ISH" and r.attrs.af and r.unpredictable == ()


def test_contiguous_pages_with_equal_attributes_are_one_run():
    m = machine()
    pa = m.layout.alloc_page("a")
    for _ in range(3):
        m.layout.alloc_page("b")
    va = m.map_hyp(pa, 0x4000)
    runs = [r for r in m.tables("runtime").ranges if r.va == va]
    assert len(runs) == 1 and (runs[0].count, runs[0].size, runs[0].what) == (4, 0x4000, "kernel memory")
    assert "..0x" in m.tables("runtime").text()   # the run shows its first..last descriptor


def test_before_boot_memory_types_come_from_the_pl1_mair_and_say_so():
    m = machine()
    dump = m.tables("runtime")
    assert "has not set HMAIR" in dump.mair_source
    assert {r.memtype for r in dump.ranges} == {"Normal WBWA"}


def _leaf_slot(m: Machine, table: str, va: int) -> int:
    return m.translate(0, va, pgd=table).descriptors[-1]


def _poke(m: Machine, pa: int, value: int) -> None:
    m.write_phys(pa, value.to_bytes(8, "little"))


def _peek(m: Machine, pa: int) -> int:
    return int.from_bytes(m.read_phys(pa, 8), "little")


def test_invalid_and_reserved_descriptors_and_high_bits_are_listed(booted):
    m = booted
    text_slot, data_slot, stack_slot = (_leaf_slot(m, "runtime", va)
                                        for va in (0xC000A000, 0xC000B000, 0xC000C000))
    _poke(m, text_slot, _peek(m, text_slot) & ~1)                # invalid, attributes kept
    _poke(m, data_slot, _peek(m, data_slot) & ~0b10)             # 0b01 at level 3: reserved
    _poke(m, stack_slot, _peek(m, stack_slot) | 1 << 40)         # bit 40: not a 40-bit PA
    dump = m.tables("runtime")
    bad = {b.va: (b.level, b.pa, b.why.split(" ")[0]) for b in dump.invalid}
    assert bad == {0xC000A000: (3, text_slot, "invalid"), 0xC000B000: (3, data_slot, "reserved"),
                   0xC000C000: (3, stack_slot, "bits[47:40]")}
    assert [r.what for r in dump.ranges] == ["trampoline"]
    assert f"at {text_slot:#x}: invalid (bits[1:0] = 0b10)" in dump.text()


def test_unpredictable_bits_and_hierarchical_attributes_are_shown(booted):
    m = booted
    slot = _leaf_slot(m, "runtime", 0xC000B000)
    _poke(m, slot, _peek(m, slot) & ~(1 << 6))                  # AP[1] = 0: UNPREDICTABLE in HYP
    l2 = m.translate(0, 0xFFFF0000, pgd="runtime").descriptors[1]
    _poke(m, l2, _peek(m, l2) | 1 << 60 | 1 << 62)              # XNTable, APTable[1]
    dump = m.tables("runtime")
    data = next(r for r in dump.ranges if r.what == "HYP data")
    assert data.unpredictable == ("AP[1]=0 in a HYP level-3 leaf descriptor (ignored)",)
    assert "! UNPREDICTABLE: AP[1]=0" in dump.text()
    tramp = next(r for r in dump.ranges if r.what == "trampoline")
    assert (tramp.writable, tramp.executable) == (False, False)
    assert "RO NX" in dump.text()


def test_a_leaf_without_the_access_flag_is_shown_with_its_fault(booted):
    booted.corrupt("runtime", 0xC000C000, "af", 0)
    stack = next(r for r in booted.tables("runtime").ranges if r.what == "stack of cpu0")
    assert stack.fault == "access_flag" and not stack.attrs.af and stack.writable


def test_single_step_has_one_table_and_the_idmap_leaves_it_after_boot():
    m = Machine(from_mapping(scenario(hyp={"init": "single-step"})))
    before = m.tables("boot")
    assert before.name == "hyp" and "idmap" in [r.what for r in before.ranges]
    m.boot()
    assert "idmap" not in [r.what for r in m.tables("runtime").ranges]


def test_a_pgd_without_memory_behind_it_is_listed_as_such(booted):
    dump = booted.tables(0x10000000)   # below RAM (RAM starts at 0x80000000)
    assert dump.ranges == [] and [(b.level, b.pa, b.raw) for b in dump.invalid] == [(1, 0x10000000, None)]
    assert "no memory behind this table" in dump.text()


def test_tables_refuses_an_unknown_cpu_or_table(booted):
    with pytest.raises(ValueError, match="aligned to 0x20"):
        booted.tables(0x80000010)
    with pytest.raises(ValueError):
        booted.tables("boot", cpu=3)
    with pytest.raises(KeyError):
        booted.tables("stage2")


@pytest.mark.parametrize("attr, name, unpredictable", [
    (0x00, "Device-nGnRnE", False), (0x04, "Device-nGnRE", False), (0xFF, "Normal WBWA", False),
    (0x44, "Normal NC", False), (0xEE, "Normal WBRA", False), (0xAA, "Normal WTRA", False),
    (0x4F, "Normal I:WBWA O:NC", False), (0x77, "Normal WBWA transient", False),
    (0x08, "Device-nGRE", True), (0x0C, "Device-GRE", True), (0x01, "Device (attr 0x01)", True),
    (0x40, "Normal (attr 0x40)", True), (0x88, "Normal WTnoalloc", False),
])
def test_memory_types_are_named_from_the_hmair_byte(attr, name, unpredictable):
    got, note = memory_type(attr)
    assert got == name and (note is not None) == unpredictable
