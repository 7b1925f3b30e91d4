#ifndef __ASM_LINKAGE_H
#define __ASM_LINKAGE_H
/* ARM code needs no alignment beyond the instruction's. */
#define __ALIGN .align 0
#define __ALIGN_STR ".align 0"
#endif
