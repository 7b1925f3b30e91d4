"""Thumb state, one trapped instruction at a time (no engine): the T32/T16 encodings of every
trapped instruction, decoded and executed against ``cpu.state`` + ``cpu.insns``; HSR.IL; IT blocks;
exception entry and return in Thumb state. Encodings are hand-assembled from the ARM ARM's
encoding diagrams (ARMv7-A A6.3, A8.8, B9.3; checked against GNU as 2.40), HSR layout B3.13.6,
return addresses B1.8.3 / Table B1-7, ITSTATE A2.5.2."""

from __future__ import annotations

import pytest

from hypemu import cp15, events
from hypemu.cpu import insns
from hypemu.cpu.exceptions import abort
from hypemu.cpu.state import (CPSR_A, CPSR_F, CPSR_I, CPSR_T, MODE_HYP, MODE_SVC, REG_CPSR,
                              REG_PC, itstate, with_itstate)
from hypemu.decode import Insn, decode_thumb, it_advance, needs_patch_thumb, thumb_condition
from hypemu.walker import Fault

from test_cpu_insns import board

PC = 0x8000_1000
MASKS = CPSR_A | CPSR_I | CPSR_F
Z = 1 << 30


def thumb_board(mode: int = MODE_HYP):
    ctx = board(mode=mode)
    ctx.regs.write(REG_PC, PC | 1)         # a BX to PC: Thumb state
    assert ctx.regs.read(REG_CPSR) & CPSR_T
    return ctx


def run(ctx, value: int, size: int = 4, pc: int = PC) -> None:
    insns.execute_thumb(ctx, value, size, pc)


# --- decoding -------------------------------------------------------------------------------------
@pytest.mark.parametrize("value, size, expected", [
    (0xEE8C0F10, 4, Insn("mcr", opc1=4, crn=12, crm=0, opc2=0, rt=0)),     # mcr p15,4,r0,c12,c0,0
    (0xEE910F10, 4, Insn("mrc", opc1=4, crn=1, crm=0, opc2=0, rt=0)),      # mrc p15,4,r0,c1,c0,0
    (0xEC432F42, 4, Insn("mcrr", opc1=4, crm=2, rt=2, rt2=3)),             # mcrr p15,4,r2,r3,c2
    (0xEC510F42, 4, Insn("mrrc", opc1=4, crm=2, rt=0, rt2=1)),             # mrrc p15,4,r0,r1,c2
    (0xF7E08000, 4, Insn("hvc", imm=0)),                                   # hvc #0
    (0xF7E18234, 4, Insn("hvc", imm=0x1234)),                              # hvc #0x1234
    (0xF7F08000, 4, Insn("smc", imm=0)),                                   # smc #0
    (0xF3DE8F00, 4, Insn("eret")),                                         # eret
    (0xF3DE8F04, 4, Insn("exception_return", imm=4)),                      # subs pc, lr, #4
    (0xF3FF8000, 4, Insn("mrs", r=1, rt=0)),                               # mrs r0, spsr
    (0xF3EF8300, 4, Insn("mrs", r=0, rt=3)),                               # mrs r3, cpsr
    (0xF3EE8130, 4, Insn("mrs_banked", r=0, sysm=0b11110, rt=1)),          # mrs r1, ELR_hyp
    (0xF3EF8230, 4, Insn("mrs_banked", r=0, sysm=0b11111, rt=2)),          # mrs r2, SP_hyp
    (0xF38E8E30, 4, Insn("msr_banked", r=0, sysm=0b11110, rt=14)),         # msr ELR_hyp, lr
    (0xF3948E30, 4, Insn("msr_banked", r=1, sysm=0b11110, rt=4)),          # msr SPSR_hyp, r4
    (0xF3978F00, 4, Insn("msr", r=1, mask=0xF, rt=7)),                     # msr spsr_fsxc, r7
    (0xF3818100, 4, Insn("msr", r=0, mask=0x1, rt=1)),                     # msr cpsr_c, r1
    (0xF3AF8640, 4, Insn("cps", mask=0b11, r=0, opc2=0b010)),              # cpsid.w i
    (0xF3AF8113, 4, Insn("cps", mask=0b00, r=1, imm=0x13)),                # cps #0x13
    (0xF3AF8001, 4, Insn("hint", imm=1)),                                  # yield.w
    (0xF3AF8002, 4, Insn("hint", imm=2)),                                  # wfe.w
    (0xB672, 2, Insn("cps", mask=0b11, opc2=0b010)),                       # cpsid i
    (0xB662, 2, Insn("cps", mask=0b10, opc2=0b010)),                       # cpsie i
    (0xBF10, 2, Insn("hint", imm=1)),                                      # yield
    (0xBF20, 2, Insn("hint", imm=2)),                                      # wfe
])
def test_t32_and_t16_encodings_decode_to_the_a32_operations(value, size, expected):
    from dataclasses import replace
    assert decode_thumb(value, size) == replace(expected, size=size)


