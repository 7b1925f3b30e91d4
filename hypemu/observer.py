"""What the CPU model shows an observer (the hazard checks), and what an observer may read back.

Why a separate interface: the checks must see fills, register writes, barriers, exception entries,
TLB maintenance, table stores and resets, but the CPU must not depend on them, and they must not
steer the CPU except in one way: a fill may ask for the exact VA of the access (the fill hook only
sees the page), which the CPU's replay service provides. The CPU imports only this module;
``hazards`` imports only this module, the walker, lpae and events; ``Machine`` wires them.
"""

from __future__ import annotations

from typing import Callable, Mapping, Optional, Protocol, Union

from .tlb import Origin
from .walker import Fault, Regime, Translation

Outcome = Union[int, Translation, Fault]
"""A translation's outcome: a flat PA (MMU off), a Translation, or a Fault."""

LocateVA = Callable[[int], None]
"""Returned by ``CpuObserver.fill`` when the access needs its exact VA: called with it."""


class CpuView(Protocol):
    """A read-only view of the CPUs for the checks."""

    @property
    def ncpus(self) -> int: ...

    def read64(self, pa: int) -> int:
        """The 64-bit little-endian word at ``pa``."""

    def read(self, pa: int, size: int) -> bytes:
        """``size`` bytes of RAM at ``pa``."""

    def pc(self) -> int:
        """The PC of the guest instruction being executed (exact in hooks)."""

    def code_word(self, pc: int) -> Optional[int]:
        """The instruction word at ``pc`` for the current CPU, None when it cannot be fetched
        (in Thumb state the Thumb instruction there: ``hw1 << 16 | hw2``, or a halfword)."""

    def code_word_at(self, pa: int) -> Optional[int]:
        """The instruction word at physical ``pa`` (as loaded), None where there is no RAM (in
        Thumb state, as ``code_word``)."""

    def thumb(self) -> bool:
        """The current CPU executes in Thumb state (CPSR.T)."""

    def sysregs(self, cpu: int) -> Mapping[str, int]:
        """The system registers of ``cpu``."""

    def hyp_regime(self, cpu: int) -> Regime:
        """The HYP walk's inputs from ``cpu``'s registers."""

    def tlb_entries(self, cpu: int) -> list[Translation]:
        """What ``cpu``'s TLB model holds, oldest first."""

    def tlb_origin(self, cpu: int, t: Translation) -> Optional[Origin]:
        """Where ``cpu``'s TLB entry ``t`` came from (None: not recorded)."""

    def translate_with(self, cpu: int, regs: Mapping[str, int], va: int, access: str) -> Outcome:
        """What a HYP access of ``cpu`` would give with the system registers ``regs``: its TLB
        model first, then a walk (flat when regs' HSCTLR.M is 0)."""


class CpuObserver(Protocol):
    """What the CPU model tells an observer. ``enabled`` False: nothing is called (and barriers
    are not patched to trap, nor table pages write-protected)."""

    enabled: bool

    def fill(self, cpu: int, va: int, access: str, hit: Optional[Translation],
             walked: Union[Translation, Fault, None], outcome: Outcome,
             hyp: bool) -> Optional[LocateVA]:
        """A soft-TLB fill of the current CPU, before the TLB model takes a fresh walk: ``hit``
        the TLB model's entry used, or ``walked`` the walk on a miss (both None: MMU off);
        ``outcome`` what the access gets (the VA itself with the MMU off, the Translation, or a
        Fault); ``hyp``: the CPU is in HYP mode. A returned callable wants the exact VA."""

    def sysreg_written(self, cpu: int, name: str, old: int, pc: int) -> None:
        """``name`` is about to change from ``old`` (MCR/MCRR at ``pc``)."""

    def barrier(self, cpu: int, kind: str) -> None:
        """'isb', 'dsb' or 'dmb' (an instruction, a cp15 operation, or a power-down's DSB), or
        'eret' (an exception return: a context synchronization event, as ISB)."""

    def exception_entry(self, cpu: int, pc: int, vector_base: int) -> None:
        """An exception taken to HYP at ``pc`` through the vectors at ``vector_base``."""

    def tlbi(self, cpu: int, removed: Mapping[int, list[Translation]], op: str, pc: int) -> None:
        """TLB maintenance ``op`` by ``cpu`` removed these entries (CPU id -> entries)."""

    def table_stored(self, before: Mapping[int, bytes], cpu: Optional[int],
                     pc: Optional[int]) -> None:
        """Table pages changed (page PA -> its bytes before); by the guest instruction at ``pc``
        of ``cpu``, or from outside the guest (cpu None)."""

    def descriptor_stored(self, pa: int, old: int, new: int) -> None:
        """The kernel side wrote one descriptor."""

    def reset(self, cpu: int) -> None:
        """``cpu`` powered on or off: its registers and TLB are at reset."""


class NullObserver:
    """Observes nothing (the checks off)."""

    enabled = False

    def fill(self, cpu: int, va: int, access: str, hit: Optional[Translation],
             walked: Union[Translation, Fault, None], outcome: Outcome,
             hyp: bool) -> Optional[LocateVA]:
        return None

    def sysreg_written(self, cpu: int, name: str, old: int, pc: int) -> None:
        pass

    def barrier(self, cpu: int, kind: str) -> None:
        pass

    def exception_entry(self, cpu: int, pc: int, vector_base: int) -> None:
        pass

    def tlbi(self, cpu: int, removed: Mapping[int, list[Translation]], op: str, pc: int) -> None:
        pass

    def table_stored(self, before: Mapping[int, bytes], cpu: Optional[int],
                     pc: Optional[int]) -> None:
        pass

    def descriptor_stored(self, pa: int, old: int, new: int) -> None:
        pass

    def reset(self, cpu: int) -> None:
        pass
