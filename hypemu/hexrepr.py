"""Readable reprs of the types a result is made of (``Translation``, ``Fault``, ``FaultRecord``,
``Hazard``, ``Layout``): addresses, sizes and register values in hex, as every message and the
summary print them. Why: a dataclass's own repr prints ``va=3221266688``, which nobody reads."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, Collection


def hex_repr(obj: Any, decimal: Collection[str] = ()) -> str:
    """``Name(field=value, ...)`` of a dataclass with its integers (also in tuples and lists) in
    hex, except the fields named in ``decimal`` (a CPU id, a level); fields with ``repr=False``
    are left out, as the dataclass repr does."""
    parts = [f"{f.name}={_value(getattr(obj, f.name), f.name in decimal)}"
             for f in fields(obj) if f.repr]
    return f"{type(obj).__name__}({', '.join(parts)})"


def _value(value: Any, decimal: bool) -> str:
    if decimal or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return f"{value:#x}"
    if isinstance(value, (tuple, list)) and all(isinstance(v, int) and not isinstance(v, bool)
                                                for v in value):
        items = ", ".join(f"{v:#x}" for v in value)
        if isinstance(value, list):
            return f"[{items}]"
        return f"({items},)" if len(value) == 1 else f"({items})"
    return repr(value)
