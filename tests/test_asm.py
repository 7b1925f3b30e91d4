"""hypemu.asm: GNU-as ARM sources on keystone 0.9.2, with what keystone lacks or gets wrong.

Expected words are computed by hand from the ARM ARM encodings and cross-checked with capstone's
disassembly. Anything that could kill or hang a process runs in a child process."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import capstone
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hypemu import asm
from hypemu.asm import AsmError, Program, assemble, assemble_file, cache_info, clear_memory_cache

FIXTURES = Path(__file__).parent / "asm_fixtures"
REPO = Path(__file__).resolve().parent.parent
NOP = 0xE320F000


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Every test gets its own disk cache and an empty memory cache."""
    monkeypatch.setenv("HYPEMU_CACHE_DIR", str(tmp_path / "cache"))
    clear_memory_cache()
    yield tmp_path / "cache"
    clear_memory_cache()


def words(program: Program) -> list[int]:
    code = program.code
    return [int.from_bytes(code[i:i + 4], "little") for i in range(0, len(code) - 3, 4)]


def disasm(program: Program) -> list[tuple[int, str, str]]:
    md = capstone.Cs(capstone.CS_ARCH_ARM, capstone.CS_MODE_ARM)
    return [(i.address, i.mnemonic, i.op_str) for i in md.disasm(program.code, program.base)]


def branch(at: int, target: int, cond: int = 0xE) -> int:
    """B A1 (A8.8.18): cond 1010 imm24, target = at + 8 + imm24 * 4."""
    return cond << 28 | 0x0A000000 | ((target - at - 8) >> 2) & 0xFFFFFF


def error_of(source: str, **kwargs) -> AsmError:
    with pytest.raises(AsmError) as info:
        assemble(source, 0x1000, filename="t.S", **kwargs)
    return info.value


def run_child(code: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=REPO)


# ------------------------------------------------------------------------------------------------
# The keystone 0.9.2 quirks hypemu.asm is built around, measured on keystone itself (in a child)

KS_PROBE = """
import json, sys
from keystone import Ks, KsError, KS_ARCH_ARM, KS_MODE_ARM
request = json.loads(sys.stdin.read())
ks = Ks(KS_ARCH_ARM, KS_MODE_ARM)
if request.get("resolver"):
    ks.sym_resolver = lambda name, value: False
try:
    code, _ = ks.asm(request["source"], request["base"], True)
    print(json.dumps({"code": (code or b"").hex()}))
except KsError as e:
    print(json.dumps({"error": str(e)}))
"""


