"""Hand-computed HYP stage 1 walks over raw descriptors, and the syndromes of their faults.

Common layout (T0SZ = 0): level-1 table at PGD = 0x8000_0000, level-2 table at 0x8000_1000, level-3
table at 0x8000_2000. VA = 0x4020_3ABC indexes level 1 with VA[31:30] = 1, level 2 with
VA[29:21] = 0x201 & 0x1FF = 1, level 3 with VA[20:12] = 0x40203 & 0x1FF = 3, so its descriptors live
at S1 = PGD + 1*8, S2 = 0x8000_1000 + 1*8 and S3 = 0x8000_2000 + 3*8.

Descriptor bits used below: 0b11 table/page, 0b01 block; AP[2:1] = 0b01 -> 0x40 (read/write),
0b11 -> 0xC0 (read-only); AF = 0x400; XN = 1 << 54; PXN = 1 << 53; nG = 0x800; XNTable = 1 << 60;
APTable[1] = 1 << 62; APTable[0] = 1 << 61; PXNTable = 1 << 59.
"""

import pytest

from hypemu.lpae import PAGE_HYP
from hypemu.syndrome import (
    EC_CP15_32,
    EC_CP15_64,
    EC_DABT_HYP,
    EC_DABT_LOWER,
    EC_HVC,
    EC_PABT_HYP,
    EC_PABT_LOWER,
    EC_SMC,
    EC_UNKNOWN,
    FSC_ALIGNMENT,
    FSC_SYNC_EXTERNAL,
    encode_hsr,
    encode_ldfsc,
    hsr_for_abort,
    hsr_for_hvc,
)
from hypemu.walker import Fault, Regime, Translation, check_access, table_walk, walk
from memfake import DictMem

PGD, L2, L3 = 0x8000_0000, 0x8000_1000, 0x8000_2000
VA = 0x4020_3ABC
S1, S2, S3 = PGD + 8, L2 + 8, L3 + 3 * 8
T_L2, T_L3 = L2 | 0b11, L3 | 0b11          # table descriptors to the next level
PAGE_RW = 0x9000_0000 | 0x400 | 0x40 | 0b11  # 0x9000_0443
PAGE_RO = 0x9000_0000 | 0x400 | 0xC0 | 0b11  # 0x9000_04C3
XN, PXN = 1 << 54, 1 << 53
XN_TABLE, AP_TABLE1, AP_TABLE0, PXN_TABLE = 1 << 60, 1 << 62, 1 << 61, 1 << 59
HYP = Regime(ttbr=PGD)


def tables(l1, l2=None, l3=None, *, regime=HYP, va=VA, access="read"):
    """Write the given raw descriptors at S1/S2/S3 and walk ``va``."""
    mem = DictMem()
    for slot, desc in ((S1, l1), (S2, l2), (S3, l3)):
        if desc is not None:
            mem.write64(slot, desc)
    return walk(mem.read64, regime, va, access)


def assert_fault(r, ftype, level, descriptors, access="read", va=VA):
    assert isinstance(r, Fault), r
    assert r == Fault(ftype, level, va, access, descriptors=descriptors)


# ---- translation faults ------------------------------------------------------------------------

@pytest.mark.parametrize("l1, l2, l3, level, descs", [
    (0, None, None, 1, (S1,)),                          # invalid level-1 entry
    (L2 | 0b10, None, None, 1, (S1,)),                  # bits[1:0] = 0b10: invalid too
    (T_L2, 0, None, 2, (S1, S2)),                       # invalid level-2 entry
    (T_L2, T_L3, 0, 3, (S1, S2, S3)),                   # invalid level-3 entry
    (T_L2, T_L3, 0x9000_0441, 3, (S1, S2, S3)),         # 0b01 at level 3 is reserved
    (T_L2, T_L3, 0x0000_FF00_9000_0440, 3, (S1, S2, S3)),  # invalid wins over bits[47:40]
])
def test_translation_faults(l1, l2, l3, level, descs):
    assert_fault(tables(l1, l2, l3), "translation", level, descs)


# ---- access flag faults ------------------------------------------------------------------------

