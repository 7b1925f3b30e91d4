"""Assemble hypemu's guest code: GNU-as style ARM (A32) sources, on keystone-engine 0.9.2.

`assemble(source, base)` turns a source into a `Program` (bytes at `base`, label addresses, globals).
Keystone only encodes instructions; everything around them is done here, because keystone 0.9.2 was
measured (tests/test_asm.py, TestKeystoneQuirks, in child processes) to:

- crash (SIGSEGV on `.text`; on some malformed instructions, depending on what the process ran before)
  and hang forever (`.fill UNDEF`, `.ascii ,`, `movss =x, r0`, statements starting with `>>` or `*/`).
  So keystone never runs in this process: each request runs in a fresh fork of a server process that
  has only imported keystone (`_KeystoneWorker`), under a timeout. A crash or a hang becomes an
  AsmError at the statement found by bisection, and results never depend on history.
- mishandle GNU-as sources: it swallows code after `.section .text` or `.pushsection`, rejects `.type`
  and `.size`, has no numeric local labels, no ERET/HVC/SMC, no banked MSR/MRS (ELR_hyp, SP_hyp,
  SPSR_hyp...), and its `.macro` would hide macro bodies from the rewriting done here. So the
  preprocessor handles comments, sections, `.macro/.rept/.irp/.irpc`, `.if...`, local labels and the
  kernel's ENTRY/ENDPROC/W/ARM/THUMB, encodes those instructions as `.word`s, and rejects any
  directive not on its whitelist.
- fail silently: empty output for `mov r0, #UNDEF`, for a forward `.equ` or label arithmetic in an
  immediate; `movw r0, #:lower16:label` encoded as 0; `.short 0x10000` dropped; an unencodable ADR, a
  far branch or a literal pool out of reach encoded as garbage; with a symbol resolver installed,
  literal-pool words dropped. So every `#expression`, `:lower16:`/`:upper16:` operand, data value,
  `.set` value and directive size is evaluated here (labels come from a first pass, every ARM
  instruction being 4 bytes) and reaches keystone as a plain number; the output must end with a
  sentinel word; and each `ldr rX, =expr` and each B/BL/ADR/load naming a label is decoded afterwards
  and checked against what the source says.
- read expressions with C-like precedence where GNU as does not (`1 + 2 << 3`: GNU as 17, keystone
  24): an expression the two would group differently is refused until parenthesised.

Deviations from GNU as (written down here, once):
- Every text section lands in one contiguous blob, in source order; other sections are errors.
- `.align`/`.balign` with an explicit fill of 0 pads with NOPs (keystone ignores a zero fill value); a
  partial word of padding holds bytes of `mov r0, r0` where GNU as writes zeros.
- `.global` names must be labels defined in the same source (there is no linker); a `.set`/`.equ` must
  be evaluable (no undefined symbols, no '.'), even when it is never used.
- `.set`/`.equ` read in an immediate take the last definition above the use, or the first one below.
- Comparisons and `&&`/`||` are accepted only in `.if` conditions.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import functools
import hashlib
import json
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Mapping

__all__ = ["AsmError", "Program", "assemble", "assemble_file", "cache_info", "clear_memory_cache"]

_KS_TIMEOUT = 5.0                 # seconds one keystone request may take before it counts as a hang
_MAX_BYTES = 16 << 20             # largest program, and largest single .space/.fill
_MAX_STATEMENTS = 500_000         # after macro and .rept expansion
_MAX_MACRO_DEPTH = 64
_MAX_ALIGN_POWER = 16
_MAX_EXPRESSION_TOKENS = 200
_GENERATED = "__hypemu_"          # prefix of every name this module makes up
_SENTINEL = 0x4B534E44            # last word of every keystone request; missing = keystone failed quietly
_PLACEHOLDER = 4                  # pass-1 stand-in for an immediate that needs label addresses
_MARK = "\x00"                    # brackets the index of an immediate inside a statement template


class AsmError(Exception):
    """A problem in the user's source, located at `file:line`."""

    def __init__(self, file: str, line: int, message: str):
        super().__init__(f"{file}:{line}: {message}")
        self.file = file
        self.line = line
        self.message = message


class _FrozenMap(Mapping):
    """A read-only, picklable name -> address mapping."""

    def __init__(self, items: Mapping[str, int]):
        self._items = dict(items)

    def __getitem__(self, key: str) -> int:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"{{{', '.join(f'{k!r}: {v:#x}' for k, v in self._items.items())}}}"


@dataclass(frozen=True)
class Program:
    """Assembled code: `code` starts at `base`; `symbols` maps every user label to its address."""

    code: bytes
    base: int
    symbols: Mapping[str, int]
    globals: frozenset[str]
    filename: str

    def address(self, name: str) -> int:
        try:
            return self.symbols[name]
        except KeyError:
            raise KeyError(f"{self.filename}: no label {name!r} (labels: "
                           f"{', '.join(sorted(self.symbols)) or 'none'})") from None

    @property
    def end(self) -> int:
        return self.base + len(self.code)


# --------------------------------------------------------------------------------------------------
# Public entry points and the cache


def assemble(source: str, base: int, *, constants: Mapping[str, int] | None = None,
             filename: str = "<string>") -> Program:
    """Assemble `source` (GNU-as ARM syntax) so that its first byte lies at `base`.

    `constants` are predefined as `.equ NAME, value`. Raises AsmError for any problem in the source,
    ValueError for a bad `base` or constant."""
    _check_base(base)
    consts = _check_constants(constants or {})
    key = _cache_key(source, base, consts)
    program = _CACHE.get(key)
    if program is None:
        program = _build(source, base, consts, filename)
        _CACHE.put(key, program)
    return dataclasses.replace(program, filename=filename)


