"""Regression tests of issue 15 (what a new user trips over): each refusal with its own true reason,
the messages, the command line, the Python API against its documentation."""

from __future__ import annotations

from pathlib import Path

import pytest

import hypemu
from conftest import machine, scenario
from hypemu import memmap, views
from hypemu.scenario import from_mapping
from hypemu.walker import Translation

pytest_plugins = ["pytester"]


# 1. The idmap page that *is* the trampoline page is one mapping, not a refusal.

def test_a_trampoline_va_on_the_idmap_page_itself_boots():
    m = machine(hyp={"trampoline_va": 0x80009000})   # the default board's init page
    assert m.layout.trampoline_pa == 0x80009000
    m.boot()
    assert m.call(0, "hyp_probe") == m.read32(m.layout.hyp_data)
    for table in ("boot", "runtime"):
        t = m.translate(0, 0x80009000, "fetch", pgd=table)
        assert isinstance(t, Translation) and t.pa == 0x80009000
    mmap = views.memory_map(from_mapping(scenario(hyp={"trampoline_va": 0x80009000})))
    assert mmap.collisions == []


def test_an_idmap_page_the_trampoline_maps_elsewhere_is_refused_for_that_reason():
    with pytest.raises(hypemu.ConfigError) as err:
        machine(hyp={"trampoline_va": 0x8000A000, "bounce_page": "never"},
                kernel={"hyp_idmap_offset": 0x1F80})
    assert err.value.reason == (
        "the HYP idmap [0x80009000, 0x8000b000) maps the trampoline VA 0x8000a000 to itself, the "
        "trampoline maps it to 0x80009000: the boot pgd cannot hold both (init code across a page, "
        "bounce_page: never)")
    assert "4 GiB" not in err.value.reason


# 2. An image above lowmem says so; kernel pages come from the lowmem of any bank.

def test_an_image_above_lowmem_is_refused_for_that_reason():
    with pytest.raises(hypemu.ConfigError) as err:
        machine(kernel={"text_offset": 0x30000000})   # 1 GiB at 0x80000000: lowmem ends 0xaf800000
    assert err.value.reason == (
        "the kernel image [0xb0000000, 0xb0004000) reaches above the end of lowmem at 0xaf800000: "
        "the kernel runs in its linear map, which ends where the vmalloc area starts")


def test_kernel_pages_come_from_another_lowmem_bank_when_the_kernels_is_full():
    banks = [{"base": 0x80000000, "size": "52KiB"}, {"base": 0x80100000, "size": "1MiB"}]
    m = machine(machine={"ram": banks, "cpus": 2})   # 52 KiB alone: no page left for the tables
    lay = m.layout
    assert lay.image_end == 0x8000C000 and lay.stacks[0] == 0x8000C000
    assert lay.stacks[1] == 0x80100000 and all(0x80100000 <= t < 0x80200000 for t in lay.tables)
    m.boot("all")
    assert m.call(1, "hyp_get_sp") & ~0xFFF == lay.kva(lay.stacks[1])   # cpu1 runs on it


def test_no_lowmem_page_left_names_lowmem_not_a_bank_end():
    banks = [{"base": 0x80000000, "size": "52KiB"}, {"base": 0x880000000, "size": "1GiB"}]
    with pytest.raises(hypemu.ConfigError) as err:
        machine(machine={"ram": banks})
    assert err.value.reason == ("RAM too small: no free lowmem page left for the boot HYP pgd "
                                "(lowmem: [0x80000000, 0x8000d000), the kernel image ends at "
                                "0x8000c000)")


# 3. A fetch in the trampoline page outside the init code is named with the page and its target.

NO_BOUNCE = {"hyp": {"bounce_page": "never"}, "kernel": {"hyp_idmap_offset": 0x1F80}}


def test_a_jump_into_poison_at_the_trampoline_names_the_page_and_the_target():
    result = hypemu.run(scenario(**NO_BOUNCE))
    assert result.outcome == "fault" and result.fault["pc"] == 0xFFFF003C
    assert result.reason == (
        "undefined during HYP init phase 2 at steps[0]: undefined instruction 0xe7fdeaf0 "
        "(udf #0xdea0, the filler of kernel-image memory where no code is loaded: execution left "
        "the code): the fetch at 0xffff003c in the trampoline page [0xffff0000, 0xffff1000) -> "
        "0x80009000 reads PA 0x8000903c, outside the HYP init code [0x80009f80, 0x8000a068); the "
        "init code crosses into the page at 0x8000a000 with no bounce page, which the trampoline "
        "does not map")


