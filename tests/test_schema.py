"""The JSON result format (docs/DESIGN.md section 6) as the JSON Schema shipped in the package: every result
of the shipped scenarios validates, what the format forbids is refused, and the README documents it."""

from __future__ import annotations

import configparser
import contextlib
import copy
import io
import json
import re
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

import hypemu
from hypemu.cli import main

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))
VALIDATOR = Draft202012Validator(hypemu.result_schema())


def _errors(result: dict) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in VALIDATOR.iter_errors(result)]


@pytest.fixture(scope="module")
def results() -> dict[str, dict]:
    """``hypemu run --json`` of every shipped scenario, by name."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["run", "--json", *map(str, SCENARIOS)]) == 0
    parsed = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(parsed) == len(SCENARIOS)
    return {r["name"]: r for r in parsed}


def test_the_schema_is_a_valid_draft_2020_12_schema():
    Draft202012Validator.check_schema(hypemu.result_schema())


def test_the_schema_ships_in_the_package():
    assert hypemu.RESULT_SCHEMA.parent == Path(hypemu.__file__).resolve().parent
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    shipped = [name.strip() for name in setup["options.package_data"]["hypemu"].split(",")]
    assert hypemu.RESULT_SCHEMA.name in shipped and "py.typed" in shipped
    for name in shipped:
        assert (hypemu.RESULT_SCHEMA.parent / name).is_file(), name


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_every_shipped_scenario_result_validates(results, path):
    name = hypemu.load_scenario(path).name
    assert _errors(results[name]) == []


def test_the_results_cover_every_outcome_the_library_has(results):
    """The validation above means something only if the shipped results are varied."""
    outcomes = {r["outcome"] for r in results.values()}
    assert {"ok", "fault", "config_error", "timeout"} <= outcomes
    assert any(r["layout"] and r["layout"]["bounce_page"] is not None for r in results.values())


def _changed(result: dict, path: str, value) -> dict:
    """A copy of ``result`` with the value at ``path`` (keys and list indexes, '/' separated)
    replaced; ``...`` deletes the key."""
    out = copy.deepcopy(result)
    *parents, last = [int(p) if p.isdigit() else p for p in path.split("/")]
    node = out
    for key in parents:
        node = node[key]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return out


@pytest.mark.parametrize("path, value", [
    ("outcome", "crashed"),
    ("expected", None),
    ("passed", 1),
    ("stats/instructions", 63.5),              # numbers are integers, except stats.seconds
    ("stats/walks", True),
    ("cpus/0/hyp/HSR", "0x2000000"),
    ("cpus/0/hyp/HSR", 1 << 32),
    ("cpus/0/mode", "abt"),
    ("cpus/0/hyp/HPFAR", 0),                   # no key beyond the format
    ("cpus/0/hyp/SP_hyp", ...),
    ("fault/kind", "abort"),
    ("fault/fsc", "translation_fault"),
    ("fault/level", 4),
    ("fault/hsr", ...),
    ("layout/bounce_page", ...),
    ("layout/trampoline_va", 1 << 32),
    ("calls", [{"cpu": 0, "fn": "hyp_probe"}]),
    ("hazards", [{"kind": "stale_tlb", "cpu": 0, "pc": 0}]),
    ("hazards", [{"kind": "stale_tlb", "cpu": 8, "pc": 0, "va": None, "disasm": None,
                  "detail": ""}]),
    ("injections", [{"skip": "tlbiallh"}]),
    ("reason", ...),
    ("debug", {}),
])
def test_the_schema_refuses_what_the_format_forbids(results, path, value):
    assert _errors(results["no-bounce-page"]) == []
    assert _errors(_changed(results["no-bounce-page"], path, value)) != []


def test_a_board_that_was_built_reports_its_cpus_and_counters(results):
    built = results["default"]
    assert _errors(_changed(built, "cpus", [])) != []
    assert _errors(_changed(built, "stats/instructions", ...)) != []
    refused = results["ram-above-4g"]
    assert refused["layout"] is None and refused["cpus"] == [] and _errors(refused) == []
    assert _errors(_changed(refused, "cpus", built["cpus"])) != []


def test_the_schema_accepts_hazards_injections_and_offline_cpus(results):
    """The parts of the format no shipped scenario produces yet."""
    result = copy.deepcopy(results["hotplug"])
    result["outcome"] = "hazard"
    result["hazards"] = [
        {"kind": kind, "cpu": 1, "pc": 0xC000B010, "va": va, "disasm": disasm,
         "detail": "a translation served from the TLB after its descriptor changed"}
        for kind, va, disasm in [("stale_tlb", 0xC0001000, "ldr r0, [r0]"), ("bbm", None, None),
                                 ("missing_isb", None, "mcr p15, #4, r0, c1, c0, #0"),
                                 ("missing_dsb", 0xC0001000, "str r1, [r0]")]]
    result["hazards"].append({"kind": "bbm", "cpu": None, "pc": None, "va": 0xC000B000,
                              "disasm": None, "detail": "the kernel side changed a descriptor"})
    result["injections"] = [{"kind": "skip", "insn": "tlbiallh", "count": 1},
                            {"kind": "corrupt"}, {"kind": "remap", "va": 0xC0001000}]
    result["cpus"][1]["mode"], result["cpus"][1]["online"] = "off", False
    assert _errors(result) == []


def test_the_readme_documents_every_key():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Using hypemu from Python and pytest", 1)[1].split("\n## ", 1)[0]
    assert "result.schema.json" in section
    keys = hypemu.result_schema()["properties"]
    missing = [key for key in keys if not re.search(rf"`{key}`", section)]
    assert missing == []