def assemble_file(path: str | os.PathLike, base: int, *,
                  constants: Mapping[str, int] | None = None) -> Program:
    """Assemble the UTF-8 source file at `path` (see `assemble`)."""
    name = os.fspath(path)
    raw = Path(name).read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise AsmError(name, raw.count(b"\n", 0, e.start) + 1, "source is not valid UTF-8") from None
    return assemble(text, base, constants=constants, filename=name)


def cache_info() -> dict:
    """Counters since the last `clear_memory_cache()`: hits (memory_hits + disk_hits), misses, entries."""
    return _CACHE.info()


def clear_memory_cache() -> None:
    """Forget the in-memory cache and reset the counters (the disk cache stays)."""
    _CACHE.clear()


def _check_base(base: int) -> None:
    if not isinstance(base, int) or not 0 <= base < 1 << 32 or base % 4:
        raise ValueError(f"base must be a word-aligned 32-bit address, not {base!r}")


def _check_constants(constants: Mapping[str, int]) -> dict[str, int]:
    for name, value in constants.items():
        if not isinstance(name, str) or not _IDENT_RE.fullmatch(name) or name.startswith(_GENERATED):
            raise ValueError(f"constant name {name!r} is not a valid symbol name")
        if isinstance(value, bool) or not isinstance(value, int) or not -(1 << 31) <= value < 1 << 32:
            raise ValueError(f"constant {name} = {value!r} is not a 32-bit integer")
    return dict(sorted(constants.items()))


def _cache_key(source: str, base: int, constants: dict[str, int]) -> str:
    blob = json.dumps([_module_version(), source, base, sorted(constants.items())])
    return hashlib.sha256(blob.encode()).hexdigest()


@functools.lru_cache(maxsize=None)
def _module_version() -> str:
    """This file's own hash and keystone's version: any change to either invalidates the cache."""
    from importlib import metadata
    try:
        keystone = metadata.version("keystone-engine")
    except metadata.PackageNotFoundError:
        keystone = "unknown"
    return f"{hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]}/keystone-{keystone}"


class _Cache:
    """Assembled programs by content hash: a dict in memory, JSON files on disk.

    The directory is $HYPEMU_CACHE_DIR (default ~/.cache/hypemu/asm). Writes are atomic (temp file +
    rename); an unreadable or malformed entry counts as a miss and is rewritten; a directory that cannot
    be written is silently not used."""

    def __init__(self) -> None:
        self._memory: dict[str, Program] = {}
        self._lock = threading.Lock()
        self._counts = {"memory_hits": 0, "disk_hits": 0, "misses": 0}

    def info(self) -> dict:
        with self._lock:
            hits = self._counts["memory_hits"] + self._counts["disk_hits"]
            return {"hits": hits, **self._counts, "entries": len(self._memory)}

    def clear(self) -> None:
        with self._lock:
            self._memory.clear()
            self._counts = dict.fromkeys(self._counts, 0)

    def get(self, key: str) -> Program | None:
        with self._lock:
            program = self._memory.get(key)
        kind = "memory_hits"
        if program is None:
            program, kind = self._read_disk(key), "disk_hits"
        with self._lock:
            if program is None:
                self._counts["misses"] += 1
            else:
                self._counts[kind] += 1
                self._memory[key] = program
        return program

    def put(self, key: str, program: Program) -> None:
        with self._lock:
            self._memory[key] = program
        self._write_disk(key, program)

    @staticmethod
    def _directory() -> Path:
        configured = os.environ.get("HYPEMU_CACHE_DIR")
        return Path(configured) if configured else Path.home() / ".cache" / "hypemu" / "asm"

    def _read_disk(self, key: str) -> Program | None:
        try:
            entry = json.loads((self._directory() / f"{key}.json").read_text())
            if entry["key"] != key:
                return None
            symbols = {str(k): int(v) for k, v in entry["symbols"].items()}
            return Program(bytes.fromhex(entry["code"]), int(entry["base"]), _FrozenMap(symbols),
                           frozenset(str(g) for g in entry["globals"]), "")
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None

    def _write_disk(self, key: str, program: Program) -> None:
        entry = {"key": key, "code": program.code.hex(), "base": program.base,
                 "symbols": dict(program.symbols), "globals": sorted(program.globals)}
        directory = self._directory()
        try:
            directory.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=directory, suffix=".tmp")
        except OSError:
            return
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(entry, f)
            os.replace(temporary, directory / f"{key}.json")
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(temporary)


_CACHE = _Cache()


# --------------------------------------------------------------------------------------------------
# Expressions (GNU as integer expressions, evaluated here for immediates and directive arguments)

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
        out.append((m.lastgroup, m.group(m.lastgroup)))
        pos = m.end()
    return out


def _parse_expr(text: str, condition: bool = False):
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


def _parse_binary(toks, pos, level, ranks):
    left, pos = _parse_unary(toks, pos, ranks)
    while pos < len(toks) and toks[pos][0] == "op" and ranks.get(toks[pos][1], 0) >= level:
        op = toks[pos][1]
        right, pos = _parse_binary(toks, pos + 1, ranks[op] + 1, ranks)
        left = (op, left, right)
    return left, pos


def _parse_unary(toks, pos, ranks):
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


def _symbols_of(tree) -> set[str]:
    if tree[0] == "sym":
        return {tree[1]}
    if tree[0] == "num":
        return set()
    return set().union(*(_symbols_of(t) for t in tree[1:]))


