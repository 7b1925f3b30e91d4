"""SMP, CPU hotplug and the single-step init design (the hotplug issue).

The design mail exists because the single-step init could not survive hotplug: these tests show
the dual-step design surviving the same timeline that breaks the single-step one.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hypemu.layout import ConfigError
from hypemu.result import run
from hypemu.kvm import GuestFault
from hypemu.scenario import ScenarioError, load_file
from hypemu.walker import Fault

from conftest import machine

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
PABT_L1_TRANSLATION_HSR = 0x21 << 26 | 1 << 25 | 0b000101   # EC 0x21, IL, IFSC level-1 translation


def snapshot(m, cpu: int) -> dict:
    """Everything the model holds for a CPU's HYP side."""
    st = m.core.cpus[cpu]
    return {"online": st.online, "mode": m.mode(cpu), "hyp": m.hyp_registers(cpu),
            "tlb": [(t.va, t.pa, t.size, t.level) for t in st.tlb.entries()]}


def test_each_cpu_has_its_own_stack_and_shares_the_runtime_table():
    m = machine(machine={"cpus": 4})
    m.boot()
    sps = [m.call(cpu, "hyp_get_sp") for cpu in range(4)]
    tops = [m.layout.kva(pa) + 4096 for pa in m.layout.stacks]
    # hyp_get_sp runs inside the dispatcher, which has pushed LR and SPSR (8 bytes)
    assert sps == [top - 8 for top in tops]
    assert len(set(sps)) == 4
    for cpu in range(4):
        regs = m.hyp_registers(cpu)
        assert regs["HTTBR"] == m.kernel.runtime_pgd
        assert regs["SP_hyp"] == tops[cpu]
        assert m.core.cpus[cpu].sysregs["MPIDR"] & 0xFF == cpu


def test_boot_order_is_the_listed_order():
    m = machine(machine={"cpus": 3})
    m.boot([2, 0])
    order = [e.cpu for e in m.events if e.kind == "kernel" and e.name == "enter kernel in HYP"]
    assert order == [2, 0]
    assert m.mode(1) == "off" and not m.core.cpus[1].online


def test_state_after_every_reinit_equals_the_first_boot():
    m = machine(machine={"cpus": 4})
    m.boot()
    first = [snapshot(m, cpu) for cpu in range(4)]
    assert all(s["online"] and s["mode"] == "svc" and s["hyp"]["HSCTLR"] & 1 for s in first)
    for cpu in (2, 0, 3, 1, 2):
        m.hotplug(cpu, "off")
        m.hotplug(cpu, "on")
        assert [snapshot(m, c) for c in range(4)] == first, f"after re-init of cpu{cpu}"


def test_power_off_resets_the_hyp_state():
    m = machine(machine={"cpus": 2})
    m.boot()
    m.call(1, "hyp_probe")
    assert len(m.core.cpus[1].tlb) > 0
    m.hotplug(1, "off")
    regs = m.hyp_registers(1)
    assert regs["HSCTLR"] == 0x30C50818        # reset value: RES1 bits only, MMU off
    assert regs["HVBAR"] == 0 and regs["HTTBR"] == 0 and regs["SP_hyp"] == 0
    assert len(m.core.cpus[1].tlb) == 0
    assert m.mode(1) == "off"
    assert snapshot(m, 0)["hyp"]["HSCTLR"] & 1   # the other CPU is untouched


def test_steps_on_an_offline_cpu_are_refused():
    m = machine(machine={"cpus": 2})
    m.boot()
    m.hotplug(1, "off")
    with pytest.raises(ValueError, match="cpu1 has not been booted"):
        m.call(1, "hyp_probe")
    with pytest.raises(ValueError, match="cpu 1 is already offline"):
        m.hotplug(1, "off")
    with pytest.raises(ValueError, match="cpu 0 is already online"):
        m.hotplug(0, "on")
    with pytest.raises(ValueError, match="cpu 0 is already online"):
        m.boot([0])
    m.hotplug(1, "on")
    assert m.call(1, "hyp_probe") == 0x4B564D21


