"""Replaying an export's kernel-side actions on QEMU, in hypemu's order, one vCPU at a time.

- ``enter_hyp``: power the vCPU on (PSCI CPU_ON from a vCPU that is on, into the driver's park
  loop; vCPU 0 is on from reset), write the reset values QEMU lacks and the kernel's PL1 registers
  (``driver.reset_registers``), then run from the stub entry in HYP until it returns to LR;
- ``hvc``: r0-r3 and LR set, run from kvm_call_hyp in SVC until it returns to LR; r0 is the result;
- ``write``: the bytes stored in RAM through the gdbstub (physical), as the kernel's store;
- ``power_off``: the vCPU itself calls PSCI CPU_OFF.

A call that does not come back ends the replay: at a breakpoint on a HYP exception vector (the
vectors hypemu's run ended with), or still running after the time allowed (then interrupted).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Iterable, Optional

from ..export import Action, Export
from . import driver, registers
from .launch import NotComparable
from .target import CPSR_AIF, MODE_HYP, REG_CPSR, REG_LR, Stop, Target, TargetError

# ARM ARM reset values of the registers QEMU 7.2 resets to 0 (HSCTLR's RES1 bits as Cortex-A15
# resets them, HTCR and VTCR bit 31 RES1). Written by the driver, never taken from hypemu's model,
# so that a wrong reset value in the model shows as a disagreement.
ARM_ARM_RESETS = {"HSCTLR": 0x30C50818, "HTCR": 0x80000000, "VTCR": 0x80000000}
VECTORS = {0x04: "undefined", 0x08: "hvc", 0x0C: "prefetch_abort", 0x10: "data_abort"}
CALL_TIMEOUT = 5.0      # seconds a call may take on QEMU (it takes microseconds)
MAX_STEPS = 20000       # instructions a stepped call may take before it runs freely
SPIN_TIMEOUT = 0.2      # how long a call hypemu stopped by its budget runs before it is stopped


@dataclass
class Ending:
    """How the replay ended: ``returned`` (every action done), ``vector`` (a vCPU stopped at a HYP
    exception vector), ``running`` (a call still running when interrupted), ``elsewhere``."""

    how: str = "returned"
    cpu: Optional[int] = None
    action: Optional[int] = None
    pc: Optional[int] = None
    vector: Optional[str] = None

    def text(self) -> str:
        if self.how == "returned":
            return "every call returned"
        where = f"(cpu{self.cpu}, action {self.action})"
        if self.how == "vector":
            return f"{self.vector} at its vector {self.pc:#x} {where}"
        if self.how == "running":
            return f"still running at {self.pc:#x} after {SPIN_TIMEOUT} s {where}"
        return f"stopped at {self.pc:#x} {where}"


@dataclass
class Replayed:
    """What QEMU did: the r0 of each ``hvc`` action by index, and how it ended."""

    results: dict[int, int] = field(default_factory=dict)
    ending: Ending = field(default_factory=Ending)
    online: set[int] = field(default_factory=set)   # vCPUs that entered the kernel and are on
    hyp: dict[int, dict[str, Optional[int]]] = field(default_factory=dict)   # SP/ELR/SPSR_hyp


class Replay:
    """Drives ``target`` through ``ex``'s actions. ``vector_bases``: HVBAR values at which a stop
    at a HYP exception vector ends the replay."""

    def __init__(self, target: Target, ex: Export, psci: bool, vector_bases: Iterable[int]):
        self.t, self.ex, self.psci = target, ex, psci
        self.on = {0}                    # vCPUs QEMU has powered (vCPU 0 from reset)
        self.out = Replayed()
        self.vectors = {base + off: name for base in vector_bases for off, name in VECTORS.items()}
        for addr in self.vectors:
            target.breakpoint(addr)
        for lr in {a.lr for a in ex.actions if a.lr is not None}:
            target.breakpoint(lr)
        # the last call of each CPU that stays on: stepped, to read SP/ELR/SPSR_hyp at its last ERET
        self.stepped: set[int] = set()
        last: dict[int, int] = {}
        for index, a in enumerate(ex.actions):
            if a.cpu is not None:
                last[a.cpu] = index
        self.stepped = {i for i in last.values()
                        if ex.actions[i].kind in ("enter_hyp", "hvc") and
                        (ex.actions[i].kind == "enter_hyp" or ex.actions[i].result is not None)}

    def run(self, spin_last: bool) -> Replayed:
        """Every action; ``spin_last``: hypemu's run ended in the last call by its budget."""
        last = len(self.ex.actions) - 1
        for index, action in enumerate(self.ex.actions):
            timeout = SPIN_TIMEOUT if spin_last and index == last else CALL_TIMEOUT
            if not self._do(index, action, timeout):
                break
        return self.out

    def _do(self, index: int, a: Action, timeout: float) -> bool:
        t = self.t
        if a.kind == "write":
            assert a.pa is not None
            t.write(a.pa, a.data)
            return True
        assert a.cpu is not None
        if a.kind == "power_off":
            self._power_off(a.cpu)
            return True
        assert a.pc is not None and a.lr is not None
        if a.kind == "enter_hyp":
            self._power_on(a.cpu)
            regs = {REG_CPSR: MODE_HYP | CPSR_AIF, REG_LR: a.lr} | dict(enumerate(a.args))
        else:
            regs = {n: v for n, v in enumerate(a.args)} | {REG_LR: a.lr}
        if index in self.stepped:
            stop = self._stepped_call(a.cpu, a.pc, regs, a.lr, timeout)
        else:
            stop = t.call(a.cpu, a.pc, regs, timeout)
        if not stop.interrupted and stop.pc == a.lr:
            if a.kind == "hvc":
                self.out.results[index] = t.reg(a.cpu, 0)
            self.out.online.add(a.cpu)
            return True
        self.out.online.add(a.cpu)
        self.out.ending = self._ending(index, stop)
        return False

    def _stepped_call(self, cpu: int, pc: int, regs: dict[int, int], lr: int,
                      timeout: float) -> Stop:
        """A call run one instruction at a time; at each ERET in HYP, the HYP state is read."""
        t = self.t
        for n, value in regs.items():
            t.set_reg(cpu, n, value)
        t.set_pc(cpu, pc)
        for _ in range(MAX_STEPS):
            stop = t.step(cpu)
            if stop.interrupted or stop.pc in self.vectors or \
                    (stop.pc == lr and stop.cpsr & 0x1F != MODE_HYP):
                return stop
            if stop.cpsr & 0x1F == MODE_HYP and registers.at_eret(t, cpu, stop.pc):
                self.out.hyp[cpu] = registers.hyp_state(t, cpu)
        return t.run(cpu, timeout)

    def _ending(self, index: int, stop: Stop) -> Ending:
        if stop.interrupted:
            return Ending("running", stop.cpu, index, stop.pc)
        if stop.pc in self.vectors:
            return Ending("vector", stop.cpu, index, stop.pc, self.vectors[stop.pc])
        return Ending("elsewhere", stop.cpu, index, stop.pc)

    # --- power ---------------------------------------------------------------------------------
    def _power_on(self, cpu: int) -> None:
        t = self.t
        if cpu not in self.on:
            if not self.psci:
                raise NotComparable(f"cpu{cpu} is powered on, and this QEMU board has no PSCI")
            callers = sorted(self.out.online & self.on) or sorted(self.on)
            if not callers:
                raise NotComparable(f"cpu{cpu} is powered on while no CPU is on: QEMU's PSCI "
                                    f"CPU_ON needs a CPU to call it")
            self._cpu_on(callers[0], cpu)
            stop = t.run(cpu, CALL_TIMEOUT)
            if stop.pc != t.park:
                raise TargetError(f"cpu{cpu} did not start at the driver's park loop: {stop}")
            self.on.add(cpu)
        t.set_reg(cpu, REG_CPSR, MODE_HYP | CPSR_AIF)
        values = ARM_ARM_RESETS | dict(self.ex.pl1_registers)
        t.snippet(cpu, driver.reset_registers(values), {})

    def _cpu_on(self, caller: int, cpu: int) -> None:
        """PSCI CPU_ON of ``cpu`` (MPIDR Aff0 = its number on virt) at the park loop; a CPU_OFF that
        QEMU has not finished yet answers ALREADY_ON or ON_PENDING for a moment."""
        for _ in range(200):
            r0 = self.t.snippet(caller, driver.PSCI, {0: driver.PSCI_CPU_ON, 1: cpu,
                                                      2: self.t.park, 3: 0})[0]
            if r0 == driver.PSCI_SUCCESS:
                return
            if r0 not in (driver.PSCI_ALREADY_ON, driver.PSCI_ON_PENDING):
                break
            time.sleep(0.001)
        raise TargetError(f"PSCI CPU_ON of cpu{cpu} from cpu{caller} answered {r0:#x}")

    def _power_off(self, cpu: int) -> None:
        """The vCPU calls PSCI CPU_OFF; it never returns, so it is interrupted once it has passed
        the SMC."""
        t = self.t
        slot = t.driver_pa + cpu * 0x100
        t.write(slot, driver.PSCI.code())
        for _ in range(1000):
            stop = t.call(cpu, slot, {0: driver.PSCI_CPU_OFF}, 0.002)
            if stop.pc == slot + 4:     # past the SMC: off (QEMU finishes it asynchronously)
                break
        else:
            raise TargetError(f"cpu{cpu}: PSCI CPU_OFF did not happen")
        self.on.discard(cpu)
        self.out.online.discard(cpu)
