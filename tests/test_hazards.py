"""The hazard checks: each kind's positive and negative cases (the hazards issue).

Every positive case asserts where the report points (CPU, PC, VA, the instruction) and that the
guest kept running as hardware might (the stale or unfinished entry is served).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hypemu import lpae
from hypemu.asm import assemble
from hypemu.kvm import GuestFault
from hypemu.machine import Machine
from hypemu.result import run
from hypemu.scenario import DEFAULT_SCENARIO, from_mapping

from conftest import machine

PROBE = 0x4B564D21


def hyp_code(m: Machine, source: str) -> int:
    """Load ``source`` into a fresh page mapped in the runtime table; its HYP VA (callable)."""
    pa = m.layout.banks[0].base + (40 << 20)
    va = m.map_hyp(pa, 4096)
    code = assemble(source, va, filename="test.S").code
    m.core.load_code(pa, code)
    return va


def data_page(m: Machine) -> tuple[int, int]:
    """The HYP data page: (VA, PA of its level-3 descriptor in the runtime table)."""
    va = m.layout.kva(m.layout.hyp_data)
    return va, m.translate(0, va, pgd="runtime").descriptors[-1]


def other_page(m: Machine, value: int) -> int:
    pa = m.layout.banks[0].base + (32 << 20)
    m.write_phys(pa, value.to_bytes(4, "little"))
    return pa


def kinds(m: Machine) -> list[str]:
    return [h.kind for h in m.hazards]


# --- stale_tlb --------------------------------------------------------------------------------

def test_stale_tlb_points_at_the_access_and_serves_the_old_page(booted):
    m = booted
    va, desc = data_page(m)
    assert m.call(0, "hyp_probe") == PROBE
    new = lpae.encode_page(other_page(m, 0x1234), lpae.PAGE_HYP)
    m.write_phys(desc, new.to_bytes(8, "little"))          # a stray write: no BBM, no TLBI
    assert m.call(0, "hyp_probe") == PROBE                  # served by the stale entry
    stale = [h for h in m.hazards if h.kind == "stale_tlb"]
    assert len(stale) == 1
    h = stale[0]
    assert (h.cpu, h.pc, h.va) == (0, m.symbol("hyp_probe") + 4, va)
    assert h.to_dict()["disasm"] == "ldr r0, [r0]"
    assert "PA 0x%x" % (m.layout.banks[0].base + (32 << 20)) in h.detail
    # the kernel-side write itself broke break-before-make
    assert kinds(m) == ["bbm", "stale_tlb"] and m.hazards[0].cpu is None
    # once invalidated, the new page is read and nothing new is reported
    m.call(0, "hyp_tlbi_va", va)
    assert m.call(0, "hyp_probe") == 0x1234
    assert kinds(m) == ["bbm", "stale_tlb"]


def test_stale_tlb_is_reported_once_per_site(booted):
    m = booted
    _, desc = data_page(m)
    m.call(0, "hyp_probe")
    m.write_phys(desc, lpae.encode_page(other_page(m, 1), lpae.PAGE_HYP).to_bytes(8, "little"))
    for _ in range(3):
        m.call(0, "hyp_probe")
    assert kinds(m).count("stale_tlb") == 1


def test_a_permission_change_left_in_the_tlb_is_stale_but_not_bbm(booted):
    """AP[2] = 1 (read-only) without TLBI: no break-before-make is needed for permissions, but a
    write served by the old writable entry is stale."""
    m = booted
    va, desc = data_page(m)
    m.call(0, "hyp_write", va, 5)
    m.corrupt("runtime", va, "ap", 0b11)
    assert m.call(0, "hyp_write", va, 6) == 6
    assert kinds(m) == ["stale_tlb"]
    assert m.hazards[0].pc == m.symbol("hyp_write")
    pc, detail = m.symbol("hyp_write"), m.hazards[0].detail
    assert f"(rwx, normal), filled from the runtime table (HTTBR {m.kernel.runtime_pgd:#x}) by " \
           f"the access at pc {pc:#x} (instruction " in detail   # where the stale entry came from
    calls = [e.icount for e in m.events if e.kind == "hvc"][-2:]   # the two hyp_write calls
    assert calls[0] < int(detail.split("(instruction ")[1].split(")")[0]) < calls[1]
    assert "; a fresh walk of the runtime table" in detail
    assert m.hazards[0].detail.endswith("a permission fault at level 3")


def test_no_stale_tlb_when_an_unrelated_descriptor_changes(booted):
    m = booted
    m.call(0, "hyp_probe")
    extra_pa = m.layout.banks[0].base + (36 << 20)
    m.map_hyp(extra_pa, 4096)                  # new mapping: invalid -> valid elsewhere
    assert m.call(0, "hyp_probe") == PROBE
    assert m.hazards == []


def test_checks_off_reports_nothing():
    m = Machine(from_mapping(DEFAULT_SCENARIO), checks=False)
    m.boot()
    _, desc = data_page(m)
    m.call(0, "hyp_probe")
    m.write_phys(desc, lpae.encode_page(other_page(m, 1), lpae.PAGE_HYP).to_bytes(8, "little"))
    assert m.call(0, "hyp_probe") == PROBE        # the model still keeps the stale entry
    assert m.hazards == []


# --- bbm --------------------------------------------------------------------------------------

@pytest.mark.parametrize("bbm, tlbi, expected", [
    (True, True, []),                       # done right
    (False, True, ["bbm"]),                 # in place, invalidated afterwards
    (True, False, ["bbm", "stale_tlb"]),    # broken and made, never invalidated
    (False, False, ["bbm", "stale_tlb"]),
])
def test_remap_of_a_cached_mapping(booted, bbm, tlbi, expected):
    m = booted
    va, _ = data_page(m)
    m.call(0, "hyp_probe")
    record = m.remap("runtime", va, other_page(m, 0xABCD), bbm=bbm, tlbi=tlbi)
    assert record["old"] & 0xFFFFFFF000 == m.layout.hyp_data
    value = m.call(0, "hyp_probe")
    assert kinds(m) == expected
    assert value == (PROBE if "stale_tlb" in expected else 0xABCD)


def test_remap_of_a_mapping_nobody_cached_needs_no_bbm():
    m = machine(machine={"cpus": 2})
    m.boot([0])                                  # cpu1 never ran: its stack page is in no TLB
    stack1 = m.layout.kva(m.layout.stacks[1])
    m.call(0, "hyp_probe")
    m.remap("runtime", stack1, other_page(m, 0), bbm=False, tlbi=False)
    assert m.hazards == []


def test_guest_store_to_a_live_descriptor_is_bbm_at_the_store(booted):
    m = booted
    va, desc = data_page(m)
    desc_va = m.map_hyp(desc & ~0xFFF, 4096) + (desc & 0xFFF)
    new = lpae.encode_page(other_page(m, 7), lpae.PAGE_HYP)
    code = hyp_code(m, """
        ldr     r3, [r0]            @ cache the data page
        str     r2, [r1]            @ overwrite its live descriptor (low word)
        mov     r0, r3
        bx      lr
    """)
    assert m.call(0, code, va, desc_va, new & 0xFFFFFFFF) == PROBE
    assert kinds(m) == ["bbm"]
    h = m.hazards[0]
    assert (h.cpu, h.pc, h.va) == (0, code + 4, va)
    assert h.to_dict()["disasm"] == "str r2, [r1]"
    assert m.read32(desc) == new & 0xFFFFFFFF


def test_guest_break_then_make_with_tlbi_is_clean(booted):
    m = booted
    va, desc = data_page(m)
    desc_va = m.map_hyp(desc & ~0xFFF, 4096) + (desc & 0xFFF)
    new = lpae.encode_page(other_page(m, 9), lpae.PAGE_HYP)
    code = hyp_code(m, """
        ldr     r3, [r0]
        mov     r12, #0
        str     r12, [r1]           @ break
        dsb     ish
        mcr     p15, 4, r0, c8, c7, 1   @ TLBIMVAH
        dsb     ish
        str     r2, [r1]            @ make
        dsb     ish
        isb
        ldr     r0, [r0]
        bx      lr
    """)
    assert m.call(0, code, va, desc_va, new & 0xFFFFFFFF) == 9
    assert m.hazards == []


# --- missing_isb ------------------------------------------------------------------------------

def test_missing_isb_scenario_points_at_the_push():
    result = run(from_mapping({"name": "isb", "hyp": {"code": "scenarios/init-stack-after-httbr.S"},
                               "inject": [{"skip": {"symbol": "runtime_stack_isb"}}]},
                              base_dir="."))
    assert result.outcome == "hazard"
    (h,) = result.hazards
    assert h["kind"] == "missing_isb" and h["disasm"] == "push {r0, r1}"
    sp = result.cpus[0]["hyp"]["SP_hyp"]
    assert h["va"] == sp - 8 and "HTTBR" in h["detail"]


def test_builtin_init_does_not_depend_on_its_isbs():
    """Every fetch right after HSCTLR/HTTBR writes in the dual-step code translates the same with or
    without the write (idmap: VA = PA; trampoline: mapped alike in both tables), so removing every
    ISB reports nothing: the design's point, measured."""
    result = run({"name": "no-isb", "inject": [{"skip": "isb"}],
                  "steps": [{"boot": "all"}, {"call": {"fn": "hyp_probe"}}]})
    assert result.outcome == "ok" and result.hazards == []
    assert len(result.injections[0]["addresses"]) == 5     # 4 in hyp-init.S, 1 in hyp-runtime.S


