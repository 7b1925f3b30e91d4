"""Unicorn instances reused across boards with the same RAM layout: what makes a sweep fast.

Creating a Unicorn instance (and releasing it) is most of the cost of a small board, so a sweep
keeps one per RAM layout and resets it between boards. The reset must leave nothing of the last
board: its RAM comes from an anonymous ``mmap`` mapped with ``mem_map_ptr`` and is zeroed with
``madvise(MADV_DONTNEED)`` (the kernel drops the pages; the next touch reads zeros), as is the
scratch page; hooks added after the engine was made are removed (the three hooks the engine owns
stay: their callbacks are set anew by every board), the translated code and the soft TLB are
flushed, and the registers are restored from a context saved when the instance was new.
``mem_unmap`` is avoided on purpose: in Unicorn 2.1.4 it flushes page by page and costs more
than a new instance. Tested: a pooled board's result equals a fresh ``hypemu.run`` of the same
scenario (tests/test_engine_pool.py).
"""

from __future__ import annotations

import ctypes
import mmap
from collections import OrderedDict
from typing import Any

from .engine import PAGE, PROT_ALL, Engine

MAX_LAYOUTS = 32  # instances kept: ~5 MB each (RAM holds only the pages its last board touched)


class PooledEngine(Engine):
    """An Engine whose RAM is host memory it owns, so that ``reset`` can zero it in one call."""

    def __init__(self, banks: list[tuple[int, int]], thumb: bool = False) -> None:
        super().__init__(banks, thumb=thumb)
        self._extra_hooks: list[Any] = []
        self._fresh: Any = self.uc.context_save()   # the registers of the new instance

    def _map_ram(self) -> None:
        self._ram: list[mmap.mmap] = []
        for base, size in self.banks:
            self._ram.append(self._host_map(base, size))

    def _host_map(self, base: int, size: int) -> mmap.mmap:
        memory = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        address = ctypes.addressof(ctypes.c_char.from_buffer(memory))
        self.uc.mem_map_ptr(base, size, PROT_ALL, address)
        return memory

    def watch_memory(self, seen: Any) -> Any:
        handle = super().watch_memory(seen)
        self._extra_hooks.append(handle)
        return handle

    def unwatch(self, handle: Any) -> None:
        super().unwatch(handle)
        self._extra_hooks.remove(handle)

    def reset(self, thumb: bool = False) -> None:
        """Back to the state of a new instance with zeroed RAM (see the module docstring), made
        for a board that may (``thumb``) or may not run Thumb code."""
        for memory in self._ram:
            memory.madvise(mmap.MADV_DONTNEED)
        self.write(self.scratch, bytes(PAGE))
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
        self.uc.context_restore(self._fresh)
        self.flush_code_cache()
        self.flush_soft_tlb()


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
