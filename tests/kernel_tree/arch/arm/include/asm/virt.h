#ifndef __ASM_VIRT_H
#define __ASM_VIRT_H
/* __boot_cpu_mode holds the mode the boot CPU entered the kernel in, and this flag when a later
 * CPU entered in another. */
#define BOOT_CPU_MODE_MISMATCH	0x00000100
#endif