def _evaluate(tree, lookup: Callable[[str], int]) -> int:
    op = tree[0]
    if op == "num":
        return tree[1]
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


_OPERATIONS = {"*": lambda a, b: a * b, "<<": lambda a, b: a << b, ">>": lambda a, b: a >> b,
               "|": lambda a, b: a | b, "&": lambda a, b: a & b, "^": lambda a, b: a ^ b,
               "+": lambda a, b: a + b, "-": lambda a, b: a - b,
               "==": lambda a, b: -(a == b), "!=": lambda a, b: -(a != b), "<>": lambda a, b: -(a != b),
               "<": lambda a, b: -(a < b), "<=": lambda a, b: -(a <= b), ">": lambda a, b: -(a > b),
               ">=": lambda a, b: -(a >= b), "&&": lambda a, b: int(bool(a and b)),
               "||": lambda a, b: int(bool(a or b))}


# --------------------------------------------------------------------------------------------------
# What keystone cannot encode: ERET, HVC, SMC, banked MSR/MRS (ARM ARM B9.3)

_CONDITIONS = {"eq": 0, "ne": 1, "cs": 2, "hs": 2, "cc": 3, "lo": 3, "mi": 4, "pl": 5, "vs": 6,
               "vc": 7, "hi": 8, "ls": 9, "ge": 10, "lt": 11, "gt": 12, "le": 13, "al": 14}
_COND_AL = 14
_REGISTERS = {**{f"r{i}": i for i in range(16)},
              "sb": 9, "sl": 10, "fp": 11, "ip": 12, "sp": 13, "lr": 14, "pc": 15}

# Banked registers: name -> (R, SYSm), ARM ARM B9.2.3 "Banked register encodings" (Table B9-2).
_BANKED = {
    "r8_usr": (0, 0b00000), "r9_usr": (0, 0b00001), "r10_usr": (0, 0b00010), "r11_usr": (0, 0b00011),
    "r12_usr": (0, 0b00100), "sp_usr": (0, 0b00101), "lr_usr": (0, 0b00110),
    "r8_fiq": (0, 0b01000), "r9_fiq": (0, 0b01001), "r10_fiq": (0, 0b01010), "r11_fiq": (0, 0b01011),
    "r12_fiq": (0, 0b01100), "sp_fiq": (0, 0b01101), "lr_fiq": (0, 0b01110),
    "lr_irq": (0, 0b10000), "sp_irq": (0, 0b10001),
    "lr_svc": (0, 0b10010), "sp_svc": (0, 0b10011),
    "lr_abt": (0, 0b10100), "sp_abt": (0, 0b10101),
    "lr_und": (0, 0b10110), "sp_und": (0, 0b10111),
    "lr_mon": (0, 0b11100), "sp_mon": (0, 0b11101),
    "elr_hyp": (0, 0b11110), "sp_hyp": (0, 0b11111),
    "spsr_fiq": (1, 0b01110), "spsr_irq": (1, 0b10000), "spsr_svc": (1, 0b10010),
    "spsr_abt": (1, 0b10100), "spsr_und": (1, 0b10110), "spsr_mon": (1, 0b11100),
    "spsr_hyp": (1, 0b11110),
}
_SPECIAL_RE = re.compile(r"(eret|hvc|smc|mrs|msr)(eq|ne|cs|hs|cc|lo|mi|pl|vs|vc|hi|ls|ge|lt|gt|le|al)?")


def _encode_eret(cond: int) -> int:
    """ERET A1 (B9.3.3): cond 0001 0110 0000 0000 0000 0110 1110."""
    return cond << 28 | 0x0160006E


def _encode_hvc(imm16: int) -> int:
    """HVC A1 (B9.3.4): 1110 0001 0100 imm12 0111 imm4; imm16 = imm12:imm4; unconditional."""
    return 0xE1400070 | (imm16 >> 4) << 8 | imm16 & 0xF


def _encode_smc(cond: int, imm4: int) -> int:
    """SMC A1 (B9.3.14): cond 0001 0110 0000 0000 0000 0111 imm4."""
    return cond << 28 | 0x01600070 | imm4


def _encode_mrs_banked(cond: int, rd: int, r: int, sysm: int) -> int:
    """MRS (banked register) A1 (B9.3.9): cond 0001 0R00 M1 Rd 001M 0000 0000, SYSm = M:M1."""
    return cond << 28 | 0x01000200 | r << 22 | (sysm & 0xF) << 16 | rd << 12 | (sysm >> 4) << 8


def _encode_msr_banked(cond: int, r: int, sysm: int, rn: int) -> int:
    """MSR (banked register) A1 (B9.3.10): cond 0001 0R10 M1 1111 001M 0000 Rn, SYSm = M:M1."""
    return cond << 28 | 0x0120F200 | r << 22 | (sysm & 0xF) << 16 | (sysm >> 4) << 8 | rn


# --------------------------------------------------------------------------------------------------
# Preprocessing: user source -> a flat list of keystone statements, each tied to a user line


@dataclass
class _Imm:
    """An expression evaluated here rather than by keystone, and how to write its value back."""

    tree: tuple
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
    checks: tuple[tuple, ...] = ()   # on an anchor label: what to verify in the instruction after it


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
class _Cond:
    """One open .if: whether its enclosing code is assembled, its current branch, any branch taken."""

    line: int
    outer: bool
    active: bool
    taken: bool
    seen_else: bool = False


class _ExitMacro(Exception):
    """.exitm: stop expanding the current macro."""


@dataclass
class _Macro:
    name: str
    params: list[tuple[str, str | None, str]]      # (name, default, qualifier: "", "req", "vararg")
    body: list[tuple[int, str]]                     # (line, text)


