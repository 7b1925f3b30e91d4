"""The CPUs: Unicorn runs the guest in its User mode; this module owns mode, banked registers, the
HYP and PL1 cp15 registers, HVC/ERET, exception entry to HYP, and translation (DESIGN.md section 2).

How the work is split:
- Every ordinary instruction runs natively in Unicorn's JIT (no per-instruction hook).
- Privileged instructions reach ``UC_HOOK_INSN_INVALID``; ``Core._trap`` decodes the word at PC and
  emulates it against the modelled CPU, sets PC and returns to the same ``emu_start``.
- ``UC_HOOK_TLB_FILL`` is the only path from a virtual address to a physical one: flat when the
  regime has no MMU (PL1 in hypemu; HYP with HSCTLR.M = 0), otherwise the per-CPU TLB model or a walk
  of the HYP tables. Unicorn's soft TLB is only a cache of the model: it is flushed whenever the model
  drops an entry or the regime changes (mode, HSCTLR/HTTBR/HTCR/HMAIR writes, CPU switch).
- CPUs run one at a time on one Unicorn whose register context is swapped.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Optional

from unicorn import UC_HOOK_INSN_INVALID, UC_HOOK_INTR, UC_HOOK_MEM_READ, UC_HOOK_MEM_WRITE
from unicorn import UC_HOOK_TLB_FILL, UC_MEM_FETCH, UC_MEM_WRITE, UC_PROT_EXEC, UC_PROT_READ
from unicorn import UC_PROT_WRITE
from unicorn.arm_const import UC_ARM_REG_CPSR, UC_ARM_REG_LR, UC_ARM_REG_PC, UC_ARM_REG_R0
from unicorn.arm_const import UC_ARM_REG_SP

from . import cp15, events, syndrome
from .decode import Insn, condition_passed, decode, is_wfi, needs_patch
from .engine import Engine
from .errors import NotModelled  # one errors module; re-exported here
from .layout import PAGE_MASK
from .events import Event
from .hazards import Checks, barrier_kind
from .tlb import TLB
from .walker import Fault, Regime, Translation, check_access, walk

MODE_USR = 0x10
MODE_SVC = 0x13
MODE_HYP = 0x1A
MODE_NAMES = {MODE_USR: "usr", MODE_SVC: "svc", MODE_HYP: "hyp"}

CPSR_FLAGS = 0xF80F0000           # N Z C V Q and GE: live in Unicorn
CPSR_T, CPSR_F, CPSR_I, CPSR_A, CPSR_E = 1 << 5, 1 << 6, 1 << 7, 1 << 8, 1 << 9
CPSR_IT_J = 0x0600FC00 | 1 << 24  # IT[7:0] and J: cleared on exception entry
RESET_CPSR = MODE_SVC | CPSR_A | CPSR_I | CPSR_F
# CPSRWriteByInstr (ARM ARM B1.3.3 pseudocode), not an exception return: per MSR field byte, the
# bits an instruction may write. f: N Z C V Q (not IT[1:0], J); s: GE (bits[23:20] reserved);
# x: E and A (not IT[7:2]); c: I, F and M (not T). Privileged modes only (User is not modelled).
CPSR_WRITABLE = (0x000000DF, 0x00000300, 0x000F0000, 0xF8000000)
# MRS Rd, CPSR reads the execution state bits other than E as zero (ARM ARM B9.3.10 MRS)
MRS_CPSR_MASK = 0xF8FF03DF
# Non-secure PL1 reads of MIDR / MPIDR return VPIDR / VMPIDR (ARM ARM B4.1.105, B4.1.106)
VIRTUALIZED_ID = {"MIDR": "VPIDR", "MPIDR": "VMPIDR"}

# HYP vector offsets (ARM ARM B1.8.1, Table B1-3)
VEC_UNDEF, VEC_HVC, VEC_PABT, VEC_DABT, VEC_TRAP = 0x04, 0x08, 0x0C, 0x10, 0x14
VECTOR_NAMES = {VEC_UNDEF: "undefined", VEC_HVC: "hvc", VEC_PABT: "prefetch_abort",
                VEC_DABT: "data_abort", VEC_TRAP: "hyp_trap"}

SENTINEL_WORD = 0xE7FDEAFD   # UDF #0xDEAD: where the PL1 caller returns; stops the run
PATCH_MARKER = 0xE7FA5AF5    # UDF #0xA5A5: stands for an instruction that would not trap
MAX_EVENTS = 200_000         # the event log's bound: a trap loop with a large budget cannot fill RAM

_ACCESS = {UC_MEM_FETCH: "fetch", UC_MEM_WRITE: "write"}

# Banked registers (ARM ARM B9.2.3, Table B9-2): (R, SYSm) -> (kind, mode)
BANKED = {
    **{(0, n): (f"r{8 + n}", MODE_USR) for n in range(5)},   # R8_usr-R12_usr: no FIQ modelled,
    (0, 0b00101): ("sp", MODE_USR), (0, 0b00110): ("lr", MODE_USR),  # so they are r8-r12
    (0, 0b10010): ("lr", MODE_SVC), (0, 0b10011): ("sp", MODE_SVC),
    (0, 0b11110): ("elr", MODE_HYP), (0, 0b11111): ("sp", MODE_HYP),
    (1, 0b10010): ("spsr", MODE_SVC), (1, 0b11110): ("spsr", MODE_HYP),
}


@dataclass
class FaultRecord:
    """An exception the flow did not expect, as the result reports it (DESIGN.md section 6)."""

    cpu: int
    kind: str                 # prefetch_abort | data_abort | undefined
    pc: int
    va: Optional[int] = None
    fsc: Optional[str] = None  # translation | access_flag | permission | address_size | external ...
    level: Optional[int] = None
    hsr: Optional[int] = None  # None when the exception is taken to PL1 (not modelled)
    detail: str = ""

    def to_dict(self) -> dict:
        """The result's ``fault`` object (DESIGN.md section 6)."""
        return {"cpu": self.cpu, "kind": self.kind, "pc": self.pc, "va": self.va, "fsc": self.fsc,
                "level": self.level, "hsr": self.hsr}


