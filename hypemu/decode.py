"""A32 and T32 decoding of the instructions the HYP model emulates: declarative pattern tables.

Why: Unicorn runs the guest in User mode, so every privileged instruction arrives at the invalid-
instruction hook as a bare 32-bit word; this module turns the word into a small record the CPU model
acts on. In the manner of QEMU's decodetree, each row of ``PATTERNS`` is the encoding diagram of the
ARM ARM written out (``0``/``1`` fixed bits, ``.`` any), with the named fields it extracts; the first
row that matches wins, and a row with no operation marks encodings that are deliberately not
emulated. ``cpu.insns`` maps each operation to its semantics. Encodings: ARM ARM (ARMv7-A/R) A8.8
and B9.3 (MRS/MSR banked, ERET, HVC, CPS, MCR/MRC, MCRR/MRRC).

Thumb state has two more tables, ``T32_PATTERNS`` (a 32-bit instruction as ``hw1 << 16 | hw2``,
the first halfword in the high bits, as the ARM ARM draws it) and ``T16_PATTERNS``; their rows
decode to the same operations and fields, so one handler serves both instruction sets. A T32
instruction has no condition field: inside an IT block its condition is ITSTATE's (the executor's
business, ``thumb_condition``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, Iterator, Optional, Union

COND_AL = 0xE


@dataclass(frozen=True)
class Insn:
    """A decoded privileged instruction. Unused fields stay 0."""

    op: str
    cond: int = COND_AL
    opc1: int = 0
    crn: int = 0
    crm: int = 0
    opc2: int = 0
    rt: int = 0
    rt2: int = 0
    imm: int = 0
    r: int = 0        # MRS/MSR: 1 = SPSR, 0 = CPSR
    mask: int = 0     # MSR field mask (c, x, s, f = bits 0..3)
    sysm: int = 0     # banked-register selector
    size: int = 4     # bytes: 2 for a 16-bit Thumb instruction


def _ror(value: int, amount: int) -> int:
    amount &= 31
    return ((value >> amount) | (value << (32 - amount))) & 0xFFFFFFFF


Field = Union[tuple[tuple[int, int], ...], Callable[[int], int]]
"""A field: (lsb, width) segments concatenated most significant first, or a function of the word."""


def _bits(*segments: tuple[int, int]) -> Field:
    return segments


# Field definitions (decodetree's %fields)
RT = _bits((12, 4))
RT_LO = _bits((0, 4))
RT2 = _bits((16, 4))
OPC1_MCR = _bits((21, 3))
OPC1_MCRR = _bits((4, 4))
CRN = _bits((16, 4))
CRM = _bits((0, 4))
OPC2 = _bits((5, 3))
R = _bits((22, 1))
MSR_MASK = _bits((16, 4))
SYSM = _bits((8, 1), (16, 4))              # SYSm = m:m1 (B9.3.9)
HVC_IMM16 = _bits((8, 12), (0, 4))
SMC_IMM4 = _bits((0, 4))
HINT = _bits((0, 4))
CPS_IMOD = _bits((18, 2))
CPS_M = _bits((17, 1))
CPS_AIF = _bits((6, 3))
CPS_MODE = _bits((0, 5))


def _modified_immediate(word: int) -> int:
    """ARMExpandImm: imm8 rotated right by twice rotate (A5.2.4)."""
    return _ror(word & 0xFF, 2 * ((word >> 8) & 0xF))


@dataclass(frozen=True)
class Pattern:
    """One encoding: its diagram, the operation it decodes to (None: not emulated) and its fields."""

    op: Optional[str]
    diagram: str
    fields: tuple[tuple[str, Field], ...] = ()

    @property
    def mask_value(self) -> tuple[int, int]:
        bits = self.diagram.replace(" ", "")
        if len(bits) not in (16, 32):
            raise ValueError(f"pattern {self.op}: {len(bits)} bits, not 16 or 32")
        mask = int("".join("1" if b in "01" else "0" for b in bits), 2)
        value = int("".join(b if b in "01" else "0" for b in bits), 2)
        return mask, value


def _p(op: Optional[str], diagram: str, **fields: Field) -> Pattern:
    return Pattern(op, diagram, tuple(fields.items()))


# Conditional rows ("cccc") never match the unconditional space (cond = 0b1111).
PATTERNS: tuple[Pattern, ...] = (
    _p("cps", "1111 0001 0000 ...0 0000 000. ..0. ....", mask=CPS_IMOD, r=CPS_M, opc2=CPS_AIF,
       imm=CPS_MODE),
    _p("eret", "cccc 0001 0110 0000 0000 0000 0110 1110"),
    _p("hvc", "cccc 0001 0100 .... .... .... 0111 ....", imm=HVC_IMM16),
    _p("smc", "cccc 0001 0110 0000 0000 0000 0111 ....", imm=SMC_IMM4),
    _p("mcr", "cccc 1110 ...0 .... .... 1111 ...1 ....", opc1=OPC1_MCR, crn=CRN, rt=RT, opc2=OPC2,
       crm=CRM),
    _p("mrc", "cccc 1110 ...1 .... .... 1111 ...1 ....", opc1=OPC1_MCR, crn=CRN, rt=RT, opc2=OPC2,
       crm=CRM),
    _p("mcrr", "cccc 1100 0100 .... .... 1111 .... ....", rt2=RT2, rt=RT, opc1=OPC1_MCRR, crm=CRM),
    _p("mrrc", "cccc 1100 0101 .... .... 1111 .... ....", rt2=RT2, rt=RT, opc1=OPC1_MCRR, crm=CRM),
    _p("hint", "cccc 0011 0010 0000 1111 0000 0000 0001", imm=HINT),   # YIELD
    _p("hint", "cccc 0011 0010 0000 1111 0000 0000 0010", imm=HINT),   # WFE
    _p("mrs", "cccc 0001 0.00 1111 .... 0000 0000 0000", r=R, rt=RT),
    _p("mrs_banked", "cccc 0001 0.00 .... .... 001. 0000 0000", r=R, sysm=SYSM, rt=RT),
    _p("msr", "cccc 0001 0.10 .... 1111 0000 0000 ....", r=R, mask=MSR_MASK, rt=RT_LO),
    _p("msr_banked", "cccc 0001 0.10 .... 1111 001. 0000 ....", r=R, sysm=SYSM, rt=RT_LO),
    _p(None, "cccc 0011 0.10 0000 1111 .... .... ...."),   # other hints (NOP, WFI, SEV ...)
    _p("msr_imm", "cccc 0011 0.10 .... 1111 .... .... ....", r=R, mask=MSR_MASK,
       imm=_modified_immediate),
    _p("exception_return", "cccc 00.. ...1 .... 1111 .... .... ...."),  # SUBS/MOVS PC, ...
)

# T32 fields (ARM ARM A6.3; the coprocessor rows are the A32 layout with cond = 0b1110)
T_R = _bits((20, 1))
T_RD = _bits((8, 4))
T_RN = _bits((16, 4))
T_MSR_MASK = _bits((8, 4))
T_SYSM_MRS = _bits((4, 1), (16, 4))        # MRS (banked): SYSm = m:m1, m1 = hw1[3:0] (B9.3.9)
T_SYSM_MSR = _bits((4, 1), (8, 4))         # MSR (banked): m1 = hw2[11:8] (B9.3.10)
T_HVC_IMM16 = _bits((16, 4), (0, 12))      # imm4:imm12
T_SMC_IMM4 = _bits((16, 4))
T_CPS_IMOD = _bits((9, 2))
T_CPS_M = _bits((8, 1))
T_CPS_AIF = _bits((5, 3))
T_IMM8 = _bits((0, 8))
# T16 CPS (T1): im = 1 disables (imod 0b11), im = 0 enables (imod 0b10); A I F in bits[2:0]
T16_CPS_IMOD: Field = lambda hw: 0b10 | (hw >> 4) & 1
T16_CPS_AIF = _bits((0, 3))

T32_PATTERNS: tuple[Pattern, ...] = (
    _p("mcr", "1110 1110 ...0 .... .... 1111 ...1 ....", opc1=OPC1_MCR, crn=CRN, rt=RT, opc2=OPC2,
       crm=CRM),
    _p("mrc", "1110 1110 ...1 .... .... 1111 ...1 ....", opc1=OPC1_MCR, crn=CRN, rt=RT, opc2=OPC2,
       crm=CRM),
    _p("mcrr", "1110 1100 0100 .... .... 1111 .... ....", rt2=RT2, rt=RT, opc1=OPC1_MCRR, crm=CRM),
    _p("mrrc", "1110 1100 0101 .... .... 1111 .... ....", rt2=RT2, rt=RT, opc1=OPC1_MCRR, crm=CRM),
    _p("hvc", "1111 0111 1110 .... 1000 .... .... ....", imm=T_HVC_IMM16),     # B9.3.4 T1
    _p("smc", "1111 0111 1111 .... 1000 0000 0000 0000", imm=T_SMC_IMM4),      # B9.3.14 T1
    _p("eret", "1111 0011 1101 1110 1000 1111 0000 0000"),                    # B9.3.3 T1
    _p("exception_return", "1111 0011 1101 1110 1000 1111 .... ....", imm=T_IMM8),  # SUBS PC, LR
    _p("mrs", "1111 0011 111. 1111 1000 .... 0000 0000", r=T_R, rt=T_RD),
    _p("mrs_banked", "1111 0011 111. .... 1000 .... 001. 0000", r=T_R, sysm=T_SYSM_MRS, rt=T_RD),
    _p("msr", "1111 0011 100. .... 1000 .... 0000 0000", r=T_R, rt=T_RN, mask=T_MSR_MASK),
    _p("msr_banked", "1111 0011 100. .... 1000 .... 001. 0000", r=T_R, sysm=T_SYSM_MSR,
       rt=T_RN),
    _p("hint", "1111 0011 1010 1111 1000 0000 0000 0001", imm=HINT),   # YIELD.W
    _p("hint", "1111 0011 1010 1111 1000 0000 0000 0010", imm=HINT),   # WFE.W
    _p(None, "1111 0011 1010 1111 1000 0000 .... ...."),              # NOP.W, WFI.W, SEV.W, DBG
    _p("cps", "1111 0011 1010 1111 1000 0... .... ....", mask=T_CPS_IMOD, r=T_CPS_M,
       opc2=T_CPS_AIF, imm=CPS_MODE),                                  # B9.3.2 T2
)

T16_PATTERNS: tuple[Pattern, ...] = (
    _p("hint", "1011 1111 0001 0000", imm=_bits((4, 4))),   # YIELD
    _p("hint", "1011 1111 0010 0000", imm=_bits((4, 4))),   # WFE
    _p("cps", "1011 0110 011. 0...", mask=T16_CPS_IMOD, opc2=T16_CPS_AIF),   # B9.3.2 T1
)

_COMPILED = tuple((*p.mask_value, p.diagram.startswith("cccc"), p) for p in PATTERNS)
_COMPILED_THUMB = {4: tuple((*p.mask_value, p) for p in T32_PATTERNS),
                   2: tuple((*p.mask_value, p) for p in T16_PATTERNS)}


def _extract(field: Field, word: int) -> int:
    if callable(field):
        return field(word)
    value = 0
    for lsb, width in field:
        value = value << width | (word >> lsb) & ((1 << width) - 1)
    return value


@functools.lru_cache(maxsize=1024)
def decode_insn(word: int) -> Insn | None:
    """The privileged instruction ``word`` encodes, or None for anything hypemu does not emulate
    (which the CPU model treats as an undefined instruction). Memoized: pure, and a guest traps on
    the same few words again and again."""
    cond = word >> 28
    for mask, value, conditional, pattern in _COMPILED:
        if (word & mask) != value or (conditional and cond == 0xF):
            continue
        if pattern.op is None:
            return None
        fields = {name: _extract(f, word) for name, f in pattern.fields}
        return Insn(pattern.op, cond if conditional else COND_AL, **fields)
    return None


@functools.lru_cache(maxsize=1024)
def decode_thumb(value: int, size: int) -> Insn | None:
    """The privileged Thumb instruction ``value`` encodes: a halfword (``size`` 2) or a 32-bit
    instruction as ``hw1 << 16 | hw2`` (``size`` 4); None as for ``decode_insn``. The result's
    condition is AL: the executor takes an IT block's condition from ITSTATE."""
    for mask, expected, pattern in _COMPILED_THUMB[size]:
        if (value & mask) != expected:
            continue
        if pattern.op is None:
            return None
        fields = {name: _extract(f, value) for name, f in pattern.fields}
        return Insn(pattern.op, COND_AL, size=size, **fields)
    return None


def thumb_size(hw1: int) -> int:
    """2 or 4: a halfword whose bits[15:11] are 0b11101, 0b11110 or 0b11111 starts a 32-bit
    instruction (ARM ARM A6.1)."""
    return 4 if (hw1 >> 11) >= 0b11101 else 2


def thumb_stream(code: bytes) -> Iterator[tuple[int, int, int]]:
    """(offset, value, size) of each Thumb instruction of ``code`` from its start, a 32-bit one as
    ``hw1 << 16 | hw2``; a 32-bit instruction cut off by the end is not one."""
    off = 0
    while off + 2 <= len(code):
        first = int.from_bytes(code[off:off + 2], "little")
        size = thumb_size(first)
        if off + size > len(code):
            return
        yield off, first if size == 2 else first << 16 | int.from_bytes(code[off + 2:off + 4],
                                                                        "little"), size
        off += size


BARRIERS = {0xF57FF060: "isb", 0xF57FF040: "dsb", 0xF57FF050: "dmb"}   # by word & BARRIER_MASK
BARRIER_MASK = 0xFFFFFFF0   # any option field
# T32 ISB/DSB/DMB (A8.8.43, A8.8.44, A8.8.54 T1), as hw1 << 16 | hw2, by value & BARRIER_MASK
T32_BARRIERS = {0xF3BF8F60: "isb", 0xF3BF8F40: "dsb", 0xF3BF8F50: "dmb"}


