@ A broken HYP init: phase 1 turns nothing on and never ERETs (a missing `eret`, a branch to self
@ left from debugging...). The kernel's HVC never returns; hypemu stops it at the step's budget.

	.align	5
	.global	__kvm_hyp_init
__kvm_hyp_init:
	W(b)	.
	W(b)	.
	W(b)	.
	W(b)	.
	W(b)	.
	W(b)	do_init			@ HYP trap
	W(b)	.
	W(b)	.
do_init:
	mcrr	p15, 4, r0, r1, c2	@ HTTBR = boot pgd
wait_forever:
	W(b)	wait_forever
	.global	__kvm_hyp_init_end
__kvm_hyp_init_end:
