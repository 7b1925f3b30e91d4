"""Guest code from ELF files (``hyp.code: {elf: PATH}``): a linked kernel (``vmlinux``) or
relocatable objects (``init.o``, ``hyp-stub.o``...), as a ``loader.GuestSource``.

Why a producer of its own: a built kernel fixes what the built-in code leaves to the scenario (where
the image sits, where its idmap text is) and brings its own stub and, perhaps, its own runtime HYP
text; the kernel side only sees regions. What each form gives:

- a vmlinux (ET_EXEC): every allocated section at PA = VA - PAGE_OFFSET + the RAM base (the
  ``kernel`` chunks of the image), PAGE_OFFSET = ``_text`` rounded down to 16 MiB and TEXT_OFFSET
  the rest of ``_text`` (the kernel links ``_text`` at PAGE_OFFSET + TEXT_OFFSET; hypemu's
  page_offset is 16 MiB aligned), the init region [__kvm_hyp_init, __kvm_hyp_init_end), which must
  start the idmap text [__hyp_idmap_text_start, __hyp_idmap_text_end) when the ELF has those
  symbols; the stub region from the first of its symbols (``__hyp_stub_vectors``,
  ``__hyp_stub_install``...) to the end of ``__hyp_stub_vectors`` when the ELF has the stub (its
  data, ``__boot_cpu_mode``, stays where the vmlinux puts it); the runtime region [__kvm_hyp_code_start, __kvm_hyp_code_end) with its
  vectors ``__kvm_hyp_vector`` when it has them. What the ELF lacks comes from the built-in code;
  hypemu's own PL1 page (kvm_call_hyp and the return sentinel) replaces the image's first page,
  so none of the regions may lie there.
- relocatable objects: each supplies the regions whose symbols it defines (init, stub or runtime;
  one each), relocated at the address the layout gives that region, exactly as the built-in
  assembler's output would be placed.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from .elf_image import ElfError, ElfImage, load_elf
from .layout import ConfigError
from .loader import INIT_END, INIT_START, AsmSource, FixedPlace, GuestImage, Placement, Region
from .lpae import PAGE_SIZE

_PAGE_OFFSET_ALIGN = 16 << 20
STUB_START, STUB_VECTORS = "__hyp_stub_install", "__hyp_stub_vectors"
STUB_SYMBOLS = (STUB_VECTORS, STUB_START, "__hyp_stub_install_secondary", "__hyp_set_vectors",
                "__hyp_get_vectors", "__hyp_stub_end")
RUNTIME_START, RUNTIME_END, RUNTIME_VECTORS = ("__kvm_hyp_code_start", "__kvm_hyp_code_end",
                                               "__kvm_hyp_vector")
IDMAP_START, IDMAP_END = "__hyp_idmap_text_start", "__hyp_idmap_text_end"
_MARKS = {"init": INIT_START, "stub": STUB_START, "runtime": RUNTIME_VECTORS}


@functools.lru_cache(maxsize=64)
def _cached(path: str, mtime: float, size: int, base: int) -> ElfImage:
    return load_elf(path, base)


def read_elf(path: Path, base: int = 0) -> ElfImage:
    """``load_elf``, once per file version and base."""
    try:
        info = os.stat(path)
    except OSError as e:
        raise ElfError(str(path), f"cannot read: {e.strerror or e}") from None
    return _cached(str(path), info.st_mtime, info.st_size, base)


def _regions_of(image: ElfImage) -> list[str]:
    return [name for name, mark in _MARKS.items() if mark in image.symbols]


def check_elf_files(paths: tuple[Path, ...]) -> None:
    """The files can serve: one vmlinux, or objects each defining one region, init among them."""
    images = [read_elf(p) for p in paths]
    executables = [i for i in images if not i.relocatable]
    if executables and len(images) > 1:
        raise ElfError(executables[0].filename, "a linked image must be the only ELF given")
    seen: dict[str, str] = {}
    for image in images:
        found = _regions_of(image)
        if image.relocatable and len(found) > 1:
            raise ElfError(image.filename, f"defines the {' and '.join(found)} code: give them as "
                                           "separate objects, or link a vmlinux")
        if not found and image.relocatable:
            raise ElfError(image.filename, f"defines none of {', '.join(_MARKS.values())}")
        for name in found:
            if name in seen:
                raise ElfError(image.filename, f"the {name} code is also in {seen[name]}")
            seen[name] = image.filename
    if "init" not in seen:
        raise ElfError(images[0].filename, f"no symbol {INIT_START} (the HYP init code)")


def fixed_place(paths: tuple[Path, ...]) -> FixedPlace:
    """What a vmlinux fixes about the layout (nothing for objects): PAGE_OFFSET and TEXT_OFFSET
    from ``_text``, the init code's offset, the span it occupies, its runtime text's offset."""
    check_elf_files(paths)
    vmlinux = read_elf(paths[0])
    if vmlinux.relocatable:
        return FixedPlace()
    s = vmlinux.symbols
    if "_text" not in s:
        raise ElfError(vmlinux.filename, "no symbol _text: cannot tell PAGE_OFFSET and "
                                         "TEXT_OFFSET (is it a vmlinux?)")
    text = s["_text"]
    page_offset = text & ~(_PAGE_OFFSET_ALIGN - 1)
    end = max(section.end for section in vmlinux.sections)
    runtime = s[RUNTIME_START] - text if RUNTIME_START in s else None
    if runtime is not None and (runtime % PAGE_SIZE or RUNTIME_END not in s):
        raise ElfError(vmlinux.filename, f"{RUNTIME_START} at {s[RUNTIME_START]:#x} must be "
                                         f"page-aligned and {RUNTIME_END} defined")
    return FixedPlace(page_offset, text - page_offset, s[INIT_START] - text, end - text, runtime)


@dataclass(frozen=True)
class ElfSource:
    """Guest code from one vmlinux or from relocatable objects; ``builtin`` supplies the rest."""

    paths: tuple[Path, ...]
    builtin: AsmSource

    def __post_init__(self) -> None:
        check_elf_files(self.paths)

    @property
    def _vmlinux(self) -> ElfImage | None:
        image = read_elf(self.paths[0])
        return None if image.relocatable else image

    def _object(self, region: str, base: int) -> ElfImage | None:
        for path in self.paths:
            if region in _regions_of(read_elf(path)):
                return read_elf(path, base)
        return None

    def fixed(self) -> FixedPlace:
        return fixed_place(self.paths)

    def sizes(self, constants: Mapping[str, int]) -> tuple[int, int]:
        init, runtime = self._init(0), None
        vmlinux = self._vmlinux
        if vmlinux is not None and RUNTIME_START in vmlinux.symbols:
            runtime = vmlinux.symbols[RUNTIME_END] - vmlinux.symbols[RUNTIME_START]
        elif vmlinux is None and (image := self._object("runtime", 0)) is not None:
            runtime = max(s.end for s in image.sections)
        if runtime is None:
            runtime = self.builtin.sizes(constants)[1]
        return len(init.code), runtime

    def link(self, placement: Placement, constants: Mapping[str, int]) -> GuestImage:
        builtin = self.builtin.link(placement, constants)
        if self._vmlinux is None:
            regions = {name: self.object_region(name, placement) for name in ("stub", "runtime")}
            init = self._init(placement.base["init"])
            return GuestImage(builtin.pl1, regions["stub"] or builtin.stub, init,
                              regions["runtime"] or builtin.runtime)
        return self._link_vmlinux(self._vmlinux, placement, builtin)

    # -- relocatable objects

    def _init(self, base: int) -> Region:
        vmlinux = self._vmlinux
        if vmlinux is not None:
            return _vmlinux_init(vmlinux, base)
        image = self._object("init", base)
        assert image is not None          # __post_init__ made sure
        return object_region("init", image, base, init=True)

    def object_region(self, name: str, placement: Placement) -> Region | None:
        image = self._object(name, placement.base[name])
        if image is None:
            return None
        return object_region(name, image, placement.base[name], load_pa=placement.load_pa[name])

    # -- a vmlinux

    def _link_vmlinux(self, elf: ElfImage, placement: Placement, builtin: GuestImage) -> GuestImage:
        image_pa = placement.base["pl1"]             # the PA of _text
        to_pa = image_pa - elf.symbols["_text"]
        init = _vmlinux_init(elf, placement.base["init"])
        if init.base != elf.symbols[INIT_START] + to_pa:
            raise ConfigError(f"{elf.filename}: {INIT_START} is linked at PA "
                              f"{elf.symbols[INIT_START] + to_pa:#x}, the layout puts the init "
                              f"code at {init.base:#x}")
        stub, runtime = builtin.stub, builtin.runtime
        if STUB_START in elf.symbols:
            start, end = _stub_span(elf)
            stub = _vmlinux_region(elf, "stub", start, end, to_pa, 0)
        if RUNTIME_START in elf.symbols:
            runtime = _vmlinux_region(elf, "runtime", elf.symbols[RUNTIME_START],
                                      elf.symbols[RUNTIME_END], to_pa, -to_pa)
            if runtime.load_pa != placement.load_pa["runtime"]:
                raise ConfigError(f"{elf.filename}: the runtime HYP text is linked at PA "
                                  f"{runtime.load_pa:#x}, the layout puts it at "
                                  f"{placement.load_pa['runtime']:#x}")
        for region in (init, stub, runtime):
            if region.load_pa < image_pa + PAGE_SIZE and region.filename == elf.filename:
                raise ConfigError(f"{elf.filename}: the {region.name} code lies in the image's "
                                  "first page, where hypemu keeps its PL1 caller")
        return GuestImage(builtin.pl1, stub, init, runtime, _kernel_chunks(elf, to_pa, image_pa))


def _kernel_chunks(elf: ElfImage, to_pa: int, image_pa: int) -> tuple[Region, ...]:
    """The vmlinux's sections at their PAs, past the first page (hypemu's PL1 page)."""
    chunks = []
    for section in elf.sections:
        skip = max(0, image_pa + PAGE_SIZE - (section.address + to_pa))
        if skip >= len(section.data):
            continue
        pa = section.address + to_pa + skip
        chunks.append(Region(f"kernel {section.name}", section.data[skip:], pa, pa, {},
                             frozenset(), elf.filename,
                             text_size=None if section.kind == "text" else 0))
    return tuple(chunks)


def object_region(name: str, image: ElfImage, base: int, *, load_pa: int | None = None,
                   init: bool = False) -> Region:
    """A relocated object as one region: its sections from ``base`` (text, then data)."""
    code = bytearray()
    for section in image.sections:
        code += bytes(section.address - base - len(code)) + section.data
    texts = [s.end for s in image.sections if s.kind == "text"]
    text_size = max(texts) - base if texts else 0
    symbols = dict(image.symbols)
    if init:
        start, end = symbols[INIT_START], symbols.get(INIT_END, -1)
        if start != base or end <= start:
            raise ElfError(image.filename, f"{INIT_START} must start the init code and "
                                           f"{INIT_END} follow it")
        code = code[:end - base]
        text_size = min(text_size, len(code))
    return Region(name, bytes(code), base, base if load_pa is None else load_pa, symbols,
                  image.globals, image.filename, image.thumb_code(base, base + text_size, symbols),
                  None if text_size == len(code) else text_size)


def _vmlinux_init(elf: ElfImage, pa: int) -> Region:
    s = elf.symbols
    if INIT_END not in s or s[INIT_END] <= s[INIT_START]:
        raise ElfError(elf.filename, f"no {INIT_END} after {INIT_START}")
    if IDMAP_START in s and s[IDMAP_START] != s[INIT_START]:
        raise ElfError(elf.filename, f"{INIT_START} ({s[INIT_START]:#x}) does not start the idmap "
                                     f"text ({IDMAP_START} {s[IDMAP_START]:#x}): not modelled")
    code = elf.bytes_at(s[INIT_START], s[INIT_END])
    symbols = {k: v - s[INIT_START] + pa for k, v in s.items() if s[INIT_START] <= v <= s[INIT_END]}
    return Region("init", code, pa, pa, symbols, elf.globals & set(symbols), elf.filename,
                  elf.thumb_code(s[INIT_START], s[INIT_END], _names_in(elf, s[INIT_START],
                                                                      s[INIT_END])))


def _stub_span(elf: ElfImage) -> tuple[int, int]:
    """The stub's extent: from the first of its symbols to the end of its vector table (eight
    words) or ``__hyp_stub_end``, whichever is last."""
    found = [elf.symbols[name] for name in STUB_SYMBOLS if name in elf.symbols]
    ends = [elf.symbols[STUB_VECTORS] + 32] if STUB_VECTORS in elf.symbols else []
    ends += [elf.symbols["__hyp_stub_end"]] if "__hyp_stub_end" in elf.symbols else []
    return min(found), max(ends or [elf.section_of(elf.symbols[STUB_START]).end])


def _vmlinux_region(elf: ElfImage, name: str, first: int, end: int, to_pa: int,
                    to_base: int) -> Region:
    """[first, end) of a vmlinux as a region loaded at its PA and linked at PA + ``to_base``."""
    code = elf.bytes_at(first, end)
    pa = first + to_pa
    symbols = {k: v + to_pa + to_base for k, v in elf.symbols.items() if first <= v < end}
    return Region(name, code, pa + to_base, pa, symbols, elf.globals & set(symbols), elf.filename,
                  elf.thumb_code(first, end, symbols))


def _names_in(elf: ElfImage, start: int, end: int) -> list[str]:
    return [name for name, value in elf.symbols.items() if start <= value < end]


def elf_isa(paths: tuple[Path, ...]) -> str:
    """The instruction set of the ELF's HYP init code (``kernel.isa``): ``thumb2`` when its
    symbols mark it Thumb (a Thumb function, a ``$t``), else ``arm``."""
    check_elf_files(paths)
    image = next(image for image in map(read_elf, paths)
                 if not image.relocatable or "init" in _regions_of(image))
    start = image.symbols[INIT_START]
    end = image.symbols.get(INIT_END, start + 4)
    return "thumb2" if image.thumb_code(start, end, _names_in(image, start, end)) else "arm"
