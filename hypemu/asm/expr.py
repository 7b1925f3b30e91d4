"""Expressions: GNU as integer expressions, evaluated here for immediates and directive arguments,
and `_Lookup`, the symbol values they read (.set/.equ definitions, then labels)."""

from __future__ import annotations

import re
from typing import Callable, Mapping

from .unit import Tree

_MAX_EXPRESSION_TOKENS = 200


_IDENT = r"[A-Za-z_.$][A-Za-z0-9_.$]*"
_IDENT_RE = re.compile(_IDENT)
_TOKEN_RE = re.compile(r"""\s*(?:
    (?P<num>0[xX][0-9a-fA-F]+|0[bB][01]+|\d+)
  | (?P<char>'\\?.'?)
  | (?P<name>[A-Za-z_$][A-Za-z0-9_.$]*|\.(?![0-9])[A-Za-z0-9_.$]*)
  | (?P<op><<|>>|==|!=|<>|<=|>=|&&|\|\||[-+*/%&|^~!()<>])
)""", re.VERBOSE)
# Binding strength of binary operators. GNU as (its manual, "Infix Operators") and keystone 0.9.2
# (measured: `.word 1 + 2 << 3` gives 24, `.word 1 | 6 & 4` gives 4) disagree, so an expression is
# accepted only when both readings give the same tree; otherwise the user must add parentheses.
# Comparisons (true is -1, as in GNU as) and && || exist only in .if conditions, which keystone never
# sees.
_GNU_RANKS = {"*": 4, "/": 4, "%": 4, "<<": 4, ">>": 4, "|": 3, "&": 3, "^": 3, "+": 2, "-": 2,
              "==": 2, "!=": 2, "<>": 2, "<": 2, "<=": 2, ">": 2, ">=": 2, "&&": 1, "||": 1}
_KEYSTONE_RANKS = {"*": 4, "/": 4, "%": 4, "+": 3, "-": 3, "<<": 2, ">>": 2, "|": 1, "&": 1, "^": 1}
_CONDITION_ONLY = {"==", "!=", "<>", "<", "<=", ">", ">=", "&&", "||"}


class _ExprError(Exception):
    pass


class _Ambiguous(_ExprError):
    """GNU as and keystone would compute different values for this expression."""


class _Undefined(Exception):
    def __init__(self, name: str):
        super().__init__(name)
        self.name = name


class _NeedsAddresses(Exception):
    """A label's address was asked for before keystone has placed the labels."""


def _parse_number(text: str) -> int:
    """GNU as integers: 0x hex, 0b binary, a leading 0 for octal, else decimal."""
    try:
        if text[:2] in ("0x", "0X", "0b", "0B"):
            return int(text, 0)
        return int(text, 8) if len(text) > 1 and text[0] == "0" else int(text)
    except ValueError:
        raise _ExprError(f"bad number {text!r}") from None


def _char_value(text: str) -> int:
    """GNU as character constant: 'c, 'c' or an escape such as '\\n'."""
    body = text[1:].removesuffix("'") if len(text) > 2 else text[1:]
    if body.startswith("\\") and len(body) == 2:
        return ord({"n": "\n", "t": "\t", "r": "\r", "0": "\0"}.get(body[1], body[1]))
    return ord(body[-1])


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if not m or m.end() == pos:
            raise _ExprError(f"cannot parse expression {text.strip()!r}")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


def _parse_expr(text: str, condition: bool = False) -> Tree:
    """Parse to a tree: ('num', n) | ('sym', name) | (op, a) | (op, a, b), with GNU as precedence.

    Raises _Ambiguous when keystone's precedence would group the operators differently."""
    toks = _tokens(text)
    if len(toks) > _MAX_EXPRESSION_TOKENS:
        raise _ExprError(f"expression longer than {_MAX_EXPRESSION_TOKENS} tokens")
    gnu, pos = _parse_binary(toks, 0, 1, _GNU_RANKS)
    if pos != len(toks):
        raise _ExprError(f"unexpected {toks[pos][1]!r} in expression {text.strip()!r}")
    if condition:
        return gnu
    if any(kind == "op" and tok in _CONDITION_ONLY for kind, tok in toks):
        raise _ExprError(f"comparisons and && || are only supported in .if: {text.strip()!r}")
    if _parse_binary(toks, 0, 1, _KEYSTONE_RANKS)[0] != gnu:
        raise _Ambiguous(f"GNU as and keystone group the operators of {text.strip()!r} "
                         "differently: add parentheses")
    return gnu


def _parse_binary(toks: list[tuple[str, str]], pos: int, level: int,
                  ranks: dict[str, int]) -> tuple[Tree, int]:
    left, pos = _parse_unary(toks, pos, ranks)
    while pos < len(toks) and toks[pos][0] == "op" and ranks.get(toks[pos][1], 0) >= level:
        op = toks[pos][1]
        right, pos = _parse_binary(toks, pos + 1, ranks[op] + 1, ranks)
        left = (op, left, right)
    return left, pos


