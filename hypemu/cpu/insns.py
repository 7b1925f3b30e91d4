"""The semantics of the trapped instructions: one handler per operation of ``decode.PATTERNS``,
in the table ``SEMANTICS`` (every handler's caller is ``execute``).

Why a table next to the decoder's: the decoder says what a word is, this says what it does, and a
new instruction is one pattern row and one handler row. Handlers act on an ``ExecContext``, so one
instruction can be tested against ``state.DictRegisters`` without an engine.
"""

from __future__ import annotations

from typing import Callable, Optional

from .. import cp15, events, syndrome
from ..decode import (BARRIER_MASK, BARRIERS, T32_BARRIERS, Insn, condition_passed, decode_insn,
                      decode_thumb, it_advance, thumb_condition)
from .context import ExecContext
from .exceptions import (VEC_HVC, VEC_TRAP, call_registers, enter_hyp, eret, hvc_target,
                         undefined)
from .state import (MODE_HYP, MODE_NAMES, MODE_SVC, MODE_USR, REG_CPSR, REG_LR, REG_SP,
                    NotModelled, bank_of_lr, itstate, with_itstate)

# CPSRWriteByInstr (ARM ARM B1.3.3 pseudocode), not an exception return: per MSR field byte, the
# bits an instruction may write. f: N Z C V Q (not IT[1:0], J); s: GE (bits[23:20] reserved);
# x: E and A (not IT[7:2]); c: I, F and M (not T). Privileged modes only (User is not modelled).
CPSR_WRITABLE = (0x000000DF, 0x00000300, 0x000F0000, 0xF8000000)
# MRS Rd, CPSR reads the execution state bits other than E as zero (ARM ARM B9.3.10 MRS)
MRS_CPSR_MASK = 0xF8FF03DF
# Non-secure PL1 reads of MIDR / MPIDR return VPIDR / VMPIDR (ARM ARM B4.1.105, B4.1.106)
VIRTUALIZED_ID = {"MIDR": "VPIDR", "MPIDR": "VMPIDR"}
HCR_TSC = 1 << 19
HCR_TWE = 1 << 14
EC_WFI_WFE = 0x01

# Banked registers (ARM ARM B9.2.3, Table B9-2): (R, SYSm) -> (kind, mode)
BANKED = {
    **{(0, n): (f"r{8 + n}", MODE_USR) for n in range(5)},   # R8_usr-R12_usr: no FIQ modelled,
    (0, 0b00101): ("sp", MODE_USR), (0, 0b00110): ("lr", MODE_USR),  # so they are r8-r12
    (0, 0b10010): ("lr", MODE_SVC), (0, 0b10011): ("sp", MODE_SVC),
    (0, 0b11110): ("elr", MODE_HYP), (0, 0b11111): ("sp", MODE_HYP),
    (1, 0b10010): ("spsr", MODE_SVC), (1, 0b11110): ("spsr", MODE_HYP),
}

Handler = Callable[[ExecContext, Insn, int], None]


def execute(ctx: ExecContext, word: int, pc: int) -> None:
    """Emulate the trapped instruction ``word`` at ``pc``: it sets PC, enters an exception, or
    ends the run with ``ctx.fault``. The events it records carry its word."""
    log = ctx.log
    log.trap_pc, log.trap_word, log.trap_thumb = pc, word, False   # EventLog.trapped, inlined
    ctx.thumb, ctx.size = False, 4
    kind = BARRIERS.get(word & BARRIER_MASK)   # barrier_kind(word), without a call per trap
    if kind is not None:
        return barrier(ctx, kind, pc)
    insn = decode_insn(word)
    handler = SEMANTICS.get(insn.op) if insn is not None else None
    if insn is None or handler is None:
        ctx.fault = undefined(ctx, pc, f"undefined instruction {word:#010x}")
        return None
    if insn.cond != 0xE and not condition_passed(insn.cond, ctx.cpsr()):
        return ctx.next(pc)
    return handler(ctx, insn, pc)


