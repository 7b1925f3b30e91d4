"""The HYP model against hand-computed expectations: trapped instructions, exception entry and its
syndromes (HSR, HDFAR, HIFAR, ELR_hyp), permissions, the instruction budget."""

from __future__ import annotations

import pytest

from hypemu import decode, lpae
from hypemu.asm import assemble
from hypemu.kvm import BudgetExhausted, GuestFault
from hypemu.walker import Fault

SCRATCH_OFFSET = 48 << 20   # a free 1 MiB in the default board, mapped on demand per test


def _hyp_code(m, source: str, attrs=lpae.PAGE_HYP) -> int:
    """Place ``source`` on a fresh page mapped in the runtime table; return its HYP VA."""
    pa = m.layout.banks[0].base + SCRATCH_OFFSET
    va = m.layout.kva(pa)
    code = assemble(source, va, filename="snippet.S").code
    m.core.load_code(pa, code)
    lpae.map_range(m.core.engine, m.kernel.alloc_table, m.kernel.runtime_pgd, va, pa, 4096, attrs)
    return va


def _fault(m, cpu, fn, *args):
    with pytest.raises(GuestFault) as err:
        m.call(cpu, fn, *args)
    return err.value.record


def test_unknown_cp15_register_in_hyp_is_undefined(booted):
    va = _hyp_code(booted, "mrc p15, 4, r0, c15, c15, 7\nbx lr\n")   # no such register
    fault = _fault(booted, 0, va)
    regs = booted.hyp_registers(0)
    assert (fault.kind, fault.pc, fault.hsr) == ("undefined", va, 0x02000000)
    assert regs["HSR"] == 0x02000000 and regs["ELR_hyp"] == va
    assert booted.events[-1].name == "undefined" and booted.events[-1].detail == f"-> {regs['HVBAR'] + 4:#x}"


def test_hyp_register_from_svc_is_undefined(booted):
    m, pa = booted, booted.layout.banks[0].base + SCRATCH_OFFSET
    m.core.load_code(pa, assemble("mcr p15, 4, r0, c12, c0, 0\nbx lr\n", pa).code)
    m.core.select(0)
    m.core.set_reg(14, m.kernel.sentinel)
    result = m.core.run_guest(pa, 100)
    # Taken to PL1, whose vectors hypemu does not model: no HSR.
    assert result.stop == "fault" and (result.fault.kind, result.fault.pc, result.fault.hsr) == (
        "undefined", pa, None)


def test_hvc_from_hyp_takes_the_hvc_vector(booted):
    va = _hyp_code(booted, "hvc #5\nbx lr\n")
    _fault(booted, 0, va)   # the runtime HVC-from-HYP entry is a bad-exception trap (udf)
    entry = next(e for e in booted.events if e.kind == "exception" and e.name == "hvc")
    hvbar = booted.hyp_registers(0)["HVBAR"]
    # HSR: EC 0x12 << 26 | IL | imm16 5 = 0x4A000005; taken in HYP to HVBAR + 0x08
    assert entry.value == 0x4A000005 and entry.detail == f"-> {hvbar + 8:#x}"


def test_data_abort_reports_the_exact_va(booted):
    fault = _fault(booted, 0, "hyp_read", 0xD0000124)
    # VA 0xD0000124: level-1 entry 3 is a table, level-2 index 0x80 is invalid -> translation
    # fault, level 2. HSR = EC 0x25 << 26 | IL | DFSC 0b000110 = 0x96000006.
    assert (fault.kind, fault.va, fault.fsc, fault.level, fault.hsr) == (
        "data_abort", 0xD0000124, "translation", 2, 0x96000006)
    regs = booted.hyp_registers(0)
    assert regs["HSR"] == 0x96000006 and booted.core.cpus[0].sysregs["HDFAR"] == 0xD0000124
    assert regs["ELR_hyp"] == booted.symbol("hyp_read")        # the faulting load


def test_write_to_a_read_only_page_is_a_permission_fault_with_wnr(booted):
    m = booted
    pa = m.layout.banks[0].base + SCRATCH_OFFSET
    va = m.layout.kva(pa)
    ro = lpae.LeafAttrs(attr_indx=7, ap=0b11, sh=3, af=True)   # AP[2] = 1: read-only
    lpae.map_range(m.core.engine, m.kernel.alloc_table, m.kernel.runtime_pgd, va, pa, 4096, ro)
    m.write_phys(pa + 0x10, (0xABCD).to_bytes(4, "little"))
    assert m.call(0, "hyp_read", va + 0x10) == 0xABCD          # reads are allowed
    fault = _fault(m, 0, "hyp_write", va + 0x12, 1)
    # HSR = 0x94000000 | IL 0x02000000 | WnR 0x40 | DFSC permission level 3 0b001111 = 0x9600004F
    assert (fault.va, fault.fsc, fault.level, fault.hsr) == (va + 0x12, "permission", 3, 0x9600004F)