@dataclass
class RunResult:
    """Why a run stopped: returned (to the PL1 caller), fault, timeout or wfi."""

    stop: str
    instructions: int
    pc: int
    fault: Optional[FaultRecord] = None


@dataclass
class Stats:
    instructions: int = 0
    tlb_fills: int = 0
    walks: int = 0
    hvcs: int = 0
    traps: int = 0


@dataclass
class CpuState:
    """What the model holds for one CPU beyond Unicorn's register file."""

    id: int
    tlb: TLB
    mode: int = MODE_SVC
    cpsr: int = RESET_CPSR                 # non-flag CPSR bits (mode, masks, E, T)
    sysregs: dict = field(default_factory=dict)
    sp: dict = field(default_factory=lambda: {MODE_SVC: 0, MODE_HYP: 0, MODE_USR: 0})
    lr: dict = field(default_factory=lambda: {MODE_SVC: 0, MODE_USR: 0})
    spsr: dict = field(default_factory=lambda: {MODE_SVC: 0, MODE_HYP: 0})
    elr_hyp: int = 0
    context: object = None                 # Unicorn register context while switched out
    online: bool = False                   # powered on (see Core.power_on)
    regime: Optional[Regime] = None        # cached HYP regime, rebuilt after a regime write

    def __post_init__(self) -> None:
        if not self.sysregs:
            self.sysregs = cp15.reset_values(self.id)

    @property
    def mmu_on(self) -> bool:
        return self.mode == MODE_HYP and bool(self.sysregs["HSCTLR"] & cp15.HSCTLR_M)

    def hyp_regime(self) -> Regime:
        if self.regime is None:
            self.regime = regime_of(self.sysregs)
        return self.regime


def regime_of(sysregs: dict) -> Regime:
    """The HYP walk's inputs from a register file: HTTBR, HTCR.T0SZ, HSCTLR.WXN, HMAIR1:HMAIR0."""
    return Regime(ttbr=sysregs["HTTBR"], t0sz=sysregs["HTCR"] & cp15.HTCR_T0SZ,
                  wxn=bool(sysregs["HSCTLR"] & cp15.HSCTLR_WXN),
                  mair=sysregs["HMAIR1"] << 32 | sysregs["HMAIR0"])


def _bank_of_lr(mode: int) -> int:
    """HYP has no banked LR: it uses the User/System LR (ARM ARM B1.3.2)."""
    return MODE_USR if mode in (MODE_HYP, MODE_USR) else mode


