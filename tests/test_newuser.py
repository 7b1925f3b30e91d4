"""Regression tests of issue 15 (what a new user trips over): each refusal with its own true reason,
the messages, the command line, the Python API against its documentation."""

from __future__ import annotations

import pytest

import hypemu
from conftest import machine, scenario
from hypemu import memmap, views
from hypemu.scenario import from_mapping
from hypemu.walker import Translation


# 1. The idmap page that *is* the trampoline page is one mapping, not a refusal.

def test_a_trampoline_va_on_the_idmap_page_itself_boots():
    m = machine(hyp={"trampoline_va": 0x80009000})   # the default board's init page
    assert m.layout.trampoline_pa == 0x80009000
    m.boot()
    assert m.call(0, "hyp_probe") == m.read32(m.layout.hyp_data)
    for table in ("boot", "runtime"):
        t = m.translate(0, 0x80009000, "fetch", pgd=table)
        assert isinstance(t, Translation) and t.pa == 0x80009000
    mmap = views.memory_map(from_mapping(scenario(hyp={"trampoline_va": 0x80009000})))
    assert mmap.collisions == []


def test_an_idmap_page_the_trampoline_maps_elsewhere_is_refused_for_that_reason():
    with pytest.raises(hypemu.ConfigError) as err:
        machine(hyp={"trampoline_va": 0x8000A000, "bounce_page": "never"},
                kernel={"hyp_idmap_offset": 0x1F80})
    assert err.value.reason == (
        "the HYP idmap [0x80009000, 0x8000b000) maps the trampoline VA 0x8000a000 to itself, the "
        "trampoline maps it to 0x80009000: the boot pgd cannot hold both (init code across a page, "
        "bounce_page: never)")
    assert "4 GiB" not in err.value.reason


# 2. An image above lowmem says so; kernel pages come from the lowmem of any bank.

def test_an_image_above_lowmem_is_refused_for_that_reason():
    with pytest.raises(hypemu.ConfigError) as err:
        machine(kernel={"text_offset": 0x30000000})   # 1 GiB at 0x80000000: lowmem ends 0xaf800000
    assert err.value.reason == (
        "the kernel image [0xb0000000, 0xb0004000) reaches above the end of lowmem at 0xaf800000: "
        "the kernel runs in its linear map, which ends where the vmalloc area starts")


def test_kernel_pages_come_from_another_lowmem_bank_when_the_kernels_is_full():
    banks = [{"base": 0x80000000, "size": "52KiB"}, {"base": 0x80100000, "size": "1MiB"}]
    m = machine(machine={"ram": banks, "cpus": 2})   # 52 KiB alone: no page left for the tables
    lay = m.layout
    assert lay.image_end == 0x8000C000 and lay.stacks[0] == 0x8000C000
    assert lay.stacks[1] == 0x80100000 and all(0x80100000 <= t < 0x80200000 for t in lay.tables)
    m.boot("all")
    assert m.call(1, "hyp_get_sp") & ~0xFFF == lay.kva(lay.stacks[1])   # cpu1 runs on it


def test_no_lowmem_page_left_names_lowmem_not_a_bank_end():
    banks = [{"base": 0x80000000, "size": "52KiB"}, {"base": 0x880000000, "size": "1GiB"}]
    with pytest.raises(hypemu.ConfigError) as err:
        machine(machine={"ram": banks})
    assert err.value.reason == ("RAM too small: no free lowmem page left for the boot HYP pgd "
                                "(lowmem: [0x80000000, 0x8000d000), the kernel image ends at "
                                "0x8000c000)")
