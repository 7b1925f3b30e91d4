"""``hypemu crosscheck``: every shipped scenario on QEMU (qemu-system-arm) next to hypemu, a wrong
model value caught as a disagreement, the boards QEMU cannot host, the allowed differences, the
driver's encodings, and the command without QEMU. Tests that need QEMU skip without it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import hypemu
from hypemu import cp15
from hypemu.export import Action, Export
from hypemu.qemu import allowed, crosscheck, driver, launch, report
from hypemu.qemu.gdbremote import _unescape

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))
QEMU = shutil.which("qemu-system-arm")
needs_qemu = pytest.mark.skipif(QEMU is None, reason="qemu-system-arm is not installed "
                                "(Debian package qemu-system-arm)")
NOT_COMPARABLE = {
    "idmap-crosses-trampoline": "the kernel side refused the layout",
    "ram-above-4g": "the kernel side refused the layout",
    "trampoline-in-lowmem": "the kernel side refused the layout",
    "two-banks": "QEMU virt has RAM only in [0x40000000, 4 GiB)",
}


def _check(path: Path) -> crosscheck.Crosscheck:
    assert QEMU is not None
    result, _ = crosscheck.hypemu_side(str(path))
    return crosscheck.qemu_side(QEMU, str(path), result)


@needs_qemu
def test_every_shipped_scenario_agrees_with_qemu():
    with ThreadPoolExecutor(max_workers=4) as pool:
        checks = list(pool.map(_check, SCENARIOS))
    verdicts = {c.name: c.verdict for c in checks}
    refused = {c.name: c.reason for c in checks if c.verdict == "not comparable"}
    assert set(refused) == set(NOT_COMPARABLE), refused
    for name, why in NOT_COMPARABLE.items():
        assert why in (refused[name] or "")
    bad = [report.text(c) for c in checks if c.verdict == "disagree"]
    assert not bad, "\n".join(bad)
    assert sum(v == "agree" for v in verdicts.values()) == len(SCENARIOS) - len(NOT_COMPARABLE)
    by_name = {c.name: c for c in checks}
    # where hypemu names a hazard, the output says what QEMU did instead
    stale = by_name["single-step-stale-idmap"].comparison.hazards
    assert stale and "QEMU served the stale TLB entry too" in stale[0]
    assert "returned 0xeafffffe with no fault" in stale[0]
    # the allowed differences are named where they apply, and only there
    assert any("HSR.IL" in n for n in by_name["no-bounce-page"].comparison.allowed)
    assert any("ISV/SAS/SRT" in n for n in by_name["idmap-gone-after-init"].comparison.allowed)
    assert not by_name["default"].comparison.allowed
    hotplug = {r.what: r for r in by_name["hotplug-100"].comparison.rows}
    assert hotplug["r0 of 412 HVCs"].agree == "yes"


@needs_qemu
def test_every_shipped_scenario_built_for_thumb2_agrees_with_qemu(tmp_path):
    """The Thumb-2 builds (kernel.isa: thumb2) against QEMU's own Thumb-state HYP: every HVC's r0,
    HSCTLR with TE, ELR_hyp and SPSR_hyp with T agree; a 16-bit Thumb load's data abort shows the
    one allowed difference of its syndrome."""
    import yaml
    paths = []
    for path in SCENARIOS:
        data = yaml.safe_load(path.read_text())
        for step in data.get("steps", []):        # safe_load reads `state: off` as False; say it
            if isinstance(step.get("hotplug"), dict) and isinstance(step["hotplug"].get("state"), bool):
                step["hotplug"]["state"] = "on" if step["hotplug"]["state"] else "off"
        data.setdefault("kernel", {})["isa"] = "thumb2"
        if data.get("hyp", {}).get("code", "builtin") != "builtin":
            data["hyp"]["code"] = str(path.parent / data["hyp"]["code"])
        (tmp_path / path.name).write_text(yaml.safe_dump(data))
        paths.append(tmp_path / path.name)
    with ThreadPoolExecutor(max_workers=4) as pool:
        checks = list(pool.map(_check, paths))
    refused = {c.name for c in checks if c.verdict == "not comparable"}
    assert refused == set(NOT_COMPARABLE)
    bad = [report.text(c) for c in checks if c.verdict == "disagree"]
    assert not bad, "\n".join(bad)
    by_name = {c.name: c for c in checks}
    assert any("16-bit Thumb load" in n
               for n in by_name["idmap-gone-after-init"].comparison.allowed)


@needs_qemu
def test_a_wrong_reset_value_in_the_model_is_a_disagreement(monkeypatch):
    right = cp15.reset_values

    def wrong(cpu_id: int) -> dict[str, int]:
        values = right(cpu_id)
        values["HSCTLR"] |= 1 << 9          # a reserved bit the HYP init keeps, set by mistake
        # (not a RES1 bit dropped: those read as one whatever the reset value, cp15.HSCTLR_RES1)
        return values

    monkeypatch.setattr(cp15, "reset_values", wrong)
    check = _check(ROOT / "scenarios" / "default.yaml")
    assert check.verdict == "disagree"
    rows = {r.what: r for r in check.comparison.rows}
    assert rows["cpu0 HSCTLR"].agree == "no"
    assert (rows["cpu0 HSCTLR"].hypemu, rows["cpu0 HSCTLR"].qemu) == ("0x30c51a1f", "0x30c5181f")
    assert rows["cpu0 HTTBR"].agree == "yes"


def _export(banks: tuple[tuple[int, int], ...], cpus: int,
            actions: tuple[Action, ...] = ()) -> Export:
    return Export(cpus, banks, (), actions)


def test_boards_qemu_cannot_host_are_not_comparable_with_the_reason():
    virt = launch.choose_board(_export(((0x80000000, 1 << 30),), 4))
    assert virt.name == "virt" and "-smp" in virt.options and "2048M" in virt.options
    assert virt.driver_pa == 0xBFFFF000
    assert launch.choose_board(_export(((0, 256 << 20),), 1)).name == "none"
    cases = [(((0, 256 << 20),), 2, "RAM at PA 0 runs only on QEMU's -M none"),
             (((0x800000000, 1 << 30),), 1, "QEMU virt has RAM only in [0x40000000, 4 GiB)"),
             (((0x10000000, 1 << 30),), 1, "QEMU virt has RAM only in [0x40000000, 4 GiB)")]
    for banks, cpus, why in cases:
        with pytest.raises(launch.NotComparable, match=r".*") as err:
            launch.choose_board(_export(banks, cpus))
        assert why in err.value.reason
    with pytest.raises(launch.NotComparable, match="no PSCI"):
        launch.choose_board(_export(((0, 256 << 20),), 1, (Action("power_off", 0),)))


def test_allowed_differences_are_exactly_the_named_bits():
    pabt, undef, dabt = 0x86000005, 0x02000000, 0x96000005
    assert "HSR.IL" in (allowed.allowed("HSR", pabt, pabt & ~(1 << 25)) or "")
    assert "HSR.IL" in (allowed.allowed("HSR", undef, 0) or "")
    assert "ISV/SAS/SRT" in (allowed.allowed("HSR", dabt, 0x97800005) or "")
    assert allowed.allowed("HSR", dabt, dabt & ~(1 << 25)) is None     # IL of a data abort: no
    # a 16-bit Thumb load (idmap-gone-after-init as thumb2): QEMU fills the syndrome, IL = 0
    assert "16-bit Thumb load" in (allowed.allowed("HSR", 0x96000005, 0x95800005) or "")
    assert allowed.allowed("HSR", pabt, pabt ^ 1) is None              # the FSC: never
    assert allowed.allowed("HSR", 0x97800005, 0x96000005) is None      # hypemu with ISV=1: no
    assert allowed.allowed("HSCTLR", 0x30C5181F, 0x30C5181E) is None


@pytest.mark.skipif(shutil.which("arm-linux-gnueabihf-as") is None,
                    reason="GNU as for ARM is not installed (binutils-arm-linux-gnueabihf)")
def test_driver_encodings_are_what_gnu_as_makes(tmp_path):
    words = {"mrs r0, ELR_hyp": driver.MRS_R0_ELR_HYP, "mrs r1, SPSR": driver.MRS_R1_SPSR,
             "smc #0": driver.SMC_0, "isb": driver.ISB, "b .": driver.B_SELF,
             "movw r3, #0xbeef": driver.movw(3, 0xBEEF), "movt r0, #0x30c5": driver.movt(0, 0x30C5),
             "mcr p15, 4, r0, c1, c0, 0": driver.mcr("HSCTLR", 0),
             "mcr p15, 4, r0, c2, c1, 2": driver.mcr("VTCR", 0),
             "mcr p15, 0, r0, c10, c2, 1": driver.mcr("MAIR1", 0),
             "mcr p15, 0, r0, c2, c0, 2": driver.mcr("TTBCR", 0)}
    src = tmp_path / "d.s"
    src.write_text("".join(f"{line}\n" for line in words))
    subprocess.run(["arm-linux-gnueabihf-as", "-march=armv7ve", "-o", str(tmp_path / "d.o"),
                    str(src)], check=True)
    subprocess.run(["arm-linux-gnueabihf-objcopy", "-O", "binary", "-j", ".text",
                    str(tmp_path / "d.o"), str(tmp_path / "d.bin")], check=True)
    code = (tmp_path / "d.bin").read_bytes()
    got = [int.from_bytes(code[i:i + 4], "little") for i in range(0, len(code), 4)]
    assert got == list(words.values())


def test_gdb_replies_are_unescaped():
    assert _unescape(b"ab}\x03c") == b"ab#c"         # '}' then byte ^ 0x20
    assert _unescape(b"0* ") == b"0000"              # run-length: ' ' is 32 - 29 = 3 repeats


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hypemu.cli", "crosscheck", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, env=env)


def test_without_qemu_the_command_names_the_debian_package():
    proc = _cli("--qemu", "/nonexistent/qemu-system-arm", "scenarios/default.yaml")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "install the Debian package qemu-system-arm" in proc.stderr
    env = dict(os.environ, PATH=str(Path(sys.executable).parent))     # no qemu on this PATH
    proc = _cli("scenarios/default.yaml", env=env)
    assert proc.returncode == 2 and "no qemu-system-arm on PATH" in proc.stderr


@needs_qemu
def test_the_command_prints_the_table_and_exits_by_the_verdict():
    proc = _cli("scenarios/default.yaml", "scenarios/two-banks.yaml", "--jobs", "2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "cpu0 HSCTLR    0x30c5181f" in out and "verdict: agree" in out
    assert "two-banks): not comparable: RAM [0x80000000, 0xa0000000)" in out
    assert "crosscheck: 1 agree, 0 disagree, 1 not comparable" in out
    proc = _cli("scenarios/idmap-gone-after-init.yaml", "--json")
    assert proc.returncode == 0
    obj = json.loads(proc.stdout)
    assert obj["verdict"] == "agree" and obj["allowed"]
    rows = {r["what"]: r for r in obj["rows"]}
    assert rows["cpu0 HSR"] == {"what": "cpu0 HSR", "hypemu": "0x96000005", "qemu": "0x97800005",
                                "agree": "allowed", "note": obj["allowed"][0]}


def test_bad_input_is_one_line_exit_2():
    proc = _cli("tests/bad/does-not-exist.yaml", "--qemu", sys.executable)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("hypemu: ")


pytest_plugins = ["pytester"]

TWO_BANKS = """\
name: far
machine:
  cpus: 2
  ram: [{base: 0x80000000, size: 512MiB}, {base: 0x880000000, size: 1GiB}]