@pytest.mark.parametrize("l1, l2, l3, level, descs", [
    (0x4000_0041, None, None, 1, (S1,)),            # 1 GiB block, AP 0x40, AF = 0
    (T_L2, 0x4020_0041, None, 2, (S1, S2)),         # 2 MiB block, AF = 0
    (T_L2, T_L3, 0x9000_0043, 3, (S1, S2, S3)),     # page, AF = 0
])
def test_access_flag_faults(l1, l2, l3, level, descs):
    assert_fault(tables(l1, l2, l3), "access_flag", level, descs)


# ---- address size faults -----------------------------------------------------------------------

@pytest.mark.parametrize("l1, l2, l3, level, descs", [
    (0x0000_0100_0000_0000 | T_L2, None, None, 1, (S1,)),          # table, bit 40
    (T_L2, 0x0000_8000_0000_0000 | T_L3, None, 2, (S1, S2)),       # table, bit 47
    (T_L2, T_L3, 0x0000_FF00_0000_0000 | PAGE_RW, 3, (S1, S2, S3)),  # page, bits[47:40]
    (0x0000_0100_4000_0441, None, None, 1, (S1,)),                 # 1 GiB block, bit 40
    (T_L2, 0x0000_0200_4020_0441, None, 2, (S1, S2)),              # 2 MiB block, bit 41
    (T_L2, T_L3, 0x0000_0100_9000_0043, 3, (S1, S2, S3)),          # before the AF=0 check
])
def test_descriptor_address_size_faults(l1, l2, l3, level, descs):
    assert_fault(tables(l1, l2, l3), "address_size", level, descs)


@pytest.mark.parametrize("ttbr", [1 << 40 | PGD, 1 << 47 | PGD, 1 << 63 | PGD])
def test_httbr_too_large_is_level_0_address_size(ttbr):
    # Nothing is read: the fault comes from HTTBR itself, reported at level 0.
    assert_fault(tables(T_L2, regime=Regime(ttbr=ttbr)), "address_size", 0, ())


def test_input_range_checked_before_httbr():
    # T0SZ=1: VA 0x8000_0000 has bit 31 set, outside the 31-bit range -> translation, level 1.
    r = tables(T_L2, regime=Regime(ttbr=1 << 40 | PGD, t0sz=1), va=0x8000_0000)
    assert_fault(r, "translation", 1, (), va=0x8000_0000)


# ---- permission faults -------------------------------------------------------------------------

@pytest.mark.parametrize("l1, l2, l3, level, descs", [
    (0x4000_04C1, None, None, 1, (S1,)),            # 1 GiB block, AP[2] = 1
    (T_L2, 0x4020_04C1, None, 2, (S1, S2)),         # 2 MiB block, AP[2] = 1
    (T_L2, T_L3, PAGE_RO, 3, (S1, S2, S3)),         # page, AP[2] = 1
    (AP_TABLE1 | T_L2, T_L3, PAGE_RW, 3, (S1, S2, S3)),   # APTable[1] on the level-1 table
    (T_L2, AP_TABLE1 | T_L3, PAGE_RW, 3, (S1, S2, S3)),   # APTable[1] on the level-2 table
])
def test_write_to_read_only(l1, l2, l3, level, descs):
    assert_fault(tables(l1, l2, l3, access="write"), "permission", level, descs, "write")
    r = tables(l1, l2, l3, access="read")
    assert isinstance(r, Translation) and r.readable and not r.writable


@pytest.mark.parametrize("l1, l2, l3", [
    (T_L2, T_L3, XN | PAGE_RW),                   # XN page
    (XN_TABLE | T_L2, T_L3, PAGE_RW),             # XNTable on the level-1 table
    (T_L2, XN_TABLE | T_L3, PAGE_RW),             # XNTable on the level-2 table
])
def test_fetch_from_execute_never(l1, l2, l3):
    assert_fault(tables(l1, l2, l3, access="fetch"), "permission", 3, (S1, S2, S3), "fetch")
    r = tables(l1, l2, l3, access="write")
    assert isinstance(r, Translation) and r.writable and not r.executable


def test_xntable_on_level1_covers_a_block_below():
    # XNTable on the level-1 table, 2 MiB block at level 2: the fault is at the leaf's level, 2.
    r = tables(XN_TABLE | T_L2, 0x4020_0441, access="fetch")
    assert_fault(r, "permission", 2, (S1, S2), "fetch")


