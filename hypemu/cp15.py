"""The cp15 system registers that hypemu models, as one table of frozen rows.

Why a table: every trapped MCR/MRC/MCRR/MRRC is decoded to an encoding key and looked up here; an
encoding that is not in the table is an undefined instruction, never a silently-read zero. The rows
carry who may access the register (PL1 or HYP only), its reset value, and the *effect* of a write
(regime change, TLB maintenance, barrier) that the CPU model acts on.

Encodings and reset values: ARM ARM (ARMv7-A/R, LPAE + Virtualization Extensions) B4.1 and the
Cortex-A15 TRM. Where the architecture says UNKNOWN, hypemu resets to zero (documented in
``UNKNOWN_RESETS_TO_ZERO``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

# --- register field constants (ARM ARM names) -------------------------------------------------
HSCTLR_M = 1 << 0
HSCTLR_A = 1 << 1
HSCTLR_C = 1 << 2
HSCTLR_I = 1 << 12
HSCTLR_WXN = 1 << 19
HSCTLR_FI = 1 << 21
HSCTLR_EE = 1 << 25
HSCTLR_TE = 1 << 30
HSCTLR_RES1 = 0x30C50818  # bits 3,4,11,16,18,22,23,28,29 (Cortex-A15 reset value)

SCTLR_M = 1 << 0
SCTLR_C = 1 << 2
SCTLR_I = 1 << 12
SCTLR_FI = 1 << 21
SCTLR_EE = 1 << 25

HTCR_T0SZ = 0x7
HTCR_IRGN0 = 0x3 << 8
HTCR_ORGN0 = 0x3 << 10
HTCR_SH0 = 0x3 << 12
HTCR_RES1 = 1 << 31

# PL1 values a booted LPAE kernel runs with (arch/arm/mm/proc-v7-3level.S era): MAIR as the kernel
# programs it; TTBCR with EAE, inner-shareable write-back write-allocate walks, T1SZ=2 (3G/1G split).
KERNEL_MAIR0 = 0xEEAA4400
KERNEL_MAIR1 = 0xFF000004
KERNEL_TTBCR = 0xB5023500
# Deviation: the PL1 side of hypemu runs flat (MMU off) so SCTLR.M is 0; C, I and Z are set as a
# running kernel has them, which is what HSCTLR copies.
KERNEL_SCTLR = 0x00C5187C

CORTEX_A15_MIDR = 0x412FC0F2

# Write effects the CPU model acts on.
EFFECT_NONE = ""
EFFECT_REGIME = "regime"          # translation regime changed: flush Unicorn's soft TLB
EFFECT_TLBI_ALL = "tlbi_all"      # TLBIALLH
EFFECT_TLBI_VA = "tlbi_va"        # TLBIMVAH
EFFECT_TLBI_ALL_IS = "tlbi_all_is"
EFFECT_TLBI_VA_IS = "tlbi_va_is"
EFFECT_TLBI_OTHER = "tlbi_other"  # PL1/stage-2 TLB maintenance: no PL1 TLB is modelled, recorded only
EFFECT_BARRIER = "barrier"        # CP15ISB/DSB/DMB, cache maintenance: recorded only

UNKNOWN_RESETS_TO_ZERO = ("HTTBR", "HMAIR0", "HMAIR1", "HVBAR", "HSR", "HDFAR", "HIFAR", "HPFAR",
                          "HAMAIR0", "HAMAIR1", "HTPIDR", "VTTBR", "TTBR0", "TTBR1", "TPIDRPRW")


@dataclass(frozen=True)
class SysReg:
    """One row: a register's encoding, access rights, width, reset value and write effect."""

    name: str
    key: tuple          # ('c', opc1, crn, crm, opc2) for MCR/MRC, ('q', opc1, crm) for MCRR/MRRC
    hyp_only: bool      # True: UNDEFINED from non-secure PL1 (B4.1.? "HYP mode registers")
    readable: bool = True
    writable: bool = True
    reset: int = 0
    effect: str = EFFECT_NONE

    @property
    def is64(self) -> bool:
        return self.key[0] == "q"


def _r(name, opc1, crn, crm, opc2, **kw) -> SysReg:
    return SysReg(name, ("c", opc1, crn, crm, opc2), hyp_only=(opc1 == 4), **kw)


def _q(name, opc1, crm, **kw) -> SysReg:
    return SysReg(name, ("q", opc1, crm), hyp_only=(opc1 in (4, 6)), **kw)


def _op(name, opc1, crn, crm, opc2, effect) -> SysReg:
    """A write-only maintenance operation (TLB, cache, barrier)."""
    return SysReg(name, ("c", opc1, crn, crm, opc2), hyp_only=(opc1 == 4), readable=False,
                  effect=effect)


