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
    idmap_start: int                  # __kvm_hyp_init in the image
    idmap_end: int                    # __kvm_hyp_init_end
    hyp_text: int                     # runtime vectors and HYP functions
    hyp_text_size: int
    hyp_data: int                     # the HYP data page (the word hyp_probe reads)
    image_end: int
    trampoline_va: int
    alloc_next: int                   # next free page for kernel allocations
    alloc_limit: int
    stacks: list[int] = field(default_factory=list)   # one page per CPU
    bounce_page: Optional[int] = None
    tables: list[int] = field(default_factory=list)

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
        return self.idmap_start if self.bounce_page is None else self.bounce_page

    @property
    def init_size(self) -> int:
        return self.idmap_end - self.idmap_start

    @property
    def trampoline_pa(self) -> int:
        """The page mapped at the trampoline VA: the page holding the start of the init code."""
        return self.init_pa & PAGE_MASK

    def crosses_page(self) -> bool:
        return (self.idmap_start ^ (self.idmap_end - 1)) & PAGE_MASK != 0

    def alloc_page(self, what: str) -> int:
        """A zeroed page for the kernel (the real kernel's __get_free_page): allocated upwards from
        the end of the image in the kernel's bank."""
        if self.alloc_next + PAGE_SIZE > self.alloc_limit:
            raise ConfigError(f"RAM too small: no free page left for {what} "
                              f"(the bank holding the kernel ends at {self.alloc_limit:#x})")
        pa = self.alloc_next
        self.alloc_next += PAGE_SIZE
        return pa


def place_image(banks: list[Bank], page_offset: int, text_offset: int, idmap_offset: Optional[int],
                init_size: int, hyp_text_size: int, trampoline_va: int, *, reserved: int = 0,
                hyp_text_offset: Optional[int] = None) -> Layout:
    """Place the image in the first bank: a page of PL1 code, the HYP init code (at
    ``idmap_offset`` from the image start, or on its own page), the runtime HYP text and a data page.
    A prebuilt image (an ELF) fixes more: its code occupies ``reserved`` bytes from the image start
    (hypemu's own pages go after them) and its runtime text may sit at ``hyp_text_offset``.
    Raises ConfigError for a layout the kernel could not even load."""
    first = banks[0]
    image_base = first.base + text_offset
    idmap_start = image_base + (PAGE_SIZE if idmap_offset is None else idmap_offset)
    idmap_end = idmap_start + init_size
    if idmap_offset is not None and idmap_offset < PAGE_SIZE:
        raise ConfigError(f"kernel.hyp_idmap_offset {idmap_offset:#x} overlaps the kernel's first "
                          f"page of PL1 code (it must be at least {PAGE_SIZE:#x})")
    occupied = image_base + reserved
    if hyp_text_offset is None:
        hyp_text = page_align_up(max(idmap_end, occupied))
    else:
        hyp_text = image_base + hyp_text_offset
        if hyp_text < image_base + PAGE_SIZE or (hyp_text < idmap_end and idmap_start < hyp_text
                                                 + hyp_text_size):
            raise ConfigError(f"the runtime HYP text at {hyp_text:#x} overlaps the PL1 page or "
                              f"the init code [{idmap_start:#x}, {idmap_end:#x})")
    hyp_data = page_align_up(max(hyp_text + hyp_text_size, idmap_end, occupied))
    image_end = hyp_data + PAGE_SIZE
    if image_end > first.end:
        raise ConfigError(f"RAM too small: the kernel image needs {image_end - first.base:#x} bytes "
                          f"from {first.base:#x}, the first bank has {first.size:#x}")
    alloc_limit = first.end
    if page_offset + (first.end - first.base) > VMALLOC_MIN:
        alloc_limit = first.base + (VMALLOC_MIN - page_offset)   # allocate from lowmem only
    return Layout(banks=list(banks), page_offset=page_offset, image_base=image_base,
                  pl1_text=image_base, idmap_start=idmap_start, idmap_end=idmap_end,
                  hyp_text=hyp_text, hyp_text_size=hyp_text_size, hyp_data=hyp_data,
                  image_end=image_end, trampoline_va=trampoline_va, alloc_next=image_end,
                  alloc_limit=alloc_limit)


def check_trampoline(layout: Layout) -> None:
    """The refusals of kvm_mmu_init() about the trampoline and the idmap (docs/DESIGN.md section 1)."""
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
    init_end = layout.init_pa + layout.init_size
    first, last = layout.init_pa & PAGE_MASK, (init_end - 1) & PAGE_MASK
    if first <= va <= last:
        raise ConfigError(f"the HYP idmap [{layout.init_pa:#x}, {init_end:#x}) overlaps the "
                          f"trampoline page at {va:#x}: RAM reaches the top of the 4 GiB space")


def check_idmap(layout: Layout) -> None:
    """The init code must have a 32-bit PA for HYP (32-bit VAs) to run it through an identity map."""
    if layout.init_pa + layout.init_size > FOUR_GIB:
        raise ConfigError(f"HYP init code at PA {layout.init_pa:#x} is above 4 GiB: a 32-bit HYP VA "
                          f"cannot identity-map it")
