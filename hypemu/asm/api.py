"""The entry points: `assemble` and `assemble_file` check their arguments, look in the cache and
build on a miss; `cache_info` and `clear_memory_cache` report on and reset the cache."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Mapping

from .build import _build
from .cache import _CACHE, _cache_key
from .expr import _IDENT_RE
from .program import AsmError, Program
from .unit import _GENERATED


def assemble(source: str, base: int, *, constants: Mapping[str, int] | None = None,
             filename: str = "<string>", thumb: bool = False) -> Program:
    """Assemble `source` (GNU-as ARM syntax) so that its first byte lies at `base`.

    `constants` are predefined as `.equ NAME, value`. `thumb`: assemble as Thumb-2, as a kernel
    built with CONFIG_THUMB2_KERNEL (W(x) is x.w, THUMB() lines kept, ARM() lines dropped). Raises
    AsmError for any problem in the source, ValueError for a bad `base` or constant."""
    _check_base(base)
    consts = _check_constants(constants or {})
    key = _cache_key(source, base, consts, thumb)
    program = _CACHE.get(key)
    if program is None:
        program = _build(source, base, consts, filename, thumb)
        _CACHE.put(key, program)
    return dataclasses.replace(program, filename=filename)


_FILE_MEMO: dict[tuple[object, ...], Program] = {}
_FILE_MEMO_MAX = 4096


def assemble_file(path: str | os.PathLike[str], base: int, *,
                  constants: Mapping[str, int] | None = None, thumb: bool = False) -> Program:
    """Assemble the UTF-8 source file at `path` (see `assemble`).

    Remembered per (file, its size, mtime and inode, base, constants, thumb) in this process: a
    sweep links the same sources at the same few addresses thousands of times, and reading the
    file and hashing the cache key cost more than the rest of the plan."""
    name = os.fspath(path)
    try:
        st = os.stat(name)
    except OSError:
        st = None
    memo = None if st is None else (name, st.st_size, st.st_mtime_ns, st.st_ino, base, thumb,
                                    tuple(sorted((constants or {}).items())))
    program = _FILE_MEMO.get(memo) if memo is not None else None
    if program is None:
        program = _assemble_file(name, base, constants, thumb)
        if memo is not None:
            if len(_FILE_MEMO) >= _FILE_MEMO_MAX:
                _FILE_MEMO.clear()
            _FILE_MEMO[memo] = program
    return program


def _assemble_file(name: str, base: int, constants: Mapping[str, int] | None,
                   thumb: bool) -> Program:
    raw = Path(name).read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise AsmError(name, raw.count(b"\n", 0, e.start) + 1, "source is not valid UTF-8") from None
    return assemble(text, base, constants=constants, filename=name, thumb=thumb)


def cache_info() -> dict[str, int]:
    """Counters since the last `clear_memory_cache()`: hits (memory_hits + disk_hits), misses, entries."""
    return _CACHE.info()


def clear_memory_cache() -> None:
    """Forget the in-memory cache and reset the counters (the disk cache stays)."""
    _CACHE.clear()
    _FILE_MEMO.clear()


def _check_base(base: int) -> None:
    if not isinstance(base, int) or not 0 <= base < 1 << 32 or base % 4:
        raise ValueError(f"base must be a word-aligned 32-bit address, not {base!r}")


def _check_constants(constants: Mapping[str, int]) -> dict[str, int]:
    for name, value in constants.items():
        if not isinstance(name, str) or not _IDENT_RE.fullmatch(name) or name.startswith(_GENERATED):
            raise ValueError(f"constant name {name!r} is not a valid symbol name")
        if isinstance(value, bool) or not isinstance(value, int) or not -(1 << 31) <= value < 1 << 32:
            raise ValueError(f"constant {name} = {value!r} is not a 32-bit integer")
    return dict(sorted(constants.items()))
