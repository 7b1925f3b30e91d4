"""``Machine.export()``: the board as another emulator needs it to run the same thing.

Why: a bridge to another implementation of the architecture (``hypemu.qemu``; silicon rigs) must
rebuild the board and replay what hypemu's kernel side did, without reaching into hypemu's
internals. The export is plain data: the RAM banks, the memory image the kernel side loaded (code,
HYP tables, data, the CPUs' HYP stacks as zero pages; the original instruction words, i.e. without
the trap markers hypemu patches in when it loads code), the PL1 registers the kernel runs with, and
every kernel-side action in the order hypemu's CPUs performed them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Mapping, Optional

from . import cp15
from .lpae import PAGE_SIZE

if TYPE_CHECKING:
    from .kvm import Kernel

ActionKind = Literal["enter_hyp", "hvc", "write", "power_off"]
PL1_REGISTERS = ("SCTLR", "TTBCR", "MAIR0", "MAIR1")


@dataclass(frozen=True)
class MemoryRange:
    """``data`` at physical address ``pa`` (RAM outside every range is zero)."""

    pa: int
    data: bytes

    @property
    def end(self) -> int:
        return self.pa + len(self.data)


@dataclass(frozen=True)
class Action:
    """One kernel-side action. ``kind``:

    - ``enter_hyp``: CPU ``cpu`` is powered on (HYP registers at reset, TLB empty) in HYP mode with
      A/I/F masked and its MMU off, and runs from PA ``pc`` with r0 = ``args[0]`` and LR = ``lr``
      until it returns there (in SVC);
    - ``hvc``: CPU ``cpu``, in SVC with its PL1 MMU off, calls PA ``pc`` (kvm_call_hyp) with r0-r3 =
      ``args`` and LR = ``lr``; ``result`` is the r0 it returned with, None if it never returned (the
      run ended there: a fault or the instruction budget);
    - ``write``: the kernel side stores ``data`` at PA ``pa`` (a descriptor, a zeroed table page);
    - ``power_off``: CPU ``cpu`` is powered off (CPU hotplug)."""

    kind: ActionKind
    cpu: Optional[int] = None
    pc: Optional[int] = None
    lr: Optional[int] = None
    args: tuple[int, ...] = ()
    result: Optional[int] = None
    pa: Optional[int] = None
    data: bytes = b""


@dataclass(frozen=True)
class Export:
    """A board and what its kernel side did (``Machine.export()``)."""

    cpus: int
    banks: tuple[tuple[int, int], ...]          # (base PA, size) of each RAM bank
    memory: tuple[MemoryRange, ...]             # the loaded image, ascending, non-overlapping
    actions: tuple[Action, ...]                 # in the order hypemu performed them
    pl1_registers: Mapping[str, int] = field(default_factory=dict)   # SCTLR, TTBCR, MAIR0, MAIR1

    def in_use(self, pa: int) -> bool:
        """Whether ``pa`` lies in the memory image or is written by an action."""
        spans = [(r.pa, r.end) for r in self.memory]
        spans += [(a.pa, a.pa + len(a.data)) for a in self.actions if a.pa is not None]
        return any(lo <= pa < hi for lo, hi in spans)


def merge(loads: list[tuple[int, bytes]]) -> tuple[MemoryRange, ...]:
    """Writes in order -> the memory they leave, as ascending non-overlapping ranges (later writes
    win; adjacent or overlapping writes become one range)."""
    extents: list[list[int]] = []
    for pa, data in sorted(loads, key=lambda t: t[0]):
        if extents and pa <= extents[-1][1]:
            extents[-1][1] = max(extents[-1][1], pa + len(data))
        else:
            extents.append([pa, pa + len(data)])
    images = [bytearray(hi - lo) for lo, hi in extents]
    for pa, data in loads:                      # load order: later writes win
        for (lo, hi), image in zip(extents, images):
            if lo <= pa < hi:
                image[pa - lo:pa - lo + len(data)] = data
                break
    return tuple(MemoryRange(lo, bytes(image)) for (lo, _), image in zip(extents, images))


def export(kernel: "Kernel", banks: tuple[tuple[int, int], ...], ncpus: int) -> Export:
    """The ``Export`` of a board's kernel side (see ``Machine.export``)."""
    log = kernel.log
    stacks = [(pa, bytes(PAGE_SIZE)) for pa in kernel.layout.stacks]
    actions = []
    for index, entry in enumerate(log.entries):
        match entry:
            case ("enter_hyp", int(cpu), int(pc), int(lr), tuple(args)):
                actions.append(Action("enter_hyp", cpu, pc, lr, tuple(int(a) for a in args)))
            case ("hvc", int(cpu), int(pc), int(lr), tuple(args)):
                actions.append(Action("hvc", cpu, pc, lr, tuple(int(a) for a in args),
                                      log.results.get(index)))
            case ("write", int(pa), bytes(data)):
                actions.append(Action("write", pa=pa, data=data))
            case ("power_off", int(cpu)):
                actions.append(Action("power_off", cpu))
            case _:
                raise TypeError(f"internal: not an action log entry: {entry!r}")
    regs = cp15.reset_values(0)
    return Export(ncpus, banks, merge(stacks + log.loads), tuple(actions),
                  {name: regs[name] for name in PL1_REGISTERS})