def test_a_fetch_past_the_trampoline_page_says_so():
    from hypemu.cpu.context import FaultRecord
    from hypemu.faultsite import note
    lay = machine().layout
    abort = FaultRecord(0, "prefetch_abort", 0xFFFF1000, 0xFFFF1000, "translation", 3, 0x86000007)
    assert note(abort, lay, True) == (": the fetch at 0xffff1000 ran past the end of the trampoline "
                                      "page [0xffff0000, 0xffff1000) -> 0x80009000")
    assert note(abort, lay, False) == ""   # single-step: no trampoline
    inside = FaultRecord(0, "prefetch_abort", 0xFFFF0010, 0xFFFF0010, "permission", 3, 0x8600000F)
    assert note(inside, lay, True) == ""   # init code is there: the fault says enough


# 4. The fault first; a hazard at the faulting instruction right below it, worded as its consequence.

def test_the_exception_entry_hazard_follows_the_fault_it_comes_from():
    from hypemu.report import summary
    result = hypemu.run(scenario(**NO_BOUNCE))
    lines = summary(result).splitlines()
    fault = next(i for i, line in enumerate(lines) if line.startswith("  fault: "))
    assert lines[fault + 1] == "    at the faulting instruction, hazard: missing_isb cpu0 pc=0xffff003c udf #0xdea0"
    assert lines[fault + 2].strip() == (
        "taking this exception reads HVBAR, whose write at 0x8000a028 (0x80009f80 -> 0xc000b000) no "
        "ISB has synchronized yet: the exception may be taken to the old vectors")
    assert not any(line.startswith("  hazard:") for line in lines)   # not repeated at the end


# 5. A hazard on a data access that faults carries the exact VA, as the fault does.

def test_a_hazard_on_a_faulting_access_has_the_faults_exact_va():
    result = hypemu.run(scenario(inject=[{"skip": "dsb"}], steps=[
        {"boot": "all"}, {"call": {"cpu": 0, "fn": "hyp_read", "args": [0x80009010]}}]))
    assert result.fault["va"] == 0x80009010
    assert [(h["kind"], h["va"]) for h in result.hazards] == [("missing_dsb", 0x80009010)]


# 6. The README's hazard section says the checks report only what an access relied on, with the
# `skip: dsb` example, and the example is what the code does.

def test_the_readmes_skip_dsb_example_is_true():
    from pathlib import Path
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert "The checks report what an access or fetch *relied on*" in readme
    assert "[{skip: dsb}]` alone on the default scenario passes (`ok`)" in readme
    alone = hypemu.run(scenario(inject=[{"skip": "dsb"}]))
    assert alone.outcome == "ok" and alone.hazards == []


# 8. validate checks call and skip names on the built board, with did-you-mean and only functions.

CALLABLE = ("hyp_get_sp, hyp_probe, hyp_read, hyp_sum, hyp_tlbi_all, hyp_tlbi_all_is, hyp_tlbi_va, "
            "hyp_tlbi_va_is, hyp_touch, hyp_write")


def _cli(capsys, *argv):
    from hypemu.cli import main
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_validate_finds_a_misspelt_function_and_lists_only_callable_ones(capsys, tmp_path):
    path = tmp_path / "typo.yaml"
    path.write_text("name: typo\nsteps:\n  - boot: all\n  - call: {cpu: 0, fn: hyp_prob}\n")
    code, out, err = _cli(capsys, "validate", str(path))
    assert code == 2 and out == ""
    assert err == (f"hypemu: {path}:4: steps[1].call: no HYP function 'hyp_prob' in the runtime code: "
                   f"did you mean hyp_probe? (callable: {CALLABLE})\n")


def test_an_unknown_skip_symbol_gets_a_did_you_mean(capsys, tmp_path):
    path = tmp_path / "skip.yaml"
    path.write_text("name: skip\ninject: [{skip: {symbol: __kvm_hyp_inti}}]\n")
    code, _, err = _cli(capsys, "validate", str(path))
    assert code == 2 and err == (f"hypemu: {path}:2: inject[0].skip.symbol: no symbol "
                                 f"'__kvm_hyp_inti' in the init or runtime code: did you mean "
                                 f"__kvm_hyp_init?\n")