def test_access_flag_fault(booted):
    m = booted
    pa = m.layout.banks[0].base + SCRATCH_OFFSET
    va = m.layout.kva(pa)
    old = lpae.LeafAttrs(attr_indx=7, ap=0b01, sh=3, af=False)
    lpae.map_range(m.core.engine, m.kernel.alloc_table, m.kernel.runtime_pgd, va, pa, 4096, old)
    fault = _fault(m, 0, "hyp_read", va + 8)
    assert (fault.fsc, fault.level, fault.hsr) == ("access_flag", 3, 0x9600000B)   # DFSC 0b001011


def test_prefetch_abort_on_a_call_to_an_unmapped_va(booted):
    fault = _fault(booted, 0, 0xD0000000)
    # IFSC translation level 2 = 0b000110; EC 0x21 << 26 | IL = 0x86000000 -> 0x86000006
    assert (fault.kind, fault.pc, fault.va, fault.hsr) == ("prefetch_abort", 0xD0000000,
                                                           0xD0000000, 0x86000006)
    assert booted.core.cpus[0].sysregs["HIFAR"] == 0xD0000000


def test_execute_never_page(booted):
    xn = lpae.LeafAttrs(attr_indx=7, ap=0b01, sh=3, af=True, xn=True)
    va = _hyp_code(booted, "mov r0, #1\nbx lr\n", attrs=xn)
    fault = _fault(booted, 0, va)
    assert (fault.kind, fault.fsc, fault.level, fault.hsr) == ("prefetch_abort", "permission", 3,
                                                               0x8600000F)


def test_mrs_cpsr_sees_the_modelled_mode(booted):
    # MRS CPSR does not trap in Unicorn's User mode: the loader patched it to a trap marker.
    va = _hyp_code(booted, "mrs r0, cpsr\nbx lr\n")
    assert booted.call(0, va) & 0x1F == 0x1A                   # HYP
    assert booted.call(0, va) & 0x1C0 == 0x1C0                 # A, I, F masked on HYP entry


def test_elr_hyp_holds_the_return_address_of_the_hvc(booted):
    va = _hyp_code(booted, "mrs r0, ELR_hyp\nbx lr\n")
    assert booted.call(0, va) == booted.kernel.image.pl1.address("kvm_call_hyp") + 4


def test_svc_stack_pointer_survives_hyp_calls(booted):
    m = booted
    m.core.select(0)
    m.core.set_reg(13, 0xC0801230)          # the kernel's SVC SP
    m.call(0, "hyp_probe")
    assert m.core.reg(13) == 0xC0801230


def test_budget_stops_a_runaway_hyp_function_exactly(booted):
    m = booted
    va = _hyp_code(m, "spin: b spin\n")
    m.kernel.budget.limit, m.kernel.budget.used = 5000, 0
    before = m.core.stats.instructions
    with pytest.raises(BudgetExhausted) as err:
        m.call(0, va)
    assert err.value.pc == va and m.core.stats.instructions - before == 5000


def test_translate_uses_the_tlb_model_first(booted):
    va = booted.layout.kva(booted.layout.hyp_data)
    booted.call(0, "hyp_probe")
    cached = booted.core.cpus[0].tlb.lookup(va)
    got = booted.translate(0, va)
    assert cached is not None and got == cached and got.source == "tlb"   # the entry, marked
    assert isinstance(booted.translate(0, 0xD0000000), Fault)


@pytest.mark.parametrize("word, op, fields", [
    (0xE160006E, "eret", {}),
    (0xE1400F75, "hvc", {"imm": 0xF5}),                              # hvc #0xF5: imm12 0xF, imm4 5
    (0xEE8C0F10, "mcr", {"opc1": 4, "crn": 12, "crm": 0, "opc2": 0, "rt": 0}),  # HVBAR <- r0
    (0xEE1D0F30, "mrc", {"opc1": 0, "crn": 13, "crm": 0, "opc2": 1, "rt": 0}),
    (0xEC410F42, "mcrr", {"opc1": 4, "crm": 2, "rt": 0, "rt2": 1}),   # HTTBR <- r1:r0
    (0xE12EF30E, "msr_banked", {"r": 0, "sysm": 0b11110, "rt": 14}),  # msr ELR_hyp, lr
    (0xE10E0300, "mrs_banked", {"r": 0, "sysm": 0b11110, "rt": 0}),   # mrs r0, ELR_hyp
    (0xE14FE000, "mrs", {"r": 1, "rt": 14}),                          # mrs lr, SPSR
    (0xE16FF00E, "msr", {"r": 1, "mask": 0xF, "rt": 14}),             # msr SPSR_fsxc, lr
    (0xF10C0080, "cps", {"mask": 0b11, "opc2": 0b010}),               # cpsid i
])
def test_decode(word, op, fields):
    insn = decode.decode_insn(word)
    assert insn.op == op
    for name, value in fields.items():
        assert getattr(insn, name) == value, name


def test_decode_leaves_ordinary_and_undefined_words_alone():
    assert decode.decode_insn(0xE1A00000) is None       # mov r0, r0
    assert decode.decode_insn(0xE7FDEAF0) is None       # udf: an undefined instruction
    assert decode.needs_patch(0xE10F0000)          # mrs r0, cpsr: does not trap in User mode
    assert not decode.needs_patch(0xE14FE000)      # mrs lr, spsr: traps by itself
