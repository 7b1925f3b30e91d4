"""hypemu's built-in assembler against GNU as 2.40: every `.S` of the repository assembled by both,
compared byte for byte and symbol for symbol.

GNU's object is linked by GNU ld with a linker script that places the sections the way
hypemu.asm.sections documents (text, then data, then bss; `.text`/`.data` first in their group),
and the linked ELF is read with pyelftools. Skipped, with the reason, where GNU binutils for ARM is
not installed (Debian: binutils-arm-linux-gnueabihf)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from hypemu.asm import AsmError, assemble
from hypemu.guest_abi import guest_constants
from hypemu.toolchain import expand_kernel_macros

ROOT = Path(__file__).resolve().parent.parent
AS, LD = "arm-linux-gnueabihf-as", "arm-linux-gnueabihf-ld"
BASE = 0x40008000
KERNEL_TREE = ROOT / "tests" / "kernel_tree"      # C-preprocessed first: its own test below
SOURCES = sorted(p for p in ROOT.glob("**/*.S") if ".git" not in p.parts and "bad" not in p.parts
                 and KERNEL_TREE not in p.parents)
CONSTANTS = guest_constants(0xFFFF0000, "linux-3.10", 0x1000)

pytestmark = pytest.mark.skipif(
    shutil.which(AS) is None or shutil.which(LD) is None,
    reason=f"GNU binutils for ARM ({AS}, {LD}) not installed: Debian's binutils-arm-linux-gnueabihf")

def for_gnu(source: str, constants: dict[str, int]) -> str:
    """The source as GNU as reads it: the predefined constants as .equ lines, and the kernel's
    <asm/...> macros (which hypemu knows and GNU as gets from the C preprocessor) written out as
    `hyp.assembler: gnu` writes them out."""
    source = expand_kernel_macros(source)
    return "".join(f".equ {k}, {v:#x}\n" for k, v in constants.items()) + source


def _kind(section) -> str | None:
    flags = section["sh_flags"]
    if not flags & 0x2:                     # SHF_ALLOC
        return None
    if flags & 0x4:                         # SHF_EXECINSTR
        return "text"
    return "bss" if section["sh_type"] == "SHT_NOBITS" else "data"


def gnu_image(source: str, tmp: Path) -> tuple[bytes, dict[str, int]]:
    """Assemble with GNU as, link at BASE in hypemu's section order, return (bytes, symbols)."""
    (tmp / "a.S").write_text(source)
    subprocess.run([AS, "-march=armv7-a+virt", "-o", tmp / "a.o", tmp / "a.S"], check=True,
                   capture_output=True)
    with open(tmp / "a.o", "rb") as f:
        found = [(s.name, _kind(s)) for s in ELFFile(f).iter_sections() if _kind(s)]
    kinds = ("text", "data", "bss")
    order = sorted(found, key=lambda s: (kinds.index(s[1]), s[0] not in (".text", ".data", ".bss")))
    outputs = "".join(f'  "o{i}" : {{ *("{name}") }}\n' for i, (name, _) in enumerate(order))
    (tmp / "l.ld").write_text(f"SECTIONS {{\n  . = {BASE:#x};\n{outputs}  /DISCARD/ : {{ *(*) }}\n}}\n")
    subprocess.run([LD, "-T", tmp / "l.ld", "-o", tmp / "a.elf", tmp / "a.o"], check=True,
                   capture_output=True)
    image = bytearray()
    with open(tmp / "a.elf", "rb") as f:
        elf = ELFFile(f)
        for section in elf.iter_sections():
            if not section.name.startswith("o"):
                continue
            offset = section["sh_addr"] - BASE
            nobits = section["sh_type"] == "SHT_NOBITS"
            data = bytes(section["sh_size"]) if nobits else section.data()
            image += bytes(offset + len(data) - len(image))
            image[offset:offset + len(data)] = data
        symbols = {s.name: s["st_value"] for s in elf.get_section_by_name(".symtab").iter_symbols()
                   if s.name and not s.name.startswith("$")
                   and s["st_info"]["type"] in ("STT_NOTYPE", "STT_FUNC", "STT_OBJECT")
                   and s["st_shndx"] not in ("SHN_ABS", "SHN_UNDEF")}
    return bytes(image).rstrip(b"\0"), symbols


