@ The single-step HYP init (the design the 2013 dual-step mail replaced; Linux v3.9), written for
@ hypemu.
@
@ One HYP page table holds the identity map of this code together with the runtime mappings. The
@ kernel makes one HVC into these vectors (the stub has pointed HVBAR here) with that table, the
@ CPU's HYP stack and the runtime vectors; this code turns the HYP MMU on and keeps running through
@ the identity map, sets the stack and the vectors, and returns. There is no trampoline and no
@ TLB invalidation: the kernel later removes the identity map from the table, so a CPU that comes
@ back online and runs this again takes a prefetch abort at the first fetch after the MMU is on.
@ Argument registers follow CALL_ABI (predefined by the kernel side):
@   CALL_ABI_SEED:  r0:r1 = pgd, r2 = stack, r3 = vectors   (also the v3.9 order)
@   CALL_ABI_LINUX: r0 = stack, r1 = vectors, r2:r3 = pgd

	.align	5
	.global	__kvm_hyp_init
__kvm_hyp_init:
	W(b)	.			@ 0x00 reset
	W(b)	.			@ 0x04 undefined instruction
	W(b)	.			@ 0x08 HVC from HYP
	W(b)	.			@ 0x0c prefetch abort
	W(b)	.			@ 0x10 data abort
	W(b)	__do_hyp_init		@ 0x14 HYP trap: the kernel's HVC
	W(b)	.			@ 0x18 IRQ
	W(b)	.			@ 0x1c FIQ

__do_hyp_init:
.if CALL_ABI == CALL_ABI_LINUX
	mov	r12, r0
	mov	r0, r2
	mov	r2, r12
	mov	r12, r1
	mov	r1, r3
	mov	r3, r12
.endif
	mcrr	p15, 4, r0, r1, c2	@ HTTBR = the one HYP pgd

	@ HTCR from TTBCR's walk attributes, T0SZ = 0
	mrc	p15, 4, r0, c2, c0, 2	@ HTCR
	ldr	r12, =HTCR_MASK
	bic	r0, r0, r12
	mrc	p15, 0, r1, c2, c0, 2	@ TTBCR
	and	r1, r1, #(HTCR_MASK & ~TTBCR_T0SZ)
	orr	r0, r0, r1
	mcr	p15, 4, r0, c2, c0, 2	@ HTCR

	@ VTCR: the same shareability and cacheability, a 40-bit IPA starting at level 1
	mrc	p15, 4, r1, c2, c1, 2	@ VTCR
	ldr	r12, =VTCR_MASK
	bic	r1, r1, r12
	and	r0, r0, #VTCR_HTCR_SH
	orr	r1, r1, r0
	orr	r1, r1, #(VTCR_SL0_L1 | VTCR_T0SZ_40BIT)
	mcr	p15, 4, r1, c2, c1, 2	@ VTCR

	@ HMAIR0/1 = MAIR0/1
	mrc	p15, 0, r0, c10, c2, 0	@ MAIR0
	mcr	p15, 4, r0, c10, c2, 0	@ HMAIR0
	mrc	p15, 0, r0, c10, c2, 1	@ MAIR1
	mcr	p15, 4, r0, c10, c2, 1	@ HMAIR1

	@ HSCTLR: its reset-preserved bits, SCTLR's EE/FI/I/C, plus M and A
	mrc	p15, 4, r0, c1, c0, 0	@ HSCTLR
	ldr	r12, =HSCTLR_MASK
	bic	r0, r0, r12
	mrc	p15, 0, r1, c1, c0, 0	@ SCTLR
	ldr	r12, =(HSCTLR_EE | HSCTLR_FI | HSCTLR_I | HSCTLR_C)
	and	r1, r1, r12
ARM(	orr	r1, r1, #(HSCTLR_M | HSCTLR_A)	)
THUMB(	ldr	r12, =(HSCTLR_M | HSCTLR_A | HSCTLR_TE)	)	@ Thumb-2: TE stays set
THUMB(	orr	r1, r1, r12	)
	orr	r0, r0, r1
	isb
	mcr	p15, 4, r0, c1, c0, 0	@ HSCTLR: the MMU is on from here
	isb				@ fetched through the identity map

	mov	sp, r2			@ SP_hyp = this CPU's HYP stack
	mcr	p15, 4, r3, c12, c0, 0	@ HVBAR = runtime vectors
	eret

	.ltorg
	.global	__kvm_hyp_init_end
__kvm_hyp_init_end:
