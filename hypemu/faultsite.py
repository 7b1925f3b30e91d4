"""Where a guest fault happened, in the layout's words: a fetch at a trampoline VA that is not init
code, a fetch past the trampoline page, an undefined instruction that is the image poison.

Why: a bare ``undefined instruction 0xe7fdeaf0`` at ``0xffff003c`` is true but readable only to one
who knows the poison filler and the trampoline's VA range; the result's reason says what the
layout makes of that PC instead (the fault itself is unchanged).
"""

from __future__ import annotations

from .cpu.context import FaultRecord
from .layout import Layout
from .loader import IMAGE_POISON
from .lpae import PAGE_SIZE

POISON_NOTE = ("udf #0xdea0, the filler of kernel-image memory where no code is loaded: "
               "execution left the code")


def note(record: FaultRecord, layout: Layout, trampoline: bool) -> str:
    """What to append to the fault's detail: `` (poison ...)``, ``: the fetch at ...``; empty when
    the layout has nothing to say about it."""
    text = ""
    if record.kind == "undefined" and record.detail == f"undefined instruction {IMAGE_POISON:#010x}":
        text = f" ({POISON_NOTE})"
    where = _trampoline_note(record.pc, layout) if trampoline else ""
    return text + (f": {where}" if where else "")


def _trampoline_note(pc: int, layout: Layout) -> str:
    """A fetch inside the trampoline page but outside the init code it maps, or just past it."""
    va, pa = layout.trampoline_va, layout.trampoline_pa
    page = f"the trampoline page [{va:#x}, {va + PAGE_SIZE:#x}) -> {pa:#x}"
    init_end = layout.init_pa + layout.init_size
    if va + PAGE_SIZE <= pc < va + 2 * PAGE_SIZE:
        return f"the fetch at {pc:#x} ran past the end of {page}"
    if not va <= pc < va + PAGE_SIZE:
        return ""
    target = pa + (pc - va)
    if layout.init_pa <= target < init_end:
        return ""
    why = ""
    if layout.crosses_page() and layout.bounce_page is None:
        why = (f"; the init code crosses into the page at {pa + PAGE_SIZE:#x} with no bounce page, "
               f"which the trampoline does not map")
    return (f"the fetch at {pc:#x} in {page} reads PA {target:#x}, outside the HYP init code "
            f"[{layout.init_pa:#x}, {init_end:#x}){why}")
