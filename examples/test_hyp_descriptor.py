"""A test of another project, written against hypemu's public API and its pytest fixtures only:
boot a board, corrupt a HYP page-table descriptor, call into HYP and check the fault."""

import pytest

import hypemu
from hypemu.pytest_plugin import MachineFactory

PAGE = 4096
# ARM ARM (DDI 0406C) B3.13.6: a data abort taken from HYP mode to HYP mode has HSR.EC 0x25
# (bits 31:26) and HSR.IL 1 (bit 25); its ISS holds the long-descriptor fault status code in
# bits 5:0, 0b0001LL for a translation fault at lookup level LL. A read, so WnR (bit 6) is 0.
HSR_HYP_READ_TRANSLATION_FAULT_L3 = 0x25 << 26 | 1 << 25 | 0b000111


def test_a_corrupted_leaf_descriptor_faults_the_next_hyp_access(
        hypemu_machine: MachineFactory) -> None:
    m = hypemu_machine("two-cpus.yaml")      # both CPUs booted: HYP runs on the runtime tables
    page = m.layout.banks[0].base + (64 << 20)   # a kernel page that HYP does not map yet
    va = m.map_hyp(page, PAGE)                # create_hyp_mappings(): its kernel VA, in HYP too
    m.write_phys(page, (0x600DF00D).to_bytes(4, "little"))
    assert m.call(1, "hyp_read", va) == 0x600DF00D

    walk = m.translate(1, va, pgd="runtime")  # a fresh walk of the runtime table
    assert isinstance(walk, hypemu.Translation)   # (not a Fault): it lists every descriptor read
    m.write_phys(walk.descriptors[-1], bytes(8))   # corrupt the leaf (the last one): invalid
    m.call(1, "hyp_tlbi_va", va)              # CPU 1 drops what it cached for that VA

    with pytest.raises(hypemu.GuestFault) as caught:
        m.call(1, "hyp_read", va)
    fault = caught.value.record
    assert (fault.cpu, fault.kind, fault.va) == (1, "data_abort", va)
    assert (fault.fsc, fault.level) == ("translation", 3)
    assert fault.pc == m.symbol("hyp_read")  # its first instruction is the load
    assert fault.hsr == HSR_HYP_READ_TRANSLATION_FAULT_L3 == 0x96000007
    assert m.hyp_registers(1)["HSR"] == fault.hsr    # as the exception entry set it
