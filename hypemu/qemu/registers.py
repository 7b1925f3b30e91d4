"""Reading a vCPU's HYP state from QEMU, including what its gdbstub does not show for AArch32:
SP_hyp, ELR_hyp and SPSR_hyp. QEMU 7.2's gdbstub refuses to switch a vCPU into Hyp mode, so they
are read while the vCPU is in Hyp mode: r13 is SP_hyp there, and a driver snippet (``MRS r0,
ELR_hyp; MRS r1, SPSR``) gives the other two, with the other vCPUs held. ``replay`` reads them at
the last ERET of a CPU's last call (ERET changes none of them) or where the vCPU stopped in HYP.

Where the vCPU's HYP MMU is on, the snippet must be fetched through its HYP table: the driver maps
its page for that one run with a 1 GiB level-1 block in a free level-1 slot of HTTBR's table (a
slot that was invalid, so no TLB held anything there), and restores the slot afterwards. The vCPU
runs no more HYP code after that (its last call, or the end), so what its TLB keeps of the block
cannot matter.
"""

from __future__ import annotations

from typing import Optional

from . import driver
from .target import CPSR_T, MODE_HYP, REG_CPSR, REG_SP, SYSREG_NAMES, Target

MODES = {0x10: "usr", 0x13: "svc", 0x1A: "hyp", 0x17: "abt", 0x1B: "und", 0x12: "irq",
         0x11: "fiq", 0x16: "mon", 0x1F: "sys"}
DRIVER_BLOCK = 0x7C1    # L1 block: AttrIndx 0, AP[2:1] = 0b11 (read-only: WXN cannot bite), SH 0b11, AF
ERET = 0xE160006E
ERET_T32_BYTES = bytes.fromhex("def3008f")   # ERET T1 (F3DE 8F00), halfwords in memory order


def sysregs(t: Target, cpu: int) -> dict[str, Optional[int]]:
    """The HYP registers the gdbstub shows, under hypemu's names, and the mode (CPSR.M)."""
    regs: dict[str, Optional[int]] = {name: t.sysreg(cpu, name) for name in SYSREG_NAMES}
    regs["mode"] = t.reg(cpu, REG_CPSR) & 0x1F
    return regs


def hyp_state(t: Target, cpu: int) -> dict[str, Optional[int]]:
    """SP_hyp, ELR_hyp and SPSR_hyp of a vCPU in Hyp mode (None: the snippet found no way in)."""
    assert t.reg(cpu, REG_CPSR) & 0x1F == MODE_HYP
    out: dict[str, Optional[int]] = {"SP_hyp": t.reg(cpu, REG_SP), "ELR_hyp": None,
                                     "SPSR_hyp": None}
    hsctlr, httbr, htcr = (t.sysreg(cpu, n) for n in ("HSCTLR", "HTTBR", "HTCR"))
    if not hsctlr & 1:
        r = t.snippet(cpu, driver.READ_HYP_STATE, {})
        out.update(ELR_hyp=r[0], SPSR_hyp=r[1])
        return out
    if htcr & 0x7:                          # T0SZ != 0: not the four 1 GiB level-1 entries
        return out
    pgd = httbr & 0xFFFFFFFFE0
    slots = [int.from_bytes(t.read(pgd + 8 * n, 8), "little") for n in range(4)]
    free = [n for n, desc in enumerate(slots) if not desc & 1]
    if not free:
        return out
    slot = free[0]
    t.write(pgd + 8 * slot, ((t.driver_pa & ~0x3FFFFFFF) | DRIVER_BLOCK).to_bytes(8, "little"))
    try:
        r = t.snippet(cpu, driver.READ_HYP_STATE, {}, va_base=slot << 30)
        out.update(ELR_hyp=r[0], SPSR_hyp=r[1])
    finally:
        t.write(pgd + 8 * slot, slots[slot].to_bytes(8, "little"))
    return out


def at_eret(t: Target, cpu: int, pc: int) -> bool:
    """Whether the instruction vCPU ``cpu`` (in HYP) executes next is an ERET: A1, or T1 (its
    halfwords F3DE 8F00) in Thumb state."""
    word = t.read_virtual(cpu, pc, 4)
    if word is None:
        return False
    if t.reg(cpu, REG_CPSR) & CPSR_T:
        return word == ERET_T32_BYTES
    return int.from_bytes(word, "little") == ERET