# 9. A HYP VA as `fn:` (as Machine.call takes it); numbers in messages in hex.

def test_a_call_by_hyp_va_runs_and_reads_in_hex():
    m = machine()
    va = m.symbol("hyp_probe")
    result = hypemu.run(scenario(steps=[{"boot": "all"}, {"call": {"cpu": 0, "fn": va}}]))
    assert result.outcome == "ok" and result.calls[0]["fn"] == f"{va:#x}"
    assert result.calls[0]["r0"] == hypemu.run(scenario()).calls[0]["r0"]


def test_a_wrong_fn_and_other_large_numbers_are_shown_in_hex():
    with pytest.raises(hypemu.ScenarioError) as err:
        from_mapping(scenario(steps=[{"boot": "all"}, {"call": {"cpu": 0, "fn": [0xC000A100]}}]))
    assert "or its HYP VA, got a list" in str(err.value)
    with pytest.raises(hypemu.ScenarioError) as err:
        from_mapping(scenario(steps=[{"boot": 0xC000A100}]))
    assert str(err.value).endswith("got 0xc000a100")
    with pytest.raises(hypemu.ScenarioError) as err:   # beyond 32 bits
        from_mapping(scenario(steps=[{"boot": "all"}, {"call": {"cpu": 0, "fn": 1 << 32}}]))
    assert str(err.value).endswith("must be 0x0..0xffffffff, got 0x100000000")


# 7. A batch runs every file; bad ones are errors, counted at the end, exit 2.

