@ The boot-time HYP stub (after arch/arm/kernel/hyp-stub.S, written for hypemu).
@
@ A kernel entered in HYP mode installs these vectors in HVBAR and drops to SVC. Later KVM uses
@ the stub's only service: an HVC with r0 = -1 reads HVBAR into r0, any other r0 is written to
@ HVBAR (the physical address of the HYP init vectors). Runs with the HYP MMU off (flat).
@ Built for Thumb-2 (kernel.isa: thumb2), ARM()/THUMB()/W() pick the lines as the kernel's do: the
@ vectors stay 4 bytes each (W(b)), HSCTLR.TE makes every exception to HYP enter them in Thumb
@ state, and the ERET to SVC returns to Thumb code.

	.align	5
	.global	__hyp_stub_vectors
__hyp_stub_vectors:
	W(b)	.			@ 0x00 reset (unused in HYP)
	W(b)	.			@ 0x04 undefined instruction
	W(b)	.			@ 0x08 HVC/SVC from HYP
	W(b)	.			@ 0x0c prefetch abort
	W(b)	.			@ 0x10 data abort
	W(b)	__hyp_stub_do_trap	@ 0x14 HYP trap: the kernel's HVC
	W(b)	.			@ 0x18 IRQ
	W(b)	.			@ 0x1c FIQ

__hyp_stub_do_trap:
	cmp	r0, #-1			@ Thumb-2: an implicit ITE EQ, as -mimplicit-it=always
	mrceq	p15, 4, r0, c12, c0, 0	@ r0 = HVBAR
	mcrne	p15, 4, r0, c12, c0, 0	@ HVBAR = r0
	eret

@ __hyp_stub_install: run in HYP (MMU off) when the CPU enters the kernel. Points HVBAR at the
@ stub vectors, then drops to SVC with A/I/F masked, returning to LR.
	.global	__hyp_stub_install
__hyp_stub_install:
	adr	r7, __hyp_stub_vectors
	mcr	p15, 4, r7, c12, c0, 0	@ HVBAR = the stub vectors
THUMB(	mrc	p15, 4, r7, c1, c0, 0	)	@ HSCTLR
THUMB(	orr	r7, r7, #HSCTLR_TE	)	@ exceptions to HYP in Thumb state
THUMB(	mcr	p15, 4, r7, c1, c0, 0	)
	mov	r7, #(PSR_MODE_SVC | PSR_A_BIT | PSR_I_BIT | PSR_F_BIT)
THUMB(	orr	r7, r7, #PSR_T_BIT	)	@ return to Thumb code
	msr	spsr_cxsf, r7		@ SPSR_hyp: SVC, masked
	msr	ELR_hyp, lr		@ return address
	eret

	.global	__hyp_stub_end
__hyp_stub_end:
