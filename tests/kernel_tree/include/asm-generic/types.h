#ifndef _ASM_GENERIC_TYPES_H
#define _ASM_GENERIC_TYPES_H
/* Reached only through the generated wrapper asm/types.h. A constant with its C type suffix in
 * C, bare in assembly. */
#ifdef __ASSEMBLY__
#define UL(x)	x
#else
#define UL(x)	(x##UL)
#endif
#endif
