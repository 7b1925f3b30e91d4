@ A HYP init written the way arch/arm/kvm/init.S of Linux v3.10 is (the merged dual-step form),
@ with its register convention: r0 = stack (0 in phase 1), r1 = vectors, r2:r3 = pgd.
@ hypemu predefines TRAMPOLINE_VA, PAGE_SHIFT, HTCR_MASK, HSCTLR_MASK, ... (see README).
@ As the kernel's, it builds for either instruction set (kernel.isa): W(b) keeps each vector 4
@ bytes in Thumb-2, THUMB() lines keep HSCTLR.TE set; `mov pc` stays in the current state.

	.text
	.align	5
	.global	__kvm_hyp_init
__kvm_hyp_init:
	.word	0			@ reset (never taken in HYP)
	W(b)	.			@ undefined
	W(b)	.			@ hvc from HYP
	W(b)	.			@ prefetch abort
	W(b)	.			@ data abort
	W(b)	__do_hyp_init		@ HYP trap
	W(b)	.			@ IRQ
	W(b)	.			@ FIQ

__do_hyp_init:
	cmp	r0, #0			@ a stack pointer? then it is phase 2
	bne	phase2

	mcrr	p15, 4, r2, r3, c2	@ HTTBR = boot pgd

	mrc	p15, 4, r0, c2, c0, 2	@ HTCR
	ldr	r12, =HTCR_MASK
	bic	r0, r0, r12
	mrc	p15, 0, r1, c2, c0, 2	@ TTBCR
	and	r1, r1, #(HTCR_MASK & ~TTBCR_T0SZ)
	orr	r0, r0, r1
	mcr	p15, 4, r0, c2, c0, 2	@ HTCR

	mrc	p15, 0, r0, c10, c2, 0	@ MAIR0 -> HMAIR0
	mcr	p15, 4, r0, c10, c2, 0
	mrc	p15, 0, r0, c10, c2, 1	@ MAIR1 -> HMAIR1
	mcr	p15, 4, r0, c10, c2, 1

	mrc	p15, 4, r0, c1, c0, 0	@ HSCTLR
	ldr	r12, =HSCTLR_MASK
	bic	r0, r0, r12
	mrc	p15, 0, r1, c1, c0, 0	@ SCTLR
	ldr	r12, =(HSCTLR_EE | HSCTLR_FI | HSCTLR_I | HSCTLR_C)
	and	r1, r1, r12
ARM(	orr	r1, r1, #(HSCTLR_M | HSCTLR_A)	)
THUMB(	ldr	r12, =(HSCTLR_M | HSCTLR_A | HSCTLR_TE)	)
THUMB(	orr	r1, r1, r12	)
	orr	r0, r0, r1
	isb
	mcr	p15, 4, r0, c1, c0, 0	@ HSCTLR: MMU on
	isb
	eret				@ end of phase 1

phase2:
	mov	sp, r0			@ HYP stack
	mcr	p15, 4, r1, c12, c0, 0	@ HVBAR = runtime vectors

	ldr	r0, =TRAMPOLINE_VA	@ into the trampoline page
	adr	r1, target
	bfi	r0, r1, #0, #PAGE_SHIFT
	mov	pc, r0

target:
	mcrr	p15, 4, r2, r3, c2	@ HTTBR = runtime pgd
	isb
	mcr	p15, 4, r0, c8, c7, 0	@ TLBIALLH
	dsb	ish
	eret

	.ltorg
	.global	__kvm_hyp_init_end
__kvm_hyp_init_end:
