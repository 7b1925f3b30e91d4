"""The summary says what happened: HYP registers decoded (hand-computed vectors), the exception state
of a faulting CPU, the timeline of steps, one style for values."""

from __future__ import annotations

from pathlib import Path

import pytest

from hypemu import regdecode, syndrome, timeline
from hypemu.result import run
from hypemu.report import summary
from hypemu.scenario import DEFAULT_SCENARIO, from_mapping, load_file
from hypemu.walker import Fault

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("hsr, text", [
    (0x4A000000, "EC 0x12 HVC imm16=0x0"),
    (0x4A00002A, "EC 0x12 HVC imm16=0x2a"),
    (0x86000005, "EC 0x21 prefetch abort taken in HYP IFSC 0b000101 translation L1 S1PTW=0 IL=1"),
    (0x9600004F, "EC 0x25 data abort taken in HYP DFSC 0b001111 permission L3 WnR=1 S1PTW=0 ISV=0 IL=1"),
    (0x9600000A, "EC 0x25 data abort taken in HYP DFSC 0b001010 access flag L2 WnR=0 S1PTW=0 ISV=0 IL=1"),
    (0x96000021, "EC 0x25 data abort taken in HYP DFSC 0b100001 alignment WnR=0 S1PTW=0 ISV=0 IL=1"),
    (0x00000000, "EC 0x00 unknown reason ISS=0x0 IL=0"),
])
def test_hsr_decoding(hsr, text):
    assert regdecode.hsr_text(hsr) == text


def test_hsr_decoding_reads_back_what_syndrome_encodes():
    fault = Fault("translation", 2, 0xC0000000, "write")
    hsr = syndrome.hsr_for_abort(fault, taken_from_hyp=True)
    assert "DFSC 0b000110 translation L2 WnR=1" in regdecode.hsr_text(hsr)


def test_hsctlr_htcr_httbr_decoding():
    assert regdecode.hsctlr_text(0x30C5181F) == "M=1 A=1 C=1 I=1 WXN=0 FI=0 EE=0 TE=0"
    assert regdecode.hsctlr_text(0x30C50818 | 1 << 19 | 1 << 25) == \
        "M=0 A=0 C=0 I=0 WXN=1 FI=0 EE=1 TE=0"
    assert regdecode.htcr_text(0x80003500) == "T0SZ=0 IRGN0=WBWA ORGN0=WBWA SH0=ISH"
    assert regdecode.htcr_text(0x80002A02) == "T0SZ=2 IRGN0=WT ORGN0=WT SH0=OSH"
    assert regdecode.httbr_text(0x8000E000, 0x80003500, {"runtime pgd": 0x8000E000}) == \
        "BADDR=0x8000e000 (the runtime pgd)"
    # T0SZ = 0: the base is bits[39:5]; the low bits [4:3] are not part of it
    assert regdecode.httbr_text(0x1_0000_0018 | 1 << 41, 0) == "BADDR=0x100000000 bits[63:40]=0x2"


def _lines(path: str) -> list[str]:
    s = load_file(str(ROOT / path))
    r = run(s)
    return timeline.lines(s.steps, r.events, r.calls, len(r.cpus), r.outcome, r.reason,
                          timeline.remap_order(s.inject))


def test_the_timeline_of_a_hotplug():
    assert _lines("scenarios/hotplug.yaml") == [
        "steps[0] cpu0-1 on: stub, phase 1, phase 2",
        "steps[1] cpu1 off",
        "steps[2] cpu1 on: stub, phase 1, phase 2",
        'steps[3] cpu1 call hyp_probe -> r0=0x4b564d21 (the HYP data word "KVM!")',
    ]


def test_the_timeline_marks_where_a_fault_ended_the_run():
    lines = _lines("scenarios/single-step-hotplug.yaml")
    assert lines[0] == "steps[0] cpu0-1 on: stub, init (single-step)"
    assert lines[1].startswith("  kernel: remove the HYP idmap")
    assert lines[2:] == ["steps[1] cpu1 off", "steps[2] cpu1 on: stub, init (single-step)  <- fault",
                         "steps[3]..: not run"]


def test_the_timeline_shows_injections_between_steps():
    lines = _lines("scenarios/remap-without-bbm.yaml")
    assert lines[1] == 'steps[1] cpu0 call hyp_probe -> r0=0x4b564d21 (the HYP data word "KVM!")'
    assert lines[2].startswith("inject: remap (runtime table, VA 0xc000b000 -> PA 0x82000000")
    assert lines[3].startswith("steps[2] cpu0 call hyp_probe -> r0=0x0 (not the HYP data word")


def test_a_faulting_cpu_shows_its_exception_state_and_verbose_shows_every_cpu():
    s = load_file(str(ROOT / "scenarios/single-step-hotplug.yaml"))
    r = run(s)
    plain = summary(r, scenario=s)
    assert "HSR=0x86000005 ELR_hyp=0x80009094 SPSR_hyp=0x1da HDFAR=0x0 HIFAR=0x80009094" in plain
    assert "HSR:    EC 0x21 prefetch abort taken in HYP IFSC 0b000101 translation L1" in plain
    assert plain.count("ELR_hyp=") == 1 and "HSCTLR: M=" not in plain
    verbose = summary(r, verbose=True, scenario=s)
    assert verbose.count("ELR_hyp=") == 2 and verbose.count("HSCTLR: M=1") == 2
    assert "HTTBR:  BADDR=0x8000e000 (the HYP pgd)" in verbose
    assert "timeline:" in verbose and "<- fault" in verbose


def test_none_is_null_in_the_summary():
    r = run(from_mapping(DEFAULT_SCENARIO))
    out = summary(r)
    assert "bounce page null" in out and " - " not in out and "none" not in out
