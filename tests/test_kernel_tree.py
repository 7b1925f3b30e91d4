"""A kernel source tree as the HYP code (``hyp.code: {kernel: PATH}``, ``--kernel PATH``): the test
tree of tests/kernel_tree (hypemu's own init.S and hyp-stub.S, written to the v3.10 contracts),
preprocessed by the user's cpp and by pcpp, booted on 1 and 4 CPUs with hotplug; the kernel stub's
sequence as it runs; the version's defaults; errors at the kernel's own file and line; the tree
never written to; the shipped scenario library on the tree."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

import hypemu
from hypemu import cli, cpp, events
from hypemu.errors import ScenarioError
from hypemu.kernel_tree import INIT_S, STUB_S, KernelTree, kernel_config, kernel_regions
from hypemu.scenario import load_file

pytest_plugins = ["pytester"]

TREE = Path(__file__).resolve().parent / "kernel_tree"
SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
HAS_CPP = cpp.external_command() is not None
NEEDS_CPP = pytest.mark.skipif(not HAS_CPP, reason="no external C preprocessor (arm-linux-gnueabihf-"
                                                   "cpp/gcc or $CROSS_COMPILE): the python one runs")
PREPROCESSORS = [pytest.param("external", marks=NEEDS_CPP), "python"]
HSCTLR_RES1 = 0x30C50818     # bits 29:28, 23:22, 18, 16, 11, 4:3 (ARMv8 AArch32 HSCTLR RES1)


def tree_scenario(tree: Path = TREE, preprocessor: str = "python", cpus: int = 1,
                  steps: list | None = None, **sections) -> dict:
    hyp = {"code": {"kernel": str(tree), "preprocessor": preprocessor}, **sections.pop("hyp", {})}
    return {"name": "tree", "machine": {"cpus": cpus}, "hyp": hyp,
            "steps": steps or [{"boot": "all"}], **sections}


def copy_tree(tmp_path: Path, **edits: str) -> Path:
    """A copy of the test tree, with files (relative path -> new text) replaced."""
    root = tmp_path / "linux"
    shutil.copytree(TREE, root)
    for relative, text in edits.items():
        (root / relative.replace("__", "/")).write_text(text)
    return root


@pytest.mark.parametrize("preprocessor", PREPROCESSORS)
@pytest.mark.parametrize("cpus", [1, 4])
def test_the_test_tree_boots_and_survives_hotplug(preprocessor, cpus):
    last = cpus - 1
    steps = [{"boot": "all"}, {"hotplug": {"cpu": last, "state": "off"}},
             {"hotplug": {"cpu": last, "state": "on"}}, {"call": {"cpu": last, "fn": "hyp_probe"}}]
    result = hypemu.run(tree_scenario(preprocessor=preprocessor, cpus=cpus, steps=steps))
    assert (result.outcome, result.passed) == ("ok", True), result.reason
    assert [c["r0"] for c in result.calls] == [0x4B564D21]
    runtime = result.to_dict()["layout"]["runtime_pgd"]
    for cpu in result.to_dict()["cpus"]:
        assert cpu["online"] and cpu["mode"] == "svc"
        assert cpu["hyp"]["HTTBR"] == runtime and cpu["hyp"]["HSCTLR"] & 1


@NEEDS_CPP
def test_both_preprocessors_give_the_same_code():
    for region in ("init", "stub"):
        built = [kernel_regions(str(TREE), which, "kernel", 0xFFFF0000, 2)[region]
                 .assemble(0x80009000, {}) for which in ("external", "python")]
        assert built[0].code == built[1].code, region
        assert dict(built[0].symbols) == dict(built[1].symbols)
    assert kernel_regions(str(TREE), "external", "kernel", 0xFFFF0000, 2)["init"].source.tool \
        != "pcpp"


def test_the_kernel_stub_runs_with_the_kernels_contract():
    m = hypemu.Machine(tree_scenario(cpus=2))
    m.boot()
    image, log = m.kernel.image, m.events
    stub, pl1 = image.stub, image.pl1
    entries = [e for e in log if e.name == "enter kernel in HYP"]
    assert [(e.cpu, e.pc) for e in entries] == [(0, pl1.address("kernel_hyp_entry"))] * 1 + \
        [(1, pl1.address("kernel_hyp_entry"))]
    assert "__hyp_stub_install at" in entries[0].detail
    assert "__hyp_stub_install_secondary at" in entries[1].detail
    for cpu in (0, 1):
        own = [e for e in log if e.cpu == cpu and e.kind in (events.SYSREG, events.ERET, events.HVC)]
        in_stub = [(e.name, e.value) for e in own if stub.base <= e.pc < stub.end][:7]
        assert in_stub == [("HVBAR", stub.address("hyp_stub_vectors")), ("HCR", 0),
                           ("HCPTR", 0x33FF), ("HSTR", 0), ("HSCTLR", HSCTLR_RES1), ("HDCR", 0x6),
                           ("CNTHCTL", 0x3)]
        # then head.S's drop to SVC, by hypemu's helper: SPSR_hyp (SVC, A/I/F masked), ELR, ERET
        helper = [(e.name, e.value) for e in own if pl1.base <= e.pc < pl1.end][:3]
        assert [name for name, _ in helper] == ["SPSR_hyp", "ELR_hyp", "eret"]
        assert helper[0][1] & 0x1FF == 0x1D3 and helper[1][1] == m.kernel.sentinel
        # then __hyp_set_vectors: the stub's own HVC from SVC, answered by the stub's vectors
        hvc = next(e for e in own if e.kind == events.HVC)
        assert hvc.pc == stub.address("__hyp_set_vectors")
    assert m.read32(stub.address("__boot_cpu_mode")) == 0x1A       # HYP, no mismatch flagged


def test_kernel_config_overrides_the_boards_values():
    """Without the architected timer the stub leaves CNTHCTL alone; CONFIG_VECTORS_BASE is the
    trampoline VA, which the tree's init.S jumps to (its TRAMPOLINE_VA)."""
    m = hypemu.Machine(tree_scenario(kernel={"config": {"CONFIG_ARM_ARCH_TIMER": False}},
                                     hyp={"trampoline_va": 0xFFFE0000}))
    m.boot()
    assert not [e for e in m.events if e.name == "CNTHCTL"]
    httbr = [e for e in m.events if e.name == "HTTBR"]
    assert [e.pc >> 12 for e in httbr][-1] == 0xFFFE0    # the runtime HTTBR write, in the trampoline
    assert kernel_config(0xFFFE0000, 1, {"CONFIG_ARM_ARCH_TIMER": None}).get(
        "CONFIG_ARM_ARCH_TIMER") is None