def keystone_raw(source: str, base: int = 0x1000, resolver: bool = False, timeout: float = 20):
    """Raw keystone in a child: {'code': hex} / {'error': msg} / 'SIGSEGV' / 'hang'."""
    try:
        p = subprocess.run([sys.executable, "-c", KS_PROBE], capture_output=True, text=True,
                           input=json.dumps({"source": source, "base": base, "resolver": resolver}),
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        return "hang"
    return "SIGSEGV" if p.returncode == -11 else json.loads(p.stdout)


class TestKeystoneQuirks:
    """If one of these starts failing, keystone changed: revisit the matching workaround."""

    def test_text_directive_kills_the_process(self):
        assert keystone_raw(".text\nnop") == "SIGSEGV"

    def test_fill_with_an_undefined_count_hangs(self):
        assert keystone_raw(".fill UNDEF, 4, 0", timeout=5) == "hang"

    def test_sections_silently_swallow_code(self):
        assert keystone_raw(".section .text\nmov r0, #1") == {"code": ""}
        assert keystone_raw(".pushsection .foo\nnop") == {"code": ""}

    def test_type_and_size_are_rejected(self):
        assert "error" in keystone_raw(".type f, %function\nf: nop")
        assert "error" in keystone_raw(".size f, .-f")

    def test_hyp_instructions_are_missing(self):
        for source in ("eret", "hvc #0", "smc #0", "msr ELR_hyp, r0", "mrs r0, SPSR_hyp"):
            assert "error" in keystone_raw(source), source

    def test_undefined_symbol_in_an_immediate_gives_empty_output(self):
        assert keystone_raw("nop\nmov r0, #UNDEF\nnop") == {"code": ""}

    def test_label_arithmetic_in_an_immediate_gives_empty_output(self):
        assert keystone_raw("a: nop\nb: nop\nmov r0, #(b - a)") == {"code": ""}

    def test_lower16_of_a_label_encodes_zero(self):
        assert keystone_raw("x: nop\nmovw r0, #:lower16:x") == {"code": "00f020e3000000e3"}

    def test_out_of_range_data_is_dropped_silently(self):
        assert keystone_raw("nop\n.short 0x10000\nnop") == {"code": "00f020e3" * 2}
        assert keystone_raw("nop\n.word 0x100000000\nnop") == {"code": "00f020e3" * 2}

    def test_precedence_is_not_gnu_as(self):
        # GNU as: 1 + (2 << 3) = 17 and (6 & 3) + 1 = 3; keystone: 24 and 4
        assert keystone_raw(".word 1 + 2 << 3\n.word 6 & 3 + 1") == {"code": "18000000" "04000000"}

    def test_unencodable_adr_and_far_branch_are_garbage(self):
        far_adr = keystone_raw("adr r0, x\n.space 0x1001\nx: nop")["code"]
        assert far_adr[:8] == "ffffffe2"                   # 0xE2FFFFFF: not an ADR at all
        assert keystone_raw("b 0x4000000") == {"code": "fefbffea"}   # a branch to 0

    def test_a_symbol_resolver_drops_literal_pool_words(self):
        source = ".set X, 4294901760\nldr r1, =X"          # 0xFFFF0000 written in decimal
        assert keystone_raw(source) == {"code": "04101fe5" "0000ffff"}
        assert keystone_raw(source, resolver=True) == {"code": "04101fe5"}

    def test_alignment_is_absolute_and_a_zero_fill_is_ignored(self):
        assert keystone_raw(".align 5\nx: nop", base=0x1010) == {"code": "00f020e3" * 5}
        assert keystone_raw("nop\n.balign 8, 0\nnop") == {"code": "00f020e3" * 3}

    def test_a_pending_literal_pool_goes_after_everything(self):
        assert keystone_raw("ldr r0, =0x12345678\nnop") == {"code": "00009fe5" "00f020e3" "78563412"}


# ------------------------------------------------------------------------------------------------
# Layout and symbols


def test_labels_get_hand_computed_addresses():
    program = assemble(textwrap.dedent("""\
        start:  nop                 @ 0x8000
                mov r0, #1          @ 0x8004
        middle: b start             @ 0x8008
                .word 0xdeadbeef    @ 0x800c
        end:
        """), 0x8000)
    assert dict(program.symbols) == {"start": 0x8000, "middle": 0x8008, "end": 0x8010}
    assert words(program) == [NOP, 0xE3A00001, branch(0x8008, 0x8000), 0xDEADBEEF]
    assert program.base == 0x8000 and program.end == 0x8010
    assert program.address("middle") == 0x8008
    assert program.globals == frozenset()


def test_globals_are_recorded_and_must_be_defined():
    program = assemble(".global a\n.globl b, c\na: b: nop\nc: nop", 0)
    assert program.globals == {"a", "b", "c"}
    assert error_of(".globl missing\nnop").line == 1


def test_missing_symbol_names_the_file_and_the_labels():
    program = assemble("here: nop", 0, filename="x.S")
    with pytest.raises(KeyError, match=r"x.S: no label 'there' \(labels: here\)"):
        program.address("there")


def test_program_is_immutable_and_picklable():
    program = assemble("a: nop", 0x100)
    with pytest.raises(TypeError):
        program.symbols["a"] = 0          # type: ignore[index]
    assert pickle.loads(pickle.dumps(program)) == program


def test_constants_are_predefined():
    consts = {"TRAMPOLINE_VA": 0xFFFF0000, "PAGE_SHIFT": 12, "MINUS": -4}
    program = assemble("mov r0, #PAGE_SHIFT\n.word TRAMPOLINE_VA, MINUS\nldr r1, =TRAMPOLINE_VA",
                       0x1000, constants=consts)
    # ldr r1 at 0x100c; the pending pool follows it at 0x1010: ldr r1, [pc, #-4]
    assert words(program) == [0xE3A0000C, 0xFFFF0000, 0xFFFFFFFC, 0xE51F1004, 0xFFFF0000]
    assert program.symbols == {}


def test_constants_cannot_be_redefined():
    err = error_of("nop\n.equ PAGE_SHIFT, 13", constants={"PAGE_SHIFT": 12})
    assert err.line == 2 and "predefined" in err.message


@pytest.mark.parametrize("base", [-4, 2, 1 << 32, "0x1000"])
def test_bad_base_is_a_value_error(base):
    with pytest.raises(ValueError):
        assemble("nop", base)


@pytest.mark.parametrize("constants", [{"9x": 1}, {"X": 1 << 32}, {"X": True}, {"__hypemu_x": 1}])
def test_bad_constants_are_a_value_error(constants):
    with pytest.raises(ValueError):
        assemble("nop", 0, constants=constants)


def test_align_5_vector_table():
    program = assemble(textwrap.dedent("""\
        entry:  b vectors
                .align 5
        vectors:
                b .
                b handler
                .align 5
        handler:
                eret
        """), 0x1004)
    # entry 0x1004, padding NOPs up to 0x1020, vectors at 0x1020, handler at the next 32 bytes
    assert dict(program.symbols) == {"entry": 0x1004, "vectors": 0x1020, "handler": 0x1040}
    w = words(program)
    assert w[0] == branch(0x1004, 0x1020)
    assert w[1:7] == [NOP] * 6
    assert w[7:9] == [branch(0x1020, 0x1020), branch(0x1024, 0x1040)]
    assert w[9:15] == [NOP] * 6 and w[15] == 0xE160006E


def test_unaligned_base_for_an_align_is_relative_to_absolute_addresses():
    program = assemble(".align 4\nx: nop", 0x1008)
    assert program.address("x") == 0x1010


# ------------------------------------------------------------------------------------------------
# Literal pools


def literal_target(program: Program, address: int) -> int:
    """Where LDR (literal) A1 (A8.8.64) at `address` loads from."""
    word = words(program)[(address - program.base) // 4]
    assert word & 0x0F7F0000 == 0x051F0000, hex(word)
    imm12 = word & 0xFFF
    return address + 8 + (imm12 if word & 1 << 23 else -imm12)


def word_at(program: Program, address: int) -> int:
    offset = address - program.base
    return int.from_bytes(program.code[offset:offset + 4], "little")


def test_ltorg_places_the_literal_and_the_load_reaches_it():
    program = assemble(textwrap.dedent("""\
        start:  ldr r0, =0x12345678     @ 0x2000
                b after                 @ 0x2004
                .ltorg                  @ pool at 0x2008
        after:  ldr r1, =start          @ 0x200c
                bx lr                   @ 0x2010
        end:                            @ the pending pool lands after this label, at 0x2014
        """), 0x2000)
    assert literal_target(program, 0x2000) == 0x2008
    assert word_at(program, 0x2008) == 0x12345678
    assert words(program)[0] == 0xE59F0000          # ldr r0, [pc, #0]
    assert program.address("after") == 0x200C and program.address("end") == 0x2014
    assert literal_target(program, 0x200C) == 0x2014 and word_at(program, 0x2014) == 0x2000
    assert program.end == 0x2018


def test_a_literal_pool_out_of_reach_is_an_error():
    source = "ldr r0, =0x12345678\n" + ".space 0x1000\n" + "bx lr"
    err = error_of(source)
    assert err.line == 1 and ".ltorg" in err.message


def test_the_kernel_style_fixture():
    consts = {"TRAMPOLINE_VA": 0xFFFF0000, "PAGE_SHIFT": 12, "HTCR_MASK": 0x3F03}
    program = assemble_file(FIXTURES / "hyp_init_kernel_style.S", 0x80001000, constants=consts)
    assert program.filename.endswith("hyp_init_kernel_style.S")
    assert dict(program.symbols) == {"__kvm_hyp_init": 0x80001000, "__do_hyp_init": 0x80001020,
                                     "phase2": 0x80001050, "target": 0x80001068,
                                     "__kvm_hyp_init_end": 0x80001084}
    assert program.globals == {"__kvm_hyp_init", "__do_hyp_init", "__kvm_hyp_init_end"}
    w = words(program)
    assert w[5] == branch(0x80001014, 0x80001020)               # the 0x14 HYP trap entry
    assert [w[i] for i in (0, 1, 6, 7)] == [branch(0x80001000 + 4 * i, 0x80001000 + 4 * i)
                                             for i in (0, 1, 6, 7)]
    assert w[0x4C // 4] == 0xE160006E and w[0x78 // 4] == 0xE160006E      # both erets
    assert w[0x50 // 4] == 0xE12FF302                                     # msr SP_hyp, r2
    assert word_at(program, literal_target(program, 0x80001030)) == 0x3F03
    assert word_at(program, literal_target(program, 0x80001058)) == 0xFFFF0000
    assert ("bfi", "r1, r0, #0, #0xc") in [(m, o) for _, m, o in disasm(program)]


# ------------------------------------------------------------------------------------------------
# Numeric local labels, label arithmetic, data


def test_numeric_local_labels():
    program = assemble(textwrap.dedent("""\
        1:      b 1b            @ 0x0
        1:      b 1b            @ 0x4
                bne 2f          @ 0x8
                b 1f            @ 0xc
        2:      nop             @ 0x10
        1:      b 2b            @ 0x14
        """), 0)
    assert words(program) == [branch(0, 0), branch(4, 4), branch(8, 0x10, cond=1),
                              branch(0xC, 0x14), NOP, branch(0x14, 0x10)]
    assert program.symbols == {}


def test_local_label_errors():
    assert "1b has no definition before it" in error_of("b 1b").message
    err = error_of("nop\nb 3f\nnop")
    assert err.line == 2 and "3f" in err.message


def test_the_location_counter_is_not_a_label():
    # found by test_any_source_gives_a_program_or_an_asm_error: `.:` defined a label past the end
    err = error_of("L0: nop\n.: nop")
    assert err.line == 2 and "location counter" in err.message


def test_label_values_in_immediates_take_a_second_pass():
    program = assemble(textwrap.dedent("""\
        start:  mov r0, #(end - start)        @ 0x400
                movw r1, #:lower16:far
                movt r1, #:upper16:far
                ldr r2, [pc, #(value - . - 8)]
                add r3, r3, #(end - value)
        value:  .word 7                       @ 0x414
        end:
                .set far, 0x12345678 + (end - start)
        """), 0x400)
    assert dict(program.symbols) == {"start": 0x400, "value": 0x414, "end": 0x418}
    # mov r0, #0x18; movw r1, #0x5690; movt r1, #0x1234; ldr r2, [pc, #0] (0x414 - 0x40c - 8);
    # add r3, r3, #4
    assert words(program)[:5] == [0xE3A00018, 0xE3051690, 0xE3411234, 0xE59F2000, 0xE2833004]


def test_set_takes_the_last_definition_above():
    program = assemble(".set X, 1\n.set X, X + 1\nmov r0, #X\n.set X, X * 5\n.word X", 0)
    assert words(program) == [0xE3A00002, 10]


def test_data_directives():
    program = assemble(textwrap.dedent("""\
        a:  .word 1, -1, a
            .short 0x1234, -2
            .hword 5
            .byte 1, 'A', 255
            .ascii "ab@;c"
            .asciz "d"
            .quad 0x1122334455667788
            .space 3, 0xAB
            .fill 2, 2, 0x0102
            .word . - a
        """), 0x100)
    assert program.code == bytes.fromhex(
        "01000000" "ffffffff" "00010000" "3412" "feff" "0500" "0141ff" "6162403b63" "6400"
        "8877665544332211" "ababab" "02010201" "2b000000")


@pytest.mark.parametrize("source, message", [
    (".short 0x10000", "does not fit in 2-byte .short"),
    (".byte 256", "does not fit in 1-byte .byte"),
    (".word 0x100000000", "does not fit in 4-byte .word"),
    (".quad 0x10000000000000000", "does not fit in 8-byte .quad"),
])
def test_data_out_of_range(source, message):
    assert message in error_of(source).message


def test_string_escapes():
    program = assemble(r'.ascii "a\n\t\101\x42\"\\\q", "é"' + "\n" + r'.asciz "z"' + "\n.string \"\"", 0)
    assert program.code == b'a\n\tAB"\\q' + "é".encode() + b"z\0\0"


def test_instruction_after_odd_sized_data_must_be_aligned():
    err = error_of("nop\n.byte 1\nnop")
    assert err.line == 3 and "unaligned" in err.message
    assert words(assemble(".byte 1\n.align 2\nnop", 0))[1] == NOP


def test_far_branch_and_unencodable_adr_are_errors():
    err = error_of("nop\nb 0x4000000")
    assert err.line == 2 and "out of range" in err.message
    err = error_of("adr r0, x\n.space 0x1001\n.align 2\n.space 4\nx: nop")
    assert err.line == 1 and "out of range or not encodable" in err.message


def test_precedence_that_gnu_as_and_keystone_disagree_on_needs_parentheses():
    for source in ("mov r0, #1 << 12 - 1", ".word 1 + 2 << 3", ".equ X, 6 & 3 + 1", "ldr r0, =1 << 4 + 1"):
        assert "add parentheses" in error_of(source).message, source
    assert words(assemble("mov r0, #(1 << 12) - 1\n.word 1 | 2 & 3", 0)) == [0xE3000FFF, 3]


# ------------------------------------------------------------------------------------------------
# ERET, HVC, SMC, banked MSR/MRS: hand-computed words, cross-checked with capstone

SPECIAL = [
    # source, word (ARM ARM B9.3), capstone mnemonic, capstone operands
    ("eret", 0xE160006E, "eret", ""),
    ("eretne", 0x1160006E, "eretne", ""),
    ("hvc #0", 0xE1400070, "hvc", "#0"),
    ("hvc #0x1234", 0xE1412374, "hvc", "#0x1234"),
    ("hvc 0xffff", 0xE14FFF7F, "hvc", "#0xffff"),
    ("hvc #HVC_NR", 0xE1400273, "hvc", "#0x23"),
    ("smc #0", 0xE1600070, "smc", "#0"),
    ("smcne #3", 0x11600073, "smcne", "#3"),
    ("msr ELR_hyp, r0", 0xE12EF300, "msr", "elr_hyp, r0"),
    ("mrs r1, elr_hyp", 0xE10E1300, "mrs", "r1, elr_hyp"),
    ("msr SP_hyp, r2", 0xE12FF302, "msr", "sp_hyp, r2"),
    ("mrs r3, Sp_Hyp", 0xE10F3300, "mrs", "r3, sp_hyp"),
    ("msr SPSR_hyp, r4", 0xE16EF304, "msr", "spsr_hyp, r4"),
    ("mrs r5, SPSR_hyp", 0xE14E5300, "mrs", "r5, spsr_hyp"),
    ("msrgt SPSR_svc, r6", 0xC162F306, "msrgt", "spsr_svc, r6"),
    ("mrs r7, R8_usr", 0xE1007200, "mrs", "r7, r8_usr"),
    ("msr LR_fiq, r9", 0xE12EF209, "msr", "lr_fiq, sb"),       # capstone calls r9 sb
    ("mrs ip, SP_mon", 0xE10DC300, "mrs", "ip, sp_mon"),
]


@pytest.mark.parametrize("source, word, mnemonic, operands", SPECIAL, ids=[s[0] for s in SPECIAL])
def test_special_encodings(source, word, mnemonic, operands):
    program = assemble(source, 0x1000, constants={"HVC_NR": 0x23})
    assert words(program) == [word]
    assert disasm(program) == [(0x1000, mnemonic, operands)]


def test_every_banked_register_round_trips_through_capstone():
    names = list(asm._BANKED)
    assert len(names) == 33          # ARM ARM B9.2.3: 7 usr, 7 fiq, 2 x irq/svc/abt/und/mon/hyp, 7 SPSRs
    source = "\n".join(f"msr {name.upper()}, r3\nmrs r4, {name}" for name in names)
    listing = disasm(assemble(source, 0))
    assert [(m, o) for _, m, o in listing] == [
        pair for name in names for pair in (("msr", f"{name}, r3"), ("mrs", f"r4, {name}"))]


def test_ordinary_msr_mrs_still_go_to_keystone():
    program = assemble("msr cpsr_c, r0\nmrs r0, spsr\nmsr spsr_fsxc, r1", 0)
    assert words(program) == [0xE121F000, 0xE14F0000, 0xE16FF001]


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 0xFFFF))
def test_hvc_immediate_round_trips(imm):
    program = assemble(f"hvc #{imm:#x}", 0)
    md = capstone.Cs(capstone.CS_ARCH_ARM, capstone.CS_MODE_ARM)
    md.detail = True
    (insn,) = md.disasm(program.code, 0)
    assert insn.mnemonic == "hvc" and insn.operands[0].imm == imm
    assert words(program) == [0xE1400070 | (imm >> 4) << 8 | imm & 0xF]


@pytest.mark.parametrize("source, message", [
    ("hvc #0x10000", "out of range 0..0xffff"),
    ("hvc #-1", "out of range"),
    ("hvceq #0", "cannot be conditional"),
    ("smc #16", "out of range 0..0xf"),
    ("eret lr", "no operands"),
    ("mrs pc, ELR_hyp", "UNPREDICTABLE"),
    ("msr ELR_hyp, x7", "not a core register"),
    ("hvc #label\nlabel: nop", "symbols defined above this line"),
])
def test_special_encoding_errors(source, message):
    err = error_of(source)
    assert err.line == 1 and message in err.message


# ------------------------------------------------------------------------------------------------
# Errors: file:line: message


def test_error_attributes_and_format():
    err = error_of("nop\n\n.org 0x100")
    assert (err.file, err.line) == ("t.S", 3)
    assert err.message == "unsupported directive .org"
    assert str(err) == "t.S:3: unsupported directive .org"


@pytest.mark.parametrize("source, line, message", [
    ("nop\n.thumb", 2, "this program is assembled as ARM"),
    (".code 16", 1, "this program is assembled as ARM"),
    ("#include <asm/assembler.h>\nnop", 1, "C preprocessor lines are not supported"),
    ("nop\n  #define X 1", 2, "C preprocessor"),
    ("nop\n.section .notes\n.word 1", 2, "section .notes: no \"a\" flag"),
    ("nop\n.bss\nnop", 3, "instruction in .bss: it holds no data"),
    (".pushsection .bss\n.word 1", 2, ".word in .bss: it holds no data"),
    (".bss\n.space 4, 1", 2, ".space: a non-zero fill in .bss"),
    ("nop\n.popsection", 2, ".popsection without .pushsection"),
    (".data 1", 1, ".data 1: subsections are not supported"),
    ("nop\nnop\nnop\nmov r0, r1,\nnop", 4, "Invalid operand"),
    ("nop\nfrobnicate r0", 2, "Invalid mnemonic"),
    ("tst r0, #-1", 1, "an operand ARMv7-A cannot encode"),
    ("b nowhere", 1, "undefined symbol 'nowhere'"),
    ("nop\nldr r0, =nowhere", 2, "undefined symbol 'nowhere'"),
    ("nop\n.word 4, nowhere", 2, "undefined symbol 'nowhere'"),
    ("mov r0, #nowhere", 1, "undefined symbol 'nowhere'"),
    ("nop\n.fill nowhere, 4, 0", 2, "undefined symbol 'nowhere'"),
    (".equ X, nowhere + 1\nnop", 1, "undefined symbol 'nowhere'"),
    ("a: nop\nnop\na: nop", 3, "label 'a' is already defined at line 1"),
    (".equ a, 1\na: nop", 2, "already defined by .equ"),
    ("r3: nop", 1, "register name"),
    ("__hypemu_x: nop", 1, "reserved"),
    (".align 17", 1, "power of two"),
    (".space 0x2000000", 1, "size out of range"),
    (".macro m\nnop", 1, ".macro without .endm"),
    (".endm", 1, "outside a .macro"),
    (".if 1\nnop", 1, ".if without .endif"),
    (".else", 1, ".else without .if"),
    ("nop\n.word 1 == 1", 2, "only supported in .if"),
    ("nop\n*/ nop", 2, "expected an instruction or a directive"),
    (">> ~", 1, "expected an instruction or a directive"),
    (".ascii -", 1, ".ascii needs string literals"),
    (".asciz \"open", 1, ".asciz needs string literals"),
    ("movw r0, #:lower16:(x", 1, ":lower16:"),
    (".word 09", 1, "bad number '09'"),
    (".word " + "-" * 300 + "1", 1, "longer than 200 tokens"),
    ("nop\nmovss =x, r0", 2, "cannot parse expression"),
])
def test_errors_point_at_the_line(source, line, message):
    err = error_of(source)
    assert err.line == line and message in err.message, str(err)
    assert str(err).startswith(f"t.S:{line}: ")


def test_keystone_message_comes_with_the_source_text():
    err = error_of("nop\nnop\nmov r0, r1,\nnop")
    assert err.message == "keystone: Invalid operand (KS_ERR_ASM_INVALIDOPERAND) in 'mov r0, r1,'"


def test_errors_inside_macros_name_the_invocation_line_and_macro():
    err = error_of(".macro load reg\nldr \\reg, =nowhere\n.endm\nnop\nload r0")
    assert err.line == 5 and "undefined symbol 'nowhere'" in err.message
    assert err.message.endswith("(in macro 'load', line 2)")


def test_errors_inside_rept_name_the_body_line():
    err = error_of("nop\n.rept 2\nnop\nfrobnicate\n.endr")
    assert err.line == 4 and "Invalid mnemonic" in err.message


def test_macro_argument_errors():
    assert "needs argument 'b'" in error_of(".macro m a, b:req\n.endm\nm 1").message
    assert "too many arguments" in error_of(".macro m a\n.endm\nm 1, 2").message
    assert "nested more than" in error_of(".macro m\nm\n.endm\nm").message


def test_non_utf8_file_reports_its_line(tmp_path):
    path = tmp_path / "bad.S"
    path.write_bytes(b"nop\nnop\n.ascii \"\xff\"\n")
    with pytest.raises(AsmError) as info:
        assemble_file(path, 0)
    assert info.value.line == 3 and info.value.file == str(path)


# ------------------------------------------------------------------------------------------------
# What ordinary GNU-as sources contain


def test_kernel_directives_are_accepted():
    source = textwrap.dedent("""\
        .text
        .arm
        .syntax unified
        .arch armv7-a
        .arch_extension virt
        .cpu cortex-a15
        .fpu neon
        .code 32
        .file "x.S"
        .ident "test"
        .section .hyp.idmap.text, "ax"
        .pushsection .text.hot
        .type f, %function
        f: nop
        .size f, . - f
        .popsection
        .pushsection .init.data, "awx"
        .previous
        .section .text
        g: nop
        """)
    assert dict(assemble(source, 0).symbols) == {"g": 0, "f": 4}   # .text first, then .text.hot


def test_comments_strings_and_separators():
    program = assemble(textwrap.dedent("""\
        nop @ comment ; mov r0, #1
        nop // comment
        /* a block
           comment */ mov r0, #2 ; mov r1, #3
        mov r2, #'@'   @ a character constant is not a comment
        .ascii "@;//"
        """), 0)
    assert words(program) == [NOP, NOP, 0xE3A00002, 0xE3A01003, 0xE3A02040, 0x2F2F3B40]


def test_kernel_macros():
    program = assemble(textwrap.dedent("""\
        ENTRY(fn)
            W(b)    fn
        ARM(    mov r0, r1  )
        THUMB(  this is not even ARM    )
        ARM_BE8( setend be  )
        ENDPROC(fn)
        """), 0x40)
    assert dict(program.symbols) == {"fn": 0x40} and program.globals == {"fn"}
    assert words(program) == [branch(0x40, 0x40), 0xE1A00001]


def test_macros_rept_irp():
    program = assemble(textwrap.dedent("""\
        .macro save_mode mode, reg=r2
            mrs \\reg, SP_\\mode
            mrs \\reg, LR_\\mode
        .endm
        .macro nums
            .word \\@
        .endm
            save_mode svc
            save_mode irq, reg=r3
            nums
            nums
        .rept 2
            nop
        .endr
        .irp r, r0, r1
            mov \\r, #0
        .endr
        .irpc c, 12
            .byte \\c
        .endr
        """), 0)
    # mrs r2, SP_svc (R=0, SYSm=0b10011); LR_svc 0b10010; SP_irq 0b10001; LR_irq 0b10000
    assert program.code == b"".join(x.to_bytes(4, "little") for x in [
        0xE1032300, 0xE1022300, 0xE1013300, 0xE1003300, 3, 4, NOP, NOP, 0xE3A00000, 0xE3A01000,
    ]) + b"\x01\x02"


def test_macro_exitm_purgem_and_concatenation():
    program = assemble(textwrap.dedent("""\
        .macro m val
            .ifb \\val
            .exitm
            .endif
            mov r0, #\\val
        .endm
        .macro lbl name
        \\name\\()_end: nop
        .endm
            m
            m 5
            lbl first
        .purgem m
        """), 0)
    assert words(program) == [0xE3A00005, NOP] and dict(program.symbols) == {"first_end": 4}


def test_conditional_assembly():
    source = textwrap.dedent("""\
        .if ABI == 1
            mov r0, #1
        .elseif ABI == 2
            mov r0, #2
        .else
            mov r0, #3
        .endif
        .ifdef ABI
            nop
        .endif
        .ifndef NOPE
            .ifeq ABI - 2
                mov r1, #1
            .endif
        .endif
        .ifc "a", "b"
            bad instruction
        .endif
        """)
    assert words(assemble(source, 0, constants={"ABI": 1})) == [0xE3A00001, NOP]
    assert words(assemble(source, 0, constants={"ABI": 2})) == [0xE3A00002, NOP, 0xE3A01001]
    assert words(assemble(source, 0, constants={"ABI": 7})) == [0xE3A00003, NOP]


_LINES = ["mov r1, #4", "ldr r2, =0x12345678", "ldr r3, =L1", "b L0", "bne 1f", "1: nop", "adr r0, L2",
          "movw r0, #:lower16:L1", "mov r0, #(L2 - L0)", ".word L1, 5", ".short 7", ".byte 1",
          ".align 3", ".ltorg", "eret", "hvc #3", "msr ELR_hyp, r0", "mrs r1, SPSR_hyp", ".ascii \"x\"",
          ".set C, 3 + 4", ".if C > 3", ".endif", ".rept 2", ".endr", ".macro m a", ".endm", "m r0",
          "mcr p15, 4, r0, c12, c0, 0", "ldr r0, [r1, #8]", "push {r0, lr}", "pop {r0, pc}", "bx lr"]
_MUTATIONS = ["", "#", ",", "=", "[", "]", "{", "}", "!", ":lower16:", "(", ")", "@", ";", "\\", "'",
              '"', "1b", "2f", ".", "-", "<<", "0x", "r16", "ELR_hyp", "UNDEF", "09", "*/", "\n"]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(_LINES), min_size=1, max_size=12), st.integers(0, 10_000),
       st.sampled_from(_MUTATIONS), st.integers(0, 3))
