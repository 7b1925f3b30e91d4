"""The output of a sweep survives what happens to sweeps: rows the same whatever -j, a rerun that
skips what is done, a torn last line, ``kill -9`` at a moment nobody chose, Ctrl-C; CSV and
Parquet hold the same rows as JSON lines."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import hypemu
from hypemu.sweep import Sweep, load_sweep
from hypemu.sweep.output import OutputError, RowFile

ROOT = Path(__file__).resolve().parent.parent
# ~200 points, a few of every kind: ok, bounce, refusals, invalid
SWEEP = """name: out-test
base: {file: %s}
axes:
  machine.ram.base: [0x40000000, 0x80000000, 0x100000000]
  machine.ram.size: {range: [16MiB, 1GiB], scale: log2}
  kernel.hyp_idmap_offset: [0x1000, 0x1FE0, 0x800]
  hyp.trampoline_va: [0xFFFF0000, 0xC8000000, 0xFFFF0800]
""" % (ROOT / "scenarios" / "default.yaml")


@pytest.fixture()
def sweep_file(tmp_path: Path) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(SWEEP)
    return path


def _by_point(rows: Any) -> dict[str, dict[str, Any]]:
    out = {}
    for row in rows:
        assert row["point"] not in out, "a point twice"
        out[row["point"]] = row
    return out


def _jsonl(path: Path) -> dict[str, dict[str, Any]]:
    data = path.read_bytes()
    assert data.endswith(b"\n")
    return _by_point(json.loads(line) for line in data.decode().splitlines())


@pytest.fixture()
def reference(sweep_file: Path) -> dict[str, dict[str, Any]]:
    """The rows of an uninterrupted run in this process."""
    return _by_point(hypemu.sweep(str(sweep_file)))


def test_rows_are_the_same_whatever_jobs(sweep_file: Path, reference: dict[str, Any]) -> None:
    assert len(reference) == load_sweep(str(sweep_file)).grid_size
    assert {r["outcome"] for r in reference.values()} >= {"ok", "config_error", "invalid"}
    assert _by_point(hypemu.sweep(str(sweep_file), jobs=2)) == reference


def test_a_rerun_skips_the_points_done_and_adds_the_rest(sweep_file: Path, tmp_path: Path,
                                                         reference: dict[str, Any]) -> None:
    out = tmp_path / "rows.jsonl"
    first = hypemu.sweep(str(sweep_file), out=str(out))
    taken = [next(first) for _ in range(50)]
    first.close()                                  # the API's consumer stops early
    assert _jsonl(out) == _by_point(taken)
    job = Sweep(load_sweep(str(sweep_file)), str(out))
    assert job.old == 50 and len(job.todo) == len(reference) - 50
    assert _by_point(job.rows()) == reference
    assert _jsonl(out) == reference
    again = Sweep(load_sweep(str(sweep_file)), str(out), jobs=2)
    assert again.todo == [] and _by_point(again.rows()) == reference


def test_a_torn_last_line_is_cut_off_and_its_point_runs_again(sweep_file: Path, tmp_path: Path,
                                                              reference: dict[str, Any]) -> None:
    out = tmp_path / "rows.jsonl"
    rows = list(reference.values())[:10]
    whole = b"".join((json.dumps(r) + "\n").encode() for r in rows[:9])
    out.write_bytes(whole + (json.dumps(rows[9]) + "\n").encode()[:37])
    assert _by_point(hypemu.sweep(str(sweep_file), out=str(out))) == reference
    assert _jsonl(out) == reference


def test_an_output_of_another_sweep_is_refused(sweep_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "rows.jsonl"
    out.write_text('{"point": "x", "outcome": "ok"}\n')
    with pytest.raises(OutputError, match=r"rows.jsonl:1: a row of another sweep"):
        list(hypemu.sweep(str(sweep_file), out=str(out)))
    out.write_text("garbage\n")
    with pytest.raises(OutputError, match=r"rows.jsonl:1: not a JSON row"):
        RowFile(str(out), ["point"])


def _cli(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "hypemu.cli", "sweep", *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
                            start_new_session=True)   # its own group: its workers die with it


def _wait_for_rows(out: Path, at_least: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if out.exists() and out.read_bytes().count(b"\n") >= at_least:
            return
        time.sleep(0.005)
    pytest.fail("the sweep ended (or hung) before it wrote the rows expected")


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_kill_9_mid_sweep_loses_no_row_and_a_rerun_completes_it(
        sweep_file: Path, tmp_path: Path, reference: dict[str, Any], jobs: str) -> None:
    out = tmp_path / "rows.jsonl"
    for kill_at in (20, 90):                       # killed twice, then run to the end
        proc = _cli([str(sweep_file), "-j", jobs, "--out", str(out)], tmp_path)
        _wait_for_rows(out, kill_at, proc)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.communicate()
        kept = out.read_bytes()
        lines = kept.split(b"\n")
        for line in lines[:-1]:                    # every whole line is a finished row
            row = json.loads(line)
            assert reference[row["point"]] == row
        assert len(lines) - 1 < len(reference)
    done = _cli([str(sweep_file), "-j", jobs, "--out", str(out)], tmp_path)
    stdout, stderr = done.communicate(timeout=120)
    assert done.returncode == 0, stderr
    assert "already in the output" in stdout
    assert _jsonl(out) == reference


def test_ctrl_c_stops_with_the_rows_done_written(sweep_file: Path, tmp_path: Path,
                                                 reference: dict[str, Any]) -> None:
    out = tmp_path / "rows.jsonl"
    proc = _cli([str(sweep_file), "-j", "2", "--out", str(out)], tmp_path)
    _wait_for_rows(out, 30, proc)
    os.kill(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "interrupted:" in stderr
    assert stdout.startswith("sweep out-test: ")   # the summary of the rows done
    written = _jsonl(out)
    assert written and all(reference[p] == row for p, row in written.items())


def test_csv_holds_the_same_rows_and_resumes(sweep_file: Path, tmp_path: Path,
                                             reference: dict[str, Any]) -> None:
    out = tmp_path / "rows.csv"
    first = hypemu.sweep(str(sweep_file), out=str(out))
    for _ in range(25):
        next(first)
    first.close()
    header = out.read_text().splitlines()[0]
    assert header.startswith("point,index,machine.ram.base,machine.ram.size,")
    assert _by_point(hypemu.sweep(str(sweep_file), out=str(out))) == reference
    assert out.read_text().count("\n") == len(reference) + 1


@pytest.mark.skipif(importlib.util.find_spec("pyarrow") is None,
                    reason="pyarrow is not installed (pip install 'hypemu[parquet]')")
def test_parquet_is_written_from_its_journal(sweep_file: Path, tmp_path: Path,
                                             reference: dict[str, Any]) -> None:
    import pyarrow.parquet
    out = tmp_path / "rows.parquet"
    assert _by_point(hypemu.sweep(str(sweep_file), out=str(out))) == reference
    table = pyarrow.parquet.read_table(out).to_pylist()
    assert len(table) == len(reference)
    assert {r["point"]: r["outcome"] for r in table} == {p: r["outcome"] for p, r in reference.items()}
    assert _jsonl(tmp_path / "rows.parquet.jsonl") == reference


def test_parquet_without_pyarrow_is_a_clear_error(sweep_file: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)   # as if not installed
    with pytest.raises(OutputError, match=r"Parquet output needs pyarrow, which is not installed"):
        list(hypemu.sweep(str(sweep_file), out=str(tmp_path / "rows.parquet")))
