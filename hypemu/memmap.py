"""The memory map of a board, as data: what lies where in physical memory, what the kernel side maps
where in each HYP virtual address space, and, for a layout the kernel side refuses, the collision it
was refused for.

Why a module of its own: the same map feeds three readers (the ``hypemu map`` text, its picture in
``hypemu.mapplot`` and the names the table dump of ``hypemu.ptdump`` gives each range), and a refused
layout has no machine to ask, so the plan is rebuilt here from the scenario without the refusals
(``layout.place_image`` without the design's refusals) to show what could not be built.

The mappings are the kernel side's plan (what ``kvm.plan_board`` maps for the board, before
any step runs); the descriptors actually in memory are ``hypemu tables``'s business.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from .layout import FOUR_GIB, PAGE_MASK, Bank, ConfigError, Layout, page_align_up, place_image
from .lpae import PAGE_SIZE
from .scenario import Scenario

BOOT, RUNTIME, SINGLE = "boot", "runtime", "hyp"
"""The HYP VA spaces: dual-step's boot and runtime tables, single-step's one table."""
PHYS = "pa"
"""The physical address space, where a collision is an object placed outside RAM."""
L1_SIZE = 1 << 30
SPARE_RAM = 64 << 20
"""How far ``replan`` grows the kernel's bank to place what did not fit (so it can be drawn)."""


