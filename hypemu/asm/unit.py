"""What the preprocessor hands the builder: keystone statements (`_Stmt`), each tied to a user
line, with the expressions evaluated here (`_Imm`), gathered in a `_Unit`; and the conventions and
limits both sides share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Tree = tuple[Any, ...]   # a parsed expression (expr._parse_expr): ("num", n), ("sym", name), (op, a[, b])

_MAX_BYTES = 16 << 20             # largest program, and largest single .space/.fill
_MAX_STATEMENTS = 500_000         # after macro and .rept expansion
_GENERATED = "__hypemu_"          # prefix of every name this package makes up
_MARK = "\x00"                    # brackets the index of an immediate inside a statement template


@dataclass
class _Imm:
    """An expression evaluated here rather than by keystone, and how to write its value back."""

    tree: Tree
    form: str            # "#" immediate, "lower16"/"upper16" (#:lower16:), "1"/"2"/"4"/"8" data bytes,
                         # "set" for a .set/.equ value
    pos: int             # index of its statement: decides which .set definition applies
    dot: str | None = None   # the anchor label of its statement, when the expression uses '.'
    offset: int = 0      # '.' = anchor + offset (the element's offset in a data directive)


@dataclass
class _Stmt:
    line: int            # user line (0 for predefined constants)
    source: str          # the user's text, for messages
    text: str            # keystone text; _MARK i _MARK stands for imms[i]
    where: str = ""      # " (in macro 'x')" for statements that come from an expansion
    kind: str = "insn"   # insn | label | equ | data | other
    label: str | None = None
    imms: tuple[_Imm, ...] = ()
    directive: str = ""
    checks: tuple[tuple[Any, ...], ...] = ()   # on an anchor label: what to verify in the instruction after it
    section: str = ".text"           # the section it was written in
    pos: int = 0         # its index in source order (what `_Imm.pos` and .set definitions count in)


@dataclass(frozen=True)
class _Section:
    """A section as placed: its name, kind (text | data | bss), alignment and the generated labels
    that mark where it starts and ends."""

    name: str
    kind: str
    align: int
    start: str
    end: str


@dataclass
class _Unit:
    """A preprocessed source, its statements in placement order (section by section)."""

    stmts: list[_Stmt]
    labels: dict[str, int]                           # every label (generated ones too) -> line
    globals: dict[str, int]                          # name -> line of its .global
    equs: dict[str, list[tuple[int, Tree, int]]]    # name -> [(stmt pos, tree, line)]
    thumb: bool = False                              # assembled as Thumb-2
    sections: tuple[_Section, ...] = ()
    fills: tuple[tuple[str, str, str], ...] = ()     # (label, label, "zero" | "code"): padding to rewrite
