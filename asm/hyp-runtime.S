@ The runtime HYP code: vectors with the HVC call dispatcher, and a few HYP functions that
@ scenarios call by name (after arch/arm/kvm/interrupts.S of v3.10, written for hypemu).
@
@ Assembled at the kernel VA of the HYP text: in 2013 a HYP VA equals the kernel VA.
@ Call convention (kvm_call_hyp): r0 = HYP VA of the function, r1-r3 = its arguments; the
@ function gets them in r0-r2 and returns its result in r0. LR and SPSR are saved on the HYP stack.
@ In a Thumb-2 build the function pointers have bit 0 set and the BLX interworks.

	.align	5
	.global	__kvm_hyp_vector
__kvm_hyp_vector:
	W(b)	hyp_bad_exception	@ 0x00 reset
	W(b)	hyp_bad_exception	@ 0x04 undefined instruction
	W(b)	hyp_bad_exception	@ 0x08 HVC from HYP
	W(b)	hyp_bad_exception	@ 0x0c prefetch abort
	W(b)	hyp_bad_exception	@ 0x10 data abort
	W(b)	hyp_hvc			@ 0x14 HYP trap: the kernel's HVC
	W(b)	hyp_bad_exception	@ 0x18 IRQ
	W(b)	hyp_bad_exception	@ 0x1c FIQ

hyp_hvc:
	push	{r0, r1, r2}
	mrc	p15, 4, r1, c5, c2, 0	@ HSR
	lsr	r0, r1, #HSR_EC_SHIFT
	cmp	r0, #HSR_EC_HVC
	bne	hyp_bad_exception	@ anything but an HVC: no guest is modelled
	pop	{r0, r1, r2}

	push	{lr}
	mrs	lr, SPSR
	push	{lr}
	mov	lr, r0			@ the function
	mov	r0, r1			@ its arguments, shifted down
	mov	r1, r2
	mov	r2, r3
	blx	lr
	pop	{lr}
	msr	SPSR_cxsf, lr
	pop	{lr}
	eret

hyp_bad_exception:
	udf	#0			@ reported by the model as an undefined instruction in HYP

@ u32 hyp_probe(void): the kernel data word at HYP_PROBE_VA, read through the runtime table
	.global	hyp_probe
hyp_probe:
	ldr	r0, =HYP_PROBE_VA
	ldr	r0, [r0]
	bx	lr

@ u32 hyp_read(u32 *va)
	.global	hyp_read
hyp_read:
	ldr	r0, [r0]
	bx	lr

@ u32 hyp_write(u32 *va, u32 value): returns the value written
	.global	hyp_write
hyp_write:
	str	r1, [r0]
	mov	r0, r1
	bx	lr

@ u32 hyp_sum(u32 *va, u32 words, u32 rounds): sum of `words` words at va, `rounds` times over
@ (a load loop for the benchmark suite: it runs with the MMU on and a warm TLB)
	.global	hyp_sum
hyp_sum:
	push	{r4, r5, r6}
	mov	r3, #0
hyp_sum_round:
	mov	r4, r0
	mov	r5, r1
hyp_sum_word:
	ldr	r6, [r4], #4
	add	r3, r3, r6
	subs	r5, r5, #1
	bne	hyp_sum_word
	subs	r2, r2, #1
	bne	hyp_sum_round
	mov	r0, r3
	pop	{r4, r5, r6}
	bx	lr

@ u32 hyp_touch(u8 *va, u32 pages, u32 rounds): load one word from each of `pages` 4 KiB pages,
@ `rounds` times over; returns the sum (the benchmark suite's TLB-fill workload)
	.global	hyp_touch
hyp_touch:
	push	{r4, r5, r6}
	mov	r3, #0
	mov	r12, #PAGE_SIZE
hyp_touch_round:
	mov	r4, r0
	mov	r5, r1
hyp_touch_page:
ARM(	ldr	r6, [r4], r12	)
THUMB(	ldr	r6, [r4]	)		@ Thumb-2 has no post-indexed register offset
THUMB(	add	r4, r4, r12	)
	add	r3, r3, r6
	subs	r5, r5, #1
	bne	hyp_touch_page
	subs	r2, r2, #1
	bne	hyp_touch_round
	mov	r0, r3
	pop	{r4, r5, r6}
	bx	lr

@ TLB maintenance on request of the kernel side (tests and scenarios use them to show that the
@ TLB keeps what it cached until told otherwise). Each returns 0.
	.global	hyp_tlbi_va
hyp_tlbi_va:				@ (u32 va): TLBIMVAH on this CPU
	mcr	p15, 4, r0, c8, c7, 1
	b	hyp_tlbi_done
	.global	hyp_tlbi_va_is
hyp_tlbi_va_is:				@ (u32 va): TLBIMVAHIS, every CPU
	mcr	p15, 4, r0, c8, c3, 1
	b	hyp_tlbi_done
	.global	hyp_tlbi_all
hyp_tlbi_all:				@ TLBIALLH on this CPU
	mcr	p15, 4, r0, c8, c7, 0
	b	hyp_tlbi_done
	.global	hyp_tlbi_all_is
hyp_tlbi_all_is:			@ TLBIALLHIS, every CPU
	mcr	p15, 4, r0, c8, c3, 0
hyp_tlbi_done:
	dsb	ish
	isb
	mov	r0, #0
	bx	lr

@ u32 hyp_get_sp(void): this CPU's SP_hyp as the function sees it (after the dispatcher's pushes)
	.global	hyp_get_sp
hyp_get_sp:
	mov	r0, sp
	bx	lr

	.ltorg
	.global	__hyp_text_end
__hyp_text_end:
