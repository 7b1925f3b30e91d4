"""The disassembly of the instruction behind an event (the trace, hazard reports).

Why a module of its own: it is the only place that imports capstone (ARCHITECTURE.md), and disassembly is
only needed when a person reads the trace, never while the guest runs. The trace itself is
``hypemu.tracer``.
"""

from __future__ import annotations

import functools

from capstone import CS_ARCH_ARM, CS_MODE_ARM, Cs  # type: ignore[import-untyped]


@functools.lru_cache(maxsize=1)
def _disassembler() -> Cs:
    return Cs(CS_ARCH_ARM, CS_MODE_ARM)


@functools.lru_cache(maxsize=4096)
def disassemble(word: int, pc: int = 0) -> str:
    """``mnemonic operands`` of one A32 instruction word (or ``.word 0x...`` if it decodes to none)."""
    for insn in _disassembler().disasm(word.to_bytes(4, "little"), pc):
        return f"{insn.mnemonic} {insn.op_str}".strip()
    return f".word {word:#010x}"
