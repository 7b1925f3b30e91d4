"""Every shipped scenario gives byte-identical result JSON (event logs included) whichever way the
engine counts its budget (the native block hook or Unicorn's count=) and whichever way it calls
Unicorn (hypemu._uccalls from C, or ctypes): the optional extensions change speed, not results."""

from __future__ import annotations

from pathlib import Path

import pytest

from hypemu import engine_budget, engine_regs
from resultjson import result_json

ROOT = Path(__file__).resolve().parent.parent
SWITCHES = {   # the environment variable that turns each off -> why it cannot be on here
    engine_budget.ENV: engine_budget.native_unavailable(),
    engine_regs.UCCALLS_ENV: engine_regs.uccalls_unavailable(),
}


@pytest.mark.parametrize("switch", sorted(SWITCHES))
@pytest.mark.parametrize("path", sorted((ROOT / "scenarios").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_scenario_gives_the_same_result_either_way(path, switch, monkeypatch):
    if SWITCHES[switch] is not None:
        pytest.skip(f"only one way here: {SWITCHES[switch]}")
    monkeypatch.setenv(switch, "1")
    on = result_json(path)
    monkeypatch.setenv(switch, "0")
    assert on == result_json(path)
