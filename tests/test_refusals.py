"""Layouts the kernel side refuses, each with its reason (outcome config_error), and the bounce
page for init code that crosses a page."""

from __future__ import annotations

import pytest

import hypemu
from conftest import machine, scenario
from hypemu.walker import Translation

REFUSALS = [
    ("idmap_maps_the_trampoline_va_elsewhere",
     {"hyp": {"trampoline_va": 0x8000A000, "bounce_page": "never"},
      "kernel": {"hyp_idmap_offset": 0x1F80}},
     "the HYP idmap [0x80009000, 0x8000b000) maps the trampoline VA 0x8000a000 to itself, the "
     "trampoline maps it to 0x80009000"),
    ("trampoline_in_lowmem", {"hyp": {"trampoline_va": 0xC0100000}},
     "trampoline VA 0xc0100000 lies inside the kernel's lowmem"),
    ("trampoline_unaligned", {"hyp": {"trampoline_va": 0xFFFF0800}}, "is not a page-aligned"),
    ("init_above_4g", {"machine": {"ram": {"base": 0x800000000, "size": "1GiB"}}},
     "above 4 GiB: a 32-bit HYP VA cannot identity-map it"),
    ("ram_too_small", {"machine": {"ram": {"base": 0x80000000, "size": "16KiB"}}}, "RAM too small"),
    ("no_room_for_tables", {"machine": {"ram": {"base": 0x80000000, "size": "52KiB"}}},
     "RAM too small: no free lowmem page left"),
]


@pytest.mark.parametrize("name, sections, reason", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refusal_reason(name, sections, reason):
    with pytest.raises(hypemu.ConfigError) as err:
        machine(**sections)
    assert reason in err.value.reason
    result = hypemu.run({**scenario(**sections), "name": name})
    assert result.outcome == "config_error" and reason in result.reason
    assert not result.passed and result.layout is None


def test_init_code_larger_than_a_page_is_refused(tmp_path):
    src = tmp_path / "big.S"
    src.write_text(".align 5\n.global __kvm_hyp_init\n__kvm_hyp_init:\n eret\n .space 4100\n"
                   ".global __kvm_hyp_init_end\n__kvm_hyp_init_end:\n")
    with pytest.raises(hypemu.ConfigError, match="more than a page"):
        machine(hyp={"code": str(src)})


def test_init_code_across_a_page_uses_a_bounce_page_and_boots():
    # Force __kvm_hyp_init to 0xF80 bytes into a page: its ~0xE8 bytes cross the next boundary.
    m = machine(kernel={"hyp_idmap_offset": 0x1F80})
    lay = m.layout
    assert lay.crosses_page() and lay.bounce_page is not None
    assert lay.init_pa == lay.bounce_page == lay.trampoline_pa   # copied to the page's start
    assert m.read_phys(lay.bounce_page, lay.init_size) == m.read_phys(lay.init_start, lay.init_size)
    m.boot()
    assert m.call(0, "hyp_probe") == m.read32(lay.hyp_data)
    for table in ("boot", "runtime"):
        t = m.translate(0, 0xFFFF0000, "fetch", pgd=table)
        assert isinstance(t, Translation) and t.pa == lay.bounce_page


def test_without_bounce_page_the_trampoline_jump_lands_in_the_wrong_page():
    # bounce_page: never. The trampoline maps only the page where the init code starts; phase 2's
    # target label lies in the next page, so TRAMPOLINE_VA + (its offset) executes the *first* page
    # at that offset: kernel text that is not init code (hypemu's image poison, undefined).
    sections = dict(kernel={"hyp_idmap_offset": 0x1F80}, hyp={"bounce_page": "never"})
    m = machine(**sections)
    target = m.kernel.image.init.address("trampoline_target")
    assert target & ~0xFFF != m.layout.init_start & ~0xFFF    # the label is in the second page
    result = hypemu.run(scenario(name="no-bounce", **sections))
    assert result.outcome == "fault"
    assert result.fault == {"cpu": 0, "kind": "undefined", "pc": 0xFFFF0000 | (target & 0xFFF),
                            "va": None, "fsc": None, "level": None,
                            "hsr": 0x02000000}              # EC 0x00 (unknown reason), IL = 1
    assert "phase 2" in result.reason
