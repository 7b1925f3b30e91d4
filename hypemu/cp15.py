"""The cp15 system registers that hypemu models, as one table of frozen rows.

Why a table: every trapped MCR/MRC/MCRR/MRRC is decoded to an encoding key and looked up here; an
encoding that is not in the table is an undefined instruction, never a silently-read zero. The rows
carry who may access the register (PL1 or HYP only), its reset value, and its write behaviour as a
``write=`` function (QEMU's ARMCPRegInfo.writefn): the plain store, HVBAR's RES0 mask, the regime
change of HSCTLR/HTCR/HTTBR/HMAIR, each TLB maintenance operation, the recorded-only barriers and
cache operations. The functions act through ``WriteContext``, which the CPU model implements.

Encodings and reset values: ARM ARM (ARMv7-A/R, LPAE + Virtualization Extensions) B4.1 and the
Cortex-A15 TRM. Where the architecture says UNKNOWN, hypemu resets to zero (documented in
``UNKNOWN_RESETS_TO_ZERO``).

Reserved bits that read as one (a row's ``res1``: HSCTLR, HCPTR): ARMv7 calls them RAO/SBOP and
leaves a write of 0 UNPREDICTABLE; hypemu does what ARMv8 AArch32 defines for RES1 bits that have
no function: reads as one, writes ignored (RAO/WI). Linux's own stub relies on it: v3.10's
``__hyp_stub_install_secondary`` writes 0 to HSCTLR and to HCPTR.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Optional, Protocol

from . import events

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
HCPTR_RES1 = 0x33FF       # bits [13:12] and [9:0]

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
# Cortex-A15 TRM: ID_PFR0 = ARM, Thumb, Jazelle, ThumbEE; ID_PFR1 = ProgMod 1, Security 3,
# MProgMod 1, Virtualization 1, GenTimer 1 (bits [19:16]: the stub's test for CNTHCTL).
CORTEX_A15_ID_PFR0 = 0x00001131
CORTEX_A15_ID_PFR1 = 0x00011131

HVBAR_RES0 = 0x1F                 # HVBAR bits [4:0] (B4.1.87)
TLBI_VA_MASK = 0xFFFFF000         # TLBIMVAH(IS): the operand's VA bits [31:12]


class WriteContext(Protocol):
    """What a register's write behaviour acts on: the CPU that executes the MCR/MCRR."""

    def store(self, name: str, value: int, pc: int) -> None:
        """The register takes ``value`` (seen by the observer, recorded as a SYSREG event)."""

    def regime_changed(self) -> None:
        """A HYP translation input changed: cached translations of the old regime are dropped."""

    def record(self, kind: str, name: str, value: Optional[int], pc: int) -> None:
        """An event at ``pc``."""

    def invalidate_hyp_tlb(self, va: Optional[int], broadcast: bool, op: str, pc: int) -> None:
        """HYP TLB maintenance: every entry (``va`` None) or those containing ``va``, on this CPU
        or on every online CPU (``broadcast``: the inner shareable domain). Recorded as a TLBI
        event ``op`` whose value is ``va`` (None: the operation ignores its register)."""

    def barrier(self, kind: str) -> None:
        """'isb' or 'dsb' took effect (CP15ISB/CP15DSB)."""


WriteFn = Callable[[WriteContext, "SysReg", int, int], None]
"""(context, row, value, pc): the architectural effect of writing ``value`` to ``row``."""


def write_plain(ctx: WriteContext, row: "SysReg", value: int, pc: int) -> None:
    """A register with no side effect of its write (its RES1 bits stay one)."""
    ctx.store(row.name, value | row.res1, pc)


def write_hvbar(ctx: WriteContext, row: "SysReg", value: int, pc: int) -> None:
    """HVBAR: bits [4:0] are RES0 (the vector table is 32-byte aligned)."""
    ctx.store(row.name, value & ~HVBAR_RES0, pc)


def write_regime(ctx: WriteContext, row: "SysReg", value: int, pc: int) -> None:
    """HSCTLR, HTCR, HTTBR, HMAIR0/1: the HYP walk's inputs (RES1 bits stay one)."""
    ctx.store(row.name, value | row.res1, pc)
    ctx.regime_changed()


def tlbiallh(ctx: WriteContext, row: "SysReg", value: int, pc: int) -> None:
    """TLBIALLH: every HYP entry of this CPU."""
    ctx.invalidate_hyp_tlb(None, False, row.name, pc)


def tlbimvah(ctx: WriteContext, row: "SysReg", value: int, pc: int) -> None:
    """TLBIMVAH: the HYP entries of this CPU containing the VA."""
    ctx.invalidate_hyp_tlb(value & TLBI_VA_MASK, False, row.name, pc)


