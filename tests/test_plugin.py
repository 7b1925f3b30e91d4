"""The pytest plugin (hypemu/pytest_plugin/), run on throw-away projects with pytest's pytester:
collection from the ini and command-line option, the failure report, errors kept apart from
failures, pytest-xdist, the fixtures, and that a project without scenarios does not pay for them."""

from __future__ import annotations

import textwrap
from importlib.metadata import entry_points
from pathlib import Path

import pytest

import hypemu

pytest_plugins = ["pytester"]

GOOD = """\
    name: good
    steps:
      - boot: all
      - call: {fn: hyp_probe}
    """
# The init code crosses a page and the bounce page is off: phase 2 jumps into the wrong page and
# takes an undefined-instruction exception (scenarios/no-bounce-page.yaml), but this file expects ok.
BAD = """\
    name: bad
    description: expects ok, but HYP init faults
    kernel:
      hyp_idmap_offset: 0x1F80
    hyp:
      bounce_page: never
    expect:
      outcome: ok
    """


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """pytest in this process. Without hypothesis's plugin: its report header imports hypothesis,
    and pytester drops what an inline run imported, so every run would import it again."""
    return pytester.runpytest("-p", "no:hypothesispytest", *args)


def _project(pytester: pytest.Pytester, ini: str = "scenarios/*.yaml", **files: str) -> None:
    pytester.makeini(f"[pytest]\nhypemu_scenarios = {ini}\n")
    for name, text in {"good": GOOD, "bad": BAD, **files}.items():
        path = pytester.path / "scenarios" / f"{name}.yaml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(textwrap.dedent(text))


def test_the_plugin_is_registered_under_pytest11():
    found = {e.name: e.value for e in entry_points(group="pytest11")}
    assert found.get("hypemu") == "hypemu.pytest_plugin"


def test_ini_option_one_scenario_passes_one_fails(pytester):
    _project(pytester)
    result = _run(pytester, "-v")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "scenarios/bad.yaml::bad FAILED*",
        "scenarios/good.yaml::good PASSED*",
        "*_ scenario bad _*",
        "outcome fault, expected ok",                    # actual and expected, first
        "*reason: undefined during HYP init phase 2*",
        "*fault: cpu0 undefined pc=0xffff003c*",
        "*expectation: scenarios/bad.yaml:8 (expect.outcome)",
        "*last 12 of * events:",
        "*0xffff003c udf #0xdea0 * exception undefined*",  # the last event: where it went wrong
        "FAILED scenarios/bad.yaml::bad - Failed: outcome fault, expected ok",
    ])


def test_a_mismatched_fault_detail_is_named(pytester):
    _project(pytester, bad=BAD.replace("outcome: ok", "outcome: fault\n      fault: {hsr: 0x1234}"))
    result = _run(pytester)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*fault.hsr is 0x2000000, expected 0x1234*"])


def test_user_init_code_is_found_next_to_its_scenario(pytester):
    library = Path(__file__).resolve().parent.parent / "scenarios"
    target = pytester.path / "hyp" / "v3.10"
    target.mkdir(parents=True)
    for name in ("kernel-style-init.yaml", "kernel-style-init.S"):
        (target / name).write_text((library / name).read_text())
    pytester.makeini("[pytest]\nhypemu_scenarios = hyp/**/*.yaml\n")
    _run(pytester).assert_outcomes(passed=1)


def test_command_line_option_overrides_the_ini_option(pytester):
    _project(pytester)
    _run(pytester, "--hypemu-scenarios", "scenarios/good.yaml").assert_outcomes(passed=1)
    _run(pytester, "--hypemu_scenarios", "scenarios/bad.yaml").assert_outcomes(failed=1)
    _run(pytester, "--hypemu-scenarios", "").assert_outcomes()   # an empty override: none


def test_several_globs_in_one_value_and_recursive_globs(pytester):
    _project(pytester, ini="scenarios/good.yaml  more/**/*.yaml")
    (pytester.path / "more" / "deep").mkdir(parents=True)
    (pytester.path / "more" / "deep" / "other.yaml").write_text(
        textwrap.dedent(GOOD).replace("name: good", "name: other"))
    result = _run(pytester, "-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["more/deep/other.yaml::other PASSED*",      # in pytest's walk order
                                 "scenarios/good.yaml::good PASSED*"])


def test_scenarios_outside_testpaths_run_with_the_tests(pytester):
    _project(pytester)
    pytester.makeini("[pytest]\ntestpaths = tests\nhypemu_scenarios = scenarios/good.yaml\n")
    pytester.mkdir("tests")
    (pytester.path / "tests" / "test_one.py").write_text("def test_one():\n    pass\n")
    _run(pytester).assert_outcomes(passed=2)
    # explicit paths are what the user asked for: no scenario is added to them
    _run(pytester, "tests").assert_outcomes(passed=1)
    _run(pytester, "scenarios").assert_outcomes(passed=1)        # good.yaml, not bad.yaml


