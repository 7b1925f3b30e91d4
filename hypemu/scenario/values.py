"""The value kinds of scenario keys: what the README's type column says, what the JSON Schema
allows, and how a value the user wrote becomes a typed one (or a ``ScenarioError`` naming the key).

Why together: a key's kind is declared once, in the models, and these three views of it cannot
drift apart. The messages name the value as the user wrote it in YAML (``_describe``).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from ..errors import ScenarioError

_SIZE = re.compile(r"([0-9]{1,20})\s*(KiB|MiB|GiB|TiB)?")
_HEX = re.compile(r"0[xX]_?[0-9a-fA-F]{1,20}(?:_[0-9a-fA-F]+)*")
_UNITS = {None: 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
TOO_LARGE = 1 << 64
_SIZE_WANTED = "expected an integer, hex or a size like 4KiB/2MiB/1GiB"
SIZE_PATTERN = (r"^\s*(0[xX]_?[0-9a-fA-F]{1,20}(_[0-9a-fA-F]+)*|[0-9]{1,20}\s*(KiB|MiB|GiB|TiB)?)"
                r"\s*$")
IDENT_PATTERN = "^" + IDENT.pattern + "$"


def plain_copy(data: Any) -> Any:
    """A deep copy of plain data (mappings and lists of YAML scalars, which are immutable):
    what ``copy.deepcopy`` gives, at a third of its cost (no memo, no dispatch per type)."""
    if type(data) is dict:
        return {key: plain_copy(value) for key, value in data.items()}
    if type(data) is list:
        return [plain_copy(value) for value in data]
    return data


class BoolWord(str):
    """A YAML 1.1 boolean of a scenario file (``true``, ``no``, ``on``, ``off``... in the spellings
    PyYAML resolves), as the loader reads it: the word as written, and ``truth``, what YAML 1.1
    makes of it. The one rule: a bool key takes it as that boolean (``flag``), a key that
    documents words among them takes those (``hotplug.state``: on/off); any other key refuses it
    with the YAML 1.1 hint (``describe``). A Python mapping's own ``True``/``False`` are plain
    booleans (``hotplug.state`` takes them as on/off: what a YAML 1.1 reader made of them)."""

    truth: bool

    def __new__(cls, word: str, truth: bool) -> "BoolWord":
        made = super().__new__(cls, word)
        made.truth = truth
        return made

    def __getnewargs__(self) -> tuple[str, bool]:   # type: ignore[override]
        """Copied and pickled whole (``copy.deepcopy``, a sweep's worker processes)."""
        return (str(self), self.truth)


YAML11_HINT = "YAML 1.1 reads yes/no/on/off/true/false as booleans"


def describe(value: Any) -> str:
    """A value as the user wrote it in YAML, for messages."""
    if value is None:
        return "null (an empty value)"
    if isinstance(value, bool):
        return f"{str(value).lower()} ({YAML11_HINT})"
    if isinstance(value, BoolWord):
        return f"{value} ({YAML11_HINT}; quote it to mean the word)"
    if isinstance(value, int):   # from 0x1000 on a number is an address or a size here: hex
        if abs(value) > TOO_LARGE:
            return "a number too large"
        return f"{value:#x}" if abs(value) >= 0x1000 else repr(value)
    if isinstance(value, float):
        return f"{value!r} (a float)"
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:37] + "...")
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    return f"a {type(value).__name__} ({str(value)[:40]})"


def join(prefix: str, key: Any) -> str:
    """``prefix.key``; a key that would not read well in a path (spaces, dots, control characters)
    is quoted: ``prefix['odd key']``."""
    text = str(key)
    if not text or not text.isprintable() or re.search(r"[\s.\[\]'\"]", text):
        return f"{prefix}[{text!r}]"
    return f"{prefix}.{text}" if prefix else text


def shown(text: Any) -> str:
    """A file name or tool message on one line."""
    text = str(text)
    return text if text.isprintable() else repr(text)


