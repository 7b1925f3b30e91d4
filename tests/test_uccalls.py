"""Unicorn's register and control calls made from C (hypemu._uccalls, engine_regs) do what the
ctypes calls do: the same values in the same registers, the same soft-TLB choice, the same flush
(the same scenario results: test_same_results.py); without the extension (not built, or switched off) the engine calls
Unicorn through ctypes."""

from __future__ import annotations

import ctypes
import sys

import pytest
from unicorn.unicorn_py3.unicorn import uclib

import hypemu
from hypemu import engine_regs
from hypemu.engine import PROT_ALL, REG_CPSR, REG_LR, REG_PC, REG_SP, Engine, Map

RAM = 0x8000_0000
NOP = 0xE1A00000
built = pytest.mark.skipif(engine_regs.uccalls_unavailable() is not None,
                           reason=f"no C calls: {engine_regs.uccalls_unavailable()}")


def _engine(monkeypatch, c_calls: bool) -> Engine:
    monkeypatch.setenv(engine_regs.UCCALLS_ENV, "1" if c_calls else "0")
    e = Engine([(RAM, 1 << 20)])
    assert (e.regs.calls is not None) == c_calls
    return e


def _pair(monkeypatch) -> tuple[Engine, engine_regs.Registers]:
    """An engine calling from C, and ctypes Registers on the same Unicorn instance."""
    e = _engine(monkeypatch, True)
    monkeypatch.setenv(engine_regs.UCCALLS_ENV, "0")
    other = engine_regs.Registers(e.uc)
    assert other.calls is None
    return e, other


@built
def test_every_register_written_from_c_reads_back_through_ctypes_and_back(monkeypatch):
    e, ctypes_regs = _pair(monkeypatch)
    for n in range(15):            # R0-R12, SP, LR; values wider than 32 bits wrap as & does
        for value in (0, 1, 0xFFFF_FFFF, 0x1_2345_6789, -1, 0x8000_0000 + n):
            e.regs.write(n, value)
            assert ctypes_regs.read(n) == value & 0xFFFF_FFFF, (n, value)
            ctypes_regs.write(n, value + 7)
            assert e.regs.read(n) == (value + 7) & 0xFFFF_FFFF, (n, value)
    e.regs.write(REG_CPSR, 0x6000_0010)        # flags and User mode
    assert ctypes_regs.read(REG_CPSR) == e.regs.read(REG_CPSR) == 0x6000_0010
    e.regs.write(REG_PC, RAM + 0x101)          # bit 0: Thumb, as Unicorn takes a PC write
    assert ctypes_regs.read(REG_PC) == RAM + 0x100 and ctypes_regs.read(REG_CPSR) & 0x20


@built
def test_the_bank_swap_and_the_call_registers_are_the_same_from_c(monkeypatch):
    e, ctypes_regs = _pair(monkeypatch)
    e.regs.write(REG_SP, 0x1111)
    e.regs.write(REG_LR, 0x2222)
    assert e.regs.exchange_sp_lr(0x3333, 0x1_0000_4444) == (0x1111, 0x2222)
    assert (ctypes_regs.read(REG_SP), ctypes_regs.read(REG_LR)) == (0x3333, 0x4444)
    assert ctypes_regs.exchange_sp_lr(5, 6) == (0x3333, 0x4444)
    assert e.regs.exchange_sp_lr(7, 8) == (5, 6)
    e.regs.write_call((1, 2, 3, -4), 0x9000)
    assert [ctypes_regs.read(n) for n in (0, 1, 2, 3, REG_LR)] == [1, 2, 3, 0xFFFF_FFFC, 0x9000]


@built
def test_a_bad_register_number_is_refused_not_passed_to_unicorn(monkeypatch):
    e = _engine(monkeypatch, True)
    with pytest.raises(ValueError, match="no register 17"):
        e.regs.read(17)
    with pytest.raises(TypeError):
        e.regs.write(0)   # type: ignore[call-arg]


@pytest.mark.parametrize("c_calls", [True, False], ids=["c", "ctypes"])
def test_the_soft_tlb_choice_and_the_flush_either_way(monkeypatch, c_calls):
    """The two soft TLBs (SCR.NS) and the flush behave the same whichever way Unicorn is called."""
    if c_calls and engine_regs.uccalls_unavailable() is not None:
        pytest.skip(f"no C calls: {engine_regs.uccalls_unavailable()}")
    e = _engine(monkeypatch, c_calls)
    e.write32(RAM, NOP)
    e.write32(RAM + 4, NOP)
    e.regs.write(REG_CPSR, 0x10)
    fills: list[bool] = []

    def fill(va: int, access: str) -> Map:
        fills.append(e.tlbs.hyp)
        return Map((va, PROT_ALL))
    e.on_fill(fill, lambda decision: None)
    e.start(RAM, 2)
    e.use_hyp_tlb(True)
    e.start(RAM, 2)
    e.use_hyp_tlb(False)
    e.start(RAM, 2)
    assert fills == [False, True]              # each side filled once, then kept
    saved = e.context_save()
    e.use_hyp_tlb(True)
    e.context_restore(saved)
    assert e.tlbs.hyp is False                 # read back from the restored SCR
    e.flush_soft_tlb()
    e.start(RAM, 2)
    assert fills == [False, True, False]


