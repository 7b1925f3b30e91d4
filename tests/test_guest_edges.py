"""Edge cases of guest code and the CLI found by a review (each test failed before its fix): WFE/YIELD
hints, Thumb state, the init-code contract, power-off in HYP, WFI timeouts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import hypemu
from hypemu.scenario import ScenarioError, load_file

ROOT = Path(__file__).resolve().parent.parent

VECTORS = """\t.align\t5
\t.global\t__kvm_hyp_init
__kvm_hyp_init:
\tb\t.
\tb\t.
\tb\t.
\tb\t.
\tb\t.
\tb\tdo_init
\tb\t.
\tb\t.
do_init:
"""
END = "\t.global\t__kvm_hyp_init_end\n__kvm_hyp_init_end:\n"


def scenario_with(tmp_path: Path, source: str, **extra) -> dict:
    path = tmp_path / "init.S"
    path.write_text(source)
    return {"name": "user-init", "hyp": {"code": str(path)}, **extra}


@pytest.mark.parametrize("body", ["\twfe\n\tmov\tr0, r0\n\teret\n",
                                  "\tmov\tr5, #1\n\tyield\n\tadd\tr5, r5, #1\n\teret\n"])
def test_wfe_and_yield_are_hints_not_an_undefined_next_instruction(tmp_path, body):
    """Unicorn reports WFE/YIELD to the invalid-instruction hook with the PC already past them;
    hypemu used to decode the next (ordinary) word and report it as an undefined instruction."""
    result = hypemu.run(scenario_with(tmp_path, VECTORS + body + END))
    assert result.outcome == "ok", result.reason


def test_a_wfe_loop_spins_to_the_budget(tmp_path):
    result = hypemu.run(scenario_with(tmp_path, VECTORS + "1:\twfe\n\tb\t1b\n" + END,
                                      limits={"instructions": 5000}))
    assert result.outcome == "timeout"


def test_trapped_instructions_in_thumb_state_are_decoded_as_t32(tmp_path):
    """A Thumb MRC of HSCTLR (halfwords EE91 0F10) and a Thumb ERET (SUBS PC, LR, #0: F3DE 8F00)
    after a BX to Thumb code in HYP: hypemu used to stop with 'not modelled'; decoded as A32 the
    first word would be an undefined instruction."""
    body = ("\tadr\tr4, tcode\n\torr\tr4, r4, #1\n\tbx\tr4\ntcode:\n"
            "\t.word\t0x0F10EE91\n\t.word\t0x8F00F3DE\n")
    result = hypemu.run(scenario_with(tmp_path, VECTORS + body + END))
    assert result.outcome == "ok", result.reason


@pytest.mark.parametrize("source, message", [
    (VECTORS + "\teret\n", "no label __kvm_hyp_init_end"),
    (END + VECTORS.replace("\t.align\t5\n", "") + "\teret\n", "must come after"),
])
def test_init_code_without_a_proper_end_label_is_an_input_error(tmp_path, source, message):
    with pytest.raises(ScenarioError, match=message):
        hypemu.load_scenario(scenario_with(tmp_path, source))


def test_cli_init_code_without_end_label_exits_2_without_a_traceback(tmp_path):
    (tmp_path / "init.S").write_text(VECTORS + "\teret\n")
    (tmp_path / "s.yaml").write_text("name: noend\nhyp:\n  code: init.S\n")
    for command in ("run", "validate"):
        proc = subprocess.run([sys.executable, "-m", "hypemu.cli", command, str(tmp_path / "s.yaml")],
                              capture_output=True, text=True)
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr
        assert "s.yaml:3: hyp.code:" in proc.stderr


def test_power_off_after_a_fault_in_hyp_resets_sp_hyp():
    """A CPU powered off while in HYP (after a GuestFault) kept its live SP as SP_hyp."""
    m = hypemu.Machine({"name": "x", "machine": {"cpus": 2}})
    m.boot()
    with pytest.raises(hypemu.GuestFault):
        m.call(1, "hyp_read", 0x1000)
    assert m.mode(1) == "hyp"
    m.hotplug(1, "off")
    assert m.hyp_registers(1)["SP_hyp"] == 0
    m.hotplug(1, "on")
    assert m.call(1, "hyp_get_sp") == m.layout.kva(m.layout.stacks[1]) + 4096 - 8


def test_a_wfi_timeout_names_the_wfi_instruction(tmp_path):
    result = hypemu.run(scenario_with(tmp_path, VECTORS + "\twfi\n\teret\n" + END))
    assert result.outcome == "timeout"
    wfi_at = result.layout["idmap_start"] + 0x20     # do_init, after the 8 vectors
    assert f"waits in WFI and no interrupt is modelled at pc {wfi_at:#x}" in result.reason


def test_init_code_whose_vectors_are_not_first_is_an_input_error(tmp_path):
    init = (ROOT / "asm" / "hyp-init.S").read_text()
    (tmp_path / "late.S").write_text("\tnop\n" + init)
    (tmp_path / "s.yaml").write_text("name: late\nhyp:\n  code: late.S\n")
    with pytest.raises(ScenarioError) as info:
        load_file(tmp_path / "s.yaml")
    assert info.value.key == "hyp.code" and "must start the init code" in info.value.message
    assert info.value.line == 3


def test_api_misuse_is_a_value_error_not_a_crash():
    m = hypemu.Machine({"name": "api", "machine": {"cpus": 2}})
    for bad in (lambda: m.mode(7), lambda: m.boot([1, 1]), lambda: m.boot(1), lambda: m.boot("ALL"),
                lambda: m.read_phys(0x10, 4), lambda: m.read32(0xFFFFFFF0),
                lambda: m.hyp_registers(-1)):
        with pytest.raises(ValueError):
            bad()
    assert m.mode(1) == "off" and not m.booted     # nothing was half-done


def test_the_event_log_is_bounded():
    m = hypemu.Machine({"name": "log"})
    m.boot()
    m.core.log.limit = len(m.events) + 10
    from test_hazards import hyp_code
    code = hyp_code(m, """
        mov     r1, #100
    1:  mcr     p15, 0, r1, c13, c0, 4      @ TPIDRPRW: one event per write
        subs    r1, r1, #1
        bne     1b
        bx      lr
    """)
    m.call(0, code)
    assert len(m.events) == m.core.log.limit + 1
    assert m.events[-1].name == "event log full"
