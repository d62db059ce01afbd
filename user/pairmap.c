// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <stdlib.h>
#include "pairmap.h"

struct slot {
	uint64_t a, b;
	long idx; /* -1: empty */
};

struct mt_pairmap {
	struct slot *slots;
	size_t cap; /* power of two */
	size_t len;
};

static uint64_t hash2(uint64_t a, uint64_t b)
{
	uint64_t h = a * 0x9e3779b97f4a7c15ULL ^ (b + 0x632be59bd9b4e019ULL);

	h ^= h >> 31;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 29;
	return h;
}

static int resize(struct mt_pairmap *m, size_t cap)
{
	struct slot *old = m->slots, *s;
	size_t old_cap = m->cap;

	s = malloc(cap * sizeof(*s));
	if (!s)
		return -ENOMEM;
	for (size_t i = 0; i < cap; i++)
		s[i].idx = -1;
	m->slots = s;
	m->cap = cap;
	m->len = 0;
	for (size_t i = 0; i < old_cap; i++)
		if (old[i].idx >= 0)
			mt_pairmap__put(m, old[i].a, old[i].b, old[i].idx);
	free(old);
	return 0;
}

struct mt_pairmap *mt_pairmap__new(size_t expected)
{
	struct mt_pairmap *m = calloc(1, sizeof(*m));
	size_t cap = 16;

	if (!m)
		return NULL;
	while (cap < expected * 2)
		cap <<= 1;
	if (resize(m, cap)) {
		free(m);
		return NULL;
	}
	return m;
}

void mt_pairmap__free(struct mt_pairmap *m)
{
	if (!m)
		return;
	free(m->slots);
	free(m);
}

static struct slot *find(const struct mt_pairmap *m, uint64_t a, uint64_t b)
{
	size_t mask = m->cap - 1, i = hash2(a, b) & mask;

	while (m->slots[i].idx >= 0 && (m->slots[i].a != a || m->slots[i].b != b))
		i = (i + 1) & mask;
	return &m->slots[i];
}

long mt_pairmap__get(const struct mt_pairmap *m, uint64_t a, uint64_t b)
{
	return find(m, a, b)->idx;
}

int mt_pairmap__put(struct mt_pairmap *m, uint64_t a, uint64_t b, long idx)
{
	struct slot *s;

	if ((m->len + 1) * 2 > m->cap && resize(m, m->cap * 2))
		return -ENOMEM;
	s = find(m, a, b);
	if (s->idx < 0)
		m->len++;
	s->a = a;
	s->b = b;
	s->idx = idx;
	return 0;
}

size_t mt_pairmap__size(const struct mt_pairmap *m)
{
	return m->len;
}
