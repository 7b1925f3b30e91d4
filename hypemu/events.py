"""The event log: every system-register write, TLB maintenance operation, HVC, exception entry and
exception return that the HYP model performs, in the order it happened.

Why: the log is what a kernel engineer reads to see *what the guest did* (the trace), what the hazard
checks examine, and what the determinism tests compare. Events are plain data (no engine objects).
One ``EventLog`` per board is shared by the CPUs, the hazard checks, the kernel side and injection,
so all of them write one ordered history.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional


# Event kinds
SYSREG = "sysreg"        # a cp15 register write (MCR/MCRR) or banked-register write
TLBI = "tlbi"            # a TLB maintenance operation
BARRIER = "barrier"      # ISB/DSB/DMB (patched to trap at load) or a cp15 barrier/cache operation
HVC = "hvc"              # an HVC instruction (value: imm16)
EXCEPTION = "exception"  # exception entry to HYP (name: the vector; value: HSR)
ERET = "eret"            # exception return (value: the new PC)
KERNEL = "kernel"        # a kernel-side (Python-modelled PL1) action, e.g. stub install, hotplug
UNPREDICTABLE = "unpredictable"  # the guest did something the ARM ARM calls UNPREDICTABLE
HAZARD = "hazard"        # a hazard check fired (name: its kind; value: the VA)
INJECT = "inject"        # a fault injection was applied (name: skip, corrupt or remap)


class Event(NamedTuple):
    """One thing the model did: which CPU, at which guest PC, what (name), with which value.
    Immutable; a NamedTuple, not a frozen dataclass, because a trapped instruction records one
    and this builds in a third of the time."""

    cpu: int
    pc: int
    kind: str
    name: str
    value: Optional[int] = None
    detail: str = ""
    insn: Optional[int] = None   # the trapped instruction's word, when a guest instruction did it

    def to_dict(self) -> dict[str, Any]:
        """The event as plain data (every field)."""
        return dict(self._asdict())

    def format(self, disassembly: str = "") -> str:
        """One readable line, as `hypemu run --trace` prints it (``trace.format_event`` adds the
        disassembly of the instruction)."""
        value = "" if self.value is None else f" = {self.value:#x}"
        detail = f"  ({self.detail})" if self.detail else ""
        return (f"cpu{self.cpu} {self.pc:#010x} {disassembly:<34} {self.kind:<9} "
                f"{self.name}{value}{detail}")


MAX_EVENTS = 200_000   # the log's bound: a trap loop with a large budget cannot fill RAM


class EventLog:
    """The board's event log. ``cpu`` is the CPU that runs now (events carry it), and the trapped
    instruction being emulated (``trapped``) gives the events recorded at its PC their word."""

    def __init__(self, limit: int = MAX_EVENTS) -> None:
        self.events: list[Event] = []
        self.limit = limit
        self.cpu = 0
        self.trap_pc: Optional[int] = None
        self.trap_word: Optional[int] = None

    def __len__(self) -> int:
        return len(self.events)

    def trapped(self, pc: int, word: int) -> None:
        """The instruction at ``pc`` (``word``) is being emulated."""
        self.trap_pc, self.trap_word = pc, word

    def record(self, kind: str, name: str, value: Optional[int], pc: int, detail: str = "") -> None:
        """Append one event of the current CPU; past ``limit``, one 'event log full' and no more."""
        if len(self.events) >= self.limit:
            if len(self.events) == self.limit:
                self.events.append(Event(self.cpu, pc, KERNEL, "event log full", None,
                                         f"{self.limit} events: later ones are not recorded"))
            return
        insn = self.trap_word if pc == self.trap_pc else None
        self.events.append(Event(self.cpu, pc, kind, name, value, detail, insn))

    def set_value(self, index: int, value: Optional[int]) -> None:
        """Correct the value of event ``index`` (a hazard's exact VA, found after its report)."""
        if 0 <= index < len(self.events):
            self.events[index] = self.events[index]._replace(value=value)