def test_any_source_gives_a_program_or_an_asm_error(lines, where, mutation, cut):
    source = "\n".join(["L0: nop", "L1: nop", *lines, "L2: nop"])
    where %= len(source) + 1
    source = source[:where] + mutation + source[where + cut:]
    saved, asm.worker._KS_TIMEOUT = asm.worker._KS_TIMEOUT, 2.0
    try:
        program = assemble(source, 0x1000)
    except AsmError as e:
        assert e.line >= 1 and e.message
    else:
        assert all(program.base <= a <= program.end for a in program.symbols.values())
    finally:
        asm.worker._KS_TIMEOUT = saved


# ------------------------------------------------------------------------------------------------
# Never crash, never hang: checked from a child process, so that a regression cannot take pytest down


def test_crashing_and_hanging_inputs_become_errors_in_a_child():
    result = run_child("""
        import json, sys
        from hypemu import asm
        out = {}
        for source in ['.text\\nnop', '.section .hyp.idmap.text,"ax"\\nnop', '.section .text\\nnop',
                       '.type f, %function\\nf: nop\\n.size f, . - f', '.pushsection .text\\nnop\\n.popsection',
                       '.fill UNDEF, 4, 0', '.space (. & 3)', 'movss =x, r0',
                       'nop\\nnop\\nstrd.w {r0-r3, pc}, [pc, #-8]']:
            try:
                out[source] = asm.assemble(source, 0x1000, filename='c.S').code.hex()
            except asm.AsmError as e:
                out[source] = str(e)
        out['keystone imported here'] = 'keystone' in sys.modules
        print(json.dumps(out))
    """)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    for source in list(out)[:5]:
        assert out[source] in ("00f020e3", "00f020e3" * 2), source
    assert out[".fill UNDEF, 4, 0"].startswith("c.S:1: undefined symbol 'UNDEF'")
    assert out[".space (. & 3)"].startswith("c.S:1: ")
    assert out["movss =x, r0"].startswith("c.S:1: ")
    assert out["nop\nnop\nstrd.w {r0-r3, pc}, [pc, #-8]"].startswith("c.S:3: keystone")
    assert out["keystone imported here"] is False


