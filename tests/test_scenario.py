"""Scenario loading and validation (docs/DESIGN.md section 4).

Every file in tests/bad/ is one invalid scenario whose first line says what the error must be:
``# expect: LINE: key.path: fragment of the message``.
"""

import os
import re
import shutil
from pathlib import Path

import pytest

from hypemu.scenario import (DEFAULT_SCENARIO, DEFAULTS, HAZARD_KINDS, KEYS, OUTCOMES, Bank, BootStep,
                             CallStep, Expect, FaultMatch, HotplugStep, Scenario, ScenarioError, Skip,
                             default_of, from_mapping, key_table, load_file, load_scenario,
                             parse_size)

HERE = Path(__file__).resolve().parent
BAD = HERE / "bad"
ASM = HERE.parent / "asm"
BAD_FILES = sorted(BAD.glob("*.yaml"))
EXPECT = re.compile(rb"# expect: (\d+): (\S+): (.+)")


def _expectation(path: Path) -> tuple[int, str, str]:
    match = EXPECT.match(path.read_bytes().splitlines()[0])
    assert match, f"{path.name}: first line must be '# expect: LINE: key.path: fragment'"
    return int(match.group(1)), match.group(2).decode(), match.group(3).decode()


def _write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# --- the invalid corpus -----------------------------------------------------------------------------

def test_corpus_is_big_enough():
    assert len(BAD_FILES) >= 45


@pytest.mark.parametrize("path", BAD_FILES, ids=lambda p: p.stem)
def test_bad_file(path):
    line, key, fragment = _expectation(path)
    name = os.path.relpath(path)
    with pytest.raises(ScenarioError) as info:
        load_file(name)
    err = info.value
    text = str(err)
    assert text.startswith(f"{name}:{line}: {key}: "), text
    assert fragment in text, text
    assert (err.file, err.line, err.key) == (name, line, key)
    assert "\n" not in text and "Traceback" not in text


# --- file-level problems that cannot carry an expect line -----------------------------------------

@pytest.mark.parametrize("content", [b"", b"\n\n", b"   \n", b"\xef\xbb\xbf", b"---\n...\n"])
def test_empty_files(tmp_path, content):
    path = tmp_path / "empty.yaml"
    path.write_bytes(content)
    with pytest.raises(ScenarioError, match=r"^.*empty\.yaml:1: \(file\): empty scenario"):
        load_file(path)


