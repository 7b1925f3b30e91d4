#ifndef _UAPI_ASM_ARM_PTRACE_H
#define _UAPI_ASM_ARM_PTRACE_H
/* CPSR modes and mask bits (ARM ARM B1.3.1), in the user API headers as in the kernel. */
#define USR_MODE	0x00000010
#define SVC_MODE	0x00000013
#define HYP_MODE	0x0000001a
#define MODE_MASK	0x0000001f
#define PSR_F_BIT	0x00000040
#define PSR_I_BIT	0x00000080
#define PSR_A_BIT	0x00000100
#endif