def _parse_unary(toks: list[tuple[str, str]], pos: int,
                 ranks: dict[str, int]) -> tuple[Tree, int]:
    if pos >= len(toks):
        raise _ExprError("expression ends too early")
    kind, text = toks[pos]
    if kind == "op" and text in "-~!+":
        operand, pos = _parse_unary(toks, pos + 1, ranks)
        return (text, operand), pos
    if kind == "op" and text == "(":
        inner, pos = _parse_binary(toks, pos + 1, 1, ranks)
        if pos >= len(toks) or toks[pos][1] != ")":
            raise _ExprError("missing ')'")
        return inner, pos + 1
    if kind == "num":
        return ("num", _parse_number(text)), pos + 1
    if kind == "char":
        return ("num", _char_value(text)), pos + 1
    if kind == "name":
        return ("sym", text), pos + 1
    raise _ExprError(f"unexpected {text!r} in expression")


def _reason(error: Exception) -> str:
    return "constants nested too deeply" if isinstance(error, RecursionError) else str(error)


def _symbols_of(tree: Tree) -> set[str]:
    if tree[0] == "sym":
        return {tree[1]}
    if tree[0] == "num":
        return set()
    return set().union(*(_symbols_of(t) for t in tree[1:]))


def _evaluate(tree: Tree, lookup: Callable[[str], int]) -> int:
    op = tree[0]
    if op == "num":
        return int(tree[1])
    if op == "sym":
        return lookup(tree[1])
    if len(tree) == 2:
        v = _evaluate(tree[1], lookup)
        return {"-": -v, "+": v, "~": ~v, "!": int(not v)}[op]
    a, b = _evaluate(tree[1], lookup), _evaluate(tree[2], lookup)
    if op in "/%" and b == 0:
        raise _ExprError("division by zero")
    if op in ("<<", ">>") and not 0 <= b < 64:
        raise _ExprError(f"shift by {b}")
    if op == "/":
        return abs(a) // abs(b) * (1 if (a < 0) == (b < 0) else -1)   # C: truncate toward zero
    if op == "%":
        return a - b * _evaluate(("/", ("num", a), ("num", b)), lookup)
    return _OPERATIONS[op](a, b)


_OPERATIONS: dict[str, Callable[[int, int], int]] = {"*": lambda a, b: a * b, "<<": lambda a, b: a << b, ">>": lambda a, b: a >> b,
               "|": lambda a, b: a | b, "&": lambda a, b: a & b, "^": lambda a, b: a ^ b,
               "+": lambda a, b: a + b, "-": lambda a, b: a - b,
               "==": lambda a, b: -(a == b), "!=": lambda a, b: -(a != b), "<>": lambda a, b: -(a != b),
               "<": lambda a, b: -(a < b), "<=": lambda a, b: -(a <= b), ">": lambda a, b: -(a > b),
               ">=": lambda a, b: -(a >= b), "&&": lambda a, b: int(bool(a and b)),
               "||": lambda a, b: int(bool(a or b))}


class _Lookup:
    """Symbol values for `_evaluate` at statement `pos`: .set/.equ definitions, then labels.

    Labels have values only once `addresses` (from a keystone pass) are known."""

    def __init__(self, equs: Mapping[str, list[tuple[int, Tree, int]]], labels: Mapping[str, int],
                 addresses: Mapping[str, int] | None, pos: int,
                 dot: str | None = None, offset: int = 0):
        self.equs, self.labels, self.addresses = equs, labels, addresses
        self.pos, self.dot, self.offset = pos, dot, offset
        self.active: list[tuple[str, int]] = []

    def __call__(self, name: str) -> int:
        if name == ".":
            if self.active or not self.dot:
                raise _ExprError("'.' is only supported in an instruction operand or a data value")
            if self.addresses is None:
                raise _NeedsAddresses(name)
            return self.addresses[self.dot] + self.offset
        if name in self.equs:
            return self._equ(name)
        if name in self.labels:
            if self.addresses is None:
                raise _NeedsAddresses(name)
            return self.addresses[name]
        raise _Undefined(name)

    def _equ(self, name: str) -> int:
        defs = self.equs[name]
        before = [d for d in defs if d[0] < self.pos]
        pos, tree, _ = before[-1] if before else defs[0]
        if (name, pos) in self.active:
            raise _ExprError(f"{name} is defined in terms of itself")
        if len(self.active) > 100:
            raise _ExprError(f"{name}: constants defined through more than 100 others")
        saved = self.pos
        self.active.append((name, pos))
        self.pos = pos
        try:
            return _evaluate(tree, self)
        finally:
            self.pos = saved
            self.active.pop()