@pytest.mark.parametrize("isb, expected", [("", ["missing_isb"]), ("isb", [])])
def test_exception_after_an_unsynchronized_hvbar_write(booted, isb, expected):
    m = booted
    code = hyp_code(m, f"""
        mrc     p15, 4, r1, c12, c0, 0
        add     r1, r1, #0x100
        mcr     p15, 4, r1, c12, c0, 0  @ HVBAR moves
        {isb}
        udf     #1                      @ an exception: which vectors?
    """)
    with pytest.raises(GuestFault):
        m.call(0, code)
    assert kinds(m) == expected
    if expected:
        assert m.hazards[0].pc == code + (16 if isb else 12)


# --- missing_dsb ------------------------------------------------------------------------------

def test_missing_dsb_scenario_reports_the_write_and_the_access():
    result = run(from_mapping({
        "name": "dsb", "steps": [{"boot": "all"}, {"call": {"fn": "hyp_probe"}},
                                 {"call": {"fn": "hyp_probe"}}],
        "inject": [{"skip": {"symbol": "hyp_tlbi_done"}},
                   {"remap": {"table": "runtime", "va": 0xC000B000, "to": 0x82000000, "at": 2}}]}))
    assert [(h["kind"], h["cpu"]) for h in result.hazards] == [("missing_dsb", None),
                                                              ("missing_dsb", 0)]
    assert result.calls[-1]["r0"] == 0           # the model completed the TLBI: the new page
    assert "TLBIMVAHIS" in result.hazards[1]["detail"]