@dataclass
class _Unit:
    """A preprocessed source."""

    stmts: list[_Stmt]
    labels: dict[str, int]                           # every label (generated ones too) -> line
    globals: dict[str, int]                          # name -> line of its .global
    equs: dict[str, list[tuple[int, tuple, int]]]    # name -> [(stmt index, tree, line)]


_DROPPED = {".text", ".arm", ".popsection", ".previous", ".type", ".size", ".arch",
            ".arch_extension", ".cpu", ".fpu", ".ident", ".file"}
_THUMB = {".thumb", ".thumb_func", ".force_thumb"}
_NON_TEXT = {".data", ".bss", ".rodata"}
_DATA_SIZES = {".word": 4, ".long": 4, ".int": 4, ".4byte": 4, ".quad": 8, ".8byte": 8,
               ".short": 2, ".hword": 2, ".2byte": 2, ".byte": 1}
_STRINGS = {".ascii", ".asciz", ".string"}
_BLOCK_END = {".macro": ".endm", ".rept": ".endr", ".irp": ".endr", ".irpc": ".endr"}
_IF_ZERO_TESTS = {".if": "!=", ".ifne": "!=", ".ifeq": "==", ".ifgt": ">", ".ifge": ">=",
                  ".iflt": "<", ".ifle": "<="}
_IF_OPENERS = {*_IF_ZERO_TESTS, ".ifdef", ".ifndef", ".ifc", ".ifnc", ".ifb", ".ifnb"}
_CONDITIONALS = {*_IF_OPENERS, ".elseif", ".else", ".endif"}
_KERNEL_MACROS = ("ENTRY", "ENDPROC", "END", "W", "ARM", "THUMB", "ARM_BE8")
_LABEL_RE = re.compile(rf"\s*({_IDENT}|\d+):(?!:)")
_LOCAL_REF_RE = re.compile(r"(?<![\w.$])(\d+)([bf])(?![\w.$])")
_DIRECTIVE_RE = re.compile(r"(\.[A-Za-z0-9_.]+)\s*(.*)$", re.S)
_ASSIGN_RE = re.compile(rf"({_IDENT})\s*=(?!=)\s*(.*)$", re.S)
_WORD_RE = re.compile(r"(\S+)\s*(.*)$", re.S)
_PC_RELATIVE_RE = re.compile(r"(b|bl|adr|ldr|ldrb|str|strb|ldrh|ldrsh|ldrsb|ldrd|strh|strd)"
                             r"(eq|ne|cs|hs|cc|lo|mi|pl|vs|vc|hi|ls|ge|lt|gt|le|al)?")
_MNEMONIC_RE = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:\.[A-Za-z0-9]+)*")
_IMM_START_RE = re.compile(r"#\s*(?::(lower16|upper16):)?|:(lower16|upper16):")


def _split_outside_strings(text: str, separators: str) -> list[str]:
    """Split at `separators` that are not inside "strings" or parentheses."""
    parts, depth, start, quoted, i = [], 0, 0, False, 0
    while i < len(text):
        c = text[i]
        if quoted:
            if c == "\\":
                i += 1
            elif c == '"':
                quoted = False
        elif c == '"':
            quoted = True
        elif c in "()":
            depth += 1 if c == "(" else -1
        elif c in separators and depth <= 0:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    parts.append(text[start:])
    return parts


def _outside_strings(text: str, fn: Callable[[str], str]) -> str:
    """Apply `fn` to the parts of `text` that are not "string literals"."""
    pieces = re.split(r'("(?:\\.|[^"\\])*"?)', text)
    return "".join(p if i % 2 else fn(p) for i, p in enumerate(pieces))


def _strip_comments(source: str) -> Iterator[tuple[int, str]]:
    """Yield (line number, text) without @, // and /* */ comments; strings and 'c constants kept."""
    in_block = False
    for number, line in enumerate(source.splitlines(), 1):
        out, i, quoted = [], 0, False
        while i < len(line):
            if in_block:
                end = line.find("*/", i)
                if end < 0:
                    break
                in_block, i = False, end + 2
                out.append(" ")
                continue
            c = line[i]
            if quoted:
                if c == "\\":
                    out.append(line[i:i + 2])
                    i += 2
                    continue
                quoted = c != '"'
            elif c == '"':
                quoted = True
            elif c == "'" or line.startswith("\\@", i):   # 'c constant; \@ in a macro body
                out.append(line[i:i + 2])
                i += 2
                continue
            elif c == "@" or line.startswith("//", i):
                break
            elif line.startswith("/*", i):
                in_block, i = True, i + 2
                continue
            out.append(c)
            i += 1
        yield number, "".join(out)


_ESCAPES = {"n": 10, "t": 9, "r": 13, "b": 8, "f": 12, "v": 11, "a": 7, "e": 27}


def _unescape(body: str) -> bytes:
    """GNU as string escapes: \\n \\t..., \\NNN octal, \\xHH hex; any other \\c is c."""
    out, i = bytearray(), 0
    while i < len(body):
        c = body[i]
        if c != "\\" or i + 1 == len(body):
            out += c.encode()
            i += 1
            continue
        nxt = body[i + 1]
        octal = re.match(r"[0-7]{1,3}", body[i + 1:])
        hexa = re.match(r"[xX]([0-9a-fA-F]+)", body[i + 1:])
        if octal:
            out.append(int(octal.group(0), 8) & 0xFF)
            i += 1 + octal.end()
        elif hexa:
            out.append(int(hexa.group(1), 16) & 0xFF)
            i += 1 + hexa.end()
        else:
            out += bytes([_ESCAPES[nxt]]) if nxt in _ESCAPES else nxt.encode()
            i += 2
    return bytes(out)


