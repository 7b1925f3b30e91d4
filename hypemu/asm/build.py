"""Building: keystone passes over a preprocessed `_Unit`, label addresses read back from its
output, and the statement keystone failed on located by bisection."""

from __future__ import annotations

import re
from typing import Mapping

from .check import _Checks
from .directives import _DATA_SIZES
from .expr import _IDENT, _ExprError, _Lookup, _NeedsAddresses, _Undefined, _evaluate, _reason
from .preprocess import _Preprocessor
from .program import AsmError, Program, Section, _FrozenMap
from .source import _split_word
from .unit import _GENERATED, _MARK, _Imm, _Stmt, _Unit
from .worker import _WORKER, _KsResult

_SENTINEL = 0x4B534E44            # last word of every keystone request; missing = keystone failed quietly
_NOP = 0xE320F000                 # NOP A1 (A8.8.119): GNU as's code padding for ARMv6K and later
_PLACEHOLDER = 4                  # pass-1 stand-in for an immediate that needs label addresses


_MAX_PASSES = 4                   # Thumb: passes until the label addresses settle


def _build(source: str, base: int, constants: dict[str, int], filename: str,
           thumb: bool = False) -> Program:
    unit = _Preprocessor(filename, constants, thumb).process(source)
    return _Builder(unit, base, filename).build()


