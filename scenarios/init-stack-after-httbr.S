@ A dual-step init whose phase 2 uses the runtime HYP stack right after switching HTTBR to the
@ runtime pgd (as init code that saves registers might). The stack VA is mapped only in the runtime
@ table, so the push is correct only once the HTTBR write is synchronized: the ISB at
@ runtime_stack_isb is what makes it so. scenarios/missing-isb.yaml removes that ISB by injection.
@ Otherwise the built-in hyp-init.S, unchanged.
@ The dual-step HYP init (the design of the 2013 KVM/ARM mail, written for hypemu).
@
@ The kernel makes two HVCs into these vectors (the stub has pointed HVBAR here):
@   phase 1: MMU off, "stack" = 0: load the boot pgd into HTTBR, derive HTCR/VTCR from TTBCR,
@            copy MAIR into HMAIR, turn the HYP MMU on, ERET. We keep running through the idmap.
@   phase 2: set the stack and the runtime vectors, jump to this same code at TRAMPOLINE_VA (the
@            page is mapped there in both tables), switch HTTBR to the runtime pgd, invalidate the
@            HYP TLB, ERET.
@ Argument registers follow CALL_ABI (predefined by the kernel side):
@   CALL_ABI_SEED:  r0:r1 = pgd, r2 = stack (0 in phase 1), r3 = vectors
@   CALL_ABI_LINUX: r0 = stack (0 in phase 1), r1 = vectors, r2:r3 = pgd   (merged v3.10 form)
@ Everything up to __kvm_hyp_init_end must stay in one page, or the kernel bounces it.

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
	@ Bring the v3.10 arguments into this code's registers: r0:r1 pgd, r2 stack, r3 vectors.
	mov	r12, r0
	mov	r0, r2
	mov	r2, r12
	mov	r12, r1
	mov	r1, r3
	mov	r3, r12
.endif
	cmp	r2, #0			@ a stack? then this is phase 2
	bne	phase2

	@ ---- phase 1: turn the HYP MMU on with the boot pgd ----
	mcrr	p15, 4, r0, r1, c2	@ HTTBR = boot pgd

	@ HTCR: keep its other bits, take TTBCR's walk attributes, T0SZ = 0 (32-bit input)
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

	@ HMAIR0/1 = MAIR0/1: the HYP tables use the kernel's memory attribute indices
	mrc	p15, 0, r0, c10, c2, 0	@ MAIR0
	mcr	p15, 4, r0, c10, c2, 0	@ HMAIR0
	mrc	p15, 0, r0, c10, c2, 1	@ MAIR1
	mcr	p15, 4, r0, c10, c2, 1	@ HMAIR1

	@ HSCTLR: its reset-preserved bits, SCTLR's EE/FI/I/C, plus M (MMU) and A (alignment)
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
	mcr	p15, 4, r0, c1, c0, 0	@ HSCTLR: the MMU is on from here
	isb

	@ End of phase 1: back to the kernel, HYP MMU on with the boot pgd
	eret

phase2:
	@ ---- phase 2: stack, vectors, trampoline, runtime pgd ----
	mov	sp, r2			@ SP_hyp = this CPU's HYP stack
	mcr	p15, 4, r3, c12, c0, 0	@ HVBAR = runtime vectors

	@ Continue at the same offset in the trampoline page: the same physical page at a VA
	@ that both tables map.
	ldr	r2, =TRAMPOLINE_VA
	adr	r3, trampoline_target
	bfi	r2, r3, #0, #PAGE_SHIFT
THUMB(	orr	r2, r2, #1	)
	bx	r2

trampoline_target:
	mcrr	p15, 4, r0, r1, c2	@ HTTBR = runtime pgd
	.global	runtime_stack_isb
runtime_stack_isb:
	isb				@ the runtime pgd is in use from here...
	push	{r0, r1}		@ ... so the runtime stack (SP_hyp) can be used
	pop	{r0, r1}
	mcr	p15, 4, r0, c8, c7, 0	@ TLBIALLH: no boot-table entry survives
	dsb	ish
	isb
	eret

	.ltorg
	.global	__kvm_hyp_init_end
__kvm_hyp_init_end:
