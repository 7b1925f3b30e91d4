"""A Thumb-2 build of a kernel tree (``kernel.isa: thumb2`` or ``kernel.config:
{CONFIG_THUMB2_KERNEL: y}``): the test tree's init.S and hyp-stub.S preprocessed with
CONFIG_THUMB2_KERNEL, so that its headers' ARM()/THUMB()/W() and __HVC/__ERET pick the Thumb
forms, assembled as Thumb-2; it boots, survives hotplug and ends as the ARM build does, but for
HSCTLR.TE."""

from __future__ import annotations

from pathlib import Path

import pytest

import hypemu
from hypemu import cpp
from hypemu.errors import ScenarioError
from hypemu.kernel_tree import kernel_config, kernel_regions

TREE = Path(__file__).resolve().parent / "kernel_tree"
NEEDS_CPP = pytest.mark.skipif(cpp.external_command() is None,
                               reason="no external C preprocessor (arm-linux-gnueabihf-cpp/gcc or "
                                      "$CROSS_COMPILE): the python one runs")
PREPROCESSORS = [pytest.param("external", marks=NEEDS_CPP), "python"]
HSCTLR_TE = 1 << 30
THUMB2 = {"CONFIG_THUMB2_KERNEL": "1"}


def tree_run(cpus: int, preprocessor: str = "python", **kernel) -> hypemu.Result:
    last = cpus - 1
    steps = [{"boot": "all"}, {"hotplug": {"cpu": last, "state": "off"}},
             {"hotplug": {"cpu": last, "state": "on"}}, {"call": {"cpu": last, "fn": "hyp_probe"}},
             {"call": {"cpu": 0, "fn": "hyp_tlbi_all_is"}}]
    return hypemu.run({"name": "tree", "machine": {"cpus": cpus}, "kernel": kernel, "steps": steps,
                       "hyp": {"code": {"kernel": str(TREE), "preprocessor": preprocessor}}})


@pytest.mark.parametrize("preprocessor", PREPROCESSORS)
@pytest.mark.parametrize("cpus", [1, 4])
def test_the_thumb2_tree_boots_survives_hotplug_and_ends_as_the_arm_build(preprocessor, cpus):
    arm = tree_run(cpus, preprocessor).to_dict()
    thumb = tree_run(cpus, preprocessor, isa="thumb2").to_dict()
    assert (thumb["outcome"], thumb["passed"], thumb["isa"]) == ("ok", True, "thumb2"), thumb
    assert (arm["outcome"], arm["isa"]) == ("ok", "arm")
    assert [c["r0"] for c in thumb["calls"]] == [c["r0"] for c in arm["calls"]] == \
        [0x4B564D21, 0]
    for a, t in zip(arm["cpus"], thumb["cpus"], strict=True):
        assert (t["online"], t["mode"]) == (a["online"], a["mode"]) == (True, "svc")
        assert t["hyp"]["HSCTLR"] == a["hyp"]["HSCTLR"] | HSCTLR_TE      # TE: all that differs
        assert not a["hyp"]["HSCTLR"] & HSCTLR_TE
        assert t["hyp"]["HTTBR"] == thumb["layout"]["runtime_pgd"]


def test_config_thumb2_kernel_is_kernel_isa_thumb2():
    for kernel in ({"config": {"CONFIG_THUMB2_KERNEL": "y"}}, {"isa": "thumb2"},
                   {"isa": "thumb2", "config": {"CONFIG_THUMB2_KERNEL": True}}):
        s = hypemu.load_scenario({"name": "t", "kernel": kernel,
                                  "hyp": {"code": {"kernel": str(TREE)}}})
        assert s.isa == "thumb2" and ("CONFIG_THUMB2_KERNEL", "1") in s.kernel_config, kernel
        m = hypemu.Machine(s)
        m.boot()
        assert m.kernel.image.init.thumb and m.kernel.image.stub.thumb
        assert m.kernel.image.pl1.thumb and m.kernel.image.runtime.thumb   # asm/ in Thumb too
    s = hypemu.load_scenario({"name": "t", "hyp": {"code": {"kernel": str(TREE)}}})
    assert s.isa == "arm" and "CONFIG_THUMB2_KERNEL" not in dict(s.kernel_config)


@pytest.mark.parametrize("kernel, message", [
    ({"isa": "arm", "config": {"CONFIG_THUMB2_KERNEL": "y"}},
     "kernel.config.CONFIG_THUMB2_KERNEL: set .*but kernel.isa is arm"),
    ({"isa": "thumb2", "config": {"CONFIG_THUMB2_KERNEL": "n"}},
     "kernel.config.CONFIG_THUMB2_KERNEL: unset, but kernel.isa is thumb2"),
])
def test_a_scenario_that_says_both_builds_is_refused(kernel, message):
    with pytest.raises(ScenarioError, match=message):
        hypemu.load_scenario({"name": "t", "kernel": kernel, "hyp": {"code": {"kernel": str(TREE)}}})


