"""``hyp.code`` and ``hyp.stub``: the user's init code (a .S file, or a kernel tree's own code) is
found relative to the scenario file, must assemble (a kernel tree's after its C preprocessor) and
must keep the guest-code contract the kernel side sizes and places it by (``__kvm_hyp_init``
first, ``__kvm_hyp_init_end`` after it); a stub must define the entry points of its contract.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Mapping, Optional, Union

from ..errors import GuestContractError, InputError, ScenarioError
from . import values as v
from .models import ElfCode, KernelSection, KernelTreeCode

KEY = "hyp.code"
STUB_KEY = "hyp.stub"
Code = Union[str, KernelTreeCode, ElfCode]


def _resolve(value: Any, base_dir: Optional[str]) -> Path:
    path = Path(os.path.expanduser(value))
    return path if path.is_absolute() else Path(base_dir or os.getcwd()) / path


def code_path(value: Any, base_dir: Optional[str], key: str = KEY, what: str = "a .S file") -> str:
    """``builtin``, or the absolute path of an existing regular file."""
    if value == "builtin":
        return "builtin"
    if not isinstance(value, str) or not value.strip() or "\0" in value:
        wanted = {KEY: "'builtin', the path of a .S file, {kernel: PATH} or {elf: PATH}",
                  STUB_KEY: f"'builtin', 'kernel' or the path of {what}"}.get(key, f"the path of {what}")
        raise ScenarioError(key, f"expected {wanted}, got {v.describe(value)}")
    path = _resolve(value, base_dir)
    try:
        exists, regular = path.exists(), path.is_file()
    except (OSError, ValueError):
        exists = regular = False
    if not exists:
        raise ScenarioError(key, f"no such file: {value!r} (looked for {v.shown(path)})")
    if not regular:
        raise ScenarioError(key, f"not a regular file: {v.shown(path)}")
    return str(path)


def elf_code(value: Any, base_dir: Optional[str]) -> ElfCode:
    """``{elf: PATH or [PATH...]}``: an ``ElfCode`` of absolute paths."""
    paths = value if isinstance(value, list) else [value]
    if not paths:
        raise ScenarioError(f"{KEY}.elf", "expected a path or a non-empty list of paths")
    return ElfCode(tuple(code_path(p, base_dir, f"{KEY}.elf", "an ELF file") for p in paths))


def check_elf(code: ElfCode, kernel: KernelSection, given: Mapping[str, Any]) -> KernelSection:
    """ELF guest code must load (an ``ElfError`` becomes a ``hyp.code`` error); a vmlinux fixes
    kernel.page_offset, text_offset and hyp_idmap_offset, and the ELF's symbols the instruction
    set (Thumb functions, ``$t``: kernel.isa thumb2): a scenario that asks for other values is
    refused, one that does not gets the ELF's."""
    from ..elf_image import ElfError
    from ..elf_source import elf_isa, fixed_place
    try:
        fixed = fixed_place(tuple(Path(p) for p in code.paths))
        isa = elf_isa(tuple(Path(p) for p in code.paths))
    except ElfError as err:
        raise ScenarioError(KEY, str(err)) from None
    if given.get("isa", isa) != isa:
        raise ScenarioError("kernel.isa", f"{v.shown(code.paths[0])}: its HYP init code is "
                                          f"{'Thumb-2' if isa == 'thumb2' else 'ARM'} code "
                                          f"(its symbols say so), the scenario asks for "
                                          f"{kernel.isa}")
    values: dict[str, Any] = {"isa": isa}
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


THUMB2 = "CONFIG_THUMB2_KERNEL"


def tree_isa(kernel: KernelSection, given: Mapping[str, Any]) -> KernelSection:
    """A kernel tree's build: ``kernel.isa: thumb2`` and ``kernel.config: {CONFIG_THUMB2_KERNEL:
    y}`` say the same (either one implies the other); a scenario that says both ``arm`` and the
    CONFIG_ value, or ``thumb2`` and the value unset, is refused."""
    wanted = [value for name, value in kernel.config if name == THUMB2]
    where = v.join("kernel.config", THUMB2)
    if not wanted:
        if kernel.isa != "thumb2":
            return kernel
        return dataclasses.replace(kernel, config=(*kernel.config, (THUMB2, "1")))
    if wanted[-1] is None:
        if kernel.isa == "thumb2":
            raise ScenarioError(where, "unset, but kernel.isa is thumb2 (a CONFIG_THUMB2_KERNEL "
                                       "build): say one of them")
        return kernel
    if given.get("isa", "thumb2") != "thumb2":
        raise ScenarioError(where, f"set (a Thumb-2 build), but kernel.isa is "
                                   f"{given.get('isa')}: say one of them")
    return dataclasses.replace(kernel, isa="thumb2")


def kernel_code(value: Any, preprocessor: str, base_dir: Optional[str]) -> KernelTreeCode:
    """``{kernel: PATH}``: the tree must be a kernel tree with KVM/ARM's init code."""
    key = f"{KEY}.kernel"
    if not isinstance(value, str) or not value.strip() or "\0" in value:
        raise ScenarioError(key, f"expected the path of a kernel source tree, got {v.describe(value)}")
    from ..kernel_tree import KernelTree
    try:
        tree = KernelTree.open(_resolve(value, base_dir))
    except InputError as err:
        raise ScenarioError(key, str(err)) from None
    return KernelTreeCode(str(tree.root), preprocessor)


def tree_defaults(code: Code) -> Optional[tuple[str, str]]:
    """(hyp.init, hyp.call_abi) that a kernel tree's version implies; None for other code."""
    if not isinstance(code, KernelTreeCode):
        return None
    from ..kernel_tree import KernelTree
    tree = KernelTree.open(code.path)
    return tree.design, tree.call_abi


