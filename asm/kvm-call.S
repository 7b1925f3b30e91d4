@ The PL1 side's call helper (kvm_call_hyp): every HVC the kernel makes goes through it.
@
@ r0-r3 are handed to HYP untouched; HYP returns with its result in r0. hypemu's PL1 side runs
@ flat (the kernel's MMU is not modelled), so this code sits at its physical address. The same
@ source serves a Thumb-2 build: `hvc #0` is then HVC.W (the kernel's __HVC(0)).

	.global	kvm_call_hyp
kvm_call_hyp:
	hvc	#0
	bx	lr

@ kernel_hyp_entry: what head.S does around a stub that returns in HYP (the kernel's own stub,
@ hyp.stub: kernel). r0 = the stub's install entry, lr = where the kernel continues in SVC. The
@ stub is called in HYP (it keeps r8 and r9: the kernel's stub uses r4-r7), then the drop to SVC
@ that safe_svcmode_maskall makes: SPSR_hyp = SVC with A, I and F masked, ELR_hyp = the return
@ address, ERET.
	.global	kernel_hyp_entry
kernel_hyp_entry:
	mov	r8, lr
	blx	r0			@ __hyp_stub_install(_secondary): returns with bx lr, in HYP
	mrs	r9, cpsr
	bic	r9, r9, #0x1f		@ the mode field
	orr	r9, r9, #PSR_MODE_SVC
	orr	r9, r9, #(PSR_A_BIT | PSR_I_BIT | PSR_F_BIT)
	msr	spsr_cxsf, r9
	msr	ELR_hyp, r8
	eret
