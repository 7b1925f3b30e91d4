"""The exact instruction budget counted per translated block in native code (``hypemu._budget``,
a small optional C extension), and the choice between it and Unicorn's ``emu_start(count=)``.

Why: ``count=`` makes Unicorn call a code hook before every instruction (about 3.5x the cost of
bare Unicorn on a tight loop). The native budget is a C block hook, the instance's only one, so
Unicorn 2.1 calls it directly from the translated code: an add and a compare per block.

The method, exact to ``count=`` (the suite compares the two on every shipped scenario and on a
sweep of small limits):
- The block hook runs before a block's first instruction, before the block's exit check. It adds
  the block's size / 4 (ARM state) to the counter; when the block would pass the limit it calls
  ``uc_emu_stop`` instead, so the block does not run.
- Then the page of that block is counted per instruction: its translations are removed from
  Unicorn's cache, a C code hook bounded to the page counts each instruction and stops the run
  when the limit's next instruction would start (as ``count=`` does, counting that one too), and
  the run resumes at the block. Afterwards the code hook is deleted with its translations.
- A run that stops inside a counted block (a refused fill: an abort, a check's pause) is
  corrected from the PC: the instructions after the PC did not run. A trapped instruction ends
  its block for the count (``trapped``): Unicorn resumes after it in a new block.

Limits: ARM state only (size / 4); a block whose size is no multiple of 4 (Thumb code) is
noticed and the run is refused (``ThumbUnderNativeBudget``), so the engine must be built with
the ``count=`` budget wherever Thumb code can run. It must be the only block hook (a second one
turns off Unicorn's inlining: no one else may add one). It relies on Unicorn 2.1's hook layout.

The ``count=`` budget's counter is found here too (``counter_address``): Unicorn keeps it without an API.

State: a ``NativeBudget`` belongs to one Unicorn instance for that instance's life (its block hook
is installed before the first translation); ``reset()`` forgets all runs, so an instance reused
for another board starts clean.
"""

from __future__ import annotations

import ctypes
import functools
import importlib
import os
import struct
from typing import Any, Callable, Optional

from unicorn import UC_ARCH_ARM, UC_CTL_IO_WRITE, UC_CTL_TB_REMOVE_CACHE, UC_MODE_ARM
from unicorn import Uc, UcError  # type: ignore[attr-defined]
from unicorn.arm_const import UC_ARM_REG_CPSR, UC_ARM_REG_PC

ENV = "HYPEMU_NATIVE_BUDGET"
"""Set to 0 to use Unicorn's ``count=`` even where the native budget is available."""
UNLIMITED = (1 << 64) - 1
NATIVE, COUNT = "native", "count"


class UnsupportedUnicorn(RuntimeError):
    """This Unicorn build keeps its instruction counter where hypemu cannot find it."""


class ThumbUnderNativeBudget(RuntimeError):
    """Thumb code ran while the native budget counted ARM words: the count would be wrong."""


def _handle_address(uc: Any) -> int:
    handle = uc._uch  # the uc_engine pointer of the binding
    return int(handle.value if hasattr(handle, "value") else handle)


@functools.lru_cache(maxsize=1)
def _counter_offset() -> int:
    """Where Unicorn keeps the executed-instruction counter of a counted emu_start.

    Unicorn 2.1 counts instructions for ``emu_start(count=N)`` (that is how the budget is enforced)
    but exposes no API to read the count. It stores the counter next to the requested count in its
    engine structure; we find that pair once per process by running two programs of known length
    and looking for (executed, requested) side by side. If the layout is not found the Unicorn build
    is not supported, and we say so rather than report invented numbers.
    """
    probes = ((37, 12345), (53, 23457))
    candidates = None
    for executed, requested in probes:
        uc: Any = Uc(UC_ARCH_ARM, UC_MODE_ARM)  # type: ignore[no-untyped-call]
        uc.ctl_set_page_size(4096)
        uc.mem_map(0x10000, 4096)
        nop, branch_self = 0xE1A00000, 0xEAFFFFFE
        uc.mem_write(0x10000, struct.pack(f"<{executed + 1}I", *([nop] * executed), branch_self))
        uc.emu_start(0x10000, 0x10000 + 4 * executed, count=requested)
        raw = ctypes.string_at(_handle_address(uc), 4096)
        found = {off for off in range(0, len(raw) - 16, 8)
                 if struct.unpack_from("<QQ", raw, off) == (executed, requested)}
        candidates = found if candidates is None else candidates & found
    if not candidates or len(candidates) != 1:
        raise UnsupportedUnicorn("cannot locate Unicorn's instruction counter: this Unicorn build is not "
                          "supported (hypemu needs unicorn 2.1.x)")
    return candidates.pop()