@pytest.mark.parametrize("value, size", [
    (0xF3AF8000, 4), (0xF3AF8003, 4), (0xBF00, 2), (0xBF30, 2),   # nop.w wfi.w nop wfi
    (0xBF0C, 2),                                                    # ite eq: not a hint
    (0xDEA5, 2), (0xF7FAA5A5, 4), (0x4770, 2),                      # udf, udf.w, bx lr
])
def test_other_thumb_encodings_are_not_emulated(value, size):
    assert decode_thumb(value, size) is None


def test_the_instructions_that_do_not_trap_in_thumb_user_mode_are_patched():
    """MRS/MSR CPSR, CPS (both sizes), YIELD/WFE (Unicorn stops past them); not MRS SPSR or MCR."""
    assert needs_patch_thumb(0xF3EF8300, 4) and needs_patch_thumb(0xF3818100, 4)
    assert needs_patch_thumb(0xB672, 2) and needs_patch_thumb(0xF3AF8640, 4)
    assert needs_patch_thumb(0xBF20, 2) and needs_patch_thumb(0xF3AF8001, 4)
    assert not needs_patch_thumb(0xF3FF8000, 4) and not needs_patch_thumb(0xEE8C0F10, 4)


# --- effects --------------------------------------------------------------------------------------
def test_thumb_mcr_and_mrc_step_by_four_and_stay_in_thumb_state():
    ctx = thumb_board()
    ctx.set_reg(0, 0x8000_2020)
    run(ctx, 0xEE8C0F10)
    assert ctx.st.sysregs["HVBAR"] == 0x8000_2020
    assert ctx.regs.read(REG_PC) == PC + 4 and ctx.regs.read(REG_CPSR) & CPSR_T
    assert ctx.log.events[-1].insn == 0xEE8C0F10
    run(ctx, 0xEE910F10, pc=PC + 4)                      # r0 = HSCTLR (reset value)
    assert ctx.reg(0) == cp15.reset_values(0)["HSCTLR"] and ctx.regs.read(REG_PC) == PC + 8


def test_thumb_mcrr_and_mrrc_move_httbr():
    ctx = thumb_board()
    ctx.set_reg(2, 0x8000_4000)
    ctx.set_reg(3, 0x1)
    run(ctx, 0xEC432F42)
    assert ctx.st.sysregs["HTTBR"] == 0x1_8000_4000
    run(ctx, 0xEC510F42, pc=PC + 4)
    assert (ctx.reg(0), ctx.reg(1)) == (0x8000_4000, 0x1) and ctx.regs.read(REG_PC) == PC + 8


@pytest.mark.parametrize("te, vector_pc, vector_thumb", [(0, 0x8000_0014, False),
                                                          (1, 0x8000_0014, True)])
