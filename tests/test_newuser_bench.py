"""Regression tests of issue 15 item 17, the benchmark table: no spread for one repeat, each ratio's
baseline named in a footnote, and ``--check`` exiting 1 on a missed target. The suite here is a
throw-away one with constant costs (no timing is asserted, only the table and the exit status)."""

from __future__ import annotations

import pytest

from hypemu import bench
from hypemu.cli import main

SUITE = '''
from hypemu.bench import Case, Target, benchmark


@benchmark("slow", "ms", full={}, quick={}, repeats=3, target=Target("value", "<=", 1.0, "<= 1 ms"),
           baseline="a constant half as costly")
def slow():
    """Costs 2 ms against a baseline of 1 ms."""
    return Case(lambda: 0.002, baseline=lambda: 0.001, figure=lambda cost: cost * 1e3)


@benchmark("fast", "ms", full={}, quick={}, repeats=3, target=Target("value", "<=", 5.0, "<= 5 ms"))
def fast():
    """Costs 1 ms against an unnamed baseline."""
    return Case(lambda: 0.001, baseline=lambda: 0.004, figure=lambda cost: cost * 1e3)
'''


@pytest.fixture
def suite(monkeypatch, tmp_path):
    folder = tmp_path / "benchmarks"
    folder.mkdir()
    (folder / "bench_newuser_for_test.py").write_text(SUITE)
    monkeypatch.setattr(bench, "SUITE_DIR", folder)
    monkeypatch.syspath_prepend(str(folder))


def _lines(capsys):
    return capsys.readouterr().out.splitlines()


def test_one_repeat_prints_no_spread(suite, capsys):
    assert main(["bench", "--quick"]) == 0
    row = next(line for line in _lines(capsys) if line.startswith("slow "))
    assert "%" not in row and "0.0" not in row   # --quick: one repeat, no spread to show
    assert main(["bench"]) == 0
    row = next(line for line in _lines(capsys) if line.startswith("slow "))
    assert row.count("0.0%") == 2                 # three equal repeats: a spread of 0.0%


def test_each_ratio_names_its_baseline_and_the_missed_targets(suite, capsys):
    assert main(["bench"]) == 0                   # a missed target is reported, exit 0 ...
    lines = _lines(capsys)
    foot = lines[lines.index("ratio baselines (each row its own; ratios of different rows do not "
                             "compare):"):]
    assert foot[:3] + foot[4:] == [
        "ratio baselines (each row its own; ratios of different rows do not compare):",
        "  slow                 a constant half as costly",
        "  fast                 the baseline column",
        "targets missed: slow"]
    assert foot[3].startswith("machine speed: a Python loop of 10^6 iterations took ")
    assert "/ its own baseline's (footnote)" in "\n".join(lines[:4])


def test_check_exits_1_on_a_missed_target(suite, capsys):
    assert main(["bench", "--check"]) == 1        # ... and 1 with --check
    assert main(["bench", "--check", "--only", "fast"]) == 0
    assert _lines(capsys)[-1] == "targets: all met"
    assert main(["bench", "--check", "--quick"]) == 0   # --quick judges no target
    assert _lines(capsys)[-1] == "targets: none judged"
