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
        for index, stmt in enumerate(self.unit.stmts):
            for check in stmt.checks:
                address = addresses[stmt.label or ""]
                if check[0] == "aligned" and address % 4:
                    raise self._error(stmt, f"instruction at unaligned address {address:#x} (put "
                                            f".align 2 before {stmt.source!r})")
                if check[0] != "aligned":
                    self._check_pc_relative(stmt, index + 1, check, code, addresses)

    def _check_pc_relative(self, stmt: _Stmt, pos: int, check: tuple[Any, ...], code: bytes,
                           addresses: dict[str, int]) -> None:
        """Decode keystone's encoding and compare where it points with what the source says."""
        address = addresses[stmt.label or ""]
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
