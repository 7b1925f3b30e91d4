"""``Machine.export()``: the memory image as the kernel side loaded it and its action log, checked
against what the board did (no QEMU needed)."""

from __future__ import annotations

from pathlib import Path

import hypemu
from hypemu.cpu import PATCH_MARKER, SENTINEL_WORD
from hypemu.export import MemoryRange, merge

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"


def _word(ex: hypemu.Export, pa: int) -> int:
    for r in ex.memory:
        if r.pa <= pa < r.end:
            return int.from_bytes(r.data[pa - r.pa:pa - r.pa + 4], "little")
    raise AssertionError(f"{pa:#x} is not in the image")


def test_boot_and_call_are_logged_in_order_with_their_results():
    m = hypemu.Machine({"name": "x", "machine": {"cpus": 2}})
    m.boot([1])
    r0 = m.call(1, "hyp_probe")
    actions = m.export().actions
    assert [a.kind for a in actions] == ["enter_hyp", "hvc", "hvc", "hvc", "hvc"]
    assert {a.cpu for a in actions} == {1}
    stub, call = actions[0], actions[-1]
    assert stub.pc == m.kernel.image.stub.address("__hyp_stub_install")
    assert call.pc == m.kernel.image.pl1.address("kvm_call_hyp")
    assert call.lr == stub.lr == m.kernel.sentinel
    assert call.args == (m.symbol("hyp_probe"), 0, 0, 0) and call.result == r0 == 0x4B564D21
    # the first HVC is the stub's: r0 = the init vectors' PA; it returns 0 ... or what HYP left
    assert actions[1].args[0] == m.layout.init_pa


def test_memory_is_the_original_code_without_trap_markers():
    m = hypemu.Machine({"name": "x"})
    ex = m.export()
    patched = m.core.runner.patched
    assert patched, "the loader patched nothing: the test proves nothing"
    for pa, word in patched.items():
        assert m.core.engine.read32(pa) == PATCH_MARKER    # the board holds the marker ...
        assert _word(ex, pa) == word == m.read32(pa)       # ... the export (and read_phys) the insn
    assert _word(ex, m.kernel.sentinel) == SENTINEL_WORD
    for stack in m.layout.stacks:                      # stacks are zero pages of the image
        assert _word(ex, stack) == 0
    assert ex.banks == ((0x80000000, 1 << 30),) and ex.cpus == 1
    assert ex.pl1_registers == {"SCTLR": 0x00C5187C, "TTBCR": 0xB5023500,
                                "MAIR0": 0xEEAA4400, "MAIR1": 0xFF000004}


def test_hotplug_and_descriptor_writes_are_actions():
    r = hypemu.run(hypemu.load_scenario(SCENARIOS / "remap-without-bbm.yaml"), export=True)
    assert r.export is not None
    writes = [a for a in r.export.actions if a.kind == "write"]
    assert writes and all(len(a.data) == 8 for a in writes)
    r = hypemu.run(hypemu.load_scenario(SCENARIOS / "hotplug.yaml"), export=True)
    kinds = [(a.kind, a.cpu) for a in r.export.actions if a.kind in ("enter_hyp", "power_off")]
    assert kinds == [("enter_hyp", 0), ("enter_hyp", 1), ("power_off", 1), ("enter_hyp", 1)]


def test_a_call_that_faults_has_no_result():
    r = hypemu.run(hypemu.load_scenario(SCENARIOS / "idmap-gone-after-init.yaml"), export=True)
    assert r.outcome == "fault" and r.export is not None
    last = r.export.actions[-1]
    assert last.kind == "hvc" and last.result is None
    assert hypemu.run(hypemu.load_scenario(SCENARIOS / "trampoline-in-lowmem.yaml"),
                      export=True).export is None      # a refused layout builds no board
    assert hypemu.run({"name": "x"}).export is None    # only on request


def test_merge_keeps_the_last_write_and_joins_adjacent_ones():
    got = merge([(0x1000, b"\x01" * 8), (0x1008, b"\x02" * 4), (0x1004, b"\x03\x03"),
                 (0x3000, b"\x04")])
    assert got == (MemoryRange(0x1000, b"\x01" * 4 + b"\x03\x03" + b"\x01\x01" + b"\x02" * 4),
                   MemoryRange(0x3000, b"\x04"))
