#ifndef __ASM_OPCODES_VIRT_H
#define __ASM_OPCODES_VIRT_H
/* HVC and ERET as words, for assemblers that do not know the virtualization extensions.
 * HVC #imm16 (ARM): cond 1110, 0001 0100, imm12, 0111, imm4. ERET (ARM): 0xe160006e. */
#define __HVC_WORD(imm16) (0xe1400070 | (((imm16) >> 4) << 8) | ((imm16) & 0xf))
#define __HVC(imm16)	.long __HVC_WORD(imm16)
#define __ERET		.long 0xe160006e
#endif
