"""Exceptions taken to HYP mode, exception return (ERET), and the faults a run ends with.

Why here: entry to HYP is one rule (ARM ARM B1.8 "Exception handling", pseudocode EnterHypMode())
used by HVC, trapped instructions, undefined instructions and aborts; an abort's HSR comes from
``syndrome.hsr_for_abort``, the one encoder of abort syndromes.
"""

from __future__ import annotations

from typing import Optional

from .. import cp15, events, syndrome
from ..syndrome import Abort, ExternalAbort
from ..walker import Fault
from .context import ExecContext, FaultRecord
from .state import (CPSR_A, CPSR_E, CPSR_F, CPSR_I, CPSR_IT_J, CPSR_T, MODE_HYP, MODE_NAMES,
                    NotModelled)

# HYP vector offsets (ARM ARM B1.8.1, Table B1-3)
VEC_UNDEF, VEC_HVC, VEC_PABT, VEC_DABT, VEC_TRAP = 0x04, 0x08, 0x0C, 0x10, 0x14
VECTOR_NAMES = {VEC_UNDEF: "undefined", VEC_HVC: "hvc", VEC_PABT: "prefetch_abort",
                VEC_DABT: "data_abort", VEC_TRAP: "hyp_trap"}


def enter_hyp(ctx: ExecContext, vector: int, return_address: int, hsr: Optional[int],
              pc: Optional[int] = None) -> None:
    """EnterHypMode: SPSR_hyp <- CPSR, ELR_hyp <- return address, CPSR.M <- HYP, IT/J cleared,
    T <- HSCTLR.TE, E <- HSCTLR.EE, A/I/F set (no Monitor is modelled, so SCR routes nothing away
    from HYP). From another mode the vector is 0x14 (the HYP trap vector). ``pc``: the instruction
    that caused it, when the return address is not that instruction.

    Thumb: SPSR_hyp keeps T and the ITSTATE of the instruction the return address is (callers
    that return past an instruction advance it first); ELR_hyp is the preferred return address
    itself, in either state, with no offset (ARM ARM B1.8.3, "Exception return" and Table B1-7:
    the offsets there are for PL1 modes' LR; HYP's ELR_hyp holds the preferred return address):
    the HVC's next instruction (HVC is 32-bit in both states), the trapped, undefined or
    aborting instruction itself. The vector runs in the state HSCTLR.TE names."""
    st = ctx.st
    old_cpsr = ctx.cpsr()
    if st.mode != MODE_HYP:
        vector = VEC_TRAP
    if ctx.observer.enabled:
        ctx.observer.exception_entry(st.id, return_address if pc is None else pc,
                                     st.sysregs["HVBAR"] & ~cp15.HVBAR_RES0)
    hsctlr = st.sysregs["HSCTLR"]
    new = (old_cpsr & ~(0x1F | CPSR_IT_J | CPSR_T | CPSR_E)) | MODE_HYP | CPSR_A | CPSR_I | CPSR_F
    thumb = bool(hsctlr & cp15.HSCTLR_TE)
    if thumb:
        new |= CPSR_T
    if hsctlr & cp15.HSCTLR_EE:
        new |= CPSR_E
    ctx.set_cpsr(new)
    st.spsr[MODE_HYP] = old_cpsr
    st.elr_hyp = return_address
    if hsr is not None:
        st.sysregs["HSR"] = hsr
    target = (st.sysregs["HVBAR"] & ~cp15.HVBAR_RES0) + vector
    data = None
    if ctx.log.detailed:
        data = {"vector": vector, "target": target, "elr": return_address, "spsr": old_cpsr,
                "hsr": hsr, "cpsr": new, "from_pc": return_address if pc is None else pc}
    ctx.record(events.EXCEPTION, VECTOR_NAMES[vector], hsr, return_address,
               f"-> {target:#x}" + (" (Thumb)" if thumb else ""), data)
    ctx.branch(target, thumb)


