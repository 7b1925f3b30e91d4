"""Directives: sections, .global, .equ/.set, alignment, space, data and strings; the ones that
make no difference here are dropped, any other is refused."""

from __future__ import annotations

import re

from typing import TYPE_CHECKING

from .expr import _IDENT_RE, _ExprError, _parse_expr, _symbols_of
from .macros import _BLOCK_END, _ExitMacro
from .parts import _Block
from .source import _split_outside_strings, _unescape
from .unit import _GENERATED, _MARK, _MAX_BYTES, _Imm, _Stmt

if TYPE_CHECKING:               # the state lives in _Preprocessor; mypy checks against it
    from .parts import PreprocessorParts as _Mixin
else:
    _Mixin = object

_MAX_ALIGN_POWER = 16


_DROPPED = {".arm", ".type", ".size", ".arch", ".arch_extension", ".cpu", ".fpu", ".ident", ".file"}
_SECTION_DIRECTIVES = {".text", ".data", ".bss", ".section", ".pushsection", ".popsection",
                       ".previous"}
_THUMB = {".thumb", ".thumb_func", ".force_thumb"}
_DATA_SIZES = {".word": 4, ".long": 4, ".int": 4, ".4byte": 4, ".quad": 8, ".8byte": 8,
               ".short": 2, ".hword": 2, ".2byte": 2, ".byte": 1}
_STRINGS = {".ascii", ".asciz", ".string"}