def _take_call(text: str, name: str) -> tuple[str, str] | None:
    """If `text` starts with `name(...)`, return (the text between the parentheses, the rest)."""
    m = re.match(rf"{name}\s*\(", text)
    if not m:
        return None
    depth, i = 1, m.end()
    while i < len(text) and depth:
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        i += 1
    return None if depth else (text[m.end():i - 1].strip(), text[i:].strip())


def _find_immediates(operands: str) -> Iterator[tuple[int, int, str, str]]:
    """Yield (start, end, half, expression) for each #expr, #:lower16:expr or :upper16:expr."""
    pos = 0
    while (m := _IMM_START_RE.search(operands, pos)) is not None:
        end, depth = m.end(), 0
        while end < len(operands):
            c = operands[end]
            if c == "'":
                end += 2
                continue
            if c in "()":
                depth += 1 if c == "(" else -1
            elif c in ",]}!" and depth <= 0:
                break
            end += 1
        end = min(end, len(operands))
        yield m.start(), end, m.group(1) or m.group(2) or "", operands[m.end():end]
        pos = max(end, m.end() + 1)


class _Preprocessor:
    """Turns a user's source into `_Stmt`s: comments, directives, macros, local labels, encodings."""

    def __init__(self, filename: str, constants: dict[str, int]):
        self.filename = filename
        self.stmts: list[_Stmt] = []
        self.labels: dict[str, int] = {}
        self.globals: dict[str, int] = {}
        self.equs: dict[str, list[tuple[int, tuple, int]]] = {}
        self.predefined = frozenset(constants)
        self.macros: dict[str, _Macro] = {}
        self.blocks: list[_Block] = []
        self.conds: list[_Cond] = []
        self.local_counts: dict[str, int] = {}
        self.forward_refs: dict[str, tuple[int, str]] = {}    # generated name -> (line, "1f")
        self.expansions = 0
        self.depth = 0
        self.unaligned = False      # data of a size that is not a multiple of 4 since the last insn
        for name, value in constants.items():
            text = f"-{-value:#x}" if value < 0 else f"{value:#x}"
            self._define_equ(name, ("num", value))
            self._emit(_Stmt(0, f".equ {name}, {text}", f".set {name}, {text}", " (predefined)",
                             kind="equ"))

    def run(self, source: str) -> _Unit:
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
        return _Unit(self.stmts, self.labels, self.globals, self.equs)

    def _error(self, line: int, message: str, where: str = "") -> AsmError:
        return AsmError(self.filename, line, message + where)

    def _emit(self, stmt: _Stmt) -> None:
        if len(self.stmts) >= _MAX_STATEMENTS:
            raise self._error(stmt.line, f"more than {_MAX_STATEMENTS} statements after expansion")
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
        elif _WORD_RE.match(text).group(1).lower() in self.macros:
            self._expand_macro(line, text, where)
        else:
            self._instruction(line, text, where)

    def _kernel_macro(self, line: int, text: str, where: str) -> bool:
        """The Linux <asm/...> macros hyp code uses: ENTRY, ENDPROC, END, W, ARM, THUMB, ARM_BE8."""
        for name in _KERNEL_MACROS:
            call = _take_call(text, name)
            if call is not None:
                arg, rest = call
                replacement = {"ENTRY": f".globl {arg}; {arg}: {rest}", "W": f"{arg} {rest}",
                               "ARM": f"{arg}; {rest}"}.get(name, rest)
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
        def rename(m: re.Match) -> str:
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

    # -- directives

    def _directive(self, line: int, name: str, args: str, text: str, where: str) -> None:
        if name in _DROPPED:
            return
        if name in _THUMB or (name == ".code" and args == "16"):
            raise self._error(line, "Thumb is not supported (hypemu runs ARM state only)", where)
        if name in (".code", ".syntax"):
            if args.lower() not in ("32", "unified"):
                raise self._error(line, f"{name} {args}: only .code 32 and .syntax unified", where)
        elif name in (".section", ".pushsection"):
            self._section(line, name, args, where)
        elif name in _NON_TEXT:
            raise self._error(line, f"{name}: sections other than text are not supported", where)
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

    def _section(self, line: int, name: str, args: str, where: str) -> None:
        parts = [p.strip().strip('"') for p in _split_outside_strings(args, ",")]
        section, flags = parts[0], parts[1] if len(parts) > 1 else ""
        if not (section == ".text" or section.endswith(".text") or section.startswith(".text.")
                or "x" in flags):
            raise self._error(line, f"{name} {section}: sections other than text are not supported",
                              where)

    def _global(self, line: int, name: str, args: str, where: str) -> None:
        for symbol in (a.strip() for a in args.split(",")):
            if not _IDENT_RE.fullmatch(symbol):
                raise self._error(line, f"{name}: {symbol!r} is not a symbol name", where)
            self.globals.setdefault(symbol, line)

    def _define_equ(self, name: str, tree: tuple, line: int = 0) -> None:
        self.equs.setdefault(name, []).append((len(self.stmts), tree, line))

    def _check_expr(self, line: int, expr: str, where: str) -> None:
        """Reject an expression that keystone would compute differently from GNU as."""
        try:
            _parse_expr(expr)
        except _Ambiguous as e:
            raise self._error(line, str(e), where) from None
        except _ExprError:
            pass

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

    def _align(self, line: int, name: str, args: str, text: str, where: str) -> None:
        parts = [p.strip() for p in args.split(",")] if args else ["2"]
        value = self._constant(line, parts[0], name, where)
        size = value if name == ".balign" else 1 << value if 0 <= value <= 63 else -1
        if not 0 < size <= 1 << _MAX_ALIGN_POWER or size & (size - 1):
            raise self._error(line, f"{name} {parts[0]}: the alignment must be a power of two up to "
                                    f"{1 << _MAX_ALIGN_POWER} bytes", where)
        extra = [str(self._constant(line, p, name, where)) if p else "" for p in parts[1:3]]
        self.unaligned = self.unaligned and size < 4
        self._emit(_Stmt(line, text, ", ".join([f".balign {size}", *extra]), where, "other",
                         directive=name))

    def _space(self, line: int, name: str, args: str, text: str, where: str) -> None:
        values = [self._constant(line, p.strip(), name, where) for p in args.split(",")]
        count, size = values[0], values[1] if name == ".fill" and len(values) > 1 else 1
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

    def _anchor(self, line: int, text: str, where: str, checks: tuple, trees: list) -> str | None:
        """Put a label before the next statement when it has checks or an expression uses '.'."""
        if not checks and not any("." in _symbols_of(t) for t in trees):
            return None
        label = f"{_GENERATED}S{len(self.stmts)}"
        self._emit(_Stmt(line, text, f"{label}:", where, "label", label, checks=checks))
        return label

    # -- conditional assembly

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

    # -- .macro / .rept / .irp / .irpc

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
        word, rest = _WORD_RE.match(text).groups()
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
        def substitute(m: re.Match) -> str:
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

    # -- instructions

    def _instruction(self, line: int, text: str, where: str) -> None:
        mnemonic, operands = _WORD_RE.match(text).groups()
        if not _MNEMONIC_RE.fullmatch(mnemonic):   # keystone hangs on statements like '>> ~' or '*/'
            raise self._error(line, f"expected an instruction or a directive, not {text!r}", where)
        operands = self._rename_local_refs(line, operands.strip(), where)
        checks: list[tuple] = []
        if self.unaligned:   # data of odd size came before: check that this instruction is aligned
            checks.append(("aligned",))
            self.unaligned = False
        word = self._special(line, mnemonic.lower(), operands, where)
        if word is not None:
            self._anchor(line, text, where, tuple(checks), [])
            self._emit(_Stmt(line, text, f".word {word:#010x}", where))
            return
        checks += self._pc_relative_checks(line, mnemonic.lower(), operands, where)
        template, found = operands, []
        for start, end, half, expr in reversed(list(_find_immediates(operands))):
            self._check_expr(line, expr, where)
            try:
                tree = _parse_expr(expr)
            except _ExprError as e:
                if half:     # keystone gets :lower16: wrong anyway, and hangs on some of these
                    raise self._error(line, f":{half}: {e}", where) from None
                continue     # not ours to judge: keystone will accept or reject it
            if half or not (tree[0] == "num" or tree[0] == "-" and tree[1][0] == "num"):
                found.append((tree, half or "#"))   # keystone misreads e.g. #(1 << 12) - 1
                template = f"{template[:start]}{_MARK}{len(found) - 1}{_MARK}{template[end:]}"
        anchor = self._anchor(line, text, where, tuple(checks), [t for t, _ in found])
        imms = tuple(_Imm(tree, form, len(self.stmts), anchor) for tree, form in found)
        self._emit(_Stmt(line, text, f"{mnemonic} {template}".strip(), where, imms=imms))

    def _pc_relative_checks(self, line: int, mnemonic: str, operands: str, where: str) -> list:
        """What to verify in keystone's encoding of a PC-relative instruction: it encodes an
        out-of-range branch or an unencodable ADR offset as garbage, without an error."""
        m = _PC_RELATIVE_RE.fullmatch(mnemonic)
        if not m or not operands:
            return []
        last = _split_outside_strings(operands, ",")[-1].strip()
        if last.startswith("="):
            self._check_expr(line, last[1:], where)
            kind = "literal" if m.group(1) == "ldr" else None
        else:
            kind = "target" if not last.startswith(("[", "#", "{")) else None
        if kind is None or last.lower() in _REGISTERS:
            return []
        try:
            return [(kind, _parse_expr(last.removeprefix("=")))]
        except _ExprError:
            return []

    def _special(self, line: int, mnemonic: str, operands: str, where: str) -> int | None:
        """The encoding of ERET, HVC, SMC or a banked MSR/MRS; None for any other instruction."""
        m = _SPECIAL_RE.fullmatch(mnemonic)
        if not m:
            return None
        op, cond = m.group(1), _CONDITIONS[m.group(2)] if m.group(2) else _COND_AL
        args = [a.strip() for a in operands.split(",")] if operands else []
        if op in ("mrs", "msr"):
            return self._banked(line, op, cond, args, where)
        if op == "eret":
            if args:
                raise self._error(line, "eret takes no operands", where)
            return _encode_eret(cond)
        if op == "hvc" and m.group(2):
            raise self._error(line, f"{mnemonic}: HVC cannot be conditional (ARM ARM B9.3.4)", where)
        if len(args) != 1:
            raise self._error(line, f"{op} needs one immediate operand", where)
        imm = self._constant(line, args[0].removeprefix("#"), f"{op} immediate", where)
        limit = 0xFFFF if op == "hvc" else 0xF
        if not 0 <= imm <= limit:
            raise self._error(line, f"{op} immediate {imm:#x} is out of range 0..{limit:#x}", where)
        return _encode_hvc(imm) if op == "hvc" else _encode_smc(cond, imm)

    def _banked(self, line: int, op: str, cond: int, args: list[str], where: str) -> int | None:
        if len(args) != 2:
            return None
        reg, banked = (args[0], args[1]) if op == "mrs" else (args[1], args[0])
        if banked.lower() not in _BANKED:
            return None      # CPSR/SPSR forms: keystone knows them
        number = _REGISTERS.get(reg.lower())
        if number is None:
            raise self._error(line, f"{op} {banked}: {reg!r} is not a core register", where)
        if number == 15:
            raise self._error(line, f"{op} {banked} with the PC is UNPREDICTABLE", where)
        r, sysm = _BANKED[banked.lower()]
        if op == "mrs":
            return _encode_mrs_banked(cond, number, r, sysm)
        return _encode_msr_banked(cond, r, sysm, number)


