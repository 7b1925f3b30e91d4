"""Every shipped scenario runs and meets its own expectation."""

from __future__ import annotations

from pathlib import Path

import pytest

import hypemu
from hypemu.scenario import load_file

SCENARIOS = sorted((Path(__file__).resolve().parent.parent / "scenarios").glob("*.yaml"))


def test_the_library_is_there():
    assert len(SCENARIOS) >= 12


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenario_meets_its_expectation(path):
    result = hypemu.run(load_file(path))
    assert result.passed, "\n".join(result.mismatch + [f"reason: {result.reason}"])


def test_bounce_page_scenario_really_bounces():
    result = hypemu.run(load_file(Path(SCENARIOS[0]).parent / "bounce-page.yaml"))
    assert result.layout["bounce_page"] is not None
    assert result.layout["trampoline_pa"] == result.layout["bounce_page"]


def test_runaway_init_stops_at_the_budget():
    result = hypemu.run(load_file(Path(SCENARIOS[0]).parent / "init-never-returns.yaml"))
    assert result.outcome == "timeout"
    assert "budget (100000)" in result.reason and "phase 1" in result.reason
    assert result.stats["instructions"] >= 100000
