"""Thumb state below and around the CPU model: what Unicorn does with Thumb code (the facts the
runner relies on, docs/DESIGN.md section 2b), the assembler's Thumb-2 mode, skip
injections in Thumb code and the Thumb disassembly of traces."""

from __future__ import annotations

import textwrap

import pytest

from hypemu.asm import AsmError, assemble
from hypemu.engine import PROT_ALL, REG_CPSR, REG_PC, Engine, Map
from hypemu.inject import InjectError, Skip, nop_out, skip_sites
from hypemu.loader import Region
from hypemu.trace import disassemble

RAM = 0x8000_0000
T = 1 << 5


def thumb_engine(halfwords: list[int]) -> tuple[Engine, list[tuple[int, int]]]:
    e = Engine([(RAM, 1 << 20)], thumb=True)   # Thumb code runs: the count= budget
    e.write(RAM, b"".join(h.to_bytes(2, "little") for h in halfwords + [0xE7FE] * 4))
    e.regs.write(REG_CPSR, 0x10)
    e.on_fill(lambda va, access: Map((va, PROT_ALL)), lambda decision: None)
    traps: list[tuple[int, int]] = []

    def trap(pc: int, cpsr: int) -> None:
        assert (pc, cpsr) == (e.regs.read(REG_PC), e.regs.read(REG_CPSR))
        traps.append((pc, cpsr))
        e.stop()
    e.on_trap(trap)
    return e, traps


# --- Unicorn in Thumb state (probed facts) --------------------------------------------------------
def test_a_trapped_t32_instruction_reports_its_own_address_in_thumb_state():
    e, traps = thumb_engine([0xBF00, 0xEE8C, 0x0F10])        # nop; mcr p15, 4, r0, c12, c0, 0
    e.start(RAM | 1, 10)
    assert traps == [(RAM + 2, 0x30)]                        # User mode, T = 1


@pytest.mark.parametrize("halfwords, stop", [([0xBF00, 0xBF30], RAM + 4),          # wfi
                                             ([0xBF00, 0xF3AF, 0x8003], RAM + 6)])  # wfi.w
def test_wfi_ends_the_run_quietly_past_itself(halfwords, stop):
    e, traps = thumb_engine(halfwords)
    assert e.start(RAM | 1, 10) is None and traps == []
    assert e.regs.read(REG_PC) == stop and e.executed() == 2


def test_wfe_reaches_the_trap_hook_with_the_pc_past_it():
    e, traps = thumb_engine([0xBF20])
    e.start(RAM | 1, 10)
    assert traps == [(RAM + 2, 0x30)]


def test_unicorn_skips_a_trapped_instruction_that_fails_its_it_condition():
    """movs r0, #1 (Z = 0); it eq; mrc: no trap. With it ne the MRC traps, and the CPSR shows the
    ITSTATE of that instruction (0x18: IT[7:2] = 0b000110 in CPSR[15:10])."""
    e, traps = thumb_engine([0x2001, 0xBF08, 0xEE1C, 0x0F10])
    e.start(RAM | 1, 4)
    assert traps == []
    e, traps = thumb_engine([0x2001, 0xBF18, 0xEE1C, 0x0F10])
    e.start(RAM | 1, 4)
    assert traps == [(RAM + 4, 0x1830)]


def test_the_start_address_bit_0_chooses_the_state_not_cpsr_t():
    e, traps = thumb_engine([0x2005])                        # movs r0, #5
    e.regs.write(REG_CPSR, 0x30)
    e.start(RAM, 1)                                          # even: ARM state
    assert not e.regs.read(REG_CPSR) & T and e.regs.read(0) != 5
    e.regs.write(REG_PC, RAM | 1)                            # a PC write with bit 0: Thumb
    assert e.regs.read(REG_CPSR) & T and e.regs.read(REG_PC) == RAM


# --- the assembler's Thumb-2 mode -----------------------------------------------------------------
def halfwords(code: bytes) -> list[int]:
    return [int.from_bytes(code[i:i + 2], "little") for i in range(0, len(code), 2)]


def test_special_instructions_assemble_to_their_t32_encodings():
    program = assemble(textwrap.dedent("""\
        eret
        hvc #0x1234
        smc #0
        mrs r1, ELR_hyp
        msr ELR_hyp, lr
        msr SPSR_hyp, r4
        """), 0x1000, thumb=True)
    assert program.thumb
    assert halfwords(program.code) == [0xF3DE, 0x8F00, 0xF7E1, 0x8234, 0xF7F0, 0x8000,
                                       0xF3EE, 0x8130, 0xF38E, 0x8E30, 0xF394, 0x8E30]


