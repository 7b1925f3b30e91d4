"""The readable trace: events with the disassembly of the instruction that caused them.

Why a module of its own: it is the only place that imports capstone (ARCHITECTURE.md), and disassembly is
only needed when a person reads the trace, never while the guest runs.
"""

from __future__ import annotations

import functools
from typing import Iterable

from capstone import CS_ARCH_ARM, CS_MODE_ARM, Cs  # type: ignore[import-untyped]

from .events import Event


@functools.lru_cache(maxsize=1)
def _disassembler() -> Cs:
    return Cs(CS_ARCH_ARM, CS_MODE_ARM)


@functools.lru_cache(maxsize=4096)
def disassemble(word: int, pc: int = 0) -> str:
    """``mnemonic operands`` of one A32 instruction word (or ``.word 0x...`` if it decodes to none)."""
    for insn in _disassembler().disasm(word.to_bytes(4, "little"), pc):
        return f"{insn.mnemonic} {insn.op_str}".strip()
    return f".word {word:#010x}"


def format_event(event: Event) -> str:
    return event.format(disassemble(event.insn, event.pc) if event.insn is not None else "")


def lines(events: Iterable[Event]) -> list[str]:
    """One line per event, in order."""
    return [format_event(e) for e in events]
