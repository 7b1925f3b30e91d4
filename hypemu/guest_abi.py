"""The guest-code contract between the kernel side and the HYP init code it runs: how the init
HVCs pass their arguments (``hyp.call_abi``: one packer per convention) and the constants the kernel
side predefines for every guest source (the README's "Your own init code"), with the values of
the Linux v3.10 headers (kvm_arm.h) wherever the kernel defines the same name.

Why a module of its own, below both the scenario and the kernel side: the scenario checks user init
code against the same contract the kernel side loads it with, and neither may import the other.

- ``seed``: r0/r1 = pgd low/high, r2 = stack, r3 = vectors (the convention hypemu started with);
- ``linux-3.10``: r0 = stack, r1 = vectors, r2/r3 = pgd low/high (v3.10's __do_hyp_init).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from . import cp15
from .cpu.state import CPSR_A, CPSR_F, CPSR_I, CPSR_T, MODE_HYP, MODE_SVC
from .lpae import PAGE_SIZE


Registers = tuple[int, int, int, int]


@dataclass(frozen=True)
class InitCall:
    """One init HVC: what it is called in the log, and its arguments (0: not passed)."""

    during: str
    pgd: int
    stack: int
    vectors: int


@dataclass(frozen=True)
class CallConvention:
    name: str
    number: int                               # CALL_ABI, as the guest code tests it
    pack: Callable[[InitCall], Registers]     # r0-r3 of the HVC


def _seed(c: InitCall) -> Registers:
    return c.pgd & 0xFFFFFFFF, c.pgd >> 32, c.stack, c.vectors


def _linux_3_10(c: InitCall) -> Registers:
    return c.stack, c.vectors, c.pgd & 0xFFFFFFFF, c.pgd >> 32


CALL_CONVENTIONS = {c.name: c for c in (CallConvention("seed", 0, _seed),
                                        CallConvention("linux-3.10", 1, _linux_3_10))}

# The entry points (and data) each stub contract uses (``hyp.stub``; kvm.stub runs them):
# - builtin: hypemu's stub, whose __hyp_stub_install drops to SVC itself (ERET to LR), and whose
#   vectors take an HVC with r0 = -1 (read HVBAR) or a new HVBAR;
# - kernel: Linux v3.10's arch/arm/kernel/hyp-stub.S: __hyp_stub_install (the boot CPU) records the
#   boot mode in __boot_cpu_mode and falls through to __hyp_stub_install_secondary (every other
#   CPU), which returns in HYP with `bx lr`; HVBAR is set by __hyp_set_vectors (an HVC from SVC).
STUB_ENTRIES = {
    "builtin": ("__hyp_stub_install",),
    "kernel": ("__hyp_stub_install", "__hyp_stub_install_secondary", "__hyp_set_vectors",
               "__boot_cpu_mode"),
}

HSCTLR_MASK = (cp15.HSCTLR_M | cp15.HSCTLR_A | cp15.HSCTLR_C | cp15.HSCTLR_I | cp15.HSCTLR_WXN
               | cp15.HSCTLR_FI | cp15.HSCTLR_EE | cp15.HSCTLR_TE)    # v3.10's kvm_arm.h
PROBE_VALUE = 0x4B564D21   # "KVM!": the kernel data word hyp_probe reads back

GUEST_CONSTANTS_DOC = {
    "TRAMPOLINE_VA": "the trampoline VA (hyp.trampoline_va)",
    "PAGE_SHIFT": "12", "PAGE_SIZE": "4096",
    "HTCR_MASK": "0x3F03: HTCR fields the init code derives (T0SZ, IRGN0, ORGN0, SH0), as v3.10",
    "TTBCR_T0SZ": "3, as v3.10's kvm_arm.h (TTBCR.T0SZ is bits [2:0], so 7 would be the whole "
                  "field; the kernel's 3 is what HTCR_MASK is built from, and what user code "
                  "written against the kernel's header expects)",
    "VTCR_MASK": "0x3FDF: VTCR fields the init code sets, as v3.10",
    "VTCR_HTCR_SH": "0x3F00, as v3.10",
    "VTCR_SL_L1, VTCR_SL0_L1": "0x40: stage-2 walks start at level 1 (v3.10's VTCR_SL_L1; "
                               "VTCR_SL0_L1 is hypemu's older name for it)",
    "VTCR_T0SZ_40BIT": "0x18: T0SZ = -8 with its sign bit S, a 40-bit IPA (hypemu's name: v3.10 "
                       "writes KVM_VTCR_T0SZ | KVM_VTCR_S)",
    "HSCTLR_MASK": "0x42281007: M A C I WXN FI EE TE, as v3.10",
    "HSCTLR_M/_A/_C/_I/_WXN/_FI/_EE/_TE": "bits",
    "CALL_ABI": "0 (seed) or 1 (linux-3.10)", "CALL_ABI_SEED": "0", "CALL_ABI_LINUX": "1",
    "HSR_EC_SHIFT": "26", "HSR_EC_HVC": "0x12",
    "HYP_PROBE_VA": "HYP VA of the kernel data word that hyp_probe reads",
    "PSR_MODE_SVC/_HYP, PSR_A_BIT/_I_BIT/_F_BIT/_T_BIT": "CPSR mode numbers, mask bits and T",
}


def guest_constants(trampoline_va: int, call_abi: str, probe_va: int = 0) -> dict[str, int]:
    """The values of GUEST_CONSTANTS_DOC for a board (``probe_va`` is known once it is placed)."""
    return {
        "TRAMPOLINE_VA": trampoline_va, "PAGE_SHIFT": 12, "PAGE_SIZE": PAGE_SIZE,
        "HTCR_MASK": 0x3F03, "TTBCR_T0SZ": 3, "VTCR_MASK": 0x3FDF, "VTCR_HTCR_SH": 0x3F00,
        "VTCR_SL_L1": 0x40, "VTCR_SL0_L1": 0x40, "VTCR_T0SZ_40BIT": 0x18,
        "HSCTLR_MASK": HSCTLR_MASK, "HSCTLR_M": cp15.HSCTLR_M, "HSCTLR_A": cp15.HSCTLR_A,
        "HSCTLR_C": cp15.HSCTLR_C, "HSCTLR_I": cp15.HSCTLR_I, "HSCTLR_WXN": cp15.HSCTLR_WXN,
        "HSCTLR_FI": cp15.HSCTLR_FI, "HSCTLR_EE": cp15.HSCTLR_EE, "HSCTLR_TE": cp15.HSCTLR_TE,
        "CALL_ABI": CALL_CONVENTIONS[call_abi].number,
        "CALL_ABI_SEED": CALL_CONVENTIONS["seed"].number,
        "CALL_ABI_LINUX": CALL_CONVENTIONS["linux-3.10"].number,
        "HSR_EC_SHIFT": 26, "HSR_EC_HVC": 0x12, "HYP_PROBE_VA": probe_va,
        "PSR_MODE_SVC": MODE_SVC, "PSR_MODE_HYP": MODE_HYP, "PSR_A_BIT": CPSR_A,
        "PSR_I_BIT": CPSR_I, "PSR_F_BIT": CPSR_F, "PSR_T_BIT": CPSR_T,
    }