class _Builder(_Checks):
    """Runs keystone over a `_Unit` and reads back every label's address.

    After the user's statements come `.ltorg` (where keystone would put a pending pool anyway: at the
    end), one `.word label` per label and a sentinel word; the code is what precedes them. When some
    immediate needs label addresses, a first pass with placeholders finds them and a second pass
    (same sizes: every ARM instruction is 4 bytes) encodes the real values. In Thumb the real value
    can change an instruction's size (16- or 32-bit): passes repeat until the addresses settle."""

    def __init__(self, unit: _Unit, base: int, filename: str):
        self.unit, self.base, self.filename = unit, base, filename
        self.labels = [s.label for s in unit.stmts if s.label]

    def build(self) -> Program:
        texts, needs_addresses = self._render(None)
        first = self._run(texts) if needs_addresses else None
        passes = _MAX_PASSES if self.unit.thumb else 1
        while first is not None:
            texts, _ = self._render(first[1])
            code, addresses = self._run(texts)
            if first[1] == addresses:
                break
            passes -= 1
            if passes == 0:
                raise AsmError(self.filename, self.unit.stmts[-1].line,
                               "internal error: label addresses moved between passes")
            first = (code, addresses)
        else:
            code, addresses = self._run(texts)
        self._check(code, addresses)
        code = self._fill(code, addresses)
        symbols = {name: addresses[name] for name in self.labels if not name.startswith(_GENERATED)}
        sections = tuple(Section(s.name, s.kind, addresses[s.start],
                                 addresses[s.end] - addresses[s.start]) for s in self.unit.sections)
        return Program(code, self.base, _FrozenMap(symbols), frozenset(self.unit.globals),
                       self.filename, self.unit.thumb, sections)

    def _fill(self, code: bytes, addresses: Mapping[str, int]) -> bytes:
        """Padding as GNU as (and a linker, between sections) writes it: keystone fills an alignment
        gap with NOP bytes from wherever it starts (`.byte 1; .balign 8` gives 01 00 f0 20 e3...)
        and ignores a fill of 0. GNU as pads code with zeros up to a word, then NOPs; data with
        zeros."""
        out = bytearray(code)
        gaps = [(a.end, b.start, "zero") for a, b in zip(self.unit.sections, self.unit.sections[1:])]
        for first, second, mode in [*self.unit.fills, *gaps]:
            start, end = addresses[first] - self.base, addresses[second] - self.base
            word = min(end, -(-start // 4) * 4) if mode == "code" else end
            out[start:word] = bytes(word - start)
            out[word:end] = _NOP.to_bytes(4, "little") * ((end - word) // 4)
        return bytes(out)

    def _render(self, addresses: Mapping[str, int] | None) -> tuple[list[str], bool]:
        """Keystone text of every statement; placeholders where label addresses are still unknown."""
        texts, needs = [], False
        for stmt in self.unit.stmts:
            text = stmt.text
            for index, imm in enumerate(stmt.imms):
                lookup = _Lookup(self.unit.equs, self.unit.labels, addresses, imm.pos, imm.dot,
                                 imm.offset)
                try:
                    value = _evaluate(imm.tree, lookup)
                except _NeedsAddresses:
                    value, needs = _PLACEHOLDER, True
                except _Undefined as e:
                    raise self._error(stmt, f"undefined symbol {e.name!r} in {stmt.source!r}") from None
                except (_ExprError, RecursionError) as e:
                    raise self._error(stmt, f"{_reason(e)} in {stmt.source!r}") from None
                text = text.replace(f"{_MARK}{index}{_MARK}", self._format(stmt, imm, value))
            texts.append(text)
        return texts, needs

    def _format(self, stmt: _Stmt, imm: _Imm, value: int) -> str:
        """A value as keystone reads it reliably: hex, range-checked for where it goes."""
        if imm.form in ("lower16", "upper16"):
            return f"#{(value >> (16 if imm.form == 'upper16' else 0)) & 0xFFFF:#x}"
        bits = 8 * int(imm.form) if imm.form.isdigit() else 64 if imm.form == "set" else 32
        if not -(1 << (bits - 1)) <= value < 1 << bits:
            where = f"{bits // 8}-byte {stmt.directive}" if imm.form.isdigit() else "32 bits"
            raise self._error(stmt, f"value {value:#x} does not fit in {where} in {stmt.source!r}")
        if imm.form.isdigit():
            return f"{value & ((1 << bits) - 1):#x}"
        text = f"-{-value:#x}" if value < 0 else f"{value:#x}"
        return f"#{text}" if imm.form == "#" else text

    def _request(self, texts: list[str], prefix: int | None = None) -> str:
        """The user's statements (only the first `prefix` ones, with the labels and .set lines of
        the rest, when bisecting), then .ltorg, one .word per label and the sentinel."""
        head = texts if prefix is None else texts[:prefix]
        later = [] if prefix is None else list(zip(self.unit.stmts[prefix:], texts[prefix:]))
        tail = [f"{s.label}:" if s.label else t for s, t in later if s.label or s.kind == "equ"]
        words = [".ltorg", *(f".word {label}" for label in self.labels), f".word {_SENTINEL:#x}"]
        return "\n".join([*head, *tail, *words])

    def _run(self, texts: list[str]) -> tuple[bytes, dict[str, int]]:
        result = _WORKER.assemble(self._request(texts), self.base, self.unit.thumb)
        trailer = 4 * (len(self.labels) + 1)
        if result.code is None or len(result.code) < trailer or not result.code.endswith(
                _SENTINEL.to_bytes(4, "little")):
            raise self._locate(texts, result)
        code = result.code[:-trailer]
        words = result.code[-trailer:-4]
        addresses = {label: int.from_bytes(words[4 * i:4 * i + 4], "little")
                     for i, label in enumerate(self.labels)}
        return code, addresses

    # -- keystone said no: find the statement

    def _locate(self, texts: list[str], failure: _KsResult) -> AsmError:
        """Bisect for the shortest failing prefix; later labels and .set lines stay defined."""
        def attempt(k: int) -> _KsResult | None:
            result = _WORKER.assemble(self._request(texts, k), self.base, self.unit.thumb)
            ok = result.code is not None and result.code.endswith(_SENTINEL.to_bytes(4, "little"))
            return None if ok else result

        low, high = 0, len(texts)          # attempt(low) succeeds, attempt(high) fails
        if attempt(0) is not None:
            stmt = self.unit.stmts[-1] if self.unit.stmts else _Stmt(1, "", "")
            return self._error(stmt, "keystone failed on this source and the failing statement "
                                     "could not be isolated")
        while high - low > 1:
            middle = (low + high) // 2
            result = attempt(middle)
            if result is None:
                low = middle
            else:
                high, failure = middle, result
        return self._error(self.unit.stmts[high - 1], self._diagnose(self.unit.stmts[high - 1],
                                                                      failure))

    def _diagnose(self, stmt: _Stmt, failure: _KsResult) -> str:
        shown = f"in {stmt.source!r}"
        unknown = self._unknown_names(stmt)
        if unknown and (not failure.error or "SYMBOL" in failure.error):
            return f"undefined symbol {unknown[0]!r} {shown}"
        if "MISSINGFEATURE" in failure.error:
            return f"{failure.error} {shown} (keystone's word for an operand ARMv7-A cannot encode)"
        if failure.error:
            return f"{failure.error} {shown}"
        if stmt.directive in _DATA_SIZES:
            return f"value out of range for {stmt.directive} {shown}"
        return f"keystone produced no code (value out of range or unsupported operand) {shown}"

    def _unknown_names(self, stmt: _Stmt) -> list[str]:
        """Names in a statement that are neither defined nor operand keywords (for messages only)."""
        body = _split_word(stmt.text)[1] if stmt.kind != "label" else ""
        names = re.findall(rf"(?<![\w.$#'])({_IDENT})", re.sub(r'"(?:\\.|[^"\\])*"', "", body))
        return [n for n in names if n not in self.unit.equs and n not in self.unit.labels
                and not _OPERAND_KEYWORD_RE.fullmatch(n.lower())]


_OPERAND_KEYWORD_RE = re.compile(
    r"[rcpdsq]\d+|sb|sl|fp|ip|sp|lr|pc|lsl|lsr|asr|ror|rrx|(?:cpsr|spsr|apsr)(?:_\w+)?|fpscr|fpexc"
    r"|fpsid|mvfr[01]|sy|st|ld|ish|ishst|ishld|nsh|nshst|nshld|osh|oshst|oshld|un|unst|be|le|[aif]+"
    r"|\.")
