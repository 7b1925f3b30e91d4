@ Every relocation the ELF loader applies, against an external symbol (hypemu's ELF tests). A
@ plain .s: it needs a linker, so only GNU as reads it (the built-in assembler has none).
	.text
	.global	__kvm_hyp_init
__kvm_hyp_init:
	movw	r0, #:lower16:far + 0x10
	movt	r0, #:upper16:far + 0x10
	bl	far
	b	far
	.word	far + 8				@ R_ARM_ABS32
	.word	far - .				@ R_ARM_REL32
	.global	__kvm_hyp_init_end
__kvm_hyp_init_end:
