"""The event log: every system-register write, TLB maintenance operation, HVC, exception entry and
exception return that the HYP model performs, in the order it happened; with the detail on, also
every table walk and soft-TLB fill of the HYP MMU.

Why: the log is what a kernel engineer reads to see *what the guest did* (the trace), what the hazard
checks examine, and what the determinism tests compare. Events are plain data (no engine objects).
One ``EventLog`` per board is shared by the CPUs, the hazard checks, the kernel side and injection,
so all of them write one ordered history. Each event carries the board's instruction count when it
happened (``icount``); what the trace prints is built from the events only when someone reads them
(``hypemu.tracer``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Callable, Optional

from .hexrepr import hex_repr


# Event kinds
SYSREG = "sysreg"        # a cp15 register write (MCR/MCRR) or banked-register write
TLBI = "tlbi"            # a TLB maintenance operation (value: the VA operand; None when ignored)
BARRIER = "barrier"      # ISB/DSB/DMB (patched to trap at load) or a cp15 barrier/cache operation
HVC = "hvc"              # an HVC instruction (value: imm16)
EXCEPTION = "exception"  # exception entry to HYP (name: the vector; value: HSR)
ERET = "eret"            # exception return (value: the new PC)
KERNEL = "kernel"        # a kernel-side (Python-modelled PL1) action, e.g. stub install, hotplug
UNPREDICTABLE = "unpredictable"  # the guest did something the ARM ARM calls UNPREDICTABLE
HAZARD = "hazard"        # a hazard check fired (name: its kind; value: the VA)
INJECT = "inject"        # a fault injection was applied (name: skip, corrupt or remap)
STEP = "step"            # a scenario step begins (name: ``steps[N] call hyp_read``; value: N)
WALK = "walk"            # detail only: a HYP table walk of a fill (value: the VA)
FILL = "fill"            # detail only: a HYP soft-TLB fill (name: fill, stale or evict)

KINDS = (SYSREG, TLBI, BARRIER, HVC, EXCEPTION, ERET, KERNEL, UNPREDICTABLE, HAZARD, INJECT, STEP,
         WALK, FILL)


@dataclass(slots=True)
class Event:
    """One thing the model did: which CPU, at which guest PC (None for the kernel side, which
    runs no guest instruction), what (name), with which value, at which instruction count.
    Read-only by convention, not frozen: one is built at every trap, and a frozen dataclass's
    ``__init__`` (``object.__setattr__`` per field) costs three times as much."""

    cpu: int
    pc: Optional[int]
    kind: str
    name: str
    value: Optional[int] = None
    detail: str = ""
    insn: Optional[int] = None   # the trapped instruction's word, when a guest instruction did it
    icount: Optional[int] = None  # guest instructions the board had begun (None: uncounted run)
    data: Optional[dict[str, Any]] = None   # detail only: plain data (ints, strings, lists)
    mode: Optional[str] = None   # detail only: the CPU's mode (hyp, svc) at a guest instruction
    thumb: bool = False          # insn is a Thumb instruction (hw1 << 16 | hw2, or a halfword)

    def __repr__(self) -> str:
        return hex_repr(self, decimal=("cpu", "icount"))

    def to_dict(self) -> dict[str, Any]:
        """The event as plain data (every field)."""
        return asdict(self)


MAX_EVENTS = 200_000   # the log's bound: a trap loop with a large budget cannot fill RAM


def _uncounted() -> Optional[int]:
    return None


def _no_mode() -> Optional[str]:
    return None


class EventLog:
    """The board's event log. ``cpu`` is the CPU that runs now (events carry it), and the trapped
    instruction being emulated (``trapped``) gives the events recorded at its PC their word.
    ``clock`` gives the instruction count and ``mode`` the running CPU's mode (the CPUs set
    them); ``detailed``: the CPUs also record
    walks, fills and the registers of calls (the trace and ``--events`` ask for it)."""

    def __init__(self, limit: int = MAX_EVENTS, detailed: bool = False) -> None:
        self.events: list[Event] = []
        self.limit = limit
        self.detailed = detailed
        self.cpu = 0
        self.trap_pc: Optional[int] = None
        self.trap_word: Optional[int] = None
        self.clock: Callable[[], Optional[int]] = _uncounted
        self.mode: Callable[[], Optional[str]] = _no_mode
        self.trap_thumb = False

    def __len__(self) -> int:
        return len(self.events)

    def trapped(self, pc: int, word: int, thumb: bool = False) -> None:
        """The instruction at ``pc`` (``word``; a Thumb one: ``thumb``) is being emulated."""
        self.trap_pc, self.trap_word, self.trap_thumb = pc, word, thumb

    def record(self, kind: str, name: str, value: Optional[int], pc: Optional[int],
               detail: str = "", data: Optional[dict[str, Any]] = None,
               icount: Optional[int] = None) -> None:
        """Append one event of the current CPU; past ``limit``, one 'event log full' and no more.
        ``pc`` None: the kernel side did it (no guest instruction). ``icount``: the count, when
        the caller knows it better than ``clock`` (a fetch before its instruction is counted)."""
        if len(self.events) >= self.limit:
            if len(self.events) == self.limit:
                self.events.append(Event(self.cpu, None, KERNEL, "event log full", None,
                                         f"{self.limit} events: later ones are not recorded",
                                         None, self.clock()))
            return
        trapped = pc is not None and pc == self.trap_pc
        insn = self.trap_word if trapped else None
        mode = self.mode() if self.detailed and pc is not None else None
        count = self.clock() if icount is None else icount
        self.events.append(Event(self.cpu, pc, kind, name, value, detail, insn, count, data, mode,
                                 trapped and self.trap_thumb))

    def set_value(self, index: int, value: Optional[int]) -> None:
        """Correct the value of event ``index`` (a hazard's exact VA, found after its report)."""
        if 0 <= index < len(self.events):
            self.events[index] = replace(self.events[index], value=value)
