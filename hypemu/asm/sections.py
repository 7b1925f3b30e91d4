"""Sections: which one each statement is written in (`.text`, `.data`, `.bss`, `.section`,
`.pushsection`/`.popsection`, `.previous`), and the placement that puts them one after another.

Why here and not in keystone: keystone 0.9.2 swallows the code after `.section` or `.pushsection`.
So keystone never sees a section directive; the statements are regrouped by section before it runs,
and the sections placed in a fixed order that a linker script can reproduce:

- the executable sections (`.text` first, then the others in the order they first appear),
- then the other allocated ones (`.data` first, then the others: `"aw"`, `"a"`, `.rodata`...),
- then `.bss` and the other `%nobits` ones,

each aligned to its largest `.align` (except the first with content: it starts at the base
the program is assembled for, whatever its alignment; at least 4 bytes for a section holding instructions, as GNU
as records), the gaps between them filled with zeros, and the literal pool of a section at its end
(where GNU as dumps it). A section without flags whose name does not tell its kind (GNU as makes
it non-allocated: no linker would load it) is refused.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from .source import _split_outside_strings
from .unit import _GENERATED, _Section, _Stmt

if TYPE_CHECKING:               # the state lives in _Preprocessor; mypy checks against it
    from .parts import PreprocessorParts as _Mixin
else:
    _Mixin = object

_KINDS = ("text", "data", "bss")


def _kind_by_name(name: str) -> str | None:
    """GNU as's default flags for a section named without any (its `obj_elf_section` table)."""
    if name == ".text" or name.startswith(".text."):
        return "text"
    if name in (".bss", ".sbss", ".tbss") or name.startswith((".bss.", ".sbss.")):
        return "bss"
    if re.match(r"\.(data|rodata|sdata|tdata|init_array|fini_array)(\.|$)", name):
        return "data"
    return None


class _Sections(_Mixin):
    """The section state of `_Preprocessor` (a mixin: the state lives there)."""

    def _init_sections(self) -> None:
        self.section = ".text"
        self.previous = ".text"
        self.section_stack: list[tuple[str, str]] = []
        self.section_kinds: dict[str, str] = {".text": "text"}
        self.section_aligns: dict[str, int] = {}

    def _switch(self, section: str) -> None:
        self.previous, self.section = self.section, section

    def _section_directive(self, line: int, name: str, args: str, where: str) -> None:
        """.text/.data/.bss, .section NAME[, "flags"[, %type]], .pushsection, .popsection, .previous."""
        if name == ".popsection":
            if not self.section_stack:
                raise self._error(line, ".popsection without .pushsection", where)
            self.section, self.previous = self.section_stack.pop()
            return
        if name == ".previous":
            self._switch(self.previous)
            return
        if name in (".text", ".data", ".bss"):
            if args:
                raise self._error(line, f"{name} {args}: subsections are not supported", where)
            section = self._declare(line, name, "", "", where)
        else:
            parts = [p.strip() for p in _split_outside_strings(args, ",")]
            section = parts[0].strip('"') if parts and parts[0] else ""
            if not section:
                raise self._error(line, f"{name} needs a section name", where)
            flags = parts[1].strip('"') if len(parts) > 1 else ""
            kind = parts[2] if len(parts) > 2 else ""
            section = self._declare(line, section, flags, kind, where)
        if name == ".pushsection":
            self.section_stack.append((self.section, self.previous))
        if name == ".bss":    # GNU as's `.bss` leaves the section `.previous` returns to (measured)
            self.section = section
        else:
            self._switch(section)

    def _declare(self, line: int, section: str, flags: str, type_: str, where: str) -> str:
        if section in self.section_kinds:
            return section
        if "x" in flags:
            kind = "text"
        elif type_.lstrip("%@").lower() == "nobits":
            kind = "bss"
        elif flags:
            kind = _kind_by_name(section) or "data" if "a" in flags else ""
        else:
            kind = _kind_by_name(section) or ""
        if kind not in _KINDS:
            raise self._error(line, f"section {section}: no \"a\" flag and a name that does not say "
                                    "its kind, so GNU as would not allocate it; give its flags "
                                    "(\"ax\" code, \"aw\" data, \"a\" read-only data)", where)
        self.section_kinds[section] = kind
        return section

    def _record_align(self, size: int) -> None:
        self.section_aligns[self.section] = max(self.section_aligns.get(self.section, 1), size)

    def _section_kind(self) -> str:
        return self.section_kinds[self.section]

    def _placed(self, stmts: list[_Stmt]) -> tuple[list[_Stmt], tuple[_Section, ...]]:
        """The statements regrouped section by section in placement order, each section opened by
        its alignment and a start label and closed by `.ltorg` and an end label."""
        order = sorted(self.section_kinds, key=lambda s: (
            _KINDS.index(self.section_kinds[s]), s not in (".text", ".data", ".bss")))
        by_section: dict[str, list[_Stmt]] = {s: [] for s in order}
        for stmt in stmts:
            by_section[stmt.section].append(stmt)
        placed, sections, started = [], [], False
        for index, name in enumerate(order):
            body, kind = by_section[name], self.section_kinds[name]
            align = self.section_aligns.get(name, 1)
            if any(s.kind == "insn" for s in body):
                align = max(align, 4)
            start, end = f"{_GENERATED}section{index}", f"{_GENERATED}section{index}_end"
            line = body[0].line if body else 0
            gap = f".balign {align}" if started else ""    # the first byte stays at the base
            started = started or any(s.kind != "equ" for s in body)
            placed += [_Stmt(line, "", gap, kind="other", section=name),
                       _Stmt(line, "", f"{start}:", kind="label", label=start, section=name),
                       *body,
                       _Stmt(line, "", ".ltorg", kind="other", section=name),
                       _Stmt(line, "", f"{end}:", kind="label", label=end, section=name)]
            self.labels[start] = self.labels[end] = line
            sections.append(_Section(name, kind, align, start, end))
        return placed, tuple(sections)