def test_a_hanging_keystone_is_killed_and_replaced(monkeypatch):
    monkeypatch.setattr(asm.worker, "_KS_TIMEOUT", 1.0)
    result = asm._WORKER.assemble("movss =x, r0", 0)     # raw keystone: this hangs forever
    assert result.code is None and "did not finish within 1 s" in result.error
    assert assemble("nop", 0).code == NOP.to_bytes(4, "little")


def test_a_hang_does_not_outlive_a_killed_parent():
    """A process killed while keystone hangs leaves no spinning fork behind (it arms an alarm)."""
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        from hypemu import asm
        asm.worker._KS_TIMEOUT = 1.0
        print(asm._WORKER._ensure().pid, flush=True)
        asm._WORKER.assemble("movss =x, r0", 0)
        """)], stdout=subprocess.PIPE, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    server = int(child.stdout.readline())
    time.sleep(0.5)
    child.kill()
    child.wait()
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline and _alive_in_group(server):
        time.sleep(0.2)
    assert not _alive_in_group(server)


def _alive_in_group(group: int) -> bool:
    """Whether a live (not zombie) process of process group `group` exists."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == group:
            return True
    return False


def test_a_crash_kills_only_its_fork():
    result = asm._WORKER.assemble(".text\nnop", 0)       # raw keystone: SIGSEGV
    assert result.code is None and result.error == "keystone crashed (SIGSEGV)"
    assert assemble("nop", 0).code == NOP.to_bytes(4, "little")


