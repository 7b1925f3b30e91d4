"""The event log: every system-register write, TLB maintenance operation, HVC, exception entry and
exception return that the HYP model performs, in the order it happened.

Why: the log is what a kernel engineer reads to see *what the guest did* (the trace), what the hazard
checks examine, and what the determinism tests compare. Events are plain data (no engine objects).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional


# Event kinds
SYSREG = "sysreg"        # a cp15 register write (MCR/MCRR) or banked-register write
TLBI = "tlbi"            # a TLB maintenance operation
BARRIER = "barrier"      # ISB/DSB/DMB (seen by a code hook) or a cp15 barrier/cache operation
HVC = "hvc"              # an HVC instruction (value: imm16)
EXCEPTION = "exception"  # exception entry to HYP (name: the vector; value: HSR)
ERET = "eret"            # exception return (value: the new PC)
MODE = "mode"            # CPSR mode change by MSR/CPS
KERNEL = "kernel"        # a kernel-side (Python-modelled PL1) action, e.g. stub install, hotplug
UNPREDICTABLE = "unpredictable"  # the guest did something the ARM ARM calls UNPREDICTABLE
HAZARD = "hazard"        # a hazard check fired (name: its kind; value: the VA)
INJECT = "inject"        # a fault injection was applied (name: skip, corrupt or remap)


@dataclass(frozen=True)
class Event:
    """One thing the model did: which CPU, at which guest PC, what (name), with which value."""

    cpu: int
    pc: int
    kind: str
    name: str
    value: Optional[int] = None
    detail: str = ""
    insn: Optional[int] = None   # the trapped instruction's word, when a guest instruction did it

    def to_dict(self) -> dict:
        """The event as plain data (every field)."""
        return asdict(self)

    def format(self, disassembly: str = "") -> str:
        """One readable line, as `hypemu run --trace` prints it (``trace.format_event`` adds the
        disassembly of the instruction)."""
        value = "" if self.value is None else f" = {self.value:#x}"
        detail = f"  ({self.detail})" if self.detail else ""
        return (f"cpu{self.cpu} {self.pc:#010x} {disassembly:<34} {self.kind:<9} "
                f"{self.name}{value}{detail}")
