"""Planning a board, before it exists: the layout, the guest image linked at its place (with the
code patches of ``skip``), and the HYP tables built in Python.

Every refusal of the kernel side (``ConfigError``) happens here, exactly as ``kvm_mmu_init()``
decides them before the first HVC, so a refused layout costs the plan, not a Unicorn instance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..errors import GuestContractError
from ..layout import ConfigError, Layout, place_image
from ..lpae import PAGE_SIZE
from ..loader import INIT_START, GuestImage, Placement
from .config import KernelConfig
from ..guest_abi import guest_constants
from .designs import DESIGNS, HypTables, InitDesign
from .tables import PlanMemory, TableBuilder

STUB_OFFSET = 0x100              # the stub's place in the PL1 page
SENTINEL_OFFSET = PAGE_SIZE - 4  # the PL1 return sentinel: the last word of that page


@dataclass
class BoardPlan:
    """Everything the kernel side puts on the board, decided."""

    config: KernelConfig
    design: InitDesign
    layout: Layout
    image: GuestImage
    tables: HypTables
    table_pages: dict[int, bytes]    # PA -> content of every HYP table page

    @property
    def sentinel(self) -> int:
        return self.layout.pl1_text + SENTINEL_OFFSET


def placement(layout: Layout) -> Placement:
    """Where the regions go: the PL1 code and the stub in the image's first page, the init code at
    the idmap start, the runtime text linked at its kernel VA (== its HYP VA)."""
    base = {"pl1": layout.pl1_text, "stub": layout.pl1_text + STUB_OFFSET,
            "init": layout.init_start, "runtime": layout.kva(layout.hyp_text)}
    return Placement(base=base, load_pa={**base, "runtime": layout.hyp_text})


def _link(config: KernelConfig, layout: Layout) -> GuestImage:
    consts = guest_constants(config.trampoline_va, config.call_abi, layout.kva(layout.hyp_data))
    image = config.source.link(placement(layout), consts)
    _check_pl1_page(image, layout.pl1_text + SENTINEL_OFFSET)
    start = image.init.address(INIT_START)   # the first thing in it: the loader checked
    if start & 0x1F:
        raise ConfigError(f"{INIT_START} at {start:#x} is not 32-byte aligned (HVBAR[4:0] are RES0)")
    return image


def _check_pl1_page(image: GuestImage, sentinel: int) -> None:
    """The PL1 code, then the stub (code and data), then the sentinel: one page, no overlap (a
    stub that a vmlinux places elsewhere is not in that page)."""
    in_page = sentinel - SENTINEL_OFFSET <= image.stub.base < sentinel
    if in_page and (image.pl1.end > image.stub.base or image.stub.end > sentinel):
        raise GuestContractError("hyp.stub", f"{image.stub.filename}: the stub is "
                                 f"{len(image.stub.code):#x} bytes: with the PL1 code it must fit "
                                 f"in [{image.stub.base:#x}, {sentinel:#x}) (the PL1 page before "
                                 f"its return sentinel)")


def _unpatched(image: GuestImage) -> GuestImage:
    return image


def plan_board(config: KernelConfig,
               patch_code: Callable[[GuestImage], GuestImage] = _unpatched) -> BoardPlan:
    """Plan the board for ``config``; ``patch_code`` edits the linked image before its tables are
    built (the injector's first phase). Raises ConfigError for a layout the kernel refuses."""
    design = DESIGNS[config.design]()
    sizes = config.source.sizes(guest_constants(config.trampoline_va, config.call_abi))
    fixed = config.source.fixed()
    layout = place_image(list(config.banks), config.page_offset, config.text_offset,
                         config.hyp_idmap_offset, sizes[0], sizes[1], config.trampoline_va,
                         reserved=fixed.reserved, hyp_text_offset=fixed.hyp_text_offset)
    design.place(layout, config.bounce_page)
    for cpu in range(config.cpus):
        layout.stacks.append(layout.alloc_page(f"cpu{cpu}'s HYP stack"))
    image = patch_code(_link(config, layout))
    mem = PlanMemory()
    tables = design.build_tables(TableBuilder(mem, layout, design.trampoline))
    layout.boot_pgd, layout.runtime_pgd = tables.boot, tables.runtime
    layout.has_trampoline = design.trampoline
    pages = {pa: bytes(page) for pa, page in mem.pages.items()}
    return BoardPlan(config, design, layout, image, tables, pages)