def test_every_request_meets_a_pristine_keystone():
    """Keystone's state leaks between runs in one process: this statement is an ordinary error in a
    fresh process and can segfault after a few other runs (which one it is also depends on the
    memory layout). Each run is a fresh fork, so the answer never depends on what ran before."""
    source = "nop\nnop\nstrd.w {r0-r3, pc}, [pc, #-8]"
    first = asm._WORKER.assemble(source, 0x1000)
    assert first.code is None
    for _ in range(5):
        assert asm._WORKER.assemble("mov r0, #1\nldr r1, =2", 0x1000).code is not None
        assert asm._WORKER.assemble(source, 0x1000) == first


# ------------------------------------------------------------------------------------------------
# The cache


SOURCE = "start: mov r0, #1\nldr r1, =0x12345678\nb start\n"


def test_memory_cache_hit(private_cache):
    first = assemble(SOURCE, 0x1000, filename="one.S")
    assert cache_info()["misses"] == 1 and cache_info()["hits"] == 0
    second = assemble(SOURCE, 0x1000, filename="two.S")
    assert cache_info()["memory_hits"] == 1 and cache_info()["hits"] == 1
    assert (second.code, second.symbols, second.filename) == (first.code, first.symbols, "two.S")
    assemble(SOURCE, 0x2000)
    assemble(SOURCE, 0x1000, constants={"X": 1})
    assert cache_info()["misses"] == 3


