"""The physical memory plan of the kernel side: where the kernel image, the HYP init code, the HYP
text and data, the per-CPU HYP stacks, the bounce page and the page-table pages live, and which
layouts the kernel must refuse.

Why separate from the rest of the kernel side (``hypemu.kvm``): every refusal KVM makes about
placement (idmap against trampoline, trampoline inside lowmem, init code above 4 GiB, RAM too small)
is a property of this plan alone and is decided before any guest code runs, exactly as
``kvm_mmu_init()`` decides it before the first HVC (``kvm.plan`` calls it before any board exists).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from .errors import ConfigError
from .hexrepr import hex_repr
from .lpae import PAGE_SIZE

PAGE_MASK = ~(PAGE_SIZE - 1)
# The kernel's lowmem ends where the vmalloc area must start at the latest (arch/arm/mm/mmu.c,
# vmalloc_min = VMALLOC_END - 240 MiB - VMALLOC_OFFSET).
VMALLOC_MIN = 0xFF000000 - (240 << 20) - (8 << 20)
FOUR_GIB = 1 << 32


__all__ = ["Bank", "ConfigError", "Layout", "check_idmap", "check_trampoline", "page_align_up", "plan"]


@dataclass(frozen=True)
class Bank:
    """One bank of RAM: ``size`` bytes of physical memory from PA ``base``."""

    base: int
    size: int

    def __repr__(self) -> str:
        return hex_repr(self)

    @property
    def end(self) -> int:
        return self.base + self.size


def page_align_up(value: int) -> int:
    return (value + PAGE_SIZE - 1) & PAGE_MASK


@dataclass
class Layout:
    """Physical placement of everything the kernel side puts in RAM (all addresses are PAs unless
    named ``*_va``)."""

    banks: list[Bank]
    page_offset: int
    image_base: int
    pl1_text: int                     # kvm_call_hyp, the stub and the return sentinel
    init_start: int                   # __kvm_hyp_init in the image
    init_end: int                     # __kvm_hyp_init_end in the image
    hyp_text: int                     # runtime vectors and HYP functions
    hyp_text_size: int
    hyp_data: int                     # the HYP data page (the word hyp_probe reads)
    image_end: int
    trampoline_va: int
    stacks: list[int] = field(default_factory=list)   # one page per CPU
    bounce_page: Optional[int] = None
    tables: list[int] = field(default_factory=list)
    free: list[tuple[int, int]] = field(default_factory=list, repr=False)   # lowmem left to allocate
    boot_pgd: Optional[int] = None    # set once the kernel side has built its tables
    runtime_pgd: Optional[int] = None
    has_trampoline: bool = True       # False for single-step (no trampoline: JSON nulls)

    def __repr__(self) -> str:
        return hex_repr(self)

    @property
    def phys_offset(self) -> int:
        return self.banks[0].base

    def kva(self, pa: int) -> int:
        """The kernel (lowmem) VA of a PA: PA - PHYS_OFFSET + PAGE_OFFSET. In 2013 HYP VA == kernel VA."""
        return pa - self.phys_offset + self.page_offset

    def lowmem_ranges(self) -> list[tuple[int, int]]:
        """The kernel's linear map, as VA ranges, clipped at the vmalloc area."""
        ranges = []
        for bank in self.banks:
            start, end = self.kva(bank.base), min(self.kva(bank.end), VMALLOC_MIN)
            if 0 <= start < end:
                ranges.append((start, end))
        return ranges

    @property
    def init_pa(self) -> int:
        """Where the init code runs: the start of the bounce page when there is one (the kernel
        copies it there), else in the image."""
        return self.init_start if self.bounce_page is None else self.bounce_page

    @property
    def init_size(self) -> int:
        return self.init_end - self.init_start

    @property
    def idmap_start(self) -> int:
        """The start of the init code the idmap maps (kvm_mmu_init's hyp_idmap_start, which is the
        bounce page once the code was bounced); as in the JSON layout."""
        return self.init_pa

    @property
    def idmap_end(self) -> int:
        return self.init_pa + self.init_size

    def to_dict(self) -> dict[str, Optional[int]]:
        """The result's ``layout`` object (docs/DESIGN.md section 6): the same names as these
        attributes; the trampoline's are null without a trampoline (single-step)."""
        tramp = self.has_trampoline
        return {"boot_pgd": self.boot_pgd, "runtime_pgd": self.runtime_pgd,
                "idmap_start": self.idmap_start, "idmap_end": self.idmap_end,
                "trampoline_va": self.trampoline_va if tramp else None,
                "trampoline_pa": self.trampoline_pa if tramp else None,
                "bounce_page": self.bounce_page}

    @property
    def trampoline_pa(self) -> int:
        """The page mapped at the trampoline VA: the page holding the start of the init code."""
        return self.init_pa & PAGE_MASK

    def crosses_page(self) -> bool:
        return (self.init_start ^ (self.init_end - 1)) & PAGE_MASK != 0

    def alloc_page(self, what: str) -> int:
        """A zeroed page for the kernel (the real kernel's __get_free_page, GFP_KERNEL): from lowmem
        of any bank, upwards from the end of the image in the kernel's bank, then the other banks
        in order (deterministic; the real allocator's order differs, which no caller relies on)."""
        while self.free and self.free[0][0] + PAGE_SIZE > self.free[0][1]:
            self.free.pop(0)
        if not self.free:
            lowmem = ", ".join(f"[{self.pa(s):#x}, {self.pa(e):#x})" for s, e in self.lowmem_ranges())
            raise ConfigError(f"RAM too small: no free lowmem page left for {what} "
                              f"(lowmem: {lowmem or 'none'}, the kernel image ends at "
                              f"{self.image_end:#x})")
        pa, end = self.free[0]
        self.free[0] = (pa + PAGE_SIZE, end)
        return pa

    def pa(self, kva: int) -> int:
        """The PA of a lowmem VA (the inverse of ``kva``)."""
        return kva - self.page_offset + self.phys_offset


def place_image(banks: list[Bank], page_offset: int, text_offset: int, idmap_offset: Optional[int],
                init_size: int, hyp_text_size: int, trampoline_va: int, *, reserved: int = 0,
                hyp_text_offset: Optional[int] = None) -> Layout:
    """Place the image in the first bank: a page of PL1 code, the HYP init code (at
    ``idmap_offset`` from the image start, or on its own page), the runtime HYP text and a data page.
    A prebuilt image (an ELF) fixes more: its code occupies ``reserved`` bytes from the image start
    (hypemu's own pages go after them) and its runtime text may sit at ``hyp_text_offset``.
    Raises ConfigError for a layout the kernel could not even load (beyond its bank or lowmem)."""
    first = banks[0]
    image_base = first.base + text_offset
    init_start = image_base + (PAGE_SIZE if idmap_offset is None else idmap_offset)
    init_end = init_start + init_size
    if idmap_offset is not None and idmap_offset < PAGE_SIZE:
        raise ConfigError(f"kernel.hyp_idmap_offset {idmap_offset:#x} overlaps the kernel's first "
                          f"page of PL1 code (it must be at least {PAGE_SIZE:#x})")
    occupied = image_base + reserved
    if hyp_text_offset is None:
        hyp_text = page_align_up(max(init_end, occupied))
    else:
        hyp_text = image_base + hyp_text_offset
        if hyp_text < image_base + PAGE_SIZE or (hyp_text < init_end and init_start < hyp_text
                                                 + hyp_text_size):
            raise ConfigError(f"the runtime HYP text at {hyp_text:#x} overlaps the PL1 page or "
                              f"the init code [{init_start:#x}, {init_end:#x})")
    hyp_data = page_align_up(max(hyp_text + hyp_text_size, init_end, occupied))
    image_end = hyp_data + PAGE_SIZE
    if image_end > first.end:
        raise ConfigError(f"RAM too small: the kernel image needs {image_end - first.base:#x} bytes "
                          f"from {first.base:#x}, the first bank has {first.size:#x}")
    lowmem_end = first.base + max(0, min(first.size, VMALLOC_MIN - page_offset))
    if image_end > lowmem_end:
        raise ConfigError(f"the kernel image [{image_base:#x}, {image_end:#x}) reaches above the end "
                          f"of lowmem at {lowmem_end:#x}: the kernel runs in its linear map, which "
                          f"ends where the vmalloc area starts")
    layout = Layout(banks=list(banks), page_offset=page_offset, image_base=image_base,
                  pl1_text=image_base, init_start=init_start, init_end=init_end,
                  hyp_text=hyp_text, hyp_text_size=hyp_text_size, hyp_data=hyp_data,
                  image_end=image_end, trampoline_va=trampoline_va)
    # __get_free_page's lowmem: the kernel's bank above the image, then every other bank's
    layout.free = [(max(layout.pa(lo), image_end if n == 0 else 0), layout.pa(hi))
                   for n, (lo, hi) in enumerate(layout.lowmem_ranges())]
    return layout


def check_trampoline(layout: Layout) -> None:
    """The refusals of kvm_mmu_init() about the trampoline and the idmap (docs/DESIGN.md section 1).

    An idmap page that *is* the trampoline page (the init page's PA equals the trampoline VA) is no
    refusal: both boot-table mappings translate that VA to the same PA, and v3.10's kvm_mmu_init
    simply writes the same PTE twice (so does ``lpae.map_range``). Only an idmap page that the
    trampoline maps elsewhere conflicts, which needs init code across a page without a bounce page.
    Deviation: v3.10 has no check and would let the trampoline's PTE replace the idmap's, leaving a
    boot table that is no identity map; hypemu refuses that layout instead of running it.
    """
    va = layout.trampoline_va
    if va & ~PAGE_MASK or not 0 <= va < FOUR_GIB:
        raise ConfigError(f"trampoline VA {va:#x} is not a page-aligned 32-bit address")
    for start, end in layout.lowmem_ranges():
        if start <= va < end:
            raise ConfigError(f"trampoline VA {va:#x} lies inside the kernel's lowmem "
                              f"[{start:#x}, {end:#x}): it would shadow a kernel mapping")
    if layout.init_size > PAGE_SIZE:
        raise ConfigError(f"HYP init code is {layout.init_size:#x} bytes: more than a page, it "
                          f"cannot be bounced or mapped at the trampoline")
    check_idmap(layout)
    first = layout.init_pa & PAGE_MASK
    end = page_align_up(layout.init_pa + layout.init_size)
    if first <= va < end and va != layout.trampoline_pa:
        raise ConfigError(f"the HYP idmap [{first:#x}, {end:#x}) maps the trampoline VA {va:#x} to "
                          f"itself, the trampoline maps it to {layout.trampoline_pa:#x}: the boot "
                          f"pgd cannot hold both (init code across a page, bounce_page: never)")


def check_idmap(layout: Layout) -> None:
    """The init code must have a 32-bit PA for HYP (32-bit VAs) to run it through an identity map."""
    if layout.init_pa + layout.init_size > FOUR_GIB:
        raise ConfigError(f"HYP init code at PA {layout.init_pa:#x} is above 4 GiB: a 32-bit HYP VA "
                          f"cannot identity-map it")
