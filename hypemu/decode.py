"""A32 decoding of the privileged instructions that the HYP model emulates.

Why: Unicorn runs the guest in User mode, so every privileged instruction arrives at the invalid-
instruction hook as a bare 32-bit word; this module turns the word into a small record the CPU model
acts on. Encodings: ARM ARM (ARMv7-A/R) A8.8 and B9.3 (MRS/MSR banked, ERET, HVC, CPS, MCR/MRC,
MCRR/MRRC). ARM state only: Thumb is not modelled.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

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


def _ror(value: int, amount: int) -> int:
    amount &= 31
    return ((value >> amount) | (value << (32 - amount))) & 0xFFFFFFFF


@functools.lru_cache(maxsize=1024)
def decode(word: int) -> Insn | None:
    """The privileged instruction ``word`` encodes, or None for anything hypemu does not emulate
    (which the CPU model treats as an undefined instruction). Memoized: pure, and a guest traps on
    the same few words again and again."""
    cond = word >> 28
    if cond == 0xF:
        return _decode_unconditional(word)
    if (word & 0x0FFFFFFF) == 0x0160006E:
        return Insn("eret", cond)
    if (word & 0x0FF000F0) == 0x01400070:
        return Insn("hvc", cond, imm=((word >> 8) & 0xFFF) << 4 | (word & 0xF))
    if (word & 0x0FFFFFF0) == 0x01600070:
        return Insn("smc", cond, imm=word & 0xF)
    if (word & 0x0F000F10) == 0x0E000F10:           # MCR/MRC, coproc 15
        op = "mrc" if word & (1 << 20) else "mcr"
        return Insn(op, cond, opc1=(word >> 21) & 7, crn=(word >> 16) & 0xF, rt=(word >> 12) & 0xF,
                    opc2=(word >> 5) & 7, crm=word & 0xF)
    if (word & 0x0FE00F00) == 0x0C400F00:           # MCRR/MRRC, coproc 15
        op = "mrrc" if word & (1 << 20) else "mcrr"
        return Insn(op, cond, rt2=(word >> 16) & 0xF, rt=(word >> 12) & 0xF,
                    opc1=(word >> 4) & 0xF, crm=word & 0xF)
    if (word & 0x0FFFFFFF) in (0x0320F001, 0x0320F002):   # YIELD (1), WFE (2): hints
        return Insn("hint", cond, imm=word & 0xF)
    return _decode_status_access(word, cond)


def _decode_status_access(word: int, cond: int) -> Insn | None:
    """MRS/MSR (plain and banked, ARM ARM B9.3.9-B9.3.12) and exception-returning data processing."""
    r = (word >> 22) & 1
    sysm = ((word >> 8) & 1) << 4 | (word >> 16) & 0xF
    if (word & 0x0FBF0FFF) == 0x010F0000:
        return Insn("mrs", cond, r=r, rt=(word >> 12) & 0xF)
    if (word & 0x0FB00EFF) == 0x01000200:
        return Insn("mrs_banked", cond, r=r, sysm=sysm, rt=(word >> 12) & 0xF)
    if (word & 0x0FB0FFF0) == 0x0120F000:
        return Insn("msr", cond, r=r, mask=(word >> 16) & 0xF, rt=word & 0xF)
    if (word & 0x0FB0FEF0) == 0x0120F200:
        return Insn("msr_banked", cond, r=r, sysm=sysm, rt=word & 0xF)
    if (word & 0x0FB0F000) == 0x0320F000 and (word >> 16) & 0xF:
        imm = _ror(word & 0xFF, 2 * ((word >> 8) & 0xF))
        return Insn("msr_imm", cond, r=r, mask=(word >> 16) & 0xF, imm=imm)
    if (word & 0x0C10F000) == 0x0010F000:           # SUBS/MOVS/... PC, ... (exception return)
        return Insn("exception_return", cond)
    return None


def _decode_unconditional(word: int) -> Insn | None:
    if (word & 0xFFF1FE20) == 0xF1000000:           # CPS
        return Insn("cps", COND_AL, imm=word & 0x1F, mask=(word >> 18) & 3,
                    r=(word >> 17) & 1, opc2=(word >> 6) & 7)
    return None


def is_wfi(word: int) -> bool:
    """WFI (A1): it ends Unicorn's emu_start quietly instead of trapping."""
    return (word & 0x0FFFFFFF) == 0x0320F003


def needs_patch(word: int) -> bool:
    """True for the privileged instructions that do *not* trap in Unicorn's User mode: MRS Rd, CPSR
    (reads the User mode), MSR CPSR_<fields> (mode/mask writes silently ignored) and CPS; and the
    hints YIELD and WFE, which Unicorn reports to the invalid-instruction hook with the PC already
    past them (so the model would decode the *next* word). The loader replaces them by a trap marker
    so the model sees them where they stand (see cpu.Core.load_code)."""
    insn = decode(word)
    if insn is None:
        return False
    return insn.op in ("cps", "hint") or (insn.op in ("mrs", "msr", "msr_imm") and insn.r == 0)


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
