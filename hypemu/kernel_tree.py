"""A Linux kernel source tree as the source of the HYP code (``hyp.code: {kernel: PATH}``).

hypemu takes the tree's ``arch/arm/kvm/init.S`` and ``arch/arm/kernel/hyp-stub.S`` and preprocesses
them as kbuild does for an ARMv7 build (``-D__ASSEMBLY__ -D__KERNEL__ -D__LINUX_ARM_ARCH__=7
-nostdinc``, the tree's ``arch/arm/include``, ``include`` and uapi directories, ``-include
include/linux/kconfig.h -include asm/unified.h``; ``cpp`` runs the preprocessor). A tree that was
never configured lacks the headers kbuild generates; hypemu writes them as small shims into a
temporary directory that plays kbuild's object tree (the source tree is never written to):

- ``include/generated/autoconf.h``: the CONFIG_ values of ``kernel_config`` (the scenario's board,
  plus ``kernel.config``; ``kernel.isa: thumb2`` is CONFIG_THUMB2_KERNEL);
- ``include/generated/asm-offsets.h``: empty. It holds offsets into C structures that only a
  compiler can compute; neither file uses one (an offset a source uses is undefined, and the
  assembler says so at the kernel's line);
- the ``generic-y`` wrappers of ``arch/arm/include/{,uapi/}asm/Kbuild`` (``asm/types.h`` is
  ``#include <asm-generic/types.h>``); ``include/generated/uapi/linux/version.h``.

The tree's Makefile (VERSION, PATCHLEVEL) picks the defaults a kernel engineer expects: v3.10 and
later the dual-step init with the ``linux-3.10`` call convention, v3.9 (the first KVM/ARM) the
single-step design with r0/r1 = pgd, r2 = stack, r3 = vectors (``seed``). The scenario's
``hyp.init`` and ``hyp.call_abi`` override them.

A Thumb-2 kernel (CONFIG_THUMB2_KERNEL set) is preprocessed with that CONFIG_ value (and
CONFIG_ARM_ASM_UNIFIED, which Kconfig selects with it) and assembled as kbuild's ``-mthumb
-Wa,-mimplicit-it=always`` does: the headers' ARM()/THUMB()/W() pick the Thumb lines.
"""

from __future__ import annotations

import functools
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional

from .asm import AsmError, Program, assemble
from .cpp import Preprocessed, PreprocessorError, Request, preprocess
from .errors import InputError

INIT_S = "arch/arm/kvm/init.S"
STUB_S = "arch/arm/kernel/hyp-stub.S"
KVM_ARM_FIRST, KVM_ARM_GONE, DUAL_STEP_FIRST = (3, 9), (5, 7), (3, 10)
DEFINES = {"__ASSEMBLY__": "1", "__KERNEL__": "1", "__LINUX_ARM_ARCH__": "7"}
FORCED = ("include/linux/kconfig.h", "asm/unified.h")
_CONFIG_NAME = re.compile(r"CONFIG_[A-Za-z0-9_]+")
THUMB2 = "CONFIG_THUMB2_KERNEL"


class KernelTreeError(InputError):
    """A path that is not a kernel tree hypemu can use (what is wrong with it, and where)."""

    def __init__(self, path: Path | str, message: str):
        self.file, self.line = str(path), None
        super().__init__(f"{path}: {message}")


def read_version(root: Path) -> tuple[int, int]:
    """(VERSION, PATCHLEVEL) of the tree's top Makefile."""
    makefile = root / "Makefile"
    try:
        text = makefile.read_text(encoding="utf-8", errors="replace")
    except OSError as err:
        raise KernelTreeError(root, f"not a kernel tree: cannot read its Makefile "
                                    f"({err.strerror or err})") from None
    found = {}
    for name in ("VERSION", "PATCHLEVEL"):
        match = re.search(rf"^{name}\s*=\s*(\d+)\s*$", text, re.M)
        if not match:
            raise KernelTreeError(makefile, f"no '{name} = N' line: not a kernel tree's top Makefile")
        found[name] = int(match.group(1))
    return found["VERSION"], found["PATCHLEVEL"]


