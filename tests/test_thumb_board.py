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


@pytest.mark.parametrize("isa, thumb", [("arm", False), ("thumb2", True)])
def test_the_engine_is_told_at_construction_whether_thumb_code_may_run(isa, thumb):
    """An instruction budget that counts ARM words cannot count Thumb code: the engine learns
    from the plan, before any code is loaded, that it must count with emu_start(count=)."""
    m = machine(kernel={"isa": isa})
    assert m.kernel.image.thumb is thumb and m.core.engine.thumb_code is thumb


def test_a_32_bit_instruction_straddling_into_an_unmapped_page(thumb_booted):
    """mov.w r0, #1 (F04F 0001) with its first halfword at the last halfword of a mapped page and
    its second on the next, unmapped one: a prefetch abort taken in HYP, ELR_hyp = the instruction
    (va + 0xFFE), HIFAR = the halfword whose fetch faulted (va + 0x1000), HSR EC 0x21 | IL |
    translation fault level 3 = 0x86000007."""
    m = thumb_booted
    pa = m.layout.banks[0].base + SCRATCH_OFFSET
    va = m.layout.kva(pa)
    code = b"".join(h.to_bytes(2, "little") for h in [0xBF00] * 2047 + [0xF04F, 0x0001, 0x4770])
    m.core.load_code(pa, code, thumb=True)
    lpae.map_range(m.core.engine, m.kernel.alloc_table, m.kernel.runtime_pgd, va, pa, 4096,
                   lpae.PAGE_HYP)
    with pytest.raises(GuestFault) as err:
        m.call(0, va | 1)
    regs = m.hyp_registers(0)
    record = err.value.record
    assert (record.kind, record.pc, record.va) == ("prefetch_abort", va + 0xFFE, va + 0x1000)
    assert regs["ELR_hyp"] == va + 0xFFE and regs["HIFAR"] == va + 0x1000
    assert regs["HSR"] == 0x8600_0007


def test_a_patched_mrs_cpsr_in_an_it_block(thumb_booted):
    """MRS r0, CPSR does not trap in User mode, so the loader patched it (UDF.W marker) and the
    model runs it under the IT block's condition. r0 = 1: EQ fails, r0 keeps 5. r0 = 0: the HYP
    CPSR with Z and C from `cmp r0, #0` (0x60000000), A I F set, HYP mode, T read as 0:
    0x600001DA."""
    m = thumb_booted
    va = _thumb_code(m, "cmp r0, #0\nmov r0, #5\nit eq\nmrseq r0, cpsr\nbx lr\n")
    assert m.call(0, va | 1, 1) == 5
    assert m.call(0, va | 1, 0) == 0x6000_01DA
