#ifndef __LINUX_KCONFIG_H
#define __LINUX_KCONFIG_H
/* kbuild forces this header into every file: the CONFIG_ values of the build. */
#include <generated/autoconf.h>
#endif