def test_the_trees_version_picks_the_defaults(tmp_path):
    s = hypemu.load_scenario(tree_scenario())
    assert (s.init, s.call_abi, s.stub) == ("dual-step", "linux-3.10", "kernel")
    makefile = (TREE / "Makefile").read_text().replace("PATCHLEVEL = 10", "PATCHLEVEL = 9")
    old = copy_tree(tmp_path, Makefile=makefile)
    assert KernelTree.open(old).version == (3, 9)
    s = hypemu.load_scenario(tree_scenario(old))
    assert (s.init, s.call_abi) == ("single-step", "seed")
    s = hypemu.load_scenario(tree_scenario(old, hyp={"init": "dual-step", "call_abi": "linux-3.10",
                                                     "stub": "builtin"}))
    assert (s.init, s.call_abi, s.stub) == ("dual-step", "linux-3.10", "builtin")


def test_a_tree_without_32bit_kvm_is_an_input_error(tmp_path, capsys):
    makefile = (TREE / "Makefile").read_text().replace("VERSION = 3", "VERSION = 5") \
        .replace("PATCHLEVEL = 10", "PATCHLEVEL = 7")
    root = copy_tree(tmp_path, Makefile=makefile)
    (root / INIT_S).unlink()
    with pytest.raises(ScenarioError, match=r"hyp\.code\.kernel: .*no arch/arm/kvm/init\.S \(Linux "
                                            r"v5\.7\): 32-bit KVM/ARM was removed in v5\.7"):
        hypemu.load_scenario(tree_scenario(root))
    assert cli.main(["run", "--kernel", str(root)]) == 2
    assert "removed in v5.7" in capsys.readouterr().err
    assert cli.main(["validate", "--kernel", str(tmp_path), str(SCENARIOS / "default.yaml")]) == 2
    assert "cannot read its Makefile" in capsys.readouterr().err