def test_disk_cache_hit_after_the_memory_cache_is_cleared(private_cache):
    first = assemble(SOURCE, 0x1000)
    assert len(list(private_cache.glob("*.json"))) == 1
    clear_memory_cache()
    again = assemble(SOURCE, 0x1000)
    assert cache_info() == {"hits": 1, "memory_hits": 0, "disk_hits": 1, "misses": 0, "entries": 1}
    assert again == first


def test_corrupt_disk_entries_are_rebuilt(private_cache):
    good = assemble(SOURCE, 0x1000)
    (entry,) = private_cache.glob("*.json")
    for garbage in ("not json", json.dumps({"key": entry.stem, "code": "zz"}), "{}", "[]"):
        entry.write_text(garbage)
        clear_memory_cache()
        assert assemble(SOURCE, 0x1000) == good
        assert cache_info()["misses"] == 1
        assert json.loads(entry.read_text())["key"] == entry.stem      # rewritten


def test_an_unwritable_cache_directory_is_skipped(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("HYPEMU_CACHE_DIR", str(blocker / "cache"))
    assert assemble("nop", 0).code == NOP.to_bytes(4, "little")


def test_errors_are_not_cached():
    for _ in range(2):
        assert error_of("nop\n.org 4").line == 2
    assert cache_info()["entries"] == 0