def test_wxn_makes_writable_pages_execute_never():
    wxn = Regime(ttbr=PGD, wxn=True)
    assert_fault(tables(T_L2, T_L3, PAGE_RW, regime=wxn, access="fetch"),
                 "permission", 3, (S1, S2, S3), "fetch")
    # A read-only page stays executable under WXN.
    r = tables(T_L2, T_L3, PAGE_RO, regime=wxn, access="fetch")
    assert isinstance(r, Translation) and r.executable and not r.writable
    # APTable[1] makes the page read-only, so WXN no longer applies.
    r = tables(AP_TABLE1 | T_L2, T_L3, PAGE_RW, regime=wxn, access="fetch")
    assert isinstance(r, Translation) and r.executable


@pytest.mark.parametrize("l1, l2, l3, note", [
    (AP_TABLE0 | T_L2, T_L3, PAGE_RW, "APTable[0]"),
    (T_L2, PXN_TABLE | T_L3, PAGE_RW, "PXNTable"),
    (T_L2, T_L3, PXN | PAGE_RW, "PXN=1"),
    (T_L2, T_L3, 0x9000_0403, "AP[1]=0"),          # AP[2:1] = 0b00
    (T_L2, T_L3, 0x800 | PAGE_RW, "nG=1"),
])
def test_hyp_ignores_unprivileged_bits_but_records_them(l1, l2, l3, note):
    for access in ("read", "write", "fetch"):
        r = tables(l1, l2, l3, access=access)
        assert isinstance(r, Translation), r
    assert any(note in text for text in r.unpredictable)


def test_plain_page_records_nothing_unpredictable():
    r = tables(T_L2, T_L3, PAGE_RW)
    assert r.unpredictable == () and r.readable and r.writable and r.executable


def test_check_access_uses_cached_permissions():
    mem = DictMem()
    for slot, desc in ((S1, T_L2), (S2, T_L3), (S3, PAGE_RW)):
        mem.write64(slot, desc)
    t = walk(mem.read64, HYP, VA, "write")
    mem.write64(S3, PAGE_RO)        # tables changed after the walk: the cached entry is unaffected
    assert check_access(t, VA, "write") is None
    assert check_access(t, VA + 4, "fetch") is None
    ro = walk(mem.read64, HYP, VA)
    assert check_access(ro, VA + 4, "write") == Fault("permission", 3, VA + 4, "write",
                                                      descriptors=(S1, S2, S3))


def test_table_walk_skips_permission_check():
    mem = DictMem()
    for slot, desc in ((S1, T_L2), (S2, T_L3), (S3, XN | PAGE_RO)):
        mem.write64(slot, desc)
    t = table_walk(mem.read64, HYP, VA, "fetch")
    assert isinstance(t, Translation) and not t.executable
    assert isinstance(walk(mem.read64, HYP, VA, "fetch"), Fault)


# ---- output addresses --------------------------------------------------------------------------

def test_1g_block_translation():
    # Block at PA 0x1_0000_0000; offset VA[29:0] = 0x0020_3ABC -> PA 0x1_0020_3ABC.
    r = tables(0x1_0000_0441)
    assert (r.va, r.pa, r.level, r.size) == (0x4000_0000, 0x1_0000_0000, 1, 1 << 30)
    assert r.pa_of(VA) == 0x1_0020_3ABC and r.descriptors == (S1,)


def test_2m_block_translation():
    # Block at PA 0x8_0060_0000; offset VA[20:0] = 0x0_3ABC -> PA 0x8_0060_3ABC.
    r = tables(T_L2, 0x8_0060_0441)
    assert (r.va, r.pa, r.level, r.size) == (0x4020_0000, 0x8_0060_0000, 2, 1 << 21)
    assert r.pa_of(VA) == 0x8_0060_3ABC and r.descriptors == (S1, S2)


def test_40_bit_page():
    # Page at PA 0xFF_8000_0000; offset VA[11:0] = 0xABC.
    r = tables(T_L2, T_L3, 0xFF_8000_0443)
    assert (r.va, r.pa, r.level, r.size) == (0x4020_3000, 0xFF_8000_0000, 3, 1 << 12)
    assert r.pa_of(VA) == 0xFF_8000_0ABC


