"""Reading a scenario file safely: one YAML document of plain data, with the line of every key.

Safety: no tags beyond YAML's own (no Python objects), no alias bombs or runaway nesting, duplicate
keys refused, a 1 MiB limit, UTF-8 only. Every key path (``machine.ram[1].base``) gets its line, so
an error found later by the validator can cite ``FILE:LINE``.

Speed: libyaml's parser (PyYAML's ``CSafeLoader``) composes the nodes where PyYAML has it; the checks
above run on those nodes, as on the pure-Python ones. Any problem, whatever it is, is re-read with
the pure-Python loader, whose marks and messages are the ones the error texts are written for.
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Optional

import yaml

from ..errors import ScenarioError
from .values import BoolWord, join

FILE_KEY = "(file)"
MAX_FILE_BYTES = 1 << 20


MAX_DEPTH = 32
MAX_NODES = 100_000
_MERGE_TAG = "tag:yaml.org,2002:merge"
_STD_TAG = "tag:yaml.org,2002:"


class _Marked:
    """Value errors of the constructor (a bad date, an integer with 5000 digits) carry the YAML mark."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)  # type: ignore[misc]
        except yaml.YAMLError:
            raise
        except (ValueError, TypeError, OverflowError) as err:
            problem = ("number too large" if node.tag == _STD_TAG + "int" and len(str(node.value)) > 1000
                       else f"cannot read this value: {err}")
            raise yaml.constructor.ConstructorError(None, None, problem, node.start_mark) from None


