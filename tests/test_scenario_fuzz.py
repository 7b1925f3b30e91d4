"""Property: whatever the input, loading a scenario returns a Scenario or raises ScenarioError, never
anything else (no KeyError, TypeError, yaml error or traceback reaches the user)."""

import copy
import string

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hypemu.scenario import DEFAULT_SCENARIO, Scenario, ScenarioError, from_mapping, load_file

FULL = {
    "name": "fuzz-base",
    "description": "every key of DESIGN.md section 4",
    "machine": {"cpus": 2, "ram": [{"base": 0x80000000, "size": "1GiB"},
                                   {"base": "0x880000000", "size": 1 << 20}], "tlb_entries": 4},
    "kernel": {"page_offset": 0xC0000000, "text_offset": 0x8000, "hyp_idmap_offset": 0x1000},
    "hyp": {"init": "dual-step", "trampoline_va": 0xFFFF0000, "bounce_page": "never",
            "code": "builtin", "call_abi": "linux-3.10"},
    "steps": [{"boot": [0, 1]}, {"call": {"cpu": 1, "fn": "hyp_read", "args": [0xC0001000, 2]}},
              {"hotplug": {"cpu": 1, "state": "off"}}, {"hotplug": {"cpu": 1, "state": "on"}}],
    "inject": [{"skip": "tlbiallh"}],
    "limits": {"instructions": 5000},
    "expect": {"outcome": "fault", "fault": {"cpu": 1, "kind": "data_abort", "fsc": None, "level": 2},
               "hazards": ["stale_tlb"]},
}
BASES = [DEFAULT_SCENARIO, FULL, {"name": "minimal"}]

KEY_WORDS = ["name", "machine", "cpus", "ram", "base", "size", "kernel", "hyp", "code", "steps", "boot",
             "call", "fn", "args", "cpu", "hotplug", "state", "expect", "outcome", "fault", "kind",
             "hazards", "inject", "skip", "limits", "instructions", "all", "auto", "builtin"]

scalars = st.one_of(
    st.none(), st.booleans(), st.floats(allow_nan=True, allow_infinity=True),
    st.integers(), st.integers(min_value=-(1 << 80), max_value=1 << 80), st.sampled_from(
        [0, 1, 7, 8, 9, 4096, 0x1000, 1 << 32, (1 << 32) - 1, 1 << 40, 1 << 64, (1 << 64) + 1, -1]),
    st.text(max_size=20), st.sampled_from(KEY_WORDS + ["1GiB", "0x1000", "4KiB", "1TiB", "0x", "-1",
                                                       "on", "off", "dual-step", "seed", "ok"]),
)
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4),
    st.dictionaries(st.one_of(st.sampled_from(KEY_WORDS), st.text(max_size=8), st.integers()),
                    inner, max_size=4)), max_leaves=12)


def _paths(node, prefix=()):
    """Every (container path, key) in a nested mapping/list."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield prefix, key
            yield from _paths(value, prefix + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield prefix, index
            yield from _paths(value, prefix + (index,))


def _at(node, path):
    for part in path:
        node = node[part]
    return node


@st.composite
def mutated(draw):
    scenario = copy.deepcopy(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(1, 4))):
        spots = list(_paths(scenario))
        if not spots:
            break
        path, key = draw(st.sampled_from(spots))
        parent = _at(scenario, path)
        action = draw(st.sampled_from(["drop", "rename", "replace", "replace", "add"]))
        if action == "drop":
            del parent[key]
        elif action == "rename" and isinstance(parent, dict):
            parent[draw(st.one_of(st.sampled_from(KEY_WORDS), st.text(max_size=8)))] = parent.pop(key)
        elif action == "add" and isinstance(parent, dict):
            parent[draw(st.sampled_from(KEY_WORDS))] = draw(values)
        elif action == "add":
            parent.append(draw(values))
        else:
            parent[key] = draw(values)
    return scenario


def _check(load, arg):
    try:
        result = load(arg)
    except ScenarioError as err:
        assert str(err) and "\n" not in str(err)
    else:
        assert isinstance(result, Scenario)


SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_bases_are_valid():
    for base in BASES:
        assert isinstance(from_mapping(base), Scenario)


@SETTINGS
@given(mutated())
def test_from_mapping_never_crashes(scenario):
    _check(from_mapping, scenario)


@SETTINGS
@given(st.one_of(values, st.dictionaries(st.sampled_from(KEY_WORDS), values, max_size=6)))
def test_from_mapping_on_any_value(value):
    _check(from_mapping, value)


@SETTINGS
@given(mutated())
def test_load_file_on_mutated_yaml(tmp_path_factory, scenario):
    path = tmp_path_factory.mktemp("fuzz") / "s.yaml"
    text = yaml.safe_dump(scenario, allow_unicode=True)
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    _check(load_file, path)


@SETTINGS
@given(st.binary(max_size=300))
def test_load_file_on_garbage(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fuzz") / "g.yaml"
    path.write_bytes(data)
    _check(load_file, path)


@SETTINGS
@given(st.data())
def test_load_file_on_edited_yaml(tmp_path_factory, data):
    """Valid YAML text with a few characters inserted, deleted or replaced."""
    text = yaml.safe_dump(copy.deepcopy(data.draw(st.sampled_from(BASES))))
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(text)))
        junk = data.draw(st.text(alphabet=string.printable + "\t[]{}:-&*!|>'\"#%@`,?\u00e9\u2028",
                                 max_size=4))
        cut = data.draw(st.integers(0, 3))
        text = text[:at] + junk + text[at + cut:]
    path = tmp_path_factory.mktemp("fuzz") / "e.yaml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    _check(load_file, path)