@dataclass(frozen=True)
class KernelTree:
    """A kernel source tree with 32-bit KVM/ARM: its root and its version."""

    root: Path
    version: tuple[int, int]

    @classmethod
    def open(cls, path: Path | str) -> KernelTree:
        """The tree at ``path``; KernelTreeError if it is none, or has no HYP init code."""
        root = Path(path).expanduser().resolve()
        if not root.is_dir():
            raise KernelTreeError(path, "not a directory (hyp.code: {kernel: PATH} names the top "
                                        "of a kernel source tree)")
        version = read_version(root)
        if not (root / INIT_S).is_file():
            shown = f"v{version[0]}.{version[1]}"
            why = (f"32-bit KVM/ARM was removed in v{KVM_ARM_GONE[0]}.{KVM_ARM_GONE[1]}"
                   if version >= KVM_ARM_GONE else
                   f"KVM/ARM arrived in v{KVM_ARM_FIRST[0]}.{KVM_ARM_FIRST[1]}"
                   if version < KVM_ARM_FIRST else "this tree lacks it")
            raise KernelTreeError(root, f"no {INIT_S} (Linux {shown}): {why}, so there is no HYP "
                                        f"init code to run")
        return cls(root, version)

    @property
    def design(self) -> str:
        """The init design of this version (``hyp.init``'s default)."""
        return "dual-step" if self.version >= DUAL_STEP_FIRST else "single-step"

    @property
    def call_abi(self) -> str:
        """How this version's init code takes its arguments (``hyp.call_abi``'s default)."""
        return "linux-3.10" if self.version >= DUAL_STEP_FIRST else "seed"

    def has(self, relative: str) -> bool:
        return (self.root / relative).is_file()

    def preprocess(self, relative: str, config: Mapping[str, str], which: str = "auto") -> Preprocessed:
        """``relative`` (e.g. ``INIT_S``) preprocessed as kbuild would, with ``config`` as the
        CONFIG_ values (name -> C text); ``which`` of ``cpp.PREPROCESSORS``."""
        source = self.root / relative
        stamp = source.stat().st_mtime_ns if source.is_file() else 0
        return _preprocess(self, relative, tuple(sorted(config.items())), which, stamp)


@functools.lru_cache(maxsize=64)
def _preprocess(tree: KernelTree, relative: str, config: tuple[tuple[str, str], ...], which: str,
                stamp: int) -> Preprocessed:
    """One preprocessing per (tree, file, config, preprocessor, file version) and process."""
    with tempfile.TemporaryDirectory(prefix="hypemu-kbuild-") as objtree:
        out = Path(objtree)
        write_shims(out, tree, dict(config))
        request = Request(cwd=tree.root, source=relative, defines=DEFINES,
                          includes=include_dirs(out), forced=FORCED,
                          thumb=any(name == THUMB2 for name, _ in config))
        try:
            return preprocess(request, which)
        except PreprocessorError as err:      # named from the tree's top: name it in full
            raise PreprocessorError(str(tree.root / (err.file or relative)), err.line,
                                    err.message) from None


def include_dirs(objtree: Path) -> tuple[str, ...]:
    """kbuild's LINUXINCLUDE and USERINCLUDE for ARM, source tree relative, object tree absolute."""
    return ("arch/arm/include", str(objtree / "arch/arm/include/generated"), "include",
            str(objtree / "include"), "arch/arm/include/uapi",
            str(objtree / "arch/arm/include/generated/uapi"), "include/uapi",
            str(objtree / "include/generated/uapi"))


def kernel_config(trampoline_va: int, cpus: int,
                  overrides: Mapping[str, Optional[str]] = {}) -> dict[str, str]:
    """The CONFIG_ values a board implies (name -> C text): the vectors page at the trampoline VA
    (TRAMPOLINE_VA is CONFIG_VECTORS_BASE in v3.10's kvm_mmu.h), an ARMv7 LPAE kernel with the
    virtualization extensions, KVM, the architected timer a Cortex-A15 has, SMP on more than one
    CPU; ``overrides`` (``kernel.config``) add or replace values, None removes one."""
    config = {name: "1" for name in ("CONFIG_MMU", "CONFIG_CPU_V7", "CONFIG_CPU_32v7", "CONFIG_ARM_LPAE",
                                     "CONFIG_ARM_VIRT_EXT", "CONFIG_VIRTUALIZATION", "CONFIG_KVM",
                                     "CONFIG_KVM_ARM_HOST", "CONFIG_ARM_ARCH_TIMER", "CONFIG_AEABI")}
    config["CONFIG_VECTORS_BASE"] = f"{trampoline_va:#x}"
    config["CONFIG_NR_CPUS"] = str(max(cpus, 4))
    if cpus > 1:
        config["CONFIG_SMP"] = "1"
        config["CONFIG_HOTPLUG_CPU"] = "1"
    for name, value in overrides.items():
        if not _CONFIG_NAME.fullmatch(name):
            raise ValueError(f"not a CONFIG_ name: {name!r}")
        if value is None:
            config.pop(name, None)
        else:
            config[name] = value
    if THUMB2 in config:
        config.setdefault("CONFIG_ARM_ASM_UNIFIED", "1")     # Kconfig: THUMB2_KERNEL selects it
    return config


