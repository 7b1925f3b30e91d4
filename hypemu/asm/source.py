"""Source text: comments, statement separators, string literals, and the shapes a statement can
have (labels, directive, assignment, first word)."""

from __future__ import annotations

import re
from typing import Callable, Iterator

from .expr import _IDENT


_LABEL_RE = re.compile(rf"\s*({_IDENT}|\d+):(?!:)")
_LOCAL_REF_RE = re.compile(r"(?<![\w.$])(\d+)([bf])(?![\w.$])")
_DIRECTIVE_RE = re.compile(r"(\.[A-Za-z0-9_.]+)\s*(.*)$", re.S)
_ASSIGN_RE = re.compile(rf"({_IDENT})\s*=(?!=)\s*(.*)$", re.S)
_WORD_RE = re.compile(r"(\S+)\s*(.*)$", re.S)


def _split_word(text: str) -> tuple[str, str]:
    """The first word of a statement and the rest (both empty for a blank one)."""
    m = _WORD_RE.match(text)
    return (m.group(1), m.group(2)) if m else ("", "")


def _split_outside_strings(text: str, separators: str) -> list[str]:
    """Split at `separators` that are not inside "strings" or parentheses."""
    parts, depth, start, quoted, i = [], 0, 0, False, 0
    while i < len(text):
        c = text[i]
        if quoted:
            if c == "\\":
                i += 1
            elif c == '"':
                quoted = False
        elif c == '"':
            quoted = True
        elif c in "()":
            depth += 1 if c == "(" else -1
        elif c in separators and depth <= 0:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    parts.append(text[start:])
    return parts


def _outside_strings(text: str, fn: Callable[[str], str]) -> str:
    """Apply `fn` to the parts of `text` that are not "string literals"."""
    pieces = re.split(r'("(?:\\.|[^"\\])*"?)', text)
    return "".join(p if i % 2 else fn(p) for i, p in enumerate(pieces))


def _strip_comments(source: str) -> Iterator[tuple[int, str]]:
    """Yield (line number, text) without @, // and /* */ comments; strings and 'c constants kept."""
    in_block = False
    for number, line in enumerate(source.splitlines(), 1):
        out, i, quoted = [], 0, False
        while i < len(line):
            if in_block:
                end = line.find("*/", i)
                if end < 0:
                    break
                in_block, i = False, end + 2
                out.append(" ")
                continue
            c = line[i]
            if quoted:
                if c == "\\":
                    out.append(line[i:i + 2])
                    i += 2
                    continue
                quoted = c != '"'
            elif c == '"':
                quoted = True
            elif c == "'" or line.startswith("\\@", i):   # 'c constant; \@ in a macro body
                out.append(line[i:i + 2])
                i += 2
                continue
            elif c == "@" or line.startswith("//", i):
                break
            elif line.startswith("/*", i):
                in_block, i = True, i + 2
                continue
            out.append(c)
            i += 1
        yield number, "".join(out)


_ESCAPES = {"n": 10, "t": 9, "r": 13, "b": 8, "f": 12, "v": 11, "a": 7, "e": 27}


def _unescape(body: str) -> bytes:
    """GNU as string escapes: \\n \\t..., \\NNN octal, \\xHH hex; any other \\c is c."""
    out, i = bytearray(), 0
    while i < len(body):
        c = body[i]
        if c != "\\" or i + 1 == len(body):
            out += c.encode()
            i += 1
            continue
        nxt = body[i + 1]
        octal = re.match(r"[0-7]{1,3}", body[i + 1:])
        hexa = re.match(r"[xX]([0-9a-fA-F]+)", body[i + 1:])
        if octal:
            out.append(int(octal.group(0), 8) & 0xFF)
            i += 1 + octal.end()
        elif hexa:
            out.append(int(hexa.group(1), 16) & 0xFF)
            i += 1 + hexa.end()
        else:
            out += bytes([_ESCAPES[nxt]]) if nxt in _ESCAPES else nxt.encode()
            i += 2
    return bytes(out)


def _take_call(text: str, name: str) -> tuple[str, str] | None:
    """If `text` starts with `name(...)`, return (the text between the parentheses, the rest)."""
    m = re.match(rf"{name}\s*\(", text)
    if not m:
        return None
    depth, i = 1, m.end()
    while i < len(text) and depth:
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        i += 1
    return None if depth else (text[m.end():i - 1].strip(), text[i:].strip())
