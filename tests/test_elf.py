"""Guest code from ELF files (``hyp.code: {elf: ...}``): a vmlinux-style image linked by GNU ld
from test sources (tests/elf_fixtures plus hypemu's own asm/), relocatable objects from GNU as,
the relocations by hand, and the input errors, each naming the file. Skipped where GNU binutils
for ARM is not installed."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import hypemu
from hypemu.elf_image import ElfError, load_elf
from hypemu.guest_abi import PROBE_VALUE, guest_constants
from hypemu.kvm.config import ASM_DIR
from hypemu.machine import Machine
from hypemu.scenario import DEFAULT_SCENARIO, from_mapping
from hypemu.toolchain import expand_kernel_macros

FIXTURES = Path(__file__).resolve().parent / "elf_fixtures"
AS, LD = "arm-linux-gnueabihf-as", "arm-linux-gnueabihf-ld"
pytestmark = pytest.mark.skipif(shutil.which(AS) is None or shutil.which(LD) is None,
                                reason=f"GNU binutils for ARM ({AS}, {LD}) not installed: "
                                       "Debian's binutils-arm-linux-gnueabihf")
OBJECTS = {"pl1": ASM_DIR / "kvm-call.S", "stub": ASM_DIR / "hyp-stub.S",
           "init": ASM_DIR / "hyp-init.S", "runtime": ASM_DIR / "hyp-runtime.S",
           "head": FIXTURES / "head.S"}
RAM = 0x80000000


def gnu_as(source: Path, output: Path, probe_va: int = 0) -> Path:
    """GNU as on `source`, the kernel macros of hypemu's asm/ written out as cpp would."""
    consts = guest_constants(0xFFFF0000, "seed", probe_va)
    expanded = output.with_suffix(".expanded.S")
    expanded.write_text(expand_kernel_macros(source.read_text()))
    subprocess.run([AS, "-march=armv7-a+virt", *(f"--defsym={k}={v:#x}" for k, v in consts.items()),
                    "-o", output, expanded], check=True, capture_output=True)
    return output


def link_vmlinux(tmp: Path, runtime: bool = True, probe_va: int = 0) -> Path:
    for name, source in OBJECTS.items():
        gnu_as(source, tmp / f"{name}.o", probe_va)
    script = (FIXTURES / "vmlinux.lds").read_text()
    if not runtime:
        script = "\n".join(line for line in script.splitlines() if "kvm_hyp_code" not in line
                           and "runtime.o" not in line)
    (tmp / "vmlinux.lds").write_text(script)
    subprocess.run([LD, "-T", "vmlinux.lds", "-o", "vmlinux", "head.o", "stub.o", "init.o",
                    *(["runtime.o"] if runtime else []), "pl1.o"], cwd=tmp, check=True,
                   capture_output=True)
    return tmp / "vmlinux"


def elf_scenario(code, **sections) -> dict:
    return {**DEFAULT_SCENARIO, "name": "elf", "hyp": {"code": code}, **sections}


def test_a_vmlinux_boots_with_the_layout_it_was_linked_for(tmp_path):
    vmlinux = link_vmlinux(tmp_path, runtime=False)
    s = from_mapping(elf_scenario({"elf": str(vmlinux)}))
    assert (s.page_offset, s.text_offset, s.hyp_idmap_offset) == (0xC0000000, 0x8000, 0x2000)
    m = Machine(s)
    assert m.layout.idmap_start == RAM + 0x8000 + 0x2000
    assert m.kernel.image.init.filename == str(vmlinux)
    assert m.kernel.image.stub.base == RAM + 0x8000 + 0x1000      # hyp-stub.o after the head page
    elf = load_elf(vmlinux)
    marker = elf.symbols["image_marker"] - 0xC0000000 + RAM      # PA = VA - PAGE_OFFSET + RAM
    assert m.read_phys(marker, 4) == (0x11223344).to_bytes(4, "little")
    assert m.layout.hyp_text >= RAM + 0x8000 + (max(s.end for s in elf.sections) - 0xC0008000)
    m.boot()
    assert m.call(0, "hyp_probe") == PROBE_VALUE                  # the built-in runtime
    result = hypemu.run(elf_scenario({"elf": str(vmlinux)}, machine={"cpus": 4},
                                     steps=[{"boot": "all"}, {"hotplug": {"cpu": 2, "state": "off"}},
                                            {"hotplug": {"cpu": 2, "state": "on"}},
                                            {"call": {"cpu": 2, "fn": "hyp_probe"}}]))
    assert result.outcome == "ok", result.reason


def test_a_vmlinux_with_runtime_hyp_text_maps_it_and_calls_by_symbol(tmp_path):
    probe = Machine(from_mapping(elf_scenario({"elf": str(link_vmlinux(tmp_path))})))
    probe_va = probe.layout.kva(probe.layout.hyp_data)        # HYP_PROBE_VA, as the build bakes it
    vmlinux = link_vmlinux(tmp_path, probe_va=probe_va)
    m = Machine(from_mapping(elf_scenario({"elf": str(vmlinux)})))
    runtime = m.kernel.image.runtime
    elf = load_elf(vmlinux)
    assert runtime.filename == str(vmlinux)
    assert runtime.base == elf.symbols["__kvm_hyp_code_start"]    # linked at its kernel VA
    assert m.layout.hyp_text == runtime.load_pa == runtime.base - 0xC0000000 + RAM
    m.boot()
    assert m.call(0, "hyp_probe") == PROBE_VALUE
    assert m.symbol("hyp_sum") == elf.symbols["hyp_sum"]


