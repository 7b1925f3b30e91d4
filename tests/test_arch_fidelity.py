"""Architectural fidelity probes (a review against DDI 0406C): MRS/MSR CPSR masking
(CPSRWriteByInstr), Non-secure PL1 reads of MIDR/MPIDR (VPIDR/VMPIDR), MRS/MSR of R8_usr-R12_usr
from HYP, and HVC with HCR bit 29 set (no HCD in ARMv7)."""

from __future__ import annotations

import pytest

from hypemu import lpae
from hypemu.asm import assemble
from hypemu.kvm import GuestFault

SCRATCH_OFFSET = 48 << 20


def _hyp_code(m, source: str) -> int:
    pa = m.layout.banks[0].base + SCRATCH_OFFSET
    va = m.layout.kva(pa)
    m.core.load_code(pa, assemble(source, va, filename="snippet.S").code)
    lpae.map_range(m.core.engine, m.kernel.alloc_table, m.kernel.runtime_pgd, va, pa, 4096,
                   lpae.PAGE_HYP)
    return va


def _svc_run(m, source: str) -> int:
    pa = m.layout.banks[0].base + SCRATCH_OFFSET + (1 << 20)
    m.core.load_code(pa, assemble(source, pa).code)
    m.core.select(0)
    m.core.set_reg(14, m.kernel.sentinel)
    assert m.core.run_guest(pa, 100).stop == "returned"
    return m.core.reg(0)


def test_mrs_cpsr_reads_execution_state_bits_as_zero_and_msr_cannot_set_them(booted):
    # HYP, A/I/F masked, flags Z and C from the dispatcher's cmp: 0x600001DA. MSR CPSR_c cannot
    # set T; MSR CPSR_f writes N Z C V Q only (not IT[1:0]/J); MRS masks T, J and IT to zero.
    va = _hyp_code(booted, "mrs r1, cpsr\norr r1, r1, #0x20\nmsr cpsr_c, r1\n"
                           "orr r1, r1, #0x07000000\nmsr cpsr_f, r1\nmrs r0, cpsr\nbx lr\n")
    assert booted.call(0, va) == 0x600001DA


def test_pl1_reads_of_midr_and_mpidr_return_vpidr_and_vmpidr(booted):
    va = _hyp_code(booted, "mcr p15, 4, r0, c0, c0, 5\nmcr p15, 4, r1, c0, c0, 0\nbx lr\n")
    booted.call(0, va, 0x80000103, 0x41234567)
    assert _svc_run(booted, "mrc p15, 0, r0, c0, c0, 5\nbx lr\n") == 0x80000103
    assert _svc_run(booted, "mrc p15, 0, r0, c0, c0, 0\nbx lr\n") == 0x41234567
    # HYP itself still reads the physical values
    va = _hyp_code(booted, "mrc p15, 0, r0, c0, c0, 5\nbx lr\n")
    assert booted.call(0, va) == 0x80000000


def test_banked_r8_usr_from_hyp_is_r8(booted):
    va = _hyp_code(booted, "push {r8}\nmov r8, #0x55\nmrs r0, r8_usr\nmov r1, #0x66\n"
                           "msr r8_usr, r1\nadd r0, r0, r8\npop {r8}\nbx lr\n")
    assert booted.call(0, va) == 0x55 + 0x66


def test_hcr_bit_29_does_not_disable_hvc_in_armv7(booted):
    """ARMv7's HCR has no HCD (bits [31:28] are reserved; HCD is ARMv8's): an HVC from HYP with
    bit 29 set is still taken to HVBAR + 0x08 with HSR EC 0x12 and its immediate."""
    m = booted
    va = _hyp_code(m, """
        mrc     p15, 4, r1, c1, c1, 0
        orr     r1, r1, #(1 << 29)
        mcr     p15, 4, r1, c1, c1, 0
        hvc     #7
    """)
    with pytest.raises(GuestFault):     # the runtime vectors treat an HVC from HYP as bad (udf)
        m.call(0, va)
    hvbar = m.hyp_registers(0)["HVBAR"]
    taken = [e for e in m.events if e.kind == "exception" and e.pc == va + 16]
    assert [(e.name, e.value, e.detail) for e in taken] == [
        ("hvc", 0x12 << 26 | 1 << 25 | 7, f"-> {hvbar + 0x08:#x}")]


def test_smc_without_hcr_tsc_is_not_guessed(booted):
    """SMC would enter Monitor mode (or be UNDEFINED with SCR.SCD): neither is modelled."""
    from hypemu.cpu import NotModelled
    va = _hyp_code(booted, "smc #0\nbx lr\n")
    with pytest.raises(NotModelled, match="Monitor mode"):
        booted.call(0, va)


def test_hsctlr_and_hcptr_res1_bits_read_as_one_and_ignore_writes(booted):
    """ARMv7 leaves a 0 written to HSCTLR's and HCPTR's RAO/SBOP bits UNPREDICTABLE; hypemu does
    what ARMv8 AArch32 does with RES1 bits (RAO/WI). Linux v3.10's stub writes 0 to both."""
    va = _hyp_code(booted, """
        mov     r1, #0
        mcr     p15, 4, r1, c1, c1, 2       @ HCPTR = 0
        mrc     p15, 4, r0, c1, c1, 2
        mrc     p15, 4, r2, c1, c0, 0
        ldr     r3, =0x30C50818
        bic     r1, r2, r3                  @ HSCTLR with its RES1 bits cleared (M stays on)
        mcr     p15, 4, r1, c1, c0, 0
        isb
        mrc     p15, 4, r1, c1, c0, 0
        eor     r1, r1, r2                  @ 0 if the RES1 bits read as one again
        orr     r0, r0, r1
        bx      lr
        .ltorg
    """)
    assert booted.call(0, va) == 0x33FF


def test_the_timer_and_feature_rows_the_kernel_stub_reads(booted):
    """ID_PFR1 (Cortex-A15 TRM: GenTimer [19:16] = 1, Virtualization [15:12] = 1), ID_PFR0, and
    CNTHCTL (HYP only; UNKNOWN at reset, hypemu: 0), written as the stub does."""
    va = _hyp_code(booted, """
        mrc     p15, 0, r0, c0, c1, 1       @ ID_PFR1
        mrc     p15, 0, r1, c0, c1, 0       @ ID_PFR0
        mrc     p15, 4, r2, c14, c1, 0      @ CNTHCTL
        orr     r2, r2, #3
        mcr     p15, 4, r2, c14, c1, 0
        mrc     p15, 4, r3, c14, c1, 0
        add     r0, r0, r1, lsl #4
        add     r0, r0, r3, lsl #24
        bx      lr
    """)
    assert booted.call(0, va) == 0x00011131 + (0x00001131 << 4) + (3 << 24)
    pa = booted.layout.banks[0].base + SCRATCH_OFFSET + (1 << 20)     # CNTHCTL from SVC: undefined
    booted.core.load_code(pa, assemble("mrc p15, 4, r0, c14, c1, 0\nbx lr\n", pa).code)
    booted.core.select(0)
    booted.core.set_reg(14, booted.kernel.sentinel)
    result = booted.core.run_guest(pa, 100)
    assert (result.stop, result.fault.kind, result.fault.pc) == ("fault", "undefined", pa)
