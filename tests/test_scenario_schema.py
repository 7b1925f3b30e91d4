"""The scenario models are the one source of keys: the shipped scenario.schema.json and the README's
key table are what the generator makes of them, the schema accepts every shipped scenario and
refuses what the format forbids, and the fast YAML path reads exactly what the Python one does."""

from __future__ import annotations

import configparser
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator

import hypemu
from hypemu.scenario import KEYS, json_schema, key_table, yamlfile
from hypemu.scenario.generate import readme_with_table, schema_text

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))
BAD = ROOT / "tests" / "bad"
VALIDATOR = Draft202012Validator(hypemu.scenario_schema())


def test_the_shipped_schema_is_what_the_models_generate():
    assert hypemu.SCENARIO_SCHEMA.read_text(encoding="utf-8") == schema_text()
    assert hypemu.scenario_schema() == json_schema()


def test_the_readme_table_is_what_the_models_generate():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme_with_table(readme) == readme
    assert key_table() in readme


def test_the_schema_is_valid_and_ships_in_the_package():
    Draft202012Validator.check_schema(hypemu.scenario_schema())
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    shipped = [name.strip() for name in setup["options.package_data"]["hypemu"].split(",")]
    assert hypemu.SCENARIO_SCHEMA.name in shipped
    assert hypemu.SCENARIO_SCHEMA.parent == Path(hypemu.__file__).resolve().parent


def _schema_paths(schema: dict, prefix: str = "") -> set[str]:
    """Every key path the schema describes (``[]`` for list items), to compare with KEYS."""
    paths: set[str] = set()
    for name, prop in schema.get("properties", {}).items():
        path = f"{prefix}.{name}" if prefix else name
        if "description" in prop:
            paths.add(path)
        for sub in [prop, *prop.get("anyOf", [])]:
            if sub.get("type") == "object":
                paths |= _schema_paths(sub, path)
            if sub.get("type") == "array" and isinstance(sub.get("items"), dict):
                items = sub["items"]
                if "oneOf" in items:
                    for variant in items["oneOf"]:
                        paths |= _schema_paths(variant, path + "[]")
                elif items.get("type") == "object":
                    paths |= _schema_paths(items, path)
    return paths


def test_the_schema_and_the_table_name_the_same_keys():
    assert _schema_paths(json_schema()) == {path for path, _, _ in KEYS}


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_every_shipped_scenario_fits_the_schema(path):
    assert list(VALIDATOR.iter_errors(yaml.safe_load(path.read_text()))) == []


@pytest.mark.parametrize("name", ["unknown_top_level", "call_abi_unknown", "step_two_kinds",
                                  "bank_missing_size", "call_fn_missing", "limits_zero"])
def test_the_schema_refuses_what_the_loader_refuses(name):
    path = BAD / f"{name}.yaml"
    if not path.exists():
        pytest.skip(f"no {path.name} in the corpus")
    assert list(VALIDATOR.iter_errors(yaml.safe_load(path.read_text())))


def test_defaults_in_the_schema_are_the_loaders():
    props = json_schema()["properties"]
    assert props["machine"]["properties"]["cpus"]["default"] == 1
    assert props["hyp"]["properties"]["trampoline_va"]["default"] == 0xFFFF0000
    assert props["steps"]["default"] == [{"boot": "all"}]


# --- the fast YAML path ------------------------------------------------------------------------------

needs_libyaml = pytest.mark.skipif(yamlfile._FAST is None, reason="PyYAML built without libyaml")


@needs_libyaml
@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_libyaml_reads_what_the_python_loader_reads(path):
    text = path.read_text()
    assert yamlfile._parse_with(yamlfile._FAST, text) == yamlfile._parse_with(yamlfile._Loader, text)


@needs_libyaml
def test_valid_files_take_the_fast_path_and_bad_ones_the_python_one(monkeypatch, tmp_path):
    used: list[type] = []
    real = yamlfile._parse_with

    def spy(loader_type, text):
        used.append(loader_type)
        return real(loader_type, text)
    monkeypatch.setattr(yamlfile, "_parse_with", spy)
    yamlfile.parse("name: fine\n")
    assert used == [yamlfile._FAST]
    used.clear()
    with pytest.raises(hypemu.ScenarioError, match="duplicate key 'name'"):
        yamlfile.parse("name: a\nname: b\n")
    assert used == [yamlfile._FAST, yamlfile._Loader]


def test_the_bad_corpus_gives_the_same_errors_without_libyaml(monkeypatch):
    """The messages are the Python loader's either way (the corpus test runs the fast path)."""
    from hypemu.scenario import load_file
    expected = {}
    for path in sorted(BAD.glob("*.yaml")):
        with pytest.raises(hypemu.ScenarioError) as info:
            load_file(path)
        expected[path.name] = str(info.value)
    monkeypatch.setattr(yamlfile, "_FAST", None)
    for path in sorted(BAD.glob("*.yaml")):
        with pytest.raises(hypemu.ScenarioError) as info:
            load_file(path)
        assert str(info.value) == expected[path.name]