def execute_thumb(ctx: ExecContext, value: int, size: int, pc: int) -> None:
    """``execute`` for Thumb state: ``value`` is a halfword (``size`` 2) or ``hw1 << 16 | hw2``.
    Inside an IT block the instruction's condition is ITSTATE's; one that fails it is not
    executed (it only advances ITSTATE). Unicorn skips a failing trapped instruction itself, so
    this check matters for the model's own callers (and costs one comparison otherwise)."""
    log = ctx.log
    log.trap_pc, log.trap_word, log.trap_thumb = pc, value, True
    ctx.thumb, ctx.size = True, size
    kind = T32_BARRIERS.get(value & BARRIER_MASK) if size == 4 else None
    insn = decode_thumb(value, size) if kind is None else None
    handler = SEMANTICS.get(insn.op) if insn is not None else None
    if kind is None and (insn is None or handler is None):
        ctx.fault = undefined(ctx, pc, f"undefined instruction {value:#0{2 + 2 * size}x} (Thumb)")
        return None
    cond = thumb_condition(itstate(ctx.cpsr()))
    if cond != 0xE and not condition_passed(cond, ctx.cpsr()):
        return ctx.next(pc)
    if kind is not None:
        return barrier(ctx, kind, pc)
    assert insn is not None and handler is not None
    return handler(ctx, insn, pc)


def barrier(ctx: ExecContext, kind: str, pc: int) -> None:
    """ISB, DSB or DMB (patched to trap only when an observer wants them): ISB synchronizes the
    context, DSB completes this CPU's TLB maintenance; the model has nothing else to order."""
    ctx.record(events.BARRIER, kind, None, pc)
    ctx.barrier(kind)
    ctx.next(pc)


# --- cp15 ---------------------------------------------------------------------------------------
def _sysreg(ctx: ExecContext, key: cp15.Key, write: bool) -> Optional[cp15.SysReg]:
    row = cp15.lookup(key)
    if row is None or (row.hyp_only and ctx.st.mode != MODE_HYP):
        return None
    if (write and not row.writable) or (not write and not row.readable):
        return None
    return row


def mcr(ctx: ExecContext, insn: Insn, pc: int) -> None:
    row = _sysreg(ctx, ("c", insn.opc1, insn.crn, insn.crm, insn.opc2), True)
    if row is None:
        ctx.fault = undefined(ctx, pc, f"MCR p15, {insn.opc1}, c{insn.crn}, c{insn.crm}, "
                                       f"{insn.opc2}")
        return
    row.write(ctx, row, ctx.reg(insn.rt), pc)   # the row's own write behaviour
    ctx.next(pc)


def mrc(ctx: ExecContext, insn: Insn, pc: int) -> None:
    row = _sysreg(ctx, ("c", insn.opc1, insn.crn, insn.crm, insn.opc2), False)
    if row is None:
        ctx.fault = undefined(ctx, pc, f"MRC p15, {insn.opc1}, c{insn.crn}, c{insn.crm}, "
                                       f"{insn.opc2}")
        return
    name = row.name
    if ctx.st.mode != MODE_HYP and name in VIRTUALIZED_ID:
        name = VIRTUALIZED_ID[name]   # Non-secure PL1 reads see the HYP-set virtual IDs
    value = ctx.st.sysregs[name]
    if insn.rt == 15:   # MRC to APSR_nzcv: the flags take bits [31:28]
        cpsr = ctx.regs.read(REG_CPSR)
        ctx.regs.write(REG_CPSR, (cpsr & 0x0FFFFFFF) | (value & 0xF0000000))
    else:
        ctx.set_reg(insn.rt, value)
    ctx.next(pc)


def mcrr(ctx: ExecContext, insn: Insn, pc: int) -> None:
    row = _sysreg(ctx, ("q", insn.opc1, insn.crm), True)
    if row is None:
        ctx.fault = undefined(ctx, pc, f"MCRR p15, {insn.opc1}, c{insn.crm}")
        return
    row.write(ctx, row, ctx.reg(insn.rt2) << 32 | ctx.reg(insn.rt), pc)
    ctx.next(pc)


def mrrc(ctx: ExecContext, insn: Insn, pc: int) -> None:
    row = _sysreg(ctx, ("q", insn.opc1, insn.crm), False)
    if row is None:
        ctx.fault = undefined(ctx, pc, f"MRRC p15, {insn.opc1}, c{insn.crm}")
        return
    value = ctx.st.sysregs[row.name]
    ctx.set_reg(insn.rt, value & 0xFFFFFFFF)
    ctx.set_reg(insn.rt2, value >> 32)
    ctx.next(pc)


