"""The disassembly of the instruction behind an event (the trace, hazard reports).

Why a module of its own: it is the only place that imports capstone (ARCHITECTURE.md), and disassembly is
only needed when a person reads the trace, never while the guest runs. The trace itself is
``hypemu.tracer``.
"""

from __future__ import annotations

import functools

from capstone import CS_ARCH_ARM, CS_MODE_ARM, CS_MODE_THUMB, Cs  # type: ignore[import-untyped]


@functools.lru_cache(maxsize=2)
def _disassembler(thumb: bool) -> Cs:
    return Cs(CS_ARCH_ARM, CS_MODE_THUMB if thumb else CS_MODE_ARM)


@functools.lru_cache(maxsize=4096)
def disassemble(word: int, pc: int = 0, thumb: bool = False) -> str:
    """``mnemonic operands`` of one A32 instruction word (or ``.word 0x...`` if it decodes to
    none). ``thumb``: a Thumb instruction, as the model holds it: ``hw1 << 16 | hw2`` for a 32-bit
    one, the halfword for a 16-bit one (``.short`` / ``.inst.w`` if it decodes to none)."""
    if thumb:
        halves = (word >> 16, word & 0xFFFF) if word > 0xFFFF else (word,)
        code = b"".join(h.to_bytes(2, "little") for h in halves)
    else:
        code = word.to_bytes(4, "little")
    for insn in _disassembler(thumb).disasm(code, pc):
        if insn.size == len(code):
            return f"{insn.mnemonic} {insn.op_str}".strip()
    if thumb:
        return f".inst.w {word:#010x}" if word > 0xFFFF else f".short {word:#06x}"
    return f".word {word:#010x}"
