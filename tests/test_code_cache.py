"""Translated code survives a host write only where its bytes did not change (hypemu.code_cache):
on a fresh engine (eager: a changed page flushes all), on a pooled engine across boards (lazy:
checked when a fill grants execute again), for code a guest store rewrote, and for RAM above
4 GiB."""

from __future__ import annotations

import pytest

from hypemu.code_cache import CHUNK, CodeCache, changed_spans
from hypemu.engine import PROT_ALL, Engine, Map
from hypemu.engine_pool import EnginePool, PooledEngine

RAM = 0x8000_0000
UDF = 0xE7F000F0              # udf #0: reaches the trap hook, which ends the run
STR_R1_R2 = 0xE5821000        # str r1, [r2]
BX_R2 = 0xE12FFF12            # bx r2


def mov_r0(n: int) -> int:
    return 0xE3A00000 | n     # mov r0, #n


def words(*ws: int) -> bytes:
    return b"".join(w.to_bytes(4, "little") for w in ws)


def ready(e: Engine, va_to_pa: int = 0) -> Engine:
    e.regs.write(16, 0x10)    # User mode, ARM state
    e.on_fill(lambda va, access: Map((va + va_to_pa, PROT_ALL)), lambda decision: None)
    return e


def run(e: Engine, va: int) -> int:
    """R0 when the code at ``va`` reaches a UDF."""
    seen: list[int] = []

    def trap(pc: int, cpsr: int) -> None:
        seen.append(e.regs.read(0))
        e.stop()
    e.on_trap(trap)
    assert e.start(va, 100) is None
    return seen[0]


def lend(pool: EnginePool, banks: list[tuple[int, int]], va_to_pa: int = 0) -> Engine:
    return ready(pool(banks), va_to_pa)


@pytest.mark.parametrize("old_at, new_at, spans", [
    ((), (), []),
    ((), (130,), [(128, 256)]),
    ((), (0, 127), [(0, 128)]),
    ((), (127, 128), [(0, 256)]),
    ((), (0, 4095), [(0, 128), (3968, 4096)]),
    ((5,), (5,), []),            # the same byte changed on both sides: equal pages
])
def test_changed_spans_are_the_differing_chunks_merged(old_at, new_at, spans):
    old, new = bytearray(4096), bytearray(4096)
    for at in old_at:
        old[at] = 0x5A
    for at in new_at:
        new[at] = 0x5A
    assert CHUNK == 128
    assert changed_spans(bytes(old), bytes(new)) == spans


def test_rewritten_code_runs_new_on_a_fresh_engine_and_unchanged_code_is_kept():
    e = ready(Engine([(RAM, 1 << 20)]))
    assert not e.code.lazy
    e.write(RAM, words(mov_r0(1), UDF))
    assert run(e, RAM) == 1
    e.write(RAM, words(mov_r0(1), UDF))           # the same bytes: the translation stays
    assert run(e, RAM) == 1 and e.code.dropped == 0
    e.write(RAM, words(mov_r0(2), UDF))           # changed: its chunk's code goes
    assert run(e, RAM) == 2 and e.code.dropped == 1 and e.code.flushes == 0


def test_where_ranges_cannot_be_removed_the_eager_way_flushes_everything():
    pages = {7: b"\0" * 4096}
    flushed: list[bool] = []
    cache = CodeCache(lambda page: pages[page], lambda changes: False,
                      lambda: flushed.append(True))
    cache.granted(7)
    cache.before_write(7 << 12, 4)
    pages[7] = b"\1" + bytes(4095)
    cache.settle()
    assert flushed == [True] and cache.flushes == 1


def test_a_pooled_engine_keeps_code_across_boards_only_where_its_bytes_are_unchanged():
    pool = EnginePool()
    banks = [(RAM, 1 << 20)]
    e = lend(pool, banks)
    assert isinstance(e, PooledEngine) and e.code.lazy
    e.write(RAM, words(mov_r0(1), UDF))
    assert run(e, RAM) == 1
    assert lend(pool, banks) is e                       # the next board: RAM zeroed
    e.write(RAM, words(mov_r0(2), UDF))
    assert run(e, RAM) == 2
    dropped = e.code.dropped
    assert dropped >= 1
    for expected in (1, 1):                             # back to the first code, then again
        lend(pool, banks)
        e.write(RAM, words(mov_r0(expected), UDF))
        assert run(e, RAM) == expected
    assert e.code.dropped == dropped + 1                # only the change 2 -> 1 removed code
    assert e.code.flushes == 0


