"""Checks after assembly: instruction alignment, and each PC-relative instruction decoded and
compared with what the source says (keystone encodes an out-of-range branch, an unencodable ADR or
an unreachable literal as garbage, without an error)."""

from __future__ import annotations

from typing import Any

from .expr import _ExprError, _Lookup, _NeedsAddresses, _Undefined, _evaluate
from .program import AsmError
from .unit import _MAX_BYTES, _Stmt, _Unit


class _Checks:
    """The checks of `_Builder` (a mixin: the state lives there)."""

    unit: _Unit
    base: int
    filename: str

    def _error(self, stmt: _Stmt, message: str) -> AsmError:
        return AsmError(self.filename, stmt.line, f"{message}{stmt.where}")

    def _check(self, code: bytes, addresses: dict[str, int]) -> None:
        if len(code) > _MAX_BYTES or self.base + len(code) > 1 << 32:
            raise AsmError(self.filename, self.unit.stmts[-1].line if self.unit.stmts else 0,
                           f"program of {len(code)} bytes at {self.base:#x} is too large")
        for stmt in self.unit.stmts:
            for check in stmt.checks:
                address = addresses[stmt.label or ""]
                if check[0] == "aligned" and address % (2 if self.unit.thumb else 4):
                    raise self._error(stmt, f"instruction at unaligned address {address:#x} (put "
                                            f".align 2 before {stmt.source!r})")
                if check[0] != "aligned":
                    self._check_pc_relative(stmt, stmt.pos + 1, check, code, addresses)

    def _check_pc_relative(self, stmt: _Stmt, pos: int, check: tuple[Any, ...], code: bytes,
                           addresses: dict[str, int]) -> None:
        """Decode keystone's encoding and compare where it points with what the source says."""
        address = addresses[stmt.label or ""]
        if self.unit.thumb:
            target = _thumb_pc_relative_target(code, address - self.base, address)
        else:
            target = _pc_relative_target(_word_at(code, address - self.base), address)
        if target is None and check[0] == "literal":
            raise self._error(stmt, f"keystone did not encode {stmt.source!r} as a PC-relative load")
        try:
            lookup = _Lookup(self.unit.equs, self.unit.labels, addresses, pos, stmt.label)
            expected: int | None = _evaluate(check[1], lookup) & 0xFFFFFFFF
        except (_Undefined, _ExprError, _NeedsAddresses, RecursionError):
            expected = None       # keystone resolved something this module cannot: trust it
        if check[0] == "target":
            if target is None or expected is not None and target != expected:
                got = "something else" if target is None else f"{target:#x}"
                shown = "the target" if expected is None else f"target {expected:#x}"
                raise self._error(stmt, f"{shown} is out of range or not encodable in "
                                        f"{stmt.source!r} (keystone encoded {got})")
            return
        assert target is not None           # a literal load without a target raised above
        loaded = _word_at(code, target - self.base)
        if loaded is None or expected is not None and loaded != expected:
            held = "nothing" if loaded is None else f"{loaded:#x}"
            raise self._error(stmt, f"the literal of {stmt.source!r} is not where the load reads "
                                    f"({target:#x} holds {held}): the pool is probably more than "
                                    "4 KiB away; add a .ltorg closer to the load")


def _word_at(code: bytes, offset: int) -> int | None:
    return int.from_bytes(code[offset:offset + 4], "little") if 0 <= offset <= len(code) - 4 else None


def _expand_imm12(imm12: int) -> int:
    """ARMExpandImm (A5.2.4): an 8-bit value rotated right by twice the top four bits."""
    value, rotation = imm12 & 0xFF, (imm12 >> 8) * 2
    return (value >> rotation | value << (32 - rotation)) & 0xFFFFFFFF if rotation else value