def counter_address(uc: Any) -> int:
    """Where the count= budget's executed-instruction counter of ``uc`` lives."""
    return _handle_address(uc) + _counter_offset()


def _module() -> Any:
    return importlib.import_module(f"{__package__}._budget")   # the compiled extension


def native_unavailable() -> Optional[str]:
    """Why the native budget cannot be used in this process (None: it can)."""
    if os.environ.get(ENV, "1").strip() == "0":
        return f"{ENV}=0"
    try:
        _module()
        from unicorn.unicorn_py3.unicorn import uclib  # noqa: F401
    except ImportError as err:
        return f"the extension hypemu._budget is not built ({err})"
    return None


def describe() -> str:
    """Which budget a new engine uses here, in words (``hypemu --version``, the bench)."""
    reason = native_unavailable()
    if reason is None:
        return "native (hypemu._budget: a C block hook, exact)"
    return f"count= (Unicorn's per-instruction count hook; native budget off: {reason})"


def _address(function: Any) -> int:
    return int(ctypes.cast(function, ctypes.c_void_p).value or 0)


def _ctl_code(ctl: int, nargs: int, op: int) -> int:
    return (op << 30) | (nargs << 26) | ctl   # UC_CTL(type, nr, rw) of unicorn.h


class NativeBudget:
    """The native budget on one Unicorn instance ``uc`` (the binding's ``Uc``). ``quiet`` is a
    context the engine gives for maintenance: Unicorn translates a VA to remove translations, and
    a fill asked then must not reach the model."""

    def __init__(self, uc: Any, page: int) -> None:
        from unicorn.unicorn_py3.unicorn import uclib
        handle = uc._uch
        self._c = _module().Budget(
            int(handle.value if hasattr(handle, "value") else handle),
            _address(uclib.uc_hook_add), _address(uclib.uc_hook_del),
            _address(uclib.uc_emu_stop), _address(uclib.uc_reg_read), _address(uclib.uc_ctl),
            UC_ARM_REG_PC, UC_ARM_REG_CPSR, _ctl_code(UC_CTL_TB_REMOVE_CACHE, 2, UC_CTL_IO_WRITE), page)
        self._uc = uc
        uc._hypemu_budget = self._c   # the hook's data lives as long as the instance runs
        self.trapped: Callable[[], tuple[int, int]] = self._c.trapped   # -> (PC, CPSR)
        self.executed: Callable[[], int] = self._c.executed

    def run(self, pc: int, count: Optional[int], emu_start: Callable[[int, int], Optional[UcError]],
            quiet: Callable[[], Any]) -> Optional[UcError]:
        """One run from ``pc`` of at most ``count`` instructions (None: unlimited) through
        ``emu_start(pc, 0)``; Unicorn's error if it stopped on one. ``executed()`` then counts as
        ``emu_start(count=)`` would."""
        c = self._c
        c.arm(UNLIMITED if count is None else count)
        odd = c.odd_blocks
        err = emu_start(pc, 0)
        while err is None and c.pending is not None:   # the limit falls inside a block
            resume = c.finish()
            try:
                err = emu_start(resume, 0)
            finally:
                with quiet():
                    c.end()
        if c.odd_blocks != odd:
            raise ThumbUnderNativeBudget(
                "Thumb code ran under the native budget, which counts ARM words: build the "
                "engine with the count= budget where Thumb code can run")
        return err

    def disable(self) -> None:
        """Count no more (Thumb code was loaded: the engine counts with count= from now on)."""
        self._c.disable()

    def reset(self) -> None:
        """Forget every run (an instance reused for another board); the block hook stays."""
        self._c.reset()
