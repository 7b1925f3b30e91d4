#ifndef __ASM_ASSEMBLER_H__
#define __ASM_ASSEMBLER_H__
/* What assembly files of arch/arm include: the CPSR names, HVC and ERET. */
#ifndef __ASSEMBLY__
#error "only for assembly sources"
#endif
#include <asm/ptrace.h>
#include <asm/opcodes-virt.h>
#endif
