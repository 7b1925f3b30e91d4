"""The guest loader: code for the regions of the kernel image, where each region is linked and
loaded, and how it gets into RAM.

Why a layer of its own: the kernel side needs four pieces of guest code (its PL1 HVC caller, the
HYP stub, the HYP init code, the runtime HYP text) and does not care whether they were assembled
from ``asm/`` or come out of a kernel build (a tree, an ELF). Whatever produces them hands over a
``GuestImage``: per region the code bytes, the address it is linked at, the PA it is loaded at, and
its symbols. ``GuestSource`` is what a producer implements: the sizes it needs before placement,
then the image at the placed addresses. ``AsmSource`` is the one built in.

Loading fills the whole image span with ``IMAGE_POISON`` first (``THUMB_POISON`` for a Thumb-2
image): a real kernel has other code there; hypemu makes a stray jump into it (what a missing
bounce page causes) an undefined instruction at the address it landed on, instead of a slide
through zeros.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping, Protocol, Union

from .asm import Program, assemble_file
from .asm.program import label_address

IMAGE_POISON = 0xE7FDEAF0    # UDF #0xDEA0, ARM encoding
THUMB_POISON = 0xDEF0DEF0    # UDF #0xF0 (T1) in every halfword: Thumb code lands on one anywhere
INIT_START, INIT_END = "__kvm_hyp_init", "__kvm_hyp_init_end"
REGIONS = ("pl1", "stub", "init", "runtime")


class GuestContractError(ValueError):
    """Init code that breaks the contract the kernel side relies on (its labels and their order):
    bad input, not a layout."""


@dataclass(frozen=True)
class Region:
    """One region of guest code: ``code`` linked at ``base`` (the address it runs at: a PA, or a
    HYP VA for the runtime text), loaded at ``load_pa``. Its first ``text_size`` bytes are code
    (None: all of it); the data sections follow them, loaded as plain bytes."""

    name: str
    code: bytes
    base: int
    load_pa: int
    symbols: Mapping[str, int]
    globals: frozenset[str]
    filename: str
    thumb: bool = False      # Thumb-2 code (a CONFIG_THUMB2_KERNEL build, or ELF symbols' bit 0)
    text_size: int | None = None

    @property
    def text(self) -> bytes:
        """The code part (what the CPU scans for instructions to emulate)."""
        return self.code if self.text_size is None else self.code[:self.text_size]

    @property
    def data(self) -> bytes:
        """The data sections after the code (.data, .bss...)."""
        return b"" if self.text_size is None else self.code[self.text_size:]

    def address(self, name: str) -> int:
        """The link address of label ``name`` (KeyError, naming the labels, if there is none)."""
        return label_address(self.symbols, name, self.filename)

    def entry(self, name: str) -> int:
        """The interworking address of code label ``name``, as a BX/BLX or a function pointer
        takes it: bit 0 set for Thumb code."""
        return self.address(name) | self.thumb

    @property
    def end(self) -> int:
        return self.base + len(self.code)

    def with_code(self, code: bytes) -> Region:
        """The same region holding other bytes of the same length (patched code)."""
        if len(code) != len(self.code):
            raise ValueError(f"{self.name}: patched code is {len(code)} bytes, not {len(self.code)}")
        return dataclasses.replace(self, code=code)


@dataclass(frozen=True)
class GuestImage:
    """The guest code of the kernel image, one ``Region`` each. The init region holds exactly
    [__kvm_hyp_init, __kvm_hyp_init_end): what the kernel side maps and bounces. ``kernel`` holds
    the rest of a prebuilt kernel image (a vmlinux's sections), loaded before the regions."""

    pl1: Region        # kvm_call_hyp (the PL1 HVC caller)
    stub: Region       # __hyp_stub_install and the stub vectors
    init: Region       # the HYP init vectors and code
    runtime: Region    # the runtime HYP vectors, dispatcher and functions
    kernel: tuple[Region, ...] = ()

    def regions(self) -> Iterator[Region]:
        return (getattr(self, name) for name in REGIONS)

    @property
    def thumb(self) -> bool:
        """Some region is Thumb code: Thumb instructions can run (the engine must count them)."""
        return any(region.thumb for region in self.regions())

    def replace(self, region: Region) -> GuestImage:
        """This image with ``region`` (same name) in place of its own."""
        regions = {name: region if name == region.name else getattr(self, name) for name in REGIONS}
        return GuestImage(regions["pl1"], regions["stub"], regions["init"], regions["runtime"],
                          self.kernel)


@dataclass(frozen=True)
class Placement:
    """Where each region goes: link address and load PA per region name."""

    base: Mapping[str, int]
    load_pa: Mapping[str, int]


@dataclass(frozen=True)
class FixedPlace:
    """What a prebuilt producer's code fixes about the layout (None: the scenario decides):
    PAGE_OFFSET, the image's offset in RAM, the init code's offset from the image start, the bytes
    its image occupies from there (hypemu's own pages go after them) and its runtime text's
    offset."""

    page_offset: int | None = None
    text_offset: int | None = None
    hyp_idmap_offset: int | None = None
    reserved: int = 0
    hyp_text_offset: int | None = None


class GuestSource(Protocol):
    """A producer of guest code (assembler, kernel tree, ELF). ``constants`` are the values the
    kernel side predefines for a source it assembles; a prebuilt producer (an ELF) ignores them
    and must refuse a placement its code was not linked for."""

    def sizes(self, constants: Mapping[str, int]) -> tuple[int, int]:
        """(init code size, runtime text size) in bytes: what the layout must make room for."""

    def link(self, placement: Placement, constants: Mapping[str, int]) -> GuestImage:
        """The image with every region at its placed address."""

    def fixed(self) -> FixedPlace:
        """What this code fixes about the layout (``FixedPlace()``: nothing)."""


def check_init_contract(program: Program) -> tuple[int, int]:
    """The init-code contract: ``__kvm_hyp_init`` (the vector table) starts the code and
    ``__kvm_hyp_init_end`` follows it. Returns (start, end); GuestContractError otherwise."""
    missing = [name for name in (INIT_START, INIT_END) if name not in program.symbols]
    if missing:
        raise GuestContractError(f"{program.filename}: no label {' or '.join(missing)} (the init "
                                 f"code must define {INIT_START} and {INIT_END})")
    start, end = program.symbols[INIT_START], program.symbols[INIT_END]
    if start != program.base:
        raise GuestContractError(f"{program.filename}: {INIT_START} must start the init code (the "
                                 f"vector table, 32-byte aligned; found at +{start - program.base:#x})")
    if end <= start:
        raise GuestContractError(f"{program.filename}: {INIT_END} ({end - program.base:#x}) must "
                                 f"come after {INIT_START} ({start - program.base:#x})")
    return start, end


def region_of(name: str, program: Program, load_pa: int, size: int | None = None) -> Region:
    """A region from an assembled program (its first ``size`` bytes when given)."""
    code = program.code if size is None else program.code[:size]
    text_size = min(program.text_size, len(code))
    return Region(name, code, program.base, load_pa, program.symbols, program.globals,
                  program.filename, program.thumb, None if text_size == len(code) else text_size)


class RegionCode(Protocol):
    """The source of one region's code that is not a plain file of ``asm/`` (a kernel tree's
    preprocessed source): it assembles itself, and places its errors in its own files."""

    def assemble(self, base: int, constants: Mapping[str, int]) -> Program:
        """The code assembled to start at ``base``."""


@dataclass(frozen=True)
class AsmSource:
    """Guest code assembled from GNU-as sources: one per region, a file or a ``RegionCode`` (the
    assembler caches, so assembling twice, to measure and to link, costs one assembly per
    address)."""

    files: Mapping[str, Union[Path, RegionCode]]    # region name -> its source
    thumb: bool = False          # assemble as Thumb-2 (kernel.isa: thumb2)

    def _assemble(self, name: str, base: int, constants: Mapping[str, int]) -> Program:
        source = self.files[name]
        if isinstance(source, Path):
            return assemble_file(source, base, constants=constants, thumb=self.thumb)
        return source.assemble(base, constants)

    def fixed(self) -> FixedPlace:
        return FixedPlace()

    def sizes(self, constants: Mapping[str, int]) -> tuple[int, int]:
        start, end = check_init_contract(self._assemble("init", 0, constants))
        return end - start, len(self._assemble("runtime", 0, constants).code)

    def link(self, placement: Placement, constants: Mapping[str, int]) -> GuestImage:
        regions = {}
        for name in REGIONS:
            program = self._assemble(name, placement.base[name], constants)
            size = None
            if name == "init":
                start, end = check_init_contract(program)
                size = end - start
            regions[name] = region_of(name, program, placement.load_pa[name], size)
        return GuestImage(regions["pl1"], regions["stub"], regions["init"], regions["runtime"])


class CodeTarget(Protocol):
    """Where code is loaded: the board's RAM as the CPUs see code (``cpu.CpuComplex``)."""

    def load_code(self, pa: int, code: bytes, thumb: bool = False) -> None:
        """Write code at ``pa`` (the CPU patches what it must emulate; ``thumb``: Thumb code)."""

    def write_ram(self, pa: int, data: bytes) -> None:
        """Write plain bytes at ``pa``."""

    def fill_ram(self, pa: int, data: bytes) -> None:
        """Write ``data``, one 32-bit word repeated, at ``pa`` (a reused engine maps such a span
        copy-on-write from a template instead of writing every page: engine_pool)."""


@functools.lru_cache(maxsize=4)
def poison(size: int, thumb: bool = False) -> bytes:
    """``size`` bytes (a multiple of 4) of the poison instruction (of Thumb code: ``thumb``).
    Cached: a sweep poisons spans of the same few sizes on every board (up to 16 MiB each)."""
    return (THUMB_POISON if thumb else IMAGE_POISON).to_bytes(4, "little") * (size // 4)


def load_image(target: CodeTarget, image: GuestImage, span: tuple[int, int]) -> None:
    """Fill the image span [start, end) with the poison, then load every region at its PA: its
    code as code, its data as plain bytes (a data word is never taken for an instruction)."""
    start, end = span
    target.fill_ram(start, poison(end - start, image.init.thumb))
    for region in (*image.kernel, *image.regions()):
        target.load_code(region.load_pa, region.text, region.thumb)
        if region.data:
            target.write_ram(region.load_pa + len(region.text), region.data)
