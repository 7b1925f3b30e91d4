"""The same scenario gives the same event log and the same result, every time."""

from __future__ import annotations

from pathlib import Path

import pytest

import hypemu
from conftest import scenario

ROOT = Path(__file__).resolve().parent.parent


def _strip_seconds(result) -> dict:
    d = result.to_dict()
    d["stats"] = {k: v for k, v in d["stats"].items() if k != "seconds"}
    return d


def test_two_runs_are_identical():
    s = scenario(machine={"cpus": 3},
                 steps=[{"boot": "all"}, {"call": {"cpu": 2, "fn": "hyp_probe"}},
                        {"hotplug": {"cpu": 1, "state": "off"}}, {"hotplug": {"cpu": 1, "state": "on"}},
                        {"call": {"cpu": 1, "fn": "hyp_probe"}}])
    first, second = hypemu.run(s), hypemu.run(s)
    assert first.outcome == "ok"
    assert first.events == second.events and len(first.events) > 50
    assert _strip_seconds(first) == _strip_seconds(second)


@pytest.mark.parametrize("name", ["stale-tlb-skip-tlbiallh", "missing-dsb", "missing-isb",
                                  "remap-without-tlbi", "single-step-hotplug"])
def test_hazard_and_fault_scenarios_repeat_exactly(name):
    """Hazards pause a run (exact VA) and guest table stores step one instruction: the result and
    the event log must still be the same every time."""
    path = ROOT / "scenarios" / f"{name}.yaml"
    first, second = hypemu.run(hypemu.load_scenario(str(path))), hypemu.run(hypemu.load_scenario(str(path)))
    assert first.passed
    assert first.events == second.events
    assert _strip_seconds(first) == _strip_seconds(second)
