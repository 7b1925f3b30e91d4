"""The kernel side's layers on their own: the guest loader, the call conventions, the init designs,
the plan made before any board exists, and the step runner's budget."""

from __future__ import annotations

import pytest

import hypemu.machine
from conftest import machine, scenario
from hypemu import kvm
from hypemu.asm import assemble
from hypemu.cpu import FaultRecord, RunResult
from hypemu.guest_abi import CALL_CONVENTIONS, InitCall
from hypemu.kvm.designs import DualStep, HypTables, SingleStep
from hypemu.layout import ConfigError
from hypemu.loader import (IMAGE_POISON, GuestContractError, GuestImage, Region, check_init_contract,
                           load_image)
from hypemu.scenario import from_mapping


# --- the loader -----------------------------------------------------------------------------------
@pytest.mark.parametrize("source, message", [
    (".global __kvm_hyp_init\n__kvm_hyp_init:\n nop\n", "no label __kvm_hyp_init_end"),
    (" nop\n__kvm_hyp_init:\n nop\n__kvm_hyp_init_end:\n", "must start the init code"),
    ("__kvm_hyp_init_end:\n__kvm_hyp_init:\n nop\n", "must come after"),
])
def test_the_init_code_contract(source, message):
    with pytest.raises(GuestContractError, match=message):
        check_init_contract(assemble(source, 0x80001000))


def test_the_init_contract_gives_the_init_code_range():
    program = assemble("__kvm_hyp_init:\n nop\n nop\n__kvm_hyp_init_end:\n nop\n", 0x80001000)
    assert check_init_contract(program) == (0x80001000, 0x80001008)


def _region(name: str, code: bytes, base: int, load_pa: int) -> Region:
    return Region(name, code, base, load_pa, {}, frozenset(), f"{name}.S")


class RecordingTarget:
    def __init__(self) -> None:
        self.writes: list[tuple[str, int, bytes]] = []

    def load_code(self, pa: int, code: bytes, thumb: bool = False) -> None:
        self.writes.append(("code", pa, code) if not thumb else ("thumb code", pa, code))

    def write_ram(self, pa: int, data: bytes) -> None:
        self.writes.append(("ram", pa, data))

    def fill_ram(self, pa: int, data: bytes) -> None:
        self.writes.append(("ram", pa, data))


def test_loading_poisons_the_image_span_then_loads_each_region_at_its_pa():
    image = GuestImage(pl1=_region("pl1", b"\x01" * 8, 0x1000, 0x1000),
                       stub=_region("stub", b"\x02" * 4, 0x1100, 0x1100),
                       init=_region("init", b"\x03" * 4, 0x2000, 0x2000),
                       runtime=_region("runtime", b"\x04" * 4, 0xC0003000, 0x3000))
    target = RecordingTarget()
    load_image(target, image, (0x1000, 0x5000))
    kind, pa, poison = target.writes[0]
    assert (kind, pa, len(poison)) == ("ram", 0x1000, 0x4000)
    assert set(poison[i:i + 4] for i in range(0, len(poison), 4)) == {bytes.fromhex("f0eafde7")}
    assert IMAGE_POISON == 0xE7FDEAF0                              # UDF #0xDEA0
    assert target.writes[1:] == [("code", 0x1000, b"\x01" * 8), ("code", 0x1100, b"\x02" * 4),
                                 ("code", 0x2000, b"\x03" * 4), ("code", 0x3000, b"\x04" * 4)]


def test_a_patched_region_keeps_its_length():
    region = _region("init", bytes(8), 0x2000, 0x2000)
    assert region.with_code(b"\xff" * 8).code == b"\xff" * 8
    with pytest.raises(ValueError, match="not 8"):
        region.with_code(bytes(4))


def test_the_builtin_image_is_linked_where_the_plan_placed_it():
    s = from_mapping(scenario())
    plan = kvm.plan_board(kvm.from_scenario(s))
    lay, img = plan.layout, plan.image
    assert (img.pl1.base, img.stub.base) == (lay.pl1_text, lay.pl1_text + 0x100)
    assert (img.init.base, img.init.load_pa, len(img.init.code)) == (lay.init_start, lay.init_start,
                                                                     lay.init_size)
    assert (img.runtime.base, img.runtime.load_pa) == (lay.kva(lay.hyp_text), lay.hyp_text)
    assert img.runtime.address("__kvm_hyp_vector") >= img.runtime.base


# --- call conventions and designs ----------------------------------------------------------------
CALL = InitCall("x", pgd=0x12_8000_3000, stack=0xC0805000, vectors=0xC0802000)


def test_each_call_convention_packs_the_init_arguments():
    assert CALL_CONVENTIONS["seed"].pack(CALL) == (0x80003000, 0x12, 0xC0805000, 0xC0802000)
    assert CALL_CONVENTIONS["linux-3.10"].pack(CALL) == (0xC0805000, 0xC0802000, 0x80003000, 0x12)
    assert [c.number for c in CALL_CONVENTIONS.values()] == [0, 1]     # CALL_ABI of the guest
    assert kvm.guest_constants(0xFFFF0000, "linux-3.10")["CALL_ABI"] == 1


