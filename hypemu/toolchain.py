"""The user's own assembler (``hyp.assembler: gnu | llvm | auto``): finding it, running it on the
guest sources and loading its objects through the ELF loader.

Why: a kernel engineer trusts the bytes their toolchain makes. ``gnu`` runs ``$(CROSS_COMPILE)as``
(else ``arm-linux-gnueabihf-as``, else ``arm-none-eabi-as``, found on PATH) with
``-march=armv7-a+virt``, the flags kbuild gives init.o; ``llvm`` runs ``llvm-mc`` (or
``llvm-mc-N``) for ``armv7a`` with the virtualization extension; ``auto`` takes GNU, then LLVM,
then the built-in assembler. The predefined constants become ``--defsym``s; the objects are
relocated at the placed addresses by ``elf_image`` exactly as the built-in assembler's output is
placed, so the same source gives the same image either way (tests/test_toolchain.py).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from .asm import AsmError
from .elf_image import load_elf
from .elf_source import object_region
from .errors import InputError
from .loader import REGIONS, FixedPlace, GuestImage, Placement, Region

ASSEMBLERS = ("builtin", "gnu", "llvm", "auto")
GNU_NAMES = ("arm-linux-gnueabihf-as", "arm-none-eabi-as")
_TIMEOUT = 60.0
_CPP_RE = re.compile(r"^\s*#\s*(include|define|undef|if|ifdef|ifndef|elif|else|endif)\b", re.M)
_ERROR_RE = re.compile(r"^(?P<file>[^:\n]+):(?P<line>\d+):(?:\d+:)?\s*(?:Error|error):\s*(?P<msg>.*)$",
                       re.M)


_EXPANSION = 2                  # bump when expand_kernel_macros changes: cached objects are stale
_KERNEL_MACRO_RE = re.compile(r"^(\s*)(ENTRY|ENDPROC|END|W|ARM|THUMB|ARM_BE8)\(", re.M)


def expand_kernel_macros(text: str, thumb: bool = False) -> str:
    """The Linux <asm/...> macros hypemu's sources use (ENTRY, ENDPROC, END, W, ARM, THUMB,
    ARM_BE8), written out as the kernel's C preprocessor would with <asm/unified.h>: in an ARM
    build W(x) is x, ARM(x) x and THUMB(x) nothing; in a Thumb-2 build W(x) is x.w, THUMB(x) x
    and ARM(x) nothing, and the source is in unified syntax (`.syntax unified`, as <asm/unified.h>
    says for CONFIG_THUMB2_KERNEL; GNU as's Thumb default, divided syntax, refuses `b.w`). Line
    numbers stay, so the assembler's messages point at the source."""
    out, pos = [], 0
    for m in _KERNEL_MACRO_RE.finditer(text):
        if m.start() < pos:
            continue
        depth, end = 1, m.end()
        while end < len(text) and depth and text[end] != "\n":
            depth += {"(": 1, ")": -1}.get(text[end], 0)
            end += 1
        if depth:
            continue                       # not a macro call on one line: leave it to the tool
        arg, name = text[m.end():end - 1].strip(), m.group(2)
        kept = "THUMB" if thumb else "ARM"
        replacement = {"ENTRY": f".globl {arg}; {arg}:", "W": f"{arg}{'.w' if thumb else ''}",
                       kept: arg}.get(name, "")
        out += [text[pos:m.start()], m.group(1), replacement]
        pos = end
    unified = ".syntax unified; " if thumb else ""    # on line 1: no line moves
    return unified + "".join(out) + text[pos:]


class ToolchainError(InputError, ValueError):
    """The assembler asked for is not installed, or it failed."""


@dataclass(frozen=True)
class Assembler:
    """One external assembler: its kind (gnu | llvm) and program."""

    kind: str
    program: str

    def command(self, source: Path, output: Path, constants: Mapping[str, int],
                thumb: bool = False) -> list[str]:
        defsyms = [f"--defsym={name}={value & 0xFFFFFFFF:#x}" for name, value in constants.items()]
        if self.kind == "gnu":
            # Thumb: as kbuild builds CONFIG_THUMB2_KERNEL (-mthumb -Wa,-mimplicit-it=always)
            return [self.program, "-march=armv7-a+virt",
                    *(["-mthumb", "-mimplicit-it=always"] if thumb else []),
                    *defsyms, "-o", str(output), str(source)]
        return [self.program, f"-triple={'thumbv7a' if thumb else 'armv7a'}-none-eabi",
                "-mattr=+virtualization", *(["-arm-implicit-it=always"] if thumb else []),
                "-filetype=obj", *defsyms, "-o", str(output), str(source)]


def find_gnu() -> Assembler | None:
    cross = os.environ.get("CROSS_COMPILE")
    for name in ([f"{cross}as"] if cross else []) + list(GNU_NAMES):
        path = shutil.which(name)
        if path:
            return Assembler("gnu", path)
    return None


def find_llvm() -> Assembler | None:
    path = shutil.which("llvm-mc")
    if path is None:
        for directory in os.environ.get("PATH", "").split(os.pathsep):
            found = sorted(Path(directory).glob("llvm-mc-[0-9]*")) if directory else []
            if found:
                path = str(found[-1])
                break
    return Assembler("llvm", path) if path else None


def find_assembler(choice: str) -> Assembler | None:
    """The assembler for ``hyp.assembler``: None for ``builtin`` (or ``auto`` with none found);
    ToolchainError when ``gnu``/``llvm`` is asked for and not installed."""
    if choice == "builtin":
        return None
    if choice not in ASSEMBLERS:
        raise ToolchainError(f"hyp.assembler: {choice!r} is not one of {', '.join(ASSEMBLERS)}")
    gnu = find_gnu() if choice in ("gnu", "auto") else None
    llvm = find_llvm() if choice == "llvm" or (choice == "auto" and gnu is None) else None
    found = gnu or llvm
    if found is None and choice != "auto":
        wanted = (f"$(CROSS_COMPILE)as, {' or '.join(GNU_NAMES)}" if choice == "gnu"
                  else "llvm-mc")
        raise ToolchainError(f"hyp.assembler: {choice}: no {wanted} found on PATH")
    return found


def assemble_object(assembler: Assembler, source: Path, constants: Mapping[str, int],
                    directory: Path, thumb: bool = False) -> Path:
    """Run ``assembler`` on ``source``; the object's path (cached by tool, source and constants).
    An error of the assembler becomes an AsmError at its file and line."""
    text = source.read_bytes()
    cpp = _CPP_RE.search(text.decode("utf-8", "replace"))
    if cpp is not None:      # GNU as reads a line starting with '#' as a comment: silently wrong
        line = text.decode("utf-8", "replace")[:cpp.start()].count("\n") + 1
        raise AsmError(str(source), line, "C preprocessor lines: the assembler would take them "
                                          "for comments; preprocess the source first")
    tool = os.stat(assembler.program)     # a new version of the tool: new objects
    key = hashlib.sha256(repr((assembler, tool.st_mtime_ns, tool.st_size, text,
                               sorted(constants.items()), thumb, _EXPANSION)).encode()).hexdigest()
    output = directory / f"{key[:32]}.o"
    if output.exists():
        return output
    partial = directory / f"{key[:32]}.{os.getpid()}.tmp"
    expanded = directory / f"{key[:32]}.{os.getpid()}.S"
    expanded.write_text(expand_kernel_macros(text.decode("utf-8", "replace"), thumb))
    try:
        done = subprocess.run(assembler.command(expanded, partial, constants, thumb),
                              capture_output=True,
                              text=True, timeout=_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ToolchainError(f"{assembler.program}: {e}") from None
    finally:
        expanded.unlink(missing_ok=True)
    if done.returncode != 0:
        partial.unlink(missing_ok=True)
        raise _located(source, done.stderr or done.stdout)
    os.replace(partial, output)
    return output


def _located(source: Path, stderr: str) -> InputError:
    m = _ERROR_RE.search(stderr)
    if m is None:
        return ToolchainError(f"{source}: the assembler failed: {stderr.strip()[:400]}")
    return AsmError(str(source), int(m.group("line")), m.group("msg").strip())


@dataclass(frozen=True)
class ToolchainSource:
    """Guest code assembled by the user's assembler: one source file per region, like
    ``loader.AsmSource``, each object relocated at its region's placed address."""

    files: Mapping[str, Path]
    assembler: Assembler
    thumb: bool = False          # kernel.isa: thumb2 (the assembler gets -mthumb / a thumb triple)
    directory: Path = field(default_factory=lambda: Path(tempfile.gettempdir()) / "hypemu-objects")

    def _region(self, name: str, base: int, load_pa: int, constants: Mapping[str, int]) -> Region:
        self.directory.mkdir(parents=True, exist_ok=True)
        obj = assemble_object(self.assembler, self.files[name], constants, self.directory,
                              self.thumb)
        image = load_elf(obj, base)
        region = object_region(name, image, base, load_pa=load_pa, init=name == "init")
        return Region(region.name, region.code, region.base, region.load_pa, region.symbols,
                      region.globals, str(self.files[name]), region.thumb or self.thumb,
                      region.text_size)

    def fixed(self) -> FixedPlace:
        return FixedPlace()

    def sizes(self, constants: Mapping[str, int]) -> tuple[int, int]:
        return (len(self._region("init", 0, 0, constants).code),
                len(self._region("runtime", 0, 0, constants).code))

    def link(self, placement: Placement, constants: Mapping[str, int]) -> GuestImage:
        regions = {name: self._region(name, placement.base[name], placement.load_pa[name],
                                      constants) for name in REGIONS}
        return GuestImage(regions["pl1"], regions["stub"], regions["init"], regions["runtime"])
