"""Assembled programs by content hash: the key covers the source, the base, the constants, this
package's own sources and keystone's version."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import tempfile
import threading
from pathlib import Path

from .program import Program, Section, _FrozenMap


def _cache_key(source: str, base: int, constants: dict[str, int], thumb: bool = False) -> str:
    blob = json.dumps([_module_version(), source, base, sorted(constants.items())]
                      + (["thumb"] if thumb else []))
    return hashlib.sha256(blob.encode()).hexdigest()


@functools.lru_cache(maxsize=None)
def _module_version() -> str:
    """The hash of this package's sources (every module, in name order) and keystone's version: any
    change to either invalidates the cache."""
    from importlib import metadata
    try:
        keystone = metadata.version("keystone-engine")
    except metadata.PackageNotFoundError:
        keystone = "unknown"
    sources = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py"), key=lambda p: p.name):
        data = path.read_bytes()
        sources.update(f"{path.name}:{len(data)}\n".encode() + data)
    return f"{sources.hexdigest()[:16]}/keystone-{keystone}"


class _Cache:
    """Assembled programs by content hash: a dict in memory, JSON files on disk.

    The directory is $HYPEMU_CACHE_DIR (default ~/.cache/hypemu/asm). Writes are atomic (temp file +
    rename); an unreadable or malformed entry counts as a miss and is rewritten; a directory that cannot
    be written is silently not used."""

    def __init__(self) -> None:
        self._memory: dict[str, Program] = {}
        self._lock = threading.Lock()
        self._counts = {"memory_hits": 0, "disk_hits": 0, "misses": 0}

    def info(self) -> dict[str, int]:
        with self._lock:
            hits = self._counts["memory_hits"] + self._counts["disk_hits"]
            return {"hits": hits, **self._counts, "entries": len(self._memory)}

    def clear(self) -> None:
        with self._lock:
            self._memory.clear()
            self._counts = dict.fromkeys(self._counts, 0)

    def get(self, key: str) -> Program | None:
        with self._lock:
            program = self._memory.get(key)
        kind = "memory_hits"
        if program is None:
            program, kind = self._read_disk(key), "disk_hits"
        with self._lock:
            if program is None:
                self._counts["misses"] += 1
            else:
                self._counts[kind] += 1
                self._memory[key] = program
        return program

    def put(self, key: str, program: Program) -> None:
        with self._lock:
            self._memory[key] = program
        self._write_disk(key, program)

    @staticmethod
    def _directory() -> Path:
        configured = os.environ.get("HYPEMU_CACHE_DIR")
        return Path(configured) if configured else Path.home() / ".cache" / "hypemu" / "asm"

    def _read_disk(self, key: str) -> Program | None:
        try:
            entry = json.loads((self._directory() / f"{key}.json").read_text())
            if entry["key"] != key:
                return None
            symbols = {str(k): int(v) for k, v in entry["symbols"].items()}
            sections = tuple(Section(str(n), str(k), int(a), int(z)) for n, k, a, z in
                             entry["sections"])
            return Program(bytes.fromhex(entry["code"]), int(entry["base"]), _FrozenMap(symbols),
                           frozenset(str(g) for g in entry["globals"]), "",
                           entry.get("thumb") is True, sections)
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None

    def _write_disk(self, key: str, program: Program) -> None:
        entry = {"key": key, "code": program.code.hex(), "base": program.base,
                 "symbols": dict(program.symbols), "globals": sorted(program.globals),
                 "thumb": program.thumb,
                 "sections": [[s.name, s.kind, s.address, s.size] for s in program.sections]}
        directory = self._directory()
        try:
            directory.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=directory, suffix=".tmp")
        except OSError:
            return
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(entry, f)
            os.replace(temporary, directory / f"{key}.json")
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(temporary)


_CACHE = _Cache()
