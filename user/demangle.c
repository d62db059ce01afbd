// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <libiberty/demangle.h>
#include <stdlib.h>
#include <string.h>
#include "demangle.h"

char *mt_demangle(const char *name)
{
	char *d;

	if (!name)
		return NULL;
	/* libiberty's automatic style tries Rust first, then the C++ ABI */
	d = cplus_demangle(name, DMGL_PARAMS | DMGL_ANSI);
	return d ? d : strdup(name);
}