def test_the_shipped_invalid_scenario_says_what_its_comment_says():
    path = SCENARIOS / "invalid" / "call-on-offline-cpu.yaml"
    comment = [line[1:].strip() for line in path.read_text().splitlines()[2:4]]
    with pytest.raises(ScenarioError) as info:
        load_file(path)
    expected = " ".join(comment).split(":", 1)[1].strip()   # drop the file name
    assert str(info.value).endswith(expected)
    assert info.value.line == 13


def test_inner_shareable_tlbi_reaches_every_online_cpu():
    m = machine(machine={"cpus": 3})
    m.boot()
    data_va = m.layout.kva(m.layout.hyp_data)
    for cpu in range(3):
        m.call(cpu, "hyp_probe")
    cached = [m.core.cpus[c].tlb.lookup(data_va) is not None for c in range(3)]
    assert cached == [True, True, True]
    m.call(0, "hyp_tlbi_va", data_va)            # local: only cpu0's entry goes
    assert [m.core.cpus[c].tlb.lookup(data_va) is None for c in range(3)] == [True, False, False]
    m.hotplug(2, "off")
    invalidations = m.core.cpus[2].tlb.stats.invalidations
    m.call(0, "hyp_tlbi_va_is", data_va)         # broadcast: cpu1's entry goes too
    assert m.core.cpus[1].tlb.lookup(data_va) is None
    assert m.core.cpus[2].tlb.stats.invalidations == invalidations   # offline: not in the domain
    m.call(1, "hyp_probe")
    m.call(0, "hyp_probe")
    m.call(1, "hyp_tlbi_all_is")
    assert len(m.core.cpus[0].tlb) == 0


# --- the single-step design -------------------------------------------------------------------

def single_step(cpus: int = 2, **sections):
    return machine(machine={"cpus": cpus}, hyp={"init": "single-step"}, **sections)


def test_single_step_boots_with_one_table_and_one_init_hvc():
    m = single_step()
    m.boot()
    assert m.kernel.boot_pgd == m.kernel.runtime_pgd
    for cpu in range(2):
        assert m.hyp_registers(cpu)["HTTBR"] == m.kernel.runtime_pgd
        assert m.call(cpu, "hyp_probe") == 0x4B564D21
    inits = [e for e in m.events if e.kind == "kernel" and e.name.startswith("HYP init")]
    assert [(e.cpu, e.name) for e in inits] == [(0, "HYP init (single-step)"),
                                               (1, "HYP init (single-step)")]
    # no trampoline in this design: nothing is mapped at 0xFFFF0000
    assert isinstance(m.translate(0, 0xFFFF0000, pgd="runtime"), Fault)


def test_single_step_removes_the_idmap_level1_entry_after_boot():
    m = single_step()
    idmap = m.layout.init_pa
    slot = m.kernel.runtime_pgd + 8 * (idmap >> 30)
    built = m.read32(slot)
    assert built & 0b11 == 0b11                      # a table descriptor before the boot
    m.boot()
    assert m.read32(slot) == 0 and m.read32(slot + 4) == 0
    walk = m.translate(0, idmap, pgd="runtime")
    assert isinstance(walk, Fault) and (walk.type, walk.level) == ("translation", 1)
    # runtime mappings are intact
    assert m.call(0, "hyp_probe") == 0x4B564D21


def test_single_step_hotplug_takes_the_prefetch_abort():
    m = single_step()
    m.boot()
    m.hotplug(1, "off")
    with pytest.raises(GuestFault) as info:
        m.hotplug(1, "on")
    rec = info.value.record
    hsctlr_write = [e for e in m.events if e.cpu == 1 and e.name == "HSCTLR"][-1]
    isb_pc = hsctlr_write.pc + 4                     # the first fetch after the MMU is on
    assert isb_pc >> 12 == m.layout.init_pa >> 12    # ... at its idmap address
    assert (rec.cpu, rec.kind, rec.pc, rec.va) == (1, "prefetch_abort", isb_pc, isb_pc)
    assert (rec.fsc, rec.level, rec.hsr) == ("translation", 1, PABT_L1_TRANSLATION_HSR)
    assert PABT_L1_TRANSLATION_HSR == 0x86000005
    regs = m.hyp_registers(1)
    assert m.mode(1) == "hyp"
    assert regs["HSR"] == 0x86000005 and regs["ELR_hyp"] == isb_pc
    assert m.core.cpus[1].sysregs["HIFAR"] == isb_pc
    assert regs["HVBAR"] == m.layout.init_pa         # the init vectors (unmapped now too)