def tlbiallhis(ctx: WriteContext, row: "SysReg", value: int, pc: int) -> None:
    """TLBIALLHIS: TLBIALLH on every CPU of the inner shareable domain."""
    ctx.invalidate_hyp_tlb(None, True, row.name, pc)


def tlbimvahis(ctx: WriteContext, row: "SysReg", value: int, pc: int) -> None:
    """TLBIMVAHIS: TLBIMVAH on every CPU of the inner shareable domain."""
    ctx.invalidate_hyp_tlb(value & TLBI_VA_MASK, True, row.name, pc)


def tlbi_unmodelled(ctx: WriteContext, row: "SysReg", value: int, pc: int) -> None:
    """PL1 and stage-2 TLB maintenance: no PL1 or stage-2 TLB is modelled; recorded only."""
    ctx.record(events.TLBI, row.name, value, pc)


def cache_or_barrier(ctx: WriteContext, row: "SysReg", value: int, pc: int) -> None:
    """Cache and branch-predictor maintenance, CP15DMB: nothing to model; recorded only."""
    ctx.record(events.BARRIER, row.name, value, pc)


def cp15isb(ctx: WriteContext, row: "SysReg", value: int, pc: int) -> None:
    """CP15ISB: a context synchronization event, as ISB."""
    ctx.record(events.BARRIER, row.name, value, pc)
    ctx.barrier("isb")


def cp15dsb(ctx: WriteContext, row: "SysReg", value: int, pc: int) -> None:
    """CP15DSB: completes this CPU's TLB maintenance, as DSB."""
    ctx.record(events.BARRIER, row.name, value, pc)
    ctx.barrier("dsb")


UNKNOWN_RESETS_TO_ZERO = ("HTTBR", "HMAIR0", "HMAIR1", "HVBAR", "HSR", "HDFAR", "HIFAR", "HPFAR",
                          "HAMAIR0", "HAMAIR1", "HTPIDR", "VTTBR", "TTBR0", "TTBR1", "TPIDRPRW",
                          "CNTHCTL")


Key = tuple[int | str, ...]
"""('c', opc1, crn, crm, opc2) for MCR/MRC, ('q', opc1, crm) for MCRR/MRRC."""


@dataclass(frozen=True)
class SysReg:
    """One row: a register's encoding, access rights, width, reset value and write behaviour."""

    name: str
    key: Key
    hyp_only: bool      # True: UNDEFINED from Non-secure PL1 (each HYP register's B4.1 entry)
    readable: bool = True
    writable: bool = True
    reset: int = 0
    write: WriteFn = write_plain
    res1: int = 0       # bits that read as one and ignore writes (RAO/WI, as ARMv8 AArch32)

    @property
    def is64(self) -> bool:
        return self.key[0] == "q"


def _r(name: str, opc1: int, crn: int, crm: int, opc2: int, reset: int = 0,
       writable: bool = True, write: WriteFn = write_plain, res1: int = 0) -> SysReg:
    return SysReg(name, ("c", opc1, crn, crm, opc2), hyp_only=(opc1 == 4), reset=reset | res1,
                  writable=writable, write=write, res1=res1)


def _q(name: str, opc1: int, crm: int, write: WriteFn = write_plain) -> SysReg:
    return SysReg(name, ("q", opc1, crm), hyp_only=(opc1 in (4, 6)), write=write)


def _op(name: str, opc1: int, crn: int, crm: int, opc2: int, write: WriteFn) -> SysReg:
    """A write-only maintenance operation (TLB, cache, barrier)."""
    return SysReg(name, ("c", opc1, crn, crm, opc2), hyp_only=(opc1 == 4), readable=False,
                  write=write)