def test_a_host_write_to_a_page_not_granted_since_the_last_soft_tlb_flush_is_seen():
    e = lend(EnginePool(), [(RAM, 1 << 20)])
    e.write(RAM, words(mov_r0(1), UDF))
    assert run(e, RAM) == 1
    e.flush_soft_tlb()
    e.write(RAM, words(mov_r0(3), UDF))                 # a plain write, no run between
    assert run(e, RAM) == 3


def test_code_a_guest_store_rewrote_is_not_taken_for_the_code_loaded_again():
    pool = EnginePool()
    banks = [(RAM, 1 << 20)]
    target = RAM + 0x100
    e = lend(pool, banks)
    e.write(RAM, words(STR_R1_R2, BX_R2))
    e.write(target, words(mov_r0(2), UDF))
    assert run(e, target) == 2
    e.flush_soft_tlb()                                  # an epoch ends: the bytes are kept
    e.regs.write(1, mov_r0(3))
    e.regs.write(2, target)
    assert run(e, RAM) == 3                             # the guest rewrote it and ran it
    lend(pool, banks)
    e.write(target, words(mov_r0(2), UDF))         # what the first board loaded
    assert run(e, target) == 2


def test_ram_above_4gib_keeps_and_drops_code_by_its_own_address():
    pool = EnginePool()
    high = 0x1_0000_0000
    banks = [(high, 1 << 20)]
    e = lend(pool, banks, va_to_pa=high - RAM)          # VA 0x80000000 -> PA 0x100000000
    e.write(high, words(mov_r0(4), UDF))
    assert run(e, RAM) == 4
    lend(pool, banks, va_to_pa=high - RAM)
    e.write(high, words(mov_r0(5), UDF))
    assert run(e, RAM) == 5


def test_an_engine_that_may_run_thumb_code_keeps_code_the_eager_way():
    e = EnginePool()([(RAM, 1 << 20)], thumb=True)
    assert isinstance(e, PooledEngine) and not e.code.lazy


def test_the_lazy_way_refuses_to_guess_when_it_cannot_remove_code():
    cache = CodeCache(lambda page: bytes(4096), lambda changes: False, lambda: None, lazy=True)
    cache.granted(7)
    cache.before_write(7 << 12, 4)
    cache._kept[7] = b"\1" * 4096      # what the page held before the write
    with pytest.raises(RuntimeError, match="internal"):
        cache.settle()


@pytest.mark.parametrize("pooled", [False, True])
def test_the_loaders_poison_over_code_that_ran_is_what_runs_next(pooled: bool):
    e = lend(EnginePool(), [(RAM, 1 << 20)]) if pooled else ready(Engine([(RAM, 1 << 20)]))
    e.write(RAM, words(mov_r0(1), UDF))
    assert run(e, RAM) == 1
    e.write_repeated(RAM, UDF.to_bytes(4, "little"), 64 << 12)   # 64 pages: a mapped span
    e.regs.write(0, 99)
    assert run(e, RAM) == 99                            # the UDF at RAM itself, not mov r0, #1


def test_a_thumb_instruction_across_a_page_on_an_arm_engine_runs_its_new_second_half():
    """Unicorn compares a Thumb block that crosses into a page while it looks it up, asking for
    that page: its first two bytes are checked before the run, not in that fill (the lazy way)."""
    pool = EnginePool()
    banks = [(RAM, 1 << 20)]
    at = RAM + 0x1FFE                                   # movw.w r0 straddles two pages
    udf_w = (0xF7F0).to_bytes(2, "little") + (0xA000).to_bytes(2, "little")

    def movw_r0(n: int) -> bytes:
        return (0xF240).to_bytes(2, "little") + n.to_bytes(2, "little")
    for n in (1, 2, 2, 3):
        e = lend(pool, banks)
        assert e.code.lazy                              # declared ARM: Thumb is reached by BX
        e.write(at, movw_r0(n) + udf_w)
        assert run(e, at | 1) == n


