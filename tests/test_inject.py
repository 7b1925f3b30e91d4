"""Fault injection (the hazards issue): skip, corrupt, remap; through scenarios and the API.

The fault vectors are hand-computed from the ARM ARM (B3.13.6 HSR, long-descriptor FSC):
HSR = EC << 26 | IL << 25 | ISS; data abort from HYP EC 0x25, prefetch abort from HYP EC 0x21;
DFSC/IFSC = 0b0001LL translation, 0b0010LL access flag, 0b0011LL permission (LL = level);
WnR (ISS bit 6) set for a write.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hypemu.inject import InjectError
from hypemu.kvm import GuestFault
from hypemu.result import run
from hypemu.scenario import ScenarioError, load_file

from conftest import machine

PROBE = 0x4B564D21
DATA_VA = 0xC000B000          # the HYP data page of the default board


def _booted():
    m = machine()
    m.boot()
    return m


@pytest.mark.parametrize("field, value, fn, args, fault", [
    ("valid", 0, "hyp_probe", (), ("data_abort", "translation", 3, 0x96000007)),
    ("af", 0, "hyp_probe", (), ("data_abort", "access_flag", 3, 0x9600000B)),
    ("ap", 0b11, "hyp_write", (DATA_VA, 1), ("data_abort", "permission", 3, 0x9600004F)),
])
def test_corrupt_data_page_fields(field, value, fn, args, fault):
    m = _booted()
    record = m.corrupt("runtime", DATA_VA, field, value)
    assert record["old"] != record["new"] and record["descriptor_pa"] & 7 == 0
    with pytest.raises(GuestFault) as info:
        m.call(0, fn, *args)
    rec = info.value.record
    assert (rec.kind, rec.fsc, rec.level, rec.hsr) == fault
    assert rec.va == DATA_VA
    assert m.hazards == []          # nothing cached the page: a plain fault, no hazard


def test_corrupt_xn_on_the_hyp_text_is_a_prefetch_abort():
    m = _booted()
    entry = m.symbol("hyp_probe")
    m.corrupt("runtime", entry & ~0xFFF, "xn", 1)
    with pytest.raises(GuestFault) as info:
        m.call(0, "hyp_probe")
    rec = info.value.record
    # the HVC is taken to the runtime vectors (HVBAR + 0x14), on the now execute-never page
    assert (rec.kind, rec.fsc, rec.level, rec.hsr) == ("prefetch_abort", "permission", 3, 0x8600000F)
    assert rec.pc == rec.va == m.hyp_registers(0)["HVBAR"] + 0x14


def test_corrupt_output_redirects_the_page():
    m = machine()
    other = m.layout.banks[0].base + (48 << 20)
    m.write_phys(other, (0xFEED).to_bytes(4, "little"))
    m.corrupt("runtime", DATA_VA, "output", other)
    m.boot()
    assert m.call(0, "hyp_probe") == 0xFEED


def test_corrupt_in_a_scenario_is_applied_before_the_steps_and_recorded():
    result = run({"name": "c", "inject": [{"corrupt": {"table": "runtime", "va": DATA_VA,
                                                       "field": "valid", "value": 0}}],
                  "steps": [{"boot": "all"}, {"call": {"fn": "hyp_probe"}}],
                  "expect": {"outcome": "fault", "fault": {"kind": "data_abort", "level": 3}}})
    assert result.passed, result.mismatch
    (inj,) = result.injections
    assert inj["kind"] == "corrupt" and inj["new"] == inj["old"] & ~1
    assert any(e.kind == "inject" and e.name == "corrupt" for e in result.events)


def test_corrupt_boot_table_breaks_phase_one():
    """The idmap's page made invalid in the boot table: phase 1's first fetch after the MMU is on
    takes a prefetch abort, translation fault at level 3 (HSR 0x86000007)."""
    m = machine()
    m.corrupt("boot", m.layout.init_pa, "valid", 0)
    with pytest.raises(GuestFault) as info:
        m.boot()
    rec = info.value.record
    assert (rec.kind, rec.fsc, rec.level, rec.hsr) == ("prefetch_abort", "translation", 3, 0x86000007)
    assert rec.va >> 12 == m.layout.init_pa >> 12


def test_corrupt_refuses_an_unmapped_va_and_a_bad_value():
    m = machine()
    with pytest.raises(InjectError, match="not mapped in the runtime table"):
        m.corrupt("runtime", 0x40000000, "valid", 0)
    with pytest.raises(InjectError, match="aligned"):
        m.corrupt("runtime", DATA_VA, "output", 0x80000800)


def test_skip_by_mnemonic_makes_every_match_a_nop():
    result = run({"name": "s", "inject": [{"skip": "tlbiallh"}]})
    (inj,) = result.injections
    m = machine(inject=[{"skip": "tlbiallh"}])
    init_addr, runtime_addr = inj["addresses"]               # phase 2's, and hyp_tlbi_all's
    assert inj["what"] == "tlbiallh"
    assert init_addr == m.kernel.image.init.address("trampoline_target") + 8
    assert runtime_addr == m.symbol("hyp_tlbi_all")
    lay = m.layout
    assert m.read32(init_addr) == 0xE320F000                # NOP, at the loaded init code
    assert m.read32(runtime_addr - lay.kva(lay.hyp_text) + lay.hyp_text) == 0xE320F000
    assert m.read32(init_addr - 8) != 0xE320F000


def test_skip_by_symbol_and_offset():
    m = machine(inject=[{"skip": {"symbol": "trampoline_target", "offset": 4}}])
    target = m.kernel.image.init.address("trampoline_target")
    assert m.injections[0]["addresses"] == [target + 4]
    assert m.read32(target + 4) == 0xE320F000


@pytest.mark.parametrize("inject, key, message", [
    ({"skip": "hcr"}, "inject[0].skip", "no 'hcr' instruction"),
    ({"skip": {"symbol": "nope"}}, "inject[0].skip.symbol", "no symbol 'nope'"),
    ({"skip": {"symbol": "hyp_probe", "offset": 0x4000}}, "inject[0].skip.offset", "outside"),
    ({"corrupt": {"table": "boot", "va": DATA_VA, "field": "valid", "value": 0}},
     "inject[0].corrupt.va", "not mapped in the boot table"),
])
def test_injection_that_does_not_fit_the_machine_is_an_input_error(inject, key, message):
    with pytest.raises(ScenarioError) as info:
        run({"name": "bad", "inject": [inject]})
    assert info.value.key == key and message in info.value.message


def test_injection_error_from_a_file_names_its_line(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: s\ninject:\n  - skip: dsb\n  - skip:\n      symbol: nowhere\n")
    result = subprocess.run([sys.executable, "-m", "hypemu.cli", "run", str(path)],
                            capture_output=True, text=True)
    assert result.returncode == 2, result.stderr
    assert f"{path}:5: inject[1].skip.symbol: no symbol 'nowhere'" in result.stderr
    assert "Traceback" not in result.stderr


def test_remap_is_recorded_with_its_step():
    result = run(load_file(Path(__file__).resolve().parent.parent / "scenarios" / "remap-done-right.yaml"))
    (inj,) = result.injections
    assert (inj["kind"], inj["at"], inj["bbm"], inj["tlbi"]) == ("remap", 2, True, True)
    assert inj["new"] & 0xFFFFFFF000 == 0x82000000
    assert [c["r0"] for c in result.calls] == [PROBE, 0]


def test_remap_before_any_cpu_is_up_needs_no_invalidation():
    m = machine()
    m.remap("runtime", DATA_VA, 0x82000000, bbm=True, tlbi=True)
    assert [e.name for e in m.events if e.kind == "kernel"] == ["no HYP TLB to invalidate"]
    assert m.core.stats.hvcs == 0             # no HVC: no CPU is in HYP
    m.boot()
    assert m.call(0, "hyp_probe") == 0 and m.hazards == []


def test_a_corrupted_leaf_can_be_corrupted_back():
    m = _booted()
    first = m.corrupt("runtime", DATA_VA, "valid", 0)
    again = m.corrupt("runtime", DATA_VA, "valid", 1)      # the slot still holds the descriptor
    assert again["descriptor_pa"] == first["descriptor_pa"] and again["new"] == first["old"]
    assert m.call(0, "hyp_probe") == PROBE


def test_skip_of_a_label_both_programs_define_is_ambiguous(tmp_path):
    init = (Path(__file__).resolve().parent.parent / "asm" / "hyp-init.S").read_text()
    (tmp_path / "init.S").write_text(init.replace("phase2:", "phase2:\nhyp_read:"))
    with pytest.raises(ScenarioError) as info:
        run({"name": "a", "hyp": {"code": str(tmp_path / "init.S")},
             "inject": [{"skip": {"symbol": "hyp_read"}}]})
    assert info.value.key == "inject[0].skip.symbol" and "ambiguous" in info.value.message
