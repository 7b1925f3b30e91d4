"""The two HYP init designs, one class each: what they place, the tables they build, the init
calls they make for a CPU, and what the kernel does once the first boot is done.

- ``DualStep`` (Linux v3.10): a boot pgd (idmap of the init page + the trampoline) and a runtime
  pgd (trampoline + HYP text, data and stacks); two init HVCs (phase 1 turns the MMU on with the
  boot pgd, phase 2 jumps through the trampoline and switches to the runtime pgd); the init code
  is copied to a bounce page when it crosses a page boundary.
- ``SingleStep`` (Linux v3.9, which dual-step replaced): one HYP pgd holding the idmap and the
  runtime mappings, one init HVC, and the idmap removed from that pgd once the boot CPUs are up,
  which is what breaks a later hotplug.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, Optional, Protocol

from .. import events
from ..layout import PAGE_MASK, ConfigError, Layout, check_idmap, check_trampoline
from ..lpae import PAGE_SIZE
from ..guest_abi import InitCall
from .tables import TableBuilder, idmap_range, runtime_objects


@dataclass(frozen=True)
class HypTables:
    """The PAs of the HYP pgds (the same table twice for single-step)."""

    boot: int
    runtime: int


class BootedKernel(Protocol):
    """What a design's ``after_boot`` may use of the kernel side."""

    layout: Layout
    tables: HypTables

    def write64(self, pa: int, value: int) -> None:
        """Write a HYP descriptor (the hazard checks see it)."""

    def record(self, kind: str, name: str, value: Optional[int] = None, pc: Optional[int] = None,
               detail: str = "") -> None:
        """Add an event to the log."""


class InitDesign(ABC):
    """One way of bringing a CPU into HYP with its MMU on (``hyp.init``)."""

    name: ClassVar[str]
    builtin_source: ClassVar[str]       # its init code in asm/
    trampoline: ClassVar[bool]          # whether it maps the trampoline page

    @abstractmethod
    def place(self, layout: Layout, bounce_page: str) -> None:
        """Allocations and refusals of this design, before the per-CPU stacks are allocated."""

    @abstractmethod
    def build_tables(self, builder: TableBuilder) -> HypTables:
        """The HYP tables the init calls hand to HYP."""

    @abstractmethod
    def init_calls(self, tables: HypTables, stack_top: int, vectors: int) -> tuple[InitCall, ...]:
        """The init HVCs for one CPU (after the HVC to the stub that set HVBAR)."""

    def after_boot(self, kernel: BootedKernel) -> None:
        """What the kernel does after a boot step (nothing, unless the design says so)."""


class DualStep(InitDesign):
    name = "dual-step"
    builtin_source = "hyp-init.S"
    trampoline = True

    def place(self, layout: Layout, bounce_page: str) -> None:
        if layout.crosses_page() and bounce_page == "auto" and layout.init_size <= PAGE_SIZE:
            layout.bounce_page = layout.alloc_page("the bounce page")
        check_trampoline(layout)

    def build_tables(self, builder: TableBuilder) -> HypTables:
        boot = builder.new_pgd("the boot HYP pgd")
        runtime = builder.new_pgd("the runtime HYP pgd")
        builder.map_idmap(boot)
        for pgd in (boot, runtime):
            builder.map_trampoline(pgd)
        builder.map_runtime(runtime)
        return HypTables(boot, runtime)

    def init_calls(self, tables: HypTables, stack_top: int, vectors: int) -> tuple[InitCall, ...]:
        return (InitCall("HYP init phase 1", tables.boot, 0, 0),
                InitCall("HYP init phase 2", tables.runtime, stack_top, vectors))


def idmap_l1_slots(layout: Layout) -> range:
    """The level-1 entries (1 GiB each) that the idmap lives under."""
    first, end = idmap_range(layout)
    return range(first >> 30, ((end - 1) >> 30) + 1)


class SingleStep(InitDesign):
    name = "single-step"
    builtin_source = "hyp-init-single.S"
    trampoline = False

    def __init__(self) -> None:
        self.idmap_removed = False

    def place(self, layout: Layout, bounce_page: str) -> None:
        check_idmap(layout)   # no trampoline, so nothing to bounce: the idmap covers every page

    def build_tables(self, builder: TableBuilder) -> HypTables:
        pgd = builder.new_pgd("the HYP pgd")
        builder.map_idmap(pgd)
        builder.map_runtime(pgd)
        self._check_idmap_alone(builder.layout)
        return HypTables(pgd, pgd)

    @staticmethod
    def _check_idmap_alone(layout: Layout) -> None:
        """v3.9's teardown clears whole level-1 entries (pud_clear): refuse a layout where a runtime
        mapping shares one with the idmap, since the teardown would unmap it too."""
        first, end = idmap_range(layout)
        for slot in idmap_l1_slots(layout):
            lo, hi = slot << 30, (slot + 1) << 30
            for what, pa, size in runtime_objects(layout):
                va = layout.kva(pa & PAGE_MASK)
                if va < hi and va + size > lo:
                    raise ConfigError(f"single-step: {what} (HYP VA {va:#x}) shares the level-1 entry "
                                      f"[{lo:#x}, {hi:#x}) with the HYP idmap [{first:#x}, {end:#x}): "
                                      f"removing the idmap after boot would unmap it too")

    def init_calls(self, tables: HypTables, stack_top: int, vectors: int) -> tuple[InitCall, ...]:
        return (InitCall("HYP init (single-step)", tables.runtime, stack_top, vectors),)

    def after_boot(self, kernel: BootedKernel) -> None:
        """Once the boot CPUs are up, v3.9's kvm_clear_hyp_idmap clears the level-1 entries holding
        the idmap in the one HYP table. From PL1 no HYP TLB maintenance is possible, so CPUs that
        cached idmap translations keep them. Done once: later bring-ups run without the idmap."""
        if self.idmap_removed:
            return
        pgd = kernel.tables.runtime
        for slot in idmap_l1_slots(kernel.layout):
            kernel.write64(pgd + 8 * slot, 0)
        first, end = idmap_range(kernel.layout)
        self.idmap_removed = True
        kernel.record(events.KERNEL, "remove the HYP idmap",
                      detail=f"[{first:#x}, {end:#x}) cleared from the HYP pgd {pgd:#x}")


DESIGNS: dict[str, type[InitDesign]] = {d.name: d for d in (DualStep, SingleStep)}
