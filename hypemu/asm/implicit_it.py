"""Implicit IT blocks for Thumb-2 code, as GNU as makes them with `-mimplicit-it=always` (the flag
a CONFIG_THUMB2_KERNEL build assembles with, so kernel sources write `mrceq` with no `it eq`).

Keystone accepts a conditional Thumb instruction only inside an IT block. In Thumb mode, before
each conditional instruction outside an explicit IT block, this inserts `it <cond>`, or extends the
implicit block the previous instruction opened (up to four instructions, each with the block's
condition or its inverse, with nothing else in between). A conditional branch `b<cond>` has an
encoding of its own and gets no IT (it ends an open block); any other instruction that branches
(BX, BLX, BL, or one that writes the PC) must be the last of its block, so it closes the block it
is in. An explicit `it...` instruction covers the instructions it names. Deviation: the grouping
can differ from GNU as's in corner cases (a block is never continued across a label or a
directive); the code means the same either way.
"""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING, Optional

from .unit import _GENERATED, _Stmt

if TYPE_CHECKING:               # the state lives in _Preprocessor; mypy checks against it
    from .parts import PreprocessorParts as _Mixin
else:
    _Mixin = object

_CONDS = ("eq", "ne", "cs", "cc", "mi", "pl", "vs", "vc", "hi", "ls", "ge", "lt", "gt", "le")
_ALIASES = {"hs": "cs", "lo": "cc"}
_INVERSE = {c: _CONDS[i ^ 1] for i, c in enumerate(_CONDS)}
# The base mnemonics a condition suffix can follow (UAL order: base, S, condition)
_BASES = frozenset("""
    adc add adr and asr bfc bfi bic bl blx bx clrex clz cmn cmp cps dbg dmb dsb eor eret hvc isb
    ldm ldmdb ldmia ldr ldrb ldrbt ldrd ldrex ldrh ldrsb ldrsh ldrt lsl lsr mcr mcrr mla mls mov
    movt movw mrc mrrc mrs msr mul mvn nop orn orr pld pli pop push rbit rev rev16 revsh ror rrx
    rsb sbc sbfx sdiv sev smc smlal smull stm stmdb stmia str strb strbt strd strex strh strt sub
    svc sxtb sxth teq tst ubfx udiv umlal umull uxtb uxth wfe wfi yield
    """.split())
_CONDITIONAL_RE = re.compile(r"([a-z][a-z0-9]*?)(s?)"
                             r"(eq|ne|cs|hs|cc|lo|mi|pl|vs|vc|hi|ls|ge|lt|gt|le)(?:\.[wn])?")
_IT_RE = re.compile(r"it([te]{0,3})")
_WRITES_PC_RE = re.compile(r"\s*pc\s*(,|$)|.*\{[^}]*\bpc\b", re.I)   # pc first, or in a list


def _branches(mnemonic: str, operands: str) -> bool:
    """BX/BLX/BL, or an instruction whose destination (or register list) holds the PC."""
    return mnemonic.startswith(("bx", "blx", "bl")) or bool(_WRITES_PC_RE.match(operands))


def condition_of(mnemonic: str) -> Optional[str]:
    """The condition suffix of a Thumb mnemonic (``mrceq`` -> ``eq``, ``addseq.w`` -> ``eq``),
    None for an unconditional one (``teq``, ``bls`` is ``b`` + ``ls``: see ``needs_it``)."""
    m = _CONDITIONAL_RE.fullmatch(mnemonic)
    if m is None or m.group(1) not in _BASES:
        return None
    return _ALIASES.get(m.group(3), m.group(3))


@dataclasses.dataclass
class _OpenBlock:
    cond: str
    index: int          # the IT statement in stmts
    letters: str        # t/e for the instructions after the first
    seen: int           # len(stmts) when its last instruction came: what follows must be only
                        # that instruction (and the anchor label of its checks)


class _ImplicitIt(_Mixin):
    """The implicit IT blocks of `_Preprocessor` (a mixin: the state lives there)."""

    it_block: Optional[_OpenBlock]
    it_explicit: int     # instructions an explicit IT still covers

    def _implicit_it(self, line: int, mnemonic: str, operands: str, text: str,
                     where: str) -> None:
        """Called for each Thumb instruction before any statement of it is emitted."""
        mnemonic = mnemonic.lower()
        self._open_or_extend(line, mnemonic, text, where)
        if self.it_block is not None and _branches(mnemonic, operands):
            self.it_block = None

    def _end_implicit_it(self) -> None:
        """What comes next is not part of an open implicit IT block."""
        self.it_block = None

    def _open_or_extend(self, line: int, mnemonic: str, text: str, where: str) -> None:
        if self.it_explicit:
            self.it_explicit -= 1
            return
        explicit = _IT_RE.fullmatch(mnemonic)
        if explicit is not None:
            self.it_block, self.it_explicit = None, 1 + len(explicit.group(1))
            return
        cond = condition_of(mnemonic)
        if cond is None or mnemonic.startswith("b") and not mnemonic.startswith(("bl", "bx",
                                                                                  "bfc", "bfi",
                                                                                  "bic")):
            self.it_block = None          # unconditional, or a conditional branch: block ends
            return
        block = self.it_block
        if (block is not None and self._contiguous(block) and len(block.letters) < 3
                and cond in (block.cond, _INVERSE[block.cond])):
            block.letters += "t" if cond == block.cond else "e"
            it = self.stmts[block.index]
            self.stmts[block.index] = dataclasses.replace(
                it, text=f"it{block.letters} {block.cond}")
            block.seen = len(self.stmts)
            return
        self._emit(_Stmt(line, text, f"it {cond}", where))
        self.it_block = _OpenBlock(cond, len(self.stmts) - 1, "", len(self.stmts))

    def _contiguous(self, block: _OpenBlock) -> bool:
        since = self.stmts[block.seen:]
        anchors = [s for s in since if s.kind == "label" and (s.label or "").startswith(
            f"{_GENERATED}S")]
        insns = [s for s in since if s.kind == "insn"]
        return len(insns) == 1 and len(anchors) + 1 == len(since)
