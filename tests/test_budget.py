"""The native instruction budget (hypemu._budget, engine_budget) counts exactly as Unicorn's
emu_start(count=) does: the same PC, registers and count after every limit, the same result JSON
for every shipped scenario and for a sweep of small limits; and where it cannot be had (not
built, switched off, Thumb code) the engine falls back to count= cleanly."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hypemu import engine_budget
from hypemu.asm import assemble
from hypemu.engine import PROT_ALL, REG_CPSR, REG_PC, Engine, EngineError, Map, choose_budget
from resultjson import result_json

ROOT = Path(__file__).resolve().parent.parent
RAM, FORBIDDEN = 0x8000_0000, 0x8008_0000      # a RAM page whose every fill is refused
native = pytest.mark.skipif(engine_budget.native_unavailable() is not None,
                            reason=f"no native budget: {engine_budget.native_unavailable()}")

# Blocks of several sizes, a loop, traps (a UDF stepped over by the trap hook) at the end of a
# block, and a load that faults in the middle of a block.
PROGRAM = """
    mov r0, #0
    mov r1, #7
loop:
    add r0, r0, r1
    eor r2, r2, r0
    subs r1, r1, #1
    bne loop
    udf #1
    add r2, r2, #3
    udf #2
    mov r3, #1
    add r3, r3, r3
    add r3, r3, r3
    b skip
    nop
skip:
    add r4, r3, #9
    mov r5, r4
    ldr r6, [r7]
    add r0, r0, #1
"""
REGS = range(8)


def _engine(budget: str) -> Engine:
    e = Engine([(RAM, 1 << 20)], budget=budget)
    e.write(RAM, assemble(PROGRAM, RAM).code)
    e.on_fill(lambda va, access: None if va >> 12 == FORBIDDEN >> 12 else Map((va, PROT_ALL)),
              lambda decision: None)

    def step_over(pc: int, cpsr: int) -> None:
        e.regs.write(REG_PC, pc + 4)
    e.on_trap(step_over)
    return e


def _run(e: Engine, limit: int) -> tuple:
    for n in range(15):
        e.regs.write(n, 0)
    e.regs.write(7, FORBIDDEN)
    e.regs.write(REG_CPSR, 0x10)
    err = e.start(RAM, limit)
    return (e.executed(), err is None, *(e.regs.read(n) for n in [*REGS, REG_PC]))


@native
def test_every_limit_stops_where_count_stops():
    """Limits 1..70 over the whole program (its 40th instruction is a load that aborts): each
    run on a warm translation cache, so chained blocks are counted too."""
    counted, blocks = _engine("count"), _engine("native")
    assert blocks.budget_kind == "native" and counted.budget_kind == "count"
    seen = set()
    for limit in range(1, 71):
        expected = _run(counted, limit)
        assert _run(blocks, limit) == expected, limit
        seen.add(expected[:2])
    assert (40, False) in seen          # the abort: the faulting load counted, as count= counts it
    assert (11, True) in seen           # a limit inside the loop's block: limit + 1


@native
def test_a_reset_budget_starts_clean():
    e = _engine("native")
    first = _run(e, 13)
    e.reset_budget()
    assert _run(e, 13) == first and e.executed() == 14


@native
def test_loading_thumb_code_turns_the_native_budget_off():
    """Thumb code loaded into a native engine (CpuComplex.load_code sets thumb_code): from then on
    it counts with count=, the same counts, on code translated before the switch too."""
    e = _engine("auto")
    assert e.budget_kind == "native"
    before = [_run(e, limit) for limit in (5, 13, 40)]
    e.thumb_code = True
    assert e.budget_kind == "count" and e.thumb_code
    assert [_run(e, limit) for limit in (5, 13, 40)] == before


@native
def test_thumb_code_under_the_native_budget_is_refused():
    e = _engine("native")
    e.write(RAM + 0x1000, bytes.fromhex("0130 0130 fee7"))   # adds r0, #1; adds r0, #1; b .
    e.write(RAM, assemble(f"ldr r1, =0x{RAM + 0x1001:x}\nbx r1\n.ltorg", RAM).code)
    e.regs.write(REG_CPSR, 0x10)
    with pytest.raises(engine_budget.ThumbUnderNativeBudget):
        e.start(RAM, 50)


def _result(spec_or_path, monkeypatch, native_on: bool) -> str:
    monkeypatch.setenv(engine_budget.ENV, "1" if native_on else "0")
    return result_json(spec_or_path)


@native
@pytest.mark.parametrize("first", range(1, 151, 50))
def test_small_step_budgets_give_the_same_result(first, monkeypatch):
    """A boot of two CPUs and a call under step budgets of 1..150 instructions: timeouts (up to
    139) in the stub, in phase 1 and 2 and in the runtime call, most of them inside a block."""
    for limit in range(first, first + 50):
        spec = {"name": "t", "machine": {"cpus": 2}, "limits": {"instructions": limit},
                "steps": [{"boot": "all"}, {"call": {"cpu": 1, "fn": "hyp_probe"}}]}
        assert _result(spec, monkeypatch, True) == _result(spec, monkeypatch, False), limit


# --- the fallback ---------------------------------------------------------------------------------
def test_the_environment_switches_the_native_budget_off(monkeypatch):
    monkeypatch.setenv(engine_budget.ENV, "0")
    assert engine_budget.native_unavailable() == f"{engine_budget.ENV}=0"
    assert choose_budget() == "count" and "count=" in engine_budget.describe()
    with pytest.raises(EngineError, match="not available"):
        choose_budget("native")
    assert _engine("auto").budget_kind == "count"


def test_an_extension_that_cannot_be_imported_falls_back_to_count(monkeypatch):
    monkeypatch.delenv(engine_budget.ENV, raising=False)
    monkeypatch.setitem(sys.modules, "hypemu._budget", None)     # import raises ImportError
    assert "not built" in (engine_budget.native_unavailable() or "")
    e = _engine("auto")
    assert e.budget_kind == "count"
    assert _run(e, 5)[:2] == (6, True)


def test_thumb_chooses_count_and_refuses_native():
    assert choose_budget("auto", thumb=True) == "count"
    with pytest.raises(EngineError, match="Thumb"):
        choose_budget("native", thumb=True)
    with pytest.raises(EngineError, match="unknown budget"):
        choose_budget("fast")


@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None,
                    reason="the build tools are needed to show the failing build")
def test_a_build_without_a_compiler_goes_on_without_the_extension(tmp_path):
    """setup.py's Extensions are optional: a compiler that fails leaves the install without them
    (the native budget and the C calls both; the fallbacks are tested above and in
    test_uccalls.py)."""
    shutil.copy(ROOT / "setup.py", tmp_path)
    (tmp_path / "hypemu").mkdir()
    for source in ("_budget.c", "_uccalls.c"):
        shutil.copy(ROOT / "hypemu" / source, tmp_path / "hypemu")
    env = dict(os.environ, CC="false", LDSHARED="false")
    proc = subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in ("_budget", "_uccalls"):
        assert name in proc.stdout + proc.stderr               # it tried, and said it failed
        assert not list((tmp_path / "hypemu").glob(f"{name}*.so"))