def differences(ours: bytes, theirs: bytes) -> list[str]:
    return [f"+{i:#x}: hypemu {ours[i:i + 4].hex()} GNU {theirs[i:i + 4].hex()}"
            for i in range(0, max(len(ours), len(theirs)), 4) if ours[i:i + 4] != theirs[i:i + 4]]


def assert_same(source: str, constants: dict[str, int], tmp: Path, name: str) -> None:
    program = assemble(source, BASE, constants=constants, filename=name)
    code, symbols = gnu_image(for_gnu(source, constants), tmp)
    ours = program.code.rstrip(b"\0")       # GNU's trailing bss is not in the linked file
    assert differences(ours, code) == [], name
    assert {k: v for k, v in program.symbols.items() if not k.startswith(".L")} == symbols


@pytest.mark.parametrize("path", SOURCES, ids=[str(p.relative_to(ROOT)) for p in SOURCES])
def test_every_source_of_the_repository_assembles_as_gnu_as_does(path, tmp_path):
    assert_same(path.read_text(), CONSTANTS, tmp_path, str(path))


@pytest.mark.parametrize("region", ["init", "stub"])
def test_the_kernel_trees_sources_assemble_as_gnu_as_does(region, tmp_path):
    """tests/kernel_tree's init.S and hyp-stub.S after the preprocessor (pcpp: the same text on
    every machine), as hypemu assembles a kernel tree's code: no predefined constant."""
    from hypemu.kernel_tree import kernel_regions
    source = kernel_regions(str(KERNEL_TREE), "python", "kernel", 0xFFFF0000, 2)[region].source
    assert_same(source.text, {}, tmp_path, region)


def test_the_sources_cover_data_sections_and_ldr_forms():
    assert any("sections_and_literals" in p.name for p in SOURCES)
    assert {"asm", "scenarios", "tests"} <= {p.relative_to(ROOT).parts[0] for p in SOURCES}


def test_the_sections_fixture_by_hand(tmp_path):
    """What the comparison relies on, computed by hand: MOV/MVN for encodable constants, the
    literal for others, data after text, zero padding."""
    program = assemble((ROOT / "tests/asm_fixtures/sections_and_literals.S").read_text(), BASE)
    words = [int.from_bytes(program.code[i:i + 4], "little") for i in range(0, 16, 4)]
    assert words[:3] == [0xE3A000FF, 0xE3A014FF, 0x13E0200F]     # mov #0xff, mov #0xff000000, mvnne #0xf
    assert words[3] & 0xFFFFF000 == 0xE59F3000                      # ldr r3, [pc, #...]
    assert program.code[0x24:0x28] == bytes([1, 2, 3, 0])           # .byte then zeros, to the word
    assert [s.kind for s in program.sections] == ["text", "text", "data", "data", "bss"]
    assert program.text_size == program.sections[2].address - BASE


@pytest.mark.parametrize("source, message", [
    ("ldr r0, =a - b\na: nop\nb: nop", "an expression of several labels"),
    ("a: nop\nldr r0, =a + 4 - a", "an expression of several labels"),
])
def test_ldr_of_a_label_difference_is_refused(source, message):
    with pytest.raises(AsmError, match=message):
        assemble(source, 0)


