"""Conditional assembly: .if and its variants, .elseif, .else and .endif."""

from __future__ import annotations


from typing import TYPE_CHECKING

from .expr import _OPERATIONS
from .parts import _Cond

if TYPE_CHECKING:               # the state lives in _Preprocessor; mypy checks against it
    from .parts import PreprocessorParts as _Mixin
else:
    _Mixin = object




_IF_ZERO_TESTS = {".if": "!=", ".ifne": "!=", ".ifeq": "==", ".ifgt": ">", ".ifge": ">=",
                  ".iflt": "<", ".ifle": "<="}
_IF_OPENERS = {*_IF_ZERO_TESTS, ".ifdef", ".ifndef", ".ifc", ".ifnc", ".ifb", ".ifnb"}
_CONDITIONALS = {*_IF_OPENERS, ".elseif", ".else", ".endif"}


class _Conditionals(_Mixin):
    """The conditional assembly of `_Preprocessor` (a mixin: the state lives there)."""

    def _conditional(self, line: int, name: str, args: str, where: str) -> None:
        if name in _IF_OPENERS:
            outer = not self.conds or self.conds[-1].active
            value = outer and self._condition(line, name, args, where)
            self.conds.append(_Cond(line, outer, value, value))
            return
        if not self.conds:
            raise self._error(line, f"{name} without .if", where)
        cond = self.conds[-1]
        if name == ".endif":
            self.conds.pop()
            return
        if cond.seen_else:
            raise self._error(line, f"{name} after .else", where)
        cond.seen_else = name == ".else"
        cond.active = (cond.outer and not cond.taken
                       and (name == ".else" or self._condition(line, ".if", args, where)))
        cond.taken = cond.taken or cond.active

    def _condition(self, line: int, name: str, args: str, where: str) -> bool:
        if name in (".ifdef", ".ifndef"):
            defined = args in self.labels or args in self.equs
            return defined == (name == ".ifdef")
        if name in (".ifb", ".ifnb"):
            return (not args) == (name == ".ifb")
        if name in (".ifc", ".ifnc"):
            first, _, second = args.partition(",")
            same = first.strip().strip("'") == second.strip().strip("'")
            return same == (name == ".ifc")
        value = self._constant(line, args, name, where, condition=True)
        return bool(_OPERATIONS[_IF_ZERO_TESTS[name]](value, 0))
