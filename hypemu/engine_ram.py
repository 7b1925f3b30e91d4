"""The board's RAM as host memory hypemu owns, mapped into Unicorn with ``mem_map_ptr``.

Why own it: the model reads RAM on every trapped instruction (its word) and every walk step (a
descriptor); through Python's ``mmap`` such a read costs a fifth of a call into Unicorn's C API.
A pooled engine zeroes it with one ``madvise`` (``engine_pool``). And Unicorn's code cache can be
told which bytes of RAM changed by their RAM address (Unicorn's, from the host address), so that
only the code translated from them is removed (``code_cache``).

Unicorn's ``tb_invalidate_phys_range`` and ``qemu_ram_addr_from_host`` are exported by its 2.1
library but are not part of its API: where they are missing, ``can_drop`` is False and translated
code is flushed whole instead. An access that no region holds whole (no RAM there, or one that
crosses from one bank into the next) goes through Unicorn, which knows both answers.
"""

from __future__ import annotations

import ctypes
import mmap
import struct
from typing import Any, Optional

from unicorn import UC_PROT_ALL, UcError  # type: ignore[attr-defined]

from .engine_regs import NoMemory

PAGE = 4096
_U32, _U64 = struct.Struct("<I"), struct.Struct("<Q")
_RAM_ADDR_INVALID = (1 << 64) - 1


def _code_invalidation() -> tuple[Any, Any]:
    """Unicorn's (qemu_ram_addr_from_host, tb_invalidate_phys_range), or (None, None)."""
    try:
        from unicorn.unicorn_py3.unicorn import uclib
        ram_addr, invalidate = uclib.qemu_ram_addr_from_host_arm, uclib.tb_invalidate_phys_range_arm
    except (ImportError, AttributeError):   # pragma: no cover - another Unicorn build
        return None, None
    ram_addr.restype, ram_addr.argtypes = ctypes.c_uint64, (ctypes.c_void_p, ctypes.c_void_p)
    invalidate.restype = None
    invalidate.argtypes = (ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint64)
    return ram_addr, invalidate


_RAM_ADDR, _INVALIDATE = _code_invalidation()


class HostRam:
    """The regions (RAM banks, the scratch page) of one Unicorn instance ``uc``, each a private
    anonymous ``mmap`` (committed only where touched)."""

    def __init__(self, uc: Any) -> None:
        self._uc, self._uch = uc, uc._uch
        self.memory: list[mmap.mmap] = []
        self.regions: list[tuple[int, int]] = []       # (PA, size)
        self.hosts: list[int] = []                     # the host address of each region
        self._spans: list[tuple[mmap.mmap, int, int]] = []   # (memory, PA, end PA)
        # the first region, as (memory, PA, last PA a doubleword read may start at): descriptor
        # reads (every walk, every check) land there, so read64 tries it before the loop
        self._first64: tuple[mmap.mmap | bytes, int, int] = (b"", 1, 0)
        self._ram_addrs: Optional[list[int]] = [] if _RAM_ADDR is not None else None

    def add(self, pa: int, size: int) -> None:
        memory = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        host = ctypes.addressof(ctypes.c_char.from_buffer(memory))
        self._uc.mem_map_ptr(pa, size, UC_PROT_ALL, host)
        self.memory.append(memory)
        self.regions.append((pa, size))
        self.hosts.append(host)
        self._spans.append((memory, pa, pa + size))
        if len(self._spans) == 1:
            self._first64 = (memory, pa, pa + size - 8)
        if self._ram_addrs is not None:
            ram = int(_RAM_ADDR(self._uch, host))
            self._ram_addrs = None if ram == _RAM_ADDR_INVALID else self._ram_addrs + [ram]

    @property
    def can_drop(self) -> bool:
        return self._ram_addrs is not None

    # --- reads and writes by physical address ----------------------------------------------------
    def read(self, pa: int, size: int) -> bytes:
        for memory, base, end in self._spans:
            if base <= pa and pa + size <= end:
                return memory[pa - base:pa - base + size]
        try:
            return bytes(self._uc.mem_read(pa, size))
        except UcError:
            raise NoMemory(f"no memory at PA {pa:#x}..{pa + size - 1:#x}") from None

    def read32(self, pa: int) -> int:
        for memory, base, end in self._spans:
            if base <= pa <= end - 4:
                return int(_U32.unpack_from(memory, pa - base)[0])
        return int.from_bytes(self.read(pa, 4), "little")

    def read64(self, pa: int) -> int:
        first, base, last = self._first64
        if base <= pa <= last:
            return int(_U64.unpack_from(first, pa - base)[0])
        for memory, base, end in self._spans:
            if base <= pa <= end - 8:
                return int(_U64.unpack_from(memory, pa - base)[0])
        return int.from_bytes(self.read(pa, 8), "little")

    def write(self, pa: int, data: bytes) -> None:
        size = len(data)
        for memory, base, end in self._spans:
            if base <= pa and pa + size <= end:
                memory[pa - base:pa - base + size] = data
                return
        self._uc.mem_write(pa, bytes(data))

    def page(self, page: int) -> bytes:
        """The bytes of physical page number ``page``."""
        return self.read(page << 12, PAGE)

    def zero(self) -> None:
        """Every region reads as zeros again (the kernel drops the pages)."""
        for memory in self.memory:
            memory.madvise(mmap.MADV_DONTNEED)

    # --- Unicorn's code cache ------------------------------------------------------------------
    def drop_code(self, changes: list[tuple[int, list[tuple[int, int]]]]) -> bool:
        """Remove the code Unicorn translated from byte ranges ``(begin, end)`` of physical pages
        (``code_cache``'s drop); False if it cannot (the caller flushes all)."""
        addrs = self._ram_addrs
        if addrs is None:
            return False
        for page, spans in changes:
            pa = page << 12
            found = next((n for n, (base, size) in enumerate(self.regions)
                          if base <= pa < base + size), None)
            if found is None:
                return False
            ram = addrs[found] + pa - self.regions[found][0]
            for begin, end in spans:
                _INVALIDATE(self._uch, ram + begin, ram + end)
        return True
