@ The boot-time HYP stub (after arch/arm/kernel/hyp-stub.S, written for hypemu).
@
@ A kernel entered in HYP mode installs these vectors in HVBAR and drops to SVC. Later KVM uses
@ the stub's only service: an HVC with r0 = -1 reads HVBAR into r0, any other r0 is written to
@ HVBAR (the physical address of the HYP init vectors). Runs with the HYP MMU off (flat).

	.align	5
	.global	__hyp_stub_vectors
__hyp_stub_vectors:
	b	.			@ 0x00 reset (unused in HYP)
	b	.			@ 0x04 undefined instruction
	b	.			@ 0x08 HVC/SVC from HYP
	b	.			@ 0x0c prefetch abort
	b	.			@ 0x10 data abort
	b	__hyp_stub_do_trap	@ 0x14 HYP trap: the kernel's HVC
	b	.			@ 0x18 IRQ
	b	.			@ 0x1c FIQ

__hyp_stub_do_trap:
	cmp	r0, #-1
	mrceq	p15, 4, r0, c12, c0, 0	@ r0 = HVBAR
	mcrne	p15, 4, r0, c12, c0, 0	@ HVBAR = r0
	eret

@ __hyp_stub_install: run in HYP (MMU off) when the CPU enters the kernel. Points HVBAR at the
@ stub vectors, then drops to SVC with A/I/F masked, returning to LR.
	.global	__hyp_stub_install
__hyp_stub_install:
	adr	r7, __hyp_stub_vectors
	mcr	p15, 4, r7, c12, c0, 0	@ HVBAR = the stub vectors
	mov	r7, #(PSR_MODE_SVC | PSR_A_BIT | PSR_I_BIT | PSR_F_BIT)
	msr	spsr_cxsf, r7		@ SPSR_hyp: SVC, masked
	msr	ELR_hyp, lr		@ return address
	eret

	.global	__hyp_stub_end
__hyp_stub_end:
