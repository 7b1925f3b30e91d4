"""The PL1 driver's code: the few ARM instructions the bridge runs on QEMU's vCPUs itself.

Why hand-encoded: a dozen fixed A32 encodings (ARM ARM A8.8) need no assembler on the machine;
``tests/test_crosscheck.py`` checks each against GNU as where it is installed. The bridge runs
these snippets in a scratch slot of the driver page, each ending in a branch to self on which the
bridge has a breakpoint (``Snippet.end``):

- ``reset_registers``: run in HYP just after a vCPU (re)starts: the ARM ARM reset values of the
  registers QEMU resets to zero, then the PL1 registers the kernel runs with;
- ``psci``: ``SMC #0`` with r0-r3 set by the bridge: QEMU virt's PSCI (CPU_ON, CPU_OFF);
- ``read_hyp_state``: run in HYP: ELR_hyp and SPSR_hyp into r0 and r1, which the gdbstub of an
  AArch32 vCPU does not show.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

COND_AL = 0xE << 28
B_SELF = 0xEAFFFFFE            # b .
ISB = 0xF57FF06F               # isb sy
SMC_0 = 0xE1600070             # smc #0
MRS_R0_ELR_HYP = 0xE10E0300    # mrs r0, ELR_hyp  (MRS banked: R=0, M1=0b1110, M=1)
MRS_R1_SPSR = 0xE14F1000       # mrs r1, SPSR     (in HYP: SPSR_hyp)

PSCI_CPU_OFF = 0x84000002
PSCI_CPU_ON = 0x84000003
PSCI_SUCCESS, PSCI_ALREADY_ON, PSCI_ON_PENDING = 0, 0xFFFFFFFC, 0xFFFFFFFB

# (opc1, CRn, CRm, opc2) of the cp15 registers the snippets write
CP15 = {"HSCTLR": (4, 1, 0, 0), "HTCR": (4, 2, 0, 2), "VTCR": (4, 2, 1, 2),
        "SCTLR": (0, 1, 0, 0), "TTBCR": (0, 2, 0, 2), "MAIR0": (0, 10, 2, 0),
        "MAIR1": (0, 10, 2, 1)}


def movw(rd: int, imm: int) -> int:
    """MOVW rd, #imm16 (A1)."""
    return COND_AL | 0x03000000 | (imm >> 12 & 0xF) << 16 | rd << 12 | (imm & 0xFFF)


def movt(rd: int, imm: int) -> int:
    """MOVT rd, #imm16 (A1)."""
    return COND_AL | 0x03400000 | (imm >> 12 & 0xF) << 16 | rd << 12 | (imm & 0xFFF)


def mcr(name: str, rt: int) -> int:
    """MCR p15, opc1, rt, CRn, CRm, opc2 (A1) for a register of ``CP15``."""
    opc1, crn, crm, opc2 = CP15[name]
    return COND_AL | 0x0E000010 | opc1 << 21 | crn << 16 | rt << 12 | 0xF << 8 | opc2 << 5 | crm


def load32(rd: int, value: int) -> list[int]:
    return [movw(rd, value & 0xFFFF), movt(rd, value >> 16 & 0xFFFF)]


@dataclass(frozen=True)
class Snippet:
    """Instruction words; the last is ``b .``, at byte offset ``end``."""

    words: tuple[int, ...]

    @property
    def end(self) -> int:
        return 4 * (len(self.words) - 1)

    def code(self) -> bytes:
        return b"".join(w.to_bytes(4, "little") for w in self.words)


def reset_registers(values: Mapping[str, int]) -> Snippet:
    """Write each register of ``values`` (names of ``CP15``), then ISB."""
    words: list[int] = []
    for name, value in values.items():
        words += load32(0, value) + [mcr(name, 0)]
    return Snippet(tuple(words + [ISB, B_SELF]))


PSCI = Snippet((SMC_0, B_SELF))
READ_HYP_STATE = Snippet((MRS_R0_ELR_HYP, MRS_R1_SPSR, B_SELF))
PARK = Snippet((B_SELF,))
