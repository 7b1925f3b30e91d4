"""Running a C preprocessor over kernel assembly sources, as kbuild does for a ``.S`` file.

Why a module of its own: a kernel's ``init.S`` is not assembly until ``cpp`` has run over it with
the kernel's headers, and which ``cpp`` runs is the user's environment, not the scenario's. Two
preprocessors give the same text:

- ``external``: the user's toolchain, found as kbuild would use it: ``$(CROSS_COMPILE)gcc -E`` (or
  ``$(CROSS_COMPILE)cpp``) when ``CROSS_COMPILE`` is set, else ``arm-linux-gnueabihf-`` or
  ``arm-none-eabi-`` gcc/cpp on PATH. A host ``cpp`` is not used: it predefines another target's
  macros (``__x86_64__``), which a kbuild ARM build never sees.
- ``python``: pcpp, a C99 preprocessor in pure Python (a dependency of hypemu), so that a machine
  with no C compiler can still run a kernel tree. ``-include`` is done by preprocessing the forced
  headers first in the same preprocessor state, which is what ``-include`` means. It predefines
  what an ARM GCC preprocessing a ``.S`` file does and the kernel's assembly headers test
  (``GCC_PREDEFINED``); ``__GNUC__`` is 4, the lowest a v3.10 Thumb-2 kernel's unified.h accepts
  (GCC's own value is its version: only comparisons use it).

The instruction set is kbuild's ``-marm`` or ``-mthumb`` (CONFIG_THUMB2_KERNEL): the external
preprocessor gets that flag (a cross GCC may default to Thumb), pcpp defines ``__thumb__`` and
``__thumb2__`` for Thumb as GCC does.

Both give the text with its origins: every output line is tied to the file and line it came from
(the ``# N "file"`` line markers), so an assembler error points at the kernel's own line.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from .errors import InputError

PREPROCESSORS = ("auto", "external", "python")
GCC_PREDEFINED = {"__GNUC__": "4", "__arm__": "1", "__ARMEL__": "1", "__ASSEMBLER__": "1"}
GCC_THUMB = {"__thumb__": "1", "__thumb2__": "1"}
CROSS_PREFIXES = ("arm-linux-gnueabihf-", "arm-none-eabi-")
# GNU line markers (`# 74 "arch/arm/kvm/init.S" 2`) and `#line 74 "file"` (pcpp's form).
_MARKER = re.compile(r'#\s*(?:line\s+)?(\d+)(?:\s+"((?:[^"\\]|\\.)*)")?[\s\d]*$')
_GNU_DIAG = re.compile(r"^(?P<file>[^:\n]+):(?P<line>\d+):(?:\d+:)?\s*(?:fatal )?error:\s*(?P<msg>.*)$",
                       re.M)
TIMEOUT = 60   # seconds for one external preprocessor run


class PreprocessorError(InputError):
    """The preprocessor refused a kernel source: ``file:line: message`` (the kernel's file)."""

    def __init__(self, file: str, line: Optional[int], message: str):
        self.file, self.line, self.message = file, line, message
        super().__init__(f"{file}:{line}: {message}" if line else f"{file}: {message}")


@dataclass(frozen=True)
class Request:
    """One preprocessing: ``source`` (relative to ``cwd``) with kbuild's flags."""

    cwd: Path
    source: str
    defines: Mapping[str, str]          # -D name=value
    includes: tuple[str, ...]           # -I, in order (relative to cwd or absolute)
    forced: tuple[str, ...]             # -include, in order
    thumb: bool = False                 # -mthumb (a Thumb-2 kernel), else -marm


@dataclass(frozen=True)
class Preprocessed:
    """Preprocessor output: ``text`` (line markers blanked, so line N of the text is output line N)
    and ``origins[N - 1]``, the (file, line) each output line came from."""

    text: str
    origins: tuple[tuple[str, int], ...]
    tool: str                           # what ran: the command, or "pcpp"

    def origin(self, line: int) -> tuple[str, int]:
        """Where output line ``line`` (1-based) came from."""
        if 1 <= line <= len(self.origins):
            return self.origins[line - 1]
        return self.origins[-1] if self.origins else ("<preprocessed>", line)


def with_origins(output: str, tool: str) -> Preprocessed:
    """Blank the line markers of ``output`` and record the origin of every line."""
    lines, origins = [], []
    file, number = "<preprocessed>", 1
    for text in output.split("\n"):
        marker = _MARKER.match(text) if text.lstrip().startswith("#") else None
        if marker:
            number = int(marker.group(1))
            file = marker.group(2) if marker.group(2) is not None else file
            lines.append("")
            origins.append((file, number))
            continue
        lines.append(text)
        origins.append((file, number))
        number += 1
    return Preprocessed("\n".join(lines), tuple(origins), tool)


def external_command(env: Mapping[str, str] = os.environ) -> Optional[list[str]]:
    """The user's preprocessor as kbuild would find it, or None."""
    prefixes = [env["CROSS_COMPILE"]] if env.get("CROSS_COMPILE") else list(CROSS_PREFIXES)
    for prefix in prefixes:
        for tool, args in (("gcc", ["-E"]), ("cpp", [])):
            found = shutil.which(prefix + tool, path=env.get("PATH"))
            if found:
                return [found, *args]
    return None


def preprocess(request: Request, which: str = "auto") -> Preprocessed:
    """Run the preprocessor ``which`` (``PREPROCESSORS``) on ``request``."""
    if which not in PREPROCESSORS:
        raise ValueError(f"preprocessor must be one of {PREPROCESSORS}, not {which!r}")
    command = external_command() if which != "python" else None
    if which == "external" and command is None:
        raise PreprocessorError(request.source, None, "no external C preprocessor found (set "
                                "CROSS_COMPILE, or install arm-linux-gnueabihf-gcc or -cpp; "
                                "preprocessor: python needs none)")
    return _run_external(command, request) if command else _run_pcpp(request)


def _run_external(command: list[str], r: Request) -> Preprocessed:
    args = [*command, "-x", "assembler-with-cpp", "-nostdinc", "-mthumb" if r.thumb else "-marm"]
    args += [f"-D{name}={value}" for name, value in r.defines.items()]
    args += [f"-I{path}" for path in r.includes]
    for header in r.forced:
        args += ["-include", header]
    args.append(r.source)
    try:
        done = subprocess.run(args, cwd=r.cwd, capture_output=True, text=True, timeout=TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise PreprocessorError(r.source, None, f"{command[0]} did not run: {err}") from None
    if done.returncode != 0:
        raise _diagnostic(done.stderr, r.source, Path(command[0]).name)
    return with_origins(done.stdout, " ".join([Path(command[0]).name, *command[1:]]))


def _diagnostic(stderr: str, source: str, tool: str) -> PreprocessorError:
    """The first error of a GNU preprocessor's stderr, at the file and line it names."""
    found = _GNU_DIAG.search(stderr)
    if found:
        return PreprocessorError(found["file"], int(found["line"]), found["msg"].strip())
    first = next((line for line in stderr.splitlines() if line.strip()), "failed")
    return PreprocessorError(source, None, f"{tool}: {first.strip()}")


def _run_pcpp(r: Request) -> Preprocessed:
    from pcpp import Preprocessor  # type: ignore[import-untyped]  # imported only when it runs

    class _Pcpp(Preprocessor):  # type: ignore[misc]
        """pcpp whose errors are collected (it prints them by default) and whose ``#error``
        directive is an error."""

        def __init__(self) -> None:
            super().__init__()
            self.errors: list[tuple[str, int, str]] = []

        def on_error(self, file: str, line: int, msg: str) -> None:
            self.errors.append((file, line, msg))
            self.return_code += 1

        def on_directive_unknown(self, directive: Any, toks: Sequence[Any], ifpassthru: bool,
                                 precedingtoks: Sequence[Any]) -> Any:
            if directive.value == "error":
                text = "".join(tok.value for tok in toks).strip()
                self.on_error(directive.source, directive.lineno, f"#error {text}")
                return True
            if directive.value == "warning":
                return True
            return super().on_directive_unknown(directive, toks, ifpassthru, precedingtoks)

    cpp = _Pcpp()
    cpp.line_directive = "#line"
    root = r.cwd.resolve()
    cpp.rewrite_paths = [(re.escape(str(root) + os.sep) + "(.*)", r"\1")]   # names as cpp gives them
    predefined = {**GCC_PREDEFINED, **(GCC_THUMB if r.thumb else {})}
    for name, value in {**predefined, **r.defines}.items():
        cpp.define(f"{name} {value}")
    for path in r.includes:
        cpp.add_path(str(root / path))
    out = io.StringIO()
    forced = "".join(f'#include "{root / header if (root / header).is_file() else header}"\n'
                     for header in r.forced)
    if forced:
        cpp.parse(forced, "<command-line>")
        cpp.write(out)
    source = root / r.source
    cpp.parse(source.read_text(encoding="utf-8", errors="replace"), str(source))
    cpp.write(out)
    if cpp.errors:
        file, line, msg = cpp.errors[0]
        raise PreprocessorError(str(file), int(line) if line else None, str(msg))
    return with_origins(out.getvalue(), "pcpp")