def stub_choice(value: Any, code: Code, base_dir: Optional[str]) -> str:
    """``hyp.stub`` resolved: ``builtin``, ``kernel`` or the absolute path of a stub source."""
    if value == "auto":
        if isinstance(code, ElfCode):
            return "kernel" if _elf_has_stub(code) else "builtin"
        return "kernel" if isinstance(code, KernelTreeCode) else "builtin"
    if isinstance(code, ElfCode) and value == "kernel":
        if not _elf_has_stub(code):
            raise ScenarioError(STUB_KEY, f"'kernel': no ELF of hyp.code defines "
                                          f"{', '.join(_KERNEL_STUB)}")
        return "kernel"
    if value == "kernel":
        if not isinstance(code, KernelTreeCode):
            raise ScenarioError(STUB_KEY, "'kernel' is the stub of a kernel tree or an ELF: it "
                                          "needs hyp.code: {kernel: PATH} or {elf: PATH}")
        from ..kernel_tree import STUB_S, KernelTree
        if not KernelTree.open(code.path).has(STUB_S):
            raise ScenarioError(STUB_KEY, f"the kernel tree {code.path} has no {STUB_S}")
        return "kernel"
    return code_path(value, base_dir, STUB_KEY, "a stub's .S file")


_KERNEL_STUB = ("__hyp_stub_install", "__hyp_stub_install_secondary", "__hyp_set_vectors")


def _elf_has_stub(code: ElfCode) -> bool:
    """One of the ELFs holds the kernel's stub entry points (then it is run with its contract)."""
    from ..elf_image import ElfError
    from ..elf_source import read_elf
    for path in code.paths:
        try:
            if all(name in read_elf(Path(path)).symbols for name in _KERNEL_STUB):
                return True
        except ElfError as err:
            raise ScenarioError(KEY, str(err)) from None
    return False


def check_init_code(code: Code, trampoline_va: int, call_abi: str, isa: str = "arm") -> None:
    """User init code must assemble (an ``AsmError`` becomes a ``hyp.code`` error) and keep the
    contract; the built-in code does by construction. (A kernel tree: ``check_kernel_code``.)"""
    if code == "builtin" or isinstance(code, (KernelTreeCode, ElfCode)):
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
    check_contract(program.symbols, program.base, v.shown(code))


def check_stub_file(stub: str) -> None:
    """A stub source of one's own (``hyp.stub: PATH``, no kernel tree: assembled as it is) must
    assemble and define the entry points of the kernel's stub contract."""
    if stub in ("builtin", "kernel"):
        return
    from ..asm import AsmError, assemble_file
    from ..guest_abi import STUB_ENTRIES
    try:
        program = assemble_file(stub, 0x80000000)
    except AsmError as err:
        raise ScenarioError(STUB_KEY, "; ".join(str(err).strip().splitlines())) from None
    except (UnicodeError, OSError) as err:
        raise ScenarioError(STUB_KEY, f"{v.shown(stub)}: cannot read: {err}") from None
    missing = [name for name in STUB_ENTRIES["kernel"] if name not in program.symbols]
    if missing:
        raise GuestContractError(STUB_KEY, f"{v.shown(stub)}: no label {', '.join(missing)} (the "
                                           f"kernel's stub contract: "
                                           f"{', '.join(STUB_ENTRIES['kernel'])})")


def check_contract(symbols: Any, base: int, shown: str) -> None:
    missing = [name for name in ("__kvm_hyp_init", "__kvm_hyp_init_end") if name not in symbols]
    if missing:
        raise GuestContractError(KEY, f"{shown}: no label {' or '.join(missing)} (the init "
                                      f"code must define __kvm_hyp_init and __kvm_hyp_init_end)")
    start, end = symbols["__kvm_hyp_init"], symbols["__kvm_hyp_init_end"]
    if start != base:
        raise GuestContractError(KEY, f"{shown}: __kvm_hyp_init must start the init code "
                                      f"(the vector table, 32-byte aligned; found at "
                                      f"+{start - base:#x})")
    if end <= start:
        raise GuestContractError(KEY, f"{shown}: __kvm_hyp_init_end ({end - base:#x}) "
                                      f"must come after __kvm_hyp_init ({start - base:#x})")


def check_kernel_code(code: KernelTreeCode, stub: str, trampoline_va: int, cpus: int,
                      overrides: Any) -> None:
    """A kernel tree's init code (and stub) must preprocess, assemble and keep their contracts;
    an error names the kernel's file and line (``arch/arm/kvm/init.S:74: ...``)."""
    from ..asm import AsmError
    from ..guest_abi import STUB_ENTRIES
    from ..kernel_tree import kernel_regions
    try:
        init = kernel_regions(code.path, code.preprocessor, "builtin", trampoline_va, cpus,
                              dict(overrides))["init"].assemble(0x80000000, {})
    except (AsmError, InputError) as err:
        raise ScenarioError(KEY, "; ".join(str(err).strip().splitlines())) from None
    check_contract(init.symbols, init.base, f"{code.path}/arch/arm/kvm/init.S")
    if stub == "builtin":
        return
    try:
        program = kernel_regions(code.path, code.preprocessor, stub, trampoline_va, cpus,
                                 dict(overrides))["stub"].assemble(0x80000000, {})
    except (AsmError, InputError) as err:
        raise ScenarioError(STUB_KEY, "; ".join(str(err).strip().splitlines())) from None
    missing = [name for name in STUB_ENTRIES["kernel"] if name not in program.symbols]
    if missing:
        raise GuestContractError(STUB_KEY, f"{program.filename}: no label {', '.join(missing)} "
                                           f"(the kernel's stub contract: "
                                           f"{', '.join(STUB_ENTRIES['kernel'])})")