def hint(ctx: ExecContext, insn: Insn, pc: int) -> None:
    """YIELD and WFE. No other CPU runs while this one does, so no event can arrive: WFE
    completes at once (the architecture allows a spurious wake-up; a WFE loop then spins until
    its condition holds or the budget runs out), as YIELD does. Not logged: a WFE loop would
    fill the event log. A WFE from PL1 with HCR.TWE set traps to HYP instead (ARM ARM B1.14.9):
    HSR EC 0x01, IL the instruction's size (0 for the 16-bit WFE), ISS CV = 1, COND, TI = 1
    (B3.13.6); the return address is the WFE itself."""
    if insn.imm == 2 and ctx.st.mode != MODE_HYP and ctx.st.sysregs["HCR"] & HCR_TWE:
        cond = insn.cond if not ctx.thumb else thumb_condition(itstate(ctx.cpsr()))
        iss = 1 << 24 | cond << 20 | 1
        enter_hyp(ctx, VEC_TRAP, pc, syndrome.encode_hsr(EC_WFI_WFE, iss, il=ctx.size == 4))
        return
    ctx.next(pc)


# --- HVC / SMC / ERET ---------------------------------------------------------------------------
def hvc(ctx: ExecContext, insn: Insn, pc: int) -> None:
    """HVC: from PL1 to the HYP trap vector (0x14), from HYP to the HVC vector (0x08); HSR EC
    0x12 with the immediate. In ARMv7 only SCR.HCE can make HVC UNDEFINED (HCR has no HCD bit;
    that is ARMv8's): no Security Extensions are modelled, and a boot loader that enters the
    kernel in HYP has set SCR.HCE, so HVC is always enabled here."""
    ctx.stats.hvcs += 1
    data = None
    if ctx.log.detailed:
        data = {**call_registers(ctx), "target": hvc_target(ctx)}
    ctx.record(events.HVC, "hvc", insn.imm, pc, "", data)
    if ctx.thumb and itstate(ctx.cpsr()):
        _hvc_in_it_block(ctx, pc)
    enter_hyp(ctx, VEC_HVC, pc + 4, syndrome.hsr_for_hvc(insn.imm), pc)


def _hvc_in_it_block(ctx: ExecContext, pc: int) -> None:
    """HVC inside an IT block is UNPREDICTABLE (B9.3.4). hypemu executes it (its condition
    passed) and saves the ITSTATE of the next instruction, which its return address is, as for
    SVC; and records the UNPREDICTABLE event."""
    cpsr = ctx.regs.read(REG_CPSR)
    ctx.record(events.UNPREDICTABLE, "HVC in an IT block", itstate(cpsr), pc,
               "executed; SPSR_hyp holds the advanced ITSTATE")
    ctx.regs.write(REG_CPSR, with_itstate(cpsr, it_advance(itstate(cpsr))))


def smc(ctx: ExecContext, insn: Insn, pc: int) -> None:
    """SMC from PL1 with HCR.TSC set traps to HYP (EC 0x13). Otherwise it enters Monitor mode
    (or is UNDEFINED when SCR.SCD is set): no Security Extensions are modelled, so that is
    NotModelled rather than a guess."""
    if ctx.st.mode != MODE_HYP and ctx.st.sysregs["HCR"] & HCR_TSC:
        enter_hyp(ctx, VEC_TRAP, pc, syndrome.encode_hsr(syndrome.EC_SMC, 0))
        return
    raise NotModelled(f"cpu{ctx.st.id}: SMC at {pc:#x} would enter Monitor mode (no Security "
                      f"Extensions are modelled)")


def eret_insn(ctx: ExecContext, insn: Insn, pc: int) -> None:
    eret(ctx, pc)


def exception_return(ctx: ExecContext, insn: Insn, pc: int) -> None:
    if ctx.st.mode == MODE_HYP:   # SUBS PC, LR and friends are UNDEFINED in HYP (B9.3.19;
        # in Thumb state SUBS PC, LR, #0 is ERET itself, decoded as such)
        ctx.fault = undefined(ctx, pc, "exception return other than ERET in HYP mode")
        return
    raise NotModelled(f"cpu{ctx.st.id}: exception return to PL1 at {pc:#x}")


# --- status registers ---------------------------------------------------------------------------
def mrs(ctx: ExecContext, insn: Insn, pc: int) -> None:
    value = ctx.st.spsr[ctx.st.mode] if insn.r else ctx.cpsr() & MRS_CPSR_MASK
    ctx.set_reg(insn.rt, value)
    ctx.next(pc)


def msr(ctx: ExecContext, insn: Insn, pc: int) -> None:
    _write_psr(ctx, insn, ctx.reg(insn.rt), pc)


def msr_imm(ctx: ExecContext, insn: Insn, pc: int) -> None:
    _write_psr(ctx, insn, insn.imm, pc)