def test_tlbi_without_dsb_is_fine_when_nothing_relies_on_it(booted):
    m = booted
    va, _ = data_page(m)
    code = hyp_code(m, """
        ldr     r1, [r0]
        mcr     p15, 4, r0, c8, c7, 1   @ TLBIMVAH, no DSB
        ldr     r0, [r0]                @ re-walks the same, unchanged mapping
        bx      lr
    """)
    assert m.call(0, code, va) == PROBE
    assert m.hazards == []


def test_a_later_dsb_completes_the_tlbi(booted):
    m = booted
    va, desc = data_page(m)
    new = other_page(m, 0x55)
    code = hyp_code(m, """
        ldr     r1, [r0]
        mcr     p15, 4, r0, c8, c7, 1   @ TLBIMVAH
        bx      lr
    """)
    m.call(0, code, va)                  # leaves the TLBI unfinished
    m.call(0, "hyp_tlbi_all")            # its DSB completes every TLBI of cpu0
    m.remap("runtime", va, new, bbm=True, tlbi=False)
    assert m.call(0, "hyp_probe") == 0x55
    assert m.hazards == []


# --- a walk into memory that does not exist (not a hazard: a fault) ----------------------------

def test_walk_outside_ram_is_a_synchronous_external_abort_on_the_walk(booted):
    """LDFSC 0b0101LL: HTTBR pointing where the board has no RAM faults at the first level read.
    HSR = 0x25 << 26 | IL | 0b010101 = 0x96000015 for a read at level 1."""
    m = booted
    walk = m.translate(0, 0xC000B000, pgd=0x40000000)       # RAM is 0x80000000..0xC0000000
    assert (walk.type, walk.level) == ("external", 1)
    code = hyp_code(m, """
        mrrc    p15, 4, r2, r3, c2      @ keep HTTBR
        mov     r4, #0x40000000
        mov     r5, #0
        mcrr    p15, 4, r4, r5, c2      @ HTTBR = no memory
        isb
        mcr     p15, 4, r0, c8, c7, 0   @ TLBIALLH
        dsb     ish
        isb
        ldr     r0, [r1]
        bx      lr
    """)
    with pytest.raises(GuestFault) as info:
        m.call(0, code, 0xC000B000)
    rec = info.value.record
    # the first fetch after the TLBIALLH (the DSB) must walk too: a prefetch abort, IFSC 0b010101
    assert (rec.kind, rec.fsc, rec.level, rec.hsr) == ("prefetch_abort", "external", 1, 0x86000015)
    assert rec.pc == rec.va == code + 24