def barrier_kind(word: int, thumb: bool = False) -> Optional[str]:
    """'isb', 'dsb' or 'dmb' for the barrier encodings (any option) of that instruction set
    (Thumb: a 32-bit instruction as ``hw1 << 16 | hw2``), else None."""
    return (T32_BARRIERS if thumb else BARRIERS).get(word & BARRIER_MASK)


def is_wfi(word: int) -> bool:
    """WFI (A1): it ends Unicorn's emu_start quietly instead of trapping."""
    return (word & 0x0FFFFFFF) == 0x0320F003


T16_WFI, T32_WFI = 0xBF30, 0xF3AF8003


def is_thumb_wfi(value: int, size: int) -> bool:
    """WFI (T1, 16-bit) or WFI.W (T2): in Thumb state too it ends emu_start quietly, with the PC
    past it (probed: docs/DESIGN.md section 2b)."""
    return value == (T16_WFI if size == 2 else T32_WFI)


def needs_patch(word: int) -> bool:
    """True for the privileged instructions that do *not* trap in Unicorn's User mode: MRS Rd, CPSR
    (reads the User mode), MSR CPSR_<fields> (mode/mask writes silently ignored) and CPS; and the
    hints YIELD and WFE, which Unicorn reports to the invalid-instruction hook with the PC already
    past them (so the model would decode the *next* word). The loader replaces them by a trap marker
    so the model sees them where they stand (see ``cpu.CpuComplex.load_code``)."""
    insn = decode_insn(word)
    if insn is None:
        return False
    return _patched_op(insn)