def autoconf(config: Mapping[str, str]) -> str:
    lines = ["/* generated by hypemu for a kernel tree without a build: the board's CONFIG_ values */"]
    lines += [f"#define {name} {value}" for name, value in sorted(config.items())]
    return "\n".join(lines) + "\n"


def generic_wrappers(root: Path) -> dict[str, str]:
    """kbuild's wrapper headers for the ``generic-y`` entries of the ARM Kbuild files: the object
    tree path -> its text."""
    out = {}
    for kbuild, generated in (("arch/arm/include/asm/Kbuild", "arch/arm/include/generated/asm"),
                              ("arch/arm/include/uapi/asm/Kbuild",
                               "arch/arm/include/generated/uapi/asm")):
        path = root / kbuild
        text = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""
        for header in re.findall(r"^\s*generic-y\s*\+=\s*(\S+?\.h)\s*$", text, re.M):
            out[f"{generated}/{header}"] = f"#include <asm-generic/{header}>\n"
    return out


def write_shims(objtree: Path, tree: KernelTree, config: Mapping[str, str]) -> None:
    """The generated headers of a configured tree, into ``objtree`` (never into the tree)."""
    major, minor = tree.version
    files = {
        "include/generated/autoconf.h": autoconf(config),
        "include/generated/asm-offsets.h": "/* generated by hypemu: no C structure offsets */\n",
        "include/generated/uapi/linux/version.h":
            f"#define LINUX_VERSION_CODE {(major << 16) + (minor << 8)}\n"
            "#define KERNEL_VERSION(a,b,c) (((a) << 16) + ((b) << 8) + (c))\n",
        **generic_wrappers(tree.root),
    }
    for relative, text in files.items():
        target = objtree / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)


@dataclass(frozen=True)
class KernelAsm:
    """One preprocessed kernel source as a region's code (``loader.RegionCode``): assembled by
    hypemu's assembler (as Thumb-2 for a CONFIG_THUMB2_KERNEL build: ``thumb``), its errors
    placed at the kernel's own file and line."""

    tree: KernelTree
    relative: str
    source: Preprocessed
    thumb: bool = False

    def assemble(self, base: int, constants: Mapping[str, int]) -> Program:
        """The kernel's code at ``base``. The kernel's headers define every constant it uses, so
        hypemu predefines none (``constants`` is the contract of hypemu's own sources)."""
        try:
            return assemble(self.source.text, base, filename=str(self.tree.root / self.relative),
                            thumb=self.thumb)
        except AsmError as err:
            file, line = self.source.origin(err.line or 1)
            raise AsmError(str(self.tree.root / file), line, err.message) from None


def kernel_regions(code_path: str, preprocessor: str, stub: str, trampoline_va: int, cpus: int,
                   overrides: Mapping[str, Optional[str]] = {}) -> dict[str, KernelAsm]:
    """The regions a kernel tree provides, preprocessed for this board: ``init`` (its init.S) and,
    when ``stub`` is ``kernel`` or the path of a stub source, ``stub``; Thumb-2 code when the
    config sets CONFIG_THUMB2_KERNEL."""
    tree = KernelTree.open(code_path)
    config = kernel_config(trampoline_va, cpus, overrides)
    thumb = THUMB2 in config
    out = {"init": KernelAsm(tree, INIT_S, tree.preprocess(INIT_S, config, preprocessor), thumb)}
    if stub != "builtin":
        relative = STUB_S if stub == "kernel" else stub
        out["stub"] = KernelAsm(tree, relative, tree.preprocess(relative, config, preprocessor),
                                thumb)
    return out