def test_kernel_macros_in_a_thumb2_build():
    """W(b) is b.w (4 bytes: a vector slot), THUMB() lines stay, ARM() lines go."""
    program = assemble(textwrap.dedent("""\
        W(b)    fn
        ARM(    mov r0, r1  )
        THUMB(  it eq       )
        THUMB(  moveq r0, r1 )
        fn:
        """), 0x40, thumb=True)
    # b.w fn (T4, S = 0, J1 = J2 = 1: offset 0x48 - (0x40 + 4) = 4, imm11 = 2), it eq (0xBF08),
    # moveq r0, r1 (0x4608)
    assert halfwords(program.code) == [0xF000, 0xB802, 0xBF08, 0x4608]
    assert program.symbols["fn"] == 0x48


def test_conditional_instructions_get_implicit_it_blocks():
    """As -mimplicit-it=always: mrceq/mcrne/orrne/strne share one block (ITEEE EQ: firstcond 0000,
    mask 1111 -> BF0F); BXNE must end a block, so it gets its own (IT NE: BF18); a conditional
    branch gets none; an explicit ITE covers its two instructions."""
    program = assemble(textwrap.dedent("""\
        mrceq p15, 4, r0, c12, c0, 0
        mcrne p15, 4, r0, c12, c0, 0
        orrne r7, r7, #1
        strne r7, [r5, r6]
        bxne lr
        1: beq 1b
        ite eq
        moveq r1, #1
        movne r1, #2
        """), 0x1000, thumb=True)
    assert halfwords(program.code) == [
        0xBF0F, 0xEE9C, 0x0F10, 0xEE8C, 0x0F10, 0xF047, 0x0701, 0x51AF,   # iteee eq ...
        0xBF18, 0x4770,                                                    # it ne; bxne lr
        0xD0FE,                                                            # beq . (imm8 -2)
        0xBF0C, 0x2101, 0x2102]               # ite eq; MOV T1 (no flags inside an IT block)


def test_inst_directives_as_the_kernel_writes_hvc_and_eret():
    """<asm/opcodes-virt.h> of a Thumb-2 kernel: `.inst.w 0xf7e08000` (HVC #0) stores hw1 first;
    `.inst.n` one halfword; in an ARM build `.inst` is a word."""
    program = assemble(".inst.w 0xf7e08000\n.inst.n 0xbf00\n.inst 0xf3de8f00\n", 0, thumb=True)
    assert halfwords(program.code) == [0xF7E0, 0x8000, 0xBF00, 0xF3DE, 0x8F00]
    assert assemble(".inst 0xe160006e\n", 0).code == (0xE160006E).to_bytes(4, "little")


def test_pc_relative_loads_and_branches_are_checked_in_thumb():
    program = assemble(textwrap.dedent("""\
        ldr r0, =0x12345678
        adr r1, data
        bl  fn
        fn: bx lr
        .align 2
        data: .word 7
        .ltorg
        """), 0x1000, thumb=True)
    assert program.symbols["data"] % 4 == 0
    assert (0x12345678).to_bytes(4, "little") in program.code


def test_a_thumb2_program_cannot_switch_to_arm():
    with pytest.raises(AsmError, match="assembled as Thumb"):
        assemble("nop\n.arm\nnop\n", 0, thumb=True)


# --- skip in Thumb code ---------------------------------------------------------------------------
def region(code: list[int], symbols: dict[str, int]) -> Region:
    data = b"".join(h.to_bytes(2, "little") for h in code)
    return Region("init", data, 0x1000, 0x1000, symbols, frozenset(symbols), "t.S", thumb=True)


def test_skip_counts_offsets_in_the_thumb_instruction_stream():
    # movs r0, #1 (16) | isb (32) | cmp r0, #0 (16) | dsb (32)
    r = region([0x2001, 0xF3BF, 0x8F6F, 0x2800, 0xF3BF, 0x8F4F], {"f": 0x1000})
    assert skip_sites([r], Skip(mnemonic="isb")) == [("init", 2, 4)]
    assert skip_sites([r], Skip(symbol="f", offset=6)) == [("init", 6, 2)]
    with pytest.raises(InjectError, match="inside a 32-bit Thumb instruction"):
        skip_sites([r], Skip(symbol="f", offset=4))
    patched = nop_out(r.code, [(2, 4), (6, 2)], thumb=True)
    assert halfwords(patched) == [0x2001, 0xF3AF, 0x8000, 0xBF00, 0xF3BF, 0x8F4F]


# --- disassembly --------------------------------------------------------------------------------
@pytest.mark.parametrize("insn, text", [(0xF3DE8F00, "eret"), (0xBF30, "wfi"),
                                        (0xF7E08000, "hvc.w #0"), (0xDEA5, "udf #0xa5"),
                                        (0xEE8C0F10, "mcr p15, #4, r0, c12, c0, #0")])
def test_thumb_instructions_disassemble_in_thumb_mode(insn, text):
    assert disassemble(insn, 0x1000, thumb=True) == text