def suggest(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    if close:
        return f", did you mean {close[0]!r}?"
    return f" (expected one of: {', '.join(choices)})"


def _check_number(value: int, key: str) -> int:
    if abs(value) > TOO_LARGE:
        raise ScenarioError(key, f"number too large (more than 64 bits: {len(str(abs(value)))} digits)")
    return value


def parse_size(value: Any, key: str) -> int:
    """An integer, a hex string, or a size with a binary unit (``4KiB``, ``2MiB``, ``1GiB``, ``1TiB``)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return _check_number(value, key)
    if isinstance(value, str):
        text = value.strip()
        if _HEX.fullmatch(text):
            return _check_number(int(text, 16), key)
        match = _SIZE.fullmatch(text)
        if match:
            return _check_number(int(match.group(1)) * _UNITS[match.group(2)], key)
        if re.fullmatch(r"(0[xX])?[0-9a-fA-F_]{21,}(\s*[KMGT]iB)?", text):
            raise ScenarioError(key, "number too large")
    raise ScenarioError(key, f"{_SIZE_WANTED}, got {describe(value)}")


def integer(value: Any, key: str, lo: int, hi: int, *, size: bool = False, hexa: bool = False) -> int:
    """An integer in lo..hi (sizes and hex strings too when ``size``); never a bool or a float."""
    if size:
        number = parse_size(value, key)
    elif isinstance(value, int) and not isinstance(value, bool):
        number = _check_number(value, key)
    else:
        raise ScenarioError(key, f"expected an integer, got {describe(value)}")
    if lo <= number <= hi:
        return number
    show = hex if hexa else str
    if number < 0 == lo:
        raise ScenarioError(key, f"must not be negative, got {show(number)}")
    if hi >= TOO_LARGE:
        raise ScenarioError(key, f"must be at least {show(lo)}, got {show(number)}")
    raise ScenarioError(key, f"must be {show(lo)}..{show(hi)}, got {show(number)}")


def aligned(value: int, key: str, align: int, what: str, why: str = "") -> int:
    if value % align:
        raise ScenarioError(key, f"must be {what}, got {value:#x}" + (f": {why}" if why else ""))
    return value


def choice(value: Any, key: str, choices: Sequence[str]) -> str:
    if isinstance(value, str) and value in choices:
        return value
    hint = suggest(value, choices) if isinstance(value, str) else ""
    if hint.startswith(","):
        raise ScenarioError(key, f"unknown value {describe(value)}{hint}")
    raise ScenarioError(key, f"expected one of {', '.join(choices)}, got {describe(value)}")


def string(value: Any, key: str) -> str:
    if not isinstance(value, str) or isinstance(value, BoolWord):
        raise ScenarioError(key, f"expected a string, got {describe(value)}")
    return value


def as_list(value: Any, key: str) -> list[Any]:
    if not isinstance(value, (list, tuple)):
        raise ScenarioError(key, f"expected a list, got {describe(value)}")
    return list(value)


def flag(value: Any, key: str) -> bool:
    if isinstance(value, BoolWord):   # a bool key takes every YAML 1.1 boolean
        return value.truth
    if not isinstance(value, bool):
        raise ScenarioError(key, f"expected true or false, got {describe(value)}")
    return value


# --- kinds ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Kind:
    """A key's kind: ``text`` for the README, ``schema`` for scenario.schema.json. Kinds that
    ``parse`` a value on their own are subclasses; the others are parsed by a cross-field rule."""

    text: str
    schema: Mapping[str, Any] = field(default_factory=dict)

    def parse(self, value: Any, key: str) -> Any:
        raise NotImplementedError(f"{key}: the {self.text!r} kind is parsed by its section")


@dataclass(frozen=True)
class Text(Kind):
    def parse(self, value: Any, key: str) -> str:
        return string(value, key)


@dataclass(frozen=True)
class Choice(Kind):
    choices: tuple[str, ...] = ()

    def parse(self, value: Any, key: str) -> str:
        return choice(value, key, self.choices)


@dataclass(frozen=True)
class Int(Kind):
    """An integer in lo..hi; ``size`` accepts hex strings and units, ``hexa`` shows numbers in hex."""

    lo: int = 0
    hi: int = TOO_LARGE
    size: bool = False
    hexa: bool = False

    def parse(self, value: Any, key: str) -> int:
        return integer(value, key, self.lo, self.hi, size=self.size, hexa=self.hexa)


@dataclass(frozen=True)
class OrNull(Kind):
    """``inner``, or null (YAML's empty value)."""

    inner: Kind = field(default_factory=lambda: Kind("?"))

    def parse(self, value: Any, key: str) -> Any:
        return None if value is None else self.inner.parse(value, key)


@dataclass(frozen=True)
class Flag(Kind):
    def parse(self, value: Any, key: str) -> bool:
        return flag(value, key)


SIZE_SCHEMA: dict[str, Any] = {"anyOf": [{"type": "integer", "minimum": 0},
                                         {"type": "string", "pattern": SIZE_PATTERN}]}


def text(words: str = "string") -> Text:
    return Text(words, {"type": "string"})


def one_of(values: Sequence[str], nullable: bool = False) -> Kind:
    words = "|".join(values)
    kind = Choice(words, {"enum": list(values)}, tuple(values))
    if nullable:
        return OrNull(words + " or null", {"enum": [*values, None]}, kind)
    return kind


def int_kind(words: str, lo: int = 0, hi: int = TOO_LARGE, *, size: bool = False, hexa: bool = False,
             nullable: bool = False) -> Kind:
    schema: dict[str, Any] = dict(SIZE_SCHEMA) if size else {"type": "integer"}
    if not size:
        schema["minimum"] = lo
        if hi < TOO_LARGE:
            schema["maximum"] = hi
    kind = Int(words, schema, lo, hi, size, hexa)
    if nullable:
        return OrNull(words, {"anyOf": [schema, {"type": "null"}]}, kind)
    return kind


def other(words: str, schema: Mapping[str, Any]) -> Kind:
    """A kind its section parses (a bank or a list of banks, ``auto`` or a size, a path...)."""
    return Kind(words, schema)


# --- declaring a model's keys (scenario.models) ---------------------------------------------------
NO_DEFAULT: Any = object()


def key(kind: Kind, meaning: str, default: Any = NO_DEFAULT, **more: Any) -> Any:
    """A field that is a YAML key: its kind, meaning and (YAML) default; ``model=`` for a mapping
    of further keys, ``variants=`` for the typed forms of a list's items, ``value=`` for the
    field's own Python default (a partial match). A meaning that starts with ``required:`` makes
    the key required in its mapping (the README says so in the same words)."""
    value = more.pop("value", NO_DEFAULT)
    meta = {"kind": kind, "meaning": meaning, "default": default, **more}
    return field(metadata=meta) if value is NO_DEFAULT else field(default=value, metadata=meta)


def section(model: type) -> Any:
    """A field that is a mapping of keys (a top-level section: no row of its own)."""
    return field(metadata={"model": model})