class _Lookup:
    """Symbol values for `_evaluate` at statement `pos`: .set/.equ definitions, then labels.

    Labels have values only once `addresses` (from a keystone pass) are known."""

    def __init__(self, equs, labels, addresses: Mapping[str, int] | None, pos: int,
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


# --------------------------------------------------------------------------------------------------
# Building: keystone passes, symbol addresses, checks, and locating keystone's failures


def _build(source: str, base: int, constants: dict[str, int], filename: str) -> Program:
    unit = _Preprocessor(filename, constants).run(source)
    return _Builder(unit, base, filename).build()


class _Builder:
    """Runs keystone over a `_Unit` and reads back every label's address.

    After the user's statements come `.ltorg` (where keystone would put a pending pool anyway: at the
    end), one `.word label` per label and a sentinel word; the code is what precedes them. When some
    immediate needs label addresses, a first pass with placeholders finds them and a second pass
    (same sizes: every ARM instruction is 4 bytes) encodes the real values."""

    def __init__(self, unit: _Unit, base: int, filename: str):
        self.unit, self.base, self.filename = unit, base, filename
        self.labels = [s.label for s in unit.stmts if s.label]

    def build(self) -> Program:
        texts, needs_addresses = self._render(None)
        first = self._run(texts) if needs_addresses else None
        if first is not None:
            texts, _ = self._render(first[1])
        code, addresses = self._run(texts)
        if first is not None and first[1] != addresses:
            raise AsmError(self.filename, self.unit.stmts[-1].line,
                           "internal error: label addresses moved between passes")
        self._check(code, addresses)
        symbols = {name: addresses[name] for name in self.labels if not name.startswith(_GENERATED)}
        return Program(code, self.base, _FrozenMap(symbols), frozenset(self.unit.globals),
                       self.filename)

    def _error(self, stmt: _Stmt, message: str) -> AsmError:
        return AsmError(self.filename, stmt.line, f"{message}{stmt.where}")

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
        result = _WORKER.assemble(self._request(texts), self.base)
        trailer = 4 * (len(self.labels) + 1)
        if result.code is None or len(result.code) < trailer or not result.code.endswith(
                _SENTINEL.to_bytes(4, "little")):
            raise self._locate(texts, result)
        code = result.code[:-trailer]
        words = result.code[-trailer:-4]
        addresses = {label: int.from_bytes(words[4 * i:4 * i + 4], "little")
                     for i, label in enumerate(self.labels)}
        return code, addresses

    def _check(self, code: bytes, addresses: dict[str, int]) -> None:
        if len(code) > _MAX_BYTES or self.base + len(code) > 1 << 32:
            raise AsmError(self.filename, self.unit.stmts[-1].line if self.unit.stmts else 0,
                           f"program of {len(code)} bytes at {self.base:#x} is too large")
        for index, stmt in enumerate(self.unit.stmts):
            for check in stmt.checks:
                address = addresses[stmt.label]
                if check[0] == "aligned" and address % 4:
                    raise self._error(stmt, f"instruction at unaligned address {address:#x} (put "
                                            f".align 2 before {stmt.source!r})")
                if check[0] != "aligned":
                    self._check_pc_relative(stmt, index + 1, check, code, addresses)

    def _check_pc_relative(self, stmt: _Stmt, pos: int, check: tuple, code: bytes,
                           addresses: dict[str, int]) -> None:
        """Decode keystone's encoding and compare where it points with what the source says."""
        address = addresses[stmt.label]
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
        loaded = _word_at(code, target - self.base)
        if loaded is None or expected is not None and loaded != expected:
            held = "nothing" if loaded is None else f"{loaded:#x}"
            raise self._error(stmt, f"the literal of {stmt.source!r} is not where the load reads "
                                    f"({target:#x} holds {held}): the pool is probably more than "
                                    "4 KiB away; add a .ltorg closer to the load")

    # -- keystone said no: find the statement

    def _locate(self, texts: list[str], failure: _KsResult) -> AsmError:
        """Bisect for the shortest failing prefix; later labels and .set lines stay defined."""
        def attempt(k: int) -> _KsResult | None:
            result = _WORKER.assemble(self._request(texts, k), self.base)
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
        body = _WORD_RE.match(stmt.text).group(2) if stmt.kind != "label" else ""
        names = re.findall(rf"(?<![\w.$#'])({_IDENT})", re.sub(r'"(?:\\.|[^"\\])*"', "", body))
        return [n for n in names if n not in self.unit.equs and n not in self.unit.labels
                and not _OPERAND_KEYWORD_RE.fullmatch(n.lower())]


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


_OPERAND_KEYWORD_RE = re.compile(
    r"[rcpdsq]\d+|sb|sl|fp|ip|sp|lr|pc|lsl|lsr|asr|ror|rrx|(?:cpsr|spsr|apsr)(?:_\w+)?|fpscr|fpexc"
    r"|fpsid|mvfr[01]|sy|st|ld|ish|ishst|ishld|nsh|nshst|nshld|osh|oshst|oshld|un|unst|be|le|[aif]+"
    r"|\.")


# --------------------------------------------------------------------------------------------------
# Keystone, in a child process: it can segfault or hang on some inputs


@dataclass(frozen=True)
class _KsResult:
    code: bytes | None            # None: keystone raised, crashed or hung
    error: str = ""               # keystone's message, or what happened to the child


_WORKER_BOOT = ("import runpy, sys; del sys.path[0]; "
                "runpy.run_path(sys.argv[1], run_name='__hypemu_keystone_worker__')")


class _KeystoneWorker:
    """A fork server for keystone: the child imports keystone once and never assembles; each
    request runs in a fresh fork of it and exits. So every request meets keystone in the same
    pristine state (measured: after a few successful requests in one process, `strd.w {r0-r3, pc},
    [pc, #-8]` segfaults, in a fresh process it is an ordinary error), and a crash kills only the
    fork. A hang is killed with the whole process group after `_KS_TIMEOUT` seconds."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._owner = 0
        self._buffer = b""

    def assemble(self, source: str, base: int) -> _KsResult:
        request = (json.dumps({"source": source, "base": base, "timeout": _KS_TIMEOUT}) + "\n").encode()
        with self._lock:
            for retry in (False, True):
                proc = self._ensure()
                try:
                    proc.stdin.write(request)
                    proc.stdin.flush()
                except OSError:
                    self.stop()
                    if retry:
                        return _KsResult(None, "the keystone process died")
                    continue
                return self._reply(proc)
        raise AssertionError("unreachable")

    def _ensure(self) -> subprocess.Popen:
        if self._proc is not None and self._owner == os.getpid() and self._proc.poll() is None:
            return self._proc
        self._proc, self._owner, self._buffer = None, os.getpid(), b""   # a forked parent: anew
        proc = subprocess.Popen([sys.executable, "-c", _WORKER_BOOT, os.path.abspath(__file__)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, close_fds=True, start_new_session=True)
        self._proc = proc
        line = self._read_line(proc, max(_KS_TIMEOUT, 60.0))
        hello = json.loads(line) if line else {"fatal": "it exited at start-up"}
        if "ready" not in hello:
            self.stop()
            raise RuntimeError(f"hypemu.asm: cannot start keystone: {hello.get('fatal')}")
        return proc

    def _reply(self, proc: subprocess.Popen) -> _KsResult:
        line = self._read_line(proc, _KS_TIMEOUT)
        if line is None:
            self.stop()
            return _KsResult(None, f"keystone did not finish within {_KS_TIMEOUT:g} s (killed)")
        if not line:
            self.stop()
            return _KsResult(None, "the keystone process died")
        reply = json.loads(line)
        if "code" in reply:
            return _KsResult(bytes.fromhex(reply["code"]))
        if "crash" in reply:
            return _KsResult(None, f"keystone crashed ({reply['crash']})")
        return _KsResult(None, f"keystone: {reply['error']}")

    def _read_line(self, proc: subprocess.Popen, timeout: float) -> bytes | None:
        """One line from the child: b"" at end of file, None after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        fd = proc.stdout.fileno()
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                return None
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return b""
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    def stop(self) -> None:
        proc, self._proc, self._buffer = self._proc, None, b""
        if proc is None or self._owner != os.getpid():
            return
        try:
            os.killpg(proc.pid, signal.SIGKILL)    # the server and a fork that may be hanging
        except OSError:
            pass
        proc.wait()
        for stream in (proc.stdin, proc.stdout):
            try:
                stream.close()
            except OSError:
                pass


_WORKER = _KeystoneWorker()
atexit.register(_WORKER.stop)


def _worker_main() -> None:
    """The fork server: one JSON request per line on stdin, one JSON reply per line on the
    original stdout; keystone's own prints go to stderr, never into the replies."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    try:
        import keystone
    except Exception as e:  # noqa: BLE001 - reported to the parent, which raises
        print(json.dumps({"fatal": f"{type(e).__name__}: {e}"}), file=replies, flush=True)
        return
    print(json.dumps({"ready": True}), file=replies, flush=True)
    for line in sys.stdin:
        pid = os.fork()
        if pid == 0:
            _assemble_and_exit(keystone, json.loads(line), replies)
        _, status = os.waitpid(pid, 0)
        if os.WIFSIGNALED(status):
            crash = signal.Signals(os.WTERMSIG(status)).name
            print(json.dumps({"crash": crash}), file=replies, flush=True)
        elif os.WEXITSTATUS(status):
            print(json.dumps({"crash": f"exit status {os.WEXITSTATUS(status)}"}), file=replies,
                  flush=True)


def _assemble_and_exit(keystone, request: dict, replies) -> None:
    """In a fork of the server: one keystone run, one reply, exit. No symbol resolver: installing
    one makes keystone drop literal-pool words (after `.set X, 4294901760`, `ldr r1, =X`)."""
    status = 1
    try:   # should the parent die while keystone hangs, nobody would kill this fork: it does itself
        signal.alarm(int(request.get("timeout", 60)) + 2)
        ks = keystone.Ks(keystone.KS_ARCH_ARM, keystone.KS_MODE_ARM)
        try:
            code, _ = ks.asm(request["source"], request["base"], True)
            reply = {"code": (code or b"").hex()}
        except keystone.KsError as e:
            reply = {"error": str(e)}
        replies.write(json.dumps(reply) + "\n")
        replies.flush()
        status = 0
    finally:
        os._exit(status)


if __name__ == "__hypemu_keystone_worker__":
    _worker_main()
