"""``hyp.code``: the user's init code is found relative to the scenario file, must assemble with the
constants the kernel side predefines, and must keep the guest-code contract the kernel side sizes
and places it by (``__kvm_hyp_init`` first, ``__kvm_hyp_init_end`` after it).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Mapping, Optional, Union

from ..errors import GuestContractError, ScenarioError
from . import values as v
from .models import ElfCode, KernelSection

KEY = "hyp.code"


def code_path(value: Any, base_dir: Optional[str]) -> Union[str, ElfCode]:
    """``builtin``, the absolute path of an existing regular file, or ``{elf: PATH or [PATH...]}``
    as an ``ElfCode`` of absolute paths."""
    if value == "builtin":
        return "builtin"
    if isinstance(value, Mapping):
        if set(value) != {"elf"}:
            raise ScenarioError(KEY, f"expected {{elf: PATH}}, got the keys {', '.join(map(str, value))}")
        paths = value["elf"] if isinstance(value["elf"], list) else [value["elf"]]
        if not paths:
            raise ScenarioError(f"{KEY}.elf", "expected a path or a non-empty list of paths")
        return ElfCode(tuple(_existing(p, base_dir, f"{KEY}.elf") for p in paths))
    return _existing(value, base_dir, KEY)


def _existing(value: Any, base_dir: Optional[str], key: str) -> str:
    if not isinstance(value, str) or not value.strip() or "\0" in value:
        what = "the path of an ELF file" if key != KEY else "'builtin', the path of a .S file or {elf: PATH}"
        raise ScenarioError(key, f"expected {what}, got {v.describe(value)}")
    path = Path(os.path.expanduser(value))
    if not path.is_absolute():
        path = Path(base_dir or os.getcwd()) / path
    try:
        exists, regular = path.exists(), path.is_file()
    except (OSError, ValueError):
        exists = regular = False
    if not exists:
        raise ScenarioError(key, f"no such file: {value!r} (looked for {v.shown(path)})")
    if not regular:
        raise ScenarioError(key, f"not a regular file: {v.shown(path)}")
    return str(path)


def check_elf(code: ElfCode, kernel: KernelSection, given: Mapping[str, Any]) -> KernelSection:
    """ELF guest code must load (an ``ElfError`` becomes a ``hyp.code`` error); a vmlinux fixes
    kernel.page_offset, text_offset and hyp_idmap_offset: a scenario that asks for other values
    is refused, one that does not gets the ELF's."""
    from ..elf_image import ElfError
    from ..elf_source import fixed_place
    try:
        fixed = fixed_place(tuple(Path(p) for p in code.paths))
    except ElfError as err:
        raise ScenarioError(KEY, str(err)) from None
    values = {}
    for name in ("page_offset", "text_offset", "hyp_idmap_offset"):
        linked = getattr(fixed, name)
        if linked is None:
            continue
        if name in given and given[name] not in (None, "auto") and getattr(kernel, name) != linked:
            raise ScenarioError(f"kernel.{name}", f"{v.shown(code.paths[0])} is linked for "
                                f"{name} {linked:#x}, the scenario asks for "
                                f"{getattr(kernel, name):#x}")
        values[name] = linked
    return dataclasses.replace(kernel, **values)


def check_init_code(code: Union[str, ElfCode], trampoline_va: int, call_abi: str,
                    isa: str = "arm") -> None:
    """User init code must assemble (an ``AsmError`` becomes a ``hyp.code`` error) and keep the
    contract; the built-in code does by construction."""
    if code == "builtin" or isinstance(code, ElfCode):
        return
    from ..asm import AsmError, assemble_file
    from ..guest_abi import guest_constants     # the constants the kernel side predefines
    try:
        program = assemble_file(code, 0x80000000, constants=guest_constants(trampoline_va, call_abi),
                                thumb=isa == "thumb2")
    except AsmError as err:
        raise ScenarioError(KEY, "; ".join(str(err).strip().splitlines())) from None
    except UnicodeError:
        raise ScenarioError(KEY, f"{v.shown(code)}: not a UTF-8 text file") from None
    except OSError as err:
        raise ScenarioError(KEY, f"{v.shown(code)}: cannot read: {err.strerror or err}") from None
    missing = [name for name in ("__kvm_hyp_init", "__kvm_hyp_init_end") if name not in program.symbols]
    if missing:
        raise GuestContractError(KEY, f"{v.shown(code)}: no label {' or '.join(missing)} (the init "
                                      f"code must define __kvm_hyp_init and __kvm_hyp_init_end)")
    start, end = program.symbols["__kvm_hyp_init"], program.symbols["__kvm_hyp_init_end"]
    if start != program.base:
        raise GuestContractError(KEY, f"{v.shown(code)}: __kvm_hyp_init must start the init code "
                                      f"(the vector table, 32-byte aligned; found at "
                                      f"+{start - program.base:#x})")
    if end <= start:
        raise GuestContractError(KEY, f"{v.shown(code)}: __kvm_hyp_init_end ({end - program.base:#x}) "
                                      f"must come after __kvm_hyp_init ({start - program.base:#x})")
