"""Blocks: .macro, .rept, .irp and .irpc, collected up to their .endm/.endr, then replayed with
\\name, \\@ and \\() substituted."""

from __future__ import annotations

import re

from typing import TYPE_CHECKING

from .expr import _IDENT_RE
from .parts import _Block, _Macro
from .source import _LABEL_RE, _split_outside_strings, _split_word
from .unit import _MAX_STATEMENTS

if TYPE_CHECKING:               # the state lives in _Preprocessor; mypy checks against it
    from .parts import PreprocessorParts as _Mixin
else:
    _Mixin = object

_MAX_MACRO_DEPTH = 64
_BLOCK_END = {".macro": ".endm", ".rept": ".endr", ".irp": ".endr", ".irpc": ".endr"}




class _ExitMacro(Exception):
    """.exitm: stop expanding the current macro."""




class _Macros(_Mixin):
    """The blocks of `_Preprocessor` (a mixin: the state lives there)."""

    def _collect(self, line: int, text: str) -> None:
        block = self.blocks[-1]
        body = text.strip()
        while (m := _LABEL_RE.match(body)) is not None:
            body = body[m.end():].strip()
        word = body.split(None, 1)[0].lower() if body else ""
        if word in _BLOCK_END and _BLOCK_END[word] == _BLOCK_END[block.kind]:
            block.depth += 1
        elif word == _BLOCK_END[block.kind]:
            if block.depth == 0:
                self.blocks.pop()
                self._close_block(block)
                return
            block.depth -= 1
        block.body.append((line, text))

    def _close_block(self, block: _Block) -> None:
        if block.kind == ".macro":
            self._define_macro(block)
        elif block.kind == ".rept":
            count = self._constant(block.line, block.header, ".rept", block.where)
            if not 0 <= count <= _MAX_STATEMENTS:
                raise self._error(block.line, f".rept {count}: count out of range", block.where)
            for _ in range(count):
                self._replay(block.body, {}, block.where)
        else:
            param, _, rest = block.header.partition(",")
            if not _IDENT_RE.fullmatch(param.strip()):
                raise self._error(block.line, f"{block.kind} needs a parameter name", block.where)
            if block.kind == ".irp":
                values = [v.strip() for v in _split_outside_strings(rest, ",")]
            else:
                values = list(rest.strip())
            for value in values:
                self._replay(block.body, {param.strip(): value}, block.where)

    def _define_macro(self, block: _Block) -> None:
        words = re.sub(r"\s*=\s*", "=", block.header).replace(",", " ").split()
        if not words or not _IDENT_RE.fullmatch(words[0]):
            raise self._error(block.line, ".macro needs a name", block.where)
        params = []
        for spec in words[1:]:
            head, has_default, default = spec.partition("=")
            param, _, qualifier = head.partition(":")
            params.append((param, default if has_default else None, qualifier))
        self.macros[words[0].lower()] = _Macro(words[0], params, block.body)

    def _expand_macro(self, line: int, text: str, where: str) -> None:
        word, rest = _split_word(text)
        macro = self.macros[word.lower()]
        if self.depth >= _MAX_MACRO_DEPTH:
            raise self._error(line, f"macros nested more than {_MAX_MACRO_DEPTH} deep", where)
        values = self._macro_arguments(line, macro, rest.strip(), where)
        self.expansions += 1
        values["@"] = str(self.expansions)
        conds = len(self.conds)
        try:
            self._replay(macro.body, values, where, (line, macro.name))
        except _ExitMacro:
            del self.conds[conds:]

    def _macro_arguments(self, line: int, macro: _Macro, rest: str, where: str) -> dict[str, str]:
        args = [a.strip() for a in _split_outside_strings(rest, ",")] if rest else []
        if len(args) == 1 and len(macro.params) > 1:
            args = rest.split()
        names = [p[0] for p in macro.params]
        values: dict[str, str] = {}
        positional = iter(macro.params)
        for index, arg in enumerate(args):
            key, eq, value = arg.partition("=")
            if eq and key.strip() in names:
                values[key.strip()] = value.strip()
                continue
            param = next(positional, None)
            if param is None:
                raise self._error(line, f"too many arguments for macro {macro.name!r}", where)
            values[param[0]] = ", ".join(args[index:]) if param[2] == "vararg" else arg
            if param[2] == "vararg":
                break
        for name, default, qualifier in macro.params:
            if name not in values:
                if qualifier == "req":
                    raise self._error(line, f"macro {macro.name!r} needs argument {name!r}", where)
                values[name] = default or ""
        return values

    def _replay(self, body: list[tuple[int, str]], values: dict[str, str], where: str,
                macro: tuple[int, str] | None = None) -> None:
        """Feed a block body again, with \\name, \\@ and \\() substituted. Statements of a .rept or
        .irp keep their own lines; those of a macro get the line of the (outermost) invocation."""
        def substitute(m: re.Match[str]) -> str:
            return "" if m.group(1) == "()" else values.get(m.group(1), m.group(0))
        self.depth += 1
        conds = len(self.conds)
        line = body[-1][0] if body else 0
        try:
            for line, text in body:
                inner = where
                if macro is not None:
                    line, inner = macro[0], where or f" (in macro {macro[1]!r}, line {line})"
                expanded = re.sub(r"\\(\(\)|@|[A-Za-z_][A-Za-z0-9_]*)", substitute, text)
                for statement in _split_outside_strings(expanded, ";"):
                    self.statement(line, statement, inner)
        finally:
            self.depth -= 1
        if len(self.conds) != conds:
            raise self._error(line, "an .if in this expansion has no .endif", where)
