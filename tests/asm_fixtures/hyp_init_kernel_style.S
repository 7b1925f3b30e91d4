/*
 * A HYP init page written the way the Linux kernel writes its .S files (sections, ENTRY/ENDPROC,
 * W(), .type/.size, @ comments), to check that hypemu.asm accepts that dialect.
 * Seed ABI: r0:r1 = pgd, r2 = stack (0 in phase 1), r3 = runtime vectors.
 * Predefined constants expected: TRAMPOLINE_VA, PAGE_SHIFT, HTCR_MASK.
 */
	.text
	.pushsection	.hyp.idmap.text, "ax"
	.arm
	.syntax	unified

	.align	5
	.globl	__kvm_hyp_init
__kvm_hyp_init:
	W(b)	.			@ 0x00 reset (unused)
	W(b)	.			@ 0x04 undefined
	W(b)	.			@ 0x08 hvc from HYP
	W(b)	.			@ 0x0c prefetch abort
	W(b)	.			@ 0x10 data abort
	W(b)	__do_hyp_init		@ 0x14 hyp trap
	W(b)	.			@ 0x18 irq
	W(b)	.			@ 0x1c fiq

ENTRY(__do_hyp_init)
	cmp	r2, #0			@ phase 1 or phase 2?
	bne	phase2

	mcrr	p15, 4, r0, r1, c2	@ HTTBR <- boot pgd
	mrc	p15, 0, r0, c2, c0, 2	@ TTBCR
	ldr	r2, =HTCR_MASK
	and	r0, r0, r2
	mcr	p15, 4, r0, c2, c0, 2	@ HTCR
	mrc	p15, 4, r0, c1, c0, 0	@ HSCTLR
	orr	r0, r0, #(1 << 0) | (1 << 1)	/* M and A */
	mcr	p15, 4, r0, c1, c0, 0
	isb
	eret

phase2:
	msr	SP_hyp, r2
	mcr	p15, 4, r3, c12, c0, 0	@ HVBAR <- runtime vectors
	ldr	r1, =TRAMPOLINE_VA
	adr	r0, target
	bfi	r1, r0, #0, #PAGE_SHIFT
	mov	pc, r1

target:					@ now running at the trampoline VA
	mcrr	p15, 4, r0, r1, c2
	isb
	mcr	p15, 4, r0, c8, c7, 0	@ TLBIALLH
	dsb	ish
	eret
ENDPROC(__do_hyp_init)
	.type	__do_hyp_init, %function
	.size	__do_hyp_init, . - __do_hyp_init

	.ltorg

	.globl	__kvm_hyp_init_end
__kvm_hyp_init_end:

	.popsection
