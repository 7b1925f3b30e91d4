"""Fault status codes and HSR values for exceptions taken to HYP mode.

ARM DDI 0406C.c, B3.13.6 "Use of the HSR": HSR.EC is bits[31:26], HSR.IL bit 25 (1 for a 32-bit
instruction), HSR.ISS bits[24:0]. Aborts carry a long-descriptor fault status code in ISS[5:0]
(Table B3-24 "Long-descriptor format FSR encodings"): 0b0000LL address size, 0b0001LL translation,
0b0010LL access flag, 0b0011LL permission, LL the lookup level.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from .walker import ACCESS_KINDS, Fault

EC_UNKNOWN = 0x00
EC_CP15_32 = 0x03  # trapped MCR/MRC to cp15
EC_CP15_64 = 0x04  # trapped MCRR/MRRC to cp15
EC_HVC = 0x12
EC_SMC = 0x13
EC_PABT_LOWER = 0x20  # prefetch abort routed to HYP from a lower mode
EC_PABT_HYP = 0x21  # prefetch abort taken in HYP
EC_DABT_LOWER = 0x24
EC_DABT_HYP = 0x25

FSC_SYNC_EXTERNAL = 0b010000
FSC_ALIGNMENT = 0b100001

HSR_IL = 1 << 25
ISS_WNR = 1 << 6  # data aborts: the access was a write
ISS_S1PTW = 1 << 7  # a stage 2 fault on a stage 1 table walk

_FSC_BASE = {"address_size": 0b000000, "translation": 0b000100,
             "access_flag": 0b001000, "permission": 0b001100,
             "external": 0b010100}   # synchronous external abort on a translation table walk


@dataclass(frozen=True)
class ExternalAbort:
    """A synchronous external abort on the access itself: its PA has no RAM (no walk failed)."""

    va: int
    access: str

    def __post_init__(self) -> None:
        if self.access not in ACCESS_KINDS:
            raise ValueError(f"access must be one of {ACCESS_KINDS}, got {self.access!r}")


Abort = Union[Fault, ExternalAbort]


def encode_ldfsc(fault: Fault) -> int:
    """The long-descriptor fault status code of ``fault``: its type's base code | level.

    Level 0 exists only for address size faults (on HTTBR itself: 0b000000).
    """
    if fault.level == 0 and fault.type != "address_size":
        raise ValueError(f"a {fault.type} fault has no level-0 status code")
    return _FSC_BASE[fault.type] | fault.level


def encode_hsr(ec: int, iss: int, il: bool = True) -> int:
    """Assemble HSR from its exception class, instruction length bit and syndrome."""
    if not 0 <= ec < (1 << 6):
        raise ValueError(f"EC must fit in 6 bits, got {ec!r}")
    if not 0 <= iss < (1 << 25):
        raise ValueError(f"ISS must fit in 25 bits, got {iss!r}")
    return ec << 26 | int(il) << 25 | iss


def hsr_for_hvc(imm16: int) -> int:
    """HSR for an HVC from ARM state: EC 0x12, IL = 1, ISS = imm16 (``hvc #0`` gives 0x4A000000)."""
    if not 0 <= imm16 < (1 << 16):
        raise ValueError(f"HVC immediate must fit in 16 bits, got {imm16!r}")
    return encode_hsr(EC_HVC, imm16)


def hsr_for_abort(fault: Abort, taken_from_hyp: bool) -> int:
    """HSR for a prefetch abort (fetch) or data abort (read/write) entering HYP. An
    ``ExternalAbort`` has the status code of a synchronous external abort (0b010000, no level).

    ISS layout (B3.13.6): IFSC/DFSC bits[5:0], WnR bit 6 (data aborts only), S1PTW bit 7, EA bit 9
    (0: no external abort type here). ISV (bit 24) is 0, so SAS/SSE/SRT are not provided: ARMv7
    gives an instruction syndrome only for some stage 2 data aborts, and every fault this model
    produces is a HYP stage 1 fault. IL is 1: ARMv7 leaves it UNKNOWN for aborts without an
    instruction syndrome and ARMv8 makes it RES1 there; 1 matches both a 32-bit instruction and v8.
    """
    fetch = fault.access == "fetch"
    if fetch:
        ec = EC_PABT_HYP if taken_from_hyp else EC_PABT_LOWER
    else:
        ec = EC_DABT_HYP if taken_from_hyp else EC_DABT_LOWER
    if isinstance(fault, ExternalAbort):
        iss = FSC_SYNC_EXTERNAL
    else:
        iss = encode_ldfsc(fault) | (ISS_S1PTW if fault.s1ptw else 0)
    if fault.access == "write":
        iss |= ISS_WNR
    return encode_hsr(ec, iss)