@pytest.mark.parametrize("value, encoding", [
    (0xFF, 0xE3A000FF), (0x3FC, 0xE3A00FFF), (0xFFFFFFFF, 0xE3E00000), (0xF000000F, 0xE3A002FF),
    (0xFFFFFF00, 0xE3E000FF), (0x101, None), (0xFFFF0000, None),
])
def test_ldr_constant_becomes_mov_or_mvn_where_encodable(value, encoding, tmp_path):
    """Hand-encoded (A8.8.102 MOV immediate, A8.8.115 MVN immediate), and GNU as's own choice."""
    program = assemble(f"ldr r0, ={value:#x}", 0)
    first = int.from_bytes(program.code[:4], "little")
    if encoding is None:
        assert first & 0xFF7FF000 == 0xE51F0000                     # ldr r0, [pc, #+-...]
        assert program.code[-4:] == value.to_bytes(4, "little")
    else:
        assert program.code == encoding.to_bytes(4, "little")
    code, _ = gnu_image(f"ldr r0, ={value:#x}\n", tmp_path)
    assert code == program.code.rstrip(b"\0")


CPP = "arm-linux-gnueabihf-cpp"
KERNEL_FILES = ("arch/arm/kvm/init.S", "arch/arm/kernel/hyp-stub.S")
_AUTOCONF = {"CONFIG_ARM": 1, "CONFIG_MMU": 1, "CONFIG_SMP": 1, "CONFIG_ARM_LPAE": 1,
             "CONFIG_ARM_VIRT_EXT": 1, "CONFIG_KVM": 1, "CONFIG_KVM_ARM_HOST": 1, "CONFIG_CPU_V7": 1,
             "CONFIG_AEABI": 1, "CONFIG_VECTORS_BASE": 0xFFFF0000, "CONFIG_PAGE_OFFSET": 0xC0000000,
             "CONFIG_NR_CPUS": 4}


def kbuild_preprocess(tree: Path, source: str, tmp: Path) -> str:
    """`source` of the kernel `tree` through the C preprocessor with kbuild's flags for an ARM
    build, and small generated headers for what a configured tree would have generated."""
    shim = tmp / "shim"
    (shim / "generated").mkdir(parents=True, exist_ok=True)
    (shim / "asm").mkdir(exist_ok=True)
    (shim / "generated" / "autoconf.h").write_text(
        "".join(f"#define {k} {v:#x}\n" for k, v in _AUTOCONF.items()))
    for name in ("asm-offsets.h", "bounds.h"):
        (shim / "generated" / name).write_text("")
    kbuilds = [tree / "arch/arm/include/asm/Kbuild", tree / "arch/arm/include/uapi/asm/Kbuild"]
    wrapped = {w for k in kbuilds if k.is_file()
               for w in re.findall(r"generic-y\s*\+=\s*(\S+\.h)", k.read_text())} | {"bitsperlong.h"}
    for name in wrapped:
        if not any((tree / d / name).exists() for d in ("arch/arm/include/asm",
                                                         "arch/arm/include/uapi/asm")):
            (shim / "asm" / name).write_text(f"#include <asm-generic/{name}>\n")
    include = [f"-I{d}" for d in (tree / "arch/arm/include", shim, tree / "arch/arm/include/uapi",
                                  tree / "include", tree / "include/uapi")]
    done = subprocess.run([CPP, "-D__ASSEMBLY__", "-D__KERNEL__", "-D__LINUX_ARM_ARCH__=7",
                           "-nostdinc", "-undef", "-D__arm__", *include, "-include",
                           str(tree / "include/linux/kconfig.h"), "-include", "asm/unified.h", "-P",
                           str(tree / source)], check=True, capture_output=True, text=True)
    return done.stdout


@pytest.mark.skipif(not os.environ.get("HYPEMU_LINUX_TREE") or shutil.which(CPP) is None,
                    reason="set HYPEMU_LINUX_TREE to a Linux v3.9..v5.6 source tree (and install "
                           f"{CPP}) to compare the kernel's own HYP sources")
@pytest.mark.parametrize("source", KERNEL_FILES)
def test_the_kernels_own_hyp_sources_assemble_as_gnu_as_does(source, tmp_path):
    """Opt-in: the repository holds no kernel text; the tree is the user's."""
    text = kbuild_preprocess(Path(os.environ["HYPEMU_LINUX_TREE"]), source, tmp_path)
    assert_same(text, {}, tmp_path, source)