def test_same_timeline_single_step_faults_dual_step_survives():
    timeline = [{"boot": "all"}, {"hotplug": {"cpu": 1, "state": "off"}},
                {"hotplug": {"cpu": 1, "state": "on"}}, {"call": {"cpu": 1, "fn": "hyp_probe"}}]
    base = {"name": "t", "machine": {"cpus": 2}, "steps": timeline}
    dual = run(base)
    single = run({**base, "hyp": {"init": "single-step"}})
    assert dual.outcome == "ok" and dual.calls[-1]["r0"] == 0x4B564D21
    assert single.outcome == "fault"
    assert {k: single.fault[k] for k in ("cpu", "kind", "fsc", "level", "hsr")} == {
        "cpu": 1, "kind": "prefetch_abort", "fsc": "translation", "level": 1, "hsr": 0x86000005}
    assert single.layout["trampoline_va"] is None and dual.layout["trampoline_va"] == 0xFFFF0000


def test_single_step_second_boot_step_is_a_late_bringup():
    """Only the first boot is 'the boot CPUs': a CPU booted in a later step meets the removed idmap."""
    m = single_step()
    m.boot([0])
    with pytest.raises(GuestFault) as info:
        m.boot([1])
    assert info.value.record.kind == "prefetch_abort"


def test_single_step_refuses_an_idmap_sharing_a_level1_entry_with_runtime_mappings():
    # RAM at the kernel's own VA: the idmap (VA = PA) lands in the same 1 GiB as the HYP text
    with pytest.raises(ConfigError, match="shares the level-1 entry"):
        machine(machine={"ram": {"base": 0xC0000000, "size": "256MiB"}}, hyp={"init": "single-step"})


def test_single_step_works_in_the_linux_abi():
    m = machine(machine={"cpus": 2}, hyp={"init": "single-step", "call_abi": "linux-3.10"})
    m.boot()
    assert m.call(1, "hyp_probe") == 0x4B564D21


# --- many cycles ------------------------------------------------------------------------------

def _comparable(result) -> dict:
    d = result.to_dict()
    d["stats"] = {k: v for k, v in d["stats"].items() if k != "seconds"}
    return d


def test_hundred_hotplug_cycles_are_deterministic_and_logged():
    path = SCENARIOS / "hotplug-100.yaml"
    first, second = run(load_file(path)), run(load_file(path))
    assert first.outcome == "ok" and first.passed
    assert _comparable(first) == _comparable(second)
    assert first.events == second.events
    assert len(first.calls) == 100 and {c["r0"] for c in first.calls} == {0x4B564D21}
    # cpu2's log: the stub install and both init phases, once at boot and after each "on"
    names = [e.name for e in first.events if e.cpu == 2 and e.kind == "kernel"]
    assert names.count("enter kernel in HYP") == 101
    assert names.count("HYP init phase 1") == 101 and names.count("HYP init phase 2") == 101
    assert names.count("cpu off") == 100
    # ... and each of those 101 inits is the same sequence of HYP events (registers, values)
    inits, current = [], None
    for e in (e for e in first.events if e.cpu == 2):
        if e.name == "enter kernel in HYP":
            current = []
        if current is not None:
            current.append((e.kind, e.name, e.value))
            if e.kind == "eret" and any(name == "TLBIALLH" for _, name, _ in current):
                inits.append(current)     # phase 2's ERET ends the init
                current = None
    assert len(inits) == 101
    assert all(init == inits[0] for init in inits)
    assert [name for _, name, _ in inits[0] if name.startswith("HYP init")] == [
        "HYP init phase 1", "HYP init phase 2"]


def test_the_reason_names_the_step_and_its_line():
    result = run(load_file(SCENARIOS / "single-step-hotplug.yaml"))
    lines = (SCENARIOS / "single-step-hotplug.yaml").read_text().splitlines()
    line = next(n for n, text in enumerate(lines, 1) if "{cpu: 1, state: on}" in text)
    assert f"during HYP init (single-step) at steps[2] (line {line}):" in result.reason
