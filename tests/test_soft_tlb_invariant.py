"""Unicorn never holds a translation the model does not: every soft-TLB entry granted since the
last flush is, after each trapped instruction (where the regime, the mode, the TLB model or the
tables can change), still what the model would give now: the same PA, no wider permissions; and
the engine's code pages (where a trap finds its instruction) are among those entries.
Unicorn has two soft TLBs here (``Engine.use_hyp_tlb``): the flat one's entries must be flat, the
HYP MMU's entries what the CPU's HYP regime gives, whether the CPU runs in HYP or in PL1 now.
This is what lets the CPUs keep Unicorn's soft TLB across every mode switch (PL1 flat <-> HYP
with the MMU off share the flat one; PL1 <-> HYP with the MMU on switch between the two)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

import hypemu
from hypemu import engine as engine_mod
from hypemu.cpu.fill import translate
from hypemu.engine import PROT_ALL, PROT_EXEC, PROT_READ, PROT_WRITE, Map
from hypemu.scenario import load_file
from hypemu.walker import Fault

ROOT = Path(__file__).resolve().parent.parent
PAGE_MASK = ~0xFFF


class Held:
    """The entries one engine granted since its last flush, checked after every trap."""

    def __init__(self) -> None:
        self.entries: dict[tuple[bool, int], tuple[int, int]] = {}   # (hyp TLB, VA) -> entry
        self.checks = 0
        self.kept_across_switch = 0
        self.kept_hyp_across_switch = 0   # HYP MMU entries kept across a switch to or from PL1


def _model_perms(t: Any) -> int:
    return PROT_READ | (PROT_WRITE if t.writable else 0) | (PROT_EXEC if t.executable else 0)


def _violations(held: Held, runner: Any) -> list[str]:
    ctx, engine = runner.ctx, runner.engine
    bad = []
    for (hyp, vpage), ppage in engine.code_pages.items():   # where traps are fetched from
        held_pa, perms = held.entries.get((hyp, vpage << 12), (None, 0))
        if held_pa != ppage << 12 or not perms & PROT_EXEC:
            bad.append(f"code page {vpage << 12:#x} -> {ppage << 12:#x}: no such entry is held")
    for (hyp, va), (pa, perms) in held.entries.items():
        if not hyp:
            if pa != va or perms & ~PROT_ALL:
                bad.append(f"{va:#x} held flat -> {pa:#x}")
            continue
        t = translate(ctx.st, engine.read64, va, "read", hyp=True)
        if isinstance(t, Fault):
            bad.append(f"{va:#x} held -> {pa:#x}, the model faults ({t.type})")
        elif isinstance(t, int):
            bad.append(f"{va:#x} held in the HYP MMU's TLB -> {pa:#x}, the HYP MMU is off")
        elif t.pa_of(va) != pa or perms & ~_model_perms(t):
            bad.append(f"{va:#x} held -> {pa:#x} perms {perms}, model -> {t.pa_of(va):#x}")
    return bad


@pytest.fixture
def watched(monkeypatch) -> list[Held]:
    """Every Engine built in the test records its grants and flushes."""
    helds: list[Held] = []
    on_fill, on_trap = engine_mod.Engine.on_fill, engine_mod.Engine.on_trap
    flush = engine_mod.Engine.flush_soft_tlb

    def held_of(engine: Any) -> Held:
        if not hasattr(engine, "_held"):
            engine._held = Held()
            helds.append(engine._held)
        return engine._held

    def recording_fill(self: Any, fill: Callable, refused: Callable) -> None:
        held = held_of(self)

        def wrapped(va: int, access: str) -> Any:
            decision = fill(va, access)
            if type(decision) is Map:
                hyp = self.tlbs.hyp   # the soft TLB this fill goes into
                held.entries[hyp, va & PAGE_MASK] = (decision.pa & PAGE_MASK, decision.perms)
            return decision
        on_fill(self, wrapped, refused)

    def checking_trap(self: Any, trap: Callable) -> None:
        held, runner = held_of(self), trap.__self__

        def wrapped(pc: int, cpsr: int) -> None:
            mode = runner.ctx.st.mode
            trap(pc, cpsr)
            held.checks += 1
            if runner.ctx.st.mode != mode and held.entries:
                held.kept_across_switch += 1
                if any(hyp for hyp, _ in held.entries):
                    held.kept_hyp_across_switch += 1
            bad = _violations(held, runner)
            assert not bad, f"cpu{runner.ctx.st.id} after the trap: " + "; ".join(bad)
        on_trap(self, wrapped)

    def recording_flush(self: Any) -> None:
        held_of(self).entries.clear()
        flush(self)
    monkeypatch.setattr(engine_mod.Engine, "on_fill", recording_fill)
    monkeypatch.setattr(engine_mod.Engine, "on_trap", checking_trap)
    monkeypatch.setattr(engine_mod.Engine, "flush_soft_tlb", recording_flush)
    return helds


@pytest.mark.parametrize("path", sorted((ROOT / "scenarios").glob("*.yaml")), ids=lambda p: p.stem)
def test_unicorn_holds_only_what_the_model_translates(path, watched):
    hypemu.run(load_file(path))
    assert not watched or sum(h.checks for h in watched) > 0   # refused layouts: no board


def test_the_soft_tlb_is_kept_across_a_flat_mode_switch(watched):
    """The stub's HVC (SVC -> HYP, MMU off) and its ERET keep the entries, and stay correct."""
    hypemu.run(hypemu.load_scenario({"name": "boot", "steps": [{"boot": "all"}]}))
    assert sum(h.kept_across_switch for h in watched) > 0


def test_the_hyp_mmu_entries_are_kept_across_a_runtime_call(watched):
    """A runtime call (SVC -> HYP with the MMU on, and back) switches soft TLBs without a flush:
    HYP MMU entries are held while PL1 runs and stay correct; the second call refills nothing."""
    m = hypemu.Machine({"name": "calls"})
    m.boot("all")
    m.call(0, "hyp_probe")
    fills = m.core.stats.tlb_fills
    m.call(0, "hyp_probe")
    assert m.core.stats.tlb_fills == fills
    assert sum(h.kept_hyp_across_switch for h in watched) > 0
