/*
 * The HYP init code of hypemu's test tree (written for hypemu, no Linux code), to the contract
 * of Linux v3.10's arch/arm/kvm/init.S: the dual-step init, called twice through the stub's
 * vectors with
 *	phase 1: r0 = 0, r2:r3 = the boot pgd		(MMU on, through the idmap)
 *	phase 2: r0 = the HYP stack, r1 = the runtime vectors, r2:r3 = the runtime pgd
 *						(on through the trampoline page)
 * Everything from __kvm_hyp_init to __kvm_hyp_init_end is the idmap text, one page at most.
 */
#include <linux/linkage.h>
#include <asm/unified.h>
#include <asm/asm-offsets.h>
#include <asm/kvm_arm.h>
#include <asm/kvm_mmu.h>
#include <asm/opcodes-virt.h>

	.text
	.pushsection	.hyp.idmap.text, "ax"
	.align	5
ENTRY(__kvm_hyp_init)
	W(b)	.			@ 0x00 reset
	W(b)	.			@ 0x04 undefined
	W(b)	.			@ 0x08 HVC from HYP
	W(b)	.			@ 0x0c prefetch abort
	W(b)	.			@ 0x10 data abort
	W(b)	hyp_init_call		@ 0x14 the kernel's HVC
	W(b)	.			@ 0x18 IRQ
	W(b)	.			@ 0x1c FIQ

hyp_init_call:
	teq	r0, #0			@ no stack yet: phase 1
	bne	hyp_init_phase2

	mcrr	p15, 4, r2, r3, c2	@ HTTBR: the boot pgd

	@ HTCR: TTBCR's walk attributes, T0SZ 0, the other bits kept
	mrc	p15, 0, r12, c2, c0, 2	@ TTBCR
	ldr	r11, =(HTCR_MASK & ~TTBCR_T0SZ)
	and	r12, r12, r11
	mrc	p15, 4, r1, c2, c0, 2	@ HTCR
	ldr	r11, =HTCR_MASK
	bic	r1, r1, r11
	orr	r1, r1, r12
	mcr	p15, 4, r1, c2, c0, 2	@ HTCR

	@ VTCR: the same walk attributes, a 40-bit IPA from level 1
	mrc	p15, 4, r11, c2, c1, 2	@ VTCR
	ldr	r12, =VTCR_MASK
	bic	r11, r11, r12
	and	r1, r1, #VTCR_HTCR_SH
	orr	r11, r11, r1
	orr	r11, r11, #(KVM_VTCR_SL0 | KVM_VTCR_T0SZ | KVM_VTCR_S)
	mcr	p15, 4, r11, c2, c1, 2	@ VTCR

	@ HMAIRn = MAIRn
	mrc	p15, 0, r12, c10, c2, 0
	mcr	p15, 4, r12, c10, c2, 0
	mrc	p15, 0, r12, c10, c2, 1
	mcr	p15, 4, r12, c10, c2, 1

	@ HSCTLR: SCTLR's EE, FI, I, C; then the MMU and alignment checks on
	mrc	p15, 0, r12, c1, c0, 0	@ SCTLR
	ldr	r11, =(HSCTLR_EE | HSCTLR_FI | HSCTLR_I | HSCTLR_C)
	and	r12, r12, r11
	@ (TE|A|M is no Thumb-2 modified immediate: through a register, in both builds)
 ARM(	ldr	r11, =(HSCTLR_M | HSCTLR_A)			)
 THUMB(	ldr	r11, =(HSCTLR_M | HSCTLR_A | HSCTLR_TE)	)	@ HSCTLR.TE: exceptions in Thumb
	orr	r12, r12, r11
	mrc	p15, 4, r1, c1, c0, 0	@ HSCTLR
	ldr	r11, =HSCTLR_MASK
	bic	r1, r1, r11
	orr	r1, r1, r12
	isb
	mcr	p15, 4, r1, c1, c0, 0	@ HSCTLR: the MMU is on
	isb
	__ERET				@ back to the kernel, running through the idmap

hyp_init_phase2:
	mov	sp, r0
	mcr	p15, 4, r1, c12, c0, 0	@ HVBAR: the runtime vectors

	@ Go on at the same offset of the trampoline page: this page, at a VA both tables map.
	ldr	r0, =TRAMPOLINE_VA
	adr	r1, 1f
	bfi	r0, r1, #0, #PAGE_SHIFT
	mov	pc, r0
1:	mcrr	p15, 4, r2, r3, c2	@ HTTBR: the runtime pgd
	isb
	mcr	p15, 4, r0, c8, c7, 0	@ TLBIALLH: nothing of the boot pgd stays cached
	dsb	ish
	isb
	eret
ENDPROC(__kvm_hyp_init)

	.ltorg

	.globl	__kvm_hyp_init_end
__kvm_hyp_init_end:

	.popsection
