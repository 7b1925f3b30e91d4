#ifndef __ARM_KVM_MMU_H__
#define __ARM_KVM_MMU_H__
/* The trampoline page sits at the vectors page's VA: mapped in both HYP tables. */
#include <asm/types.h>
#define TRAMPOLINE_VA	UL(CONFIG_VECTORS_BASE)
#define PAGE_SHIFT	12
#endif
