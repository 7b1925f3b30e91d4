"""The end state of the dual-step HYP init, per CPU, in both call conventions."""

from __future__ import annotations

import pytest

from conftest import machine
from hypemu import cp15

# Hand-computed for the default board (kernel SCTLR 0x00C5187C, TTBCR 0xB5023500):
#   HSCTLR = reset RES1 bits 0x30C50818 | (SCTLR & (EE|FI|I|C) = 0x1004) | M | A = 0x30C5181F
#   HTCR   = reset 0x80000000 (bit 31 RES1) | (TTBCR & 0x3F00 = 0x3500), T0SZ = 0 -> 0x80003500
EXPECTED_HSCTLR = 0x30C5181F
EXPECTED_HTCR = 0x80003500


@pytest.fixture(scope="module", params=["seed", "linux-3.10"])
def two_cpus(request):
    m = machine(machine={"cpus": 2}, hyp={"call_abi": request.param})
    m.boot()
    return m


@pytest.mark.parametrize("cpu", [0, 1])
def test_end_state_of_each_cpu(two_cpus, cpu):
    m = two_cpus
    regs = m.hyp_registers(cpu)
    lay = m.layout
    assert regs["HTTBR"] == m.kernel.runtime_pgd
    assert regs["HSCTLR"] == EXPECTED_HSCTLR
    assert regs["HSCTLR"] & (cp15.HSCTLR_M | cp15.HSCTLR_A) == cp15.HSCTLR_M | cp15.HSCTLR_A
    assert regs["HTCR"] == EXPECTED_HTCR and regs["HTCR"] & 7 == 0
    assert regs["HMAIR0"] == 0xEEAA4400 and regs["HMAIR1"] == 0xFF000004   # the kernel's MAIR0/1
    assert regs["HVBAR"] == m.symbol("__kvm_hyp_vector")
    # SP_hyp: top of this CPU's stack page, at its kernel VA (PA - 0x80000000 + 0xC0000000)
    assert regs["SP_hyp"] == lay.stacks[cpu] - 0x80000000 + 0xC0000000 + 4096
    assert m.mode(cpu) == "svc"


def test_hsctlr_copies_cache_and_endianness_bits_from_sctlr():
    m = machine()
    # A kernel running with caches off and FI on: C and I must be clear in HSCTLR, FI set.
    sctlr = (cp15.KERNEL_SCTLR & ~(cp15.SCTLR_C | cp15.SCTLR_I)) | cp15.SCTLR_FI
    m.kernel.install_stub(0)                  # powers the CPU on: its registers reset
    m.core.cpus[0].sysregs["SCTLR"] = sctlr   # what the kernel programmed before KVM init
    m.kernel.init_cpu(0)
    hsctlr = m.hyp_registers(0)["HSCTLR"]
    # 0x30C50818 | FI (0x200000) | M | A = 0x30E50819 | 0x2 = 0x30E5081B
    assert hsctlr == 0x30E5081B


def test_runtime_sp_seen_by_a_hyp_function(booted):
    # The dispatcher pushed {r0,r1,r2} and popped them, then pushed LR and SPSR: 8 bytes below top.
    top = booted.hyp_registers(0)["SP_hyp"]
    assert booted.call(0, "hyp_get_sp") == top - 8
    assert booted.hyp_registers(0)["SP_hyp"] == top
