/*
 * The first page of a vmlinux-style test image (written for hypemu's ELF tests, no kernel
 * text): what stands for head.S, and a data word of the image's own, past hypemu's PL1 page.
 */
	.section .head.text, "ax"
	.global	stext
stext:	b	stext
	.space	4092				@ the rest of the first page

	.data
	.global	image_marker
image_marker:
	.long	0x11223344