def call_registers(ctx: ExecContext) -> dict[str, int]:
    """r0-r3 of the running CPU: what a call passes (at HVC) or returns (at ERET)."""
    return {f"r{n}": ctx.reg(n) for n in range(4)}


def hvc_target(ctx: ExecContext) -> int:
    """Where an HVC of the running CPU goes: the HVC vector from HYP, the HYP trap vector from
    another mode (EnterHypMode)."""
    vector = VEC_HVC if ctx.st.mode == MODE_HYP else VEC_TRAP
    return (ctx.st.sysregs["HVBAR"] & ~cp15.HVBAR_RES0) + vector


def eret(ctx: ExecContext, pc: int) -> None:
    """ERET in HYP: CPSR <- SPSR_hyp (T and ITSTATE included), PC <- ELR_hyp (ARM ARM B9.3.3); a
    context synchronization event. The return address is aligned to the state returned to:
    ELR_hyp[0] is ignored for Thumb, ELR_hyp[1:0] for ARM (ARMv7 leaves ELR_hyp[1:0] = 0b10 in ARM
    state UNPREDICTABLE; ARMv8 AArch32 ignores the low bits, and so does hypemu)."""
    st = ctx.st
    if st.mode != MODE_HYP:
        raise NotModelled(f"cpu{st.id}: ERET from PL1 (an exception return to PL1) at {pc:#x}")
    spsr, target = st.spsr[MODE_HYP], st.elr_hyp
    thumb = bool(spsr & CPSR_T)
    target &= ~1 if thumb else ~3
    data = None
    if ctx.log.detailed:
        data = {**call_registers(ctx), "spsr": spsr, "target": target}
    ctx.record(events.ERET, "eret", target, pc,
               f"to {MODE_NAMES.get(spsr & 0x1F, hex(spsr & 0x1F))}" + (" (Thumb)" if thumb else ""),
               data)
    if ctx.observer.enabled:
        ctx.observer.barrier(st.id, "eret")
    ctx.set_cpsr(spsr)
    ctx.branch(target, thumb)


def undefined(ctx: ExecContext, pc: int, detail: str) -> FaultRecord:
    """An undefined instruction: from HYP it is taken to HYP (vector 0x04, HSR EC 0x00, IL=1);
    from PL1 it goes to PL1's own vectors, which hypemu does not model. Either way the flow did not
    expect it: the run stops with this fault."""
    hsr = None
    if ctx.st.mode == MODE_HYP:
        hsr = syndrome.encode_hsr(syndrome.EC_UNKNOWN, 0)
        enter_hyp(ctx, VEC_UNDEF, pc, hsr)
    return FaultRecord(ctx.st.id, "undefined", pc, None, None, None, hsr, detail)


def abort(ctx: ExecContext, refused: Abort, va: int, pc: int) -> FaultRecord:
    """A refused access of the instruction at ``pc``, at its exact ``va``: from HYP a prefetch or
    data abort taken to HYP (HSR, HIFAR/HDFAR); from PL1 (not modelled) only the fault record."""
    access = refused.access
    exact: Abort
    if isinstance(refused, ExternalAbort):
        exact = ExternalAbort(va, access)
        fsc_name, level = "external", None
    else:
        exact = Fault(refused.type, refused.level, va, access, refused.s1ptw, refused.descriptors)
        fsc_name, level = exact.type, exact.level
    hsr = None
    fetch = access == "fetch"
    if ctx.st.mode == MODE_HYP:
        hsr = syndrome.hsr_for_abort(exact, taken_from_hyp=True)
        ctx.st.sysregs["HIFAR" if fetch else "HDFAR"] = va
        enter_hyp(ctx, VEC_PABT if fetch else VEC_DABT, pc, hsr)
    kind = "prefetch_abort" if fetch else "data_abort"
    return FaultRecord(ctx.st.id, kind, pc, va, fsc_name, level, hsr, f"{access} of {va:#x}")
