"""Sweep files (each broken one with its exact message), points and their rows, the Python API,
the summary, the heatmap, and the shipped sweeps."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import hypemu
from hypemu.errors import ScenarioError
from hypemu.sweep import columns, from_data, load_sweep
from hypemu.sweep.summary import show_value, summary

ROOT = Path(__file__).resolve().parent.parent
HEAD = "name: t\nbase:\n  name: b\naxes:\n"


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hypemu.cli", *args], capture_output=True,
                          text=True, cwd=cwd, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})


BROKEN = [
    ("  machine.ram.sise: [1]\n",
     "F:5: axes.machine.ram.sise: machine.ram.sise is not a scenario key of the README key table, did you mean "
     "'machine.ram.size'?"),
    ("  machine.ram.size: {range: [16MiB, 1GiB]}\n",
     "F:5: axes.machine.ram.size: a linear range needs a step (or scale: log2)"),
    ("  machine.ram.size: {range: [16MiB, 1GiB], scale: log3}\n",
     "F:5: axes.machine.ram.size.scale: expected linear or log2, got 'log3'"),
    ("  machine.ram.size: {range: [1GiB, 16MiB], scale: log2}\n",
     "F:5: axes.machine.ram.size.range: lo 0x40000000 is above hi 0x1000000"),
    ("  machine.ram.size: {range: [16MiB], step: 1}\n",
     "F:5: axes.machine.ram.size.range: expected [lo, hi], got a list"),
    ("  machine.ram.size: {range: [0, 8], step: 0}\n",
     "F:5: axes.machine.ram.size.step: must be positive"),
    ("  machine.cpus: []\n", "F:5: axes.machine.cpus: an axis needs at least one value"),
    ("  machine.cpus: 2\n", "F:5: axes.machine.cpus: expected a list of values, {values: [...]}, "
                            "{range: [lo, hi], step: N} or {range: [lo, hi], scale: log2}, got 2"),
    ("  steps[1].hotplug.cpu: {values: [1], also: [\"steps[2].hotplug.cpux\"]}\n",
     "F:5: axes.steps[1].hotplug.cpu.also: steps[2].hotplug.cpux is not a scenario key of the "
     "README key table, did you mean 'steps[].hotplug.cpu'?"),
    ("  inject: {values: [[], []], labels: [a]}\n",
     "F:5: axes.inject.labels: expected 2 distinct words, one per value, got a list"),
    ("  steps[3].call.cpu: [0]\n", "F:5: axes.steps[3].call.cpu: the base has no steps[3]: an "
                                   "axis can only set an item the base lists"),
    ("  machine.cpus: [1]\nsample: {random: 10, sed: 3}\n",
     "F:6: sample.sed: unknown key, did you mean 'seed'?"),
    ("  machine.cpus: [1]\nsample: everything\n",
     "F:6: sample: expected grid or {random: N, seed: S}, got 'everything'"),
    ("  machine.cpus: [1]\naxis: {}\n", "F:6: axis: unknown key, did you mean 'axes'?"),
]


@pytest.mark.parametrize("axes, message", BROKEN, ids=[m.split(": ")[1] for _, m in BROKEN])
def test_a_broken_sweep_file_is_an_input_error_at_its_line(tmp_path: Path, axes: str,
                                                          message: str) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(HEAD + axes)
    with pytest.raises(ScenarioError) as info:
        load_sweep(str(path))
    assert str(info.value) == message.replace("F:", f"{path}:")


def test_an_invalid_base_is_cited_in_the_sweep_file_or_in_its_own(tmp_path: Path) -> None:
    inline = tmp_path / "inline.yaml"
    inline.write_text("name: t\nbase:\n  name: b\n  machine: {cpus: 12}\naxes:\n  machine.cpus: [1]\n")
    with pytest.raises(ScenarioError, match=r"inline.yaml:4: base.machine.cpus: must be 1..8, got 12$"):
        load_sweep(str(inline))
    (tmp_path / "base.yaml").write_text("name: b\nmachine:\n  cpus: 0\n")
    filed = tmp_path / "filed.yaml"
    filed.write_text("name: t\nbase: {file: base.yaml}\naxes:\n  machine.cpus: [1]\n")
    with pytest.raises(ScenarioError, match=r"base.yaml:3: machine.cpus: must be 1..8, got 0$"):
        load_sweep(str(filed))
    filed.write_text("name: t\nbase: {file: gone.yaml}\naxes:\n  machine.cpus: [1]\n")
    with pytest.raises(ScenarioError, match=r"filed.yaml:2: base.file: no scenario file .*gone.yaml$"):
        load_sweep(str(filed))


def test_the_cli_prints_a_sweep_file_error_as_one_line_exit_2(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(HEAD + "  machine.cpu: [1]\n")
    done = _cli("sweep", "s.yaml", cwd=tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == ("hypemu: s.yaml:5: axes.machine.cpu: machine.cpu is not a scenario key "
                           "of the README key table, did you mean 'machine.cpus'?\n")


def test_ranges_and_samples_name_the_points_expected() -> None:
    spec = from_data({"name": "t", "base": {"name": "b"}, "axes": {
        "machine.ram.size": {"range": ["16MiB", "128MiB"], "scale": "log2"},
        "kernel.hyp_idmap_offset": {"range": [0x1000, 0x1060], "step": 0x20},
        "hyp.init": ["dual-step", "single-step"]}})
    assert spec.axes[0].values == (16 << 20, 32 << 20, 64 << 20, 128 << 20)
    assert spec.axes[1].values == (0x1000, 0x1020, 0x1040, 0x1060)
    assert spec.grid_size == 32 and spec.indices() == list(range(32))
    assert spec.values(0) == (16 << 20, 0x1000, "dual-step")
    assert spec.values(1) == (16 << 20, 0x1000, "single-step")     # the last axis varies fastest
    assert spec.values(31) == (128 << 20, 0x1060, "single-step")
    def sampled(seed: int) -> list[int]:
        return from_data({"name": "t", "base": {"name": "b"}, "axes": {
            "machine.ram.size": {"range": ["16MiB", "4GiB"], "step": "1MiB"},
            "kernel.hyp_idmap_offset": {"range": [0x1000, 0x20000], "step": 0x20}},
            "sample": {"random": 5, "seed": seed}}).indices()
    picked = sampled(7)
    assert len(picked) == 5 == len(set(picked)) and picked == sorted(picked)
    assert max(picked) < 4081 * 3969
    assert picked == sampled(7) and picked != sampled(8)           # the seed decides


def test_an_invalid_combination_is_a_row_citing_its_axis_and_the_sweep_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(HEAD + "  machine.cpus: [1, 9]\n  machine.ram.size: [16MiB, 4KiB]\n")
    rows = {(r["machine.cpus"], r["machine.ram.size"]): r for r in hypemu.sweep(str(path))}
    assert rows[(1, 16 << 20)]["outcome"] == "ok"
    assert rows[(1, 4096)]["outcome"] == "config_error"
    assert rows[(1, 4096)]["reason_class"] == "ram_too_small"
    for size in (16 << 20, 4096):
        row = rows[(9, size)]
        assert row["outcome"] == "invalid" and row["reason_class"] == "machine.cpus"
        assert row["reason"] == f"{path}:5: machine.cpus: must be 1..8, got 9"


def test_rows_carry_fault_hazard_bounce_and_instructions() -> None:
    rows = list(hypemu.sweep({"name": "t", "base": {
        "name": "b", "machine": {"cpus": 2}, "steps": [
            {"boot": "all"}, {"hotplug": {"cpu": 1, "state": "off"}},
            {"hotplug": {"cpu": 1, "state": "on"}}]},
        "axes": {"hyp.init": ["dual-step", "single-step"],
                 "kernel.hyp_idmap_offset": [0x1000, 0x1FE0]}}))
    assert [r["index"] for r in rows] == [0, 1, 2, 3]
    dual, dual_bounce, single, _ = rows
    assert list(dual) == columns(from_data({"name": "t", "base": {"name": "b"}, "axes": {
        "hyp.init": [1], "kernel.hyp_idmap_offset": [1]}}))
    assert dual["outcome"] == "ok" and dual["bounce_page"] is False and dual["hazards"] is None
    assert dual_bounce["outcome"] == "ok" and dual_bounce["bounce_page"] is True
    assert single["outcome"] == "fault" and single["fault_kind"] == "prefetch_abort"
    assert single["reason_class"] == "prefetch_abort/translation"
    assert single["hsr"] == 0x86000005 and single["instructions"] > 0
    stale = list(hypemu.sweep({"name": "t", "base": {
        "name": "b", "kernel": {"hyp_idmap_offset": 0x1000}, "inject": [{"skip": "tlbiallh"}],
        "steps": [{"boot": "all"}, {"call": {"fn": "hyp_read", "args": [0x80009010]}}]},
        "axes": {"machine.tlb_entries": [0, 1]}}))
    # one entry: the stale entry is evicted, and the read meets the table as it is: no idmap
    assert [r["outcome"] for r in stale] == ["hazard", "fault"]
    assert stale[1]["fault_kind"] == "data_abort" and stale[1]["hazards"] is None
    assert stale[0]["hazards"] == "stale_tlb"


def test_the_summary_gives_counts_axis_ranges_and_reasons_by_class() -> None:
    spec = load_sweep(str(ROOT / "sweeps" / "placement.yaml"))
    text = summary(spec, hypemu.sweep(spec))
    assert text.splitlines()[0].startswith(f"sweep placement: {spec.grid_size} points: ok ")
    assert "  config_error (" in text
    assert "    idmap_above_4g (155): where machine.ram.base 0xfff00000, 0x100000000\n" in text
    assert "trampoline_in_lowmem" in text and "ram_too_small" in text
    assert "bounce page used:" in text


def test_values_are_shown_in_binary_units_and_hex() -> None:
    spec = from_data({"name": "t", "base": {"name": "b"}, "axes": {
        "machine.ram.size": [16 << 20, 1 << 30, 0x1800000], "hyp.trampoline_va": [0xFFFF0000],
        "machine.cpus": [2]}})
    size, va, cpus = spec.axes
    assert [show_value(size, v) for v in size.values] == ["16MiB", "1GiB", "24MiB"]
    assert show_value(va, 0xFFFF0000) == "0xffff0000" and show_value(cpus, 2) == "2"


@pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None, reason="matplotlib is not "
                    "installed (pip install -e '.[plot]')")
def test_the_cli_runs_a_shipped_sweep_with_summary_rows_and_heatmap(tmp_path: Path) -> None:
    done = _cli("sweep", str(ROOT / "sweeps" / "placement.yaml"), "-j", "2", "--plot",
                "machine.ram.base", "hyp.trampoline_va", "-o", "map.png", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""                       # no progress bar: stderr is not a terminal
    rows = [json.loads(line) for line in (tmp_path / "placement.jsonl").read_text().splitlines()]
    assert len(rows) == load_sweep(str(ROOT / "sweeps" / "placement.yaml")).grid_size
    assert "rows: placement.jsonl" in done.stdout and "heatmap: map.png" in done.stdout
    assert (tmp_path / "map.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = _cli("sweep", str(ROOT / "sweeps" / "placement.yaml"), "--plot", "machine.cpus",
               "hyp.trampoline_va", "-o", "x.png", cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.startswith("hypemu: --plot machine.cpus: not an axis")


@pytest.mark.parametrize("name", ["placement", "hotplug-design", "tlb-capacity"])
def test_every_shipped_sweep_loads_and_pickles(name: str) -> None:
    import pickle
    spec = load_sweep(str(ROOT / "sweeps" / f"{name}.yaml"))
    assert spec.grid_size <= 2000   # "in seconds" on a laptop
    assert pickle.loads(pickle.dumps(spec)) == spec   # as worker processes and Ray get it
    from hypemu.sweep.points import scenario_at
    assert not isinstance(scenario_at(spec, spec.values(0)), str)   # the base copies (YAML words)


def test_pandas_takes_the_rows_when_installed() -> None:
    pandas: Any = pytest.importorskip("pandas", reason="pandas is not installed (optional)")
    frame = pandas.DataFrame(hypemu.sweep({"name": "t", "base": {"name": "b"},
                                           "axes": {"machine.cpus": [1, 2]}}))
    assert list(frame["outcome"]) == ["ok", "ok"]


def test_the_progress_line_gives_rate_and_eta_on_a_terminal_only() -> None:
    import io
    from hypemu.sweep.progress import Progress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True
    screen = Terminal()
    bar = Progress(total=10, done=4, stream=screen)
    bar.advance()
    assert "5/10 50%" in screen.getvalue() and "points/s" in screen.getvalue()
    assert "ETA " in screen.getvalue()
    pipe = io.StringIO()
    quiet = Progress(total=10, done=0, stream=pipe)
    quiet.advance()
    quiet.close()
    assert pipe.getvalue() == ""


def test_points_run_grouped_by_ram_layout_whatever_the_axis_order() -> None:
    from hypemu.sweep.run import todo
    spec = from_data({"name": "t", "base": {"name": "b"}, "axes": {
        "hyp.trampoline_va": [0xFFFF0000, 0xFFFE0000, 0xFFF00000],
        "machine.ram.size": ["16MiB", "32MiB"]}})
    order = todo(spec, set())
    assert order == [0, 2, 4, 1, 3, 5]            # every 16 MiB point, then every 32 MiB one
    assert [r["index"] for r in hypemu.sweep(spec)] == order


def test_plot_without_matplotlib_is_exit_2_before_anything_runs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from hypemu import cli
    monkeypatch.setitem(sys.modules, "matplotlib", None)   # as if not installed
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.yaml").write_text(HEAD + "  machine.cpus: [1, 2]\n")
    assert cli.main(["sweep", "s.yaml", "--plot", "machine.cpus", "machine.cpus", "-o", "x.png"]) == 2
    assert capsys.readouterr().err == ("hypemu: --plot draws with matplotlib, which is not installed: "
                                       "pip install 'hypemu[plot]' (the rows and the summary need "
                                       "nothing)\n")
    assert not (tmp_path / "t.jsonl").exists()


def test_ray_without_ray_is_a_clear_input_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from hypemu.errors import InputError
    monkeypatch.setitem(sys.modules, "ray", None)   # as if not installed
    rows = hypemu.sweep({"name": "t", "base": {"name": "b"}, "axes": {"machine.cpus": [1]}},
                        ray="auto")
    with pytest.raises(InputError, match=r"^--ray needs ray, which is not installed: pip install "
                                         r"'hypemu\[ray\]'"):
        list(rows)