def _bool(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> BoolWord:
    """A YAML 1.1 boolean keeps its spelling (``values.BoolWord``), so that each key can apply
    the one rule to it, and a file's booleans are told from a Python mapping's."""
    return BoolWord(node.value, loader.construct_yaml_bool(node))


class _Loader(_Marked, yaml.SafeLoader):
    """The pure-Python safe loader: the reference for every error message."""


_Loader.add_constructor(_STD_TAG + "bool", _bool)

_FAST: Optional[type] = None
if getattr(yaml, "__with_libyaml__", False):
    class _CLoader(_Marked, yaml.CSafeLoader):
        """libyaml's parser with PyYAML's safe constructor and resolver."""

    _CLoader.add_constructor(_STD_TAG + "bool", _bool)
    _FAST = _CLoader


def _tag_name(tag: str) -> str:
    return "!!" + tag[len(_STD_TAG):] if tag.startswith(_STD_TAG) else tag


def _check_tag(node: yaml.Node, path: str) -> None:
    if node.tag in _Loader.yaml_constructors and node.tag is not None:
        return
    tag = _tag_name(node.tag)
    why = ("Python tags are not allowed: scenario files are read with YAML safe loading"
           if tag.startswith("!!python/") else "scenario files use plain YAML data only")
    raise ScenarioError(path or FILE_KEY, f"unsupported YAML tag '{tag}': {why}",
                        line=node.start_mark.line + 1)


class _LineWalk:
    """Records the line of every key (and list item) by key path, and refuses duplicate keys, unknown
    tags, runaway nesting and alias bombs, before any Python object is built."""

    def __init__(self) -> None:
        self.lines: dict[str, int] = {}
        self.nodes = 0

    def walk(self, node: yaml.Node, path: str, depth: int = 0) -> None:
        self.nodes += 1
        line = node.start_mark.line + 1
        if depth > MAX_DEPTH or self.nodes > MAX_NODES:
            raise ScenarioError(path or FILE_KEY, "nested too deeply or too many (aliased) values",
                                line=line)
        _check_tag(node, path)
        if isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                item_path = f"{path}[{index}]"
                self.lines.setdefault(item_path, item.start_mark.line + 1)
                self.walk(item, item_path, depth + 1)
        elif isinstance(node, yaml.MappingNode):
            self._mapping(node, path, depth)

    def _mapping(self, node: yaml.MappingNode, path: str, depth: int) -> None:
        first: dict[str, int] = {}
        merged: list[yaml.Node] = []
        for key, value in node.value:
            if key.tag == _MERGE_TAG:
                merged.append(value)
                continue
            line = key.start_mark.line + 1
            if not isinstance(key, yaml.ScalarNode):
                raise ScenarioError(path or FILE_KEY, "a key must be a plain string, not a mapping or "
                                                      "a list", line=line)
            _check_tag(key, path)
            key_path = join(path, key.value)
            if key.value in first:
                raise ScenarioError(key_path, f"duplicate key {key.value!r} (first on line "
                                              f"{first[key.value]})", line=line)
            first[key.value] = line
            self.lines[key_path] = line
            self.walk(value, key_path, depth + 1)
        for value in merged:     # ``<<: *anchor``: the explicit keys win, as in the constructor
            sources = value.value if isinstance(value, yaml.SequenceNode) else [value]
            for source in sources:
                sub = _LineWalk()
                sub.nodes = self.nodes
                sub.walk(source, path, depth + 1)
                self.nodes = sub.nodes
                for key_path, line in sub.lines.items():
                    self.lines.setdefault(key_path, line)


_LAST_PART = re.compile(r"""(\.[^.\[\]]+|\[(\d+|'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")\])$""")


def line_of(lines: Mapping[str, int], key: str) -> int:
    """The line of ``key``, else of the nearest enclosing key that has one, else 1."""
    while key:
        if key in lines:
            return lines[key]
        shorter = _LAST_PART.sub("", key)
        key = shorter if len(shorter) < len(key) else ""
    return 1


def _path_at(lines: Mapping[str, int], line: int) -> str:
    """The deepest key path on ``line`` (for errors that only carry a YAML mark)."""
    on_line = [path for path, at in lines.items() if at == line]
    return max(on_line, key=len) if on_line else FILE_KEY


def _yaml_error(err: yaml.YAMLError, text: str, lines: Mapping[str, int]) -> ScenarioError:
    """A ScenarioError (without file) for a YAML reader, scanner, parser or constructor error."""
    if isinstance(err, yaml.reader.ReaderError):
        line = text.count("\n", 0, err.position) + 1
        code = err.character if isinstance(err.character, int) else ord(str(err.character)[:1] or "\0")
        return ScenarioError(FILE_KEY, f"character U+{code:04X} is not allowed in YAML (a control "
                                       f"character)", line=line)
    if not isinstance(err, yaml.MarkedYAMLError):
        return ScenarioError(FILE_KEY, f"YAML error: {err}", line=1)
    problem, context = err.problem or "", err.context or ""
    mark, where = err.problem_mark, err.context_mark
    if isinstance(err, yaml.composer.ComposerError) and "another document" in problem \
            and mark is not None and where is not None:
        return ScenarioError(FILE_KEY, "a second YAML document starts here: a scenario file holds one "
                                       f"document (the first starts on line {where.line + 1})",
                             line=mark.line + 1)
    if isinstance(err, yaml.constructor.ConstructorError):
        at = mark or where
        line = at.line + 1 if at is not None else 1
        return ScenarioError(_path_at(lines, line), problem, line=line)
    at_end = "end of stream" in problem or "<stream end>" in problem
    if where is not None and (mark is None or at_end):
        mark = where      # an unclosed bracket or quote: point at where it opened
    message = f"YAML syntax error: {problem}"
    if context and where is not None:
        message += f" ({context} that starts on line {where.line + 1})"
    if "'\\t'" in problem:
        message += "; YAML does not allow tabs for indentation"
    return ScenarioError(FILE_KEY, message, line=mark.line + 1 if mark else 1)


def parse(text: str) -> tuple[Any, dict[str, int]]:
    """The plain data of a one-document YAML text, and the line of every key path. Fast where
    libyaml is there; a text it has any problem with is read again by the Python loader, which
    raises the error (or, should the two ever disagree, returns what it reads)."""
    if _FAST is not None:
        try:
            return _parse_with(_FAST, text)
        except (ScenarioError, yaml.YAMLError, RecursionError, ValueError, TypeError, OverflowError):
            pass
    return _parse_with(_Loader, text)


def _parse_with(loader_type: type, text: str) -> tuple[Any, dict[str, int]]:
    loader, walk = None, _LineWalk()
    try:
        loader = loader_type(text)
        node = loader.get_single_node()
        if node is None:
            raise ScenarioError(FILE_KEY, "empty scenario (no YAML document; at least 'name' is "
                                          "required)", line=1)
        walk.walk(node, "")
        return loader.construct_document(node), walk.lines
    except yaml.YAMLError as err:
        raise _yaml_error(err, text, walk.lines) from None
    except RecursionError:
        raise ScenarioError(FILE_KEY, "nested too deeply", line=1) from None
    finally:
        if loader is not None:
            loader.dispose()


def read_text(name: str) -> str:
    try:
        with open(name, "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as err:
        raise ScenarioError(FILE_KEY, f"cannot read the file: {err.strerror or err}", name) from None
    if len(data) > MAX_FILE_BYTES:
        raise ScenarioError(FILE_KEY, f"file too large for a scenario (more than {MAX_FILE_BYTES} "
                                      f"bytes)", name, 1)
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        column = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
        raise ScenarioError(FILE_KEY, f"not UTF-8 text: byte {data[err.start]:#04x} at column {column}",
                            name, line) from None




def first_line(text: str) -> int:
    """The line of the first line that is neither blank nor a comment."""
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip() and not line.lstrip().startswith("#"):
            return number
    return 1


def located(err: ScenarioError, file: Optional[str], lines: Mapping[str, int]) -> ScenarioError:
    """The same error in ``file``, at the line of its key (or of the nearest enclosing key)."""
    if file is None:
        return err
    return err.at(file, err.line or line_of(lines, err.key))
