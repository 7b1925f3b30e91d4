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
