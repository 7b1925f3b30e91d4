"""Registers by architectural number through Unicorn's C API (the part of the adapter every
trapped instruction calls, see ``engine``), and the adapter's errors.
"""

from __future__ import annotations

import ctypes
import functools
import importlib
import os
from typing import Any, Callable, Optional

from unicorn.arm_const import (UC_ARM_REG_CP_REG, UC_ARM_REG_CPSR, UC_ARM_REG_LR, UC_ARM_REG_PC,
                               UC_ARM_REG_R0, UC_ARM_REG_SP)

# Registers by architectural number: 0-12 R0-R12, 13 SP, 14 LR, 15 PC; 16 is the CPSR.
REG_SP, REG_LR, REG_PC, REG_CPSR = 13, 14, 15, 16
_UC_REG = tuple(UC_ARM_REG_R0 + n for n in range(13)) + (UC_ARM_REG_SP, UC_ARM_REG_LR,
                                                         UC_ARM_REG_PC, UC_ARM_REG_CPSR)


class EngineError(RuntimeError):
    """Unicorn could not do what the model asked (a bug or an unsupported Unicorn build)."""


class NoMemory(EngineError, LookupError):
    """A read of a physical address where the board has no RAM (a walk there is an external
    abort: the walker catches LookupError)."""


UCCALLS_ENV = "HYPEMU_UCCALLS"
"""Set to 0 to call Unicorn through ctypes even where ``hypemu._uccalls`` is built."""


def uccalls_unavailable() -> Optional[str]:
    """Why the register calls cannot be made from C in this process (None: they can)."""
    if os.environ.get(UCCALLS_ENV, "1").strip() == "0":
        return f"{UCCALLS_ENV}=0"
    try:
        importlib.import_module(f"{__package__}._uccalls")
        from unicorn.unicorn_py3.unicorn import uclib  # noqa: F401
    except ImportError as err:
        return f"the extension hypemu._uccalls is not built ({err})"
    return None


def describe_calls() -> str:
    """How the model calls Unicorn here, in words (``hypemu --version``, the bench)."""
    reason = uccalls_unavailable()
    return "C (hypemu._uccalls)" if reason is None else f"ctypes ({reason})"


def _address(function: Any) -> int:
    return int(ctypes.cast(function, ctypes.c_void_p).value or 0)


class Registers:
    """32-bit register access by architectural number (see ``REG_*``). Why not the binding's
    ``reg_read``/``reg_write``: they dispatch on the register's type on every call (~1.2 us each),
    and a trapped instruction makes several accesses. Where ``hypemu._uccalls`` is built, its C
    functions (``calls``) make them with the GIL held (~0.1 us); else ctypes on Unicorn's C API
    with reused buffers (~0.4-1 us: ctypes converts the arguments and releases the GIL). Falls
    back to the binding when this Unicorn build does not expose its library handle. (Memory is
    read through the RAM hypemu owns: ``engine_ram``.)"""

    def __init__(self, uc: Any) -> None:
        self.calls: Any = None     # hypemu._uccalls.Calls on this instance, where built
        try:
            from unicorn.unicorn_py3.unicorn import uclib
            self._handle, self._c_read, self._c_write = uc._uch, uclib.uc_reg_read, uclib.uc_reg_write
        except (ImportError, AttributeError):   # pragma: no cover - other bindings
            self.read = lambda n: uc.reg_read(_UC_REG[n])  # type: ignore[method-assign, assignment]
            self.write = lambda n, v: uc.reg_write(_UC_REG[n], v)  # type: ignore[method-assign, assignment]
            return
        self._buf = ctypes.c_uint32()
        self._ref = ctypes.byref(self._buf)
        # uc_reg_read_batch / uc_reg_write_batch: one C call for several registers
        self._c_read_batch, self._c_write_batch = uclib.uc_reg_read_batch, uclib.uc_reg_write_batch
        self._values = (ctypes.c_uint32 * 6)()
        self._pointers = (ctypes.c_void_p * 6)(
            *(ctypes.addressof(self._values) + 4 * n for n in range(6)))
        self._sp_lr = (ctypes.c_int * 2)(UC_ARM_REG_SP, UC_ARM_REG_LR)
        self._args = (ctypes.c_int * 6)(*(UC_ARM_REG_R0 + n for n in range(4)), UC_ARM_REG_LR,
                                        UC_ARM_REG_PC)
        if uccalls_unavailable() is None:
            self._use_calls(uc, uclib)

    def _use_calls(self, uc: Any, uclib: Any) -> None:
        handle = uc._uch
        calls = importlib.import_module(f"{__package__}._uccalls").Calls(
            int(handle.value if hasattr(handle, "value") else handle),
            _address(uclib.uc_reg_read), _address(uclib.uc_reg_write),
            _address(uclib.uc_reg_write_batch), _address(uclib.uc_ctl),
            _address(uclib.uc_emu_stop), UC_ARM_REG_CP_REG, _UC_REG, EngineError)
        self.calls = calls
        self.read, self.write = calls.read, calls.write   # type: ignore[method-assign]
        self.exchange_sp_lr = calls.exchange_sp_lr        # type: ignore[method-assign]
        self.write_call = lambda args, lr: calls.write_call(*args, lr)  # type: ignore[method-assign]

    def read(self, reg: int) -> int:
        if self._c_read(self._handle, _UC_REG[reg], self._ref):
            raise EngineError(f"uc_reg_read({reg}) failed")
        return int(self._buf.value)

    def write(self, reg: int, value: int) -> None:
        self._buf.value = value & 0xFFFFFFFF
        if self._c_write(self._handle, _UC_REG[reg], self._ref):
            raise EngineError(f"uc_reg_write({reg}) failed")

    def exchange_sp_lr(self, sp: int, lr: int) -> tuple[int, int]:
        """SP and LR as they are, then ``sp`` and ``lr`` in their place (a mode switch's bank
        swap): two C calls instead of four."""
        values = self._values
        if self._c_read_batch(self._handle, self._sp_lr, self._pointers, 2):
            raise EngineError("uc_reg_read_batch(SP, LR) failed")
        old = values[0], values[1]
        values[0], values[1] = sp & 0xFFFFFFFF, lr & 0xFFFFFFFF
        if self._c_write_batch(self._handle, self._sp_lr, self._pointers, 2):
            raise EngineError("uc_reg_write_batch(SP, LR) failed")
        return old

    def write_call(self, args: tuple[int, int, int, int], lr: int) -> None:
        """R0-R3 and LR of a call, in one C call."""
        values = self._values
        values[0], values[1], values[2], values[3] = (a & 0xFFFFFFFF for a in args)
        values[4] = lr & 0xFFFFFFFF
        if self._c_write_batch(self._handle, self._args, self._pointers, 5):
            raise EngineError("uc_reg_write_batch(R0-R3, LR) failed")


