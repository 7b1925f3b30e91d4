"""Every shipped scenario, run with ``kernel.isa: thumb2``, reaches the same outcome and end state as
its ARM run. What may differ, and only that: HSCTLR.TE (set by the Thumb-2 build, so HYP exceptions
are taken in Thumb state), SPSR_hyp.T (the kernel's HVC came from Thumb code), and the addresses
the code size moves (code addresses: ELR_hyp, HIFAR, fault and hazard PCs, fetch VAs, the idmap's
end, the skipped instructions' addresses). The result says which ISA ran."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

import hypemu
from hypemu import cp15
from hypemu.cpu.state import CPSR_T
from hypemu.report import summary

SCENARIOS = sorted((Path(__file__).resolve().parent.parent / "scenarios").glob("*.yaml"))
# The HYP call of these reads a word of the init code itself (through the stale idmap): its r0
# is ARM code in one build and Thumb code in the other.
READS_CODE = {"single-step-stale-idmap", "stale-tlb-skip-tlbiallh"}
CODE_ADDRESSES = {"ELR_hyp", "HIFAR"}


def run(path: Path, isa: str) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    data.setdefault("kernel", {})["isa"] = isa
    code = data.get("hyp", {}).get("code", "builtin")
    if code != "builtin":
        data["hyp"]["code"] = str(path.parent / code)
    return hypemu.run(data).to_dict()


def _instruction(disasm: Any) -> Any:
    """A hazard's disassembly: the same text in both builds (each decoded in its own state),
    except the image poison, a UDF with a different immediate in each (loader.THUMB_POISON)."""
    return "udf (poison)" if isinstance(disasm, str) and disasm.startswith("udf") else disasm


def comparable(result: dict[str, Any]) -> dict[str, Any]:
    """The result without what the ISA may change (see the module docstring)."""
    cpus = []
    for cpu in result["cpus"]:
        hyp = {k: v for k, v in cpu["hyp"].items() if k not in CODE_ADDRESSES}
        if "HSCTLR" in hyp:
            hyp["HSCTLR"] &= ~cp15.HSCTLR_TE
        if "SPSR_hyp" in hyp:
            hyp["SPSR_hyp"] &= ~CPSR_T
        cpus.append({**cpu, "hyp": hyp})
    fault = result["fault"]
    if fault is not None:
        fault = {k: v for k, v in fault.items()
                 if k != "pc" and not (k == "va" and fault["kind"] == "prefetch_abort")}
    layout = result["layout"] and {k: v for k, v in result["layout"].items() if k != "idmap_end"}
    calls = [c if result["name"] not in READS_CODE else {**c, "r0": None} for c in result["calls"]]
    return {"outcome": result["outcome"], "fault": fault, "cpus": cpus, "layout": layout,
            "calls": calls,
            "hazards": [(h["kind"], h["cpu"], _instruction(h["disasm"]))
                        for h in result["hazards"]],
            "injections": [(i["kind"], i.get("what"), len(i.get("addresses", ())))
                           for i in result["injections"]]}


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_a_thumb2_build_reaches_the_same_end_state_as_the_arm_build(path):
    arm, thumb = run(path, "arm"), run(path, "thumb2")
    assert (arm["isa"], thumb["isa"]) == ("arm", "thumb2")
    assert comparable(thumb) == comparable(arm)
    for cpu in thumb["cpus"]:
        if cpu["online"] and cpu["hyp"].get("HVBAR"):     # the stub ran: HSCTLR.TE is set
            assert cpu["hyp"]["HSCTLR"] & cp15.HSCTLR_TE


def test_thumb2_boot_enters_hyp_in_thumb_state_and_returns_to_thumb_code():
    """The default scenario as Thumb-2: every HYP exception is taken to a Thumb vector, every
    ERET returns to Thumb code, the trapped instructions are T32 (events carry the state)."""
    result = hypemu.run({"name": "t", "kernel": {"isa": "thumb2"},
                         "steps": [{"boot": "all"}, {"call": {"fn": "hyp_probe"}}]})
    assert result.outcome == "ok" and result.isa == "thumb2"
    entries = [e for e in result.events if e.kind == "exception"]
    erets = [e for e in result.events if e.kind == "eret"]
    assert entries and all(e.detail.endswith("(Thumb)") for e in entries)   # TE: the stub set it
    assert erets and all(e.detail.endswith("(Thumb)") for e in erets)
    assert all(e.thumb for e in result.events if e.insn is not None)
    hvcs = [e for e in result.events if e.kind == "hvc"]
    assert hvcs and all(e.insn == 0xF7E08000 for e in hvcs)               # hvc.w #0 (T1)
    assert summary(result).splitlines()[0].endswith("(kernel built for thumb2)")
