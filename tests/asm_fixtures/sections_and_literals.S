/*
 * Sections, padding and `ldr =` the way GNU as 2.40 assembles them, for the differential test
 * (tests/test_asm_gnu.py): written for hypemu, no kernel text.
 */
	.equ	SMALL, 0xff
	.equ	ROTATED, 0xff000000
	.equ	NEGATED, 0xfffffff0		@ ~0xf: an MVN
	.equ	WIDE, 0x12345678		@ neither: a literal

	.text
	.globl	entry
entry:	ldr	r0, =SMALL
	ldr	r1, =ROTATED
	ldrne	r2, =NEGATED
	ldr	r3, =WIDE
	ldr	r4, =LATER			@ defined below: a literal, as in GNU as
	ldr	r5, =counter			@ an address: a literal
	adr	r6, offset
	ldr	r7, [r6]
	ldr	r7, [r6, r7]			@ the .data word, through a PC-relative offset
	.byte	1, 2, 3
	.align	3				@ zeros up to a word, then a NOP
	bx	lr

offset:	.long	counter - .			@ from .text into .data

	.pushsection .hyp.idmap.text, "ax"
	.align	5
vectors:
	b	.
	b	vectors
	.ltorg
	.popsection

	.data
	.byte	7
	.align	2				@ zeros in data
counter:
	.long	0x11223344
	.short	5
	.section .rodata.str, "a"
message:
	.asciz	"hypemu"

	.bss
	.align	4
scratch:
	.space	24

	.previous				@ back to .data: GNU as's .bss leaves it
	.byte	9
	.text
	.equ	LATER, 0x40
tail:	mov	r0, #LATER
	.balign	16, 0				@ an explicit zero fill
	nop