def test_a_scenario_asking_for_another_layout_is_refused(tmp_path):
    vmlinux = link_vmlinux(tmp_path, runtime=False)
    with pytest.raises(hypemu.ScenarioError, match=r"kernel.text_offset: .*vmlinux is linked for "
                                                   r"text_offset 0x8000, the scenario asks for 0x10000"):
        from_mapping(elf_scenario({"elf": str(vmlinux)}, kernel={"text_offset": 0x10000}))
    same = from_mapping(elf_scenario({"elf": str(vmlinux)}, kernel={"text_offset": 0x8000}))
    assert same.text_offset == 0x8000


def test_relocatable_objects_load_at_the_placed_addresses(tmp_path):
    init, stub = gnu_as(OBJECTS["init"], tmp_path / "init.o"), gnu_as(OBJECTS["stub"], tmp_path / "stub.o")
    elf = Machine(from_mapping(elf_scenario({"elf": [str(init), str(stub)]})))
    builtin = Machine(from_mapping({**DEFAULT_SCENARIO, "name": "b"}))
    for name in ("stub", "init"):
        ours, theirs = getattr(elf.kernel.image, name), getattr(builtin.kernel.image, name)
        assert ours.filename.endswith(".o") and ours.code == theirs.code
        assert dict(ours.symbols) == dict(theirs.symbols)
    elf.boot()
    assert elf.call(0, "hyp_probe") == PROBE_VALUE


def test_the_relocations_by_hand(tmp_path):
    """IHI 0044 table 4-8, REL (the addend in the instruction): S + A, S + A - P, branches."""
    obj = gnu_as(FIXTURES / "relocations.s", tmp_path / "r.o")
    near = 0x01234560                   # 19 MiB above the code: a branch reaches it
    image = load_elf(obj, 0x1000, externals={"far": near})
    code = image.sections[0].data
    word = [int.from_bytes(code[i:i + 4], "little") for i in range(0, len(code), 4)]
    assert word[0] == 0xE3040570        # movw r0, #0x4570 (lower16 of near + 0x10)
    assert word[1] == 0xE3400123        # movt r0, #0x0123
    assert word[2] == 0xEB000000 | ((near - (0x1008 + 8)) >> 2)                       # bl
    assert word[3] == 0xEA000000 | ((near - (0x100C + 8)) >> 2)                       # b
    assert word[4] == near + 8 and word[5] == near - 0x1014                           # ABS32, REL32
    far = 0x12345678
    with pytest.raises(ElfError, match=rf"\.text\+0x8: the branch to {far:#x} is out of range"):
        load_elf(obj, 0x1000, externals={"far": far})


def test_an_undefined_symbol_and_an_unsupported_relocation_name_the_file(tmp_path):
    obj = gnu_as(FIXTURES / "relocations.s", tmp_path / "r.o")
    with pytest.raises(ElfError, match=rf"^{obj}: undefined symbol 'far'"):
        load_elf(obj)
    (tmp_path / "p.S").write_text(".text\nnop\n.reloc 0, R_ARM_PREL31, far\n")
    other = gnu_as(tmp_path / "p.S", tmp_path / "p.o")
    with pytest.raises(ElfError, match=rf"^{other}: .text\+0x0: R_ARM_PREL31 is not supported"):
        load_elf(other, externals={"far": 0})


def test_bad_files_are_input_errors_with_the_file_name(tmp_path):
    good = gnu_as(OBJECTS["init"], tmp_path / "init.o").read_bytes()
    other = tmp_path / "x86.o"
    other.write_bytes(good[:18] + (62).to_bytes(2, "little") + good[20:])     # e_machine EM_X86_64
    short = tmp_path / "short.o"
    short.write_bytes(good[:len(good) // 3])
    stub_only = gnu_as(OBJECTS["stub"], tmp_path / "stub.o")
    text = tmp_path / "notes.txt"
    text.write_text("not an ELF\n")
    for path, message in [(other, "not a 32-bit little-endian ARM ELF"),
                          (short, "truncated"), (stub_only, "no symbol __kvm_hyp_init"),
                          (text, "not an ELF file")]:
        with pytest.raises(hypemu.ScenarioError) as err:
            from_mapping(elf_scenario({"elf": str(path)}))
        assert f"hyp.code: {path}: " in str(err.value) and message in str(err.value), str(err.value)
    with pytest.raises(hypemu.ScenarioError, match="hyp.code.elf: no such file"):
        from_mapping(elf_scenario({"elf": str(tmp_path / "missing")}))


def test_a_yaml_scenario_names_the_file_and_line_of_a_bad_elf(tmp_path):
    (tmp_path / "bad.o").write_bytes(b"\x7fELF" + bytes(8))
    (tmp_path / "s.yaml").write_text("name: bad\nhyp:\n  code: {elf: bad.o}\n")
    done = subprocess.run([sys.executable, "-m", "hypemu.cli", "validate", str(tmp_path / "s.yaml")],
                          capture_output=True, text=True)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"{tmp_path / 's.yaml'}:3: hyp.code: {tmp_path / 'bad.o'}: " in done.stderr + done.stdout
