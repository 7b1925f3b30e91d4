"""The one way in: a mapping (from YAML or from Python) becomes a typed ``Scenario``, or a
``ScenarioError`` and nothing else. With a file, the error reads ``FILE:LINE: key.path: message``;
without one (the Python API), ``key.path: message``."""

from __future__ import annotations

import os
from typing import Any, Mapping, Optional, Union

from ..errors import ScenarioError
from . import sections, steps
from .guest import check_elf, check_init_code, check_kernel_code, check_stub_file, tree_isa
from .models import ElfCode, KernelTreeCode
from .keys import DEFAULTS
from .models import Scenario
from .values import describe, string
from .yamlfile import FILE_KEY, first_line, located, parse, read_text

# The built-in default scenario: the default board, boot, then one runtime HYP call.
DEFAULT_SCENARIO: dict[str, Any] = {
    "name": "default",
    "description": "Dual-step HYP init on one Cortex-A15 with 1 GiB of RAM, then one runtime call",
    "steps": [{"boot": "all"}, {"call": {"cpu": 0, "fn": "hyp_probe"}}],
}


def with_kernel(user: Mapping[str, Any], kernel: Optional[str]) -> Mapping[str, Any]:
    """``user`` with ``hyp.code: {kernel: PATH}`` in place of its own code (``--kernel PATH``;
    a relative PATH is taken from the working directory, as a command line's)."""
    if kernel is None or not isinstance(user, Mapping):
        return user
    hyp = user.get("hyp")
    hyp = dict(hyp) if isinstance(hyp, Mapping) else {}
    hyp["code"] = {"kernel": os.path.abspath(os.path.expanduser(kernel))}
    return {**user, "hyp": hyp}


def from_mapping(user: Mapping[str, Any], file: Optional[str] = None, base_dir: Optional[str] = None,
                 lines: Optional[Mapping[str, int]] = None, kernel: Optional[str] = None) -> Scenario:
    """The typed scenario for a plain mapping. Raises ``ScenarioError`` (and nothing else) for a
    mapping that is not a valid scenario; with ``file`` and ``lines`` (key path -> YAML line, from
    ``load_file``) the error cites the line. ``kernel``: a kernel tree that replaces ``hyp.code``
    (``with_kernel``)."""
    line_map = dict(lines or {})
    try:
        return _build(with_kernel(user, kernel), file, base_dir, line_map)
    except ScenarioError as err:
        if file is None or err.file:
            raise
        raise located(err, file, line_map) from None


def _build(user: Mapping[str, Any], file: Optional[str], base_dir: Optional[str],
           lines: dict[str, int]) -> Scenario:
    top = sections.mapping(user, "", "")
    name = sections.name_of(top)
    description = string(top.get("description", DEFAULTS["description"]), "description")
    machine = sections.machine(top)
    kernel = sections.kernel(top)
    hyp = sections.hyp(top, base_dir)
    if isinstance(hyp.code, KernelTreeCode):       # CONFIG_THUMB2_KERNEL is kernel.isa: thumb2
        kernel = tree_isa(kernel, top.get("kernel") or {})
    if isinstance(hyp.code, ElfCode):              # the ELF's layout and instruction set
        kernel = check_elf(hyp.code, kernel, top.get("kernel") or {})
    step_list = steps.steps(top.get("steps", DEFAULTS["steps"]), machine.cpus)
    inject = steps.injections(top.get("inject", DEFAULTS["inject"]), len(step_list), kernel.isa)
    limits = sections.limits(top)
    expect = sections.expect(top, machine.cpus)
    if hyp.assembler in ("gnu", "llvm"):
        _check_assembler(hyp.assembler)
    if isinstance(hyp.code, KernelTreeCode):                       # last: the slowest checks
        check_kernel_code(hyp.code, hyp.stub, hyp.trampoline_va, machine.cpus, kernel.config)
    elif hyp.assembler == "builtin":    # another assembler reports its own errors when it runs
        check_init_code(hyp.code, hyp.trampoline_va, hyp.call_abi, kernel.isa)
        check_stub_file(hyp.stub)
    step_lines = tuple(lines.get(f"steps[{i}]") if "steps" in top else None
                       for i in range(len(step_list)))
    return Scenario(name=name, description=description, machine=machine, kernel=kernel, hyp=hyp,
                    steps=step_list, inject=inject, limits=limits, expect=expect, file=file,
                    base_dir=base_dir, raw=dict(top), lines=lines, step_lines=step_lines)


def _check_assembler(choice: str) -> None:
    """``hyp.assembler: gnu | llvm`` needs that tool on PATH."""
    from ..toolchain import ToolchainError, find_assembler
    try:
        find_assembler(choice)
    except ToolchainError as err:
        raise ScenarioError("hyp.assembler", str(err).removeprefix("hyp.assembler: ")) from None


def load_file(path: Union[str, "os.PathLike[str]"], kernel: Optional[str] = None) -> Scenario:
    """Read, parse (YAML safe loading, one document) and validate a scenario file; ``kernel``: a
    kernel tree that replaces its ``hyp.code`` (``hypemu run --kernel PATH``).

    Raises ``ScenarioError`` whose text is ``FILE:LINE: key.path: what is wrong``."""
    name = os.fspath(path)
    text = read_text(name)
    try:
        data, lines = parse(text)
    except ScenarioError as err:
        raise err.at(name, err.line or 1) from None
    if data is None:
        raise ScenarioError(FILE_KEY, "empty scenario (the document is empty; at least 'name' is "
                                      "required)", name, 1)
    if not isinstance(data, Mapping):
        raise ScenarioError(FILE_KEY, f"expected a mapping of keys (name, machine, steps, ...) at the "
                                      f"top level, got {describe(data)}", name, first_line(text))
    base_dir = os.path.dirname(os.path.abspath(name))
    return from_mapping(data, file=name, base_dir=base_dir, lines=lines, kernel=kernel)


def load_scenario(source: Union[Scenario, Mapping[str, Any], str, "os.PathLike[str]"]) -> Scenario:
    """A Scenario from a file path (``load_file``), a mapping (``from_mapping``) or a Scenario."""
    if isinstance(source, Scenario):
        return source
    if isinstance(source, Mapping):
        return from_mapping(source)
    if isinstance(source, (str, os.PathLike)):
        return load_file(source)
    raise TypeError(f"load_scenario expects a Scenario, a mapping or a path, "
                    f"got {type(source).__name__}")
