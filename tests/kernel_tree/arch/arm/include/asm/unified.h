#ifndef __ASM_UNIFIED_H
#define __ASM_UNIFIED_H
/* ARM or Thumb-2 kernel (CONFIG_THUMB2_KERNEL): which half of an ARM()/THUMB() pair is
 * assembled, and W(), the wide (32-bit) form of an instruction in a Thumb-2 kernel, so that a
 * vector table keeps one 4-byte slot per vector. Both builds use the unified syntax (Thumb-2
 * needs it; the ARM code reads the same in it). */
#ifdef __ASSEMBLY__
	.syntax unified
#endif

#ifdef CONFIG_THUMB2_KERNEL
#define ARM(x...)
#define THUMB(x...)	x
#define W(instr)	instr.w
#else
#define ARM(x...)	x
#define THUMB(x...)
#define W(instr)	instr
#endif
#endif
