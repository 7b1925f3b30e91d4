"""Unicorn instances reused across boards with the same RAM layout: what makes a sweep fast.

Creating a Unicorn instance (and releasing it) is most of the cost of a small board, so a sweep
keeps one per RAM layout and resets it between boards. The reset must leave nothing of the last
board: its RAM (an anonymous ``mmap`` mapped with ``mem_map_ptr``, ``engine_ram``) is zeroed with
``madvise(MADV_DONTNEED)`` (the kernel drops the pages; the next touch reads zeros), as is the
scratch page; hooks added after the engine was made are removed (the three hooks the engine owns
stay: their callbacks are set anew by every board), the soft TLB is flushed, translated code is
kept only where the next board loads the same bytes at the same place (``code_cache``), and the
registers are restored from a context saved when the instance was new.

The image poison (one word repeated over up to 16 MiB, on every board) is not written page by page:
``write_repeated`` maps the span's whole pages copy-on-write from a memfd that holds the word
(``MAP_PRIVATE | MAP_FIXED`` over the RAM's own host pages, which Unicorn keeps using), so a board
touches only the pages it reads or writes. ``reset`` maps anonymous memory back over those spans
first: ``MADV_DONTNEED`` on a private file mapping would restore the poison, not zeros.
``mem_unmap`` is avoided on purpose: in Unicorn 2.1.4 it flushes page by page and costs more
than a new instance. Tested: a pooled board's result equals a fresh ``hypemu.run`` of the same
scenario (tests/test_engine_pool.py).
"""

from __future__ import annotations

import ctypes
import mmap
import os
import sys
from collections import OrderedDict
from typing import Any, Optional

from .engine import PAGE, Engine

MAX_LAYOUTS = 32  # instances kept: ~5 MB each (RAM holds only the pages its last board touched)
# Python 3.11's mmap module lacks the constant; 0x10 is Linux's value on x86, Arm and most others
MAP_FIXED: Optional[int] = getattr(mmap, "MAP_FIXED", 0x10 if sys.platform == "linux" else None)
MIN_MAPPED = 16 * PAGE   # a shorter repeated span is written: two mmap calls cost more than that


