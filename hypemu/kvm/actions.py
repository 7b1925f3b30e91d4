"""What the kernel side did to the board, in order: the load, then every action (``Machine.export``).

Why a log: another implementation of the architecture (QEMU, silicon) can replay exactly these
actions on the same memory image and be compared with hypemu. It is cheap: the load keeps
references to the bytes it wrote (no copies), and an action is one small tuple appended.

Entries (tuples, so that recording costs one append):
- ``("enter_hyp", cpu, pc, lr, (r0,))``: the CPU is powered on in HYP (MMU off) and enters the
  kernel's HYP stub (or hypemu's head.S helper around the kernel's own stub) at PA ``pc`` with r0
  and LR = ``lr`` (the PL1 return point);
- ``("hvc", cpu, pc, lr, (r0, r1, r2, r3))``: the kernel calls ``pc`` (kvm_call_hyp) from SVC;
  the value returned in r0 is in ``results`` under the entry's index (none if it never returned);
- ``("write", pa, data)``: a store of the kernel side to RAM (a descriptor, a zeroed table page);
- ``("power_off", cpu)``: CPU hotplug off.
"""

from __future__ import annotations

from typing import Union

Entry = tuple[Union[str, int, bytes, tuple[int, ...]], ...]


class ActionLog:
    """The kernel side's load and its actions, as they happened."""

    def __init__(self) -> None:
        self.loads: list[tuple[int, bytes]] = []     # (pa, original bytes) in load order
        self.entries: list[Entry] = []
        self.results: dict[int, int] = {}            # entry index -> r0 an HVC returned

    def load(self, pa: int, data: bytes) -> None:
        self.loads.append((pa, data))

    def enter_hyp(self, cpu: int, pc: int, lr: int, r0: int = 0) -> None:
        self.entries.append(("enter_hyp", cpu, pc, lr, (r0,)))

    def hvc(self, cpu: int, pc: int, lr: int, args: tuple[int, ...]) -> int:
        """Record an HVC; returns the index under which ``returned`` files its result."""
        self.entries.append(("hvc", cpu, pc, lr, args))
        return len(self.entries) - 1

    def returned(self, index: int, r0: int) -> None:
        self.results[index] = r0

    def write(self, pa: int, data: bytes) -> None:
        self.entries.append(("write", pa, data))

    def power_off(self, cpu: int) -> None:
        self.entries.append(("power_off", cpu))
