@ A user init source with a typo on line 7 (tests/bad/code_broken.yaml points here).
	.align	5
	.global	__kvm_hyp_init
__kvm_hyp_init:
	b	.
	b	__do_hyp_init
	bogus	r0, r1		@ line 7: not an ARM instruction
__do_hyp_init:
	eret
	.global	__kvm_hyp_init_end
__kvm_hyp_init_end:
