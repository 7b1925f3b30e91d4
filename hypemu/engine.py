"""The thin adapter around one Unicorn instance: memory by physical address, registers by
architectural number, the hooks the CPU model needs (soft-TLB fill, trapped instruction, interrupt,
a memory watch for the replay), the exact instruction budget of a run (native, see
``engine_budget``, or Unicorn's ``emu_start(count=)`` with its counter), Unicorn's soft-TLB
flush, and which translated code survives a host write (``code_cache``). Register access through
the C API is ``engine_regs``.

Why a separate module: only this file and its ``engine_*`` parts speak Unicorn; the rest uses
integers, bytes and callbacks.
A hook's exception cannot cross Unicorn's C frames: the adapter captures it, stops the run and
re-raises it from ``start``. The ``count=`` budget's counter is here: Unicorn has no API for it.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
from typing import Any, Callable, Iterator, Optional, Protocol

from unicorn import (UC_ARCH_ARM, UC_CTL_IO_WRITE, UC_CTL_TB_FLUSH, UC_CTL_TLB_FLUSH,
                     UC_HOOK_INSN_INVALID, UC_HOOK_INTR, UC_HOOK_MEM_READ, UC_HOOK_MEM_WRITE,
                     UC_HOOK_TLB_FILL, UC_MEM_FETCH, UC_MEM_WRITE, UC_MODE_ARM, UC_PROT_EXEC,
                     UC_PROT_READ, UC_PROT_WRITE, UC_TLB_VIRTUAL)
from unicorn import Uc, UcError  # type: ignore[attr-defined]
from unicorn.arm_const import UC_CPU_ARM_CORTEX_A15

from . import engine_budget
from .code_cache import CodeCache
from .engine_budget import COUNT, NATIVE, NativeBudget, counter_address
from .engine_regs import REG_CPSR as REG_CPSR, REG_LR as REG_LR, REG_PC as REG_PC
from .engine_regs import REG_SP as REG_SP, EngineError as EngineError, NoMemory as NoMemory
from .engine_regs import Registers as Registers, SoftTlbChoice
from .engine_ram import HostRam

PAGE = 4096

# Soft-TLB entry permissions (the values Unicorn uses)
PROT_READ, PROT_WRITE, PROT_EXEC = UC_PROT_READ, UC_PROT_WRITE, UC_PROT_EXEC
PROT_ALL = PROT_READ | PROT_WRITE | PROT_EXEC
_ACCESS = {UC_MEM_FETCH: "fetch", UC_MEM_WRITE: "write"}


class Map(tuple[int, int]):
    """A soft-TLB fill granted: ``Map((pa, perms))``, the PA and its PROT_* permissions. A bare
    tuple subclass, not a NamedTuple: it is built on every fill, and this costs one call less."""

    __slots__ = ()

    @property
    def pa(self) -> int:
        return self[0]

    @property
    def perms(self) -> int:
        return self[1]


FillHook = Callable[[int, str], Any]
"""(va, 'read' | 'write' | 'fetch') -> a ``Map`` to grant the fill, anything else to refuse it."""


def new_uc() -> Any:
    """A Cortex-A15 Unicorn with 4 KiB pages and the virtual (hook-filled) TLB."""
    uc: Any = Uc(UC_ARCH_ARM, UC_MODE_ARM)  # type: ignore[no-untyped-call]  # untyped binding
    uc.ctl_set_cpu_model(UC_CPU_ARM_CORTEX_A15)
    uc.ctl_set_page_size(PAGE)
    uc.ctl_set_tlb_mode(UC_TLB_VIRTUAL)
    # Runs end in a hook (sentinel, fault) or on the count, never at an `until` address. With
    # `until`, Unicorn translates that address's page (through our fill hook!) at start and stop;
    # an empty exit list switches that off.
    uc.ctl_exits_enabled(True)
    uc.ctl_set_exits([])
    return uc


def choose_budget(budget: str = "auto", thumb: bool = False) -> str:
    """The budget an engine uses: ``NATIVE`` or ``COUNT``. ``budget``: "auto" (native where it is
    available and no Thumb code can run), "native" (an EngineError if it cannot be had) or
    "count". ``thumb``: Thumb code may run on the engine, which the native budget cannot count."""
    if budget == COUNT:
        return COUNT
    if budget not in (NATIVE, "auto"):
        raise EngineError(f"unknown budget {budget!r} (auto, native or count)")
    reason = "Thumb code may run" if thumb else engine_budget.native_unavailable()
    if reason is None:
        return NATIVE
    if budget == NATIVE:
        raise EngineError(f"the native budget is not available: {reason}")
    return COUNT


class _TlbEntry(ctypes.Structure):
    _fields_ = [("paddr", ctypes.c_uint64), ("perms", ctypes.c_uint32)]   # uc_tlb_entry


# bool uc_cb_tlbevent_t(uc, vaddr, type, entry *, user_data); bool (uc, user_data); void (uc,
# intno, user_data): the C signatures of the fill, invalid-instruction and interrupt hooks
_FILL_CB = ctypes.CFUNCTYPE(ctypes.c_bool, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_int,
                            ctypes.POINTER(_TlbEntry), ctypes.c_void_p)
_INVALID_CB = ctypes.CFUNCTYPE(ctypes.c_bool, ctypes.c_void_p, ctypes.c_void_p)
_INTR_CB = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_uint32, ctypes.c_void_p)
_TLB_FLUSH = UC_CTL_IO_WRITE << 30 | UC_CTL_TLB_FLUSH   # UC_CTL_WRITE(UC_CTL_TLB_FLUSH, 0)



class Engine:
    """One Unicorn instance with RAM banks mapped by physical address. ``budget``/``thumb``: how
    runs are counted (``choose_budget``); ``budget_kind`` says which one was chosen."""

    def __init__(self, banks: list[tuple[int, int]], budget: str = "auto",
                 thumb: bool = False) -> None:
        self.uc: Any = new_uc()
        self.budget_kind = choose_budget(budget, thumb)
        # before the first translation: every translated block must carry the block hook
        self._native = NativeBudget(self.uc, PAGE) if self.budget_kind == NATIVE else None
        self.regs = Registers(self.uc)
        self.banks = sorted(banks)
        self.ram = HostRam(self.uc)
        for base, size in self.banks:
            self.ram.add(base, size)
        self.scratch = self._map_scratch()
        # memory by physical address, the model's hot path: HostRam's own reads
        self.read: Callable[[int, int], bytes] = self.ram.read
        self.read32: Callable[[int], int] = self.ram.read32
        self.read64: Callable[[int], int] = self.ram.read64
        self._counter: Optional[ctypes.c_uint64] = None if self._native else self._count_view()
        self._thumb_code = thumb
        self._hook_error: Optional[BaseException] = None
        # translated code kept across host writes where its bytes did not change (code_cache)
        self.code = CodeCache(self.ram.page, self.ram.drop_code, self._flush_code)
        self._live, self._granted, self._blind = self.code.live, self.code.granted, self.code.blind
        self._fill: FillHook = lambda va, access: None
        self._refused: Callable[[Any], None] = lambda decision: None
        self._trap: Callable[[int, int], None] = lambda pc, cpsr: None
        self._interrupt: Callable[[int, int], None] = lambda intno, pc: None
        self._add_hooks()
        self.tlbs = SoftTlbChoice(self.uc, self.regs)
        # (HYP MMU's soft TLB, VA page) -> PA page of each executable entry Unicorn holds: where a
        # trapped instruction was fetched from, without asking the model (which gave the entry)
        self.code_pages: dict[tuple[bool, int], int] = {}
        self.use_hyp_tlb: Callable[[bool], None] = self.tlbs.use
        calls = self.regs.calls
        self._flush_tlb: Callable[[], None] = (
            functools.partial(calls.ctl, _TLB_FLUSH) if calls is not None else self._ctypes_flush)
        # stop(): uc_emu_stop, from C where the extension is built (a trap that ends a run)
        self.stop: Callable[[], None] = calls.stop if calls is not None else self._ctypes_stop

    def _ctypes_stop(self) -> None:
        """End the current emu_start after this hook returns."""
        if self._c_emu_stop(self._uch):
            raise EngineError("uc_emu_stop failed")

    def _ctypes_flush(self) -> None:
        if self._c_ctl(self._uch, _TLB_FLUSH):
            raise EngineError("uc_ctl(TLB_FLUSH) failed")

    def _add_hooks(self) -> None:
        """The fill, invalid-instruction and interrupt hooks as ctypes callbacks of our own, on
        Unicorn's C API: the binding's wrappers cost two more Python calls per fill and per trap
        (we catch every exception ourselves, see ``_captured``)."""
        from unicorn.unicorn_py3.unicorn import uclib
        self._c_emu_start, self._c_ctl, self._uch = uclib.uc_emu_start, uclib.uc_ctl, self.uc._uch
        self._c_emu_stop = uclib.uc_emu_stop
        self._callbacks = (_FILL_CB(self._on_tlb_fill), _INVALID_CB(self._on_invalid),
                           _INTR_CB(self._on_interrupt))
        for kind, callback in zip((UC_HOOK_TLB_FILL, UC_HOOK_INSN_INVALID, UC_HOOK_INTR),
                                  self._callbacks):
            handle = ctypes.c_size_t()
            if uclib.uc_hook_add(self._uch, ctypes.byref(handle), kind,
                                 ctypes.cast(callback, ctypes.c_void_p), None, 1, 0):
                raise EngineError(f"uc_hook_add({kind}) failed")

    def _map_scratch(self) -> int:
        """A page outside RAM, used to replay one faulting access (see cpu.runner)."""
        pa = (1 << 40) - PAGE
        while self.is_ram(pa):
            pa -= PAGE
        self.ram.add(pa, PAGE)
        return pa

    def is_ram(self, pa: int) -> bool:
        for base, size in self.banks:
            if base <= pa < base + size:
                return True
        return False

    # --- memory by physical address (read, read32, read64: HostRam's) ------------------------
    def write(self, pa: int, data: bytes) -> None:
        """Every host write: code translated from the bytes it changes goes before the next run
        (``code_cache``), whether the bytes are code, the loader's data or a table."""
        self.code.before_write(pa, len(data))
        self.ram.write(pa, data)

    def write_repeated(self, pa: int, word: bytes, size: int) -> None:
        """Write the 4 bytes ``word`` repeated over ``size`` bytes (engine_pool maps them)."""
        self.write(pa, word * (size // 4))

    def write32(self, pa: int, value: int) -> None:
        self.write(pa, (value & 0xFFFFFFFF).to_bytes(4, "little"))

    def write64(self, pa: int, value: int) -> None:
        self.write(pa, (value & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "little"))

    # --- hooks -------------------------------------------------------------------------------------
    def on_fill(self, fill: FillHook, refused: Callable[[Any], None]) -> None:
        """Every soft-TLB miss asks ``fill``; a decision other than a ``Map`` refuses the access
        (Unicorn then stops with a memory fault) and goes to ``refused``."""
        self._fill, self._refused = fill, refused

    def on_trap(self, trap: Callable[[int, int], None]) -> None:
        """An invalid instruction: ``trap(pc, cpsr)`` emulates it (sets PC) or stops the run."""
        self._trap = trap

    def on_interrupt(self, interrupt: Callable[[int, int], None]) -> None:
        """A CPU exception Unicorn raises itself (SVC, BKPT ...): ``interrupt(intno, pc)``."""
        self._interrupt = interrupt

    def _captured(self, exc: BaseException) -> None:
        self._hook_error = exc   # never lost: re-raised by start()
        self.stop()

    def _on_tlb_fill(self, uc: Any, va: int, access: int, entry: Any, data: Any) -> bool:
        try:
            decision = self._fill(va, _ACCESS.get(access, "read"))
            if type(decision) is Map:
                result = entry.contents
                result.paddr, result.perms = decision
                if decision[1] & PROT_EXEC:
                    self.code_pages[self.tlbs.hyp, va >> 12] = decision[0] >> 12
                    if decision[0] >> 12 not in self._live:
                        self._granted(decision[0] >> 12)   # Unicorn may translate code from it
                elif decision[1] & PROT_WRITE:
                    self._blind(decision[0] >> 12)
                return True
            self._refused(decision)
        except BaseException as exc:
            self._captured(exc)
        return False

    def _on_invalid(self, uc: Any, data: Any) -> bool:
        try:
            if self._native is not None:
                pc, cpsr = self._native.trapped()   # the rest of the block does not run
            else:
                pc, cpsr = self.regs.read(REG_PC), self.regs.read(REG_CPSR)
            self._trap(pc, cpsr)
        except BaseException as exc:
            self._captured(exc)
        return True

    def _on_interrupt(self, uc: Any, intno: int, data: Any) -> None:
        try:
            self._interrupt(intno, self.regs.read(REG_PC))
        except BaseException as exc:
            self._captured(exc)

    def watch_memory(self, seen: Callable[[int], None]) -> Any:
        """Call ``seen(pa)`` for every data access until ``unwatch``. With UC_TLB_VIRTUAL Unicorn
        gives the hook the *physical* address. Flushes translated code: memory hooks are compiled
        into it."""
        def on_access(uc: Any, access: int, address: int, size: int, value: int, data: Any) -> None:
            seen(address)
        handle = self.uc.hook_add(UC_HOOK_MEM_READ | UC_HOOK_MEM_WRITE, on_access)
        self.flush_code_cache()
        return handle

    def unwatch(self, handle: Any) -> None:
        self.uc.hook_del(handle)
        self.flush_code_cache()

    # --- register contexts (one per CPU) ----------------------------------------------------------
    def context_save(self) -> Any:
        return self.uc.context_save()

    def context_restore(self, context: Any) -> None:
        self.uc.context_restore(context)
        self.tlbs.sync()   # SCR came with the context

    def context_update(self, context: Any) -> None:
        self.uc.context_update(context)

    # --- engine control -------------------------------------------------------------------------
    def flush_soft_tlb(self) -> None:
        """Drop every translation Unicorn cached; the next access of each page asks the model."""
        self._flush_tlb()
        self.code_pages.clear()
        self.code.epoch_end()

    def flush_code_cache(self) -> None:
        """Drop all translated code before the next run: for hooks compiled into it."""
        self.code.flush_all()

    def _flush_code(self) -> None:
        self.uc.ctl(UC_CTL_TB_FLUSH, UC_CTL_IO_WRITE)

    def executed(self) -> int:
        """Instructions the last counted run executed (requested + 1 when the count ran out), as
        Unicorn's ``emu_start(count=)`` counts them, whichever budget counted."""
        if self._native is not None:
            return self._native.executed()
        assert self._counter is not None
        return int(self._counter.value)   # a view of Unicorn's own counter: read live

    def _count_view(self) -> ctypes.c_uint64:
        return ctypes.c_uint64.from_address(counter_address(self.uc))

    @property
    def thumb_code(self) -> bool:
        """Thumb code may run (told at construction, or set when Thumb code is loaded). The budget
        must then be Unicorn's own count (emu_start(count=)), which counts either state: setting
        it turns a native budget off for good (its block hook stays, doing nothing)."""
        return self._thumb_code

    @thumb_code.setter
    def thumb_code(self, value: bool) -> None:
        self._thumb_code = self._thumb_code or bool(value)
        if self._thumb_code:
            self.code.stop_lazy()
        if self._thumb_code and self._native is not None:
            self._native.disable()
            self._native, self.budget_kind = None, COUNT
            self._counter = self._count_view()
            self.flush_code_cache()   # count='s hook is compiled into the code translated next

    def reset_budget(self) -> None:
        """Forget every run's count (an instance reused for another board)."""
        if self._native is not None:
            self._native.reset()

    def _emu_start(self, pc: int, count: int) -> Optional[UcError]:
        """uc_emu_start (no until address, no timeout), Unicorn's error if it stopped on one."""
        status = self._c_emu_start(self._uch, pc, 0, 0, count)
        return UcError(status) if status else None  # type: ignore[no-untyped-call]

    @contextlib.contextmanager
    def _quiet(self) -> Iterator[None]:
        """Budget maintenance: Unicorn may translate a VA to drop translations; refuse every fill
        without asking the model (a refusal there only leaves a harmless translation behind)."""
        fill, refused = self._fill, self._refused
        self._fill, self._refused = (lambda va, access: None), (lambda decision: None)
        try:
            yield
        finally:
            self._fill, self._refused = fill, refused

    def start(self, pc: int, count: Optional[int]) -> UcError | None:
        """Run from ``pc`` for at most ``count`` instructions; the error, if Unicorn stopped on one.
        An exception a hook raised is re-raised here. ``count`` None runs uncounted (no budget,
        ``executed()`` meaningless): the benchmark suite uses it to separate the cost of the exact
        budget from the cost of the HYP model."""
        if count is not None and count < 1:
            raise EngineError("emu_start needs a positive instruction count (0 means unlimited)")
        self._hook_error, err = None, None
        self.code.settle()
        if self._native is not None:
            err = self._native.run(pc, count, self._emu_start, self._quiet)
        else:
            err = self._emu_start(pc, count or 0)
        if self._hook_error is not None:
            error, self._hook_error = self._hook_error, None
            raise error
        return err


class EngineFactory(Protocol):
    """Where a board gets its engine: (RAM banks, whether Thumb code may run) -> a ready Engine
    with those banks (``Engine`` itself, or ``engine_pool.EnginePool``, which reuses instances per
    RAM layout)."""

    def __call__(self, banks: list[tuple[int, int]], *, thumb: bool = False) -> Engine: ...
