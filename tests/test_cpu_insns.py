"""One trapped instruction at a time against ``cpu.state`` + ``cpu.insns``, with no engine and no
board: a dict register file, the CPU state and an ``ExecContext``. Expected values are computed by
hand from the ARM ARM (HSR layout B3.13.6, HYP vectors B1.8.1, EnterHypMode)."""

from __future__ import annotations

from hypemu import cp15, events, lpae
from hypemu.cpu import insns
from hypemu.cpu.context import ExecContext
from hypemu.cpu.state import (CPSR_A, CPSR_F, CPSR_I, MODE_HYP, MODE_SVC, REG_CPSR, REG_PC, REG_SP,
                              CpuState, DictRegisters)
from hypemu.decode import PATTERNS, decode_insn
from hypemu.hazards import Checks
from hypemu.observer import NullObserver
from hypemu.tlb import TLB
from hypemu.walker import Translation

PC = 0x8000_1000
MCR_HVBAR_R0 = 0xEE8C0F10       # mcr p15, 4, r0, c12, c0, 0
MCREQ_HVBAR_R0 = 0x0E8C0F10     # the same with cond EQ
TLBIMVAHIS_R0 = 0xEE880F33      # mcr p15, 4, r0, c8, c3, 1
HVC_F5 = 0xE1400F75             # hvc #0xF5
ERET = 0xE160006E
CPSID_I = 0xF10C0080
MSR_CPSR_C_R1 = 0xE121F001      # msr CPSR_c, r1


class Recorder(NullObserver):
    """An observer that keeps what it is told."""

    enabled = True

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def sysreg_written(self, cpu, name, old, pc):
        self.calls.append(("sysreg", cpu, name, old, pc))

    def tlbi(self, cpu, removed, op, pc):
        self.calls.append(("tlbi", cpu, {c: list(ts) for c, ts in removed.items()}, op, pc))

    def exception_entry(self, cpu, pc, vector_base):
        self.calls.append(("exception", cpu, pc, vector_base))

    def barrier(self, cpu, kind):
        self.calls.append(("barrier", cpu, kind))


def board(ncpus: int = 1, mode: int = MODE_SVC, observer=None) -> ExecContext:
    cpus = [CpuState(i, TLB()) for i in range(ncpus)]
    for st in cpus:
        st.online = True
    ctx = ExecContext(cpus, DictRegisters(), events.EventLog(), observer or NullObserver())
    ctx.set_cpsr(mode | CPSR_A | CPSR_I | CPSR_F)
    ctx.regs.write(REG_PC, PC)
    return ctx


def entry(va: int) -> Translation:
    return Translation(va=va, pa=va, level=3, size=4096, attrs=lpae.LeafAttrs(), mair_attr=0xFF,
                       memtype="normal", readable=True, writable=True, executable=True,
                       descriptors=(0x9000_0000 + (va >> 12 & 0x1FF) * 8,))


def test_mcr_hvbar_in_hyp_clears_the_res0_bits_and_steps():
    ctx = board(mode=MODE_HYP)
    ctx.set_reg(0, 0x8000_123F)
    insns.execute(ctx, MCR_HVBAR_R0, PC)
    assert ctx.st.sysregs["HVBAR"] == 0x8000_1220        # bits [4:0] RES0
    assert ctx.regs.read(REG_PC) == PC + 4 and ctx.fault is None
    last = ctx.log.events[-1]
    assert (last.kind, last.name, last.value, last.pc, last.insn) == \
        (events.SYSREG, "HVBAR", 0x8000_1220, PC, MCR_HVBAR_R0)


def test_hvbar_row_names_its_write_behaviour():
    assert cp15.BY_NAME["HVBAR"].write is cp15.write_hvbar
    assert cp15.BY_NAME["HTTBR"].write is cp15.write_regime


