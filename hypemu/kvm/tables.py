"""The kernel side's HYP page tables: the memory they are written through, and the builder that
maps kernel objects into them (``create_hyp_mappings()``).

Two memories, one builder: at planning time the tables are built in ``PlanMemory`` (plain pages
in Python, before any board exists, so that a refused layout costs no Unicorn instance); once the
board exists they are installed in its RAM and every later write goes through ``TableMemory``,
which shows each changed descriptor to the hazard checks.
"""

from __future__ import annotations

from typing import Optional, Protocol

from .. import lpae
from ..cpu import CpuComplex
from ..layout import PAGE_MASK, ConfigError, Layout, page_align_up
from ..lpae import PAGE_SIZE
from .actions import ActionLog


class TableStore(Protocol):
    """Memory that HYP tables are written to."""

    def read64(self, pa: int) -> int:
        """The descriptor at ``pa``."""

    def write64(self, pa: int, value: int) -> None:
        """Write the descriptor at ``pa``."""

    def new_table(self, pa: int) -> None:
        """Page ``pa`` becomes a (zeroed) HYP table page."""


class PlanMemory:
    """The table pages of a plan, held in Python until the board exists."""

    def __init__(self) -> None:
        self.pages: dict[int, bytearray] = {}

    def _page(self, pa: int) -> bytearray:
        page = self.pages.get(pa & PAGE_MASK)
        if page is None:
            raise RuntimeError(f"internal: table access at {pa:#x} outside the planned table pages")
        return page

    def read64(self, pa: int) -> int:
        off = pa & ~PAGE_MASK
        return int.from_bytes(self._page(pa)[off:off + 8], "little")

    def write64(self, pa: int, value: int) -> None:
        off = pa & ~PAGE_MASK
        self._page(pa)[off:off + 8] = value.to_bytes(8, "little")

    def new_table(self, pa: int) -> None:
        self.pages[pa] = bytearray(PAGE_SIZE)


class TableMemory:
    """Physical memory as the kernel side writes HYP page tables on the board: every descriptor
    write is shown to the hazard checks (a change to a descriptor some TLB may cache is how ``bbm``
    is found)."""

    def __init__(self, core: CpuComplex, log: Optional[ActionLog] = None):
        self.engine, self.core = core.engine, core
        self.log = log if log is not None else ActionLog()

    def read64(self, pa: int) -> int:
        return self.engine.read64(pa)

    def write64(self, pa: int, value: int) -> None:
        old = self.engine.read64(pa)
        self.engine.write64(pa, value)
        self.log.write(pa, value.to_bytes(8, "little"))
        if old != value:
            self.core.descriptor_stored(pa, old, value)

    def new_table(self, pa: int) -> None:
        """A page becomes a HYP table page (zeroed; watched for guest stores)."""
        self.log.write(pa, bytes(PAGE_SIZE))
        self.install(pa, bytes(PAGE_SIZE))

    def install(self, pa: int, page: bytes) -> None:
        """A table page built before the board existed (no CPU can have cached any of it)."""
        self.engine.write(pa, page)
        self.core.watch_table_page(pa)


def idmap_range(layout: Layout) -> tuple[int, int]:
    """The pages the HYP idmap covers: [first, end)."""
    return layout.init_pa & PAGE_MASK, page_align_up(layout.init_pa + layout.init_size)


def runtime_objects(layout: Layout) -> list[tuple[str, int, int]]:
    """(what, PA, size) of every kernel object the runtime table maps at its kernel VA."""
    objs = [("the HYP text", layout.hyp_text, layout.hyp_text_size),
            ("the HYP data", layout.hyp_data, PAGE_SIZE)]
    objs += [(f"cpu{n}'s HYP stack", pa, PAGE_SIZE) for n, pa in enumerate(layout.stacks)]
    return objs


class TableBuilder:
    """Maps into HYP tables in ``mem``, allocating table pages from the layout. ``trampoline``:
    the design maps a trampoline page, which no kernel object may be mapped over."""

    def __init__(self, mem: TableStore, layout: Layout, trampoline: bool):
        self.mem, self.layout, self.trampoline = mem, layout, trampoline

    def new_pgd(self, what: str) -> int:
        pa = self.layout.alloc_page(what)
        self.mem.new_table(pa)
        return pa

    def alloc_table(self) -> int:
        """A zeroed page for a HYP page table (the kernel's pte/pmd allocation)."""
        pa = self.layout.alloc_page("a HYP page table")
        self.layout.tables.append(pa)
        self.mem.new_table(pa)
        return pa

    def map(self, pgd: int, va: int, pa: int, size: int, what: str) -> None:
        try:
            lpae.map_range(self.mem, self.alloc_table, pgd, va, pa, size, lpae.PAGE_HYP)
        except ValueError as err:
            raise ConfigError(f"cannot map {what}: {err}") from None

    def map_idmap(self, pgd: int) -> None:
        first, end = idmap_range(self.layout)
        self.map(pgd, first, first, end - first, "the HYP idmap")

    def map_trampoline(self, pgd: int) -> None:
        lay = self.layout
        self.map(pgd, lay.trampoline_va, lay.trampoline_pa, PAGE_SIZE, "the trampoline")

    def map_kernel(self, pgd: int, pa: int, size: int, what: str) -> None:
        """create_hyp_mappings(): map a kernel object at its kernel VA (== its HYP VA)."""
        va = self.layout.kva(pa & PAGE_MASK)
        size = page_align_up(pa + size) - (pa & PAGE_MASK)
        tramp: Optional[int] = self.layout.trampoline_va if self.trampoline else None
        if tramp is not None and va <= tramp < va + size:
            raise ConfigError(f"{what} would be mapped at the trampoline VA {tramp:#x}")
        if va + size > 1 << 32:
            raise ConfigError(f"{what} at PA {pa:#x} has no 32-bit kernel VA "
                              f"(page_offset {self.layout.page_offset:#x})")
        self.map(pgd, va, pa & PAGE_MASK, size, what)

    def map_runtime(self, pgd: int) -> None:
        """The HYP text, the HYP data and every CPU's HYP stack."""
        for what, pa, size in runtime_objects(self.layout):
            self.map_kernel(pgd, pa, size, what)