def test_a_glob_matching_nothing_is_a_usage_error(pytester):
    _project(pytester, ini="scenarios/*.yml")
    result = _run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: hypemu_scenarios: 'scenarios/*.yml' matches no file*"])


def test_an_invalid_file_is_a_collection_error_of_one_line(pytester):
    _project(pytester, broken="name: broken\nmachine:\n  cpus: 9\n")
    result = _run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*ERROR collecting scenarios/broken.yaml*",
                                 "hypemu: scenarios/broken.yaml:3: machine.cpus: must be 1..8, got 9"])
    assert "Traceback" not in result.stdout.str()


def test_input_that_breaks_when_run_is_an_error_not_a_failure(pytester):
    _project(pytester, nofn="name: nofn\nsteps:\n  - boot: all\n  - call: {fn: hyp_nope}\n")
    result = _run(pytester, "--hypemu-scenarios", "scenarios/nofn.yaml")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*ERROR at setup of scenario nofn*",
                                 "hypemu: scenarios/nofn.yaml:4: steps[[]1].call: no HYP function "
                                 "'hyp_nope' in the runtime code*"])
    out = result.stdout.str()
    assert "Traceback" not in out and "During handling" not in out


def test_runs_under_xdist(pytester):
    _project(pytester)
    result = _run(pytester, "-n", "2")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*2 workers*", "outcome fault, expected ok",
                                 "FAILED scenarios/bad.yaml::bad*"])


def test_a_project_without_scenarios_does_not_load_the_simulator(pytester):
    """pytest imports the plugin everywhere hypemu is installed; without hypemu_scenarios that must
    cost no more than the plugin module itself (in a fresh process, so nothing is imported yet)."""
    pytester.makepyfile(test_light="""
        import sys

        def test_only_the_plugin_is_loaded():
            assert "hypemu.pytest_plugin" in sys.modules
            heavy = {"unicorn", "capstone", "keystone", "yaml", "hypemu.machine", "hypemu.result",
                     "hypemu.scenario", "hypemu.pytest_plugin.collect"}
            assert heavy.isdisjoint(sys.modules)
    """)
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


# --- fixtures ---------------------------------------------------------------------------------------

def test_hypemu_machine_boots_by_default(hypemu_machine):
    m = hypemu_machine({"name": "two", "machine": {"cpus": 2}})
    assert isinstance(m, hypemu.Machine)
    assert m.booted == {0, 1}
    assert m.call(1, "hyp_probe") == m.read32(m.layout.hyp_data)


def test_hypemu_machine_can_leave_the_board_unbooted(hypemu_machine):
    m = hypemu_machine(boot=False)
    assert m.scenario.name == "default" and m.booted == set()
    with pytest.raises(ValueError, match="has not been booted"):
        m.call(0, "hyp_probe")


def test_hypemu_machine_looks_up_relative_paths_in_the_scenario_dir(hypemu_machine,
                                                                    hypemu_scenario_dir):
    assert hypemu_scenario_dir == Path(__file__).resolve().parent.parent   # the rootdir
    m = hypemu_machine("scenarios/two-banks.yaml", boot=False)
    assert len(m.scenario.banks) == 2


def test_scenario_dir_from_the_ini_option(pytester):
    _project(pytester)
    pytester.makeini("[pytest]\nhypemu_scenario_dir = scenarios\n")
    pytester.makepyfile(test_dir="""
        def test_dir(hypemu_machine, hypemu_scenario_dir, pytestconfig):
            assert hypemu_scenario_dir == pytestconfig.rootpath / "scenarios"
            assert hypemu_machine("good.yaml").scenario.name == "good"
    """)
    _run(pytester).assert_outcomes(passed=1)


def test_hypemu_machine_releases_its_boards_after_the_test(pytester):
    """With the automatic collector off, only the fixture's teardown can free a board (its CPUs
    and Unicorn instance refer to each other)."""
    pytester.makepyfile(test_release="""
        import gc
        import weakref

        engines = []

        def test_make(hypemu_machine):
            gc.disable()
            m = hypemu_machine(boot=False)
            engines.append(weakref.ref(m.core.engine.uc))

        def test_released():
            try:
                assert engines and engines[0]() is None
            finally:
                gc.enable()
    """)
    _run(pytester).assert_outcomes(passed=2)


def test_a_bug_of_hypemu_is_an_error_with_its_traceback(pytester, monkeypatch):
    """Not an input error in one line: an ERROR at setup, with the traceback and a bug report line."""
    from hypemu.tlb import TLB

    def broken(self, t, origin=None):
        raise ValueError("internal: the TLB broke (injected by the test)")
    monkeypatch.setattr(TLB, "fill", broken)
    _project(pytester)
    result = _run(pytester, "--hypemu-scenarios", "scenarios/good.yaml")
    result.assert_outcomes(errors=1)
    out = result.stdout.str()
    assert "ERROR at setup of scenario good" in out
    assert "ValueError: internal: the TLB broke (injected by the test)" in out
    assert "InternalError: internal error: this is a bug in hypemu" in out
    assert "hypemu: scenarios/good.yaml" not in out     # not worded as the user's mistake