class _Directives(_Mixin):
    """The directives of `_Preprocessor` (a mixin: the state lives there)."""

    unaligned: bool      # shared with _Instructions (declared here too: mypy infers mixin state late)

    def _directive(self, line: int, name: str, args: str, text: str, where: str) -> None:
        if name in _DROPPED and not (self.thumb and name == ".arm"):
            return
        thumb = name in _THUMB or (name == ".code" and args == "16")
        if thumb != self.thumb and (thumb or name == ".arm" or (name, args) == (".code", "32")):
            wanted = "Thumb" if self.thumb else "ARM"
            raise self._error(line, f"{name}: this program is assembled as {wanted} (kernel.isa); "
                                    "one instruction set per program", where)
        if thumb:
            return
        if name in (".code", ".syntax"):
            if args.lower() not in ("32", "unified"):
                raise self._error(line, f"{name} {args}: only .code 32 and .syntax unified", where)
        elif name in _SECTION_DIRECTIVES:
            self._section_directive(line, name, args, where)
        elif name in (".global", ".globl"):
            self._global(line, name, args, where)
        elif name in (".equ", ".set", ".equiv"):
            self._equ(line, name, args, text, where)
        elif name in (".align", ".balign", ".p2align"):
            self._align(line, name, args, text, where)
        elif name in (".space", ".skip", ".fill"):
            self._space(line, name, args, text, where)
        elif name in _DATA_SIZES or name in _STRINGS:
            self._data(line, name, args, text, where)
        elif name in (".inst", ".inst.n", ".inst.w"):
            self._inst(line, name, args, text, where)
        elif name in (".ltorg", ".pool"):
            self._emit(_Stmt(line, text, ".ltorg", where, "other", directive=name))
        elif name in _BLOCK_END:
            self.blocks.append(_Block(name, line, args, where))
        elif name == ".purgem":
            self.macros.pop(args.lower(), None)
        elif name == ".exitm" and self.depth:
            raise _ExitMacro
        elif name in (".endm", ".endr", ".exitm"):
            raise self._error(line, f"{name} outside a .macro/.rept block", where)
        else:
            raise self._error(line, f"unsupported directive {name}", where)

    def _inst(self, line: int, name: str, args: str, text: str, where: str) -> None:
        """`.inst` (the kernel's opcodes.h writes HVC/ERET with it): an instruction given by its
        encoding. ARM: a word. Thumb: `.inst.n` a halfword, `.inst.w` a 32-bit instruction
        (hw1 = the value's high halfword, stored first), `.inst` either by the value's size.
        Emitted as data keystone stores reliably (it drops `.inst.w`)."""
        if not args:
            raise self._error(line, f"{name} needs a value", where)
        self._end_implicit_it()       # an implicit IT block does not run across it
        for expr in _split_outside_strings(args, ","):
            value = self._constant(line, expr, name, where) & 0xFFFFFFFF
            wide = name == ".inst.w" or (name == ".inst" and value > 0xFFFF)
            if not self.thumb:
                encoded = f".word {value:#010x}"
            elif name == ".inst.n" and value > 0xFFFF:
                raise self._error(line, f".inst.n {value:#x} does not fit in 16 bits", where)
            elif wide:
                encoded = f".short {value >> 16:#06x}, {value & 0xFFFF:#06x}"
            else:
                encoded = f".short {value:#06x}"
            self._emit(_Stmt(line, text, encoded, where))

    def _global(self, line: int, name: str, args: str, where: str) -> None:
        for symbol in (a.strip() for a in args.split(",")):
            if not _IDENT_RE.fullmatch(symbol):
                raise self._error(line, f"{name}: {symbol!r} is not a symbol name", where)
            self.globals.setdefault(symbol, line)

    def _equ(self, line: int, name: str, args: str, text: str, where: str) -> None:
        parts = args.split(",", 1)
        symbol = parts[0].strip()
        if len(parts) != 2 or not _IDENT_RE.fullmatch(symbol) or not parts[1].strip():
            raise self._error(line, f"{name} needs a symbol name and a value: {text!r}", where)
        self._check_new_name(line, symbol, where)
        if symbol in self.predefined:
            raise self._error(line, f"{symbol!r} is a predefined constant; it cannot be redefined",
                              where)
        if symbol in self.labels:
            raise self._error(line, f"{symbol!r} is already a label (line {self.labels[symbol]})",
                              where)
        if name == ".equiv" and symbol in self.equs:
            raise self._error(line, f".equiv: {symbol!r} is already defined", where)
        expr = self._rename_local_refs(line, parts[1].strip(), where)
        try:    # keystone never sees the expression: it hangs on some (`.set x, y, r0`)
            tree = _parse_expr(expr)
        except _ExprError as e:
            raise self._error(line, f"{name} {symbol}: {e}", where) from None
        if "." in _symbols_of(tree):
            raise self._error(line, f"{name} {symbol}: '.' is not supported in a constant", where)
        self._define_equ(symbol, tree, line)
        imm = _Imm(tree, "set", len(self.stmts))
        self._emit(_Stmt(line, text, f".set {symbol}, {_MARK}0{_MARK}", where, "equ", imms=(imm,)))

    def _align(self, line: int, name: str, args: str, text: str, where: str) -> None:
        parts = [p.strip() for p in args.split(",")] if args else ["2"]
        value = self._constant(line, parts[0], name, where)
        size = value if name == ".balign" else 1 << value if 0 <= value <= 63 else -1
        if not 0 < size <= 1 << _MAX_ALIGN_POWER or size & (size - 1):
            raise self._error(line, f"{name} {parts[0]}: the alignment must be a power of two up to "
                                    f"{1 << _MAX_ALIGN_POWER} bytes", where)
        extra = [str(self._constant(line, p, name, where)) if p else "" for p in parts[1:3]]
        self.unaligned = self.unaligned and size < 4
        self._record_align(size)
        fill = "zero" if extra and extra[0] == "0" else "" if extra and extra[0] else (
            "code" if self._section_kind() == "text" else "zero")
        before = self._fill_label(line, where) if fill else ""
        self._emit(_Stmt(line, text, ", ".join([f".balign {size}", *extra]), where, "other",
                         directive=name))
        if fill:       # keystone pads code wrongly (see _Builder._fill) and ignores a fill of 0
            self.fills.append((before, self._fill_label(line, where), fill))

    def _fill_label(self, line: int, where: str) -> str:
        label = f"{_GENERATED}F{len(self.stmts)}"
        self.labels[label] = line
        self._emit(_Stmt(line, "", f"{label}:", where, "label", label))
        return label

    def _space(self, line: int, name: str, args: str, text: str, where: str) -> None:
        values = [self._constant(line, p.strip(), name, where) for p in args.split(",")]
        count, size = values[0], values[1] if name == ".fill" and len(values) > 1 else 1
        fill = values[-1] if len(values) > (2 if name == ".fill" else 1) else 0
        if fill and self._section_kind() == "bss":
            raise self._error(line, f"{name}: a non-zero fill in {self.section} (it holds no data)",
                              where)
        if len(values) > (3 if name == ".fill" else 2):
            raise self._error(line, f"{name}: too many arguments", where)
        if count < 0 or not 0 <= size <= 8 or count * size > _MAX_BYTES:
            raise self._error(line, f"{name} {args}: size out of range (0..{_MAX_BYTES} bytes)", where)
        self.unaligned = self.unaligned or (count * size) % 4 != 0
        self._emit(_Stmt(line, text, f"{name} {', '.join(map(str, values))}", where, "data",
                         directive=name))

    def _data(self, line: int, name: str, args: str, text: str, where: str) -> None:
        """Numbers are evaluated here: keystone drops an out-of-range value silently (`.short
        0x10000`) and hangs on some (`.quad 0x10000000000000000`)."""
        if not args:
            raise self._error(line, f"{name} needs a value", where)
        if self._section_kind() == "bss":
            raise self._error(line, f"{name} in {self.section}: it holds no data (use .space)", where)
        if name in _STRINGS or _DATA_SIZES[name] % 4:
            self.unaligned = True
        if name in _STRINGS:    # keystone hangs on some malformed ones ('.ascii ,'): bytes from here
            data = self._strings(line, name, args, where)
            if data:
                self._emit(_Stmt(line, text, f".byte {', '.join(map(str, data))}", where, "data",
                                 directive=name))
            return
        size, trees = _DATA_SIZES[name], []
        for value in _split_outside_strings(self._rename_local_refs(line, args, where), ","):
            try:
                trees.append(_parse_expr(value))
            except _ExprError as e:
                raise self._error(line, f"{name}: {e}", where) from None
        anchor = self._anchor(line, text, where, (), trees)
        imms = tuple(_Imm(t, str(size), len(self.stmts), anchor, i * size) for i, t in enumerate(trees))
        marks = ", ".join(f"{_MARK}{i}{_MARK}" for i in range(len(imms)))
        self._emit(_Stmt(line, text, f"{name} {marks}", where, "data", imms=imms, directive=name))

    def _strings(self, line: int, name: str, args: str, where: str) -> bytes:
        """The bytes of `.ascii "..." [, "..."]` (`.asciz`/`.string`: each with a NUL)."""
        out = bytearray()
        for part in _split_outside_strings(args, ","):
            m = re.fullmatch(r'\s*"((?:\\.|[^"\\])*)"\s*', part)
            if not m:
                raise self._error(line, f"{name} needs string literals, not {part.strip()!r}", where)
            out += _unescape(m.group(1)) + (b"" if name == ".ascii" else b"\0")
        return bytes(out)
