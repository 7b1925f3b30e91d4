"""One CPU's architectural state beyond Unicorn's register file: mode, banked registers, the
non-flag CPSR bits, the cp15 registers, ELR/SPSR_hyp and the TLB model; and the CPSR composition
and mode switch, written against any ``RegisterFile`` (Unicorn's, or a dict in a unit test).

Why pure: these are the rules a trapped instruction relies on (which bank SP and LR come from, how
the CPSR is split between Unicorn and the model), testable without an engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Protocol

from .. import cp15
from ..tlb import TLB
from ..walker import Regime
from ..errors import NotModelled as NotModelled   # one errors module; re-exported by the cpu package

MODE_USR = 0x10
MODE_SVC = 0x13
MODE_HYP = 0x1A
MODE_NAMES = {MODE_USR: "usr", MODE_SVC: "svc", MODE_HYP: "hyp"}

# Registers by architectural number (as engine.Registers takes them)
REG_SP, REG_LR, REG_PC, REG_CPSR = 13, 14, 15, 16

CPSR_FLAGS = 0xF80F0000           # N Z C V Q and GE: live in Unicorn
CPSR_T, CPSR_F, CPSR_I, CPSR_A, CPSR_E = 1 << 5, 1 << 6, 1 << 7, 1 << 8, 1 << 9
CPSR_IT = 0x0600FC00              # IT[1:0] in bits[26:25], IT[7:2] in bits[15:10]
CPSR_IT_J = CPSR_IT | 1 << 24     # IT[7:0] and J: cleared on exception entry
# The bits Unicorn's own execution changes (flags, GE; T by BX/BLX; IT by IT instructions): the
# model reads them from the register file and writes them back with every CPSR write.
CPSR_LIVE = CPSR_FLAGS | CPSR_IT | CPSR_T
RESET_CPSR = MODE_SVC | CPSR_A | CPSR_I | CPSR_F


class RegisterFile(Protocol):
    """R0-R12, SP, LR, PC and the CPSR by number (``REG_*``); Unicorn's runs in User mode."""

    def read(self, reg: int) -> int: ...

    def write(self, reg: int, value: int) -> None: ...

    def exchange_sp_lr(self, sp: int, lr: int) -> tuple[int, int]:
        """SP and LR as they are, then ``sp`` and ``lr`` in their place."""
        ...


class DictRegisters:
    """A register file in a dict: the CPU state's rules without an engine (unit tests). A PC
    write behaves as Unicorn's does (probed): bit 0 selects the state (CPSR.T) and is dropped."""

    def __init__(self) -> None:
        self.values: dict[int, int] = {n: 0 for n in range(17)}
        self.values[REG_CPSR] = MODE_USR

    def read(self, reg: int) -> int:
        return self.values[reg]

    def write(self, reg: int, value: int) -> None:
        if reg == REG_PC:
            cpsr = self.values[REG_CPSR]
            self.values[REG_CPSR] = (cpsr | CPSR_T) if value & 1 else (cpsr & ~CPSR_T)
            value &= ~1
        self.values[reg] = value & 0xFFFFFFFF

    def exchange_sp_lr(self, sp: int, lr: int) -> tuple[int, int]:
        old = self.values[REG_SP], self.values[REG_LR]
        self.values[REG_SP], self.values[REG_LR] = sp & 0xFFFFFFFF, lr & 0xFFFFFFFF
        return old


def itstate(cpsr: int) -> int:
    """ITSTATE (IT[7:0]) from the CPSR: IT[7:2] = CPSR[15:10], IT[1:0] = CPSR[26:25]."""
    return (cpsr >> 8) & 0xFC | (cpsr >> 25) & 0b11


def with_itstate(cpsr: int, it: int) -> int:
    """``cpsr`` with ITSTATE replaced by ``it``."""
    return (cpsr & ~CPSR_IT) | (it & 0xFC) << 8 | (it & 0b11) << 25


def bank_of_lr(mode: int) -> int:
    """HYP has no banked LR: it uses the User/System LR (ARM ARM B1.3.2)."""
    return MODE_USR if mode in (MODE_HYP, MODE_USR) else mode


def regime_of(sysregs: dict[str, int]) -> Regime:
    """The HYP walk's inputs from a register file: HTTBR, HTCR.T0SZ, HSCTLR.WXN, HMAIR1:HMAIR0."""
    return Regime(ttbr=sysregs["HTTBR"], t0sz=sysregs["HTCR"] & cp15.HTCR_T0SZ,
                  wxn=bool(sysregs["HSCTLR"] & cp15.HSCTLR_WXN),
                  mair=sysregs["HMAIR1"] << 32 | sysregs["HMAIR0"])


@dataclass
class CpuState:
    """What the model holds for one CPU beyond Unicorn's register file."""

    id: int
    tlb: TLB
    mode: int = MODE_SVC
    cpsr: int = RESET_CPSR                 # the CPSR bits Unicorn does not hold (mode, masks, E)
    sysregs: dict[str, int] = field(default_factory=dict)
    sp: dict[int, int] = field(default_factory=lambda: {MODE_SVC: 0, MODE_HYP: 0, MODE_USR: 0})
    lr: dict[int, int] = field(default_factory=lambda: {MODE_SVC: 0, MODE_USR: 0})
    spsr: dict[int, int] = field(default_factory=lambda: {MODE_SVC: 0, MODE_HYP: 0})
    elr_hyp: int = 0
    context: Any = None                    # the engine's register context while switched out
    online: bool = False                   # powered on (see CpuComplex.power_on)
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

    # --- CPSR and mode, against the live register file ---------------------------------------
    def read_cpsr(self, regs: RegisterFile) -> int:
        """The architectural CPSR: flags, T and IT from the register file, the rest from the model."""
        return (regs.read(REG_CPSR) & CPSR_LIVE) | (self.cpsr & ~CPSR_LIVE)

    def write_cpsr(self, regs: RegisterFile, value: int) -> bool:
        """Write the whole CPSR: bank switch for the mode; flags, T, IT and E into the register
        file (kept in User mode; T there is the instruction set Unicorn executes). True when the
        mode changed (the caller flushes what depends on it)."""
        changed = self.switch_mode(regs, value & 0x1F)
        self.cpsr = value & ~CPSR_LIVE
        regs.write(REG_CPSR, (value & (CPSR_LIVE | CPSR_E)) | MODE_USR)
        return changed

    def switch_mode(self, regs: RegisterFile, mode: int) -> bool:
        """Bank SP and LR out of the old mode and into the new one; True if the mode changed."""
        if mode not in (MODE_SVC, MODE_HYP):
            raise NotModelled(f"cpu{self.id}: mode {mode:#x} is not modelled (only SVC and HYP)")
        if mode == self.mode:
            return False
        self.sp[self.mode], self.lr[bank_of_lr(self.mode)] = regs.exchange_sp_lr(
            self.sp[mode], self.lr[bank_of_lr(mode)])
        self.mode = mode
        self.cpsr = (self.cpsr & ~0x1F) | mode
        return True

    def reset_hyp(self, regs: Optional[RegisterFile]) -> None:
        """Power on or off: HYP registers at reset, TLB empty (``regs``: the live register file
        when this CPU runs, whose SP is SP_hyp in HYP mode)."""
        self.sysregs = cp15.reset_values(self.id)
        self.regime = None
        self.sp[MODE_HYP] = 0
        if self.mode == MODE_HYP and regs is not None:
            regs.write(REG_SP, 0)
        self.spsr[MODE_HYP] = 0
        self.elr_hyp = 0
        self.tlb.invalidate_all()
