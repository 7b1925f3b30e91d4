"""Runtime HYP calls through the HVC dispatcher, and the TLB model as the guest sees it."""

from __future__ import annotations

from hypemu import lpae


def test_hyp_probe_returns_the_kernel_data_word(booted):
    lay = booted.layout
    assert booted.call(0, "hyp_probe") == booted.read32(lay.hyp_data)
    booted.write_phys(lay.hyp_data, (0x600DF00D).to_bytes(4, "little"))
    assert booted.call(0, "hyp_probe") == 0x600DF00D


def test_hyp_write_then_read_round_trip(booted):
    lay = booted.layout
    va = lay.kva(lay.hyp_data) + 0x40
    assert booted.call(0, "hyp_write", va, 0xCAFEBABE) == 0xCAFEBABE
    assert booted.call(0, "hyp_read", va) == 0xCAFEBABE
    assert booted.read32(lay.hyp_data + 0x40) == 0xCAFEBABE


def test_call_counts_exact_instructions(booted):
    # kvm_call_hyp: hvc (1); vector: b (1); dispatcher: push, mrc, lsr, cmp, bne, pop (6),
    # push, mrs, push, 4 x mov, blx (8); hyp_sum(va, 4 words, 1 round): push, mov (2),
    # mov, mov (2), 4 x (ldr, add, subs, bne) (16), subs, bne (2), mov, pop, bx (3) = 25;
    # dispatcher: pop, msr, pop, eret (4); bx lr (1); the return sentinel (1).  Total 47.
    before = booted.core.stats.instructions
    va = booted.layout.kva(booted.layout.hyp_data)
    booted.call(0, "hyp_sum", va, 4, 1)
    assert booted.core.stats.instructions - before == 47


def _remap_data_page(m, new_pa: int) -> None:
    """Point the runtime descriptor of the HYP data page elsewhere, as the kernel could, without
    any TLB maintenance."""
    lay = m.layout
    va = lay.kva(lay.hyp_data)
    lpae.unmap_range(m.kernel, m.kernel.runtime_pgd, va, 4096)     # the kernel side as table editor
    lpae.map_range(m.kernel, lambda: 1 / 0, m.kernel.runtime_pgd, va, new_pa, 4096,
                   lpae.PAGE_HYP)


def _other_page(m, value: int) -> int:
    pa = m.layout.banks[0].base + (32 << 20)
    m.write_phys(pa, value.to_bytes(4, "little"))
    return pa


def test_tlb_keeps_the_old_translation_until_tlbimvah(booted):
    m = booted
    old = m.call(0, "hyp_probe")
    _remap_data_page(m, _other_page(m, 0x11112222))
    assert m.call(0, "hyp_probe") == old            # served from the TLB model: stale
    cached_before = len(m.core.cpus[0].tlb)
    m.call(0, "hyp_tlbi_va", m.layout.kva(m.layout.hyp_data))
    assert len(m.core.cpus[0].tlb) == cached_before - 1   # only that VA's entry went
    walks = m.core.stats.walks
    assert m.call(0, "hyp_probe") == 0x11112222
    assert m.core.stats.walks == walks + 1            # re-walked only that VA


def test_tlbiallh_drops_everything(booted):
    m = booted
    m.call(0, "hyp_probe")
    _remap_data_page(m, _other_page(m, 0x33334444))
    m.call(0, "hyp_tlbi_all")
    assert m.call(0, "hyp_probe") == 0x33334444


def test_inner_shareable_invalidation_reaches_the_other_cpu(booted2):
    m = booted2
    old = m.call(1, "hyp_probe")
    _remap_data_page(m, _other_page(m, 0x55556666))
    m.call(0, "hyp_tlbi_va", m.layout.kva(m.layout.hyp_data))     # local form: cpu1 keeps it
    assert m.call(1, "hyp_probe") == old
    m.call(0, "hyp_tlbi_va_is", m.layout.kva(m.layout.hyp_data))  # IS form: reaches cpu1
    assert m.call(1, "hyp_probe") == 0x55556666


def test_tlbiallhis_reaches_the_other_cpu(booted2):
    m = booted2
    m.call(1, "hyp_probe")
    _remap_data_page(m, _other_page(m, 0x77778888))
    m.call(0, "hyp_tlbi_all_is")
    assert len(m.core.cpus[1].tlb) == 0
    assert m.call(1, "hyp_probe") == 0x77778888


def test_guest_changes_its_own_descriptor_tlb_stays_stale_until_tlbimvah(booted):
    """Within one HYP run (one emu_start): the guest rewrites the level-3 descriptor of the data
    page. Without a TLBI the old translation is still used (the model and Unicorn's soft TLB agree);
    after TLBIMVAH the next load walks the new descriptor. If Unicorn's TLB kept a translation the
    model dropped, the last load would still see the old page."""
    from hypemu.asm import assemble
    m = booted
    lay = m.layout
    data_va = lay.kva(lay.hyp_data)
    desc_pa = m.translate(0, data_va, pgd="runtime").descriptors[-1]   # the level-3 entry
    desc_va = m.map_hyp(desc_pa & ~0xFFF, 4096) + (desc_pa & 0xFFF)
    new_pa = _other_page(m, 0x99990000)
    new_desc = lpae.encode_page(new_pa, lpae.PAGE_HYP)
    assert new_desc >> 32 == m.read32(desc_pa + 4)        # only the low word changes
    code_pa = lay.banks[0].base + (40 << 20)
    code_va = m.map_hyp(code_pa, 4096)
    code = assemble("""
        push    {r4, r5, r6}
        ldr     r4, [r0]            @ caches the translation
        str     r2, [r1]            @ the new descriptor
        dsb     ish
        ldr     r5, [r0]            @ no TLBI yet: the old page
        mcr     p15, 4, r0, c8, c7, 1   @ TLBIMVAH
        dsb     ish
        isb
        ldr     r6, [r0]            @ the new page
        cmp     r4, r5
        moveq   r0, r6
        movne   r0, #0
        pop     {r4, r5, r6}
        bx      lr
    """, code_va, filename="stale.S").code
    m.core.load_code(code_pa, code)
    assert m.call(0, code_va, data_va, desc_va, new_desc & 0xFFFFFFFF) == 0x99990000
    assert m.read32(desc_pa) == new_desc & 0xFFFFFFFF
    # ... and the checks saw both mistakes: a live descriptor rewritten in place, and the load
    # served by the stale entry
    found = {(h.kind, h.pc - code_va) for h in m.hazards}
    assert found == {("bbm", 8), ("stale_tlb", 16)}