"""


def _plugin_project(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nhypemu_scenarios = s/*.yaml\n")
    (pytester.path / "s").mkdir()
    (pytester.path / "s" / "good.yaml").write_text(
        "name: good\nsteps:\n  - boot: all\n  - call: {fn: hyp_probe}\n")
    (pytester.path / "s" / "far.yaml").write_text(TWO_BANKS)


@needs_qemu
def test_the_plugin_crosschecks_each_scenario_as_an_item(pytester):
    _plugin_project(pytester)
    result = pytester.runpytest("-p", "no:hypothesispytest", "-v", "-rs", "--hypemu-crosscheck")
    result.assert_outcomes(passed=3, skipped=1)
    result.stdout.fnmatch_lines(["s/far.yaml::far[[]crosscheck[]] SKIPPED*",
                                 "s/good.yaml::good[[]crosscheck[]] PASSED*",
                                 "*not comparable: RAM [[]0x80000000, 0xa0000000)*"])


def test_the_plugin_skips_the_crosscheck_without_qemu(pytester):
    _plugin_project(pytester)
    result = pytester.runpytest("-p", "no:hypothesispytest", "-rs", "--hypemu-crosscheck",
                                "--hypemu-qemu", "/nonexistent/qemu-system-arm")
    result.assert_outcomes(passed=2, skipped=2)
    result.stdout.fnmatch_lines(["*install the Debian package qemu-system-arm*"])
    pytester.runpytest("-p", "no:hypothesispytest").assert_outcomes(passed=2)   # off by default


@needs_qemu
def test_the_readme_example_is_what_the_command_prints():
    readme = (ROOT / "README.md").read_text()
    block = readme.split("```\n$ hypemu crosscheck ", 1)[1].split("```", 1)[0]
    command, expected = block.split("\n", 1)
    proc = _cli(*command.split())
    assert proc.returncode == 0
    assert proc.stdout == expected


def test_a_hazard_excuses_only_the_differences_of_its_cpu():
    from hypemu.qemu.compare import Row, _excuse

    def rows() -> list[Row]:
        return [Row("outcome", "a", "b", "no", cpu=0), Row("r0 of 2 HVCs", "2", "1", "no"),
                Row("hvc[3] cpu0 () r0", "0x1", "0x2", "no", cpu=0),
                Row("cpu1 HSR", "0x1", "0x2", "no", cpu=1), Row("cpu0 HSR", "0x1", "0x2", "no", cpu=0)]

    got = rows()
    _excuse(got, [{"kind": "stale_tlb", "cpu": 0}])
    assert [r.agree for r in got] == ["hazard", "hazard", "hazard", "no", "hazard"]
    got = rows()
    _excuse(got, [{"kind": "stale_tlb", "cpu": 1}])
    assert [r.agree for r in got] == ["no", "no", "no", "hazard", "no"]
    got = rows()
    _excuse(got, [{"kind": "bbm", "cpu": None}])      # the kernel side's: any CPU may see it
    assert {r.agree for r in got} == {"hazard"}