def test_hvc_w_from_thumb_svc(te, vector_pc, vector_thumb):
    """HVC.W #0x1234 from SVC in Thumb: ELR_hyp = the next instruction (PC + 4, HVC is 32-bit),
    SPSR_hyp has T, HSR = EC 0x12 | IL | imm16 = 0x4A001234, the HYP trap vector in the state
    HSCTLR.TE selects."""
    ctx = thumb_board(MODE_SVC)
    ctx.st.sysregs["HVBAR"] = 0x8000_0000
    ctx.st.sysregs["HSCTLR"] |= te << 30
    run(ctx, 0xF7E18234)
    assert ctx.st.elr_hyp == PC + 4
    assert ctx.st.spsr[MODE_HYP] == MODE_SVC | MASKS | CPSR_T
    assert ctx.st.sysregs["HSR"] == 0x4A00_1234
    assert ctx.regs.read(REG_PC) == vector_pc
    assert bool(ctx.regs.read(REG_CPSR) & CPSR_T) == vector_thumb
    assert ctx.cpsr() & 0x1F == MODE_HYP and bool(ctx.cpsr() & CPSR_T) == vector_thumb


def test_arm_hvc_with_te_set_enters_a_thumb_vector():
    ctx = board(mode=MODE_SVC)
    ctx.st.sysregs["HVBAR"] = 0x8000_0000
    ctx.st.sysregs["HSCTLR"] |= cp15.HSCTLR_TE
    insns.execute(ctx, 0xE1400070, PC)                   # hvc #0 (A1)
    assert ctx.st.elr_hyp == PC + 4 and ctx.st.spsr[MODE_HYP] == MODE_SVC | MASKS
    assert ctx.regs.read(REG_PC) == 0x8000_0014 and ctx.cpsr() & CPSR_T
    assert ctx.log.events[-1].detail == "-> 0x80000014 (Thumb)"


@pytest.mark.parametrize("spsr, elr, pc, thumb", [
    (MODE_SVC | MASKS | CPSR_T, 0x8000_3003, 0x8000_3002, True),   # ELR[0] ignored in Thumb
    (MODE_SVC | MASKS, 0x8000_3006, 0x8000_3004, False),           # ELR[1:0] ignored in ARM
])
def test_thumb_eret_returns_to_the_state_of_spsr_t(spsr, elr, pc, thumb):
    ctx = thumb_board()
    ctx.st.spsr[MODE_HYP], ctx.st.elr_hyp = spsr, elr
    run(ctx, 0xF3DE8F00)
    assert ctx.regs.read(REG_PC) == pc and ctx.cpsr() & 0x1F == MODE_SVC
    assert bool(ctx.regs.read(REG_CPSR) & CPSR_T) == thumb
    assert ctx.log.events[-1].kind == events.ERET


def test_arm_eret_to_thumb_state():
    ctx = board(mode=MODE_HYP)
    ctx.st.spsr[MODE_HYP], ctx.st.elr_hyp = MODE_SVC | MASKS | CPSR_T, 0x8000_3002
    insns.execute(ctx, 0xE160006E, PC)
    assert ctx.regs.read(REG_PC) == 0x8000_3002 and ctx.regs.read(REG_CPSR) & CPSR_T


def test_subs_pc_lr_with_an_offset_is_undefined_in_hyp():
    """SUBS PC, LR, #4 (T1) in HYP: UNDEFINED (B9.3.19), to the HYP undefined vector 0x04 with
    ELR_hyp = the instruction, HSR EC 0x00 with IL = 1 (RES1 for EC 0x00 in ARMv8)."""
    ctx = thumb_board()
    ctx.st.sysregs["HVBAR"] = 0x8000_0000
    run(ctx, 0xF3DE8F04)
    assert ctx.fault is not None and ctx.fault.kind == "undefined"
    assert ctx.st.elr_hyp == PC and ctx.st.sysregs["HSR"] == 0x0200_0000
    assert ctx.regs.read(REG_PC) == 0x8000_0004 and ctx.st.spsr[MODE_HYP] & CPSR_T


def test_smc_trapped_by_hcr_tsc_returns_to_itself():
    ctx = thumb_board(MODE_SVC)
    ctx.st.sysregs["HCR"] = 1 << 19
    run(ctx, 0xF7F08000)
    assert ctx.st.elr_hyp == PC and ctx.st.sysregs["HSR"] == 0x4E00_0000   # EC 0x13, IL