REGISTERS: tuple[SysReg, ...] = (
    # HYP registers (opc1 = 4): accessible from HYP only.
    _r("VPIDR", 4, 0, 0, 0, reset=CORTEX_A15_MIDR),
    _r("VMPIDR", 4, 0, 0, 5, reset=0x80000000),
    _r("HSCTLR", 4, 1, 0, 0, write=write_regime, res1=HSCTLR_RES1),
    _r("HACTLR", 4, 1, 0, 1),
    _r("HCR", 4, 1, 1, 0),
    _r("HDCR", 4, 1, 1, 1, reset=0x6),        # HPMN = 6 counters on Cortex-A15
    _r("HCPTR", 4, 1, 1, 2, res1=HCPTR_RES1),
    _r("HSTR", 4, 1, 1, 3),
    _r("HACR", 4, 1, 1, 7),
    _r("HTCR", 4, 2, 0, 2, reset=HTCR_RES1, write=write_regime),
    _r("VTCR", 4, 2, 1, 2, reset=1 << 31),
    _r("HADFSR", 4, 5, 1, 0),
    _r("HAIFSR", 4, 5, 1, 1),
    _r("HSR", 4, 5, 2, 0),
    _r("HDFAR", 4, 6, 0, 0),
    _r("HIFAR", 4, 6, 0, 2),
    _r("HPFAR", 4, 6, 0, 4),
    _r("HMAIR0", 4, 10, 2, 0, write=write_regime),
    _r("HMAIR1", 4, 10, 2, 1, write=write_regime),
    _r("HAMAIR0", 4, 10, 3, 0),
    _r("HAMAIR1", 4, 10, 3, 1),
    _r("HVBAR", 4, 12, 0, 0, write=write_hvbar),
    _r("HTPIDR", 4, 13, 0, 2),
    _r("CNTHCTL", 4, 14, 1, 0),     # PL1PCTEN [0], PL1PCEN [1], the event stream [7:2]
    _op("TLBIALLHIS", 4, 8, 3, 0, tlbiallhis),
    _op("TLBIMVAHIS", 4, 8, 3, 1, tlbimvahis),
    _op("TLBIALLNSNHIS", 4, 8, 3, 4, tlbi_unmodelled),
    _op("TLBIALLH", 4, 8, 7, 0, tlbiallh),
    _op("TLBIMVAH", 4, 8, 7, 1, tlbimvah),
    _op("TLBIALLNSNH", 4, 8, 7, 4, tlbi_unmodelled),
    _q("HTTBR", 4, 2, write=write_regime),
    _q("VTTBR", 6, 2),
    # PL1 registers: accessible from PL1 and from HYP.
    _r("MIDR", 0, 0, 0, 0, writable=False, reset=CORTEX_A15_MIDR),
    _r("MPIDR", 0, 0, 0, 5, writable=False, reset=0x80000000),
    _r("ID_PFR0", 0, 0, 1, 0, writable=False, reset=CORTEX_A15_ID_PFR0),
    _r("ID_PFR1", 0, 0, 1, 1, writable=False, reset=CORTEX_A15_ID_PFR1),
    _r("SCTLR", 0, 1, 0, 0, reset=KERNEL_SCTLR),
    _r("TTBCR", 0, 2, 0, 2, reset=KERNEL_TTBCR),
    _r("DACR", 0, 3, 0, 0),
    _r("MAIR0", 0, 10, 2, 0, reset=KERNEL_MAIR0),
    _r("MAIR1", 0, 10, 2, 1, reset=KERNEL_MAIR1),
    _r("VBAR", 0, 12, 0, 0),
    _r("CONTEXTIDR", 0, 13, 0, 1),
    _r("TPIDRPRW", 0, 13, 0, 4),
    _op("ICIALLUIS", 0, 7, 1, 0, cache_or_barrier),
    _op("BPIALLIS", 0, 7, 1, 6, cache_or_barrier),
    _op("ICIALLU", 0, 7, 5, 0, cache_or_barrier),
    _op("ICIMVAU", 0, 7, 5, 1, cache_or_barrier),
    _op("CP15ISB", 0, 7, 5, 4, cp15isb),
    _op("BPIALL", 0, 7, 5, 6, cache_or_barrier),
    _op("DCIMVAC", 0, 7, 6, 1, cache_or_barrier),
    _op("DCCMVAC", 0, 7, 10, 1, cache_or_barrier),
    _op("CP15DSB", 0, 7, 10, 4, cp15dsb),
    _op("CP15DMB", 0, 7, 10, 5, cache_or_barrier),
    _op("DCCMVAU", 0, 7, 11, 1, cache_or_barrier),
    _op("DCCIMVAC", 0, 7, 14, 1, cache_or_barrier),
    _op("TLBIALLIS", 0, 8, 3, 0, tlbi_unmodelled),
    _op("TLBIMVAIS", 0, 8, 3, 1, tlbi_unmodelled),
    _op("TLBIALL", 0, 8, 7, 0, tlbi_unmodelled),
    _op("TLBIMVA", 0, 8, 7, 1, tlbi_unmodelled),
    _q("TTBR0", 0, 2),
    _q("TTBR1", 1, 2),
)

BY_KEY: Mapping[Key, SysReg] = {r.key: r for r in REGISTERS}
BY_NAME: Mapping[str, SysReg] = {r.name: r for r in REGISTERS}


def lookup(key: Key) -> SysReg | None:
    """The row for an encoding key, or None (the access is then an undefined instruction)."""
    return BY_KEY.get(key)


def reset_values(cpu_id: int) -> dict[str, int]:
    """A CPU's register file at reset. MPIDR/VMPIDR carry the CPU number in Aff0 (cluster 0)."""
    values = {r.name: r.reset for r in REGISTERS if r.readable}
    values["MPIDR"] = 0x80000000 | cpu_id
    values["VMPIDR"] = 0x80000000 | cpu_id
    return values
