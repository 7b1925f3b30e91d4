"""Preprocessing: user source -> a flat list of keystone statements, each tied to a user line.

`_Preprocessor` reads the statements, their labels (numeric local labels renamed) and the kernel's
macros; the directives, conditionals, blocks and instructions it meets are handled by its mixins,
one module each."""

from __future__ import annotations

import re
from typing import Any

from .conditionals import _CONDITIONALS, _Conditionals
from .directives import _Directives
from .encode import _BANKED, _REGISTERS
from .expr import (_Ambiguous, _ExprError, _Lookup, _NeedsAddresses, _Undefined, _evaluate,
                   _parse_expr, _reason, _symbols_of)
from .implicit_it import _ImplicitIt, _OpenBlock
from .instructions import _Instructions
from .macros import _BLOCK_END, _Macros
from .parts import _Block, _Cond, _Macro
from .program import AsmError
from .sections import _Sections
from .source import (_ASSIGN_RE, _DIRECTIVE_RE, _LABEL_RE, _LOCAL_REF_RE,
                     _outside_strings, _split_outside_strings, _split_word, _strip_comments,
                     _take_call)
from .unit import _GENERATED, _MAX_STATEMENTS, Tree, _Stmt, _Unit


_KERNEL_MACROS = ("ENTRY", "ENDPROC", "END", "W", "ARM", "THUMB", "ARM_BE8")


