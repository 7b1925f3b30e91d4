"""The kernel side's own configuration, and the one place that reads it from a ``Scenario``.

Why one adapter: the scenario's shape (its sections, its step and injection entries) belongs to
``hypemu.scenario``; the kernel side, the loader and the injector read only ``KernelConfig``. A
change of the scenario's representation touches ``from_scenario`` and nothing below it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from ..inject import Corrupt, Injection, Remap, Skip
from ..loader import AsmSource, GuestSource
from ..scenario.models import ElfCode, KernelTreeCode
from .designs import DESIGNS

if TYPE_CHECKING:  # pragma: no cover
    from ..scenario import Bank, Scenario


def _asm_dir() -> Path:
    """The guest sources: asm/ of the source tree (editable installs, a checkout), else where a
    wheel install put them (setup.cfg data_files: <prefix>/share/hypemu/asm)."""
    tree = Path(__file__).resolve().parent.parent.parent / "asm"
    if (tree / "hyp-init.S").is_file():
        return tree
    return Path(sys.prefix) / "share" / "hypemu" / "asm"


ASM_DIR = _asm_dir()
BUILTIN_INIT = {name: design.builtin_source for name, design in DESIGNS.items()}
KERNEL_SOURCES = {"pl1": "kvm-call.S", "stub": "hyp-stub.S", "runtime": "hyp-runtime.S"}


@dataclass(frozen=True)
class KernelConfig:
    """What the kernel side is asked to bring up (the ``machine``, ``kernel``, ``hyp``, ``limits``
    and ``inject`` sections of a scenario, as the kernel side uses them)."""

    banks: tuple["Bank", ...]
    cpus: int
    page_offset: int
    text_offset: int
    hyp_idmap_offset: Optional[int]     # None: the init code gets a page of its own
    design: str                         # a DESIGNS key
    trampoline_va: int
    bounce_page: str                    # "auto" or "never"
    call_abi: str                       # a CALL_CONVENTIONS key
    source: GuestSource                 # the guest code
    isa: str                            # "arm" or "thumb2" (CONFIG_THUMB2_KERNEL); the image's
                                        # regions say what each one is (loader.Region.thumb)
    stub: str                           # the stub's contract: "builtin" or "kernel" (kvm.stub)
    instructions: int                   # the step budget
    injections: tuple[Injection, ...]


def builtin_source(init_source: Optional[Path] = None, isa: str = "arm") -> AsmSource:
    """The guest code of asm/, with ``init_source`` as the init code, built for ``isa``."""
    files = {name: ASM_DIR / file for name, file in KERNEL_SOURCES.items()}
    return AsmSource({**files, "init": init_source or ASM_DIR / BUILTIN_INIT["dual-step"]},
                     thumb=isa == "thumb2")


def _injection(item: Any) -> Injection:
    """The injector's own entry for a scenario's typed ``Skip | Corrupt | Remap``."""
    kind = item.TAG   # the scenario model's own tag: skip, corrupt or remap
    if kind == "skip":
        if item.mnemonic is not None:
            return Skip(mnemonic=item.mnemonic)
        return Skip(symbol=item.symbol, offset=item.offset)
    if kind == "corrupt":
        return Corrupt(item.table, item.va, item.field, item.value)
    if kind == "remap":
        return Remap(item.table, item.va, item.to, item.bbm, item.tlbi, item.at)
    raise RuntimeError(f"internal: unknown injection {item!r}")


def guest_source(s: "Scenario") -> GuestSource:
    """The producer of the guest code ``hyp.code``, ``hyp.stub`` and ``hyp.assembler`` ask for:
    asm/ with the scenario's init code (and stub), what a kernel tree provides (its preprocessed
    init.S and, unless ``hyp.stub`` says otherwise, its stub), or an ELF's regions."""
    code = s.code
    builtin = builtin_source(ASM_DIR / BUILTIN_INIT[s.init] if code == "builtin" or
                             not isinstance(code, str) else Path(code), s.isa)
    if s.stub not in ("builtin", "kernel"):
        builtin = AsmSource({**builtin.files, "stub": Path(s.stub)}, thumb=builtin.thumb)
    if isinstance(code, ElfCode):
        from ..elf_source import ElfSource
        return ElfSource(tuple(Path(p) for p in code.paths), builtin)
    if isinstance(code, KernelTreeCode):
        from ..kernel_tree import kernel_regions
        regions = kernel_regions(code.path, code.preprocessor, s.stub, s.trampoline_va, s.cpus,
                                 dict(s.kernel_config))
        return AsmSource({**builtin.files, **regions}, thumb=builtin.thumb)
    from ..toolchain import ToolchainSource, find_assembler
    assembler = find_assembler(s.assembler)
    if assembler is None:
        return builtin
    return ToolchainSource({name: path for name, path in builtin.files.items()
                            if isinstance(path, Path)}, assembler, thumb=builtin.thumb)


def from_scenario(s: "Scenario") -> KernelConfig:
    """The adapter: a validated Scenario as the kernel side's config."""
    return KernelConfig(
        banks=tuple(s.banks), cpus=s.cpus, page_offset=s.page_offset, text_offset=s.text_offset,
        hyp_idmap_offset=s.hyp_idmap_offset, design=s.init, trampoline_va=s.trampoline_va,
        bounce_page=s.bounce_page, call_abi=s.call_abi, source=guest_source(s),
        isa=s.isa,
        stub="builtin" if s.stub == "builtin" else "kernel",
        instructions=s.instructions, injections=tuple(_injection(item) for item in s.inject))
