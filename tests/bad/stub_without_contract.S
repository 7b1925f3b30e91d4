	.global __hyp_stub_install
__hyp_stub_install:
	bx lr
