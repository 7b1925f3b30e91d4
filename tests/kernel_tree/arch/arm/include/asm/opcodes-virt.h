#ifndef __ASM_OPCODES_VIRT_H
#define __ASM_OPCODES_VIRT_H
/* HVC and ERET as opcodes, for assemblers that do not know the virtualization extensions, in the
 * instruction set the kernel is built for: an ARM word, or a 32-bit Thumb instruction (.inst.w
 * emits its two halfwords, the first one first).
 * HVC #imm16, ARM (A1): cond 1110, 0001 0100, imm12, 0111, imm4.
 * HVC #imm16, Thumb (T1): 1111 0111 1110 imm4 | 1000 imm12.
 * ERET, ARM: 0xe160006e; Thumb: SUBS PC, LR, #0 (T1), 0xf3de 0x8f00. */
#include <asm/unified.h>

#ifdef CONFIG_THUMB2_KERNEL
#define __inst_arm_thumb32(arm_word, thumb_insn)	.inst.w thumb_insn
#else
#define __inst_arm_thumb32(arm_word, thumb_insn)	.long arm_word
#endif

#define __HVC_WORD(imm16) (0xe1400070 | (((imm16) >> 4) << 8) | ((imm16) & 0xf))
#define __HVC_THUMB(imm16) (0xf7e08000 | (((imm16) & 0xf000) << 4) | ((imm16) & 0x0fff))
#define __HVC(imm16)	__inst_arm_thumb32(__HVC_WORD(imm16), __HVC_THUMB(imm16))
#define __ERET		__inst_arm_thumb32(0xe160006e, 0xf3de8f00)
#endif
