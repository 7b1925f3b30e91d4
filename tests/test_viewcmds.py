"""``hypemu tables`` and ``hypemu map`` from the command line: output, JSON against the schema, input
errors (exit 2, one line), the picture and the message when matplotlib is absent."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

import hypemu
from hypemu.cli import main

ROOT = Path(__file__).resolve().parent.parent
VALIDATOR = Draft202012Validator(hypemu.result_schema())
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))


def cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_tables_lists_both_tables_of_the_default_board(capsys):
    code, out, _ = cli(capsys, "tables")
    assert code == 0
    assert "boot table: pgd 0x8000d000" in out and "runtime table: pgd 0x8000e000" in out
    assert ("0xffff0000-0xffff1000 -> 0x0080009000-0x008000a000    4 KiB L3 page  RW x  "
            "Normal WBWA   ISH AF  trampoline") in out
    assert out.count(" idmap ") == 1
    assert out.rstrip().endswith("live: cpu0 HTTBR 0x8000e000 (runtime, HYP MMU on)")


def test_tables_says_which_table_each_cpu_walks(capsys):
    code, out, _ = cli(capsys, "tables", str(ROOT / "scenarios/hotplug.yaml"), "--after-step", "1")
    assert code == 0 and out.rstrip().endswith(
        "live: cpu0 HTTBR 0x8000f000 (runtime, HYP MMU on); cpu1 off")


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_tables_json_validates_for_every_scenario(capsys, path):
    code, out, _ = cli(capsys, "tables", str(path), "--json")
    assert code == 0
    result = json.loads(out)
    assert sorted(e.message for e in VALIDATOR.iter_errors(result)) == []
    tables = result["tables"]
    if result["outcome"] == "config_error":
        assert tables["dumps"] == [] and tables["ended"].startswith("config_error")
    else:
        names = [d["name"] for d in tables["dumps"]]
        assert names in (["boot", "runtime"], ["hyp"])


def test_after_step_stops_there(capsys):
    path = str(ROOT / "scenarios/single-step-stale-idmap.yaml")
    # steps[0] boots and tears the idmap down (single-step), steps[1] is a call not yet made
    code, out, _ = cli(capsys, "tables", path, "--after-step", "0")
    assert code == 0 and "after steps[0]" in out and " idmap " not in out
    code, out, _ = cli(capsys, "tables", path, "--after-step", "0", "--json")
    data = json.loads(out)
    assert data["tables"]["after_step"] == 0 and data["tables"]["steps_done"] == 1
    assert data["calls"] == [] and VALIDATOR.is_valid(data)


@pytest.mark.parametrize("args, message", [
    (["--after-step", "5"], "--after-step 5: the scenario has steps 0..1"),
    (["--cpu", "4"], "--cpu 4: the board has cpus 0..0"),
])
def test_tables_input_errors_exit_2(capsys, args, message):
    code, out, err = cli(capsys, "tables", *args)
    assert code == 2 and message in err and "Traceback" not in err


def test_a_bad_scenario_file_is_one_line(capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nmachine: {cpus: 99}\n")
    for command in ("tables", "map"):
        code, _, err = cli(capsys, command, str(bad))
        assert code == 2 and str(bad) in err and err.count("\n") == 1


def test_map_prints_the_text_form(capsys):
    code, out, _ = cli(capsys, "map", str(ROOT / "scenarios/idmap-crosses-trampoline.yaml"))
    assert code == 0 and "refused (config_error)" in out
    assert "collision in the boot table: idmap and trampoline both need VA" in out


def test_map_draws_an_svg(capsys, tmp_path):
    pytest.importorskip("matplotlib", reason="the picture needs the optional extra hypemu[plot]")
    out_file = tmp_path / "m.svg"
    code, out, _ = cli(capsys, "map", "-o", str(out_file))
    assert code == 0 and out_file.read_text().startswith("<?xml")


def test_map_refuses_an_unknown_picture_format(capsys, tmp_path):
    code, _, err = cli(capsys, "map", "-o", str(tmp_path / "m.jpg"))
    assert code == 2 and "must be a .svg or a .png" in err


def test_map_without_matplotlib_says_how_to_get_it(tmp_path):
    out_file = tmp_path / "m.svg"
    code = ("import sys; sys.modules['matplotlib'] = None\n"   # import matplotlib now fails
            "from hypemu.cli import main\n"
            f"sys.exit(main(['map', '-o', {str(out_file)!r}]))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 2 and "pip install 'hypemu[plot]'" in proc.stderr
    assert "Traceback" not in proc.stderr and not out_file.exists()
