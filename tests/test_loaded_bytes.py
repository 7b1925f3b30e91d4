"""What the guest image looks like from outside: `read_phys` shows the bytes that were loaded (not
the trap markers the CPU model puts in their place), data sections are loaded as data, and the
predefined constants carry the Linux v3.10 header values."""

from __future__ import annotations

from conftest import machine

from hypemu.asm import assemble
from hypemu.cpu import PATCH_MARKER
from hypemu.guest_abi import guest_constants
from hypemu.loader import GuestImage, load_image, region_of

ISB = 0xF57FF06F                                   # ISB SY, A8.8.54
MARKER = PATCH_MARKER.to_bytes(4, "little")


def test_read_phys_returns_the_loaded_bytes_not_the_trap_markers():
    m = machine()                                    # checks on: the barriers are patched too
    init = m.kernel.image.init
    assert ISB.to_bytes(4, "little") in init.code
    raw = m.core.engine.read(init.load_pa, len(init.code))
    assert MARKER in raw                             # the CPU model did patch words here
    assert m.read_phys(init.load_pa, len(init.code)) == init.code
    at = init.code.index(ISB.to_bytes(4, "little"))
    assert m.read_phys(init.load_pa + at + 1, 2) == init.code[at + 1:at + 3]   # a part of a word
    assert m.read32(init.load_pa + at) == ISB


def test_a_write_over_a_patched_word_reads_back_as_written():
    m = machine()
    init = m.kernel.image.init
    at = init.load_pa + init.code.index(ISB.to_bytes(4, "little"))
    m.write_phys(at, b"\x01\x02\x03\x04")
    assert m.read_phys(at, 4) == b"\x01\x02\x03\x04"


class _Recorder:
    def __init__(self) -> None:
        self.code: list[tuple[int, bytes]] = []
        self.ram: list[tuple[int, bytes]] = []

    def load_code(self, pa: int, code: bytes, thumb: bool = False) -> None:
        self.code.append((pa, code))

    def write_ram(self, pa: int, data: bytes) -> None:
        self.ram.append((pa, data))

    def fill_ram(self, pa: int, data: bytes) -> None:
        self.ram.append((pa, data))


def test_data_sections_are_loaded_as_data_not_scanned_as_code():
    program = assemble(".text\nf: isb\nbx lr\n.data\nd: .long 0xF57FF06F\n", 0x1000)
    assert program.text_size == 8 and program.symbols["d"] == 0x1008
    region = region_of("stub", program, 0x1000)
    assert region.text == program.code[:8] and region.data == ISB.to_bytes(4, "little")
    other = region_of("pl1", assemble("bx lr", 0x2000), 0x2000)
    image = GuestImage(other, region, other, other)
    target = _Recorder()
    load_image(target, image, (0x1000, 0x3000))
    assert (0x1000, program.code[:8]) in target.code
    assert (0x1008, ISB.to_bytes(4, "little")) in target.ram


def test_predefined_constants_have_the_v3_10_kvm_arm_h_values():
    """By hand from the v3.10 header's definitions: HSCTLR_MASK = M|A|C|I|WXN|FI|EE|TE,
    HTCR_MASK = T0SZ(3)|IRGN0(3<<8)|ORGN0(3<<10)|SH0(3<<12), VTCR_MASK = SH0|ORGN0|IRGN0|SL0|S|T0SZ."""
    c = guest_constants(0xFFFF0000, "linux-3.10")
    assert c["TTBCR_T0SZ"] == 3
    assert c["HSCTLR_MASK"] == 1 | 2 | 4 | 1 << 12 | 1 << 19 | 1 << 21 | 1 << 25 | 1 << 30
    assert c["HSCTLR_TE"] == 1 << 30
    assert c["HTCR_MASK"] == 3 | 3 << 8 | 3 << 10 | 3 << 12
    assert c["VTCR_MASK"] == 3 << 12 | 3 << 10 | 3 << 8 | 3 << 6 | 1 << 4 | 0xF
    assert c["VTCR_SL_L1"] == c["VTCR_SL0_L1"] == 1 << 6
    assert c["VTCR_T0SZ_40BIT"] == ((32 - 40) & 0xF) | ((((32 - 40) & 0xF) << 1) & 0x10)