def _write_psr(ctx: ExecContext, insn: Insn, value: int, pc: int) -> None:
    fields = 0
    for n in range(4):
        if insn.mask & (1 << n):
            fields |= (0xFF << (8 * n)) if insn.r else CPSR_WRITABLE[n]
    st = ctx.st
    if insn.r:
        st.spsr[st.mode] = (st.spsr[st.mode] & ~fields) | (value & fields)
        ctx.record(events.SYSREG, f"SPSR_{MODE_NAMES[st.mode]}", st.spsr[st.mode], pc)
    else:
        _write_cpsr_fields(ctx, (ctx.cpsr() & ~fields) | (value & fields), pc)
    ctx.next(pc)


def _write_cpsr_fields(ctx: ExecContext, new: int, pc: int) -> None:
    """MSR/CPS to the CPSR. A mode change this way cannot enter or leave HYP (UNPREDICTABLE in
    CPSRWriteByInstr(), ARM ARM B1.3.3): hypemu keeps the mode and records the attempt as an
    UNPREDICTABLE event."""
    if (new & 0x1F) != ctx.st.mode:
        ctx.record(events.UNPREDICTABLE, "mode change by MSR/CPS", new & 0x1F, pc,
                   "ignored: only exceptions and ERET change mode in hypemu")
        new = (new & ~0x1F) | ctx.st.mode
    ctx.set_cpsr(new)


def cps(ctx: ExecContext, insn: Insn, pc: int) -> None:
    new = ctx.cpsr()
    aif = insn.opc2 << 6
    if insn.mask == 0b10:
        new &= ~aif
    elif insn.mask == 0b11:
        new |= aif
    if insn.r:
        new = (new & ~0x1F) | insn.imm
    _write_cpsr_fields(ctx, new, pc)
    ctx.next(pc)


def mrs_banked(ctx: ExecContext, insn: Insn, pc: int) -> None:
    ctx.set_reg(insn.rt, _banked(ctx, insn, pc, None))
    ctx.next(pc)


def msr_banked(ctx: ExecContext, insn: Insn, pc: int) -> None:
    _banked(ctx, insn, pc, ctx.reg(insn.rt))
    ctx.next(pc)


def _banked(ctx: ExecContext, insn: Insn, pc: int, value: Optional[int]) -> int:
    """MRS/MSR (banked register). From PL1 only Monitor mode may reach the HYP bank and no mode
    may name its own bank (UNPREDICTABLE, ARM ARM B9.3.9): hypemu performs the access and records
    an UNPREDICTABLE event."""
    where = BANKED.get((insn.r, insn.sysm))
    if where is None:
        raise NotModelled(f"banked register R={insn.r} SYSm={insn.sysm:#07b} at {pc:#x}")
    kind, mode = where
    st = ctx.st
    own = mode == st.mode and kind != "elr"
    if own or (mode == MODE_HYP and st.mode != MODE_HYP):
        ctx.record(events.UNPREDICTABLE, f"banked access to {kind}_{MODE_NAMES[mode]}", value, pc,
                   f"from {MODE_NAMES[st.mode]} mode")
    return _banked_access(ctx, kind, mode, value, pc)


def _banked_access(ctx: ExecContext, kind: str, mode: int, value: Optional[int], pc: int) -> int:
    st = ctx.st
    live = (kind == "sp" and mode == st.mode) or (kind == "lr" and mode == bank_of_lr(st.mode))
    if kind.startswith("r"):   # R8_usr-R12_usr: the live r8-r12 outside FIQ mode
        n = int(kind[1:])
        if value is not None:
            ctx.set_reg(n, value)
        result = ctx.reg(n)
    elif kind == "elr":
        if value is not None:
            st.elr_hyp = value
        result = st.elr_hyp
    elif live:
        reg = REG_SP if kind == "sp" else REG_LR
        if value is not None:
            ctx.regs.write(reg, value)
        result = ctx.regs.read(reg)
    else:
        bank = {"sp": st.sp, "lr": st.lr, "spsr": st.spsr}[kind]
        if value is not None:
            bank[mode] = value
        result = bank[mode]
    if value is not None:
        ctx.record(events.SYSREG, f"{kind.upper()}_{MODE_NAMES[mode]}", value, pc)
    return result


# The semantics of each operation of decode.PATTERNS.
SEMANTICS: dict[str, Handler] = {
    "mcr": mcr, "mrc": mrc, "mcrr": mcrr, "mrrc": mrrc,
    "hint": hint,
    "hvc": hvc, "smc": smc, "eret": eret_insn, "exception_return": exception_return,
    "mrs": mrs, "msr": msr, "msr_imm": msr_imm, "cps": cps,
    "mrs_banked": mrs_banked, "msr_banked": msr_banked,
}