@pytest.mark.parametrize("preprocessor", PREPROCESSORS)
def test_an_assembler_error_points_at_the_kernels_line(tmp_path, preprocessor, capsys):
    lines = (TREE / INIT_S).read_text().splitlines()
    at = lines.index("hyp_init_phase2:") + 2            # after the label: mov sp, r0
    lines.insert(at - 1, "\tmovx\tr0, r1")
    root = copy_tree(tmp_path, **{INIT_S.replace("/", "__"): "\n".join(lines) + "\n"})
    with pytest.raises(ScenarioError) as err:
        hypemu.load_scenario(tree_scenario(root, preprocessor))
    assert f"hyp.code: {root}/{INIT_S}:{at}: " in str(err.value)
    assert cli.main(["validate", "--kernel", str(root), str(SCENARIOS / "default.yaml")]) == 2
    assert f"{root}/{INIT_S}:{at}: " in capsys.readouterr().err


@pytest.mark.parametrize("preprocessor", PREPROCESSORS)
def test_a_preprocessor_error_points_at_the_kernels_line(tmp_path, preprocessor):
    text = (TREE / STUB_S).read_text()
    at = text.splitlines().index("#include <asm/virt.h>") + 1
    text = text.replace("#include <asm/virt.h>", "#include <asm/no-such-header.h>")
    root = copy_tree(tmp_path, **{STUB_S.replace("/", "__"): text})
    with pytest.raises(ScenarioError, match=rf"hyp\.stub: {root}/{STUB_S}:{at}: .*no-such-header"):
        hypemu.load_scenario(tree_scenario(root, preprocessor))
    text = text.replace("#include <asm/no-such-header.h>", '#error "not this one"')
    (root / STUB_S).write_text(text)
    with pytest.raises(ScenarioError, match=rf"{root}/{STUB_S}:{at}: .*not this one"):
        hypemu.load_scenario(tree_scenario(root, preprocessor))


def test_the_tree_is_never_written_to(tmp_path):
    root = copy_tree(tmp_path)
    paths = set(root.rglob("*"))
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in paths if p.is_file()}
    for preprocessor in ("python", "external") if HAS_CPP else ("python",):
        assert hypemu.run(tree_scenario(root, preprocessor, cpus=2)).passed
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in root.rglob("*")
            if p.is_file()} == before
    assert set(root.rglob("*")) == paths          # no generated header, no object file left there


def test_a_stub_too_large_for_the_pl1_page_is_refused(tmp_path):
    text = (TREE / STUB_S).read_text().replace("\t.long\t0\n", "\t.long\t0\n\t.space\t0x1000\n", 1)
    root = copy_tree(tmp_path, **{STUB_S.replace("/", "__"): text})
    with pytest.raises(hypemu.errors.GuestContractError, match="hyp.stub: .*must fit"):
        hypemu.Machine(tree_scenario(root))


# --- the shipped library on the tree ---------------------------------------------------------------

