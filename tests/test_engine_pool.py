"""A board on a reused Unicorn instance gives exactly what a fresh ``hypemu.run`` gives: the same
result and the same event log, on a random sample of boards run in a shuffled order (so every
instance is reused after boards of other shapes, outcomes and faults)."""

from __future__ import annotations

import random
from typing import Any

import hypemu
from hypemu.engine_pool import TEMPLATES, EnginePool, PooledEngine

SHAPES: list[dict[str, Any]] = [
    {"name": "two-cpus-hotplug", "machine": {"cpus": 2},
     "steps": [{"boot": "all"}, {"hotplug": {"cpu": 1, "state": "off"}},
               {"hotplug": {"cpu": 1, "state": "on"}}, {"call": {"cpu": 1, "fn": "hyp_probe"}}]},
    {"name": "single-step-hotplug", "machine": {"cpus": 2}, "hyp": {"init": "single-step"},
     "steps": [{"boot": "all"}, {"hotplug": {"cpu": 1, "state": "off"}},
               {"hotplug": {"cpu": 1, "state": "on"}}]},
    {"name": "stale", "inject": [{"skip": "tlbiallh"}]},   # steps: a read of the idmap, below
    {"name": "small-tlb", "machine": {"tlb_entries": 2},
     "steps": [{"boot": "all"}, {"call": {"fn": "hyp_touch", "args": [0xC0000000, 8, 2]}}]},
    {"name": "budget", "limits": {"instructions": 50}},
    {"name": "thumb2", "kernel": {"isa": "thumb2"}, "machine": {"cpus": 2},   # Thumb, then ARM boards
     "steps": [{"boot": "all"}, {"call": {"cpu": 1, "fn": "hyp_probe"}}]},
]


def _sample(n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        s = dict(rng.choice(SHAPES))
        s["machine"] = {**s.get("machine", {}), "ram": {
            "base": rng.choice([0x0, 0x40000000, 0x80000000, 0xFF000000]),
            "size": rng.choice([16 << 20, 256 << 20, 1 << 30])}}
        s["kernel"] = {**s.get("kernel", {}),
                       "hyp_idmap_offset": rng.choice(["auto", 0x1000, 0x1FE0, 0xFFE0, 0x3FF000])}
        if s["name"] == "stale":   # the idmap's first page, still in the TLB without the TLBIALLH
            s["kernel"] = {"hyp_idmap_offset": 0x1000}
            s["steps"] = [{"boot": "all"}, {"call": {"fn": "hyp_read", "args": [
                s["machine"]["ram"]["base"] + 0x9010]}}]
        s["name"] = f"{s['name']}-{i}"
        out.append(s)
    return out


def _comparable(result: hypemu.Result) -> tuple[dict[str, Any], list[str]]:
    d = result.to_dict()
    d["stats"].pop("seconds")
    return d, [repr(e) for e in result.events]


def test_pooled_boards_equal_fresh_runs() -> None:
    sample = _sample(48, seed=17)
    fresh = [_comparable(hypemu.run(s)) for s in sample]
    pool = EnginePool(max_layouts=3)   # small: instances are also dropped and made again
    order = list(range(len(sample)))
    random.Random(5).shuffle(order)
    for i in order + order[:10]:
        assert _comparable(hypemu.run(sample[i], engines=pool)) == fresh[i], sample[i]["name"]
    assert pool.reused > 0
    outcomes = {d["outcome"] for d, _ in fresh}
    assert {"ok", "fault", "hazard", "timeout"} <= outcomes   # the sample covers them
    assert {d["isa"] for d, _ in fresh} == {"arm", "thumb2"}


def test_a_reset_engine_has_zero_ram_and_no_extra_hook() -> None:
    pool = EnginePool()
    banks = [(0x80000000, 1 << 20)]
    engine = pool(banks)
    engine.write(0x80001000, b"\x55" * 64)
    handle = engine.watch_memory(lambda pa: None)
    assert engine._extra_hooks == [handle]
    again = pool(banks)
    assert again is engine
    assert engine.read(0x80001000, 64) == bytes(64)
    assert engine._extra_hooks == []


def test_a_repeated_word_is_mapped_copy_on_write_and_reset_to_zeros() -> None:
    """write_repeated over whole pages maps them from a template: they read as the word, a write
    to one stays private to this board, and reset makes them zeros again (not the word)."""
    assert TEMPLATES.usable   # Linux: memfd_create and MAP_FIXED
    engine = PooledEngine([(0x80000000, 16 << 20)])
    word, pa, size = bytes.fromhex("f0eafde7"), 0x80001004, 0x40000 - 8   # partial first, last page
    engine.write_repeated(pa, word, size)
    assert engine._templated, "the whole pages were not mapped from the template"
    assert engine.read(pa, size) == word * (size // 4)
    assert engine.read(pa - 4, 4) == bytes(4) and engine.read(pa + size, 4) == bytes(4)
    engine.write(0x80010000, b"\x11" * 8)                    # a store into a mapped page
    assert engine.read(0x8000FFFC, 16) == word + b"\x11" * 8 + word
    engine.reset()
    assert engine.read(pa - 4, size + 8) == bytes(size + 8)
    other = bytes.fromhex("f0def0de")                       # the Thumb poison: its own template
    engine.write_repeated(0x80000000, other, 0x20000)
    engine.write_repeated(pa, word, size)                   # the same span again: the store is gone
    assert engine.read(pa, size) == word * (size // 4)
    assert engine.read(0x80000000, 4) == other and engine.read(0x80000ffc, 12) == other * 2 + word
