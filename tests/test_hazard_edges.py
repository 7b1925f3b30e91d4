"""Edge cases of the hazard machinery found by a review (each test failed before its fix):
stores into table pages that also fault, span two pages or meet a hazard; the exact-VA replay;
reports where there is no RAM; attributes in missing_isb; validate vs run; per-step API budgets."""

from __future__ import annotations

import subprocess
import sys

import pytest

from hypemu.kvm import BudgetExhausted, GuestFault
from hypemu.machine import Machine
from hypemu.result import run
from hypemu.scenario import DEFAULT_SCENARIO, from_mapping

from test_hazards import data_page, hyp_code, other_page


def _m(checks=True, **sections):
    m = Machine(from_mapping({**DEFAULT_SCENARIO, **sections}), checks=checks)
    m.boot()
    return m


def test_1_store_into_a_table_page_that_also_faults_loops_until_the_budget():
    """STM from the last word of a HYP table page into an unmapped page: a data abort after one
    instruction, with or without the checks."""
    counts = []
    for checks in (False, True):
        m = _m(checks, limits={"instructions": 5000})
        _, desc = data_page(m)
        tva = m.map_hyp(desc & ~0xFFF, 4096)
        code = hyp_code(m, "stmia r0, {r1, r2}\n bx lr\n")
        before = m.core.stats.instructions
        with pytest.raises(GuestFault) as info:
            m.call(0, code, tva + 0xFFC, 1, 2)
        assert info.value.record.va == tva + 0x1000
        counts.append(m.core.stats.instructions - before)
    assert counts[0] == counts[1]


def test_2_store_spanning_two_table_pages_misses_bbm_on_the_second():
    m = _m()
    m.call(0, "hyp_probe")                  # caches a walk through runtime L2 0x80013000
    base = m.map_hyp(0x80012000, 8192)      # two adjacent table pages
    code = hyp_code(m, """
        push {r4-r7}
        mov r4, #0
        mov r5, #0
        mov r6, r1
        mov r7, #0
        stmia r0, {r4-r7}       @ end of 0x80012000, then the live L2[0] at 0x80013000
        pop {r4-r7}
        bx lr
    """)
    m.call(0, code, base + 0x1000 - 8, 0x80014000 | 3)
    assert m.core.engine.read64(0x80013000) == 0x80014003
    assert "bbm" in [h.kind for h in m.hazards]


def test_3_hazard_replay_writes_a_table_page_unobserved():
    m = _m()
    m.call(0, "hyp_probe")
    V = m.map_hyp(0x80012000, 8192)         # V+4K -> runtime L2 (table page)
    D, E = m.layout.banks[0].base + (32 << 20), m.layout.banks[0].base + (33 << 20)
    m.remap("runtime", V, D)
    code = hyp_code(m, """
        push {r4-r7}
        cmp r2, #0
        ldreq r4, [r0]
        beq 1f
        mov r4, #0
        mov r5, #0
        mov r6, r1
        mov r7, #0
        stmia r0, {r4-r7}
        1:
        pop {r4-r7}
        bx lr
    """)
    m.call(0, code, V, 0, 0)
    m.remap("runtime", V, E, bbm=False, tlbi=False)      # a stale_tlb pause on the STM's first page
    m.call(0, code, V + 0xFF8, 0x80014000 | 3, 1)
    # the kernel side's in-place remap is a bbm (cpu None); the guest's STM must be one too
    assert ("bbm", 0) in [(h.kind, h.cpu) for h in m.hazards]


def test_4_hazard_inside_a_stepped_table_store_counts_it_twice():
    counts = []
    for checks in (False, True):
        m = _m(checks)
        V = m.map_hyp(0x80015000, 8192)     # V -> table page, V+4K -> ordinary page
        code = hyp_code(m, """
            push {r4-r7}
            cmp r2, #0
            ldreq r0, [r0]
            beq 1f
            mov r4, #0
            mov r5, #0
            mov r6, #0x11
            mov r7, #0x22
            stmia r0, {r4-r7}
            1:
            pop {r4-r7}
            bx lr
        """)
        m.call(0, code, V + 0x1000, 0, 0)
        m.remap("runtime", V + 0x1000, other_page(m, 0), bbm=False, tlbi=False)
        before = m.core.stats.instructions
        m.call(0, code, V + 0xFF8, 0, 1)
        counts.append(m.core.stats.instructions - before)
    assert counts[0] == counts[1]


