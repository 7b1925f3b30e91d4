"""What the HYP MMU did, into the event log, when the log asks for detail (``EventLog.detailed``:
``hypemu run --trace``, ``--events``, ``Machine(trace=True)``).

Why a module of its own: the fill decision (``fill``) is the hot path; it only tests a flag and
calls here, so a run without the detail pays nothing more. The events are plain data (descriptor
PAs and values, the entry and where it came from); the words are built by ``hypemu.tracer`` when
someone reads them. Every function runs at a soft-TLB fill or a trapped instruction, never per
guest instruction.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Union

from .. import events
from ..tlb import entry_data
from ..walker import Fault, Translation, same_mapping, walk
from .context import ExecContext
from .state import REG_PC

Read64 = Callable[[int], int]


def _fault_data(f: Fault) -> dict[str, Any]:
    return {"type": f.type, "level": f.level}


def _descriptors(read64: Read64, pas: tuple[int, ...], last_level: int) -> list[dict[str, Optional[int]]]:
    """Each descriptor a walk read: its level (the last one is ``last_level``), PA and value
    (read again now: nothing ran since the walk read it)."""
    first = last_level - len(pas) + 1
    out = []
    for i, pa in enumerate(pas):
        try:
            value: Optional[int] = read64(pa)
        except LookupError:      # no memory there: the walk's external abort
            value = None
        out.append({"level": first + i, "pa": pa, "value": value})
    return out


def _exact(access: str, page_va: int, pc: int) -> Optional[int]:
    """The exact VA of the access when the fill knows it: a fetch is of the PC (in the page).
    (A data access's exact VA would need the replay the checks use; the page is given.)"""
    return pc if access == "fetch" and pc >> 12 == page_va >> 12 else None


def access_count(ctx: ExecContext, access: str) -> Optional[int]:
    """The instruction count of the instruction an access is for: a fetch fill comes as Unicorn
    translates a block, before it counts the block's first instruction, which is the one
    fetched; a data access comes while its instruction runs (counted)."""
    count = ctx.log.clock()
    return count + 1 if count is not None and access == "fetch" else count


def walked(ctx: ExecContext, va: int, access: str, result: Union[Translation, Fault],
           read64: Read64) -> None:
    """A walk of the running CPU's HTTBR for a fill: every descriptor read, and the result."""
    st = ctx.st
    level = result.level
    pc = ctx.regs.read(REG_PC)
    data: dict[str, Any] = {"access": access, "exact": _exact(access, va, pc),
                            "ttbr": st.sysregs["HTTBR"],
                            "t0sz": st.sysregs["HTCR"] & 7,
                            "descriptors": _descriptors(read64, result.descriptors, level)}
    if isinstance(result, Fault):
        data["fault"] = _fault_data(result)
    else:
        data["entry"] = entry_data(result, None)
        data["unpredictable"] = list(result.unpredictable)
    ctx.log.record(events.WALK, "walk", va, pc, "", data, access_count(ctx, access))


def filled(ctx: ExecContext, va: int, access: str, hit: Optional[Translation],
           trans: Translation, fault: Optional[Fault], read64: Read64) -> None:
    """A soft-TLB fill served by ``trans``: from the TLB model (``hit``) or from the walk just
    recorded. A hit is walked again, as it is in memory now: when that differs the hit is
    served stale (as hardware may), and the event says so with the entry's origin."""
    st = ctx.st
    pc = ctx.regs.read(REG_PC)
    data: dict[str, Any] = {"access": access, "exact": _exact(access, va, pc),
                            "source": "tlb" if hit is not None else "walk",
                            # a walk's entry is new: it has no origin until it is filled
                            "entry": entry_data(trans, st.tlb.origin(trans) if hit is not None else None)}
    name = "fill"
    if hit is not None:
        fresh = walk(read64, st.hyp_regime(), va, access)
        if not same_mapping(hit, fresh, va):
            name = "stale"
            data["fresh"] = (_fault_data(fresh) if isinstance(fresh, Fault)
                             else entry_data(fresh, None))
    if fault is not None:
        data["fault"] = _fault_data(fault)
    ctx.log.record(events.FILL, name, va, pc, "", data, access_count(ctx, access))


def evicted(ctx: ExecContext, t: Translation) -> None:
    """The TLB model dropped ``t`` to make room (its capacity, FIFO)."""
    data = {"entry": entry_data(t, ctx.st.tlb.origin(t))}
    ctx.log.record(events.FILL, "evict", t.va, ctx.regs.read(REG_PC), "", data)