def test_the_thumb_build_takes_the_thumb_lines_of_the_headers():
    """Hand-encoded: HVC #0 (T1) is 0xf7e0 0x8000, ERET (SUBS PC, LR, #0, T1) 0xf3de 0x8f00, each
    stored first halfword first; W(b) is a 4-byte b.w, so the vectors keep 4-byte slots; the
    stub's THUMB() line sets HSCTLR.TE, the ARM build has neither."""
    config = kernel_config(0xFFFF0000, 2, THUMB2)
    assert config["CONFIG_ARM_ASM_UNIFIED"] == "1"          # Kconfig: THUMB2_KERNEL selects it
    thumb = kernel_regions(str(TREE), "python", "kernel", 0xFFFF0000, 2, THUMB2)
    arm = kernel_regions(str(TREE), "python", "kernel", 0xFFFF0000, 2)
    hvc, eret = bytes.fromhex("e0f70080"), bytes.fromhex("def3008f")
    stub = thumb["stub"].assemble(0x80009000, {})
    assert stub.thumb and hvc in stub.code and eret in stub.code
    assert "orr r7, r7, #(1 << 30)" in " ".join(thumb["stub"].source.text.split())
    arm_stub = arm["stub"].assemble(0x80009000, {})
    assert not arm_stub.thumb and (0xE1400070).to_bytes(4, "little") in arm_stub.code
    assert "1 << 30" not in arm["stub"].source.text
    init = thumb["init"].assemble(0x80100000, {})
    assert init.thumb and eret in init.code
    # the vector table: 8 b.w (T4: first halfword 0xf... ), branches to self but the HVC's
    words = [int.from_bytes(init.code[i:i + 2], "little") for i in range(0, 32, 2)]
    assert all(hw >> 11 == 0b11110 for hw in words[0::2])
    assert words[0:2] == [0xF7FF, 0xBFFE]                   # b.w . : offset -4


@pytest.mark.parametrize("preprocessor", PREPROCESSORS)
def test_the_preprocessor_sees_the_instruction_set_as_kbuilds_gcc_does(tmp_path, preprocessor):
    """kbuild passes -marm or -mthumb (a cross GCC may default to Thumb), and GCC predefines
    __thumb__/__thumb2__ for Thumb only, __arm__ and __GNUC__ always (a v3.10 Thumb-2 kernel's
    unified.h refuses a __GNUC__ below 4): pcpp predefines the same."""
    import shutil
    root = tmp_path / "linux"
    shutil.copytree(TREE, root)
    unified = root / "arch/arm/include/asm/unified.h"
    unified.write_text(unified.read_text().replace("#ifdef CONFIG_THUMB2_KERNEL\n", """\
#if !defined(__arm__) || !defined(__ARMEL__) || __GNUC__ < 4
#error not an ARM GCC
#endif
#ifdef CONFIG_THUMB2_KERNEL
#ifndef __thumb2__
#error a Thumb-2 kernel built for ARM
#endif
#elif defined(__thumb__)
#error an ARM kernel built for Thumb
#endif
#ifdef CONFIG_THUMB2_KERNEL
""", 1))
    for config in ({}, THUMB2):
        regions = kernel_regions(str(root), preprocessor, "kernel", 0xFFFF0000, 2, config)
        assert regions["init"].assemble(0x80100000, {}).thumb == bool(config)
    unified.write_text("#error the copy is read\n")
    with pytest.raises(hypemu.errors.InputError, match="the copy is read"):
        kernel_regions(str(root), preprocessor, "kernel", 0xFFFF0000, 1)     # not cached


HAZARD_SCENARIOS = ("missing-dsb", "remap-without-bbm", "remap-without-tlbi",
                    "stale-tlb-skip-tlbiallh", "idmap-gone-after-init", "no-bounce-page")


@pytest.mark.parametrize("name", HAZARD_SCENARIOS)
def test_the_thumb2_tree_shows_the_hazards_and_faults_of_the_arm_build(name):
    """The shipped hazard and fault scenarios on the tree, built both ways: the same outcome, the
    same hazards (kind, CPU, VA) and the same fault (kind, syndrome, fault status, level)."""
    import yaml
    from hypemu.scenario import from_mapping
    path = TREE.parent.parent / "scenarios" / f"{name}.yaml"
    data = yaml.safe_load(path.read_text())
    seen = []
    for isa in ("arm", "thumb2"):
        scenario = from_mapping({**data, "kernel": {**(data.get("kernel") or {}), "isa": isa}},
                                base_dir=str(path.parent), kernel=str(TREE))
        result = hypemu.run(scenario).to_dict()
        assert result["isa"] == isa
        fault = result.get("fault") or {}
        seen.append((result["outcome"], [(h["kind"], h["cpu"], h["va"]) for h in result["hazards"]],
                     fault.get("kind"), fault.get("hsr"), fault.get("fsc"), fault.get("level")))
    assert seen[0] == seen[1]
    assert seen[0][0] in ("hazard", "fault")