def test_missing_file(tmp_path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(ScenarioError, match=r"nope\.yaml: \(file\): cannot read the file"):
        load_file(path)


def test_directory_is_not_a_file(tmp_path):
    with pytest.raises(ScenarioError, match=r"\(file\): cannot read the file"):
        load_file(tmp_path)


def test_bad_byte_line_and_column(tmp_path):
    path = tmp_path / "b.yaml"
    path.write_bytes(b"name: x\n\ndescription: ok\n  \xff\xfe\n")
    with pytest.raises(ScenarioError) as info:
        load_file(path)
    assert str(info.value) == f"{path}:4: (file): not UTF-8 text: byte 0xff at column 3"


def test_control_character(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_bytes(b"name: x\ndescription: a\x01b\n")
    with pytest.raises(ScenarioError, match=r"c\.yaml:2: \(file\): character U\+0001 is not allowed"):
        load_file(path)


def test_alias_bomb_is_refused(tmp_path):
    lines = ["name: bomb", "a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    with pytest.raises(ScenarioError, match=r"too many \(aliased\) values"):
        load_file(_write(tmp_path, "\n".join(lines) + "\n"))


def test_recursive_alias_is_refused(tmp_path):
    with pytest.raises(ScenarioError, match=r":2: .*nested too deeply"):
        load_file(_write(tmp_path, "name: loop\ninject: &x [*x]\n"))


def test_deep_nesting_is_refused(tmp_path):
    with pytest.raises(ScenarioError, match=r"nested too deeply"):
        load_file(_write(tmp_path, "name: deep\ninject: " + "[" * 5000 + "]" * 5000 + "\n"))


def test_int_with_too_many_digits(tmp_path):
    with pytest.raises(ScenarioError, match=r"s\.yaml:3: machine\.cpus: number too large"):
        load_file(_write(tmp_path, "name: digits\nmachine:\n  cpus: " + "9" * 5000 + "\n"))


# --- valid files ------------------------------------------------------------------------------------

FULL = """\
name: dual-step-1g
description: Dual-step init on a 1 GiB board, two CPUs
machine:
  cpus: 2
  ram:
    base: 0x80000000
    size: 1GiB
  tlb_entries: 0
kernel:
  page_offset: 0xC0000000
  text_offset: 0x8000
  hyp_idmap_offset: auto
hyp:
  init: dual-step
  trampoline_va: 0xFFFF0000
  bounce_page: auto
  code: builtin
  call_abi: seed
steps:
  - boot: all
  - call: {cpu: 0, fn: hyp_probe}
  - call: {cpu: 0, fn: hyp_read, args: [0xC0001000]}
  - hotplug: {cpu: 1, state: off}
  - hotplug: {cpu: 1, state: on}
inject:
  - skip: tlbiallh
limits:
  instructions: 1000000
expect:
  outcome: fault
  fault: {cpu: 1, kind: prefetch_abort, fsc: translation, level: 1}
  hazards: [stale_tlb]
"""


def test_design_example_loads(tmp_path):
    s = load_file(_write(tmp_path, FULL))
    assert (s.name, s.cpus, s.banks) == ("dual-step-1g", 2, (Bank(0x80000000, 1 << 30),))
    assert (s.page_offset, s.text_offset, s.hyp_idmap_offset) == (0xC0000000, 0x8000, None)
    assert (s.init, s.trampoline_va, s.bounce_page, s.code, s.call_abi) == \
        ("dual-step", 0xFFFF0000, "auto", "builtin", "seed")
    assert s.steps == (
        BootStep("all"),
        CallStep(cpu=0, fn="hyp_probe", args=()),
        CallStep(cpu=0, fn="hyp_read", args=(0xC0001000,)),
        HotplugStep(cpu=1, state="off"),     # YAML 1.1 reads a bare off as false
        HotplugStep(cpu=1, state="on"),
    )
    assert s.step_lines == (20, 21, 22, 23, 24)
    assert s.lines["machine.ram.size"] == 7 and s.lines["steps[2].call.args[0]"] == 22
    assert s.inject == (Skip("tlbiallh"),) and s.instructions == 1_000_000
    fault = FaultMatch(cpu=1, kind="prefetch_abort", fsc="translation", level=1,
                       given=("cpu", "kind", "fsc", "level"))
    assert s.expect == Expect(outcome="fault", fault=fault, hazards=("stale_tlb",))
    assert dict(s.expect.fault.items()) == {"cpu": 1, "kind": "prefetch_abort", "fsc": "translation",
                                            "level": 1}
    assert s.file == str(tmp_path / "s.yaml") and s.base_dir == str(tmp_path)


def test_defaults_applied(tmp_path):
    s = load_file(_write(tmp_path, "name: minimal\n"))
    assert s.description == DEFAULTS["description"]
    assert s.cpus == DEFAULTS["machine"]["cpus"]
    assert s.banks == (Bank(DEFAULTS["machine"]["ram"]["base"], DEFAULTS["machine"]["ram"]["size"]),)
    assert s.tlb_entries == 0 and s.page_offset == DEFAULTS["kernel"]["page_offset"]
    assert s.hyp_idmap_offset is None and s.init == "dual-step" and s.code == "builtin"
    assert s.steps == (BootStep("all"),) and s.step_lines == (None,)
    assert s.inject == () and s.instructions == DEFAULTS["limits"]["instructions"]
    assert s.expect == Expect(outcome="ok", fault=None, hazards=None)


def test_partial_sections_keep_other_defaults(tmp_path):
    s = load_file(_write(tmp_path, "name: p\nmachine:\n  cpus: 4\n  ram: {size: 512MiB}\n"
                                   "hyp: {call_abi: linux-3.10}\n"))
    assert s.cpus == 4 and s.banks == (Bank(0x80000000, 512 << 20),)
    assert s.call_abi == "linux-3.10" and s.trampoline_va == 0xFFFF0000


@pytest.mark.parametrize("text, value", [
    ("1GiB", 1 << 30), ("2MiB", 2 << 20), ("4KiB", 4096), ("'0x1000'", 0x1000), ("0x1000", 0x1000),
    ("4096", 4096), ("'4 KiB'", 4096), ("0x4000_0000", 1 << 30), ("'0x4000_0000'", 1 << 30),
])
def test_sizes(tmp_path, text, value):
    s = load_file(_write(tmp_path, f"name: size\nmachine:\n  ram:\n    base: 0x80000000\n    size: {text}\n"))
    assert s.banks[0].size == value


def test_parse_size():
    assert parse_size("1TiB", "k") == 1 << 40 and parse_size(" 0X10 ", "k") == 16
    for bad in (True, 1.0, None, "1 GB", "0x", "0x8__0", "-4KiB", "", [1]):
        with pytest.raises(ScenarioError, match=r"^k: expected an integer, hex or a size"):
            parse_size(bad, "k")
    with pytest.raises(ScenarioError, match="number too large"):
        parse_size("9" * 30, "k")
    with pytest.raises(ScenarioError, match="number too large"):
        parse_size(1 << 65, "k")


def test_bank_list(tmp_path):
    s = load_file(_write(tmp_path, "name: banks\nmachine:\n  ram:\n"
                                   "    - {base: 0x80000000, size: 256MiB}\n"
                                   "    - {base: 0x880000000, size: 2GiB}\n"
                                   "    - {base: 0, size: 4KiB}\n"))
    assert s.banks == (Bank(0x80000000, 256 << 20), Bank(0x880000000, 2 << 30), Bank(0, 4096))
    assert s.lines["machine.ram[1]"] == 5 and s.lines["machine.ram[2].size"] == 6


def test_bank_may_end_at_the_top_of_the_40_bit_space():
    s = from_mapping({"name": "top", "machine": {"ram": {"base": "0xFF00000000", "size": "4GiB"}}})
    assert s.banks[0].end == 1 << 40


def test_unaligned_trampoline_stays_loadable():
    """An unaligned trampoline is the kernel's refusal (config_error), not an input error."""
    s = from_mapping({"name": "t", "hyp": {"trampoline_va": 0xFFFF0800}})
    assert s.trampoline_va == 0xFFFF0800


def test_relative_code_path(tmp_path):
    (tmp_path / "guest").mkdir()
    shutil.copy(ASM / "hyp-init.S", tmp_path / "guest" / "my-init.S")
    (tmp_path / "scenarios").mkdir()
    s = load_file(_write(tmp_path, "name: own\nhyp:\n  code: ../guest/my-init.S\n", "scenarios/own.yaml"))
    assert Path(s.code).is_absolute()
    assert Path(s.code).resolve() == (tmp_path / "guest" / "my-init.S").resolve()


def test_code_path_is_relative_to_the_file_not_the_cwd(tmp_path, monkeypatch):
    shutil.copy(ASM / "hyp-init.S", tmp_path / "init.S")
    path = _write(tmp_path, "name: own\nhyp: {code: init.S}\n")
    monkeypatch.chdir(HERE)
    assert load_file(path).code == str(tmp_path / "init.S")


def test_merge_keys_and_anchors(tmp_path):
    text = ("name: merged\nbank: &bank {base: 0x80000000, size: 1GiB}\n")
    with pytest.raises(ScenarioError, match=r":2: bank: unknown key 'bank'"):
        load_file(_write(tmp_path, text))
    text = ("name: merged\nmachine:\n  ram:\n    - &b {base: 0x80000000, size: 1GiB}\n"
            "    - <<: *b\n      base: 0x880000000\n")
    s = load_file(_write(tmp_path, text))
    assert s.banks == (Bank(0x80000000, 1 << 30), Bank(0x880000000, 1 << 30))
    assert s.lines["machine.ram[1].base"] == 6 and s.lines["machine.ram[1].size"] == 4


def test_utf8_bom_and_crlf(tmp_path):
    path = tmp_path / "w.yaml"
    path.write_bytes(b"\xef\xbb\xbfname: windows\r\nmachine:\r\n  cpus: 9\r\n")
    with pytest.raises(ScenarioError, match=r"w\.yaml:3: machine\.cpus: must be 1\.\.8, got 9"):
        load_file(path)


def test_multi_document_marker_at_start_is_fine(tmp_path):
    assert load_file(_write(tmp_path, "---\nname: one\n...\n")).name == "one"


def test_call_after_hotplug_off_is_refused(tmp_path):
    text = ("name: plug-off\nmachine: {cpus: 2}\nsteps:\n  - boot: all\n  - hotplug: {cpu: 1, state: off}\n"
            "  - call: {cpu: 1, fn: hyp_probe}\n")
    with pytest.raises(ScenarioError, match=r":6: steps\[2\]\.call\.cpu: cpu 1 is offline at this step \(since steps\[1\]\)"):
        load_file(_write(tmp_path, text))


def test_odd_keys_are_quoted_in_the_path(tmp_path):
    with pytest.raises(ScenarioError) as info:
        load_file(_write(tmp_path, "name: odd\nmachine:\n  cpus: 1\n  'ram size': 1GiB\n"))
    assert str(info.value).startswith(f"{tmp_path / 's.yaml'}:4: machine['ram size']: unknown key 'ram size'")


def test_yaml_booleans_are_named(tmp_path):
    with pytest.raises(ScenarioError, match=r":1: name: expected a string, got off \(YAML 1.1 reads yes/no/on/off/true/false as "
                       r"booleans; quote it to mean the word\)"):
        load_file(_write(tmp_path, "name: off\n"))


def test_quoted_on_off_are_hotplug_states_too(tmp_path):
    text = "name: q\nmachine: {cpus: 2}\nsteps:\n  - boot: all\n  - hotplug: {cpu: 1, state: 'off'}\n"
    assert load_file(_write(tmp_path, text)).steps[1] == HotplugStep(cpu=1, state="off")


# --- the Python API: the same checks, without lines ------------------------------------------------

def test_from_mapping_validates_without_file():
    with pytest.raises(ScenarioError) as info:
        from_mapping({"name": "x", "machine": {"cpus": 9}})
    assert str(info.value) == "machine.cpus: must be 1..8, got 9"
    assert info.value.file is None and info.value.line is None


@pytest.mark.parametrize("mapping, message", [
    ({}, "name: missing required key 'name'"),
    ({"name": "x", "machine": {"ram": [{"base": 0x80000000, "size": 1 << 30},
                                       {"base": 0xB0000000, "size": 1 << 20}]}},
     "machine.ram[1]: bank [0xb0000000, 0xb0100000) overlaps machine.ram[0] [0x80000000, 0xc0000000)"),
    ({"name": "x", "stpes": []}, "stpes: unknown key 'stpes', did you mean 'steps'?"),
    ({"name": "x", "steps": [{"call": {"fn": "f", "args": [1, 2, 3, 4]}}]},
     "steps[0].call.args: a HYP call takes at most 3 arguments (r1-r3), got 4"),
    ({"name": "x", "expect": {"outcome": "hazard", "hazards": ["stale"]}},
     "expect.hazards[0]: unknown value 'stale', did you mean 'stale_tlb'?"),
    ({"name": "x", "machine": {"cpus": True}}, "machine.cpus: expected an integer, got true"),
    ({"name": "x", 3: 4}, "3: keys must be strings, got 3"),
])
def test_from_mapping_errors(mapping, message):
    with pytest.raises(ScenarioError) as info:
        from_mapping(mapping)
    assert str(info.value).startswith(message), str(info.value)


def test_from_mapping_refuses_a_non_mapping():
    with pytest.raises(ScenarioError, match=r"^\(scenario\): expected a mapping, got a list"):
        from_mapping([("name", "x")])


def test_from_mapping_does_not_touch_its_input():
    user = {"name": "x", "machine": {"cpus": 2}, "steps": [{"boot": [1, 0]}]}
    before = repr(user), repr(DEFAULTS)
    s = from_mapping(user)
    assert (repr(user), repr(DEFAULTS)) == before
    assert s.steps == (BootStep((1, 0)),) and s.raw == user


def test_from_mapping_code_path_without_file(tmp_path, monkeypatch):
    shutil.copy(ASM / "hyp-init.S", tmp_path / "i.S")
    monkeypatch.chdir(tmp_path)
    assert from_mapping({"name": "c", "hyp": {"code": "i.S"}}).code == str(tmp_path / "i.S")
    with pytest.raises(ScenarioError, match=r"^hyp\.code: no such file: "):
        from_mapping({"name": "c", "hyp": {"code": "nope.S"}})


def test_load_scenario_accepts_paths_mappings_and_scenarios(tmp_path):
    path = _write(tmp_path, "name: via-path\n")
    assert load_scenario(path).name == "via-path"
    assert load_scenario(str(path)).name == "via-path"
    s = load_scenario(DEFAULT_SCENARIO)
    assert isinstance(s, Scenario) and load_scenario(s) is s
    assert s.steps[-1] == CallStep(cpu=0, fn="hyp_probe", args=())
    with pytest.raises(TypeError):
        load_scenario(42)


# --- the key table -----------------------------------------------------------------------------

def _leaves(mapping, prefix=""):
    for key, value in mapping.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict) and key != "ram":
            yield from _leaves(value, path)
        else:
            yield path


def test_every_default_is_documented():
    documented = {path for path, _, _ in KEYS}
    assert set(_leaves(DEFAULTS)) <= documented
    assert default_of("machine.ram.size") == 1 << 30 and default_of("steps[].call.cpu") == 0
    assert default_of("name") is None


def test_key_table_lists_every_key():
    table = key_table()
    for path, _, _ in KEYS:
        assert f"| `{path}` |" in table
    assert "| `hyp.trampoline_va` | address | `0xffff0000` |" in table


def test_constants():
    assert OUTCOMES == ("ok", "fault", "hazard", "config_error", "timeout")
    assert HAZARD_KINDS == ("stale_tlb", "bbm", "missing_isb", "missing_dsb")
    from hypemu.hazards import KINDS
    assert KINDS == HAZARD_KINDS   # the loader accepts exactly what the checks report