class _Templates:
    """Per 32-bit word, a memfd full of it, grown as spans need; and libc's mmap for MAP_FIXED
    (Python's mmap module cannot place a mapping). None where either is missing: the pool
    then writes the spans (``usable``)."""

    def __init__(self) -> None:
        self._fds: dict[bytes, tuple[int, int]] = {}    # word -> (fd, size)
        self._mmap: Optional[Any] = None
        if hasattr(os, "memfd_create") and MAP_FIXED is not None:
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                self._mmap = libc.mmap
            except (OSError, AttributeError):   # pragma: no cover - not on Linux
                self._mmap = None
        if self._mmap is not None:
            self._mmap.restype = ctypes.c_void_p
            self._mmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                                   ctypes.c_int, ctypes.c_long)

    @property
    def usable(self) -> bool:
        return self._mmap is not None

    def _fd(self, word: bytes, size: int) -> int:
        fd, have = self._fds.get(word, (-1, 0))
        if fd < 0:
            fd = os.memfd_create("hypemu-fill")
        if have < size:
            grown = max(size, 2 * have)
            os.pwrite(fd, word * ((grown - have) // 4), have)
            self._fds[word] = (fd, grown)
        return fd

    def _place(self, address: int, size: int, flags: int, fd: int) -> None:
        assert self._mmap is not None and MAP_FIXED is not None
        got = self._mmap(address, size, mmap.PROT_READ | mmap.PROT_WRITE,
                         mmap.MAP_PRIVATE | MAP_FIXED | flags, fd, 0)
        if got != address:
            raise OSError(ctypes.get_errno(), f"mmap(MAP_FIXED) at {address:#x} failed")

    def map_word(self, address: int, size: int, word: bytes) -> None:
        """``size`` bytes at host ``address`` (page-aligned) read as ``word`` repeated."""
        self._place(address, size, 0, self._fd(word, size))

    def map_zeros(self, address: int, size: int) -> None:
        self._place(address, size, mmap.MAP_ANONYMOUS, -1)


TEMPLATES = _Templates()


class PooledEngine(Engine):
    """An Engine that ``reset`` makes new again for the next board of the same RAM layout."""

    def __init__(self, banks: list[tuple[int, int]], thumb: bool = False) -> None:
        super().__init__(banks, thumb=thumb)
        self._extra_hooks: list[Any] = []
        self._templated: list[tuple[int, int]] = []     # host spans mapped from a template
        self._fresh: Any = self.uc.context_save()   # the registers of the new instance
        self.code.lazy = self.ram.can_drop and not thumb   # the next board's code: see reset

    def write_repeated(self, pa: int, word: bytes, size: int) -> None:
        end = pa + size
        first, last = -(-pa // PAGE) * PAGE, end // PAGE * PAGE   # the whole pages inside
        bank = next((i for i, (base, length) in enumerate(self.banks)
                     if base <= pa and end <= base + length), None)
        if bank is None or last - first < MIN_MAPPED or not TEMPLATES.usable or pa % 4 or size % 4:
            return super().write_repeated(pa, word, size)
        self.code.before_write(pa, size)
        host = self.ram.hosts[bank] + first - self.banks[bank][0]
        TEMPLATES.map_word(host, last - first, word)
        self._templated.append((host, last - first))
        self.write(pa, word * ((first - pa) // 4))
        self.write(last, word * ((end - last) // 4))

    def watch_memory(self, seen: Any) -> Any:
        handle = super().watch_memory(seen)
        self._extra_hooks.append(handle)
        return handle

    def unwatch(self, handle: Any) -> None:
        super().unwatch(handle)
        self._extra_hooks.remove(handle)

    def reset(self, thumb: bool = False) -> None:
        """Back to the state of a new instance with zeroed RAM (see the module docstring), made
        for a board that may (``thumb``) or may not run Thumb code. Translated code stays where
        the next board loads the same bytes at the same place (``code_cache``)."""
        self.flush_soft_tlb()     # first: the translations' bytes are kept before they go
        self.code.before_zeroing()
        for host, size in self._templated:
            TEMPLATES.map_zeros(host, size)
        self._templated.clear()
        self.ram.zero()           # the scratch page too
        if self._extra_hooks or self.code.tainted:   # memory hooks are compiled into the code
            self.flush_code_cache()                   # translated with them; code_cache.blind
        self.code.tainted = False
        for handle in self._extra_hooks:
            self.uc.hook_del(handle)
        self._extra_hooks.clear()
        self._hook_error = None
        self.thumb_code = thumb
        self._fill = lambda va, access: None
        self._refused = lambda decision: None
        self._trap = lambda pc, cpsr: None
        self._interrupt = lambda intno, pc: None
        self.reset_budget()      # the native budget's count (its block hook stays: the only one)
        self.context_restore(self._fresh)


class EnginePool:
    """An ``engine.EngineFactory`` that lends one reset instance per RAM layout (the last
    ``MAX_LAYOUTS`` layouts are kept). One board at a time: a board must be done with its engine
    before the next board of the same layout asks for it (a sweep worker runs points one by one)."""

    def __init__(self, max_layouts: int = MAX_LAYOUTS) -> None:
        # keyed by the layout and whether Thumb code may run: the budget an engine counts with is
        # chosen when it is made (the native one counts ARM code only, engine_budget)
        self._engines: OrderedDict[tuple[tuple[tuple[int, int], ...], bool], PooledEngine] = \
            OrderedDict()
        self._max = max_layouts
        self.made = self.reused = 0

    def __call__(self, banks: list[tuple[int, int]], *, thumb: bool = False) -> Engine:
        layout = (tuple(sorted(banks)), thumb)
        engine = self._engines.get(layout)
        if engine is None:
            engine = PooledEngine(list(layout[0]), thumb)
            self._engines[layout] = engine
            self.made += 1
            while len(self._engines) > self._max:
                self._engines.popitem(last=False)
        else:
            engine.reset(thumb)
            self._engines.move_to_end(layout)
            self.reused += 1
        return engine
