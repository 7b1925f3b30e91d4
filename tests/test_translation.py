"""The two HYP tables: the trampoline page in both, the idmap only in the boot table, and the
switch from one to the other in phase 2 (HTTBR write, then TLBIALLH)."""

from __future__ import annotations

from conftest import machine
from hypemu import events
from hypemu.walker import Fault, Translation

TRAMPOLINE = 0xFFFF0000


def test_trampoline_maps_the_init_page_in_both_tables(booted):
    lay = booted.layout
    boot = booted.translate(0, TRAMPOLINE, "fetch", pgd="boot")
    runtime = booted.translate(0, TRAMPOLINE, "fetch", pgd="runtime")
    assert isinstance(boot, Translation) and isinstance(runtime, Translation)
    # Default board: the image is at 0x80008000, the init code on its own page at +0x1000.
    assert boot.pa == runtime.pa == lay.trampoline_pa == 0x80009000
    assert boot.level == runtime.level == 3 and boot.size == 4096


def test_idmap_only_in_the_boot_table(booted):
    init_pa = booted.layout.init_pa
    assert isinstance(booted.translate(0, init_pa, "fetch", pgd="boot"), Translation)
    assert booted.translate(0, init_pa, "fetch", pgd="boot").pa == init_pa
    fault = booted.translate(0, init_pa, "fetch", pgd="runtime")
    # VA 0x80009000: VA[31:30] = 2, and the runtime pgd only has entry 3 (0xC0000000 and up):
    # a level-1 translation fault.
    assert isinstance(fault, Fault) and (fault.type, fault.level) == ("translation", 1)


def test_idmap_fault_level_when_it_shares_tables_with_kernel_mappings():
    # RAM at 0xC0000000 with PAGE_OFFSET 0xC0000000: kernel VA == PA. The init page (0xC0009000) and
    # the HYP text (0xC000A000) share the level-2 entry (same 2 MiB), so the runtime table has a
    # level-3 table there whose entry for the init page is invalid: a level-3 translation fault.
    m = machine(machine={"ram": {"base": 0xC0000000, "size": "256MiB"}},
                kernel={"page_offset": 0xC0000000})
    m.boot()
    fault = m.translate(0, m.layout.init_pa, "fetch", pgd="runtime")
    assert isinstance(fault, Fault) and (fault.type, fault.level) == ("translation", 3)


def test_phase2_switches_httbr_then_invalidates_from_the_trampoline(booted):
    log = booted.events
    runtime_pgd = booted.kernel.runtime_pgd
    switch = next(i for i, e in enumerate(log)
                  if e.kind == events.SYSREG and e.name == "HTTBR" and e.value == runtime_pgd)
    following = next(e for e in log[switch + 1:] if e.kind in (events.TLBI, events.SYSREG))
    assert following.kind == events.TLBI and following.name == "TLBIALLH"
    for event in (log[switch], following):
        assert TRAMPOLINE <= event.pc < TRAMPOLINE + 4096   # executed through the trampoline VA
    boot_switch = [e for e in log if e.name == "HTTBR"]
    assert [e.value for e in boot_switch] == [booted.kernel.boot_pgd, runtime_pgd]


def test_the_cpu_tlb_holds_no_boot_table_entry_after_init(booted):
    # TLBIALLH in phase 2 dropped the idmap entries: what is cached now came from the runtime table.
    tlb = booted.core.cpus[0].tlb
    assert all(t.va != booted.layout.init_pa & ~0xFFF for t in tlb.entries())