def test_a_batch_runs_past_bad_files_and_counts_errors(capsys, tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text("name: good\n")
    typo = tmp_path / "typo.yaml"
    typo.write_text("name: typo\nsteps:\n  - boot: all\n  - call: {cpu: 0, fn: hyp_prob}\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nmachine: {cpus: 99}\n")
    failing = tmp_path / "failing.yaml"
    failing.write_text("name: failing\nexpect: {outcome: fault}\n")
    code, out, err = _cli(capsys, "run", str(good), str(typo), str(bad), str(failing))
    assert code == 2
    assert out.count("PASS good") == 1 and out.count("FAIL failing") == 1
    assert out.splitlines()[-1] == "1 passed, 1 failed, 2 errors"
    assert err.splitlines() == [
        f"hypemu: {typo}:4: steps[1].call: no HYP function 'hyp_prob' in the runtime code: did you "
        f"mean hyp_probe? (callable: {CALLABLE})",
        f"hypemu: {bad}:2: machine.cpus: must be 1..8, got 99"]
    code, out, _ = _cli(capsys, "run", str(good), str(failing))
    assert code == 1 and out.splitlines()[-1] == "1 passed, 1 failed, 0 errors"


# 10. One rule for YAML 1.1 booleans: on/off where documented (hotplug.state), booleans for bool
# keys, the hint everywhere else.

def _load(tmp_path, text):
    from hypemu.scenario import load_file
    path = tmp_path / "b.yaml"
    path.write_text(text)
    return load_file(str(path))


HOTPLUG = "name: h\nmachine: {{cpus: 2}}\nsteps:\n  - boot: all\n  - hotplug: {{cpu: 1, state: {}}}\n"
HINT = "YAML 1.1 reads yes/no/on/off/true/false as booleans"


@pytest.mark.parametrize("word", ["no", "yes", "true", "False"])
def test_a_hotplug_state_other_than_on_off_is_refused_with_the_hint(tmp_path, word):
    with pytest.raises(hypemu.ScenarioError) as err:
        _load(tmp_path, HOTPLUG.format(word))
    assert str(err.value).endswith(f":5: steps[1].hotplug.state: expected one of on, off, got "
                                   f"{word} ({HINT}; quote it to mean the word)")


def test_a_python_mappings_own_booleans_are_on_off_as_a_yaml_11_reader_made_them():
    s = from_mapping(scenario(machine={"cpus": 2}, steps=[
        {"boot": "all"}, {"hotplug": {"cpu": 1, "state": False}}]))
    assert s.steps[1].state == "off"


@pytest.mark.parametrize("word", ["off", "Off", "'off'"])
def test_off_in_any_spelling_is_the_state_off(tmp_path, word):
    assert _load(tmp_path, HOTPLUG.format(word)).steps[1].state == "off"


def test_bool_keys_take_yaml_11_booleans_and_other_keys_hint(tmp_path):
    text = ("name: r\nsteps: [{boot: all}, {call: {fn: hyp_probe}}]\n"
            "inject: [{remap: {table: runtime, va: 0xc000b000, to: 0x80100000, bbm: no, "
            "tlbi: on, at: 1}}]\n")
    remap = _load(tmp_path, text).inject[0]
    assert (remap.bbm, remap.tlbi) == (False, True)
    with pytest.raises(hypemu.ScenarioError) as err:
        _load(tmp_path, "name: x\nhyp: {bounce_page: no}\n")
    assert f"got no ({HINT}; quote it to mean the word)" in str(err.value)


# 11. One style for none and for addresses: a mismatch reads like the summary (null, hex).

def test_a_fault_mismatch_prints_null_and_hex_like_the_summary():
    result = hypemu.run(scenario(expect={"outcome": "fault", "fault": {
        "va": 0x80009010, "fsc": "translation", "level": 2, "hsr": 0x96000005}}))
    assert result.mismatch == ["outcome ok, expected fault", "fault.va is null, expected 0x80009010",
                               "fault.fsc is null, expected translation",
                               "fault.level is null, expected 2",
                               "fault.hsr is null, expected 0x96000005"]


# 13. The Python layout has every field of the JSON layout, with the same names and values.

@pytest.mark.parametrize("sections", [{}, {"kernel": {"hyp_idmap_offset": 0x1F80}},
                                      {"hyp": {"init": "single-step"}}],
                         ids=["default", "bounced", "single-step"])
def test_the_python_layout_has_the_json_layouts_fields(sections):
    m = machine(**sections)
    result = hypemu.run(scenario(**sections))
    assert m.layout.to_dict() == result.layout
    tramp = m.kernel.design.trampoline
    for name, value in result.layout.items():
        if tramp or not name.startswith("trampoline"):
            assert getattr(m.layout, name) == value, name
    assert m.layout.runtime_pgd == m.kernel.runtime_pgd and m.layout.boot_pgd == m.kernel.boot_pgd
    if "kernel" in sections:   # bounced: the idmap is the bounce page, the image keeps init_start
        assert m.layout.idmap_start == m.layout.bounce_page != m.layout.init_start


# 14. The result types are exported, a Python hazard is its JSON report, reprs are hex, and a
# Translation says whether the TLB or a walk gave it.

def test_the_readme_hazard_example_and_the_exported_types():
    m = hypemu.Machine({"name": "probe", "machine": {"cpus": 2}})
    m.boot()
    m.call(0, "hyp_probe")
    m.remap("runtime", 0xC000B000, 0x82000000, bbm=False)
    [hazard] = m.hazards
    assert isinstance(hazard, hypemu.Hazard) and hazard.kind == "bbm"
    assert repr(hazard).startswith("Hazard(kind='bbm', cpu=None, pc=None, va=0xc000b000, disasm=None")
    assert set(hazard.to_dict()) == {"kind", "cpu", "pc", "va", "disasm", "detail"}
    assert all(getattr(hazard, k) == v for k, v in hazard.to_dict().items())
    assert isinstance(m.layout, hypemu.Layout) and isinstance(m.tables("boot"), hypemu.TableDump)
    for name in ("Hazard", "Layout", "TableDump"):
        assert name in hypemu.__all__


def test_a_guest_hazard_has_the_disassembly_as_in_json():
    result = hypemu.run(scenario(inject=[{"skip": "dsb"}], steps=[
        {"boot": "all"}, {"call": {"cpu": 0, "fn": "hyp_read", "args": [0x80009010]}}]))
    m = machine(inject=[{"skip": "dsb"}])
    m.boot()
    with pytest.raises(hypemu.GuestFault):
        m.call(0, "hyp_read", 0x80009010)
    [hazard] = m.hazards
    assert hazard.disasm == result.hazards[0]["disasm"] == "ldr r0, [r0]"
    assert "pc=0xc000a078, va=0x80009010, disasm='ldr r0, [r0]'" in repr(hazard)


def test_translation_and_fault_reprs_are_hex_and_say_their_source(booted):
    fresh = booted.translate(0, 0xC000B000, "read", pgd="runtime")
    assert fresh.source == "walk"
    assert repr(fresh).startswith("Translation(va=0xc000b000, pa=0x8000b000, level=3, size=0x1000,")
    booted.call(0, "hyp_probe")   # reads the HYP data page: its entry is now in cpu0's TLB
    cached = booted.translate(0, 0xC000B000, "read")
    assert cached.source == "tlb" and cached == fresh   # the source does not make them differ
    assert booted.translate(0, 0xC000B000, "read", pgd="runtime").source == "walk"
    fault = booted.translate(0, 0x80009000, "read", pgd="runtime")
    assert repr(fault).startswith("Fault(type='translation', level=1, va=0x80009000, access='read'")
    from hypemu.cpu.context import FaultRecord
    assert repr(FaultRecord(1, "data_abort", 0xC000A078, 0x80009010, "translation", 1, 0x96000005)) \
        == ("FaultRecord(cpu=1, kind='data_abort', pc=0xc000a078, va=0x80009010, fsc='translation', "
            "level=1, hsr=0x96000005, detail='')")


# 15. A Machine runs the scenario's step-bound injections in run_step/run_steps, and warns when
# it is driven without them.

def test_run_steps_applies_the_remap_and_direct_driving_warns():
    from pathlib import Path
    from hypemu.scenario import load_file
    path = Path(__file__).resolve().parent.parent / "scenarios" / "remap-without-bbm.yaml"
    s = load_file(str(path))
    expected = hypemu.run(s)
    m = hypemu.Machine(s)
    m.run_steps()
    assert [h.kind for h in m.hazards] == [h["kind"] for h in expected.hazards] != []
    assert m.injections == expected.injections and m.calls == expected.calls
    m = hypemu.Machine(s)
    with pytest.warns(hypemu.StepInjectionWarning, match=r"inject\[0\] \(before steps\[\d\]\)"):
        m.boot()
    m.call(0, "hyp_probe"), m.call(0, "hyp_probe")
    assert m.injections == [] and m.hazards == []   # the remap was never applied


def test_run_step_returns_r0_and_no_warning_without_step_bound_injections(recwarn):
    m = machine()
    assert m.run_step(0) is None
    r0 = m.run_step(1)
    assert r0 == m.read32(m.layout.hyp_data) and m.calls == [{"cpu": 0, "fn": "hyp_probe", "r0": r0}]
    m.call(0, "hyp_probe")   # nothing step-bound in this scenario: driving it directly is silent
    assert not [w for w in recwarn if issubclass(w.category, hypemu.StepInjectionWarning)]


# 16. The README's account of the order pytest runs scenario items in is the order they run in.

def test_scenario_items_run_in_the_order_the_readme_gives(pytester):
    pytester.makeini("[pytest]\ntestpaths = tests\nhypemu_scenarios = ci/*.yaml tests/*.yaml\n")
    good = "name: {}\nsteps: [{{boot: all}}]\n"
    for path in ("tests/b.yaml", "ci/a.yaml", "ci/c.yaml"):
        (pytester.path / path).parent.mkdir(exist_ok=True)
        (pytester.path / path).write_text(good.format(Path(path).stem))
    (pytester.path / "tests" / "test_a.py").write_text("def test_a():\n    pass\n")
    (pytester.path / "tests" / "test_c.py").write_text("def test_c():\n    pass\n")
    result = pytester.runpytest("-p", "no:hypothesispytest", "-v")
    result.assert_outcomes(passed=5)
    order = [line.split(" ")[0] for line in result.outlines if " PASSED" in line]
    assert order == ["tests/b.yaml::b", "tests/test_a.py::test_a", "tests/test_c.py::test_c",
                     "ci/a.yaml::a", "ci/c.yaml::c"]
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert ORDER_TEXT in readme


ORDER_TEXT = """\
  Items run in pytest's collection order: a matched file under your test paths where pytest's
  walk of them reaches it (in path order, among your test files), then the matched files outside
  them, in path order."""


def test_an_event_repr_is_hex_too(booted):
    sysreg = next(e for e in booted.events if e.kind == "sysreg" and e.value)
    assert f"pc={sysreg.pc:#x}" in repr(sysreg) and f"value={sysreg.value:#x}" in repr(sysreg)
    assert repr(sysreg).startswith(f"Event(cpu={sysreg.cpu}, ")