class _CpReg(ctypes.Structure):
    _fields_ = [("cp", ctypes.c_uint32), ("is64", ctypes.c_uint32), ("sec", ctypes.c_uint32),
                ("crn", ctypes.c_uint32), ("crm", ctypes.c_uint32), ("opc1", ctypes.c_uint32),
                ("opc2", ctypes.c_uint32), ("val", ctypes.c_uint64)]   # uc_arm_cp_reg


SCR_NS = 1   # SCR (p15, 0, c1, c1, 0) of Unicorn's CPU at reset: Non-secure


class SoftTlbChoice:
    """Which of Unicorn's two soft TLBs the guest uses: the HYP MMU's or the flat regimes' (PL1,
    HYP with HSCTLR.M = 0). Why two: Unicorn keeps a soft TLB per MMU index, and its User mode,
    where all guest code runs, has two, Secure and Non-secure (QEMU's SE10_0 and E10_0), chosen
    by SCR.NS. So a switch between PL1 and the HYP MMU writes SCR.NS instead of flushing, and each
    side finds its entries again (an HVC and its ERET refill nothing); a flush empties both.
    The security state banks nothing else that code in User mode reaches but the user thread ID
    registers TPIDRURW and TPIDRURO, which the guest reads (and writes, TPIDRURW) natively. The
    architecture has one of each for PL1 and HYP (Non-secure state), so a switch carries both
    over from the copy it leaves to the copy it enters. No Monitor is modelled."""

    def __init__(self, uc: Any, regs: Registers) -> None:
        self._scr = _CpReg(cp=15, sec=1, crn=1, crm=1, val=SCR_NS)
        self.hyp = False      # the flat one, as at reset
        # TPIDRURW, TPIDRURO (p15, 0, c13, c0, 2 and 3): one structure per copy, sec 0 the
        # Non-secure one (the flat side's), sec 1 the Secure one (the HYP MMU's)
        self._thread_ids = tuple(_CpReg(cp=15, sec=sec, crn=13, crm=0, opc2=opc2)
                                 for opc2 in (2, 3) for sec in (0, 1))
        self._read_scr, self._write_scr = self._accessors(uc, regs, self._scr)
        self._carry: list[tuple[Callable[[], None], ...]] = []
        for n in (0, 2):      # per register: read the copy left, write the copy entered
            ns, secure = self._thread_ids[n], self._thread_ids[n + 1]
            self._carry.append(self._accessors(uc, regs, ns) + self._accessors(uc, regs, secure))
        # all of a switch in one call from C, where the registers are
        self._use_tlb: Optional[Callable[[bool], None]] = (
            regs.calls.use_tlb if regs.calls is not None else None)

    @staticmethod
    def _accessors(uc: Any, regs: Registers, reg: _CpReg) -> tuple[Callable[[], None],
                                                                   Callable[[], None]]:
        """(read, write) of the cp15 register ``reg`` through its structure: from C where the
        registers are, else ctypes."""
        address = ctypes.addressof(reg)
        if regs.calls is not None:
            return (functools.partial(regs.calls.read_raw, UC_ARM_REG_CP_REG, address),
                    functools.partial(regs.calls.write_raw, UC_ARM_REG_CP_REG, address))
        from unicorn.unicorn_py3.unicorn import uclib
        handle, ref = uc._uch, ctypes.byref(reg)

        def read() -> None:
            if uclib.uc_reg_read(handle, UC_ARM_REG_CP_REG, ref):
                raise EngineError(f"uc_reg_read(cp15 c{reg.crn}, {reg.opc2}) failed")

        def write() -> None:
            if uclib.uc_reg_write(handle, UC_ARM_REG_CP_REG, ref):
                raise EngineError(f"uc_reg_write(cp15 c{reg.crn}, {reg.opc2}) failed")
        return read, write

    def use(self, hyp: bool) -> None:
        if hyp is self.hyp:
            return
        if self._use_tlb is not None:
            self._use_tlb(hyp)
            self._scr.val = 0 if hyp else SCR_NS
            self.hyp = hyp
            return
        ids = self._thread_ids
        for n, (read_ns, write_ns, read_s, write_s) in zip((0, 2), self._carry):
            if hyp:              # leaving the Non-secure copy for the Secure one
                read_ns()
                ids[n + 1].val = ids[n].val
                write_s()
            else:
                read_s()
                ids[n].val = ids[n + 1].val
                write_ns()
        self._scr.val = 0 if hyp else SCR_NS
        self._write_scr()
        self.hyp = hyp

    def sync(self) -> None:
        """Read the choice back from SCR (a register context was restored)."""
        self._read_scr()
        self.hyp = not self._scr.val & SCR_NS