def test_thumb_status_register_moves():
    ctx = thumb_board()
    ctx.st.spsr[MODE_HYP] = 0x6000_01D3
    run(ctx, 0xF3FF8000)                                  # mrs r0, spsr
    assert ctx.reg(0) == 0x6000_01D3 and ctx.regs.read(REG_PC) == PC + 4
    ctx.set_reg(7, MODE_SVC | MASKS)
    run(ctx, 0xF3978F00, pc=PC + 4)                       # msr spsr_fsxc, r7
    assert ctx.st.spsr[MODE_HYP] == MODE_SVC | MASKS
    ctx.set_reg(14, 0x8000_5001)
    run(ctx, 0xF38E8E30, pc=PC + 8)                       # msr ELR_hyp, lr
    run(ctx, 0xF3EE8130, pc=PC + 12)                      # mrs r1, ELR_hyp
    assert ctx.st.elr_hyp == 0x8000_5001 and ctx.reg(1) == 0x8000_5001
    run(ctx, 0xF3EF8300, pc=PC + 16)                      # mrs r3, cpsr: T reads as 0
    assert ctx.reg(3) == MODE_HYP | MASKS and ctx.regs.read(REG_PC) == PC + 20


def test_thumb_cps_16_and_32_bit():
    ctx = thumb_board()
    ctx.set_cpsr(MODE_HYP | CPSR_T)
    run(ctx, 0xB672, size=2)                              # cpsid i
    assert ctx.cpsr() & CPSR_I and ctx.regs.read(REG_PC) == PC + 2
    run(ctx, 0xF3AF8640, pc=PC + 2)                       # cpsid.w i: no change, 4 bytes
    run(ctx, 0xB662, size=2, pc=PC + 6)                   # cpsie i
    assert not ctx.cpsr() & CPSR_I and ctx.regs.read(REG_PC) == PC + 8
    assert ctx.regs.read(REG_CPSR) & CPSR_T


@pytest.mark.parametrize("value, kind", [(0xF3BF8F6F, "isb"), (0xF3BF8F4F, "dsb"),
                                         (0xF3BF8F5B, "dmb")])
def test_thumb_barriers(value, kind):
    ctx = thumb_board()
    run(ctx, value)
    assert ctx.log.events[-1].name == kind and ctx.regs.read(REG_PC) == PC + 4


@pytest.mark.parametrize("value, size", [(0xBF10, 2), (0xBF20, 2), (0xF3AF8001, 4),
                                         (0xF3AF8002, 4)])
def test_thumb_hints_step_by_their_size(value, size):
    ctx = thumb_board()
    run(ctx, value, size=size)
    assert ctx.regs.read(REG_PC) == PC + size and ctx.fault is None


@pytest.mark.parametrize("value, size, hsr", [
    (0xBF20, 2, 0x05E0_0001),        # EC 0x01, IL = 0, CV = 1, COND = 0xE, TI = 1 (WFE)
    (0xF3AF8002, 4, 0x07E0_0001),    # the same with IL = 1
    (0xE320F002, 4, 0x07E0_0001),    # wfe (A1)
])
def test_wfe_trapped_by_hcr_twe_sets_hsr_il_by_size(value, size, hsr):
    ctx = thumb_board(MODE_SVC) if value >> 28 != 0xE else board(mode=MODE_SVC)
    ctx.st.sysregs["HCR"] = 1 << 14
    ctx.st.sysregs["HVBAR"] = 0x8000_0000
    if value >> 28 == 0xE:
        insns.execute(ctx, value, PC)
    else:
        run(ctx, value, size=size)
    assert ctx.st.sysregs["HSR"] == hsr and ctx.st.elr_hyp == PC
    assert ctx.regs.read(REG_PC) == 0x8000_0014


# --- IT blocks ------------------------------------------------------------------------------------
def test_itstate_lives_in_cpsr_bits_26_25_and_15_10():
    assert with_itstate(0, 0x1F) == 0x0600_1C00 and itstate(0x0600_1C00) == 0x1F
    assert it_advance(0x1F) == 0x1E and it_advance(0x0C) == 0x18 and it_advance(0x18) == 0
    assert thumb_condition(0x0C) == 0x0 and thumb_condition(0x18) == 0x1
    assert thumb_condition(0) == 0xE


