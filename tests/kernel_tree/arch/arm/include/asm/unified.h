#ifndef __ASM_UNIFIED_H
#define __ASM_UNIFIED_H
/* ARM or Thumb-2 kernel: which half of an ARM()/THUMB() pair is assembled, and W(), the wide
 * form of an instruction in a Thumb-2 kernel. This tree builds an ARM kernel. */
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