def _pc_relative_target(word: int | None, address: int) -> int | None:
    """The address a PC-relative ARM instruction at `address` refers to; None for other encodings.

    B/BL A1 (A8.8.18, A8.8.25), ADR A1/A2 (A8.8.12), LDR/STR/LDRB/STRB immediate with Rn = PC
    (A8.8.64...), LDRH/LDRSH/LDRSB/LDRD/STRH/STRD immediate with Rn = PC (A8.8.80...)."""
    if word is None:
        return None
    pc = address + 8
    if word >> 28 != 0xF and word & 0x0E000000 == 0x0A000000:
        offset = (word & 0xFFFFFF) << 2
        offset -= (offset & 1 << 25) << 1
    elif word & 0x0FFF0000 in (0x028F0000, 0x024F0000):
        offset = _expand_imm12(word & 0xFFF) * (1 if word & 1 << 23 else -1)
    elif word & 0x0F2F0000 == 0x050F0000:
        offset = (word & 0xFFF) * (1 if word & 1 << 23 else -1)
    elif word & 0x0F6F0090 == 0x014F0090:
        offset = ((word >> 4) & 0xF0 | word & 0xF) * (1 if word & 1 << 23 else -1)
    else:
        return None
    return (pc + offset) & 0xFFFFFFFF


def _sign(value: int, bits: int) -> int:
    return value - (1 << bits) if value & 1 << (bits - 1) else value


def _thumb_pc_relative_target(code: bytes, offset: int, address: int) -> int | None:
    """The address a PC-relative Thumb instruction at `address` refers to; None for other
    encodings. PC reads as the instruction's address + 4; ADR and literal loads use Align(PC, 4).
    B T1-T4 and BL T1 (A8.8.18, A8.8.25), CBZ/CBNZ (A8.8.29), ADR T1-T3 (A8.8.12), LDR literal T1/T2
    and LDRB/LDRH/LDRSB/LDRSH literal (A8.8.64 ...)."""
    if not 0 <= offset <= len(code) - 2:
        return None
    hw1 = int.from_bytes(code[offset:offset + 2], "little")
    pc, aligned = address + 4, (address + 4) & ~3
    if hw1 >> 11 < 0b11101:                                   # a 16-bit instruction
        if hw1 >> 12 == 0b1101 and (hw1 >> 9) & 0b111 != 0b111:
            return (pc + _sign((hw1 & 0xFF) << 1, 9)) & 0xFFFFFFFF
        if hw1 >> 11 == 0b11100:
            return (pc + _sign((hw1 & 0x7FF) << 1, 12)) & 0xFFFFFFFF
        if hw1 & 0xF500 == 0xB100:
            return pc + ((hw1 >> 9 & 1) << 6 | (hw1 >> 3 & 0x1F) << 1)
        if hw1 >> 11 in (0b10100, 0b01001):                   # ADR T1, LDR literal T1
            return aligned + (hw1 & 0xFF) * 4
        return None
    if offset > len(code) - 4:
        return None
    hw2 = int.from_bytes(code[offset + 2:offset + 4], "little")
    if hw1 >> 11 == 0b11110 and hw2 & 0x8000:                 # branches
        s, j1, j2 = hw1 >> 10 & 1, hw2 >> 13 & 1, hw2 >> 11 & 1
        kind = hw2 & 0xD000
        if kind == 0x8000 and (hw1 >> 7) & 0b111 != 0b111:   # B T3 (conditional)
            imm = s << 20 | j2 << 19 | j1 << 18 | (hw1 & 0x3F) << 12 | (hw2 & 0x7FF) << 1
            return (pc + _sign(imm, 21)) & 0xFFFFFFFF
        if kind in (0x9000, 0xD000):                          # B T4, BL T1
            i1, i2 = 1 - (j1 ^ s), 1 - (j2 ^ s)
            imm = s << 24 | i1 << 23 | i2 << 22 | (hw1 & 0x3FF) << 12 | (hw2 & 0x7FF) << 1
            return (pc + _sign(imm, 25)) & 0xFFFFFFFF
        return None
    imm12 = (hw1 >> 10 & 1) << 11 | (hw2 >> 12 & 0b111) << 8 | hw2 & 0xFF
    if hw1 & 0xFBFF == 0xF20F:                                # ADR T3 (ADDW Rd, PC)
        return aligned + imm12
    if hw1 & 0xFBFF == 0xF2AF:                                # ADR T2 (SUBW Rd, PC)
        return (aligned - imm12) & 0xFFFFFFFF
    if hw1 & 0xFE1F == 0xF81F:                                # LDR{,B,H,SB,SH} literal
        return (aligned + (hw2 & 0xFFF) * (1 if hw1 & 1 << 7 else -1)) & 0xFFFFFFFF
    return None
