"""The command line as a user runs it: a subprocess, exit codes, output, no tracebacks."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"
BAD = ROOT / "tests" / "bad"


def hypemu(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hypemu.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_default_run_prints_a_summary():
    proc = hypemu("run")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "PASS default: outcome ok" in out
    for word in ("boot pgd", "runtime pgd", "idmap", "trampoline 0xffff0000 ->", "bounce page",
                 "HTTBR=", "HSCTLR=", "SP_hyp=", "hyp_probe -> r0=0x4b564d21", "instructions"):
        assert word in out


def test_default_run_json_is_the_result_object():
    proc = hypemu("run", "--json")
    assert proc.returncode == 0
    result = json.loads(proc.stdout)
    assert set(result) == {"name", "file", "outcome", "expected", "passed", "reason", "fault",
                           "hazards", "cpus", "layout", "calls", "stats", "injections", "isa"}
    assert result["outcome"] == "ok" and result["passed"] is True
    assert set(result["cpus"][0]["hyp"]) >= {"HTTBR", "HTCR", "HSCTLR", "HMAIR0", "HMAIR1", "HVBAR",
                                             "SP_hyp"}
    assert result["cpus"][0]["hyp"]["HTTBR"] == result["layout"]["runtime_pgd"]
    assert set(result["stats"]) >= {"instructions", "tlb_fills", "walks", "hvcs", "seconds"}


def test_trace_prints_one_line_per_event():
    proc = hypemu("run", "--trace")
    lines = [line for line in proc.stdout.splitlines() if re.match(r"  +\d+ cpu0 ", line)]
    assert any("sysreg    HTTBR" in line for line in lines)
    assert any("tlbi      TLBIALLH" in line for line in lines)
    # each line names the guest instruction that did it, disassembled
    httbr = [line for line in lines if "HTTBR = " in line]
    assert httbr and all("mcrr p15, #4, r0, r1, c2" in line for line in httbr)
    assert any("0xffff00" in line and "mcr p15, #4, r0, c8, c7, #0" in line for line in lines)


def test_run_files_reports_each_and_a_total():
    files = [str(SCENARIOS / "default.yaml"), str(SCENARIOS / "trampoline-in-lowmem.yaml")]
    proc = hypemu("run", *files)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "2 passed, 0 failed, 0 errors"


def test_a_batch_on_shared_engines_gives_what_separate_runs_give():
    """`hypemu run A B ...` runs boards of one RAM layout on one reset Unicorn instance
    (engine_pool); every file's JSON is what running that file alone gives (but the seconds)."""
    files = sorted(str(p) for p in SCENARIOS.glob("*.yaml"))
    batch = hypemu("run", "--json", *files)
    alone = [hypemu("run", "--json", f) for f in files]

    def results(out: str) -> list[dict]:
        found = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        for r in found:
            r["stats"].pop("seconds")
        return found
    assert results(batch.stdout) == [r for p in alone for r in results(p.stdout)]
    assert len(results(batch.stdout)) == len(files)


def test_unmet_expectation_exits_1(tmp_path):
    path = tmp_path / "wrong.yaml"
    path.write_text("name: wrong\nhyp:\n  trampoline_va: 0xC0100000\nexpect:\n  outcome: ok\n")
    proc = hypemu("run", str(path))
    assert proc.returncode == 1
    assert "FAIL wrong: outcome config_error (expected ok)" in proc.stdout


def test_invalid_file_exits_2_with_file_line_and_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\nmachine:\n  cpus: 9\n")
    for command in ("run", "validate"):
        proc = hypemu(command, str(path))
        assert proc.returncode == 2
        assert f"{path}:3: machine.cpus:" in proc.stderr
        assert "Traceback" not in proc.stderr + proc.stdout


def test_validate_accepts_the_library():
    proc = hypemu("validate", *map(str, sorted(SCENARIOS.glob("*.yaml"))))
    assert proc.returncode == 0 and proc.stdout.count(": ok") >= 12


def test_every_bad_fixture_is_reported_without_traceback():
    paths = sorted(BAD.glob("*.yaml"))
    proc = hypemu("validate", *map(str, paths))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == len(paths)
    for path, line in zip(paths, lines):
        assert line.startswith(f"hypemu: {path}:"), line