def test_40_bit_1g_block():
    # 0xFF_C000_0000 + 0x0020_3ABC.
    assert tables(0xFF_C000_0441).pa_of(VA) == 0xFF_C020_3ABC


def test_pa_of_outside_translation():
    with pytest.raises(ValueError):
        tables(T_L2, T_L3, PAGE_RW).pa_of(VA + 0x1000)


def test_vectors_page_indices_3_511_496():
    # 0xFFFF_0000: level-1 index 3 -> PGD + 0x18; level-2 index 511 -> L2 + 0xFF8;
    # level-3 index 496 -> L3 + 496*8 = L3 + 0xF80.
    mem = DictMem()
    mem.write64(PGD + 0x18, T_L2)
    mem.write64(L2 + 0xFF8, T_L3)
    mem.write64(L3 + 0xF80, 0x0080_0000_8000_875F)   # PAGE_HYP page at PA 0x8000_8000
    r = walk(mem.read64, HYP, 0xFFFF_0123, "fetch")
    assert r.descriptors == (0x8000_0018, 0x8000_1FF8, 0x8000_2F80)
    assert r.pa_of(0xFFFF_0123) == 0x8000_8123 and r.attrs == PAGE_HYP


# ---- T0SZ --------------------------------------------------------------------------------------

@pytest.mark.parametrize("t0sz, level", [(0, 1), (1, 1), (2, 2), (3, 2), (4, 2), (5, 2), (6, 2),
                                         (7, 2)])
def test_start_level_from_t0sz(t0sz, level):
    # Empty tables: VA 0 faults at the start level, after reading entry 0 of the HTTBR table.
    r = walk(DictMem().read64, Regime(ttbr=PGD, t0sz=t0sz), 0)
    assert_fault(r, "translation", level, (PGD,), va=0)
    if t0sz:
        # The first VA past 2^(32-T0SZ) is out of range: translation fault, level 1, no read.
        past = 1 << (32 - t0sz)
        r = walk(DictMem().read64, Regime(ttbr=PGD, t0sz=t0sz), past)
        assert_fault(r, "translation", 1, (), va=past)


def test_t0sz_1_two_entry_level_1():
    # T0SZ=1: x = 4, a 16-byte table at 0x8000_0010; VA[30] = 1 for VA -> slot 0x8000_0018.
    mem = DictMem()
    mem.write64(0x8000_0018, 0x1_0000_0441)
    r = walk(mem.read64, Regime(ttbr=0x8000_0010, t0sz=1), VA)
    assert r.descriptors == (0x8000_0018,) and r.pa_of(VA) == 0x1_0020_3ABC


def test_t0sz_2_starts_at_level_2():
    # T0SZ=2: VA 0x3FE0_1234 -> level-2 index 0x1FF (slot L2 + 0xFF8), level-3 index
    # 0x3FE01 & 0x1FF = 1 (slot L3 + 8); page 0x9000_0000 -> PA 0x9000_0234.
    mem = DictMem()
    mem.write64(L2 + 0xFF8, T_L3)
    mem.write64(L3 + 8, PAGE_RW)
    regime = Regime(ttbr=L2, t0sz=2)
    r = walk(mem.read64, regime, 0x3FE0_1234)
    assert r.descriptors == (0x8000_1FF8, 0x8000_2008) and r.pa_of(0x3FE0_1234) == 0x9000_0234
    assert_fault(walk(mem.read64, regime, 0x4000_0000), "translation", 1, (), va=0x4000_0000)


def test_t0sz_7_sixteen_entry_level_2():
    # T0SZ=7: 25-bit input, x = 14 - 7 = 7 (128-byte table at 0x8000_0080); VA 0x01E0_0000 ->
    # index 0xF -> slot 0x8000_0080 + 0x78 = 0x8000_00F8; a 2 MiB block at 0x4000_0000.
    mem = DictMem()
    mem.write64(0x8000_00F8, 0x4000_0441)
    regime = Regime(ttbr=0x8000_0080, t0sz=7)
    r = walk(mem.read64, regime, 0x01E0_0010)
    assert (r.level, r.descriptors, r.pa_of(0x01E0_0010)) == (2, (0x8000_00F8,), 0x4000_0010)
    assert_fault(walk(mem.read64, regime, 0x0200_0000), "translation", 1, (), va=0x0200_0000)


