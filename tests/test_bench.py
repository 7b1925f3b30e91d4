"""`hypemu bench`: the suite runs (``--quick``: each benchmark once, tiny sizes) and reports every
figure in the JSON shape of the benchmark issue; ``--only`` filters; usage errors exit 2 with one
line. No timing is asserted: timings live in ``hypemu bench`` and benchmarks/RESULTS.md."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from hypemu import bench, cli

ROOT = Path(__file__).resolve().parent.parent
SUITE = ["init_per_cpu", "hvc_roundtrip", "mmu_loop", "mmu_loop_uncounted", "mmu_loop_checks",
         "count_hook", "count_block_hook", "tlb_fills", "tlb_fills_cold", "walks", "trapped_insns",
         "boot_8cpu", "hotplug_cycles", "scenarios", "rss_8cpu_2g", "sweep_points"]
ROW_KEYS = {"name", "value", "unit", "baseline", "ratio", "repeats", "spread"}
WITH_BASELINE = {"hvc_roundtrip", "mmu_loop", "mmu_loop_uncounted", "mmu_loop_checks", "count_hook",
                 "count_block_hook", "tlb_fills", "tlb_fills_cold", "walks", "trapped_insns",
                 "rss_8cpu_2g", "sweep_points"}


def bench_cli(*args: str) -> int:
    return cli.main(["bench", *args])


@pytest.fixture(scope="module")
def quick(tmp_path_factory) -> dict:
    path = tmp_path_factory.mktemp("bench") / "quick.json"
    assert bench_cli("--quick", "--json", str(path)) == 0
    return json.loads(path.read_text())


def _rows(report: dict) -> dict:
    return {row["name"]: row for row in report["benchmarks"]}


def test_quick_run_reports_every_benchmark_once(quick):
    measured = [row["name"] for row in quick["benchmarks"]]
    unavailable = [entry["name"] for entry in quick["unavailable"]]
    assert sorted(measured + unavailable) == sorted(SUITE)
    # the hazard checks are not built yet: that benchmark says so instead of inventing a figure
    for entry in quick["unavailable"]:
        assert entry["name"] == "mmu_loop_checks" and "hazard checks" in entry["reason"]


def test_every_figure_is_present_finite_and_positive(quick):
    for row in quick["benchmarks"]:
        assert ROW_KEYS <= set(row), row["name"]
        assert row["repeats"] == 1 and row["spread"] == 0.0
        assert row["unit"] and isinstance(row["unit"], str)
        figures = [row["value"]] + ([row["baseline"], row["ratio"]] if row["name"] in WITH_BASELINE
                                    else [])
        for figure in figures:
            assert isinstance(figure, float) and math.isfinite(figure) and figure > 0, row
        if row["name"] not in WITH_BASELINE:
            assert row["baseline"] is None and row["ratio"] is None
        assert row["met"] is None   # --quick sizes are not judged against the targets


def test_rows_say_what_they_measured(quick):
    rows = _rows(quick)
    assert rows["tlb_fills"]["detail"].startswith("19 fills and 0 walks per call (16 pages")
    assert rows["tlb_fills_cold"]["detail"].startswith("19 fills and 16 walks per call")
    assert rows["init_per_cpu"]["target"] == "<= 0.3 ms"
    assert rows["mmu_loop"]["target"] == "ratio <= 1.5"
    # simulated RAM is not committed up front: an 8-CPU 2 GiB board stays far below 2 GiB
    assert rows["rss_8cpu_2g"]["value"] < 1000


def test_machine_block_names_the_host_and_the_run(quick):
    m = quick["machine"]
    assert {"cpu", "logical_cpus", "python", "unicorn", "hypemu", "budget", "command",
            "quick"} <= set(m)
    assert m["budget"].startswith(("native", "count="))
    assert m["quick"] is True and m["unicorn"].startswith("2.1")
    assert m["command"].startswith("hypemu bench --quick --json ")
    start, end = m["python_loop_ms"]             # the machine's Python speed, start and end
    assert 0 < start < 10_000 and 0 < end < 10_000


def test_only_runs_the_named_benchmarks_in_suite_order(tmp_path, capsys):
    path = tmp_path / "only.json"
    assert bench_cli("--quick", "--only", "walks", "init_per_cpu", "--json", str(path)) == 0
    report = json.loads(path.read_text())
    assert [row["name"] for row in report["benchmarks"]] == ["init_per_cpu", "walks"]
    table = capsys.readouterr().out
    assert "init_per_cpu" in table and "walks" in table and "hvc_roundtrip" not in table


def test_json_to_stdout_keeps_the_table_on_stderr(capsys):
    assert bench_cli("--quick", "--only", "walks", "--json", "-") == 0
    captured = capsys.readouterr()
    assert [row["name"] for row in json.loads(captured.out)["benchmarks"]] == ["walks"]
    assert "walks/s" in captured.err


def test_unknown_benchmark_is_a_usage_error_listing_the_known(capsys):
    assert bench_cli("--only", "walks", "warp_speed") == 2
    err = capsys.readouterr().err
    assert err.startswith("hypemu: unknown benchmark 'warp_speed' (known: init_per_cpu, ")
    assert "rss_8cpu_2g" in err and len(err.strip().splitlines()) == 1


def test_json_into_a_missing_directory_is_refused_before_running(tmp_path, capsys):
    assert bench_cli("--quick", "--json", str(tmp_path / "no" / "such.json")) == 2
    captured = capsys.readouterr()
    assert "does not exist" in captured.err and "init_per_cpu" not in captured.out


def test_missing_suite_is_one_clear_line(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(bench, "SUITE_DIR", tmp_path / "benchmarks")
    assert bench_cli("--quick") == 2
    err = capsys.readouterr().err
    assert "the benchmark suite is not at" in err and "pip install -e ." in err
    assert "Traceback" not in err


def test_list_names_every_benchmark(capsys):
    assert bench_cli("--list") == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert names == SUITE


def test_bad_options_exit_2_without_a_traceback():
    for args in (["--bogus"], ["--only"], ["--json"]):
        proc = subprocess.run([sys.executable, "-m", "hypemu.cli", "bench", *args], cwd=ROOT,
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2, args
        assert "usage: hypemu" in proc.stderr and "error:" in proc.stderr
        assert "Traceback" not in proc.stderr


def test_a_suite_file_runs_on_its_own():
    """Issue 5's script: the whole-board benchmarks run as `python benchmarks/bench_machine.py`."""
    proc = subprocess.run([sys.executable, "benchmarks/bench_machine.py", "--quick", "--only",
                           "hotplug_cycles", "--json", "-"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)["benchmarks"]
    assert [row["name"] for row in rows] == ["hotplug_cycles"] and rows[0]["unit"] == "cycles/s"


BROKEN_SUITE = '''
from hypemu.bench import Case, benchmark


@benchmark("fine", "ms", full={}, quick={})
def fine():
    """Measures a constant."""
    return Case(lambda: 0.001)


@benchmark("broken", "ms", full={}, quick={})
def broken():
    """Fails in its set-up."""
    raise ValueError("the board refused")
'''


def test_a_failing_benchmark_is_reported_and_the_others_still_run(monkeypatch, tmp_path, capsys):
    suite = tmp_path / "benchmarks"
    suite.mkdir()
    (suite / "bench_broken_for_test.py").write_text(BROKEN_SUITE)
    monkeypatch.setattr(bench, "SUITE_DIR", suite)
    monkeypatch.syspath_prepend(str(suite))   # undone afterwards, with load_suite's own insertion
    out = tmp_path / "out.json"
    assert bench_cli("--quick", "--json", str(out)) == 1
    report = json.loads(out.read_text())
    assert [row["name"] for row in report["benchmarks"]] == ["fine"]
    [failed] = report["failed"]
    assert failed["name"] == "broken"
    assert failed["error"].startswith("ValueError: the board refused (bench_broken_for_test.py:")
    assert "broken               FAILED: ValueError: the board refused" in capsys.readouterr().out
