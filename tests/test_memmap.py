"""The memory map (hypemu.memmap, views.memory_map) and its picture (hypemu.mapplot): every shipped
scenario, refused ones included, is mapped and drawn, and the drawing's elements are checked in the
SVG."""

from __future__ import annotations

import importlib.util
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from hypemu import memmap, views
from hypemu.scenario import DEFAULT_SCENARIO, from_mapping, load_file

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))
REFUSED = {"idmap-crosses-trampoline": ("boot", "idmap", "trampoline"),
           "trampoline-in-lowmem": ("boot", "trampoline", "lowmem"),
           "ram-above-4g": ("boot", "idmap", "32-bit VA space")}


def _map(path: Path) -> memmap.MemoryMap:
    return views.memory_map(load_file(str(path)))


def test_the_refused_scenarios_are_the_ones_expected_to_be_refused():
    refused = {p.stem for p in SCENARIOS if load_file(str(p)).expect.outcome == "config_error"}
    assert refused == set(REFUSED)


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_every_scenario_is_mapped_and_a_refused_one_shows_its_collision(path):
    mmap = _map(path)
    text = memmap.text(mmap)
    assert text.startswith(f"memory map of {path.stem}")
    if path.stem in REFUSED:
        assert mmap.refused and "refused (config_error)" in text
        space, first, second = REFUSED[path.stem]
        assert any((c.space, c.first, c.second) == (space, first, second) for c in mmap.collisions)
    else:
        assert mmap.refused is None and mmap.collisions == []


def test_the_default_map_holds_the_layout_and_the_init_page_three_times():
    mmap = views.memory_map(from_mapping(DEFAULT_SCENARIO))
    kinds = {r.kind for r in mmap.phys}
    assert {"ram", "image", "init", "init_page", "text", "data", "stack", "pgd", "table",
            "lowmem_end"} <= kinds
    init_page = next(r for r in mmap.phys if r.kind == "init_page")
    assert (init_page.start, init_page.size) == (0x80009000, 0x1000)
    on_init = [(m.space, m.name, m.va) for maps in mmap.spaces.values() for m in maps
               if m.pa == init_page.start]
    assert on_init == [("boot", "idmap", 0x80009000), ("boot", "trampoline", 0xFFFF0000),
                       ("runtime", "trampoline", 0xFFFF0000)]
    end = next(r for r in mmap.phys if r.kind == "lowmem_end")
    assert end.start == 0x80000000 + (0xEF800000 - 0xC0000000)   # VMALLOC_MIN - PAGE_OFFSET
    text = memmap.text(mmap)
    assert "0x0080009000-0x008000a000     4 KiB  init page" in text
    assert "0xffff0000-0xffff1000 -> 0x0080009000     4 KiB  trampoline" in text


def test_two_banks_show_the_hole_between_them():
    mmap = _map(ROOT / "scenarios" / "two-banks.yaml")
    holes = {r.name: (r.start, r.end) for r in mmap.phys if r.kind == "hole"}
    banks = sorted((r for r in mmap.phys if r.kind == "ram"), key=lambda r: r.start)
    assert len(banks) == 2
    assert holes == {"hole below bank 0": (0, banks[0].start),
                     "hole after bank 0": (banks[0].end, banks[1].start)}


def test_a_bounce_page_is_on_the_map():
    mmap = _map(ROOT / "scenarios" / "bounce-page.yaml")
    bounce = next(r for r in mmap.phys if r.kind == "bounce")
    assert [m.pa for m in mmap.spaces["boot"] if m.name == "trampoline"] == [bounce.start]


@pytest.mark.parametrize("size, text", [(4096, "4 KiB"), (1 << 30, "1 GiB"), (232, "232 B"),
                                        (0x180000, "1.5 MiB"), (1 << 40, "1 TiB")])
def test_sizes_are_in_binary_units(size, text):
    assert memmap.size_text(size) == text


# --- the picture ------------------------------------------------------------------------------

SVG = "{http://www.w3.org/2000/svg}"


def _svg_ids(path: Path) -> tuple[set[str], str]:
    tree = ET.parse(path)
    ids = {el.get("id") for el in tree.iter() if el.get("id")}
    texts = " ".join("".join(el.itertext()) for el in tree.iter(SVG + "text"))
    return ids, texts


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_every_scenario_is_drawn_with_its_elements(path, tmp_path):
    pytest.importorskip("matplotlib", reason="the picture needs the optional extra hypemu[plot]")
    from hypemu import mapplot
    mmap = _map(path)
    out = tmp_path / "map.svg"
    mapplot.save(mmap, str(out))
    ids, texts = _svg_ids(out)
    for r in mmap.phys:
        assert mapplot.region_id(r) in ids, r
    for maps in mmap.spaces.values():
        for m in maps:
            assert mapplot.mapping_id(m) in ids and mapplot.mapping_id(m).replace("map:", "band:", 1) in ids
            assert f"{m.va:#010x}" in texts      # hex ticks at each mapping's start
    for c in mmap.collisions:
        assert mapplot.collision_id(c) in ids
    assert ("REFUSED (config_error)" in texts) == (mmap.refused is not None)
    assert "physical (PA)" in texts and " KiB" in texts


def test_a_png_is_written_too(tmp_path):
    pytest.importorskip("matplotlib", reason="the picture needs the optional extra hypemu[plot]")
    from hypemu import mapplot
    out = tmp_path / "map.png"
    mapplot.save(views.memory_map(from_mapping(DEFAULT_SCENARIO)), str(out))
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("sections, collision", [
    ({"machine": {"ram": {"base": 0x80000000, "size": 0x8000}}},            # the image past RAM
     ("pa", "kernel image, stack of cpu0", "RAM", 0x80008000, 0x8000D000)),
    ({"hyp": {"init": "single-step"}, "kernel": {"page_offset": 0xC0000000},
      "machine": {"ram": {"base": 0xC0000000, "size": 0x10000000}}},         # v3.9's pud_clear
     ("hyp", "idmap level-1 entry", "HYP text", 0xC000A000, 0xC000B000)),
])
def test_other_refusals_show_their_collision_too(sections, collision, tmp_path):
    s = from_mapping({**DEFAULT_SCENARIO, **sections})
    mmap = views.memory_map(s)
    assert mmap.refused
    assert collision in [(c.space, c.first, c.second, c.start, c.end) for c in mmap.collisions]
    if importlib.util.find_spec("matplotlib") is not None:
        from hypemu import mapplot
        mapplot.save(mmap, str(tmp_path / "m.svg"))
        ids, _ = _svg_ids(tmp_path / "m.svg")
        assert all(mapplot.collision_id(c) in ids for c in mmap.collisions)