def test_misaligned_httbr_bits_treated_as_zero():
    # T0SZ=0: x = 5; HTTBR = 0x8000_0010 has bit 4 set (bits[4:3] must be zero): UNPREDICTABLE,
    # modelled as base 0x8000_0000, so VA index 1 reads 0x8000_0008 and the case is recorded.
    r = tables(0x1_0000_0441, regime=Regime(ttbr=PGD | 0x10))
    assert r.descriptors == (S1,) and any("HTTBR" in n for n in r.unpredictable)
    # Bits[2:0] are below the checked field: ignored silently.
    r = tables(0x1_0000_0441, regime=Regime(ttbr=PGD | 0x1))
    assert r.descriptors == (S1,) and r.unpredictable == ()


# ---- memory attributes -------------------------------------------------------------------------

# HMAIR0 = 0xEEAA_4400 (bytes 0..3: 0x00, 0x44, 0xAA, 0xEE);
# HMAIR1 = 0xFF44_0C04 (bytes 4..7: 0x04, 0x0C, 0x44, 0xFF).
MAIR = 0xFF44_0C04 << 32 | 0xEEAA_4400


@pytest.mark.parametrize("attr_indx, byte, memtype", [
    (7, 0xFF, "normal"),   # byte 3 of HMAIR1
    (0, 0x00, "device"),   # byte 0 of HMAIR0: Strongly-ordered
    (4, 0x04, "device"),   # byte 0 of HMAIR1: Device
    (1, 0x44, "normal"),   # byte 1 of HMAIR0: Normal non-cacheable
    (3, 0xEE, "normal"),   # byte 3 of HMAIR0
])
def test_mair_selection(attr_indx, byte, memtype):
    r = tables(T_L2, T_L3, PAGE_RW | attr_indx << 2, regime=Regime(ttbr=PGD, mair=MAIR))
    assert (r.attrs.attr_indx, r.mair_attr, r.memtype) == (attr_indx, byte, memtype)


# ---- argument errors ---------------------------------------------------------------------------

@pytest.mark.parametrize("call", [
    lambda: walk(DictMem().read64, HYP, VA, "exec"),
    lambda: walk(DictMem().read64, HYP, 1 << 32),
    lambda: Regime(ttbr=PGD, t0sz=8),
    lambda: Regime(ttbr=1 << 64),
    lambda: Fault("bogus", 1, 0, "read"),
    lambda: Fault("translation", 4, 0, "read"),
])
def test_argument_errors(call):
    with pytest.raises(ValueError):
        call()


# ---- syndromes ---------------------------------------------------------------------------------

def test_ec_constants():
    assert (EC_UNKNOWN, EC_CP15_32, EC_CP15_64, EC_HVC, EC_SMC) == (0x00, 0x03, 0x04, 0x12, 0x13)
    assert (EC_PABT_LOWER, EC_PABT_HYP, EC_DABT_LOWER, EC_DABT_HYP) == (0x20, 0x21, 0x24, 0x25)
    assert (FSC_SYNC_EXTERNAL, FSC_ALIGNMENT) == (0b010000, 0b100001)


@pytest.mark.parametrize("ftype, level, fsc", [
    ("address_size", 0, 0b000000), ("address_size", 3, 0b000011),
    ("translation", 1, 0b000101), ("translation", 2, 0b000110), ("translation", 3, 0b000111),
    ("access_flag", 1, 0b001001), ("access_flag", 3, 0b001011),
    ("permission", 1, 0b001101), ("permission", 3, 0b001111),
])
def test_encode_ldfsc(ftype, level, fsc):
    assert encode_ldfsc(Fault(ftype, level, 0, "read")) == fsc


def test_ldfsc_level_0_only_for_address_size():
    with pytest.raises(ValueError):
        encode_ldfsc(Fault("translation", 0, 0, "read"))


def test_hsr_for_hvc():
    # 0x12 << 26 = 0x4800_0000, IL 1 << 25 = 0x0200_0000, ISS = imm16.
    assert hsr_for_hvc(0) == 0x4A00_0000
    assert hsr_for_hvc(0xFFFF) == 0x4A00_FFFF
    with pytest.raises(ValueError):
        hsr_for_hvc(0x1_0000)


