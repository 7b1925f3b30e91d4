"""The differences between hypemu and QEMU that the architecture allows, each with its reason.

Why a list: a cross-check that tolerated "small" differences would hide model bugs; each entry
here is a named case where the ARM ARM leaves the value UNKNOWN or where QEMU 7.2 is known to be
wrong, checked on exactly the bits it concerns.
"""

from __future__ import annotations

from typing import Optional

HSR_IL = 1 << 25
HSR_ISS_ISV_SAS_SSE_SRT = 0x01FF0000       # ISS bits [24:16]: ISV, SAS, SSE, SRT
EC_UNKNOWN, EC_PABT_LOWER, EC_PABT_HYP, EC_DABT_LOWER, EC_DABT_HYP = 0x00, 0x20, 0x21, 0x24, 0x25

RESET_NOTE = ("QEMU resets HSCTLR, HTCR and VTCR to 0 where the ARM ARM has RES1 bits: the driver "
              "writes the ARM ARM reset values (HSCTLR 0x30c50818, HTCR and VTCR 0x80000000) when "
              "a vCPU starts")


def allowed(name: str, hypemu: int, qemu: int) -> Optional[str]:
    """Why ``hypemu`` and ``qemu`` values of register ``name`` may differ, or None."""
    if name != "HSR" or hypemu >> 26 != qemu >> 26:
        return None
    ec, diff = hypemu >> 26, hypemu ^ qemu
    if diff == HSR_IL and ec in (EC_UNKNOWN, EC_PABT_LOWER, EC_PABT_HYP):
        return ("HSR.IL of a prefetch abort or an unknown-reason exception is UNKNOWN in ARMv7 "
                "(hypemu sets it as ARMv8 AArch32 does; QEMU clears it)")
    if (ec in (EC_DABT_LOWER, EC_DABT_HYP) and not diff & ~HSR_ISS_ISV_SAS_SSE_SRT
            and not hypemu & (1 << 24)):
        return ("HSR.ISV/SAS/SRT of a stage-1 HYP data abort: QEMU 7.2 fills them in (fixed "
                "upstream in 2023); the ARM ARM gives ISV=0, as hypemu does")
    if (ec in (EC_DABT_LOWER, EC_DABT_HYP) and not diff & ~(HSR_ISS_ISV_SAS_SSE_SRT | HSR_IL)
            and not hypemu & (1 << 24) and qemu & (1 << 24) and hypemu & HSR_IL):
        return ("HSR.ISV/SAS/SRT and IL of a stage-1 HYP data abort from a 16-bit Thumb load: "
                "QEMU 7.2 fills the syndrome in and gives IL=0 with it; with ISV=0, as the ARM "
                "ARM gives, IL is UNKNOWN in ARMv7 and 1 in ARMv8 AArch32, as hypemu sets it")
    return None
