"""The thin adapter around one Unicorn instance: memory by physical address, registers, the exact
instruction counter of a counted ``emu_start``, and Unicorn's soft-TLB flush.

Why a separate module: only this file and ``cpu.py`` speak Unicorn; everything above them uses plain
integers and bytes. The instruction counter lives here because Unicorn keeps it internally without an
API (see ``_counter_offset``).
"""

from __future__ import annotations

import ctypes
import functools
import struct
from typing import Optional

from unicorn import (UC_ARCH_ARM, UC_CTL_IO_WRITE, UC_CTL_TB_FLUSH, UC_CTL_TLB_FLUSH, UC_MODE_ARM,
                     UC_TLB_VIRTUAL, Uc, UcError)
from unicorn.arm_const import UC_CPU_ARM_CORTEX_A15

PAGE = 4096


class EngineError(RuntimeError):
    """Unicorn could not do what the model asked (a bug or an unsupported Unicorn build)."""


class NoMemory(EngineError, LookupError):
    """A read of a physical address where the board has no RAM (a walk there is an external
    abort: the walker catches LookupError)."""


class Registers:
    """32-bit register access and small memory loads through Unicorn's C API with reused buffers.
    Why: the binding's ``reg_read``/``reg_write`` dispatch on the register's type on every call
    (~1.2 us each), and ``mem_read`` allocates a buffer per call; a trapped instruction makes several
    accesses and a walk reads up to four descriptors. This costs a third of that. Falls back to the
    binding when this Unicorn build does not expose its library handle."""

    def __init__(self, uc: Uc):
        try:
            from unicorn.unicorn_py3.unicorn import uclib
            self._handle, self._c_read, self._c_write = uc._uch, uclib.uc_reg_read, uclib.uc_reg_write
        except (ImportError, AttributeError):   # pragma: no cover - other bindings
            self.read, self.write = uc.reg_read, uc.reg_write
            self.load = self._load_by_binding
            self._uc = uc
            return
        self._c_mem_read = uclib.uc_mem_read
        self._buf = ctypes.c_uint32()
        self._ref = ctypes.byref(self._buf)
        self._mem = ctypes.create_string_buffer(8)

    def _load_by_binding(self, pa: int, size: int) -> int:   # pragma: no cover - other bindings
        try:
            return int.from_bytes(self._uc.mem_read(pa, size), "little")
        except UcError:
            raise NoMemory(f"no memory at PA {pa:#x}") from None

    def read(self, reg: int) -> int:
        if self._c_read(self._handle, reg, self._ref):
            raise EngineError(f"uc_reg_read({reg}) failed")
        return self._buf.value

    def load(self, pa: int, size: int) -> int:
        """The little-endian value of ``size`` (4 or 8) bytes of memory at ``pa``."""
        if self._c_mem_read(self._handle, pa, self._mem, size):
            raise NoMemory(f"no memory at PA {pa:#x}")
        return int.from_bytes(self._mem.raw[:size], "little")

    def write(self, reg: int, value: int) -> None:
        self._buf.value = value & 0xFFFFFFFF
        if self._c_write(self._handle, reg, self._ref):
            raise EngineError(f"uc_reg_write({reg}) failed")


def new_uc() -> Uc:
    """A Cortex-A15 Unicorn with 4 KiB pages and the virtual (hook-filled) TLB."""
    uc = Uc(UC_ARCH_ARM, UC_MODE_ARM)
    uc.ctl_set_cpu_model(UC_CPU_ARM_CORTEX_A15)
    uc.ctl_set_page_size(PAGE)
    uc.ctl_set_tlb_mode(UC_TLB_VIRTUAL)
    # Runs end in a hook (sentinel, fault) or on the count, never at an `until` address. With
    # `until`, Unicorn translates that address's page (through our fill hook!) at start and stop;
    # an empty exit list switches that off.
    uc.ctl_exits_enabled(True)
    uc.ctl_set_exits([])
    return uc


