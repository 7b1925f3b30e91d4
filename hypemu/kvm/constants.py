"""The constants the kernel side predefines for every guest source (the guest-code contract of
the README's "Your own init code"): one table of values, one of their meanings."""

from __future__ import annotations

from .. import cp15
from ..cpu import CPSR_A, CPSR_F, CPSR_I, MODE_HYP, MODE_SVC
from ..lpae import PAGE_SIZE
from .calls import CALL_CONVENTIONS

PROBE_VALUE = 0x4B564D21   # "KVM!": the kernel data word hyp_probe reads back

GUEST_CONSTANTS_DOC = {
    "TRAMPOLINE_VA": "the trampoline VA (hyp.trampoline_va)",
    "PAGE_SHIFT": "12", "PAGE_SIZE": "4096",
    "HTCR_MASK": "0x3F03: HTCR fields the init code derives (T0SZ, IRGN0, ORGN0, SH0), as v3.10",
    "TTBCR_T0SZ": "0x7",
    "VTCR_MASK": "0x3FDF: VTCR fields the init code sets", "VTCR_HTCR_SH": "0x3F00",
    "VTCR_SL0_L1": "0x40: stage-2 walks start at level 1",
    "VTCR_T0SZ_40BIT": "0x18: T0SZ = -8 with its sign bit S: a 40-bit IPA",
    "HSCTLR_MASK": "0x02281007: M A C I WXN FI EE", "HSCTLR_M/_A/_C/_I/_WXN/_FI/_EE": "bits",
    "CALL_ABI": "0 (seed) or 1 (linux-3.10)", "CALL_ABI_SEED": "0", "CALL_ABI_LINUX": "1",
    "HSR_EC_SHIFT": "26", "HSR_EC_HVC": "0x12",
    "HYP_PROBE_VA": "HYP VA of the kernel data word that hyp_probe reads",
    "PSR_MODE_SVC/_HYP, PSR_A_BIT/_I_BIT/_F_BIT": "CPSR mode numbers and mask bits",
}


def guest_constants(trampoline_va: int, call_abi: str, probe_va: int = 0) -> dict[str, int]:
    """The values of GUEST_CONSTANTS_DOC for a board (``probe_va`` is known once it is placed)."""
    return {
        "TRAMPOLINE_VA": trampoline_va, "PAGE_SHIFT": 12, "PAGE_SIZE": PAGE_SIZE,
        "HTCR_MASK": 0x3F03, "TTBCR_T0SZ": 0x7, "VTCR_MASK": 0x3FDF, "VTCR_HTCR_SH": 0x3F00,
        "VTCR_SL0_L1": 0x40, "VTCR_T0SZ_40BIT": 0x18,
        "HSCTLR_MASK": 0x02281007, "HSCTLR_M": cp15.HSCTLR_M, "HSCTLR_A": cp15.HSCTLR_A,
        "HSCTLR_C": cp15.HSCTLR_C, "HSCTLR_I": cp15.HSCTLR_I, "HSCTLR_WXN": cp15.HSCTLR_WXN,
        "HSCTLR_FI": cp15.HSCTLR_FI, "HSCTLR_EE": cp15.HSCTLR_EE,
        "CALL_ABI": CALL_CONVENTIONS[call_abi].number,
        "CALL_ABI_SEED": CALL_CONVENTIONS["seed"].number,
        "CALL_ABI_LINUX": CALL_CONVENTIONS["linux-3.10"].number,
        "HSR_EC_SHIFT": 26, "HSR_EC_HVC": 0x12, "HYP_PROBE_VA": probe_va,
        "PSR_MODE_SVC": MODE_SVC, "PSR_MODE_HYP": MODE_HYP, "PSR_A_BIT": CPSR_A,
        "PSR_I_BIT": CPSR_I, "PSR_F_BIT": CPSR_F,
    }