@dataclass(frozen=True)
class Region:
    """A named physical range [start, end). ``kind`` groups regions for drawing: ram, hole, image,
    pl1, init, init_page, text, data, bounce, stack, pgd, table, lowmem_end (a point: end == start)."""

    name: str
    kind: str
    start: int
    end: int

    @property
    def size(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class Mapping:
    """One mapping of the plan: [va, va+size) -> [pa, pa+size) in the HYP VA space ``space``."""

    space: str
    name: str
    va: int
    pa: int
    size: int

    @property
    def va_end(self) -> int:
        return self.va + self.size


@dataclass(frozen=True)
class Collision:
    """Why a layout cannot be built, as geometry: ``first`` and ``second`` (mapping names, or
    ``lowmem`` / ``32-bit VA space``) both claim [start, end) of the VA space ``space``."""

    space: str
    first: str
    second: str
    start: int
    end: int
    detail: str


@dataclass
class MemoryMap:
    """The whole picture of one scenario's board."""

    name: str
    design: str                                   # "dual-step" or "single-step"
    phys: list[Region]
    spaces: dict[str, list[Mapping]]
    lowmem: list[tuple[int, int]]                 # the kernel's linear map, as VA ranges
    refused: Optional[str] = None                 # the ConfigError reason, None when built
    collisions: list[Collision] = field(default_factory=list)

    def region_at(self, pa: int) -> Optional[Region]:
        """The most specific region holding ``pa`` (the smallest; RAM banks last)."""
        inside = [r for r in self.phys if r.start <= pa < r.end and r.kind not in ("ram", "hole")]
        return min(inside, key=lambda r: r.size) if inside else None


def size_text(size: int) -> str:
    """A size in binary units: ``4 KiB``, ``1 GiB``, ``1.5 MiB``; bytes below 1 KiB."""
    for unit, shift in (("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if size >= 1 << shift:
            value = size / (1 << shift)
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.3g} {unit}"
    return f"{size} B"


def _pages(start: int, end: int) -> tuple[int, int]:
    return start & PAGE_MASK, page_align_up(end)


def physical_regions(layout: Layout, pgds: dict[str, int],
                     table_names: Optional[dict[int, str]] = None) -> list[Region]:
    """Every named physical range of the layout, RAM banks and the holes between them first.

    ``pgds`` names the pgd pages (``{"boot pgd": pa, ...}``; empty for a refused layout),
    ``table_names`` the next-level table pages (``{pa: "boot L2 table"}``, from a walk)."""
    lay = layout
    regions: list[Region] = []
    banks = sorted(lay.banks, key=lambda b: b.base)
    if banks[0].base:
        regions.append(Region("hole below bank 0", "hole", 0, banks[0].base))
    for n, bank in enumerate(banks):
        regions.append(Region(f"RAM bank {n}", "ram", bank.base, bank.end))
        if n + 1 < len(banks) and banks[n + 1].base > bank.end:
            regions.append(Region(f"hole after bank {n}", "hole", bank.end, banks[n + 1].base))
    init_first, init_end = _pages(lay.init_start, lay.init_end)
    regions += [
        Region("kernel image", "image", lay.image_base, lay.image_end),
        Region("PL1 code", "pl1", lay.pl1_text, lay.pl1_text + PAGE_SIZE),
        Region("init page" if init_end - init_first == PAGE_SIZE else "init pages", "init_page",
               init_first, init_end),
        Region("HYP init code", "init", lay.init_start, lay.init_end),
        Region("HYP text", "text", lay.hyp_text, page_align_up(lay.hyp_text + lay.hyp_text_size)),
        Region("HYP data", "data", lay.hyp_data, lay.hyp_data + PAGE_SIZE),
    ]
    if lay.bounce_page is not None:
        regions.append(Region("bounce page (init code copy)", "bounce", lay.bounce_page,
                              lay.bounce_page + PAGE_SIZE))
    regions += [Region(f"stack of cpu{n}", "stack", pa, pa + PAGE_SIZE)
                for n, pa in enumerate(lay.stacks)]
    regions += [Region(name, "pgd", pa, pa + PAGE_SIZE) for name, pa in pgds.items()]
    names = table_names or {}
    regions += [Region(names.get(pa, "HYP table page"), "table", pa, pa + PAGE_SIZE)
                for pa in lay.tables]
    end = lowmem_end_pa(lay)
    if end is not None:
        regions.append(Region("end of lowmem", "lowmem_end", end, end))
    return regions


def lowmem_end_pa(layout: Layout) -> Optional[int]:
    """The PA where the kernel's linear map ends (the vmalloc area starts above it), if any RAM is
    in lowmem."""
    ranges = layout.lowmem_ranges()
    if not ranges:
        return None
    return max(end for _, end in ranges) - layout.page_offset + layout.phys_offset


def planned_mappings(layout: Layout, design: str) -> dict[str, list[Mapping]]:
    """What the kernel side maps (kvm.designs: build_tables): dual-step's boot table holds the idmap
    and the trampoline, its runtime table the trampoline and the kernel objects at their kernel
    VAs; single-step's one table holds the idmap and the kernel objects."""
    lay = layout
    first, end = _pages(lay.init_pa, lay.init_pa + lay.init_size)
    idmap = ("idmap", first, first, end - first)
    kernel = [("HYP text", *_kernel_span(lay, lay.hyp_text, lay.hyp_text_size)),
              ("HYP data", *_kernel_span(lay, lay.hyp_data, PAGE_SIZE))]
    kernel += [(f"stack of cpu{n}", *_kernel_span(lay, pa, PAGE_SIZE))
               for n, pa in enumerate(lay.stacks)]
    if design == "single-step":
        spaces = {SINGLE: [idmap, *kernel]}
    else:
        tramp = ("trampoline", lay.trampoline_va, lay.trampoline_pa, PAGE_SIZE)
        spaces = {BOOT: [idmap, tramp], RUNTIME: [tramp, *kernel]}
    return {space: [Mapping(space, name, va, pa, size) for name, va, pa, size in items]
            for space, items in spaces.items()}


def _kernel_span(layout: Layout, pa: int, size: int) -> tuple[int, int, int]:
    """(va, pa, size) of a kernel object mapped page-wise at its kernel VA."""
    first, end = _pages(pa, pa + size)
    return layout.kva(first), first, end - first


def collisions(mmap: MemoryMap) -> list[Collision]:
    """Where the plan contradicts itself: two mappings claiming the same VA, the trampoline inside
    lowmem, a mapping beyond the 32-bit VA space, a single-step runtime mapping under the idmap's
    level-1 entry, an object placed beyond RAM. Empty for a layout that builds."""
    found: list[Collision] = []
    for space, maps in mmap.spaces.items():
        for i, a in enumerate(maps):
            found += _va_collisions(mmap, space, a, maps[i + 1:])
    found += _outside_ram(mmap)
    return found


def _va_collisions(mmap: MemoryMap, space: str, a: Mapping, later: list[Mapping]) -> list[Collision]:
    found = []
    if a.va_end > FOUR_GIB:
        found.append(Collision(space, a.name, "32-bit VA space", max(a.va, FOUR_GIB), a.va_end,
                               f"{a.name} needs VA {a.va:#x}, above 4 GiB"))
    for b in later:
        lo, hi = max(a.va, b.va), min(a.va_end, b.va_end)
        if lo < hi and a.va - a.pa != b.va - b.pa:   # an equal translation is one mapping
            found.append(Collision(space, a.name, b.name, lo, hi,
                                   f"{a.name} and {b.name} both need VA [{lo:#x}, {hi:#x})"))
    if a.name == "trampoline":
        for lo_va, hi_va in mmap.lowmem:
            lo, hi = max(a.va, lo_va), min(a.va_end, hi_va)
            if lo < hi:
                found.append(Collision(space, a.name, "lowmem", lo, hi,
                                       f"the trampoline VA {a.va:#x} lies inside lowmem "
                                       f"[{lo_va:#x}, {hi_va:#x})"))
    if a.name == "idmap" and space == SINGLE:   # v3.9 tears the idmap down by level-1 entry
        lo, hi = a.va & ~(L1_SIZE - 1), ((a.va_end - 1) | (L1_SIZE - 1)) + 1
        for b in mmap.spaces[space]:
            if b is not a and b.va < hi and lo < b.va_end:
                found.append(Collision(space, "idmap level-1 entry", b.name, max(lo, b.va),
                                       min(hi, b.va_end), f"{b.name} shares the idmap's level-1 "
                                       f"entry [{lo:#x}, {hi:#x}): the teardown unmaps it too"))
    return found


def _outside_ram(mmap: MemoryMap) -> list[Collision]:
    """Objects of the plan that lie (partly) outside every RAM bank, in the ``pa`` space."""
    banks = [r for r in mmap.phys if r.kind == "ram"]
    outside = [r for r in mmap.phys if r.kind not in ("ram", "hole", "lowmem_end")
               and not any(b.start <= r.start and r.end <= b.end for b in banks)]
    outer = sorted((r for r in outside   # the outermost only: the image, not each of its parts
                    if not any(o is not r and o.start <= r.start and r.end <= o.end for o in outside)),
                   key=lambda r: r.start)
    runs: list[list[Region]] = []
    for r in outer:   # adjacent objects make one collision
        if runs and r.start <= runs[-1][-1].end:
            runs[-1].append(r)
        else:
            runs.append([r])
    found = []
    for run in runs:
        names = ", ".join(r.name for r in run)
        lo, hi = run[0].start, max(r.end for r in run)
        found.append(Collision(PHYS, names, "RAM", lo, hi,
                               f"{names} [{lo:#x}, {hi:#x}) not inside RAM"))
    return found


def from_parts(scenario: Scenario, layout: Layout, pgds: dict[str, int],
               refused: Optional[str] = None,
               table_names: Optional[dict[int, str]] = None) -> MemoryMap:
    """The map of a layout (built, or rebuilt after a refusal) and its pgds."""
    mmap = MemoryMap(scenario.name, scenario.init, physical_regions(layout, pgds, table_names),
                     planned_mappings(layout, scenario.init), layout.lowmem_ranges(), refused)
    mmap.collisions = collisions(mmap)
    return mmap


def pgd_names(boot: int, runtime: int, single_step: bool) -> dict[str, int]:
    """The names of the pgd pages, as the map and the table dump show them."""
    return {"HYP pgd": runtime} if single_step else {"boot pgd": boot, "runtime pgd": runtime}


def _code_sizes(scenario: Scenario) -> tuple[int, int]:
    """The sizes of the HYP init code and the runtime HYP text, measured as ``kvm.plan_board``
    measures them to place them (the same sources, the same predefined constants)."""
    from .guest_abi import guest_constants
    from .kvm import from_scenario
    config = from_scenario(scenario)
    return config.source.sizes(guest_constants(config.trampoline_va, config.call_abi))


def _place(s: Scenario, banks: list[Bank], sizes: tuple[int, int]) -> Layout:
    """``layout.place_image`` and the page allocations ``kvm.plan_board`` makes before its checks."""
    from .kvm import from_scenario
    fixed = from_scenario(s).source.fixed()      # what a prebuilt image (an ELF) fixes
    lay = place_image(banks, s.page_offset, s.text_offset, s.hyp_idmap_offset, sizes[0], sizes[1],
                      s.trampoline_va, reserved=fixed.reserved,
                      hyp_text_offset=fixed.hyp_text_offset)
    if s.init != "single-step" and lay.crosses_page() and s.bounce_page == "auto" \
            and lay.init_size <= PAGE_SIZE:
        lay.bounce_page = lay.alloc_page("the bounce page")
    for cpu in range(s.cpus):
        lay.stacks.append(lay.alloc_page(f"cpu{cpu}'s HYP stack"))
    return lay


def replan(scenario: Scenario) -> Optional[Layout]:
    """The layout the kernel side would have placed, without its refusals: the image, the bounce
    page and the stacks as ``kvm.Kernel`` allocates them, no tables. What does not fit in the
    kernel's bank is placed as if the bank were ``SPARE_RAM`` larger (the layout keeps the real
    banks, so it shows beyond RAM). None when even that does not place it."""
    s, sizes = scenario, _code_sizes(scenario)
    try:
        return _place(s, list(s.banks), sizes)
    except ConfigError:
        first = s.banks[0]
        try:
            lay = _place(s, [Bank(first.base, first.size + SPARE_RAM), *s.banks[1:]], sizes)
        except ConfigError:
            return None
    lay.banks = list(s.banks)
    return lay


def refused_map(scenario: Scenario, reason: str) -> MemoryMap:
    """The map of a layout the kernel side refused: its plan, and the collision it was refused for.
    Only the RAM banks when not even the image could be placed."""
    layout = replan(scenario)
    if layout is None:
        banks = sorted(scenario.banks, key=lambda b: b.base)
        phys = [Region(f"RAM bank {n}", "ram", b.base, b.end) for n, b in enumerate(banks)]
        return MemoryMap(scenario.name, scenario.init, phys, {}, [], reason)
    return from_parts(scenario, layout, {}, reason)


def text(mmap: MemoryMap) -> str:
    """The map in words: the physical ranges in address order, then each VA space's mappings."""
    lines = [f"memory map of {mmap.name} ({mmap.design})"]
    if mmap.refused:
        lines.append(f"  refused (config_error): {mmap.refused}")
    lines.append("  physical:")
    for r in sorted(mmap.phys, key=lambda r: (r.start, -r.size)):
        if r.kind == "lowmem_end":
            lines.append(f"    {r.start:#012x}                  {'':>8}  {r.name}")
        else:
            lines.append(f"    {r.start:#012x}-{r.end:#012x}  {size_text(r.size):>8}  {r.name}")
    for space, maps in mmap.spaces.items():
        lines.append(f"  HYP VA ({space} table):")
        for m in sorted(maps, key=lambda m: m.va):
            lines.append(f"    {m.va:#010x}-{m.va_end:#010x} -> {m.pa:#012x}  {size_text(m.size):>8}  "
                         f"{m.name}")
    for c in mmap.collisions:
        lines.append(f"  collision in the {c.space} table: {c.detail}")
    return "\n".join(lines)