@pytest.mark.parametrize("pooled", [False, True])
def test_code_rewritten_by_stores_through_a_mapping_without_execute_runs_new(pooled: bool):
    """Unicorn removes the code a store overlaps only at the first store through an entry that
    does not grant execute; the code of such a page goes before the next run."""
    page, alias = RAM + 0x4000, 0x4000_0000             # alias: the page, read/write only
    target = page + 0x100

    def fill(va: int, access: str) -> Map:
        return Map((page, 3)) if va == alias else Map((va, PROT_ALL))   # 3: read | write

    def board(e: Engine) -> Engine:
        e.regs.write(16, 0x10)
        e.on_fill(fill, lambda decision: None)
        return e
    pool = EnginePool()
    e = board(pool([(RAM, 1 << 20)]) if pooled else Engine([(RAM, 1 << 20)]))
    e.write(RAM, words(STR_R1_R2, 0xE5831000, UDF))   # str r1, [r2]; str r1, [r3]
    e.write(target, words(mov_r0(1), UDF))
    assert run(e, target) == 1
    e.regs.write(1, mov_r0(3))
    e.regs.write(2, alias + 0x800)                      # the entry's first store
    e.regs.write(3, alias + 0x100)                      # the second: over the code
    run(e, RAM)
    assert e.read32(target) == mov_r0(3) and run(e, target) == 3
    assert e.code.tainted                               # what runs depends on what Unicorn held
    if pooled:                                          # the next board loads those bytes
        flushes = e.code.flushes
        e = board(pool([(RAM, 1 << 20)]))
        assert not e.code.tainted
        e.write(target, words(mov_r0(3), UDF))
        assert run(e, target) == 3 and e.code.flushes == flushes + 1   # it started empty


def test_every_host_write_over_code_counts_not_only_loads():
    pool = EnginePool()
    e = lend(pool, [(RAM, 1 << 20)])
    e.write(RAM, words(mov_r0(1), UDF))
    assert run(e, RAM) == 1
    e.write(RAM, words(mov_r0(2), UDF))                 # as Machine.write_phys writes
    assert run(e, RAM) == 2
    e = lend(pool, [(RAM, 1 << 20)])
    e.write(RAM, words(mov_r0(2), UDF))
    assert run(e, RAM) == 2


def test_a_board_whose_reused_engine_was_tainted_is_run_again_on_a_fresh_engine(monkeypatch):
    import hypemu.result as result_mod
    built: list[object] = []
    machine = result_mod.Machine

    def counting(*args: object) -> object:
        built.append(args[-1])                          # the engine factory it was given
        return machine(*args)
    monkeypatch.setattr(result_mod, "Machine", counting)

    class Tainting(EnginePool):
        def __call__(self, banks, *, thumb=False):
            engine = super().__call__(banks, thumb=thumb)
            engine.code.tainted = True                  # as code_cache.blind would
            return engine
    scenario = {"name": "t", "steps": [{"boot": "all"}, {"call": {"fn": "hyp_probe"}}]}
    fresh = result_mod.run(scenario)
    assert built == [Engine]
    built.clear()
    again = result_mod.run(scenario, engines=Tainting())
    assert len(built) == 2 and built[1] is Engine       # the pooled board, then a fresh one
    assert again.to_dict()["outcome"] == fresh.to_dict()["outcome"] == "ok"
    built.clear()
    result_mod.run(scenario, engines=EnginePool())      # untainted: one board
    assert len(built) == 1


def test_execute_granted_after_a_store_entry_without_execute_taints_the_board():
    cache = CodeCache(lambda page: bytes(4096), lambda changes: True, lambda: None, lazy=True)
    cache.blind(7)                                      # no code on page 7 yet
    assert not cache.tainted
    cache.granted(7)                                    # code now, the store entry still there
    assert cache.tainted
    other = CodeCache(lambda page: bytes(4096), lambda changes: True, lambda: None, lazy=True)
    other.blind(7)
    other.epoch_end()                                   # the entry is gone with the soft TLB
    other.granted(7)
    assert not other.tainted
