/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Symbol names for people: C++ and Rust (legacy and v0) demangled. */
#ifndef MT_DEMANGLE_H
#define MT_DEMANGLE_H

/* A malloc'd readable name: demangled, or a copy of name. NULL for NULL. */
char *mt_demangle(const char *name);

#endif
