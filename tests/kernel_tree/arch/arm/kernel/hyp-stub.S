/*
 * The HYP stub of hypemu's test tree (written for hypemu, no Linux code), to the contract of
 * Linux v3.10's arch/arm/kernel/hyp-stub.S:
 * - __hyp_stub_install (the boot CPU, from head.S, MMU off) records the mode the CPU entered in
 *   at __boot_cpu_mode (.data: set before .bss is cleared) and goes on as every CPU does;
 * - __hyp_stub_install_secondary (every other CPU) flags a CPU that entered in another mode than
 *   the boot CPU, and in HYP points HVBAR at the stub's vectors and clears the traps; it returns
 *   in the mode it was called in (bx lr): head.S drops to SVC itself;
 * - __hyp_set_vectors / __hyp_get_vectors (from SVC): an HVC that the stub's vectors answer by
 *   writing r0 to HVBAR, or reading HVBAR into r0 when r0 is -1.
 * Scratch registers: r4-r7; the boot mode is left in r4.
 */
#include <linux/linkage.h>
#include <asm/assembler.h>
#include <asm/virt.h>

	.data
	.align	2
ENTRY(__boot_cpu_mode)
	.long	0

	.text
	.align	2
ENTRY(__hyp_stub_install)
	mrs	r4, cpsr
	and	r4, r4, #MODE_MASK
	adr	r5, boot_mode_offset
	ldr	r6, [r5]
	str	r4, [r5, r6]		@ __boot_cpu_mode = this CPU's mode
ENDPROC(__hyp_stub_install)
	@ and on, as every CPU

ENTRY(__hyp_stub_install_secondary)
	mrs	r4, cpsr
	and	r4, r4, #MODE_MASK
	adr	r5, boot_mode_offset
	ldr	r6, [r5]
	ldr	r7, [r5, r6]
	cmp	r4, r7			@ the boot CPU's mode?
	orrne	r7, r7, #BOOT_CPU_MODE_MISMATCH
	strne	r7, [r5, r6]
	bxne	lr			@ no: leave HYP to whoever owns it
	cmp	r4, #HYP_MODE
	bxne	lr			@ not in HYP: nothing to install

	adr	r7, hyp_stub_vectors
	mcr	p15, 4, r7, c12, c0, 0	@ HVBAR
	mov	r7, #0
	mcr	p15, 4, r7, c1, c1, 0	@ HCR: no traps to HYP
	mcr	p15, 4, r7, c1, c1, 2	@ HCPTR: no coprocessor traps
	mcr	p15, 4, r7, c1, c1, 3	@ HSTR: no cp15 traps
 THUMB(	orr	r7, r7, #(1 << 30)	)	@ HSCTLR.TE: exceptions in Thumb
	mcr	p15, 4, r7, c1, c0, 0	@ HSCTLR: MMU off, little-endian exceptions
	mrc	p15, 4, r7, c1, c1, 1	@ HDCR
	and	r7, r7, #0x1f		@ only HPMN kept
	mcr	p15, 4, r7, c1, c1, 1	@ HDCR
#ifdef CONFIG_ARM_ARCH_TIMER
	mrc	p15, 0, r7, c0, c1, 1	@ ID_PFR1
	ubfx	r7, r7, #16, #4		@ the generic timer
	teq	r7, #1
	bne	1f
	mrc	p15, 4, r7, c14, c1, 0	@ CNTHCTL
	orr	r7, r7, #3		@ PL1 may read the counter and use the physical timer
	mcr	p15, 4, r7, c14, c1, 0	@ CNTHCTL
1:
#endif
	bx	lr			@ still in HYP
ENDPROC(__hyp_stub_install_secondary)

hyp_stub_call:
	cmp	r0, #-1
	mrceq	p15, 4, r0, c12, c0, 0	@ r0 = HVBAR
	mcrne	p15, 4, r0, c12, c0, 0	@ HVBAR = r0
	__ERET
ENDPROC(hyp_stub_call)

ENTRY(__hyp_get_vectors)
	mov	r0, #-1
ENDPROC(__hyp_get_vectors)
	@ and on
ENTRY(__hyp_set_vectors)
	__HVC(0)
	bx	lr
ENDPROC(__hyp_set_vectors)

	.align	2
boot_mode_offset:
	.long	__boot_cpu_mode - .

	.align	5
hyp_stub_vectors:
	W(b)	.			@ reset
	W(b)	.			@ undefined
	W(b)	.			@ HVC from HYP
	W(b)	.			@ prefetch abort
	W(b)	.			@ data abort
	W(b)	hyp_stub_call		@ the kernel's HVC
	W(b)	.			@ IRQ
	W(b)	.			@ FIQ
ENDPROC(hyp_stub_vectors)