# Scenarios whose point is hypemu's or their own init code, which --kernel replaces by the tree's.
NOT_ON_A_TREE = {
    "init-never-returns": "its own init code spins: the tree's returns",
    "missing-isb": "its skip names runtime_stack_isb, a label of its own init code",
    "single-step": "it asks for the single-step design; the tree's init.S (v3.10) is dual-step",
    "single-step-hotplug": "the same",
    "single-step-stale-idmap": "the same",
    "no-bounce-page": "its expect.fault.pc is where the jump of the built-in init code lands",
}
LIBRARY = sorted(SCENARIOS.glob("*.yaml"))


@pytest.mark.parametrize("path", LIBRARY, ids=[p.stem for p in LIBRARY])
def test_the_library_runs_on_the_tree(path):
    """Every shipped scenario meets its expectation with the tree's code in place of hypemu's,
    but those listed (which, run on the tree, do not: the list stays honest)."""
    try:
        passed = hypemu.run(load_file(path, kernel=str(TREE))).passed
    except hypemu.errors.InputError:
        passed = False
    assert passed == (path.stem not in NOT_ON_A_TREE), NOT_ON_A_TREE.get(path.stem)


def test_run_kernel_runs_the_library(capsys):
    files = [str(p) for p in LIBRARY if p.stem not in NOT_ON_A_TREE]
    assert cli.main(["run", "--kernel", str(TREE), *files]) == 0
    assert f"{len(files)} passed, 0 failed" in capsys.readouterr().out
    assert cli.main(["validate", "--kernel", str(TREE), *files]) == 0


def test_the_plugin_option_puts_the_tree_in_every_scenario(pytester):
    pytester.makeini("[pytest]\nhypemu_scenarios = s/*.yaml\n")
    (pytester.path / "s").mkdir()
    (pytester.path / "s" / "probe.yaml").write_text(textwrap.dedent("""\
        name: probe
        machine: {cpus: 2}
        hyp: {code: own-init.S}
        steps: [{boot: all}, {call: {cpu: 1, fn: hyp_probe}}]
        """))
    (pytester.path / "s" / "own-init.S").write_text("not assembly\n")
    result = pytester.runpytest("-p", "no:hypothesispytest", f"--hypemu-kernel={TREE}", "-v")
    result.assert_outcomes(passed=1)
    result = pytester.runpytest("-p", "no:hypothesispytest")     # its own code does not assemble
    result.assert_outcomes(errors=1)
    result = pytester.runpytest("-p", "no:hypothesispytest", "--hypemu-kernel=nowhere")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--hypemu-kernel: *nowhere: not a directory*"])


def test_hyp_stub_choices(tmp_path):
    with pytest.raises(ScenarioError, match="hyp.stub: 'kernel' is the stub of a kernel tree"):
        hypemu.load_scenario({"name": "x", "hyp": {"stub": "kernel"}})
    assert hypemu.load_scenario({"name": "x"}).stub == "builtin"
    # a stub of one's own, to the kernel's contract, preprocessed with the tree's headers
    own = tmp_path / "my-stub.S"
    own.write_text((TREE / STUB_S).read_text())
    s = hypemu.load_scenario(tree_scenario(hyp={"stub": str(own)}))
    assert s.stub == str(own)
    result = hypemu.run(s)
    assert result.passed, result.reason
    # without a tree, a stub file is assembled as it is: here the tree's, preprocessed beforehand
    plain = tmp_path / "plain-stub.S"
    plain.write_text(kernel_regions(str(TREE), "python", "kernel", 0xFFFF0000, 1)["stub"].source.text)
    s = hypemu.load_scenario({"name": "plain", "machine": {"cpus": 2}, "hyp": {"stub": str(plain)}})
    result = hypemu.run(s)
    assert result.passed and s.code == "builtin", result.reason
    assert [e.name for e in result.events].count("CNTHCTL") == 2      # the kernel's stub ran twice
    # the built-in stub with the tree's init code: hypemu's contract (the stub drops to SVC)
    m = hypemu.Machine(tree_scenario(cpus=2, hyp={"stub": "builtin"}))
    m.boot()
    assert m.kernel.image.stub.filename.endswith("asm/hyp-stub.S")
    assert not [e for e in m.events if e.name in ("HCR", "CNTHCTL")]


