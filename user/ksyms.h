/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Kernel symbols from the text of /proc/kallsyms: pure parse and lookup. */
#ifndef MT_KSYMS_H
#define MT_KSYMS_H

#include <stddef.h>
#include <stdint.h>

struct mt_ksym {
	uint64_t addr;
	const char *name;
	const char *module;	/* "[kernel]" or "[modname]" */
};

struct mt_ksyms;

/* Text symbols (t, T, w, W) of text; NULL on error (errno set). */
struct mt_ksyms *mt_ksyms__parse(const char *text);
void mt_ksyms__free(struct mt_ksyms *k);
size_t mt_ksyms__count(const struct mt_ksyms *k);
/* Address of a symbol by name (linear), 0 if absent. */
uint64_t mt_ksyms__addr(const struct mt_ksyms *k, const char *name);
/* The symbol an address falls in (the last one at or below it), or NULL. */
const struct mt_ksym *mt_ksyms__find(const struct mt_ksyms *k, uint64_t addr);
/*
 * True for a function of the kernel's allocators or of the tracing path
 * that leads to memtrace: frames to drop before the allocating function.
 */
int mt_ksym__is_allocator(const char *name);

#endif
