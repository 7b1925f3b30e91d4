"""The Unicorn adapter: fills answered by ``Map``, and an exception raised in any hook re-raised by
``Engine.start`` (it cannot cross Unicorn's C frames)."""

from __future__ import annotations

import pytest

from hypemu.engine import PROT_ALL, REG_PC, REG_CPSR, Engine, Map

RAM = 0x8000_0000
UDF = 0xE7F000F0          # udf #0: reaches the trap hook
NOP = 0xE1A00000


def engine_with(words: list[int]) -> Engine:
    e = Engine([(RAM, 1 << 20)])
    for n, word in enumerate(words):
        e.write32(RAM + 4 * n, word)
    e.regs.write(REG_CPSR, 0x10)
    e.on_fill(lambda va, access: Map((va, PROT_ALL)), lambda decision: None)
    return e


def test_a_trap_hook_exception_is_raised_by_start():
    e = engine_with([NOP, UDF])

    def trap(pc: int, cpsr: int) -> None:
        raise KeyError("from the trap hook")
    e.on_trap(trap)
    with pytest.raises(KeyError, match="from the trap hook"):
        e.start(RAM, 10)
    assert e.regs.read(REG_PC) == RAM + 4


def test_a_fill_hook_exception_is_raised_by_start_and_then_forgotten():
    e = engine_with([NOP, NOP])
    e.on_fill(lambda va, access: 1 // 0, lambda decision: None)
    with pytest.raises(ZeroDivisionError):
        e.start(RAM, 2)
    e.on_fill(lambda va, access: Map((va, PROT_ALL)), lambda decision: None)
    e.flush_soft_tlb()
    assert e.start(RAM, 2) is None and e.regs.read(REG_PC) == RAM + 8


def test_a_refused_fill_goes_to_refused():
    e = engine_with([NOP])
    refusals: list[object] = []
    e.on_fill(lambda va, access: ("no", va, access), refusals.append)
    assert e.start(RAM, 1) is not None                      # Unicorn's fetch fault
    assert refusals == [("no", RAM, "fetch")]


def _counting_fills(e: Engine, pa_of: dict[bool, int]) -> list[tuple[bool, int]]:
    """Fills as (soft TLB, page VA); each soft TLB maps the code page to its own PA."""
    fills: list[tuple[bool, int]] = []

    def fill(va: int, access: str) -> Map:
        hyp = bool(e.tlbs.hyp)
        fills.append((hyp, va & ~0xFFF))
        return Map((pa_of[hyp] + (va & 0xFFF), PROT_ALL))
    e.on_fill(fill, lambda decision: None)
    return fills


def test_the_hyp_mmu_and_the_flat_regime_have_a_soft_tlb_each():
    """Switching keeps both: each side finds its own entries again; a flush empties both."""
    e = engine_with([NOP, NOP])
    e.write(RAM + 0x1000, (NOP).to_bytes(4, "little") * 2)   # the HYP side's copy of the code
    fills = _counting_fills(e, {False: RAM, True: RAM + 0x1000})
    e.start(RAM, 2)
    assert fills == [(False, RAM)]
    e.use_hyp_tlb(True)
    e.start(RAM, 2)
    assert fills == [(False, RAM), (True, RAM)]        # a TLB of its own: filled once
    e.use_hyp_tlb(False)
    e.start(RAM, 2)
    e.use_hyp_tlb(True)
    e.start(RAM, 2)
    assert len(fills) == 2                              # both kept across the switches
    e.flush_soft_tlb()
    e.start(RAM, 2)
    e.use_hyp_tlb(False)
    e.start(RAM, 2)
    assert fills[2:] == [(True, RAM), (False, RAM)]


def test_a_restored_context_brings_its_soft_tlb_choice():
    e = engine_with([NOP])
    flat = e.context_save()
    e.use_hyp_tlb(True)
    hyp = e.context_save()
    e.context_restore(flat)
    assert e.tlbs.hyp is False
    e.context_restore(hyp)
    assert e.tlbs.hyp is True


def test_doubleword_reads_at_the_edges_of_each_region():
    """read64 tries the first region first: its last doubleword, one straddling its end and one
    in a second region still read what was written (or say there is no memory)."""
    e = Engine([(RAM, 1 << 20), (RAM + (2 << 20), 1 << 20)])
    last, second = RAM + (1 << 20) - 8, RAM + (2 << 20)
    e.write64(last, 0x1122_3344_5566_7788)
    e.write64(second, 0x99AA_BBCC_DDEE_FF00)
    assert e.read64(last) == 0x1122_3344_5566_7788
    assert e.read64(second) == 0x99AA_BBCC_DDEE_FF00
    assert e.read64(RAM) == 0
    with pytest.raises(LookupError):
        e.read64(last + 4)           # half in the first region, half in the hole after it
    with pytest.raises(LookupError):
        e.read64(RAM - 8)
