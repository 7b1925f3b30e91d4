"""Instructions: immediates taken out to be evaluated here, checks planned for PC-relative ones,
and ERET/HVC/SMC/banked MSR/MRS turned into `.word`s."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Iterator

from .encode import (_BANKED, _COND_AL, _CONDITIONS, _REGISTERS, _SPECIAL_RE, _encode_eret,
                     _encode_eret_t32, _encode_hvc, _encode_hvc_t32, _encode_mrs_banked,
                     _encode_mrs_banked_t32, _encode_msr_banked, _encode_msr_banked_t32,
                     _encode_smc, _encode_smc_t32)
from .expr import _ExprError, _Lookup, _NeedsAddresses, _Undefined, _evaluate, _parse_expr
from .source import _split_outside_strings, _split_word
from .unit import _MARK, Tree, _Imm, _Stmt

if TYPE_CHECKING:               # the state lives in _Preprocessor; mypy checks against it
    from .parts import PreprocessorParts as _Mixin
else:
    _Mixin = object


_PC_RELATIVE_RE = re.compile(r"(b|bl|adr|ldr|ldrb|str|strb|ldrh|ldrsh|ldrsb|ldrd|strh|strd)"
                             r"(eq|ne|cs|hs|cc|lo|mi|pl|vs|vc|hi|ls|ge|lt|gt|le|al)?")
# Thumb: the PC-relative forms the checks decode (B, BL, CBZ/CBNZ, ADR, LDR literal), with .w/.n
_THUMB_PC_RELATIVE_RE = re.compile(r"(b|bl|adr|ldr|cbz|cbnz)"
                                   r"(eq|ne|cs|hs|cc|lo|mi|pl|vs|vc|hi|ls|ge|lt|gt|le|al)?(?:\.[wn])?")
_MNEMONIC_RE = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:\.[A-Za-z0-9]+)*")
_IMM_START_RE = re.compile(r"#\s*(?::(lower16|upper16):)?|:(lower16|upper16):")


def _is_modified_immediate(value: int) -> bool:
    """An ARM modified immediate (A5.2.4): an 8-bit value rotated right by an even amount."""
    return any(((value << r | value >> (32 - r)) & 0xFFFFFFFF) < 256 for r in range(0, 32, 2))


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


class _Instructions(_Mixin):
    """The instructions of `_Preprocessor` (a mixin: the state lives there)."""

    unaligned: bool      # shared with _Directives (declared here too: mypy infers mixin state late)

    def _instruction(self, line: int, text: str, where: str) -> None:
        mnemonic, operands = _split_word(text)
        if not _MNEMONIC_RE.fullmatch(mnemonic):   # keystone hangs on statements like '>> ~' or '*/'
            raise self._error(line, f"expected an instruction or a directive, not {text!r}", where)
        operands = self._rename_local_refs(line, operands.strip(), where)
        if self._section_kind() == "bss":
            raise self._error(line, f"instruction in {self.section}: it holds no data", where)
        mnemonic, operands = self._literal_as_move(line, mnemonic, operands, where)
        if self.thumb:
            self._implicit_it(line, mnemonic, operands, text, where)
        checks: list[tuple[Any, ...]] = []
        if self.unaligned:   # data of odd size came before: check that this instruction is aligned
            checks.append(("aligned",))
            self.unaligned = False
        word = self._special(line, mnemonic.lower(), operands, where)
        if word is not None:
            self._anchor(line, text, where, tuple(checks), [])
            encoded = (f".short {word >> 16:#06x}, {word & 0xFFFF:#06x}" if self.thumb
                       else f".word {word:#010x}")
            self._emit(_Stmt(line, text, encoded, where))
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

    def _literal_as_move(self, line: int, mnemonic: str, operands: str,
                         where: str) -> tuple[str, str]:
        """`ldr rX, =constant` as GNU as 2.40 assembles it in ARM state: `mov rX, #c` when c is an
        ARM modified immediate, else `mvn rX, #~c` when ~c is one, else the literal load. A
        constant is a value of numbers and .set/.equ symbols defined above the load (GNU as folds
        those while it reads the line); anything else stays a literal. GNU as also folds a
        difference of labels it has already placed in the same fragment: hypemu refuses an
        expression naming more than one label rather than guess that. Thumb-2: the literal stays
        (GNU as's Thumb choice, with its own immediates and MOVW, is not modelled)."""
        m = re.fullmatch(r"ldr(eq|ne|cs|hs|cc|lo|mi|pl|vs|vc|hi|ls|ge|lt|gt|le|al)?", mnemonic.lower())
        parts = _split_outside_strings(operands, ",")
        if self.thumb or not m or len(parts) != 2 or not parts[1].strip().startswith("="):
            return mnemonic, operands
        expr = parts[1].strip()[1:]
        try:
            tree = _parse_expr(expr)
        except _ExprError:
            return mnemonic, operands
        value = self._constant_above(line, tree, where)
        if value is None:
            return mnemonic, operands
        value &= 0xFFFFFFFF
        for op, imm in (("mov", value), ("mvn", ~value & 0xFFFFFFFF)):
            if _is_modified_immediate(imm):
                return f"{op}{m.group(1) or ''}", f"{parts[0].strip()}, #{imm:#x}"
        return mnemonic, operands

    def _constant_above(self, line: int, tree: Tree, where: str) -> int | None:
        """The value of `tree` if it is a constant at this line; None if it names a label or a
        symbol not yet defined; an error if it names several labels (GNU as may fold those)."""
        lookup = _Lookup(self.equs, self.labels, None, len(self.stmts))
        try:
            return _evaluate(tree, lookup)
        except (_ExprError, RecursionError):
            return None
        except (_NeedsAddresses, _Undefined):
            if len(self._labels_in(tree, 0)) > 1:
                raise self._error(line, "ldr =: an expression of several labels (GNU as turns it "
                                        "into a MOV/MVN when it can fold it, hypemu cannot tell "
                                        "when); use a .equ of the value or a single address",
                                  where) from None
            return None

    def _labels_in(self, tree: Tree, depth: int) -> list[str]:
        """Each reading of a label, '.' or a name not yet defined (a label to come, maybe) in an
        expression, through the .set/.equ definitions."""
        if tree[0] == "num":
            return []
        if tree[0] != "sym":
            return [name for sub in tree[1:] for name in self._labels_in(sub, depth)]
        name = tree[1]
        if name in self.equs and depth < 100:
            return self._labels_in(self.equs[name][-1][1], depth + 1)
        return [] if name in self.equs else [name]

    def _pc_relative_checks(self, line: int, mnemonic: str, operands: str, where: str) -> list[tuple[Any, ...]]:
        """What to verify in keystone's encoding of a PC-relative instruction: it encodes an
        out-of-range branch or an unencodable ADR offset as garbage, without an error."""
        m = (_THUMB_PC_RELATIVE_RE if self.thumb else _PC_RELATIVE_RE).fullmatch(mnemonic)
        if not m or not operands:
            return []
        last = _split_outside_strings(operands, ",")[-1].strip()
        if last.startswith("="):
            self._check_expr(line, last[1:], where)
            kind = "literal" if m.group(1) == "ldr" else None
        else:
            kind = "target" if not last.startswith(("[", "#", "{")) else None
        if self.thumb and kind == "literal" and m.group(1) != "ldr":
            kind = None
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
            return _encode_eret_t32() if self.thumb else _encode_eret(cond)
        if op == "hvc" and m.group(2):
            raise self._error(line, f"{mnemonic}: HVC cannot be conditional (ARM ARM B9.3.4)", where)
        if len(args) != 1:
            raise self._error(line, f"{op} needs one immediate operand", where)
        imm = self._constant(line, args[0].removeprefix("#"), f"{op} immediate", where)
        limit = 0xFFFF if op == "hvc" else 0xF
        if not 0 <= imm <= limit:
            raise self._error(line, f"{op} immediate {imm:#x} is out of range 0..{limit:#x}", where)
        if self.thumb:
            return _encode_hvc_t32(imm) if op == "hvc" else _encode_smc_t32(imm)
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
        if self.thumb:
            return (_encode_mrs_banked_t32(number, r, sysm) if op == "mrs"
                    else _encode_msr_banked_t32(r, sysm, number))
        if op == "mrs":
            return _encode_mrs_banked(cond, number, r, sysm)
        return _encode_msr_banked(cond, r, sysm, number)