def test_each_design_makes_its_own_init_calls():
    tables = HypTables(boot=0x8000_5000, runtime=0x8000_6000)
    assert DualStep().init_calls(tables, 0xC0805000, 0xC0802000) == (
        InitCall("HYP init phase 1", 0x8000_5000, 0, 0),
        InitCall("HYP init phase 2", 0x8000_6000, 0xC0805000, 0xC0802000))
    assert SingleStep().init_calls(tables, 0xC0805000, 0xC0802000) == (
        InitCall("HYP init (single-step)", 0x8000_6000, 0xC0805000, 0xC0802000),)
    assert (DualStep.trampoline, SingleStep.trampoline) == (True, False)
    assert kvm.BUILTIN_INIT == {"dual-step": "hyp-init.S", "single-step": "hyp-init-single.S"}


def test_single_step_removes_the_idmap_once_for_all_boot_steps():
    m = machine(machine={"cpus": 2}, hyp={"init": "single-step"})
    m.boot([0])
    m.kernel.after_boot()                 # what every later boot step does: nothing more to remove
    assert [e.name for e in m.events if e.name == "remove the HYP idmap"] == ["remove the HYP idmap"]


# --- the plan, before the board -------------------------------------------------------------------
@pytest.mark.parametrize("sections, reason", [
    ({"hyp": {"trampoline_va": 0xC0100000}}, "inside the kernel's lowmem"),        # layout check
    ({"machine": {"ram": {"base": 0xC0000000, "size": "256MiB"}}, "hyp": {"init": "single-step"}},
     "shares the level-1 entry"),                                                  # table building
    ({"machine": {"ram": {"size": "64KiB"}}}, "RAM too small"),                     # allocation
])
def test_a_refused_layout_is_refused_before_any_board_exists(monkeypatch, sections, reason):
    def no_board(*args: object, **kwargs: object) -> None:
        raise AssertionError("a board was built for a refused layout")
    monkeypatch.setattr(hypemu.machine, "CpuComplex", no_board)
    with pytest.raises(ConfigError, match=reason):
        hypemu.machine.Machine(from_mapping(scenario(**sections)))


@pytest.mark.parametrize("init", ["dual-step", "single-step"])
def test_the_board_holds_the_tables_that_were_planned(init):
    s = from_mapping(scenario(hyp={"init": init}))
    plan = kvm.plan_board(kvm.from_scenario(s))
    m = hypemu.machine.Machine(s)
    assert m.kernel.tables == plan.tables and plan.tables.boot in plan.table_pages
    assert plan.layout.tables and set(plan.layout.tables) < set(plan.table_pages)
    for pa, page in plan.table_pages.items():
        assert m.read_phys(pa, 4096) == page
    assert any(plan.table_pages[plan.tables.runtime])            # the runtime pgd maps something


# --- the step runner ------------------------------------------------------------------------------
class ScriptedCore:
    """A CPU whose runs end as scripted (the runner needs run_guest() and reg() only)."""

    def __init__(self, *results: RunResult):
        self.results, self.asked = list(results), []

    def run_guest(self, pc: int, budget: int | None) -> RunResult:
        self.asked.append(budget)
        return self.results.pop(0)

    def reg(self, n: int) -> int:
        return 0x600D


def test_the_runner_draws_every_call_of_a_step_from_one_budget():
    core = ScriptedCore(RunResult("returned", 60, 0x1FFC), RunResult("timeout", 40, 0x2000))
    runner = kvm.StepRunner(core, 100)             # type: ignore[arg-type]
    assert runner.run_to_pl1(0, 0x1000, "first") == 0x600D
    with pytest.raises(kvm.BudgetExhausted, match=r"budget \(100\) at pc 0x2000 during second"):
        runner.run_to_pl1(0, 0x1000, "second")
    assert core.asked == [100, 40]
    with pytest.raises(kvm.BudgetExhausted):       # nothing left: the CPU does not even start
        runner.run_to_pl1(0, 0x1000, "third")
    assert core.asked == [100, 40]
    runner.new_step()
    core.results.append(RunResult("returned", 1, 0x1FFC))
    runner.run_to_pl1(0, 0x1000, "next step")
    assert core.asked[-1] == 100


def test_the_runner_turns_a_guest_exception_into_a_guest_fault():
    record = FaultRecord(cpu=1, kind="data_abort", pc=0x3000)
    core = ScriptedCore(RunResult("fault", 3, 0x3000, record), RunResult("wfi", 2, 0x3004))
    runner = kvm.StepRunner(core, None)            # type: ignore[arg-type]
    with pytest.raises(kvm.GuestFault) as info:
        runner.run_to_pl1(1, 0x1000, "a call")
    assert info.value.record is record and info.value.during == "a call"
    with pytest.raises(kvm.BudgetExhausted, match="waits in WFI"):
        runner.run_to_pl1(1, 0x1000, "a call")
    assert core.asked == [None, None]              # uncounted (the benchmarks' mode)
