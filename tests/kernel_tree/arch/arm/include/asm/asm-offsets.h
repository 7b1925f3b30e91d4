/* Offsets into C structures, which kbuild computes into the object tree at build time. */
#include <generated/asm-offsets.h>