class _Preprocessor(_Directives, _Conditionals, _Macros, _Instructions, _ImplicitIt, _Sections):
    """Turns a user's source into `_Stmt`s: comments, directives, macros, local labels, encodings."""

    def __init__(self, filename: str, constants: dict[str, int], thumb: bool = False):
        self.filename = filename
        self.thumb = thumb          # Thumb-2 (the kernel's CONFIG_THUMB2_KERNEL build)
        self.it_block: _OpenBlock | None = None   # the implicit IT block open (implicit_it)
        self.it_explicit = 0        # instructions an explicit IT instruction still covers
        self.stmts: list[_Stmt] = []
        self.labels: dict[str, int] = {}
        self.globals: dict[str, int] = {}
        self.equs: dict[str, list[tuple[int, Tree, int]]] = {}
        self.predefined = frozenset(constants)
        self.macros: dict[str, _Macro] = {}
        self.blocks: list[_Block] = []
        self.conds: list[_Cond] = []
        self.local_counts: dict[str, int] = {}
        self.forward_refs: dict[str, tuple[int, str]] = {}    # generated name -> (line, "1f")
        self.expansions = 0
        self.depth = 0
        self.unaligned: bool = False   # data of a size that is not a multiple of 4 since the last insn
        self.fills: list[tuple[str, str, str]] = []    # padding to rewrite: (label, label, mode)
        self._init_sections()
        for name, value in constants.items():
            text = f"-{-value:#x}" if value < 0 else f"{value:#x}"
            self._define_equ(name, ("num", value))
            self._emit(_Stmt(0, f".equ {name}, {text}", f".set {name}, {text}", " (predefined)",
                             kind="equ"))

    def process(self, source: str) -> _Unit:
        if "\x00" in source:
            raise self._error(source.count("\n", 0, source.index("\x00")) + 1, "NUL character")
        for line, text in _strip_comments(source):
            if text.lstrip().startswith("#"):
                raise self._error(line, "C preprocessor lines are not supported; predefine constants "
                                        f"instead: {text.strip()[:60]!r}")
            for statement in _split_outside_strings(text, ";"):
                self.statement(line, statement, "")
        if self.blocks:
            block = self.blocks[0]
            raise self._error(block.line, f"{block.kind} without {_BLOCK_END[block.kind]}")
        if self.conds:
            raise self._error(self.conds[0].line, ".if without .endif")
        for name, (line, ref) in self.forward_refs.items():
            if name not in self.labels:
                raise self._error(line, f"local label {ref} has no definition after it")
        for name, line in self.globals.items():
            if name not in self.labels:
                raise self._error(line, f"{name!r} is declared .global but is not a label of this "
                                        "source (hypemu has no linker)")
        stmts, sections = self._placed(self.stmts)
        return _Unit(stmts, self.labels, self.globals, self.equs, self.thumb, sections,
                     tuple(self.fills))

    def _error(self, line: int, message: str, where: str = "") -> AsmError:
        return AsmError(self.filename, line, message + where)

    def _emit(self, stmt: _Stmt) -> None:
        if len(self.stmts) >= _MAX_STATEMENTS:
            raise self._error(stmt.line, f"more than {_MAX_STATEMENTS} statements after expansion")
        stmt.section, stmt.pos = self.section, len(self.stmts)
        self.stmts.append(stmt)

    def statement(self, line: int, text: str, where: str) -> None:
        """Process one statement (one line, or one `;`-separated part of a line)."""
        if self.blocks:
            self._collect(line, text)
            return
        text = text.strip()
        m = _DIRECTIVE_RE.match(text)
        if m and m.group(1).lower() in _CONDITIONALS:
            self._conditional(line, m.group(1).lower(), m.group(2).strip(), where)
            return
        if not text or (self.conds and not self.conds[-1].active):
            return
        if self._kernel_macro(line, text, where):
            return
        while (m := _LABEL_RE.match(text)) is not None:
            self._define_label(line, m.group(1), where)
            text = text[m.end():].strip()
        if not text:
            return
        if (m := _DIRECTIVE_RE.match(text)) is not None:
            self._directive(line, m.group(1).lower(), m.group(2).strip(), text, where)
        elif (m := _ASSIGN_RE.match(text)) is not None:
            self._equ(line, "=", f"{m.group(1)}, {m.group(2)}", text, where)
        elif _split_word(text)[0].lower() in self.macros:
            self._expand_macro(line, text, where)
        else:
            self._instruction(line, text, where)

    def _kernel_macro(self, line: int, text: str, where: str) -> bool:
        """The Linux <asm/...> macros hyp code uses: ENTRY, ENDPROC, END, W, ARM, THUMB, ARM_BE8.
        As <asm/unified.h> defines them: in a Thumb-2 build W(x) is x.w, THUMB(x) is x and ARM(x)
        nothing; in an ARM build W(x) is x, ARM(x) is x and THUMB(x) nothing."""
        for name in _KERNEL_MACROS:
            call = _take_call(text, name)
            if call is not None:
                arg, rest = call
                kept = "THUMB" if self.thumb else "ARM"
                replacement = {"ENTRY": f".globl {arg}; {arg}: {rest}",
                               "W": f"{arg}{'.w' if self.thumb else ''} {rest}",
                               kept: f"{arg}; {rest}"}.get(name, rest)
                for statement in _split_outside_strings(replacement, ";"):
                    self.statement(line, statement, where)
                return True
        return False

    # -- labels, local labels, names

    def _define_label(self, line: int, name: str, where: str) -> None:
        if name.isdigit():
            index = self.local_counts.get(name, 0)
            self.local_counts[name] = index + 1
            generated = f"{_GENERATED}L{name}_{index}"
            self.labels[generated] = line
            self._emit(_Stmt(line, f"{name}:", f"{generated}:", where, "label", generated))
            return
        if name == ".":   # found by the source fuzz: `.: nop` was a label past the program's end
            raise self._error(line, "'.' is the location counter: it cannot be defined as a label",
                              where)
        self._check_new_name(line, name, where)
        if name in self.labels:
            raise self._error(line, f"label {name!r} is already defined at line {self.labels[name]}",
                              where)
        if name in self.equs:
            raise self._error(line, f"label {name!r} is already defined by .equ/.set", where)
        self.labels[name] = line
        self._emit(_Stmt(line, f"{name}:", f"{name}:", where, "label", name))

    def _check_new_name(self, line: int, name: str, where: str) -> None:
        if name.startswith(_GENERATED):
            raise self._error(line, f"names starting with {_GENERATED!r} are reserved", where)
        if name.lower() in _REGISTERS or name.lower() in _BANKED:
            raise self._error(line, f"{name!r} is a register name", where)

    def _rename_local_refs(self, line: int, text: str, where: str) -> str:
        def rename(m: re.Match[str]) -> str:
            number, direction = m.group(1), m.group(2)
            count = self.local_counts.get(number, 0)
            if direction == "b":
                if count == 0:
                    raise self._error(line, f"local label {m.group(0)} has no definition before it",
                                      where)
                return f"{_GENERATED}L{number}_{count - 1}"
            generated = f"{_GENERATED}L{number}_{count}"
            self.forward_refs.setdefault(generated, (line, m.group(0)))
            return generated
        return _outside_strings(text, lambda part: _LOCAL_REF_RE.sub(rename, part))

    # -- what the mixins share

    def _define_equ(self, name: str, tree: Tree, line: int = 0) -> None:
        self.equs.setdefault(name, []).append((len(self.stmts), tree, line))

    def _check_expr(self, line: int, expr: str, where: str) -> None:
        """Reject an expression that keystone would compute differently from GNU as."""
        try:
            _parse_expr(expr)
        except _Ambiguous as e:
            raise self._error(line, str(e), where) from None
        except _ExprError:
            pass

    def _constant(self, line: int, expr: str, what: str, where: str, condition: bool = False) -> int:
        """Evaluate an argument that must be a constant known at this point of the source."""
        lookup = _Lookup(self.equs, self.labels, None, len(self.stmts))
        try:
            return _evaluate(_parse_expr(expr, condition), lookup)
        except _Undefined as e:
            raise self._error(line, f"undefined symbol {e.name!r} in {what} (it must be a constant "
                                    "expression of symbols defined above this line)", where) from None
        except _NeedsAddresses:
            raise self._error(line, f"{what} must be a constant, not a label address", where) from None
        except (_ExprError, RecursionError) as e:
            raise self._error(line, f"{what}: {_reason(e)}", where) from None

    def _anchor(self, line: int, text: str, where: str, checks: tuple[tuple[Any, ...], ...],
                trees: list[Tree]) -> str | None:
        """Put a label before the next statement when it has checks or an expression uses '.'."""
        if not checks and not any("." in _symbols_of(t) for t in trees):
            return None
        label = f"{_GENERATED}S{len(self.stmts)}"
        self._emit(_Stmt(line, text, f"{label}:", where, "label", label, checks=checks))
        return label
