"""The HYP registers in words, for the summary (``hypemu run -v`` and a CPU stopped at a fault):
HSCTLR, HTCR and HTTBR field by field, HSR as its exception class and syndrome.

Why a module of its own: reading a register value back into the ARM ARM's field names is the
inverse of what cp15/syndrome encode, needed only when a person reads a result, and kept apart
from the model so that a decoding slip can never change what the model does.
Field positions: ARM DDI 0406C.c B4.1.67 (HSCTLR), B4.1.76 (HTCR), B4.1.77 (HTTBR), B3.13.6 (HSR).
"""

from __future__ import annotations

from typing import Optional

from . import cp15, syndrome
from .lpae import base_lower_bound, bit, bits

EC_NAMES = {
    syndrome.EC_UNKNOWN: "unknown reason", 0x01: "WFI/WFE", syndrome.EC_CP15_32: "MCR/MRC cp15",
    syndrome.EC_CP15_64: "MCRR/MRRC cp15", 0x05: "MCR/MRC cp14", 0x07: "cp10/cp11 (HCPTR)",
    0x11: "SVC in HYP", syndrome.EC_HVC: "HVC", syndrome.EC_SMC: "SMC",
    syndrome.EC_PABT_LOWER: "prefetch abort from a lower mode",
    syndrome.EC_PABT_HYP: "prefetch abort taken in HYP",
    syndrome.EC_DABT_LOWER: "data abort from a lower mode",
    syndrome.EC_DABT_HYP: "data abort taken in HYP",
}

_FSC_TYPES = {0b0000: "address size", 0b0001: "translation", 0b0010: "access flag",
              0b0011: "permission", 0b0101: "external abort on the walk"}
_CACHEABILITY = {0b00: "NC", 0b01: "WBWA", 0b10: "WT", 0b11: "WB"}
_SHAREABILITY = {0b00: "NSH", 0b01: "SH?", 0b10: "OSH", 0b11: "ISH"}


def fsc_text(fsc: int) -> str:
    """A long-descriptor fault status code (ISS[5:0]) in words: ``translation L1``."""
    if fsc == syndrome.FSC_SYNC_EXTERNAL:
        return "synchronous external abort"
    if fsc == syndrome.FSC_ALIGNMENT:
        return "alignment"
    if fsc == 0b100010:
        return "debug event"
    kind = _FSC_TYPES.get(fsc >> 2)
    return f"{kind} L{fsc & 3}" if kind else "reserved status code"


def hsr_text(hsr: int) -> str:
    """``EC 0x12 HVC imm16=0x0`` / ``EC 0x25 data abort taken in HYP DFSC 0b000101 translation L1
    WnR=0 S1PTW=0 ISV=0 IL=1``."""
    ec, il, iss = bits(hsr, 31, 26), bit(hsr, 25), bits(hsr, 24, 0)
    head = f"EC {ec:#04x} {EC_NAMES.get(ec, 'reserved')}"
    if ec == syndrome.EC_HVC or ec == syndrome.EC_SMC:
        return f"{head} imm16={bits(iss, 15, 0):#x}"
    if ec in (syndrome.EC_PABT_LOWER, syndrome.EC_PABT_HYP):
        return (f"{head} IFSC {bits(iss, 5, 0):#08b} {fsc_text(bits(iss, 5, 0))} "
                f"S1PTW={bit(iss, 7)} IL={il}")
    if ec in (syndrome.EC_DABT_LOWER, syndrome.EC_DABT_HYP):
        return (f"{head} DFSC {bits(iss, 5, 0):#08b} {fsc_text(bits(iss, 5, 0))} "
                f"WnR={bit(iss, 6)} S1PTW={bit(iss, 7)} ISV={bit(iss, 24)} IL={il}")
    return f"{head} ISS={iss:#x} IL={il}"


def hsctlr_text(value: int) -> str:
    """The HSCTLR fields hypemu models: ``M=1 A=1 C=1 I=1 WXN=0 FI=0 EE=0 TE=0``."""
    fields = (("M", cp15.HSCTLR_M), ("A", cp15.HSCTLR_A), ("C", cp15.HSCTLR_C),
              ("I", cp15.HSCTLR_I), ("WXN", cp15.HSCTLR_WXN), ("FI", cp15.HSCTLR_FI),
              ("EE", cp15.HSCTLR_EE), ("TE", cp15.HSCTLR_TE))
    return " ".join(f"{name}={int(bool(value & mask))}" for name, mask in fields)


def htcr_text(value: int) -> str:
    """``T0SZ=0 IRGN0=WBWA ORGN0=WBWA SH0=ISH``: the walk's input size and its memory attributes."""
    return (f"T0SZ={bits(value, 2, 0)} IRGN0={_CACHEABILITY[bits(value, 9, 8)]} "
            f"ORGN0={_CACHEABILITY[bits(value, 11, 10)]} SH0={_SHAREABILITY[bits(value, 13, 12)]}")


def httbr_text(value: int, htcr: int, pgds: Optional[dict[str, int]] = None) -> str:
    """``BADDR=0x8000e000 (the runtime pgd)``: the table base as the walk takes it (bits[39:x],
    x from HTCR.T0SZ), named when it is one of the kernel side's pgds."""
    x = base_lower_bound(bits(htcr, 2, 0))
    base = bits(value, 39, x) << x
    names = [name for name, pa in (pgds or {}).items() if pa == base]
    extra = f" (the {' and '.join(names)})" if names else ""
    high = bits(value, 63, 40)
    return f"BADDR={base:#x}{extra}" + (f" bits[63:40]={high:#x}" if high else "")