def test_version_and_help():
    proc = hypemu("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("hypemu ")
    assert "instruction budget: " in proc.stdout      # native or count=
    proc = hypemu("run", "--help")
    assert proc.returncode == 0 and "examples:" in proc.stdout


def test_usage_error_exits_2():
    proc = hypemu("frobnicate")
    assert proc.returncode == 2
    proc = hypemu()
    assert proc.returncode == 2


def test_unknown_function_is_an_input_error_with_the_step_line(tmp_path):
    path = tmp_path / "nofn.yaml"
    path.write_text("name: nofn\nsteps:\n  - boot: all\n  - call: {fn: hyp_nonexistent}\n")
    proc = hypemu("run", str(path))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"{path}:4: steps[1].call: no HYP function 'hyp_nonexistent'" in proc.stderr


def test_guest_behaviour_hypemu_does_not_model_is_an_error_not_a_traceback(tmp_path):
    (tmp_path / "svc.S").write_text(
        ".align 5\n.global __kvm_hyp_init\n__kvm_hyp_init:\n b .\n b .\n b .\n b .\n b .\n"
        " b go\n b .\n b .\ngo:\n svc #0\n.global __kvm_hyp_init_end\n__kvm_hyp_init_end:\n")
    path = tmp_path / "svc.yaml"
    path.write_text("name: svc\nhyp:\n  code: svc.S\n")
    proc = hypemu("run", str(path))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "not modelled: cpu0: SVC (supervisor call)" in proc.stderr


def test_output_cut_short_by_the_reader_is_not_a_traceback():
    proc = subprocess.run(f"'{sys.executable}' -m hypemu.cli run --trace scenarios/hotplug-100.yaml | head -1",
                          shell=True, capture_output=True, text=True, cwd=ROOT)
    assert proc.stdout.startswith("PASS hotplug-100")
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr


def test_a_wheel_carries_every_guest_source():
    """asm/ sits outside the package: setup.cfg's data_files must ship all of it, and kvm finds it
    there when there is no source tree (<prefix>/share/hypemu/asm)."""
    import configparser
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    assert cfg["options.data_files"]["share/hypemu/asm"].strip() == "asm/*.S"
    from hypemu import kvm
    used = {kvm.BUILTIN_INIT[k] for k in kvm.BUILTIN_INIT} | {"hyp-runtime.S", "kvm-call.S", "hyp-stub.S"}
    assert used <= {p.name for p in (ROOT / "asm").glob("*.S")}


def test_validate_builds_the_board_without_running_it(tmp_path):
    """An injection that cannot apply is found by validate too; a refused layout is an outcome."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: s\ninject:\n  - skip: hcr\n")
    proc = hypemu("validate", str(bad), str(SCENARIOS / "ram-above-4g.yaml"))
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"hypemu: {bad}:3: inject[0].skip: no 'hcr' instruction in the init or runtime code"
    assert "ram-above-4g.yaml: ok (the kernel side refuses its layout: config_error:" in proc.stdout


def _model_bug(monkeypatch) -> None:
    """A bug inside the model: the TLB raises a ValueError mid-run, as a broken walker would."""
    from hypemu.tlb import TLB

    def broken(self, t, origin=None):
        raise ValueError("internal: the TLB broke (injected by the test)")
    monkeypatch.setattr(TLB, "fill", broken)


def test_a_bug_of_hypemu_exits_3_with_its_traceback(monkeypatch, capsys):
    """A ValueError raised inside the model is not the user's mistake (it used to be printed as
    ``scenarios/hotplug.yaml:11: steps[2].hotplug: internal: ...``, exit 2)."""
    from hypemu.cli import main
    from hypemu.errors import BUG_REPORT
    _model_bug(monkeypatch)
    status = main(["run", str(SCENARIOS / "hotplug.yaml")])
    err = capsys.readouterr().err
    assert status == 3
    assert "Traceback (most recent call last)" in err and "tlb" in err.lower()
    assert "ValueError: internal: the TLB broke (injected by the test)" in err
    assert err.rstrip().endswith(BUG_REPORT)
    assert "hotplug.yaml:" not in err.replace(str(SCENARIOS / "hotplug.yaml"), "")


def test_an_input_error_still_exits_2_in_the_same_process(capsys, tmp_path):
    from hypemu.cli import main
    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\nmachine:\n  cpus: 9\n")
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert err == f"hypemu: {path}:3: machine.cpus: must be 1..8, got 9\n"