def test_encode_hsr():
    # 0x03 << 26 = 0x0C00_0000, IL clear, ISS 0x1234.
    assert encode_hsr(EC_CP15_32, 0x1234, il=False) == 0x0C00_1234
    for ec, iss in ((64, 0), (0, 1 << 25), (-1, 0)):
        with pytest.raises(ValueError):
            encode_hsr(ec, iss)


@pytest.mark.parametrize("fault, from_hyp, hsr", [
    # 0x21 << 26 = 0x8400_0000 | IL 0x0200_0000 | translation level 3 0b000111.
    (Fault("translation", 3, VA, "fetch"), True, 0x8600_0007),
    # 0x20 << 26 = 0x8000_0000 | IL | 0b000111.
    (Fault("translation", 3, VA, "fetch"), False, 0x8200_0007),
    # 0x25 << 26 = 0x9400_0000 | IL | WnR 0x40 | permission level 3 0b001111.
    (Fault("permission", 3, VA, "write"), True, 0x9600_004F),
    # 0x24 << 26 = 0x9000_0000 | IL | read (WnR 0) | translation level 1 0b000101.
    (Fault("translation", 1, VA, "read"), False, 0x9200_0005),
    # Data abort from HYP, write, S1PTW 0x80, access flag level 2 0b001010.
    (Fault("access_flag", 2, VA, "write", s1ptw=True), True, 0x9600_00CA),
    # HTTBR address size fault on a read: FSC 0b000000.
    (Fault("address_size", 0, VA, "read"), True, 0x9600_0000),
    # Prefetch abort ignores WnR: permission level 2 on fetch, from HYP.
    (Fault("permission", 2, VA, "fetch"), True, 0x8600_000E),
])
def test_hsr_for_abort(fault, from_hyp, hsr):
    assert hsr_for_abort(fault, taken_from_hyp=from_hyp) == hsr


def test_walk_fault_to_hsr():
    # A fetch through an invalid level-3 entry, taken in HYP: 0x8600_0007.
    fault = tables(T_L2, T_L3, 0, access="fetch")
    assert hsr_for_abort(fault, taken_from_hyp=True) == 0x8600_0007


# --- walks of unchanged tables are reused -------------------------------------------------------
def test_a_page_walked_again_reuses_the_walk_only_while_its_descriptors_read_the_same():
    """The walk memo re-reads every descriptor of the earlier walk: unchanged tables give the very
    same Translation; a changed leaf, a changed table descriptor above it or another memory with
    other words there is walked afresh (hand-computed: the new PAs)."""
    mem = DictMem()
    for slot, desc in ((S1, T_L2), (S2, T_L3), (S3, PAGE_RW)):
        mem.write64(slot, desc)
    first = walk(mem.read64, HYP, VA)
    again = walk(mem.read64, HYP, VA + 0x10)          # same page, another offset
    assert again is first and first.pa == 0x9000_0000
    mem.write64(S3, PAGE_RW + 0x5000)                 # the leaf moved: 0x9000_5000
    moved = walk(mem.read64, HYP, VA)
    assert isinstance(moved, Translation) and moved.pa == 0x9000_5000
    mem.write64(S2, 0x8000_3000 | 0b11)               # the level-2 entry now points elsewhere
    mem.write64(0x8000_3000 + 3 * 8, 0xA000_0000 | 0x400 | 0xC0 | 0b11)
    elsewhere = walk(mem.read64, HYP, VA)
    assert isinstance(elsewhere, Translation) and elsewhere.pa == 0xA000_0000
    assert not elsewhere.writable and elsewhere.descriptors == (S1, S2, 0x8000_3000 + 3 * 8)
    other = DictMem()                                 # another memory: its own words count
    for slot, desc in ((S1, T_L2), (S2, T_L3)):
        other.write64(slot, desc)
    assert_fault(walk(other.read64, HYP, VA), "translation", 3, (S1, S2, S3))
    mem.write64(S2, T_L3)                             # back to the writable page
    assert walk(mem.read64, HYP, VA).executable is True
    assert walk(mem.read64, Regime(ttbr=PGD, wxn=True), VA).executable is False   # regime: key
