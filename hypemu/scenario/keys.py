"""Every scenario key, derived from the models: the rows of the README key table, the defaults the
validator applies, the keys allowed at each level, and the JSON Schema shipped as
``scenario.schema.json`` (``generate`` writes it and the README table; a test checks both).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, fields
from typing import Any, Iterator

from . import values as v
from .models import Scenario
from .values import NO_DEFAULT

SCHEMA_ID = "https://hypemu.invalid/scenario.schema.json"


@dataclass(frozen=True)
class Row:
    """One key: its path (``[]`` marks the items of a list), kind, meaning and YAML default."""

    path: str
    kind: v.Kind
    meaning: str
    default: Any = NO_DEFAULT


def _rows(model: type, prefix: str) -> Iterator[Row]:
    for f in fields(model):
        meta = f.metadata
        if not meta:
            continue
        path = v.join(prefix, meta.get("name", f.name))
        if "kind" in meta:
            yield Row(path, meta["kind"], meta["meaning"], meta["default"])
        if meta.get("model"):
            yield from _rows(meta["model"], path)
        for variant in meta.get("variants", ()):
            item = f"{path}[].{variant.TAG}"
            if variant.BODY:
                yield Row(item, variant.BODY[0], variant.BODY[1])
            yield from _rows(variant, item)


ROWS: tuple[Row, ...] = tuple(_rows(Scenario, ""))
KEYS: tuple[tuple[str, str, str], ...] = tuple((r.path, r.kind.text, r.meaning) for r in ROWS)
_BY_PATH = {row.path: row for row in ROWS}


def kind_of(path: str) -> v.Kind:
    return _BY_PATH[path].kind


def default_of(path: str) -> Any:
    """The YAML default of a key path (None: no default of its own)."""
    row = _BY_PATH.get(path)
    if row is not None and row.default is not NO_DEFAULT:
        return row.default
    return None


def defaults_under(prefix: str) -> dict[str, Any]:
    """The defaults of the keys below ``prefix`` (``""`` for the top level, ``"steps[]"`` for the
    items of the steps list), nested as in YAML; a copy, safe to change."""
    out: dict[str, Any] = {}
    for row in ROWS:
        if row.default is NO_DEFAULT or (prefix and not row.path.startswith(prefix + ".")):
            continue
        rest = row.path[len(prefix) + 1:] if prefix else row.path
        if "[]" in rest:
            continue
        *parents, last = rest.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = json.loads(json.dumps(row.default))
    return out


@functools.lru_cache(maxsize=None)
def allowed(prefix: str) -> tuple[str, ...]:
    """The keys allowed in the mapping at ``prefix`` (a path such as ``machine`` or ``steps[]``);
    computed once per prefix (every mapping of every file asks)."""
    keys: list[str] = []
    for path, _, _ in KEYS:
        if prefix and not path.startswith(prefix + "."):
            continue
        rest = path[len(prefix) + 1:] if prefix else path
        name = rest.split(".")[0].removesuffix("[]")
        if name not in keys:
            keys.append(name)
    return tuple(keys)


@functools.lru_cache(maxsize=None)
def required(prefix: str) -> tuple[str, ...]:
    """The keys a mapping at ``prefix`` must have (their meaning starts with ``required:``)."""
    return tuple(row.path[len(prefix) + 1:] for row in ROWS
                 if row.path.startswith(prefix + ".") and "." not in row.path[len(prefix) + 1:]
                 and row.meaning.startswith("required:"))


DEFAULTS: dict[str, Any] = defaults_under("")
STEP_DEFAULTS: dict[str, Any] = defaults_under("steps[]")
INJECT_DEFAULTS: dict[str, Any] = defaults_under("inject[]")


# --- the README table -------------------------------------------------------------------------------

def key_table() -> str:
    """A Markdown table of every key with its type, default and meaning (for the README)."""
    rows = ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
    for row in ROWS:
        value, kind = default_of(row.path), row.kind.text
        if isinstance(value, int) and ("size" in kind or "address" in kind):
            value = hex(value)
        shown = ("" if value is None or isinstance(value, dict) else f"`{value!r}`" if value == ""
                 else f"`{value}`")
        rows.append(f"| `{row.path}` | {kind.replace('|', ' or ')} | {shown} | {row.meaning} |")
    return "\n".join(rows)


# --- the JSON Schema --------------------------------------------------------------------------------

def _property(meta: Any) -> dict[str, Any]:
    out: dict[str, Any] = dict(meta["kind"].schema) if "kind" in meta else {}
    if "meaning" in meta:
        out["description"] = meta["meaning"]
    if meta.get("default", NO_DEFAULT) is not NO_DEFAULT:
        out["default"] = meta["default"]
    return out


def _object(model: type) -> dict[str, Any]:
    props: dict[str, Any] = {}
    required: list[str] = []
    for f in fields(model):
        meta = f.metadata
        if not meta:
            continue
        name = meta.get("name", f.name)
        prop = _property(meta)
        if meta.get("model") and meta.get("name") == "ram":      # one bank or a list of banks
            bank = _object(meta["model"])
            listed = dict(bank, required=["base", "size"])
            prop = {**prop, "anyOf": [bank, {"type": "array", "minItems": 1, "maxItems": 8,
                                             "items": listed}]}
        elif meta.get("model") and meta.get("alternative"):    # a value, or a mapping of keys
            own = {k: v for k, v in prop.items() if k in ("description", "default")}
            prop = {**own, "anyOf": [dict(meta["kind"].schema), _object(meta["model"])]}
        elif meta.get("model"):
            prop = {**prop, **_object(meta["model"])}
        if meta.get("variants"):
            prop["items"] = {"oneOf": [_variant(t) for t in meta["variants"]]}
        if str(meta.get("meaning", "")).startswith("required:"):
            required.append(name)
        props[name] = prop
    out: dict[str, Any] = {"type": "object", "additionalProperties": False, "properties": props}
    if required:
        out["required"] = required
    return out


def _variant(model: Any) -> dict[str, Any]:
    body = _object(model)
    if not body["properties"]:
        body = {}
    if model.BODY is not None:
        own = dict(model.BODY[0].schema)
        body = {"anyOf": [own, body]} if body else own
        body["description"] = model.BODY[1]
    return {"type": "object", "additionalProperties": False, "required": [model.TAG],
            "properties": {model.TAG: body}}


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a scenario file's data: every key, its kind and default.
    It checks the shape; the validator adds the rules across keys (alignment, overlaps, CPUs)."""
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID,
              "title": "hypemu scenario (format 1)", **_object(Scenario)}
    return schema
