#ifndef _LINUX_LINKAGE_H
#define _LINUX_LINKAGE_H
/* Symbol definitions for assembly: a global label, and the end of a function. */
#include <asm/linkage.h>

#ifdef __ASSEMBLY__
#ifndef ENTRY
#define ENTRY(name) \
	.globl name; \
	__ALIGN; \
	name:
#endif
#ifndef END
#define END(name) \
	.size name, .-name
#endif
#ifndef ENDPROC
#define ENDPROC(name) \
	.type name, %function; \
	END(name)
#endif
#endif /* __ASSEMBLY__ */
#endif
