"""QEMU's vCPUs as the bridge drives them through the gdbstub: registers by name, one vCPU run at a
time to a breakpoint, and driver snippets run in a scratch slot with the other vCPUs held.

Register numbers come from the stub's own target description (``system-registers.xml``), where
QEMU names the AArch32 HYP registers partly after their AArch64 views (HSCTLR is SCTLR_EL2, ...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping, Optional

from . import driver
from .gdbremote import GdbRemote

REG_SP, REG_LR, REG_PC, REG_CPSR = 13, 14, 15, 25
CPSR_T = 1 << 5
MODE_SVC, MODE_HYP = 0x13, 0x1A
CPSR_AIF = 0x1C0
SLOT = 0x100                    # bytes of the driver page per vCPU's scratch slot; PARK at 0xF00
PARK_OFFSET = 0xF00
CALL_STEP_TIMEOUT = 5.0

# hypemu's name -> the name in QEMU's system-registers.xml
SYSREG_NAMES = {"HTTBR": "HTTBR", "HTCR": "TCR_EL2", "HSCTLR": "SCTLR_EL2", "HVBAR": "VBAR_EL2",
                "HSR": "ESR_EL2", "HDFAR": "FAR_EL2", "HIFAR": "HIFAR", "HMAIR0": "MAIR_EL2",
                "HMAIR1": "HMAIR1"}


class TargetError(RuntimeError):
    """QEMU did not do what the driver needs (a snippet that did not reach its end, ...)."""


@dataclass(frozen=True)
class Stop:
    """Where a vCPU stopped: at a breakpoint, or interrupted after the time allowed."""

    cpu: int
    pc: int
    cpsr: int
    interrupted: bool


def sysreg_numbers(xml: str) -> dict[str, tuple[int, int]]:
    """name -> (regnum, bitsize) of every register in a gdb target description."""
    out = {}
    for m in re.finditer(r'<reg name="([^"]+)" bitsize="(\d+)" regnum="(\d+)"', xml):
        out[m.group(1)] = (int(m.group(3)), int(m.group(2)))
    return out


class Target:
    """The vCPUs of one QEMU (numbered from 0, as hypemu's CPUs) and the driver page at
    ``driver_pa``."""

    def __init__(self, gdb: GdbRemote, driver_pa: int):
        self.gdb, self.driver_pa = gdb, driver_pa
        self._selected: Optional[int] = None
        gdb.checked("Qqemu.PhyMemMode:1")          # memory packets address RAM physically
        regs = sysreg_numbers(gdb.xfer("system-registers.xml"))
        missing = [q for q in SYSREG_NAMES.values() if q not in regs]
        if missing:
            raise TargetError(f"QEMU's gdbstub has no {', '.join(missing)}")
        self.sysregs = {name: regs[q] for name, q in SYSREG_NAMES.items()}
        self._bps: set[int] = set()
        self.park = driver_pa + PARK_OFFSET
        gdb.write_mem(self.park, driver.PARK.code())
        self.breakpoint(self.park)

    # --- registers -----------------------------------------------------------------------------
    def select(self, cpu: int) -> None:
        if self._selected != cpu:
            self.gdb.thread(cpu + 1)
            self._selected = cpu

    def reg(self, cpu: int, n: int) -> int:
        self.select(cpu)
        return self.gdb.read_reg(n)

    def set_reg(self, cpu: int, n: int, value: int) -> None:
        self.select(cpu)
        self.gdb.write_reg(n, value)

    def sysreg(self, cpu: int, name: str) -> int:
        num, bits = self.sysregs[name]
        self.select(cpu)
        return self.gdb.read_reg(num, bits // 8)

    def write(self, pa: int, data: bytes) -> None:
        self.gdb.write_mem(pa, data)

    def read(self, pa: int, size: int) -> bytes:
        return self.gdb.read_mem(pa, size)

    def breakpoint(self, addr: int, on: bool = True) -> None:
        if on and addr not in self._bps:
            self.gdb.breakpoint(addr)
            self._bps.add(addr)
        elif not on and addr in self._bps:
            self.gdb.breakpoint(addr, False)
            self._bps.discard(addr)

    # --- running -------------------------------------------------------------------------------
    def run(self, cpu: int, timeout: float) -> Stop:
        """Resume vCPU ``cpu`` alone until a breakpoint, or interrupt it after ``timeout`` s."""
        self.gdb.resume(cpu + 1)
        self._selected = None              # QEMU selects the vCPU that stopped
        reply = self.gdb.wait_stop(timeout)
        interrupted = reply is None
        if reply is None:
            self.gdb.interrupt()
            self._selected = None
        return Stop(cpu, self.reg(cpu, REG_PC), self.reg(cpu, REG_CPSR), interrupted)

    def step(self, cpu: int) -> Stop:
        """One instruction of vCPU ``cpu`` (an exception entry counts as its instruction's end)."""
        self.gdb.send_step(cpu + 1)
        self._selected = None
        if self.gdb.wait_stop(CALL_STEP_TIMEOUT) is None:
            self.gdb.interrupt()
            return Stop(cpu, self.reg(cpu, REG_PC), self.reg(cpu, REG_CPSR), True)
        return Stop(cpu, self.reg(cpu, REG_PC), self.reg(cpu, REG_CPSR), False)

    def read_virtual(self, cpu: int, va: int, size: int) -> Optional[bytes]:
        """``size`` bytes at ``va`` as vCPU ``cpu`` translates it now; None if it does not."""
        self.select(cpu)
        self.gdb.checked("Qqemu.PhyMemMode:0")
        try:
            reply = self.gdb.request(f"m{va:x},{size:x}")
        finally:
            self.gdb.checked("Qqemu.PhyMemMode:1")
        return None if reply.startswith("E") or not reply else bytes.fromhex(reply)

    def call(self, cpu: int, pc: int, regs: Mapping[int, int], timeout: float) -> Stop:
        """Set ``regs`` (number -> value) and PC, and run."""
        for n, value in regs.items():
            self.set_reg(cpu, n, value)
        self.set_pc(cpu, pc)
        return self.run(cpu, timeout)

    def set_pc(self, cpu: int, pc: int) -> None:
        """Continue at the interworking address ``pc``: bit 0 selects Thumb state (CPSR.T), as a
        BX would; gdb's PC write alone keeps the state the vCPU was in."""
        cpsr = self.reg(cpu, REG_CPSR)
        self.set_reg(cpu, REG_CPSR, cpsr | CPSR_T if pc & 1 else cpsr & ~CPSR_T)
        self.set_reg(cpu, REG_PC, pc & ~1)

    def snippet(self, cpu: int, snippet: driver.Snippet, regs: Mapping[int, int],
                va_base: Optional[int] = None, timeout: float = 5.0) -> list[int]:
        """Run ``snippet`` on ``cpu`` from its scratch slot (at VA ``va_base`` + slot offset when the
        slot is reached through a mapping) with ``regs`` set; return r0-r3 after it, and restore
        r0-r3, PC and CPSR."""
        slot = self.driver_pa + cpu * SLOT
        va = slot if va_base is None else va_base + (slot & 0x3FFFFFFF)
        saved = {n: self.reg(cpu, n) for n in (0, 1, 2, 3, REG_PC, REG_CPSR)}
        self.write(slot, snippet.code())
        self.breakpoint(va + snippet.end)
        stop = self.call(cpu, va, regs, timeout)
        self.breakpoint(va + snippet.end, False)
        if stop.interrupted or stop.pc != va + snippet.end:
            raise TargetError(f"cpu{cpu}: a driver snippet at {va:#x} stopped at {stop.pc:#x} "
                              f"(CPSR {stop.cpsr:#x}) instead of {va + snippet.end:#x}")
        out = [self.reg(cpu, n) for n in range(4)]
        for n in (REG_CPSR, 0, 1, 2, 3, REG_PC):
            self.set_reg(cpu, n, saved[n])
        return out
