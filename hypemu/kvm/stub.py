"""The HYP stub's contract with the kernel (``hyp.stub``), one class per contract: how a CPU that
enters the kernel in HYP installs the stub, and how KVM then points HVBAR at its init vectors.

- ``BuiltinStub`` (hypemu's ``asm/hyp-stub.S``): ``__hyp_stub_install`` sets HVBAR and drops to
  SVC itself (ERET to LR); HVBAR is set by an HVC through ``kvm_call_hyp`` with r0 = the vectors.
- ``KernelStub`` (Linux v3.10's ``arch/arm/kernel/hyp-stub.S``, v3.9's is the same): the boot CPU
  calls ``__hyp_stub_install``, which records the boot mode in ``__boot_cpu_mode`` (a ``.data``
  word) and falls through to ``__hyp_stub_install_secondary``, the entry of every other CPU and of
  a CPU hotplugged in. It writes HVBAR, HCR, HCPTR, HSTR, HSCTLR, HDCR (CNTHCTL with
  CONFIG_ARM_ARCH_TIMER) and returns *in HYP* with ``bx lr``. The drop to SVC is head.S's
  (``safe_svcmode_maskall``): hypemu's PL1 helper ``kernel_hyp_entry`` (``asm/kvm-call.S``) calls
  the stub and then does it (SPSR_hyp, ELR_hyp, ERET), so both show in the trace. Once in SVC the
  kernel checks the boot mode (``is_hyp_mode_available()``); KVM then sets HVBAR through
  ``__hyp_set_vectors``, the stub's own HVC from SVC.

Every instruction of the stub runs: hypemu calls its entry points and nothing else of it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Protocol

from ..cpu import MODE_HYP
from ..errors import InputError
from ..loader import GuestImage

BOOT_CPU_MODE_MISMATCH = 0x100    # v3.10 asm/virt.h: a CPU booted in another mode than the first
MODE_MASK = 0x1F


class StubContractError(InputError):
    """A stub that ran but left the kernel without HYP mode (``__boot_cpu_mode`` is not HYP): the
    kernel would not start KVM. The stub's fault, so the user's input."""


class StubKernel(Protocol):
    """What a stub contract uses of the kernel side (``kvm.Kernel``)."""

    image: GuestImage
    sentinel: int

    def enter_in_hyp(self, cpu: int, entry: int, r0: int, during: str, detail: str = "") -> None:
        """Power ``cpu`` on in HYP and run from ``entry`` (r0 given, LR = the sentinel) until it
        returns to the sentinel in SVC (``detail``: for the event that records the entry)."""

    def call_pl1(self, cpu: int, entry: int, r0: int, during: str) -> int:
        """From SVC, call ``entry`` with r0 (LR = the sentinel); its r0."""

    def read32(self, pa: int) -> int:
        """A word of RAM."""


class StubContract(ABC):
    name: str

    @abstractmethod
    def install(self, kernel: StubKernel, cpu: int, primary: bool) -> None:
        """The CPU enters the kernel in HYP (MMU off); afterwards it is in SVC, the stub installed.
        ``primary``: the board's boot CPU (its first bring-up), else a secondary or a hotplug."""

    @abstractmethod
    def set_vectors(self, kernel: StubKernel, cpu: int, vectors_pa: int) -> None:
        """From SVC, have the stub point HVBAR at ``vectors_pa``."""


class BuiltinStub(StubContract):
    name = "builtin"

    def install(self, kernel: StubKernel, cpu: int, primary: bool) -> None:
        entry = kernel.image.stub.entry("__hyp_stub_install")   # a BX target: Thumb if bit 0
        kernel.enter_in_hyp(cpu, entry, 0, "the HYP stub install")

    def set_vectors(self, kernel: StubKernel, cpu: int, vectors_pa: int) -> None:
        kernel.call_pl1(cpu, kernel.image.pl1.entry("kvm_call_hyp"), vectors_pa,
                        "the HVC to the stub (set HVBAR)")


class KernelStub(StubContract):
    name = "kernel"

    def install(self, kernel: StubKernel, cpu: int, primary: bool) -> None:
        stub = kernel.image.stub
        name = "__hyp_stub_install" if primary else "__hyp_stub_install_secondary"
        helper = kernel.image.pl1.entry("kernel_hyp_entry")
        kernel.enter_in_hyp(cpu, helper, stub.entry(name), f"{name} (head.S)",
                            detail=f"head.S: {name} at {stub.address(name):#x}, then "
                                   f"safe_svcmode_maskall (kernel_hyp_entry) to SVC")
        self._check_boot_mode(kernel, stub.address("__boot_cpu_mode"))

    @staticmethod
    def _check_boot_mode(kernel: StubKernel, pa: int) -> None:
        """is_hyp_mode_available(): the recorded mode is HYP and no CPU disagreed."""
        mode = kernel.read32(pa)
        if mode & BOOT_CPU_MODE_MISMATCH or mode & MODE_MASK != MODE_HYP:
            raise StubContractError(f"the stub left __boot_cpu_mode = {mode:#x} at {pa:#x} (HYP "
                                    f"is {MODE_HYP:#x}, a mismatch sets {BOOT_CPU_MODE_MISMATCH:#x})"
                                    f": the kernel would find no HYP mode and not start KVM")

    def set_vectors(self, kernel: StubKernel, cpu: int, vectors_pa: int) -> None:
        kernel.call_pl1(cpu, kernel.image.stub.entry("__hyp_set_vectors"), vectors_pa,
                        "__hyp_set_vectors (the HVC to the stub)")


STUBS: dict[str, type[StubContract]] = {s.name: s for s in (BuiltinStub, KernelStub)}
