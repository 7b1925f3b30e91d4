@ The PL1 side's call helper (kvm_call_hyp): every HVC the kernel makes goes through it.
@
@ r0-r3 are handed to HYP untouched; HYP returns with its result in r0. hypemu's PL1 side runs
@ flat (the kernel's MMU is not modelled), so this code sits at its physical address. The same
@ source serves a Thumb-2 build: `hvc #0` is then HVC.W (the kernel's __HVC(0)).

	.global	kvm_call_hyp
kvm_call_hyp:
	hvc	#0
	bx	lr
