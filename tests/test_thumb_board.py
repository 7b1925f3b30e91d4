"""Thumb-2 HYP code on a booted board (``kernel.isa: thumb2``): IT blocks across the model and
Unicorn, exceptions taken from Thumb code, their syndromes and return addresses (ARM ARM B1.8.3:
ELR_hyp holds the preferred return address, in Thumb state as in ARM state)."""

from __future__ import annotations

import pytest

from hypemu import lpae
from hypemu.asm import assemble
from hypemu.cpu.state import CPSR_T
from hypemu.kvm import GuestFault

from conftest import machine

SCRATCH_OFFSET = 48 << 20


@pytest.fixture
def thumb_booted():
    m = machine(kernel={"isa": "thumb2"})
    m.boot()
    return m


def _thumb_code(m, source: str) -> int:
    """``source`` as Thumb-2 on a fresh page of the runtime table; its HYP VA."""
    pa = m.layout.banks[0].base + SCRATCH_OFFSET
    va = m.layout.kva(pa)
    m.core.load_code(pa, assemble(source, va, filename="snippet.S", thumb=True).code, thumb=True)
    lpae.map_range(m.core.engine, m.kernel.alloc_table, m.kernel.runtime_pgd, va, pa, 4096,
                   lpae.PAGE_HYP)
    return va


def test_an_it_block_around_a_trapped_mrc(thumb_booted):
    """With r0 = 0 the MRC (EQ) traps and the model advances ITSTATE, so Unicorn skips the MOVNE
    after it; with r0 = 1 Unicorn skips the MRC itself and runs the MOVNE."""
    m = thumb_booted
    va = _thumb_code(m, "cmp r0, #0\nite eq\nmrceq p15, 4, r0, c12, c0, 0\nmovne r0, #7\nbx lr\n")
    hvbar = m.hyp_registers(0)["HVBAR"]
    assert m.call(0, va | 1, 0) == hvbar
    assert m.call(0, va | 1, 1) == 7


def test_a_16_bit_undefined_instruction_in_thumb_hyp_code(thumb_booted):
    """udf #1 (DE01) at va + 2: undefined, taken to HVBAR + 0x04 in Thumb state (HSCTLR.TE);
    ELR_hyp = the instruction, HSR = EC 0x00 with IL = 1 (RES1 for EC 0x00 in ARMv8)."""
    m = thumb_booted
    va = _thumb_code(m, "nop\nudf #1\nbx lr\n")
    with pytest.raises(GuestFault) as err:
        m.call(0, va | 1)
    regs = m.hyp_registers(0)
    assert (err.value.record.kind, err.value.record.pc) == ("undefined", va + 2)
    assert regs["ELR_hyp"] == va + 2 and regs["HSR"] == 0x0200_0000
    assert regs["SPSR_hyp"] & CPSR_T
    assert m.events[-1].detail == f"-> {regs['HVBAR'] + 4:#x} (Thumb)"


def test_a_data_abort_from_a_16_bit_load_returns_to_the_load(thumb_booted):
    """ldr r0, [r0] (6800) of an unmapped VA: data abort taken in HYP, HDFAR the exact VA,
    ELR_hyp the load, SPSR_hyp.T set, HSR EC 0x25 | IL | translation fault level 1 (0x96000005:
    the VA's first-level slot of the runtime table is empty)."""
    m = thumb_booted
    va = _thumb_code(m, "movs r1, #0\nldr r0, [r0]\nbx lr\n")
    with pytest.raises(GuestFault) as err:
        m.call(0, va | 1, 0x1000_0004)
    regs = m.hyp_registers(0)
    assert err.value.record.kind == "data_abort" and err.value.record.pc == va + 2
    assert regs["HDFAR"] == 0x1000_0004 and regs["ELR_hyp"] == va + 2
    assert regs["SPSR_hyp"] & CPSR_T and regs["HSR"] == 0x9600_0005
