"""ARM ELF files as guest code: a linked image (a ``vmlinux``: sections at their link VAs) or a
relocatable object (``init.o``, ``hyp-stub.o``: sections placed and relocated here).

Why a module of its own: the kernel side takes guest code as ``loader.Region``s and should not care
whether they were assembled by hypemu, by the user's toolchain or come out of a kernel build; this
module turns an ELF file into bytes at addresses and symbols, and nothing else. pyelftools reads the
file; every malformed input (not ELF, another machine, big-endian, truncated, an unsupported
relocation) is an ``ElfError`` naming the file.

A relocatable object's allocated sections are placed one after another at the base it is linked
for, in the order the built-in assembler uses (``hypemu.asm.sections``: text, then data, then bss;
``.text``/``.data`` first; the first section at the base, the others at their alignment), so an
object from GNU as links to the very bytes the built-in assembler produces. The relocations such
objects hold are applied (ELF for the ARM Architecture, IHI 0044, section 5.6): R_ARM_ABS32,
R_ARM_REL32, R_ARM_CALL/R_ARM_JUMP24 (and the older R_ARM_PC24), R_ARM_MOVW_ABS_NC and
R_ARM_MOVT_ABS, and for Thumb code R_ARM_THM_CALL, R_ARM_THM_JUMP24, R_ARM_THM_MOVW_ABS_NC and
R_ARM_THM_MOVT_ABS; any other is refused by name. T (bit 0 of a Thumb function's address) is set
where the ABI's formula has it (ABS32, REL32, MOVW); a branch's target is taken to be in the state
its instruction says (BL, B: its own; BLX: the other), hypemu adds no interworking veneers.

Thumb code is told by its symbols (ARM ELF, 5.5.3 and 5.5.5): a function symbol whose value has
bit 0 set, and the mapping symbols ``$t`` (Thumb code starts here), ``$a`` (ARM code) and ``$d``
(data). ``ElfImage.thumb_code`` says whether a span is Thumb code; a span that holds both is
refused (a region of guest code is in one instruction set).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, BinaryIO, Iterable, Mapping

from elftools.common.exceptions import ELFError as _PyElfError
from elftools.elf.elffile import ELFFile

from .errors import InputError

SHF_ALLOC, SHF_EXECINSTR = 0x2, 0x4
_KINDS = ("text", "data", "bss")
R_ARM_NONE, R_ARM_PC24, R_ARM_ABS32, R_ARM_REL32 = 0, 1, 2, 3
R_ARM_CALL, R_ARM_JUMP24, R_ARM_V4BX, R_ARM_MOVW_ABS_NC, R_ARM_MOVT_ABS = 28, 29, 40, 43, 44
R_ARM_THM_CALL, R_ARM_THM_JUMP24, R_ARM_THM_MOVW_ABS_NC, R_ARM_THM_MOVT_ABS = 10, 30, 47, 48
_SUPPORTED = ("R_ARM_ABS32, R_ARM_REL32, R_ARM_CALL, R_ARM_JUMP24, R_ARM_PC24, R_ARM_MOVW_ABS_NC, "
              "R_ARM_MOVT_ABS, R_ARM_THM_CALL, R_ARM_THM_JUMP24, R_ARM_THM_MOVW_ABS_NC and "
              "R_ARM_THM_MOVT_ABS")
_RELOCATION_NAMES = {0: "R_ARM_NONE", 1: "R_ARM_PC24", 2: "R_ARM_ABS32", 3: "R_ARM_REL32",
                     28: "R_ARM_CALL", 29: "R_ARM_JUMP24", 40: "R_ARM_V4BX",
                     43: "R_ARM_MOVW_ABS_NC", 44: "R_ARM_MOVT_ABS", 42: "R_ARM_PREL31",
                     10: "R_ARM_THM_CALL", 47: "R_ARM_THM_MOVW_ABS_NC", 48: "R_ARM_THM_MOVT_ABS",
                     30: "R_ARM_THM_JUMP24", 25: "R_ARM_BASE_PREL", 26: "R_ARM_GOT_BREL"}


class ElfError(InputError, ValueError):
    """An ELF file hypemu cannot use as guest code; the message starts with the file name."""

    def __init__(self, file: str, message: str):
        super().__init__(f"{file}: {message}")
        self.file = file


@dataclass(frozen=True)
class ElfSection:
    """One allocated section as placed: ``data`` at ``address`` (zeros for bss)."""

    name: str
    kind: str            # text | data | bss
    address: int
    data: bytes

    @property
    def end(self) -> int:
        return self.address + len(self.data)


@dataclass(frozen=True)
class ElfImage:
    """An ELF file's code and data at addresses: link VAs for an executable, ``base`` onwards for
    a relocated object. ``symbols`` holds every named symbol with an address (labels; not the
    absolute ones, which are constants)."""

    filename: str
    relocatable: bool
    sections: tuple[ElfSection, ...]
    symbols: Mapping[str, int]
    globals: frozenset[str]
    thumb: frozenset[str] = frozenset()      # function symbols whose value had bit 0 (Thumb)
    code_marks: tuple[tuple[int, bool], ...] = ()   # ($a or $t address, is $t), by address

    def thumb_code(self, start: int, end: int, names: Iterable[str] = ()) -> bool:
        """[start, end) is Thumb code: a ``$t`` in it (or, with no mapping symbol in it, the last
        one before it in its section is ``$t``), or one of ``names`` is a Thumb function.
        ElfError if the span holds both ARM and Thumb code."""
        states = {thumb for address, thumb in self.code_marks if start <= address < end}
        if not states:
            section = next((s for s in self.sections if s.address <= start < s.end), None)
            before = [(address, thumb) for address, thumb in self.code_marks
                      if section is not None and section.address <= address < start]
            states = {max(before)[1]} if before else set()
        if any(name in self.thumb for name in names):
            states.add(True)
        if len(states) > 1:
            raise ElfError(self.filename, f"[{start:#x}, {end:#x}) holds both ARM ($a) and Thumb "
                                          "($t) code: a region in one instruction set is modelled")
        return states == {True}

    def bytes_at(self, start: int, end: int) -> bytes:
        """The bytes of [start, end), which must lie in one section (ElfError otherwise)."""
        for section in self.sections:
            if section.address <= start and end <= section.end:
                return section.data[start - section.address:end - section.address]
        raise ElfError(self.filename, f"[{start:#x}, {end:#x}) does not lie within one section")

    def section_of(self, address: int) -> ElfSection:
        for section in self.sections:
            if section.address <= address < section.end:
                return section
        raise ElfError(self.filename, f"no section holds address {address:#x}")


def load_elf(path: str | os.PathLike[str], base: int = 0,
             externals: Mapping[str, int] | None = None) -> ElfImage:
    """Read the ARM ELF at ``path``: an executable as linked, an object placed at ``base`` with
    ``externals`` (name -> address) for the symbols it leaves undefined."""
    name = os.fspath(path)
    try:
        with open(name, "rb") as f:
            return _read(name, f, base, externals or {})
    except OSError as e:
        raise ElfError(name, f"cannot read: {e.strerror or e}") from None
    except (_PyElfError, ValueError, KeyError, IndexError, AssertionError) as e:
        if isinstance(e, ElfError):
            raise
        raise ElfError(name, f"not a valid ELF file (truncated or corrupt: {e})") from None


def _read(name: str, f: BinaryIO, base: int, externals: Mapping[str, int]) -> ElfImage:
    head = f.read(20)
    if len(head) < 20 or head[:4] != b"\x7fELF":
        raise ElfError(name, "not an ELF file" if len(head) >= 4 else "truncated: no ELF header")
    f.seek(0)
    elf = ELFFile(f)
    if elf["e_machine"] != "EM_ARM" or elf.elfclass != 32 or not elf.little_endian:
        raise ElfError(name, f"not a 32-bit little-endian ARM ELF (machine {elf['e_machine']}, "
                             f"{elf.elfclass}-bit, {'little' if elf.little_endian else 'big'}-endian)")
    kind = elf["e_type"]
    if kind not in ("ET_EXEC", "ET_REL"):
        raise ElfError(name, f"{kind}: hypemu loads a linked executable (vmlinux) or a relocatable "
                             "object (.o)")
    allocated = [(i, s) for i, s in enumerate(elf.iter_sections()) if _kind(s)]
    if kind == "ET_EXEC":
        addresses = {i: int(s["sh_addr"]) for i, s in allocated}
    else:
        addresses = _place(allocated, base)
    data = {i: bytearray(_contents(name, s)) for i, s in allocated}
    symbols, globals_, thumb, marks = _symbols(elf, addresses)
    if kind == "ET_REL":
        _relocate(name, elf, addresses, data, {**externals, **symbols}, externals)
    sections = tuple(ElfSection(s.name, _kind(s) or "", addresses[i], bytes(data[i]))
                     for i, s in sorted(allocated, key=lambda item: addresses[item[0]]))
    return ElfImage(name, kind == "ET_REL", sections, symbols, frozenset(globals_),
                    frozenset(thumb), tuple(sorted(marks)))


def _kind(section: Any) -> str | None:
    flags = section["sh_flags"]
    if not flags & SHF_ALLOC or section["sh_type"] not in ("SHT_PROGBITS", "SHT_NOBITS"):
        return None               # .ARM.exidx, .ARM.attributes, notes, debug: not guest code
    if flags & SHF_EXECINSTR:
        return "text"
    return "bss" if section["sh_type"] == "SHT_NOBITS" else "data"


def _contents(name: str, section: Any) -> bytes:
    if section["sh_type"] == "SHT_NOBITS":
        return bytes(section["sh_size"])
    data = section.data()
    if len(data) != section["sh_size"]:
        raise ElfError(name, f"truncated: section {section.name} holds {len(data)} of its "
                             f"{section['sh_size']} bytes")
    return bytes(data)


def _place(allocated: list[tuple[int, Any]], base: int) -> dict[int, int]:
    """Addresses for an object's sections, in the built-in assembler's order."""
    order = sorted(allocated, key=lambda item: (_KINDS.index(_kind(item[1]) or "text"),
                                                item[1].name not in (".text", ".data", ".bss"),
                                                item[0]))
    addresses, at, started = {}, base, False
    for index, section in order:
        align = max(int(section["sh_addralign"]), 1)
        if started:
            at = -(-at // align) * align
        addresses[index] = at
        at += int(section["sh_size"])
        started = started or section["sh_size"] > 0
    return addresses


def _symbols(elf: ELFFile, addresses: Mapping[int, int]
             ) -> tuple[dict[str, int], set[str], set[str], list[tuple[int, bool]]]:
    """Named symbols with addresses, the global ones, the Thumb functions (value bit 0, which is
    dropped from the address) and the code mapping symbols ($a, $t: address, is Thumb)."""
    table: Any = elf.get_section_by_name(".symtab")
    symbols: dict[str, int] = {}
    globals_: set[str] = set()
    thumb: set[str] = set()
    marks: list[tuple[int, bool]] = []
    if table is None:
        return symbols, globals_, thumb, marks
    relocatable = elf["e_type"] == "ET_REL"
    for symbol in table.iter_symbols():
        shndx, name = symbol["st_shndx"], symbol.name
        if not name or shndx in ("SHN_UNDEF", "SHN_ABS") or symbol[
                "st_info"]["type"] in ("STT_SECTION", "STT_FILE"):
            continue              # addresses only: an absolute symbol is a constant (.equ)
        value = int(symbol["st_value"])
        if symbol["st_info"]["type"] == "STT_FUNC" and value & 1:
            thumb.add(name)
            value &= ~1
        if relocatable and isinstance(shndx, int):
            if shndx not in addresses:
                continue          # in a section that is not placed (.ARM.exidx, debug)
            value += addresses[shndx]
        if name.startswith("$"):  # a mapping symbol ($a, $t, $d, or $x.suffix)
            if name[1:2] in ("a", "t") and name[2:3] in ("", "."):
                marks.append((value, name[1] == "t"))
            continue
        symbols[name] = value
        if symbol["st_info"]["bind"] in ("STB_GLOBAL", "STB_WEAK"):
            globals_.add(name)
    return symbols, globals_, thumb, marks


def _relocate(name: str, elf: ELFFile, addresses: Mapping[int, int],
              data: dict[int, bytearray], symbols: Mapping[str, int],
              externals: Mapping[str, int]) -> None:
    table: Any = elf.get_section_by_name(".symtab")
    section: Any
    for section in elf.iter_sections():
        if section["sh_type"] == "SHT_RELA":
            raise ElfError(name, f"{section.name}: RELA relocations (ARM objects use REL)")
        if section["sh_type"] != "SHT_REL" or section["sh_info"] not in addresses:
            continue
        target = section["sh_info"]
        for rel in section.iter_relocations():
            symbol = table.get_symbol(rel["r_info_sym"])
            value = _symbol_value(name, symbol, addresses, symbols)
            thumb = symbol["st_info"]["type"] == "STT_FUNC" and int(symbol["st_value"]) & 1
            _apply(name, elf.get_section(target).name, data[target], addresses[target],
                   int(rel["r_offset"]), int(rel["r_info_type"]), value, bool(thumb))


def _symbol_value(name: str, symbol: Any, addresses: Mapping[int, int],
                  symbols: Mapping[str, int]) -> int:
    shndx = symbol["st_shndx"]
    if symbol["st_info"]["type"] == "STT_SECTION":
        if shndx not in addresses:
            raise ElfError(name, f"a relocation against section {shndx}, which is not placed")
        return addresses[shndx]
    if shndx == "SHN_ABS":
        return int(symbol["st_value"])
    if symbol.name not in symbols:
        raise ElfError(name, f"undefined symbol {symbol.name!r}")
    return symbols[symbol.name]


def _apply(name: str, where: str, data: bytearray, section_address: int, offset: int,
           kind: int, value: int, thumb: bool = False) -> None:
    """One REL relocation: the addend is in place (IHI 0044 5.6.1, table 4-8); ``thumb``: the
    symbol is a Thumb function (T = 1)."""
    if offset + 4 > len(data):
        raise ElfError(name, f"{where}+{offset:#x}: relocation outside its section")
    word = int.from_bytes(data[offset:offset + 4], "little")
    place = section_address + offset
    if kind in (R_ARM_NONE, R_ARM_V4BX):
        return
    if kind in _THUMB_KINDS:
        data[offset:offset + 4] = _apply_thumb(name, f"{where}+{offset:#x}",
                                               bytes(data[offset:offset + 4]), place, kind, value,
                                               thumb)
        return
    if kind == R_ARM_ABS32:
        word = (value + word | thumb) & 0xFFFFFFFF
    elif kind == R_ARM_REL32:
        word = ((value + word | thumb) - place) & 0xFFFFFFFF
    elif kind in (R_ARM_PC24, R_ARM_CALL, R_ARM_JUMP24):
        addend = _signed((word & 0xFFFFFF) << 2, 26)
        delta = value + addend - place
        if delta & 3 or not -(1 << 25) <= delta < 1 << 25:
            raise ElfError(name, f"{where}+{offset:#x}: the branch to {value:#x} is out of range "
                                 "(+-32 MiB) or not word-aligned")
        word = word & 0xFF000000 | (delta >> 2) & 0xFFFFFF
    elif kind in (R_ARM_MOVW_ABS_NC, R_ARM_MOVT_ABS):
        addend = _signed((word >> 4) & 0xF000 | word & 0xFFF, 16)
        half = ((value + addend) >> 16 if kind == R_ARM_MOVT_ABS else value + addend | thumb) & 0xFFFF
        word = word & 0xFFF0F000 | (half & 0xF000) << 4 | half & 0xFFF
    else:
        shown = _RELOCATION_NAMES.get(kind, f"relocation type {kind}")
        raise ElfError(name, f"{where}+{offset:#x}: {shown} is not supported (hypemu applies "
                             f"{_SUPPORTED})")
    data[offset:offset + 4] = word.to_bytes(4, "little")


def _signed(value: int, bits: int) -> int:
    return value - (1 << bits) if value & 1 << (bits - 1) else value


_THUMB_KINDS = (R_ARM_THM_CALL, R_ARM_THM_JUMP24, R_ARM_THM_MOVW_ABS_NC, R_ARM_THM_MOVT_ABS)


def _apply_thumb(name: str, where: str, code: bytes, place: int, kind: int, value: int,
                 thumb: bool) -> bytes:
    """A Thumb relocation on the 32-bit instruction in ``code`` (two halfwords, the first one
    first). BL/BLX (T1/T2) and B.W (T4): imm32 = S:I1:I2:imm10:imm11:0 with I = NOT(J XOR S),
    result S + A - P (BLX, to ARM code: from Align(P, 4)); MOVW/MOVT (T3/T1): imm16 =
    imm4:i:imm3:imm8, result (S + A) | T, or (S + A) >> 16."""
    hw1, hw2 = int.from_bytes(code[:2], "little"), int.from_bytes(code[2:], "little")
    if kind in (R_ARM_THM_CALL, R_ARM_THM_JUMP24):
        s = hw1 >> 10 & 1
        i1, i2 = 1 ^ (hw2 >> 13 & 1) ^ s, 1 ^ (hw2 >> 11 & 1) ^ s
        addend = _signed(s << 24 | i1 << 23 | i2 << 22 | (hw1 & 0x3FF) << 12 | (hw2 & 0x7FF) << 1, 25)
        blx = kind == R_ARM_THM_CALL and not hw2 & 0x1000
        delta = value + addend - (place & ~3 if blx else place)
        if delta & (3 if blx else 1) or not -(1 << 24) <= delta < 1 << 24:
            raise ElfError(name, f"{where}: the Thumb branch to {value:#x} is out of range "
                                 f"(+-16 MiB) or not {'word' if blx else 'halfword'}-aligned")
        s = delta >> 24 & 1
        j1, j2 = 1 ^ (delta >> 23 & 1) ^ s, 1 ^ (delta >> 22 & 1) ^ s
        hw1 = hw1 & 0xF800 | s << 10 | delta >> 12 & 0x3FF
        hw2 = hw2 & 0xD000 | j1 << 13 | j2 << 11 | delta >> 1 & 0x7FF
    else:
        imm16 = (hw1 & 0xF) << 12 | (hw1 >> 10 & 1) << 11 | (hw2 >> 12 & 7) << 8 | hw2 & 0xFF
        total = value + _signed(imm16, 16)
        half = (total >> 16 if kind == R_ARM_THM_MOVT_ABS else total | thumb) & 0xFFFF
        hw1 = hw1 & 0xFBF0 | half >> 12 | (half >> 11 & 1) << 10
        hw2 = hw2 & 0x8F00 | (half >> 8 & 7) << 12 | half & 0xFF
    return hw1.to_bytes(2, "little") + hw2.to_bytes(2, "little")