def test_5_skip_hsctlr_is_not_a_traceback():
    r = run({"name": "x", "inject": [{"skip": "hsctlr"}]})
    assert r.outcome == "fault"


def test_5b_mmu_off_without_isb_from_a_non_ram_va_is_not_a_traceback():
    m = _m()
    code = hyp_code(m, """
        mrc p15, 4, r0, c1, c0, 0
        bic r0, r0, #1
        mcr p15, 4, r0, c1, c0, 0
        nop
        bx lr
    """)
    with pytest.raises(GuestFault):
        m.call(0, code)


def test_6_missing_isb_fetch_report_disassembles_the_patch_marker():
    r = run({"name": "x", "inject": [{"skip": "httbr"}]})
    h = r.hazards[0]
    assert h["kind"] == "missing_isb"
    assert h["disasm"].startswith("isb")


def test_7_hdfar_of_a_store_into_the_code_page():
    m = _m()
    code = hyp_code(m, """
        add r0, pc, #0x100
        str r1, [r0]
        bx lr
    """)
    m.corrupt("runtime", code, "ap", 3)
    m.call(0, "hyp_tlbi_all")
    with pytest.raises(GuestFault) as info:
        m.call(0, code, 0, 5)
    assert info.value.record.va == code + 8 + 0x100
    assert m.hyp_registers(0)["HDFAR"] == code + 8 + 0x100


def test_8_missing_isb_ignores_hmair_attributes():
    m = _m()
    va = m.map_hyp(m.layout.banks[0].base + (36 << 20), 4096)
    code = hyp_code(m, """
        mrc p15, 4, r1, c10, c2, 1
        mov r2, #0                   @ HMAIR1 = 0: AttrIndx 7 (PAGE_HYP) becomes Device
        mcr p15, 4, r2, c10, c2, 1
        ldr r0, [r0]                 @ walked now: Normal or Device depends on the unsynced write
        mcr p15, 4, r1, c10, c2, 1
        isb
        bx lr
    """)
    m.call(0, code, va)
    assert "missing_isb" in [h.kind for h in m.hazards]


def test_9_data_hazard_on_a_table_page_store_reports_the_page_not_the_va():
    m = _m()
    V = m.map_hyp(0x80015000, 4096)
    code = hyp_code(m, """
        cmp r2, #0
        ldreq r0, [r0]
        strne r1, [r0, #0xF00]
        bx lr
    """)
    m.call(0, code, V, 0, 0)
    m.remap("runtime", V, 0x80014000, bbm=False, tlbi=False)
    n = len(m.hazards)
    m.call(0, code, V, 0x1234, 1)
    assert m.hazards[n].va == V + 0xF00


def test_10_validate_accepts_a_remap_that_run_rejects(tmp_path):
    f = tmp_path / "r.yaml"
    f.write_text("name: r\nsteps:\n  - boot: all\n  - call: {cpu: 0, fn: hyp_probe}\ninject:\n"
                 "  - remap: {table: runtime, va: 0x12345000, to: 0x82000123, at: 1}\n")
    cli = [sys.executable, "-m", "hypemu.cli"]
    v = subprocess.run(cli + ["validate", str(f)], capture_output=True, text=True)
    r = subprocess.run(cli + ["run", str(f)], capture_output=True, text=True)
    assert r.returncode == 2
    assert v.returncode == 2


def test_11_api_budget_is_cumulative_not_per_call():
    m = Machine({"name": "b", "limits": {"instructions": 2000}})
    m.boot()
    for _ in range(200):
        m.call(0, "hyp_probe")