class Core:
    """All CPUs of a board on one Unicorn instance, with the HYP model in the hooks."""

    def __init__(self, banks: list[tuple[int, int]], ncpus: int, tlb_entries: int = 0,
                 checks: bool = True):
        self.engine = Engine(banks)
        self.uc = self.engine.uc
        self.regs = self.engine.regs
        self.cpus = [CpuState(i, TLB(tlb_entries)) for i in range(ncpus)]
        self.checks: Optional[Checks] = Checks(self) if checks else None
        self.cur = self.cpus[0]
        self.events: list[Event] = []
        self.max_events = MAX_EVENTS
        self.stats = Stats()
        self.patched: dict[int, int] = {}     # PA -> original word of a non-trapping instruction
        self.sentinels: set[int] = set()      # PAs where a PL1 call returns
        self._reset_run()
        self._lend_va: Optional[int] = None
        self._table_write: Optional[dict] = None  # table page -> bytes before, while a store is stepped
        self._trap_pc: Optional[int] = None
        self._trap_word: Optional[int] = None
        for cpu in self.cpus:
            self._init_context(cpu)
        self.uc.context_restore(self.cpus[0].context)
        self.uc.hook_add(UC_HOOK_TLB_FILL, self._on_tlb_fill)
        self.uc.hook_add(UC_HOOK_INSN_INVALID, self._on_invalid)
        self.uc.hook_add(UC_HOOK_INTR, self._on_interrupt)

    def _init_context(self, cpu: CpuState) -> None:
        for n in range(13):
            self.regs.write(UC_ARM_REG_R0 + n, 0)
        self.regs.write(UC_ARM_REG_SP, 0)
        self.regs.write(UC_ARM_REG_LR, 0)
        self.regs.write(UC_ARM_REG_CPSR, MODE_USR)
        cpu.context = self.uc.context_save()

    def _reset_run(self) -> None:
        self._stop: Optional[str] = None
        self._pending: Optional[tuple] = None   # (Fault or 'external', va, access) from the fill hook
        self._fault: Optional[FaultRecord] = None
        self._hook_error: Optional[BaseException] = None

    # --- loading code ---------------------------------------------------------------------------
    def load_code(self, pa: int, code: bytes) -> None:
        """Write guest code at ``pa``. Privileged instructions that would not trap in Unicorn's User
        mode (MRS CPSR, MSR CPSR, CPS) are replaced by a trap marker and remembered by address, so the
        model emulates them where they stand (DESIGN.md section 2). With the hazard checks on, so are
        the barriers (ISB, DSB, DMB): the checks see each one execute, at no cost to the code
        between them (a code hook would cost every instruction once Unicorn counts them). Reads of
        such a word by the guest return the marker. Deviation: the scan cannot tell code from data, so a literal that happens
        to encode one of these instructions is patched too (and still reads back as the marker)."""
        code = bytearray(code)
        barriers = self.checks is not None
        for off in range(0, len(code) - len(code) % 4, 4):
            word = int.from_bytes(code[off:off + 4], "little")
            self.patched.pop(pa + off, None)
            if needs_patch(word) or (barriers and barrier_kind(word) is not None):
                self.patched[pa + off] = word
                code[off:off + 4] = PATCH_MARKER.to_bytes(4, "little")
        self.engine.write(pa, bytes(code))
        self.engine.flush_code_cache()

    def add_sentinel(self, pa: int) -> None:
        """Place the return sentinel at ``pa``: a PL1 call whose LR points here ends the run."""
        self.engine.write32(pa, SENTINEL_WORD)
        self.sentinels.add(pa)
        self.engine.flush_code_cache()

    # --- CPU selection and registers ------------------------------------------------------------
    def select(self, cpu_id: int) -> CpuState:
        """Make ``cpu_id`` the CPU that Unicorn runs (swapping register contexts)."""
        target = self.cpus[cpu_id]
        if target is not self.cur:
            self.uc.context_update(self.cur.context)
            self.uc.context_restore(target.context)
            self.cur = target
            self.engine.flush_soft_tlb()
        return target

    def reg(self, n: int) -> int:
        return self.regs.read(UC_ARM_REG_R0 + n) if n < 13 else self.regs.read(
            (UC_ARM_REG_SP, UC_ARM_REG_LR, UC_ARM_REG_PC)[n - 13])

    def set_reg(self, n: int, value: int) -> None:
        value &= 0xFFFFFFFF
        if n < 13:
            self.regs.write(UC_ARM_REG_R0 + n, value)
        else:
            self.regs.write((UC_ARM_REG_SP, UC_ARM_REG_LR, UC_ARM_REG_PC)[n - 13], value)

    def cpsr(self) -> int:
        """The architectural CPSR of the current CPU: flags from Unicorn, the rest from the model."""
        return (self.regs.read(UC_ARM_REG_CPSR) & CPSR_FLAGS) | (self.cur.cpsr & ~CPSR_FLAGS)

    def _set_cpsr(self, value: int) -> None:
        """Write the whole CPSR: bank switch for the mode, flags and E into Unicorn (kept in User)."""
        self._switch_mode(value & 0x1F)
        self.cur.cpsr = value & ~CPSR_FLAGS
        self.regs.write(UC_ARM_REG_CPSR, (value & (CPSR_FLAGS | CPSR_E)) | MODE_USR)

    def _switch_mode(self, mode: int) -> None:
        st = self.cur
        if mode not in (MODE_SVC, MODE_HYP):
            raise NotModelled(f"cpu{st.id}: mode {mode:#x} is not modelled (only SVC and HYP)")
        if mode == st.mode:
            return
        st.sp[st.mode] = self.regs.read(UC_ARM_REG_SP)
        st.lr[_bank_of_lr(st.mode)] = self.regs.read(UC_ARM_REG_LR)
        self.regs.write(UC_ARM_REG_SP, st.sp[mode])
        self.regs.write(UC_ARM_REG_LR, st.lr[_bank_of_lr(mode)])
        st.mode = mode
        st.cpsr = (st.cpsr & ~0x1F) | mode
        self.engine.flush_soft_tlb()

    def banked_sp(self, cpu: CpuState, mode: int) -> int:
        if cpu is self.cur and cpu.mode == mode:
            return self.regs.read(UC_ARM_REG_SP)
        if cpu is not self.cur and cpu.mode == mode:
            return self._context_sp(cpu)
        return cpu.sp[mode]

    def _context_sp(self, cpu: CpuState) -> int:
        saved = self.uc.context_save()
        self.uc.context_restore(cpu.context)
        sp = self.regs.read(UC_ARM_REG_SP)
        self.uc.context_restore(saved)
        return sp

    def power_on(self, cpu_id: int, mode: int = MODE_SVC) -> CpuState:
        """A CPU powered (back) on: cp15 registers at reset values, TLB empty, in ``mode`` (SVC, or
        HYP when the boot loader enters the kernel in HYP) with A/I/F masked."""
        st = self.select(cpu_id)
        self._set_cpsr(mode | CPSR_A | CPSR_I | CPSR_F)
        self._reset_hyp_state(st)
        st.online = True
        return st

    def power_off(self, cpu_id: int) -> CpuState:
        """A CPU powered off: its HYP registers go back to their reset values (HYP MMU off, HVBAR
        and HTTBR at reset), its TLB is empty and it runs nothing until ``power_on``."""
        st = self.select(cpu_id)
        self.record(events.KERNEL, "cpu off", pc=0, detail="HYP registers at reset, TLB empty")
        if self.checks is not None:   # a power-down sequence ends its maintenance with a DSB
            self.checks.dsb(st)
        self._reset_hyp_state(st)
        st.online = False
        return st

    def _reset_hyp_state(self, st: CpuState) -> None:
        if self.checks is not None:
            self.checks.cpu_reset(st)
        st.sysregs = cp15.reset_values(st.id)
        st.regime = None
        st.sp.update({MODE_HYP: 0})
        if st.mode == MODE_HYP:   # SP_hyp is the live SP (callers select ``st`` first)
            self.regs.write(UC_ARM_REG_SP, 0)
        st.spsr.update({MODE_HYP: 0})
        st.elr_hyp = 0
        st.tlb.invalidate_all()
        self.engine.flush_soft_tlb()

    # --- events ---------------------------------------------------------------------------------
    def record(self, kind: str, name: str, value: Optional[int] = None, pc: Optional[int] = None,
               detail: str = "") -> None:
        if pc is None:
            pc = self.regs.read(UC_ARM_REG_PC)
        if len(self.events) >= self.max_events:
            if len(self.events) == self.max_events:
                self.events.append(Event(self.cur.id, pc, events.KERNEL, "event log full", None,
                                         f"{self.max_events} events: later ones are not recorded"))
            return
        insn = self._trap_word if pc == self._trap_pc else None
        event = Event(self.cur.id, pc, kind, name, value, detail, insn)
        self.events.append(event)

    # --- running --------------------------------------------------------------------------------
    def run(self, pc: int, budget: Optional[int]) -> RunResult:
        """Run the current CPU from ``pc`` until it returns to a sentinel, faults, waits in WFI or
        has executed ``budget`` instructions (counted exactly by Unicorn). ``budget`` None: uncounted
        (benchmark decomposition only; the run's instructions are reported as 0)."""
        self._reset_run()
        done = 0      # instructions of earlier segments: a run pauses once at each new hazard
        while True:
            left = None if budget is None else budget - done
            err = self.engine.start(pc, left) if left is None or left > 0 else None
            executed = 0 if budget is None else (self.engine.executed() if left > 0 else 1)
            if self._hook_error is not None:
                raise self._hook_error
            stop_pc = self.regs.read(UC_ARM_REG_PC)
            if self._pending is None or self._pending[0] not in ("hazard", "table_write"):
                break
            # Unicorn counted the instruction whose fill was refused; it runs again on resume
            done += executed - 1 if budget is not None else 0
            if self._pending[0] == "hazard":
                self._locate_hazard(stop_pc)   # then resume at the same instruction
                pc = stop_pc
            else:
                pc = self._step_table_write(stop_pc)
                if self._pending is None:
                    done += 1          # the store completed
                elif self._pending[0] == "hazard":
                    self._locate_hazard(pc)   # a new hazard on another page: resume there
                else:              # the store faulted: deliver the abort at it
                    executed = 1       # (done already holds the segment before it)
                    break
        if self._pending is not None:
            self._deliver_abort(stop_pc)
        executed += done
        counted = executed if budget is None else min(executed, budget)
        self.stats.instructions += counted
        if self._fault is not None:
            return RunResult("fault", counted, stop_pc, self._fault)
        if self._stop == "returned":
            return RunResult("returned", counted, stop_pc)
        if err is not None:
            raise NotModelled(f"cpu{self.cur.id}: Unicorn stopped at {stop_pc:#x}: {err}")
        if budget is not None and executed > budget:
            return RunResult("timeout", counted, stop_pc)
        if is_wfi(self._read_code_word(stop_pc - 4)):
            return RunResult("wfi", counted, stop_pc - 4)   # the WFI itself, not the next word
        raise NotModelled(f"cpu{self.cur.id}: run stopped at {stop_pc:#x} for no modelled reason")

    # --- translation ----------------------------------------------------------------------------
    def translate(self, va: int, access: str = "read", cpu: Optional[CpuState] = None,
                  ttbr: Optional[int] = None, hyp: bool = False) -> Translation | Fault | int:
        """Translate through the model: a plain PA when the regime is flat, else a Translation or a
        Fault. By default: the current regime of the CPU (PL1 is flat). ``hyp``: the CPU's HYP
        regime whatever its mode (flat when HSCTLR.M is 0). Both answer from the TLB model first, as
        the CPU would. ``ttbr``: a fresh walk of that table with the CPU's HTCR/HMAIR/HSCTLR.WXN."""
        st = cpu or self.cur
        if ttbr is not None:
            return walk(self.engine.read64, replace(st.hyp_regime(), ttbr=ttbr), va, access)
        enabled = st.sysregs["HSCTLR"] & cp15.HSCTLR_M if hyp else st.mmu_on
        if not enabled:
            return va
        hit = st.tlb.lookup(va)
        if hit is not None:
            return check_access(hit, va, access) or hit
        return walk(self.engine.read64, st.hyp_regime(), va, access)

    def _on_tlb_fill(self, uc, va, access, entry, data) -> bool:
        try:
            return self._fill(va, access, entry)
        except BaseException as exc:  # never lost: re-raised after emu_start
            self._hook_error = exc
            uc.emu_stop()
            return False

    def _fill(self, va: int, access: int, entry) -> bool:
        self.stats.tlb_fills += 1
        if self._lend_va is not None:   # replaying one instruction for its exact data address
            if va == self._lend_va:
                entry.paddr = self.engine.scratch
                entry.perms = UC_PROT_READ | UC_PROT_WRITE | UC_PROT_EXEC
                return True
            if access != UC_MEM_FETCH:   # only the lent page: a store that reaches on into another
                return False             # page (a table page, say) must not write it unobserved
        checks = self.checks if self.checks is not None and self.checks.active else None
        st = self.cur
        acc = _ACCESS.get(access, "read")
        hazard = None
        walked = None
        mmu_on = st.mmu_on
        if mmu_on:
            t = st.tlb.lookup(va)
            if t is not None:
                if checks is not None:
                    hazard = checks.verify_hit(st, t, va, acc)
            else:
                if checks is not None and checks.cpu[st.id].unfinished:
                    hazard = checks.unfinished_hit(st, va, acc)
                if t is None:
                    t = walk(self.engine.read64, st.hyp_regime(), va, acc)
                    self.stats.walks += 1
                    if isinstance(t, Translation):
                        walked = t
            result = t if isinstance(t, Fault) else (check_access(t, va, acc) or t.pa_of(va))
        else:
            result = va
        if checks is not None and st.mode == MODE_HYP and checks.regime_pending(st):
            seen = result if isinstance(result, Fault) or not mmu_on else t
            hazard = checks.check_unsynced(st, va, acc, seen) or hazard
        if walked is not None:   # into the TLB model only now: the check above asks it what it held
            if st.tlb.fill(walked) is not None:
                self.engine.flush_soft_tlb()  # the evicted entry may sit in Unicorn's TLB
            if checks is not None:
                checks.filled(st, walked)
        if isinstance(result, Fault):
            self._pending = (result, va, acc)
            return False
        pa = result
        if not self.engine.is_ram(pa):
            self._pending = ("external", va, acc)
            return False
        perms = UC_PROT_READ | UC_PROT_WRITE | UC_PROT_EXEC
        if mmu_on:
            perms = (UC_PROT_READ | (UC_PROT_WRITE if t.writable else 0)
                     | (UC_PROT_EXEC if t.executable else 0))
        if checks is not None:
            if hazard is not None and acc != "fetch":
                self._pending = ("hazard", hazard, va)   # pause once: the exact VA, then resume
                return False
            if pa & PAGE_MASK in checks.table_pages:   # table pages: a store must be seen
                if acc != "write":
                    perms &= ~UC_PROT_WRITE
                elif self._table_write is None:
                    self._pending = ("table_write", pa & PAGE_MASK, va)
                    return False
                elif pa & PAGE_MASK not in self._table_write:   # the stepped store spans pages
                    self._table_write[pa & PAGE_MASK] = self.engine.read(pa & PAGE_MASK, 4096)
        entry.paddr, entry.perms = pa, perms
        return True

    def _step_table_write(self, pc: int) -> int:
        """A guest store to a HYP table page paused the run: execute that one instruction with
        the page writable, show every descriptor it changed to the checks, write-protect the page
        again and return the PC to resume at."""
        _, page, _ = self._pending
        self._pending = None
        written = {page: self.engine.read(page, 4096)}   # table page -> its bytes before
        self._table_write = written
        try:
            err = self.engine.start(pc, 1)
        finally:
            self._table_write = None
        if self._hook_error is not None:
            raise self._hook_error
        if err is not None and self._pending is None:
            raise NotModelled(f"cpu{self.cur.id}: the store to a HYP table page at {pc:#x} "
                              f"stopped Unicorn: {err}")
        self.checks.pages_written(written, self.cur.id, pc)
        return self.regs.read(UC_ARM_REG_PC)

    def _locate_hazard(self, pc: int) -> None:
        """A new hazard on a data access paused the run at the instruction: find the exact VA
        (the fill hook only sees the page) and resume; the next fill serves the access."""
        _, hazard, page_va = self._pending
        hazard.va = self._exact_data_va(pc, page_va)
        self.checks.located(hazard)

    def hyp_translate_with(self, st: CpuState, regs: dict, va: int,
                           access: str) -> int | Translation | Fault:
        """What a HYP access would give with the system registers ``regs`` (used to judge whether
        an access depended on a register write not yet synchronized): the VA itself (flat) when
        regs' HSCTLR.M is 0, else the TLB model first, then a walk; a Fault if it is refused."""
        if not regs["HSCTLR"] & cp15.HSCTLR_M:
            return va
        t = st.tlb.lookup(va)
        if t is None:
            t = walk(self.engine.read64, regime_of(regs), va, access)
            if isinstance(t, Fault):
                return t
        return check_access(t, va, access) or t

    def guest_pc(self) -> int:
        """The PC of the instruction being executed (exact in hooks: Unicorn syncs it per access)."""
        return self.regs.read(UC_ARM_REG_PC)

    def code_word(self, pc: int) -> Optional[int]:
        """The instruction word at ``pc`` for the current CPU, or None when it cannot be fetched."""
        try:
            return self._read_code_word(pc)
        except (NotModelled, LookupError):   # not mapped, or no RAM there
            return None

    def _read_code_word(self, va: int) -> int:
        """The instruction word at ``va`` of the current CPU (translated through the model)."""
        pa = self._code_pa(va)
        return self.patched.get(pa) or self.engine.read32(pa)

    def _code_pa(self, va: int) -> int:
        t = self.translate(va, "fetch")
        if isinstance(t, Fault):
            raise NotModelled(f"cpu{self.cur.id}: trapped instruction at {va:#x} is not mapped")
        return t if isinstance(t, int) else t.pa_of(va)

    # --- aborts ---------------------------------------------------------------------------------
    def _deliver_abort(self, pc: int) -> None:
        """A fill the model refused: work out the exact VA, take the abort, record the fault."""
        fault, page_va, access = self._pending
        self._pending = None
        va = pc if access == "fetch" else self._exact_data_va(pc, page_va)
        kind = "prefetch_abort" if access == "fetch" else "data_abort"
        if fault == "external":
            fsc_name, level, status = "external", None, syndrome.FSC_SYNC_EXTERNAL
        else:
            fault = Fault(fault.type, fault.level, va, fault.access, fault.s1ptw, fault.descriptors)
            fsc_name, level, status = fault.type, fault.level, syndrome.encode_ldfsc(fault)
        hsr = None
        if self.cur.mode == MODE_HYP:
            ec = syndrome.EC_PABT_HYP if access == "fetch" else syndrome.EC_DABT_HYP
            iss = status | ((1 << 6) if access == "write" else 0)
            hsr = syndrome.encode_hsr(ec, iss)
            far = "HIFAR" if access == "fetch" else "HDFAR"
            self.cur.sysregs[far] = va
            self._take_hyp_exception(VEC_PABT if access == "fetch" else VEC_DABT, pc, hsr)
        self._fault = FaultRecord(self.cur.id, kind, pc, va, fsc_name, level, hsr,
                                  f"{access} of {va:#x}")

    def _exact_data_va(self, pc: int, page_va: int) -> int:
        """The fill hook only sees the page of a data access. Replay the one faulting instruction
        with that page lent to a scratch frame and a memory hook, which sees exact addresses; then
        restore registers and the scratch frame (DESIGN.md section 2, reference: HDFAR). An access
        that straddles into the page from below reports the page's first byte."""
        saved_regs = self.uc.context_save()
        saved_frame = self.engine.read(self.engine.scratch, 4096)
        seen: list[int] = []

        scratch = self.engine.scratch
        # The instruction may sit in the very page it accesses: the frame holds that page's bytes
        # (as fetched), so the replay runs the same instruction.
        code = self.translate(page_va, "fetch")
        if not isinstance(code, Fault):
            pa = code if isinstance(code, int) else code.pa_of(page_va)
            if self.engine.is_ram(pa):
                self.engine.write(scratch, self.engine.read(pa, 4096))

        def on_access(uc, access, address, size, value, data):
            # With UC_TLB_VIRTUAL the hook is given the *physical* address: the lent frame's.
            if scratch <= address < scratch + 4096:
                seen.append(page_va + address - scratch)

        hook = self.uc.hook_add(UC_HOOK_MEM_READ | UC_HOOK_MEM_WRITE, on_access)
        self._lend_va = page_va
        if self.checks is not None:
            self.checks.active = False
        self.engine.flush_soft_tlb()
        self.engine.flush_code_cache()   # memory hooks are compiled into translated code
        try:
            self.engine.start(pc, 1)
        finally:
            self._lend_va = None
            if self.checks is not None:
                self.checks.active = True
            self.uc.hook_del(hook)
            self.uc.context_restore(saved_regs)
            self.engine.write(self.engine.scratch, saved_frame)
            self.engine.flush_soft_tlb()
            self.engine.flush_code_cache()
            self._pending = None
        return seen[0] if seen else page_va

    # --- exception entry and return -------------------------------------------------------------
    def _take_hyp_exception(self, vector: int, return_address: int, hsr: Optional[int],
                            pc: Optional[int] = None) -> None:
        """EnterHypMode (ARM ARM B1.9.? pseudocode): SPSR_hyp <- CPSR, ELR_hyp <- return address,
        CPSR.M <- HYP, IT/J cleared, T <- HSCTLR.TE, E <- HSCTLR.EE, A/I/F set (no Monitor is
        modelled, so SCR routes nothing away from HYP). From another mode the vector is 0x14."""
        st = self.cur
        old_cpsr = self.cpsr()
        if st.mode != MODE_HYP:
            vector = VEC_TRAP
        if self.checks is not None:
            self.checks.exception_entry(st, return_address if pc is None else pc,
                                        st.sysregs["HVBAR"] & ~0x1F)
        hsctlr = st.sysregs["HSCTLR"]
        new = (old_cpsr & ~(0x1F | CPSR_IT_J | CPSR_T | CPSR_E)) | MODE_HYP | CPSR_A | CPSR_I | CPSR_F
        if hsctlr & cp15.HSCTLR_TE:
            raise NotModelled("HSCTLR.TE = 1 (exceptions taken in Thumb state) is not modelled")
        if hsctlr & cp15.HSCTLR_EE:
            new |= CPSR_E
        self._set_cpsr(new)
        st.spsr[MODE_HYP] = old_cpsr
        st.elr_hyp = return_address
        if hsr is not None:
            st.sysregs["HSR"] = hsr
        target = (st.sysregs["HVBAR"] & ~0x1F) + vector
        self.record(events.EXCEPTION, VECTOR_NAMES[vector], hsr, pc=return_address,
                    detail=f"-> {target:#x}")
        self.regs.write(UC_ARM_REG_PC, target)

    # --- the trap handler -----------------------------------------------------------------------
    def _on_invalid(self, uc, data) -> bool:
        try:
            self._trap()
        except BaseException as exc:  # never lost: re-raised after emu_start
            self._hook_error = exc
            uc.emu_stop()
        return True

    def _trap(self) -> None:
        self.stats.traps += 1
        pc = self.regs.read(UC_ARM_REG_PC)
        t = self.translate(pc, "fetch")
        if isinstance(t, Fault):
            # Unicorn ran this word from code it had translated before the model's TLB lost the
            # page (a TLBI just dropped it): the fetch itself faults, as it would on hardware.
            self._pending = (t, pc, "fetch")
            self.uc.emu_stop()
            return
        pa = t if isinstance(t, int) else t.pa_of(pc)
        if pa in self.sentinels and self.cur.mode == MODE_SVC:
            self._stop = "returned"
            self.uc.emu_stop()
            return
        if self.regs.read(UC_ARM_REG_CPSR) & CPSR_T:   # e.g. after a BX to an odd address
            raise NotModelled(f"cpu{self.cur.id}: a trapped instruction in Thumb state at {pc:#x} "
                              f"(hypemu decodes ARM state only)")
        word = self.patched.get(pa) or self.engine.read32(pa)
        self._trap_pc, self._trap_word = pc, word   # events of this instruction carry its word
        kind = barrier_kind(word)
        if kind is not None:
            return self._barrier(kind, pc)
        insn = decode(word)
        handler = getattr(self, "_x_" + insn.op, None) if insn else None
        if handler is None:
            self._undefined(pc, f"undefined instruction {word:#010x}")
            return
        if insn.cond != 0xE and not condition_passed(insn.cond, self.cpsr()):
            self.regs.write(UC_ARM_REG_PC, pc + 4)
            return
        handler(insn, pc)

    def _barrier(self, kind: str, pc: int) -> None:
        """ISB, DSB or DMB (patched to trap only when the checks are on): ISB synchronizes the
        context, DSB completes this CPU's TLB maintenance; the model has nothing else to order."""
        self.record(events.BARRIER, kind, pc=pc)
        if kind == "isb":
            self.checks.synchronized(self.cur)
        elif kind == "dsb":
            self.checks.dsb(self.cur)
        self._next(pc)

    def _next(self, pc: int) -> None:
        self.regs.write(UC_ARM_REG_PC, pc + 4)

    def _undefined(self, pc: int, detail: str) -> None:
        """An undefined instruction: from HYP it is taken to HYP (vector 0x04, HSR EC 0x00, IL=1);
        from PL1 it goes to PL1's own vectors, which hypemu does not model. Either way the flow did not
        expect it: the run stops with a fault."""
        hsr = None
        if self.cur.mode == MODE_HYP:
            hsr = syndrome.encode_hsr(syndrome.EC_UNKNOWN, 0)
            self._take_hyp_exception(VEC_UNDEF, pc, hsr)
        self._fault = FaultRecord(self.cur.id, "undefined", pc, None, None, None, hsr, detail)
        self.uc.emu_stop()

    # cp15 ------------------------------------------------------------------------------------------
    def _sysreg(self, key: tuple, write: bool, pc: int) -> Optional[cp15.SysReg]:
        row = cp15.lookup(key)
        if row is None or (row.hyp_only and self.cur.mode != MODE_HYP):
            return None
        if (write and not row.writable) or (not write and not row.readable):
            return None
        return row

    def _x_mcr(self, insn: Insn, pc: int) -> None:
        row = self._sysreg(("c", insn.opc1, insn.crn, insn.crm, insn.opc2), True, pc)
        if row is None:
            return self._undefined(pc, f"MCR p15, {insn.opc1}, c{insn.crn}, c{insn.crm}, {insn.opc2}")
        self.write_sysreg(row, self.reg(insn.rt), pc)
        self._next(pc)

    def _x_mrc(self, insn: Insn, pc: int) -> None:
        row = self._sysreg(("c", insn.opc1, insn.crn, insn.crm, insn.opc2), False, pc)
        if row is None:
            return self._undefined(pc, f"MRC p15, {insn.opc1}, c{insn.crn}, c{insn.crm}, {insn.opc2}")
        name = row.name
        if self.cur.mode != MODE_HYP and name in VIRTUALIZED_ID:
            name = VIRTUALIZED_ID[name]   # Non-secure PL1 reads see the HYP-set virtual IDs
        value = self.cur.sysregs[name]
        if insn.rt == 15:   # MRC to APSR_nzcv: the flags take bits [31:28]
            cpsr = self.regs.read(UC_ARM_REG_CPSR)
            self.regs.write(UC_ARM_REG_CPSR, (cpsr & 0x0FFFFFFF) | (value & 0xF0000000))
        else:
            self.set_reg(insn.rt, value)
        self._next(pc)

    def _x_mcrr(self, insn: Insn, pc: int) -> None:
        row = self._sysreg(("q", insn.opc1, insn.crm), True, pc)
        if row is None:
            return self._undefined(pc, f"MCRR p15, {insn.opc1}, c{insn.crm}")
        self.write_sysreg(row, self.reg(insn.rt2) << 32 | self.reg(insn.rt), pc)
        self._next(pc)

    def _x_mrrc(self, insn: Insn, pc: int) -> None:
        row = self._sysreg(("q", insn.opc1, insn.crm), False, pc)
        if row is None:
            return self._undefined(pc, f"MRRC p15, {insn.opc1}, c{insn.crm}")
        value = self.cur.sysregs[row.name]
        self.set_reg(insn.rt, value & 0xFFFFFFFF)
        self.set_reg(insn.rt2, value >> 32)
        self._next(pc)

    def write_sysreg(self, row: cp15.SysReg, value: int, pc: int) -> None:
        """A system-register write with its architectural effect, recorded as an event."""
        st = self.cur
        effect = row.effect
        if effect.startswith("tlbi") or effect == cp15.EFFECT_BARRIER:
            kind = events.BARRIER if effect == cp15.EFFECT_BARRIER else events.TLBI
            self.record(kind, row.name, value, pc=pc)
            if effect not in (cp15.EFFECT_BARRIER, cp15.EFFECT_TLBI_OTHER):
                self._maintain_tlb(effect, value, row.name, pc)
            elif self.checks is not None and row.name in ("CP15ISB", "CP15DSB"):
                (self.checks.synchronized if row.name == "CP15ISB" else self.checks.dsb)(st)
            return
        if row.name == "HVBAR":
            value &= ~0x1F  # bits [4:0] RES0
        if self.checks is not None:
            self.checks.sysreg_written(st, row.name, st.sysregs[row.name], pc)
        st.sysregs[row.name] = value
        self.record(events.SYSREG, row.name, value, pc=pc)
        if effect == cp15.EFFECT_REGIME:
            st.regime = None
            self.engine.flush_soft_tlb()

    def _maintain_tlb(self, effect: str, value: int, name: str = "TLBI", pc: int = 0) -> None:
        """TLBIALLH / TLBIMVAH act on this CPU's TLB; the IS forms on every online CPU (the inner
        shareable domain is the whole board; a powered-off CPU's TLB is empty anyway). Deviation: the model applies them at once; the hazard checks,
        not the TLB, judge whether a DSB/ISB followed."""
        targets = [c for c in self.cpus if c.online] if effect.endswith("_is") else [self.cur]
        dropped = 0
        removed = {}
        for cpu in targets:
            before = cpu.tlb.entries() if self.checks is not None else None
            if effect.startswith("tlbi_all"):
                n = cpu.tlb.invalidate_all()
            else:
                n = cpu.tlb.invalidate_va(value & 0xFFFFF000)
            if n and before is not None:
                kept = {id(t) for t in cpu.tlb.entries()}
                removed[cpu.id] = [t for t in before if id(t) not in kept]
            dropped += n
        if removed:
            self.checks.tlbi(self.cur, removed, name, pc)
        if dropped:
            self.engine.flush_soft_tlb()

    def _x_hint(self, insn: Insn, pc: int) -> None:
        """YIELD and WFE. No other CPU runs while this one does, so no event can arrive: WFE
        completes at once (the architecture allows a spurious wake-up; a WFE loop then spins until
        its condition holds or the budget runs out), as YIELD does. Not logged: a WFE loop would
        fill the event log."""
        self._next(pc)

    # HVC / SMC / ERET ------------------------------------------------------------------------------
    def _x_hvc(self, insn: Insn, pc: int) -> None:
        """HVC: from PL1 to the HYP trap vector (0x14), from HYP to the HVC vector (0x08); HSR EC
        0x12 with the immediate. In ARMv7 only SCR.HCE can make HVC UNDEFINED (HCR has no HCD bit;
        that is ARMv8's): no Security Extensions are modelled, and a boot loader that enters the
        kernel in HYP has set SCR.HCE, so HVC is always enabled here."""
        self.stats.hvcs += 1
        self.record(events.HVC, "hvc", insn.imm, pc=pc)
        self._take_hyp_exception(VEC_HVC, pc + 4, syndrome.hsr_for_hvc(insn.imm), pc)

    def _x_smc(self, insn: Insn, pc: int) -> None:
        """SMC from PL1 with HCR.TSC set traps to HYP (EC 0x13). Otherwise it enters Monitor mode
        (or is UNDEFINED when SCR.SCD is set): no Security Extensions are modelled, so that is
        NotModelled rather than a guess."""
        if self.cur.mode != MODE_HYP and self.cur.sysregs["HCR"] & (1 << 19):
            hsr = syndrome.encode_hsr(syndrome.EC_SMC, 0)
            return self._take_hyp_exception(VEC_TRAP, pc, hsr)
        raise NotModelled(f"cpu{self.cur.id}: SMC at {pc:#x} would enter Monitor mode (no Security "
                          f"Extensions are modelled)")

    def _x_eret(self, insn: Insn, pc: int) -> None:
        """ERET in HYP: CPSR <- SPSR_hyp, PC <- ELR_hyp (ARM ARM B9.3.3)."""
        st = self.cur
        if st.mode != MODE_HYP:
            raise NotModelled(f"cpu{st.id}: ERET from PL1 (an exception return to PL1) at {pc:#x}")
        spsr, target = st.spsr[MODE_HYP], st.elr_hyp
        if spsr & CPSR_T:
            raise NotModelled(f"cpu{st.id}: ERET to Thumb state at {pc:#x}")
        self.record(events.ERET, "eret", target, pc=pc,
                    detail=f"to {MODE_NAMES.get(spsr & 0x1F, hex(spsr & 0x1F))}")
        if self.checks is not None:
            self.checks.synchronized(st)
        self._set_cpsr(spsr)
        self.regs.write(UC_ARM_REG_PC, target)

    def _x_exception_return(self, insn: Insn, pc: int) -> None:
        if self.cur.mode == MODE_HYP:   # SUBS PC, LR and friends are UNDEFINED in HYP (B9.3.19)
            return self._undefined(pc, "exception return other than ERET in HYP mode")
        raise NotModelled(f"cpu{self.cur.id}: exception return to PL1 at {pc:#x}")

    # status registers --------------------------------------------------------------------------------
    def _x_mrs(self, insn: Insn, pc: int) -> None:
        if insn.r:
            value = self.cur.spsr[self.cur.mode]
        else:
            value = self.cpsr() & MRS_CPSR_MASK
        self.set_reg(insn.rt, value)
        self._next(pc)

    def _x_msr(self, insn: Insn, pc: int) -> None:
        self._write_psr(insn, self.reg(insn.rt), pc)

    def _x_msr_imm(self, insn: Insn, pc: int) -> None:
        self._write_psr(insn, insn.imm, pc)

    def _write_psr(self, insn: Insn, value: int, pc: int) -> None:
        fields = 0
        for n in range(4):
            if insn.mask & (1 << n):
                fields |= (0xFF << (8 * n)) if insn.r else CPSR_WRITABLE[n]
        if insn.r:
            old = self.cur.spsr[self.cur.mode]
            self.cur.spsr[self.cur.mode] = (old & ~fields) | (value & fields)
            self.record(events.SYSREG, f"SPSR_{MODE_NAMES[self.cur.mode]}",
                        self.cur.spsr[self.cur.mode], pc=pc)
        else:
            self._write_cpsr_fields((self.cpsr() & ~fields) | (value & fields), pc)
        self._next(pc)

    def _write_cpsr_fields(self, new: int, pc: int) -> None:
        """MSR/CPS to the CPSR. A mode change this way cannot enter or leave HYP (UNPREDICTABLE,
        ARM ARM B9.1.?): hypemu keeps the mode and records the attempt as an UNPREDICTABLE event."""
        if (new & 0x1F) != self.cur.mode:
            self.record(events.UNPREDICTABLE, "mode change by MSR/CPS", new & 0x1F, pc=pc,
                        detail="ignored: only exceptions and ERET change mode in hypemu")
            new = (new & ~0x1F) | self.cur.mode
        self._set_cpsr(new)

    def _x_cps(self, insn: Insn, pc: int) -> None:
        new = self.cpsr()
        aif = insn.opc2 << 6
        if insn.mask == 0b10:
            new &= ~aif
        elif insn.mask == 0b11:
            new |= aif
        if insn.r:
            new = (new & ~0x1F) | insn.imm
        self._write_cpsr_fields(new, pc)
        self._next(pc)

    def _x_mrs_banked(self, insn: Insn, pc: int) -> None:
        self.set_reg(insn.rt, self._banked(insn, pc, None))
        self._next(pc)

    def _x_msr_banked(self, insn: Insn, pc: int) -> None:
        self._banked(insn, pc, self.reg(insn.rt))
        self._next(pc)

    def _banked(self, insn: Insn, pc: int, value: Optional[int]) -> int:
        """MRS/MSR (banked register). From PL1 only Monitor mode may reach the HYP bank and no mode
        may name its own bank (UNPREDICTABLE, ARM ARM B9.3.9): hypemu performs the access and records
        an UNPREDICTABLE event."""
        where = BANKED.get((insn.r, insn.sysm))
        if where is None:
            raise NotModelled(f"banked register R={insn.r} SYSm={insn.sysm:#07b} at {pc:#x}")
        kind, mode = where
        st = self.cur
        own = mode == st.mode and kind != "elr"
        if own or (mode == MODE_HYP and st.mode != MODE_HYP):
            self.record(events.UNPREDICTABLE, f"banked access to {kind}_{MODE_NAMES[mode]}",
                        value, pc=pc, detail=f"from {MODE_NAMES[st.mode]} mode")
        return self._banked_access(kind, mode, value, pc)

    def _banked_access(self, kind: str, mode: int, value: Optional[int], pc: int) -> int:
        st = self.cur
        live = (kind == "sp" and mode == st.mode) or (kind == "lr" and mode == _bank_of_lr(st.mode))
        if kind.startswith("r"):   # R8_usr-R12_usr: the live r8-r12 outside FIQ mode
            n = int(kind[1:])
            if value is not None:
                self.set_reg(n, value)
            result = self.reg(n)
        elif kind == "elr":
            if value is not None:
                st.elr_hyp = value
            result = st.elr_hyp
        elif live:
            uc_reg = UC_ARM_REG_SP if kind == "sp" else UC_ARM_REG_LR
            if value is not None:
                self.regs.write(uc_reg, value)
            result = self.regs.read(uc_reg)
        else:
            bank = getattr(st, kind)
            if value is not None:
                bank[mode] = value
            result = bank[mode]
        if value is not None:
            self.record(events.SYSREG, f"{kind.upper()}_{MODE_NAMES[mode]}", value, pc=pc)
        return result

    # interrupts (SVC, BKPT ...) ----------------------------------------------------------------------
    def _on_interrupt(self, uc, intno, data) -> None:
        pc = uc.reg_read(UC_ARM_REG_PC)
        what = {2: "SVC (supervisor call)", 7: "BKPT"}.get(intno, f"exception {intno}")
        self._hook_error = NotModelled(f"cpu{self.cur.id}: {what} near {pc:#x} is not modelled")
        uc.emu_stop()