REGISTERS: tuple[SysReg, ...] = (
    # HYP registers (opc1 = 4): accessible from HYP only.
    _r("VPIDR", 4, 0, 0, 0, reset=CORTEX_A15_MIDR),
    _r("VMPIDR", 4, 0, 0, 5, reset=0x80000000),
    _r("HSCTLR", 4, 1, 0, 0, reset=HSCTLR_RES1, effect=EFFECT_REGIME),
    _r("HACTLR", 4, 1, 0, 1),
    _r("HCR", 4, 1, 1, 0),
    _r("HDCR", 4, 1, 1, 1, reset=0x6),        # HPMN = 6 counters on Cortex-A15
    _r("HCPTR", 4, 1, 1, 2, reset=0x33FF),    # RES1 bits [13:12], [9:0]
    _r("HSTR", 4, 1, 1, 3),
    _r("HACR", 4, 1, 1, 7),
    _r("HTCR", 4, 2, 0, 2, reset=HTCR_RES1, effect=EFFECT_REGIME),
    _r("VTCR", 4, 2, 1, 2, reset=1 << 31),
    _r("HADFSR", 4, 5, 1, 0),
    _r("HAIFSR", 4, 5, 1, 1),
    _r("HSR", 4, 5, 2, 0),
    _r("HDFAR", 4, 6, 0, 0),
    _r("HIFAR", 4, 6, 0, 2),
    _r("HPFAR", 4, 6, 0, 4),
    _r("HMAIR0", 4, 10, 2, 0, effect=EFFECT_REGIME),
    _r("HMAIR1", 4, 10, 2, 1, effect=EFFECT_REGIME),
    _r("HAMAIR0", 4, 10, 3, 0),
    _r("HAMAIR1", 4, 10, 3, 1),
    _r("HVBAR", 4, 12, 0, 0),
    _r("HTPIDR", 4, 13, 0, 2),
    _op("TLBIALLHIS", 4, 8, 3, 0, EFFECT_TLBI_ALL_IS),
    _op("TLBIMVAHIS", 4, 8, 3, 1, EFFECT_TLBI_VA_IS),
    _op("TLBIALLNSNHIS", 4, 8, 3, 4, EFFECT_TLBI_OTHER),
    _op("TLBIALLH", 4, 8, 7, 0, EFFECT_TLBI_ALL),
    _op("TLBIMVAH", 4, 8, 7, 1, EFFECT_TLBI_VA),
    _op("TLBIALLNSNH", 4, 8, 7, 4, EFFECT_TLBI_OTHER),
    _q("HTTBR", 4, 2, effect=EFFECT_REGIME),
    _q("VTTBR", 6, 2),
    # PL1 registers: accessible from PL1 and from HYP.
    _r("MIDR", 0, 0, 0, 0, writable=False, reset=CORTEX_A15_MIDR),
    _r("MPIDR", 0, 0, 0, 5, writable=False, reset=0x80000000),
    _r("SCTLR", 0, 1, 0, 0, reset=KERNEL_SCTLR),
    _r("TTBCR", 0, 2, 0, 2, reset=KERNEL_TTBCR),
    _r("DACR", 0, 3, 0, 0),
    _r("MAIR0", 0, 10, 2, 0, reset=KERNEL_MAIR0),
    _r("MAIR1", 0, 10, 2, 1, reset=KERNEL_MAIR1),
    _r("VBAR", 0, 12, 0, 0),
    _r("CONTEXTIDR", 0, 13, 0, 1),
    _r("TPIDRPRW", 0, 13, 0, 4),
    _op("ICIALLUIS", 0, 7, 1, 0, EFFECT_BARRIER),
    _op("BPIALLIS", 0, 7, 1, 6, EFFECT_BARRIER),
    _op("ICIALLU", 0, 7, 5, 0, EFFECT_BARRIER),
    _op("ICIMVAU", 0, 7, 5, 1, EFFECT_BARRIER),
    _op("CP15ISB", 0, 7, 5, 4, EFFECT_BARRIER),
    _op("BPIALL", 0, 7, 5, 6, EFFECT_BARRIER),
    _op("DCIMVAC", 0, 7, 6, 1, EFFECT_BARRIER),
    _op("DCCMVAC", 0, 7, 10, 1, EFFECT_BARRIER),
    _op("CP15DSB", 0, 7, 10, 4, EFFECT_BARRIER),
    _op("CP15DMB", 0, 7, 10, 5, EFFECT_BARRIER),
    _op("DCCMVAU", 0, 7, 11, 1, EFFECT_BARRIER),
    _op("DCCIMVAC", 0, 7, 14, 1, EFFECT_BARRIER),
    _op("TLBIALLIS", 0, 8, 3, 0, EFFECT_TLBI_OTHER),
    _op("TLBIMVAIS", 0, 8, 3, 1, EFFECT_TLBI_OTHER),
    _op("TLBIALL", 0, 8, 7, 0, EFFECT_TLBI_OTHER),
    _op("TLBIMVA", 0, 8, 7, 1, EFFECT_TLBI_OTHER),
    _q("TTBR0", 0, 2),
    _q("TTBR1", 1, 2),
)

BY_KEY: Mapping[tuple, SysReg] = {r.key: r for r in REGISTERS}
BY_NAME: Mapping[str, SysReg] = {r.name: r for r in REGISTERS}


def lookup(key: tuple) -> SysReg | None:
    """The row for an encoding key, or None (the access is then an undefined instruction)."""
    return BY_KEY.get(key)


def reset_values(cpu_id: int) -> dict[str, int]:
    """A CPU's register file at reset. MPIDR/VMPIDR carry the CPU number in Aff0 (cluster 0)."""
    values = {r.name: r.reset for r in REGISTERS if r.readable}
    values["MPIDR"] = 0x80000000 | cpu_id
    values["VMPIDR"] = 0x80000000 | cpu_id
    return values


def hyp_htcr_from_ttbcr(htcr: int, ttbcr: int, mask: int = 0x3F03) -> int:
    """What the init code computes for HTCR: keep HTCR's other bits, copy SH0/ORGN0/IRGN0 of TTBCR,
    force T0SZ to 0 (``mask`` is the kernel's HTCR_MASK: 0x3F03 in v3.10). Used by tests/checks."""
    return (htcr & ~mask) | (ttbcr & mask & ~HTCR_T0SZ)
