@ Every Thumb relocation the ELF loader applies (hypemu's ELF tests): against external symbols
@ (far: Thumb code, armfar: ARM code) and against a Thumb function of its own (T = 1). A plain .s
@ for GNU as -mthumb.
	.syntax unified
	.thumb
	.text
	.globl	tfunc
	.type	tfunc, %function
tfunc:
	movw	r0, #:lower16:far + 0x10	@ R_ARM_THM_MOVW_ABS_NC
	movt	r0, #:upper16:far + 0x10	@ R_ARM_THM_MOVT_ABS
	bl	far				@ R_ARM_THM_CALL (BL)
	b.w	far				@ R_ARM_THM_JUMP24
	blx	armfar				@ R_ARM_THM_CALL (BLX, to ARM code)
	movw	r1, #:lower16:tfunc		@ R_ARM_THM_MOVW_ABS_NC, T = 1
	.align	2
	.word	tfunc				@ R_ARM_ABS32, T = 1
