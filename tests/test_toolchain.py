"""``hyp.assembler``: the user's GNU as or llvm-mc, found on PATH, its objects loaded through the ELF
loader. Each tool's tests skip, with the reason, where it is not installed."""

from __future__ import annotations

import os
import shutil

import pytest

import hypemu
from hypemu.asm import AsmError
from hypemu.guest_abi import PROBE_VALUE
from hypemu.machine import Machine
from hypemu.scenario import DEFAULT_SCENARIO, from_mapping
from hypemu.scenario.models import ASSEMBLERS as SCENARIO_ASSEMBLERS
from hypemu.toolchain import ASSEMBLERS, ToolchainError, find_assembler

GNU = shutil.which("arm-linux-gnueabihf-as") or shutil.which("arm-none-eabi-as")
LLVM = shutil.which("llvm-mc")
needs_gnu = pytest.mark.skipif(GNU is None, reason="no GNU as for ARM on PATH "
                                                   "(Debian: binutils-arm-linux-gnueabihf)")
needs_llvm = pytest.mark.skipif(LLVM is None, reason="no llvm-mc on PATH (Debian: llvm)")


def scenario(assembler: str, **hyp) -> dict:
    return {**DEFAULT_SCENARIO, "name": assembler, "hyp": {"assembler": assembler, **hyp}}


def test_the_scenario_knows_every_assembler():
    assert SCENARIO_ASSEMBLERS == ASSEMBLERS


@needs_gnu
def test_gnu_as_gives_the_builtin_image_byte_for_byte():
    gnu, builtin = Machine(from_mapping(scenario("gnu"))), Machine(from_mapping(scenario("builtin")))
    for ours, theirs in zip(gnu.kernel.image.regions(), builtin.kernel.image.regions()):
        assert (ours.code, dict(ours.symbols), ours.base) == (theirs.code, dict(theirs.symbols),
                                                              theirs.base), ours.name
    gnu.boot()
    assert gnu.call(0, "hyp_probe") == PROBE_VALUE


@needs_llvm
def test_llvm_mc_objects_boot():
    result = hypemu.run(scenario("llvm"))
    assert result.outcome == "ok", result.reason


@needs_gnu
def test_auto_prefers_gnu_and_cross_compile_names_it(monkeypatch, tmp_path):
    assert find_assembler("auto").kind == "gnu"
    tool = tmp_path / "my-cross-as"
    tool.symlink_to(GNU)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("CROSS_COMPILE", "my-cross-")
    assert find_assembler("gnu").program == str(tool)


def test_an_assembler_not_installed_is_an_input_error(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("CROSS_COMPILE", raising=False)
    for choice in ("gnu", "llvm"):
        with pytest.raises(ToolchainError, match=f"hyp.assembler: {choice}: no .* found on PATH"):
            find_assembler(choice)
    assert find_assembler("auto") is None and find_assembler("builtin") is None
    (tmp_path / "s.yaml").write_text("name: s\nhyp:\n  assembler: llvm\n")
    with pytest.raises(hypemu.ScenarioError) as err:
        hypemu.load_scenario(tmp_path / "s.yaml")
    assert str(err.value) == (f"{tmp_path / 's.yaml'}:3: hyp.assembler: llvm: no llvm-mc found "
                              "on PATH")


@needs_gnu
def test_an_error_of_the_assembler_points_at_the_file_and_line(tmp_path):
    init = tmp_path / "init.S"
    init.write_text(".align 5\n.global __kvm_hyp_init\n__kvm_hyp_init:\n  frobnicate r0\n")
    with pytest.raises(AsmError) as err:
        Machine(from_mapping(scenario("gnu", code=str(init))))
    assert str(err.value).startswith(f"{init}:4: ") and "frobnicate" in str(err.value)


@needs_gnu
def test_c_preprocessor_lines_are_refused_not_taken_for_comments(tmp_path):
    init = tmp_path / "init.S"
    init.write_text("nop\n#define X 1\n")
    with pytest.raises(AsmError, match=rf"^{init}:2: C preprocessor lines"):
        Machine(from_mapping(scenario("gnu", code=str(init))))


@needs_gnu
def test_the_scenario_library_meets_its_expectations_with_gnu_as():
    """Every shipped scenario, its .S assembled by GNU as instead: the same outcomes."""
    import yaml
    from pathlib import Path
    root = Path(__file__).resolve().parent.parent / "scenarios"
    files = sorted(root.glob("*.yaml"))
    assert len(files) > 20
    for path in files:
        data = yaml.safe_load(path.read_text())
        data["hyp"] = {**(data.get("hyp") or {}), "assembler": "gnu"}
        result = hypemu.run(from_mapping(data, base_dir=str(root)))
        assert result.passed, (path.name, result.outcome, result.reason)