def test_mcr_hvbar_from_svc_is_undefined_and_taken_to_pl1():
    ctx = board(mode=MODE_SVC)
    ctx.set_reg(0, 0x8000_1000)
    insns.execute(ctx, MCR_HVBAR_R0, PC)
    assert ctx.fault is not None and (ctx.fault.kind, ctx.fault.pc, ctx.fault.hsr) == \
        ("undefined", PC, None)                          # PL1's vectors: not modelled
    assert ctx.st.sysregs["HVBAR"] == 0 and ctx.st.mode == MODE_SVC
    assert ctx.regs.read(REG_PC) == PC


def test_a_failed_condition_steps_over_the_instruction():
    ctx = board(mode=MODE_HYP)
    ctx.set_reg(0, 0x8000_2000)
    ctx.regs.write(REG_CPSR, ctx.regs.read(REG_CPSR) & ~(1 << 30))   # Z clear: EQ fails
    insns.execute(ctx, MCREQ_HVBAR_R0, PC)
    assert ctx.st.sysregs["HVBAR"] == 0 and ctx.regs.read(REG_PC) == PC + 4


def test_hvc_from_svc_enters_hyp_at_the_trap_vector_and_eret_returns():
    ctx = board(mode=MODE_SVC)
    ctx.st.sysregs["HVBAR"] = 0x8000_0000
    ctx.regs.write(REG_SP, 0xC080_0000)                  # SP_svc
    ctx.st.sp[MODE_HYP] = 0x8010_0000
    insns.execute(ctx, HVC_F5, PC)
    st = ctx.st
    # EC 0x12 << 26 | IL << 25 | imm16 0xF5
    assert st.sysregs["HSR"] == 0x4A00_00F5
    assert ctx.regs.read(REG_PC) == 0x8000_0014          # from PL1: the HYP trap vector
    assert st.mode == MODE_HYP and st.elr_hyp == PC + 4
    assert st.spsr[MODE_HYP] == 0x1D3                    # SVC with A, I, F
    assert ctx.cpsr() & 0x1FF == 0x1DA                   # HYP with A, I, F
    assert ctx.regs.read(REG_SP) == 0x8010_0000          # SP_hyp banked in
    assert [e.kind for e in ctx.log.events] == [events.HVC, events.EXCEPTION]
    insns.execute(ctx, ERET, 0x8000_0014)
    assert st.mode == MODE_SVC and ctx.regs.read(REG_PC) == PC + 4
    assert ctx.regs.read(REG_SP) == 0xC080_0000 and st.sp[MODE_HYP] == 0x8010_0000


def test_tlbimvahis_removes_the_va_on_every_online_cpu_and_says_what():
    seen = Recorder()
    ctx = board(ncpus=3, mode=MODE_HYP, observer=seen)
    kept, gone = entry(0xC000_1000), [entry(0xC000_0000) for _ in range(3)]
    for st, e in zip(ctx.cpus, gone):
        st.tlb.fill(e)
    ctx.cpus[0].tlb.fill(kept)
    ctx.cpus[2].online = False                           # not in the domain
    ctx.set_reg(0, 0xC000_0ABC)                          # bits [11:0] ignored
    insns.execute(ctx, TLBIMVAHIS_R0, PC)
    assert ctx.cpus[0].tlb.entries() == [kept] and len(ctx.cpus[1].tlb) == 0
    assert ctx.cpus[2].tlb.entries() == [gone[2]]
    assert seen.calls == [("tlbi", 0, {0: [gone[0]], 1: [gone[1]]}, "TLBIMVAHIS", PC)]
    # the event names the VA the operation acts on (the operand's bits [31:12])
    assert (ctx.log.events[-1].kind, ctx.log.events[-1].value) == (events.TLBI, 0xC000_0000)