UDF = 0xE7F000F0   # UDF #0: traps to the invalid-instruction hook


@pytest.mark.parametrize("c_calls", [True, False], ids=["c", "ctypes"])
def test_a_trap_that_stops_ends_the_run_at_its_instruction_either_way(monkeypatch, c_calls):
    """Engine.stop (uc_emu_stop from C or through ctypes) ends the run when the hook returns:
    the instructions after the trap do not run, and the next run goes on where the hook put PC."""
    if c_calls and engine_regs.uccalls_unavailable() is not None:
        pytest.skip(f"no C calls: {engine_regs.uccalls_unavailable()}")
    e = _engine(monkeypatch, c_calls)
    add_r0 = 0xE2800001   # add r0, r0, #1
    for n, word in enumerate((add_r0, UDF, add_r0, add_r0, UDF)):
        e.write32(RAM + 4 * n, word)
    e.regs.write(REG_CPSR, 0x10)
    e.regs.write(0, 0)
    e.on_fill(lambda va, access: Map((va, PROT_ALL)), lambda decision: None)
    trapped: list[int] = []

    def trap(pc: int, cpsr: int) -> None:
        trapped.append(pc)
        e.regs.write(REG_PC, pc + 4)
        e.stop()
    e.on_trap(trap)
    assert e.start(RAM, 100) is None
    assert trapped == [RAM + 4] and e.regs.read(0) == 1 and e.regs.read(REG_PC) == RAM + 8
    assert e.start(RAM + 8, 100) is None
    assert trapped == [RAM + 4, RAM + 16] and e.regs.read(0) == 3

def test_the_environment_switches_the_c_calls_off(monkeypatch):
    monkeypatch.setenv(engine_regs.UCCALLS_ENV, "0")
    assert engine_regs.uccalls_unavailable() == f"{engine_regs.UCCALLS_ENV}=0"
    assert engine_regs.describe_calls().startswith("ctypes")


def test_an_extension_that_cannot_be_imported_falls_back_to_ctypes(monkeypatch):
    monkeypatch.delenv(engine_regs.UCCALLS_ENV, raising=False)
    monkeypatch.setitem(sys.modules, "hypemu._uccalls", None)     # import raises ImportError
    assert "not built" in (engine_regs.uccalls_unavailable() or "")
    e = Engine([(RAM, 1 << 20)])
    assert e.regs.calls is None
    m = hypemu.Machine({"name": "fallback"}, engines=lambda banks, thumb=False: e)
    m.boot("all")
    assert m.call(0, "hyp_probe") == m.call(0, "hyp_probe")


@pytest.mark.parametrize("c_calls", [True, False], ids=["c", "ctypes"])
def test_the_user_thread_id_registers_are_one_for_pl1_and_hyp_either_way(monkeypatch, c_calls):
    """TPIDRURW and TPIDRURO are banked by security state in Unicorn, and the two soft TLBs are
    chosen by SCR.NS: a switch carries both over, so HYP code reads what PL1 code wrote and back
    (the architecture has one of each in Non-secure state). TPIDRURO is read-only in User mode:
    the PL1 value is put in through the register API."""
    if c_calls and engine_regs.uccalls_unavailable() is not None:
        pytest.skip(f"no C calls: {engine_regs.uccalls_unavailable()}")
    e = _engine(monkeypatch, c_calls)
    write_rw, read_rw, read_ro = 0xEE0D0F50, 0xEE1D1F50, 0xEE1D2F70   # mcr/mrc c13, c0, 2 / 3
    for n, word in enumerate((write_rw, read_rw, read_ro)):
        e.write32(RAM + 4 * n, word)
    e.regs.write(REG_CPSR, 0x10)
    e.on_fill(lambda va, access: Map((va, PROT_ALL)), lambda decision: None)
    ro = engine_regs._CpReg(cp=15, sec=0, crn=13, crm=0, opc2=3, val=0xABCD)   # the NS copy
    assert uclib.uc_reg_write(e.uc._uch, engine_regs.UC_ARM_REG_CP_REG, ctypes.byref(ro)) == 0
    e.regs.write(0, 0x1234)
    e.start(RAM, 1)                                  # PL1 side writes TPIDRURW
    e.use_hyp_tlb(True)
    e.start(RAM + 4, 2)                              # the HYP MMU side reads both
    assert (e.regs.read(1), e.regs.read(2)) == (0x1234, 0xABCD)
    e.regs.write(0, 0x5678)
    e.start(RAM, 1)                                  # HYP writes TPIDRURW
    e.use_hyp_tlb(False)
    e.start(RAM + 4, 2)
    assert (e.regs.read(1), e.regs.read(2)) == (0x5678, 0xABCD)


@built
def test_a_calls_object_never_initialized_refuses_instead_of_crashing():
    from hypemu._uccalls import Calls
    calls = Calls.__new__(Calls)      # no engine: its function pointers are NULL
    for method, args in (("read", (0,)), ("write", (0, 1)), ("stop", ()), ("use_tlb", (True,)),
                         ("ctl", (0,)), ("read_raw", (0, 0))):
        with pytest.raises(RuntimeError, match="not initialized"):
            getattr(calls, method)(*args)
