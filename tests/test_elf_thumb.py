"""Thumb code in ELF files: the Thumb relocations by hand (IHI 0044 table 4-8 and the T32
encodings of ARM ARM A8.8), Thumb told by the symbols (a function's bit 0, the ``$t``/``$a``
mapping symbols), and the Thumb-2 build of the test kernel tree as objects from GNU as
(``-mthumb -mimplicit-it=always``, as kbuild builds CONFIG_THUMB2_KERNEL) loaded through
``{elf: [...]}``: kernel.isa follows the ELF, and it boots. Skipped without GNU as for ARM."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

import hypemu
from hypemu.elf_image import ElfError, load_elf
from hypemu.elf_source import elf_isa
from hypemu.kernel_tree import kernel_regions

AS = "arm-linux-gnueabihf-as"
pytestmark = pytest.mark.skipif(shutil.which(AS) is None,
                                reason=f"GNU as for ARM ({AS}) not installed: Debian's "
                                       "binutils-arm-linux-gnueabihf")
HERE = Path(__file__).resolve().parent
TREE = HERE / "kernel_tree"


def thumb_as(source: Path, output: Path, thumb: bool = True) -> Path:
    subprocess.run([AS, "-march=armv7-a+virt", *(["-mthumb", "-mimplicit-it=always"] if thumb
                                                  else []), "-o", output, source],
                   check=True, capture_output=True)
    return output


def halfwords(code: bytes) -> list[int]:
    return [int.from_bytes(code[i:i + 2], "little") for i in range(0, len(code), 2)]


def test_the_thumb_relocations_by_hand(tmp_path):
    """At base 0x1000, far = 0xa34560 (Thumb code), armfar = 0xa34568 (ARM code):
    movw/movt: imm16 = imm4:i:imm3:imm8 of 0x4570 and 0x00a3 (far + 0x10);
    bl at 0x1008: S + A - P = 0xa34560 - 4 - 0x1008 = 0xa33554: S 0, I1 1, I2 0, so J1 0, J2 1,
    imm10 0x233, imm11 0x2aa; b.w at 0x100c: 0xa33550, imm11 0x2a8; blx at 0x1010 (from
    Align(P, 4)): 0xa34568 - 4 - 0x1010 = 0xa33554 again, with BLX's bit 12 clear;
    movw r1 and .word of the Thumb function tfunc (0x1000): (S + A) | T = 0x1001."""
    obj = thumb_as(HERE / "elf_fixtures" / "thumb-relocations.s", tmp_path / "t.o")
    image = load_elf(obj, 0x1000, externals={"far": 0xA34560, "armfar": 0xA34568})
    code = image.sections[0].data
    assert halfwords(code[:0x18]) == [
        0xF244, 0x5070,          # movw r0, #0x4570
        0xF2C0, 0x00A3,          # movt r0, #0x00a3
        0xF233, 0xDAAA,          # bl   0xa34560
        0xF233, 0x9AA8,          # b.w  0xa34560
        0xF233, 0xCAAA,          # blx  0xa34568
        0xF241, 0x0101,          # movw r1, #0x1001
    ]
    assert int.from_bytes(code[0x18:0x1C], "little") == 0x1001
    assert image.thumb == {"tfunc"} and image.symbols["tfunc"] == 0x1000
    assert image.thumb_code(0x1000, 0x1018)
    with pytest.raises(ElfError, match=r"\.text\+0x8: the Thumb branch to 0x1234560 is out of "
                                       r"range \(\+-16 MiB\)"):
        load_elf(obj, 0x1000, externals={"far": 0x1234560, "armfar": 0xA34568})
    with pytest.raises(ElfError, match=r"\.text\+0x10: .*not word-aligned"):
        load_elf(obj, 0x1000, externals={"far": 0xA34560, "armfar": 0xA34566})


def test_mapping_symbols_tell_thumb_code_and_a_mixed_region_is_refused(tmp_path):
    """A Thumb init code without function symbols is Thumb by its $t; one that holds ARM ($a)
    and Thumb ($t) code is refused (a region is in one instruction set)."""
    body = ".globl __kvm_hyp_init\n__kvm_hyp_init:\n{code}\n.globl __kvm_hyp_init_end\n" \
           "__kvm_hyp_init_end:\n"
    (tmp_path / "t.s").write_text(".syntax unified\n.thumb\n" + body.format(code="b.w .\nnop.w"))
    plain = thumb_as(tmp_path / "t.s", tmp_path / "t.o")
    image = load_elf(plain)
    assert not image.thumb and image.code_marks == ((0, True),)
    assert elf_isa((plain,)) == "thumb2"
    (tmp_path / "a.s").write_text(body.format(code="b .\nnop"))
    assert elf_isa((thumb_as(tmp_path / "a.s", tmp_path / "a.o", thumb=False),)) == "arm"
    (tmp_path / "m.s").write_text(".syntax unified\n.arm\n" +
                                  body.format(code="b .\n.thumb\nb.w .\nnop.w"))
    mixed = thumb_as(tmp_path / "m.s", tmp_path / "m.o")
    with pytest.raises(ElfError, match=r"m\.o: \[0x0, 0xc\) holds both ARM \(\$a\) and Thumb"):
        elf_isa((mixed,))


def tree_objects(tmp_path: Path, thumb: bool) -> list[str]:
    """init.o and hyp-stub.o: the test tree preprocessed (CONFIG_THUMB2_KERNEL for ``thumb``) and
    assembled by GNU as as kbuild does."""
    config = {"CONFIG_THUMB2_KERNEL": "1"} if thumb else {}
    regions = kernel_regions(str(TREE), "python", "kernel", 0xFFFF0000, 2, config)
    objects = []
    for region, name in (("init", "init"), ("stub", "hyp-stub")):
        (tmp_path / f"{name}.s").write_text(regions[region].source.text)
        objects.append(str(thumb_as(tmp_path / f"{name}.s", tmp_path / f"{name}.o", thumb)))
    return objects


def objects_scenario(objects: list[str], **kernel) -> dict:
    steps = [{"boot": "all"}, {"hotplug": {"cpu": 1, "state": "off"}},
             {"hotplug": {"cpu": 1, "state": "on"}}, {"call": {"cpu": 1, "fn": "hyp_probe"}}]
    return {"name": "objects", "machine": {"cpus": 2}, "steps": steps, "kernel": kernel,
            "hyp": {"code": {"elf": objects}, "call_abi": "linux-3.10"}}


def test_the_thumb2_trees_objects_boot_through_the_elf_loader(tmp_path):
    thumb = tree_objects(tmp_path, thumb=True)
    s = hypemu.load_scenario(objects_scenario(thumb))
    assert (s.isa, s.stub) == ("thumb2", "kernel")            # from the ELF symbols' Thumb bit
    m = hypemu.Machine(s)
    image = m.kernel.image
    assert image.init.thumb and image.stub.thumb and image.pl1.thumb and image.runtime.thumb
    assert image.stub.entry("__hyp_stub_install") == image.stub.address("__hyp_stub_install") | 1
    result = hypemu.run(s)
    assert (result.outcome, result.passed, result.isa) == ("ok", True, "thumb2"), result.reason
    assert [c["r0"] for c in result.calls] == [0x4B564D21]
    for cpu in result.to_dict()["cpus"]:
        assert cpu["online"] and cpu["hyp"]["HSCTLR"] & (1 << 30)       # HSCTLR.TE
    entries = [e.detail for e in result.events if e.name == "enter kernel in HYP"]
    assert [d.split()[1] for d in entries] == ["__hyp_stub_install"] + \
        ["__hyp_stub_install_secondary"] * 2
    with pytest.raises(hypemu.ScenarioError, match=r"kernel.isa: .*init\.o: its HYP init code is "
                                                   r"Thumb-2 code .*asks for arm"):
        hypemu.load_scenario(objects_scenario(thumb, isa="arm"))
    (tmp_path / "arm").mkdir()
    arm = tree_objects(tmp_path / "arm", thumb=False)
    assert hypemu.load_scenario(objects_scenario(arm)).isa == "arm"
    with pytest.raises(hypemu.ScenarioError, match=r"kernel.isa: .*its HYP init code is ARM code"):
        hypemu.load_scenario(objects_scenario(arm, isa="thumb2"))
