"""The preprocessor's state, as its mixins see it: the records of open conditionals, blocks and
macros, and `PreprocessorParts`, the attributes and services that `_Preprocessor` provides and each
mixin (directives, conditionals, macros, instructions, sections) relies on. It exists so that mypy checks
each mixin against what the preprocessor really has."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Protocol

from .program import AsmError
from .unit import Tree, _Stmt


@dataclass
class _Cond:
    """One open .if: whether its enclosing code is assembled, its current branch, any branch taken."""

    line: int
    outer: bool
    active: bool
    taken: bool
    seen_else: bool = False


@dataclass
class _Block:
    """A .macro / .rept / .irp / .irpc being collected up to its .endm / .endr."""

    kind: str
    line: int
    header: str
    where: str
    body: list[tuple[int, str]] = dataclasses.field(default_factory=list)   # (line, text)
    depth: int = 0


@dataclass
class _Macro:
    name: str
    params: list[tuple[str, str | None, str]]      # (name, default, qualifier: "", "req", "vararg")
    body: list[tuple[int, str]]                     # (line, text)


class PreprocessorParts(Protocol):
    """What `_Preprocessor` holds and offers its mixins."""

    filename: str
    stmts: list[_Stmt]
    labels: dict[str, int]
    globals: dict[str, int]
    equs: dict[str, list[tuple[int, Tree, int]]]
    predefined: frozenset[str]
    macros: dict[str, _Macro]
    blocks: list[_Block]
    conds: list[_Cond]
    expansions: int
    depth: int
    unaligned: bool
    section: str
    fills: list[tuple[str, str, str]]
    thumb: bool                     # assembled as Thumb-2 (kernel.isa: thumb2)
    it_block: Any                   # implicit_it._OpenBlock | None
    it_explicit: int

    def _error(self, line: int, message: str, where: str = "") -> AsmError: ...
    def _emit(self, stmt: _Stmt) -> None: ...
    def statement(self, line: int, text: str, where: str) -> None: ...
    def _check_new_name(self, line: int, name: str, where: str) -> None: ...
    def _rename_local_refs(self, line: int, text: str, where: str) -> str: ...
    def _define_equ(self, name: str, tree: Tree, line: int = 0) -> None: ...
    def _check_expr(self, line: int, expr: str, where: str) -> None: ...
    def _constant(self, line: int, expr: str, what: str, where: str,
                  condition: bool = False) -> int: ...
    def _section_directive(self, line: int, name: str, args: str, where: str) -> None: ...
    def _record_align(self, size: int) -> None: ...
    def _section_kind(self) -> str: ...
    def _anchor(self, line: int, text: str, where: str, checks: tuple[tuple[Any, ...], ...],
                trees: list[Tree]) -> str | None: ...
    def _implicit_it(self, line: int, mnemonic: str, operands: str, text: str,
                     where: str) -> None: ...
    def _end_implicit_it(self) -> None: ...