SHIPPED = sorted((Path(__file__).resolve().parent.parent / "scenarios").glob("*.yaml"))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_the_checks_observe_and_change_nothing(path):
    """With the checks off, every shipped scenario does exactly the same: the same instructions
    (pauses for a hazard's exact VA and stepped table stores are not counted twice), the same
    calls, the same fault and the same end state; only the hazards (and so the outcome) differ."""
    from hypemu.scenario import load_file
    s = load_file(path)
    on, off = run(s, checks=True), run(s, checks=False)
    assert off.hazards == []
    for key in ("calls", "fault", "cpus", "layout", "injections"):
        assert getattr(on, key) == getattr(off, key), key
    assert on.stats.get("instructions") == off.stats.get("instructions")
    assert on.outcome == off.outcome or (on.outcome, off.outcome) == ("hazard", "ok")


def test_the_hvbar_hazard_points_at_the_hvc_not_after_it(booted):
    m = booted
    code = hyp_code(m, """
        mrc     p15, 4, r1, c12, c0, 0
        add     r1, r1, #0x100
        mcr     p15, 4, r1, c12, c0, 0  @ HVBAR moves
        hvc     #0                      @ taken to the new (or the old) vectors
    """)
    with pytest.raises(GuestFault):
        m.call(0, code)
    (h,) = [h for h in m.hazards if h.kind == "missing_isb"]
    assert h.pc == code + 12 and h.to_dict()["disasm"] == "hvc #0"


def test_powering_a_cpu_down_completes_its_tlb_maintenance():
    """A TLBI broadcast without a DSB, then the issuing CPU goes offline: its power-down sequence
    completes it, so nothing later relies on an unfinished TLBI."""
    m = machine(machine={"cpus": 2})
    m.boot()
    va, _ = data_page(m)
    m.call(1, "hyp_probe")                      # cpu1 caches the data page
    code = hyp_code(m, """
        mcr     p15, 4, r0, c8, c3, 1   @ TLBIMVAHIS, no DSB
        bx      lr
    """)
    m.call(0, code, va)
    assert m.checks.cpu[1].unfinished
    m.hotplug(0, "off")
    assert not m.checks.cpu[1].unfinished
    m.remap("runtime", va, other_page(m, 3), bbm=False, tlbi=False)
    assert m.hazards == []
