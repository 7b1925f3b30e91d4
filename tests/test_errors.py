"""Errors say whose fault they are (hypemu/errors.py): input errors carry their place, API misuse
is a usage error at the Machine boundary, and nothing else counts as the user's mistake."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

import hypemu
from hypemu import errors
from hypemu.asm import AsmError
from hypemu.result import INPUT_ERRORS
from hypemu.scenario import from_mapping, load_file

ROOT = Path(__file__).resolve().parent.parent


def test_every_error_has_one_base_and_an_owner():
    for cls in (errors.InputError, errors.ConfigError, errors.NotModelled, errors.UsageError):
        assert issubclass(cls, errors.HypemuError)
    for cls in (errors.ScenarioError, errors.GuestContractError, errors.UnknownFunction, AsmError):
        assert issubclass(cls, errors.InputError)
    # the public names are the same classes
    assert hypemu.ScenarioError is errors.ScenarioError and hypemu.ConfigError is errors.ConfigError
    assert hypemu.NotModelled is errors.NotModelled and hypemu.UsageError is errors.UsageError
    from hypemu import cpu, layout
    assert layout.ConfigError is errors.ConfigError and cpu.NotModelled is errors.NotModelled


def test_a_plain_value_error_is_not_an_input_error():
    assert not any(issubclass(ValueError, cls) for cls in INPUT_ERRORS)
    assert not any(issubclass(NotImplementedError, cls) for cls in INPUT_ERRORS)
    assert issubclass(errors.ScenarioError, INPUT_ERRORS) and issubclass(AsmError, INPUT_ERRORS)


def test_api_misuse_is_a_usage_error_and_still_a_value_error():
    m = hypemu.Machine({"name": "api"})
    with pytest.raises(errors.UsageError, match="has not been booted") as info:
        m.call(0, "hyp_probe")
    assert isinstance(info.value, ValueError)
    with pytest.raises(errors.UsageError, match="pgd must be"):
        m.translate(0, 0xC0000000, pgd="neither")
    m.boot()
    with pytest.raises(errors.UnknownFunction, match="no HYP function 'hyp_nope'") as fn:
        m.call(0, "hyp_nope")
    assert isinstance(fn.value, ValueError) and "hyp_probe" in fn.value.known


def test_a_broken_guest_contract_is_an_input_error_naming_hyp_code(tmp_path):
    (tmp_path / "late.S").write_text("\tnop\n" + (ROOT / "asm" / "hyp-init.S").read_text())
    (tmp_path / "s.yaml").write_text("name: late\nhyp:\n  code: late.S\n")
    with pytest.raises(errors.GuestContractError) as info:
        load_file(tmp_path / "s.yaml")
    assert (info.value.key, info.value.line) == ("hyp.code", 3)


def test_errors_without_a_file_have_no_place():
    with pytest.raises(errors.ScenarioError) as info:
        from_mapping({"name": "x", "machine": {"cpus": 0}})
    assert (info.value.file, info.value.line, info.value.key) == (None, None, "machine.cpus")


OWNED = ["hypemu/errors.py", "hypemu/scenario", "hypemu/layout.py", "hypemu/cli.py",
         "hypemu/pytest_plugin", "hypemu/report.py", "hypemu/machine.py"]


@pytest.mark.skipif(importlib.util.find_spec("mypy") is None,
                    reason="mypy is not installed (pip install -e '.[typecheck]')")
def test_the_scenario_errors_and_front_end_modules_are_mypy_strict_clean():
    proc = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent",
                           "--no-error-summary", *OWNED], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