def test_cpsid_sets_i_and_msr_cannot_change_the_mode():
    ctx = board(mode=MODE_SVC)
    ctx.set_cpsr(MODE_SVC | CPSR_A | CPSR_F)             # I clear
    insns.execute(ctx, CPSID_I, PC)
    assert ctx.cpsr() & CPSR_I and ctx.regs.read(REG_PC) == PC + 4
    ctx.set_reg(1, MODE_HYP | CPSR_A | CPSR_I | CPSR_F)
    insns.execute(ctx, MSR_CPSR_C_R1, PC + 4)
    assert ctx.st.mode == MODE_SVC                       # UNPREDICTABLE: the mode is kept
    assert ctx.log.events[-1].kind == events.UNPREDICTABLE


def test_every_decoded_operation_has_semantics():
    assert {p.op for p in PATTERNS} - {None} == set(insns.SEMANTICS)
    insn = decode_insn(TLBIMVAHIS_R0)
    assert insn is not None
    assert (insn.op, insn.opc1, insn.crn, insn.crm, insn.opc2, insn.rt) == ("mcr", 4, 8, 3, 1, 0)


class FakeView:
    """The CPUs as the checks see them, without a CPU: one CPU whose TLB holds ``entries``."""

    ncpus = 1

    def __init__(self, entries):
        self.entries = entries

    def tlb_entries(self, cpu):
        return self.entries


def test_checks_judge_a_kernel_side_descriptor_write_through_the_view_alone():
    log = events.EventLog()
    cached = entry(0xC000_0000)
    checks = Checks(FakeView([cached]), log)
    slot = cached.descriptors[0]
    old = lpae.encode_page(0x8000_0000, lpae.PAGE_HYP)
    new = lpae.encode_page(0x8020_0000, lpae.PAGE_HYP)   # another output address: needs BBM
    checks.descriptor_stored(slot, old, new)
    assert [(h.kind, h.cpu, h.va) for h in checks.hazards] == [("bbm", None, 0xC000_0000)]
    assert (log.events[-1].kind, log.events[-1].name) == (events.HAZARD, "bbm")
    checks.descriptor_stored(slot, new, new | (1 << 54))  # XN only: no BBM needed
    assert len(checks.hazards) == 1


MCR_HSCTLR_R0 = 0xEE810F10      # mcr p15, 4, r0, c1, c0, 0
MCR_HTCR_R0 = 0xEE820F50        # mcr p15, 4, r0, c2, c0, 2


def test_a_translation_register_flushes_the_soft_tlb_only_where_it_changes_the_regime():
    """With the HYP MMU off the regime is flat whatever HTCR/HTTBR/HMAIRn hold: Unicorn's
    entries stay. Turning the MMU on flushes; so does a write while it is on, and turning it off
    after a fill made while it was on."""
    ctx = board(mode=MODE_HYP)
    flushes: list[str] = []
    ctx.flush_soft_tlb = lambda: flushes.append(ctx.st.sysregs["HSCTLR"] & cp15.HSCTLR_M and "on"
                                                or "off")
    ctx.drop_soft_tlb()                                   # a known start: nothing held
    flushes.clear()
    ctx.set_reg(0, 0x8080_3500)
    insns.execute(ctx, MCR_HTCR_R0, PC)                   # MMU off: flat before and after
    assert flushes == [] and ctx.st.regime is None        # (the walk's inputs are re-read)
    ctx.set_reg(0, cp15.HSCTLR_M)
    insns.execute(ctx, MCR_HSCTLR_R0, PC + 4)             # the MMU goes on
    assert flushes == ["on"]
    ctx.hyp_fills = False                                 # no fill since that flush:
    ctx.set_reg(0, 0x8080_3500)
    insns.execute(ctx, MCR_HTCR_R0, PC + 8)               # on: the regime changes all the same
    assert flushes == ["on", "on"]
    ctx.hyp_fills = True                                  # a fill with the MMU on (cpu.fill)
    ctx.set_reg(0, 0)
    insns.execute(ctx, MCR_HSCTLR_R0, PC + 12)            # the MMU goes off
    assert flushes == ["on", "on", "off"] and not ctx.hyp_fills
    insns.execute(ctx, MCR_HTCR_R0, PC + 16)              # off again, nothing of it held
    assert flushes == ["on", "on", "off"]