def _handle_address(uc: Uc) -> int:
    handle = uc._uch  # the uc_engine pointer of the binding
    return handle.value if hasattr(handle, "value") else int(handle)


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
        uc = Uc(UC_ARCH_ARM, UC_MODE_ARM)
        uc.ctl_set_page_size(PAGE)
        uc.mem_map(0x10000, PAGE)
        nop, branch_self = 0xE1A00000, 0xEAFFFFFE
        uc.mem_write(0x10000, struct.pack(f"<{executed + 1}I", *([nop] * executed), branch_self))
        uc.emu_start(0x10000, 0x10000 + 4 * executed, count=requested)
        raw = ctypes.string_at(_handle_address(uc), 4096)
        found = {off for off in range(0, len(raw) - 16, 8)
                 if struct.unpack_from("<QQ", raw, off) == (executed, requested)}
        candidates = found if candidates is None else candidates & found
    if not candidates or len(candidates) != 1:
        raise EngineError("cannot locate Unicorn's instruction counter: this Unicorn build is not "
                          "supported (hypemu needs unicorn 2.1.x)")
    return candidates.pop()


class Engine:
    """One Unicorn instance with RAM banks mapped by physical address."""

    def __init__(self, banks: list[tuple[int, int]]):
        self.uc = new_uc()
        self.regs = Registers(self.uc)
        self.banks = sorted(banks)
        for base, size in self.banks:
            self.uc.mem_map(base, size)
        self.scratch = self._map_scratch()
        self._counter_addr = _handle_address(self.uc) + _counter_offset()

    def _map_scratch(self) -> int:
        """A page outside RAM, used to replay one faulting access (see cpu.Core._exact_data_va)."""
        pa = (1 << 40) - PAGE
        while self.is_ram(pa):
            pa -= PAGE
        self.uc.mem_map(pa, PAGE)
        return pa

    def is_ram(self, pa: int) -> bool:
        for base, size in self.banks:
            if base <= pa < base + size:
                return True
        return False

    # --- memory by physical address ------------------------------------------------------------
    def read(self, pa: int, size: int) -> bytes:
        try:
            return bytes(self.uc.mem_read(pa, size))
        except UcError:
            raise NoMemory(f"no memory at PA {pa:#x}..{pa + size - 1:#x}") from None

    def write(self, pa: int, data: bytes) -> None:
        self.uc.mem_write(pa, bytes(data))

    def read32(self, pa: int) -> int:
        return self.regs.load(pa, 4)

    def write32(self, pa: int, value: int) -> None:
        self.uc.mem_write(pa, (value & 0xFFFFFFFF).to_bytes(4, "little"))

    def read64(self, pa: int) -> int:
        """A descriptor or a word pair: the walker's hot path, so through the C API directly."""
        return self.regs.load(pa, 8)

    def write64(self, pa: int, value: int) -> None:
        self.uc.mem_write(pa, (value & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "little"))

    # --- engine control -------------------------------------------------------------------------
    def flush_soft_tlb(self) -> None:
        """Drop every translation Unicorn cached; the next access of each page asks the model."""
        self.uc.ctl(UC_CTL_TLB_FLUSH, UC_CTL_IO_WRITE)

    def flush_code_cache(self) -> None:
        """Host writes do not invalidate translated code: call after loading or patching code."""
        self.uc.ctl(UC_CTL_TB_FLUSH, UC_CTL_IO_WRITE)

    def executed(self) -> int:
        """Instructions the last counted emu_start executed (requested + 1 when the count ran out)."""
        return ctypes.c_uint64.from_address(self._counter_addr).value

    def start(self, pc: int, count: Optional[int]) -> UcError | None:
        """Run from ``pc`` for at most ``count`` instructions; the error, if Unicorn stopped on one.
        ``count`` None runs uncounted (no budget, ``executed()`` meaningless): the benchmark suite
        uses it to separate the cost of the exact budget from the cost of the HYP model."""
        if count is not None and count < 1:
            raise EngineError("emu_start needs a positive instruction count (0 means unlimited)")
        try:
            self.uc.emu_start(pc, 0, count=count or 0)
        except UcError as err:
            return err
        return None
