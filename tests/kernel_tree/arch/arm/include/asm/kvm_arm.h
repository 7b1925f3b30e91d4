#ifndef __ARM_KVM_ARM_H__
#define __ARM_KVM_ARM_H__
/* HYP register fields (ARM ARM B4.1: HSCTLR, HTCR, VTCR), named as the init code uses them. */
#include <asm/types.h>

#define HSCTLR_TE	(1 << 30)
#define HSCTLR_EE	(1 << 25)
#define HSCTLR_FI	(1 << 21)
#define HSCTLR_WXN	(1 << 19)
#define HSCTLR_I	(1 << 12)
#define HSCTLR_C	(1 << 2)
#define HSCTLR_A	(1 << 1)
#define HSCTLR_M	1
#define HSCTLR_MASK	(HSCTLR_M | HSCTLR_A | HSCTLR_C | HSCTLR_I | HSCTLR_WXN | \
			 HSCTLR_FI | HSCTLR_EE | HSCTLR_TE)

#define TTBCR_T0SZ	3
#define HTCR_T0SZ	TTBCR_T0SZ
#define HTCR_IRGN0	(3 << 8)
#define HTCR_ORGN0	(3 << 10)
#define HTCR_SH0	(3 << 12)
#define HTCR_MASK	(HTCR_T0SZ | HTCR_IRGN0 | HTCR_ORGN0 | HTCR_SH0)

#define VTCR_T0SZ	0xf
#define VTCR_S		(1 << 4)
#define VTCR_SL0	(3 << 6)
#define VTCR_IRGN0	(3 << 8)
#define VTCR_ORGN0	(3 << 10)
#define VTCR_SH0	(3 << 12)
#define VTCR_MASK	(VTCR_SH0 | VTCR_ORGN0 | VTCR_IRGN0 | VTCR_SL0 | VTCR_S | VTCR_T0SZ)
#define VTCR_HTCR_SH	(VTCR_SH0 | VTCR_ORGN0 | VTCR_IRGN0)
/* A 40-bit IPA: T0SZ = -8 (its sign in S), walks start at level 1. */
#define KVM_VTCR_SL0	(1 << 6)
#define KVM_VTCR_T0SZ	((32 - 40) & VTCR_T0SZ)
#define KVM_VTCR_S	((KVM_VTCR_T0SZ << 1) & VTCR_S)
#endif