@pytest.mark.parametrize("flags, hvbar", [(0, 0x8000_2020), (Z, 0x1111_1100)])
def test_ite_eq_mrc_mcr(flags, hvbar):
    """`ite eq` (BF0C): ITSTATE 0x0C for the MRC (EQ), then 0x18 for the MCR (NE), then 0. With
    Z = 0 the MRC fails its condition: not executed, PC and ITSTATE advance; the MCR runs.
    With Z = 1 the MRC runs and the MCR does not."""
    ctx = thumb_board()
    ctx.set_cpsr(MODE_HYP | CPSR_T | flags | with_itstate(0, 0x0C))
    ctx.st.sysregs["HVBAR"] = 0x1111_1100
    ctx.set_reg(0, 0x8000_2020)
    run(ctx, 0xEE9C0F10)                                  # mrceq p15, 4, r0, c12, c0, 0
    assert ctx.regs.read(REG_PC) == PC + 4 and itstate(ctx.regs.read(REG_CPSR)) == 0x18
    run(ctx, 0xEE8C0F10, pc=PC + 4)                       # mcrne p15, 4, r0, c12, c0, 0
    assert ctx.regs.read(REG_PC) == PC + 8 and itstate(ctx.regs.read(REG_CPSR)) == 0
    assert ctx.st.sysregs["HVBAR"] == hvbar
    assert ctx.reg(0) == (0x8000_2020 if flags == 0 else 0x1111_1100)


def test_an_exception_in_an_it_block_saves_itstate_and_eret_restores_it():
    """SMC (trapped by HCR.TSC) as the first instruction of `itt eq` (ITSTATE 0x04 | ...): SPSR_hyp
    holds the ITSTATE of the SMC itself (its return address); ERET puts it back in the CPSR."""
    ctx = thumb_board(MODE_SVC)
    ctx.st.sysregs["HCR"] = 1 << 19
    ctx.set_cpsr(MODE_SVC | MASKS | CPSR_T | Z | with_itstate(0, 0x04))   # itt eq
    run(ctx, 0xF7F08000)
    assert ctx.st.elr_hyp == PC and itstate(ctx.st.spsr[MODE_HYP]) == 0x04
    assert itstate(ctx.cpsr()) == 0                       # cleared on entry
    run(ctx, 0xF3DE8F00, pc=0x8000_0014)                  # eret (the vector in Thumb: TE = 0
    assert ctx.regs.read(REG_PC) == PC                    # here, so the test runs it directly)
    assert itstate(ctx.regs.read(REG_CPSR)) == 0x04 and ctx.regs.read(REG_CPSR) & CPSR_T


def test_hvc_in_an_it_block_is_unpredictable_and_saves_the_next_itstate():
    ctx = thumb_board(MODE_SVC)
    ctx.set_cpsr(MODE_SVC | MASKS | CPSR_T | Z | with_itstate(0, 0x04))
    run(ctx, 0xF7E08000)
    assert itstate(ctx.st.spsr[MODE_HYP]) == 0x08 and ctx.st.elr_hyp == PC + 4
    assert any(e.kind == events.UNPREDICTABLE for e in ctx.log.events)


# --- return addresses in Thumb state (B1.8.3, Table B1-7: ELR_hyp = the preferred return address)
def test_an_abort_in_thumb_state_returns_to_the_aborting_instruction():
    ctx = thumb_board()
    ctx.st.sysregs["HVBAR"] = 0x8000_0000
    fault = Fault("translation", 3, 0x9000_0004, "read", False, ())
    record = abort(ctx, fault, 0x9000_0004, PC + 2)
    assert ctx.st.elr_hyp == PC + 2 and ctx.st.sysregs["HSR"] == 0x9600_0007
    assert ctx.st.spsr[MODE_HYP] & CPSR_T and record.pc == PC + 2
    assert ctx.regs.read(REG_PC) == 0x8000_0010


def test_an_unknown_thumb_instruction_in_hyp_is_undefined_at_itself():
    ctx = thumb_board()
    ctx.st.sysregs["HVBAR"] = 0x8000_0000
    run(ctx, 0xDEA5, size=2, pc=PC + 2)
    assert ctx.fault is not None and ctx.st.elr_hyp == PC + 2
    assert ctx.regs.read(REG_PC) == 0x8000_0004