def test_a_stub_that_leaves_no_hyp_mode_is_the_stubs_fault(tmp_path):
    """is_hyp_mode_available(): a stub that records a wrong boot mode (0x1b) then finds the CPU in
    another mode (HYP) than the recorded one, flags the mismatch (0x100) and installs nothing."""
    text = (TREE / STUB_S).read_text().replace(
        "\tstr\tr4, [r5, r6]\t\t@ __boot_cpu_mode = this CPU's mode",
        "\teor\tr4, r4, #1\n\tstr\tr4, [r5, r6]")        # records SVC's neighbour, not HYP
    root = copy_tree(tmp_path, **{STUB_S.replace("/", "__"): text})
    with pytest.raises(hypemu.errors.InputError, match=r"__boot_cpu_mode = 0x11b .*no HYP mode"):
        hypemu.run(tree_scenario(root))


@pytest.mark.skipif(not __import__("os").environ.get("HYPEMU_LINUX_TREES"),
                    reason="set HYPEMU_LINUX_TREES to kernel trees (colon-separated) to boot them")
def test_real_kernel_trees_boot():
    """A user's Linux trees (v3.9 or later, 32-bit KVM): their own init.S and stub come up on two
    CPUs, built as an ARM and as a Thumb-2 kernel (CONFIG_THUMB2_KERNEL, HSCTLR.TE set). v3.9's
    single-step design loses the idmap after boot, so only v3.10 and later survive a hotplug."""
    import os
    for tree in os.environ["HYPEMU_LINUX_TREES"].split(":"):
        steps = [{"boot": "all"}, {"call": {"cpu": 1, "fn": "hyp_probe"}}]
        for isa in ("arm", "thumb2"):
            result = hypemu.run(tree_scenario(Path(tree), "auto", cpus=2, steps=steps,
                                              kernel={"isa": isa}))
            assert result.passed and result.isa == isa, (tree, isa, result.reason)
            assert all(bool(cpu["hyp"]["HSCTLR"] & 1 << 30) == (isa == "thumb2")
                       for cpu in result.to_dict()["cpus"])


@pytest.mark.skipif(shutil.which("arm-linux-gnueabihf-as") is None,
                    reason="GNU as for ARM (Debian's binutils-arm-linux-gnueabihf) is not installed")
def test_the_trees_objects_run_the_kernel_stub_through_the_elf_loader(tmp_path):
    """init.o and hyp-stub.o that GNU as built from the tree's preprocessed sources: an ELF that
    defines the kernel's stub entries gets the kernel's stub contract (hyp.stub: auto)."""
    import subprocess
    objects = []
    for region, name in (("init", "init"), ("stub", "hyp-stub")):
        text = kernel_regions(str(TREE), "python", "kernel", 0xFFFF0000, 2)[region].source.text
        (tmp_path / f"{name}.s").write_text(text)
        subprocess.run(["arm-linux-gnueabihf-as", "-march=armv7-a+virt", "-o", f"{name}.o",
                        f"{name}.s"], cwd=tmp_path, check=True, capture_output=True)
        objects.append(str(tmp_path / f"{name}.o"))
    steps = [{"boot": "all"}, {"hotplug": {"cpu": 1, "state": "off"}},
             {"hotplug": {"cpu": 1, "state": "on"}}, {"call": {"cpu": 1, "fn": "hyp_probe"}}]
    s = hypemu.load_scenario({"name": "objects", "machine": {"cpus": 2}, "steps": steps,
                              "hyp": {"code": {"elf": objects}, "call_abi": "linux-3.10"}})
    assert s.stub == "kernel"
    result = hypemu.run(s)
    assert result.passed, result.reason
    entries = [e.detail for e in result.events if e.name == "enter kernel in HYP"]
    assert [d.split()[1] for d in entries] == ["__hyp_stub_install"] + \
        ["__hyp_stub_install_secondary"] * 2
