// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "ksyms.h"
#include "strutil.h"

struct mt_ksyms {
	struct mt_ksym *v;
	size_t n;
	char *strings;		/* names and modules, NUL-separated */
};

static int by_addr(const void *a, const void *b)
{
	const struct mt_ksym *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

struct mt_ksyms *mt_ksyms__parse(const char *text)
{
	struct mt_ksyms *k = calloc(1, sizeof(*k));
	size_t cap = 0, len = strlen(text);
	char *p, *line, *save = NULL;

	if (!k || !(k->strings = malloc(len + 1))) {
		free(k);
		errno = ENOMEM;
		return NULL;
	}
	memcpy(k->strings, text, len + 1);
	for (line = strtok_r(k->strings, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *type, *name, *mod, *end;
		uint64_t addr = strtoull(line, &end, 16);

		if (end == line || *end != ' ')
			continue;
		type = end + 1;
		if (!strchr("tTwW", *type) || type[1] != ' ')
			continue;
		name = type + 2;
		p = strchr(name, '\t');
		mod = "[kernel]";
		if (p) {
			*p = 0;
			mod = p + 1;
		}
		if (mt_grow((void **)&k->v, &cap, k->n + 1, sizeof(*k->v))) {
			mt_ksyms__free(k);
			errno = ENOMEM;
			return NULL;
		}
		k->v[k->n++] = (struct mt_ksym){ addr, name, mod };
	}
	qsort(k->v, k->n, sizeof(*k->v), by_addr);
	return k;
}

void mt_ksyms__free(struct mt_ksyms *k)
{
	if (!k)
		return;
	free(k->v);
	free(k->strings);
	free(k);
}

uint64_t mt_ksyms__addr(const struct mt_ksyms *k, const char *name)
{
	for (size_t i = 0; i < k->n; i++)
		if (!strcmp(k->v[i].name, name))
			return k->v[i].addr;
	return 0;
}

size_t mt_ksyms__count(const struct mt_ksyms *k)
{
	return k->n;
}

const struct mt_ksym *mt_ksyms__find(const struct mt_ksyms *k, uint64_t addr)
{
	size_t lo = 0, hi = k->n;

	/* the last symbol with v.addr <= addr */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (k->v[mid].addr <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo ? &k->v[lo - 1] : NULL;
}

int mt_ksym__is_allocator(const char *name)
{
	static const char *const prefixes[] = {
		/* the path from the tracepoint to memtrace */
		"bpf_", "__bpf_", "__traceiter_", "trace_", "__trace_", "perf_",
		/* slab, page and percpu allocators' entry points; slab internals
		 * stay: a page taken to grow a slab is the slab's allocation */
		"kmalloc", "__kmalloc", "kmem_cache_alloc", "__kmem_cache_alloc",
		"kvmalloc", "__kvmalloc", "kzalloc", "kcalloc", "krealloc", "__krealloc",
		"alloc_pages", "__alloc_pages", "alloc_frozen_pages", "__alloc_frozen_pages",
		"get_page_from_freelist", "__get_free_pages", "get_zeroed_page",
		"folio_alloc", "__folio_alloc", "alloc_pages_mpol", "alloc_pages_bulk",
		"pcpu_", "__alloc_percpu", "alloc_percpu",
	};

	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
		if (!strncmp(name, prefixes[i], strlen(prefixes[i])))
			return 1;
	return 0;
}
