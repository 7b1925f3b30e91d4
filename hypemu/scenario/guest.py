"""``hyp.code``: the user's init code is found relative to the scenario file, must assemble with the
constants the kernel side predefines, and must keep the guest-code contract the kernel side sizes
and places it by (``__kvm_hyp_init`` first, ``__kvm_hyp_init_end`` after it).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

from ..errors import GuestContractError, ScenarioError
from . import values as v

KEY = "hyp.code"


def code_path(value: Any, base_dir: Optional[str]) -> str:
    """``builtin``, or the absolute path of an existing regular file."""
    if value == "builtin":
        return "builtin"
    if not isinstance(value, str) or not value.strip() or "\0" in value:
        raise ScenarioError(KEY, f"expected 'builtin' or the path of a .S file, got {v.describe(value)}")
    path = Path(os.path.expanduser(value))
    if not path.is_absolute():
        path = Path(base_dir or os.getcwd()) / path
    try:
        exists, regular = path.exists(), path.is_file()
    except (OSError, ValueError):
        exists = regular = False
    if not exists:
        raise ScenarioError(KEY, f"no such file: {value!r} (looked for {v.shown(path)})")
    if not regular:
        raise ScenarioError(KEY, f"not a regular file: {v.shown(path)}")
    return str(path)


def check_init_code(code: str, trampoline_va: int, call_abi: str, isa: str = "arm") -> None:
    """User init code must assemble (an ``AsmError`` becomes a ``hyp.code`` error) and keep the
    contract; the built-in code does by construction."""
    if code == "builtin":
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