def needs_patch_thumb(value: int, size: int) -> bool:
    """``needs_patch`` for a Thumb instruction (``decode_thumb``'s arguments): in Thumb state
    Unicorn does the same with MRS/MSR CPSR, CPS (16- and 32-bit), YIELD and WFE (probed)."""
    insn = decode_thumb(value, size)
    return insn is not None and _patched_op(insn)


def _patched_op(insn: Insn) -> bool:
    return insn.op in ("cps", "hint") or (insn.op in ("mrs", "msr", "msr_imm") and insn.r == 0)


def thumb_condition(itstate: int) -> int:
    """The condition of the current instruction from ITSTATE (IT[7:0]): IT[7:4] inside an IT
    block (IT[3:0] non-zero), else AL (ARM ARM A2.5.2)."""
    return itstate >> 4 if itstate & 0xF else COND_AL


def it_advance(itstate: int) -> int:
    """ITAdvance() (ARM ARM A2.5.2): the ITSTATE of the next instruction."""
    if itstate & 0b111 == 0:
        return 0
    return (itstate & 0xE0) | ((itstate << 1) & 0x1F)


def condition_passed(cond: int, cpsr: int) -> bool:
    """ConditionPassed() for an A32 condition field against the CPSR flags (ARM ARM A8.3)."""
    n, z, c, v = (cpsr >> 31) & 1, (cpsr >> 30) & 1, (cpsr >> 29) & 1, (cpsr >> 28) & 1
    base = cond >> 1
    if base == 0:
        result = z == 1
    elif base == 1:
        result = c == 1
    elif base == 2:
        result = n == 1
    elif base == 3:
        result = v == 1
    elif base == 4:
        result = c == 1 and z == 0
    elif base == 5:
        result = n == v
    elif base == 6:
        result = n == v and z == 0
    else:
        return True
    return result != bool(cond & 1)
