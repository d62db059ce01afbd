/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Open-addressing hash map from a (u64, u64) key to an index, so that
 * aggregation over n allocations and m stacks is O(n + m), not O(n*m).
 */
#ifndef MT_PAIRMAP_H
#define MT_PAIRMAP_H

#include <stddef.h>
#include <stdint.h>

struct mt_pairmap;

struct mt_pairmap *mt_pairmap__new(size_t expected);
void mt_pairmap__free(struct mt_pairmap *m);
/* Index stored for (a, b), or -1. */
long mt_pairmap__get(const struct mt_pairmap *m, uint64_t a, uint64_t b);
/* Store idx for (a, b), replacing any previous one. 0 or -ENOMEM. */
int mt_pairmap__put(struct mt_pairmap *m, uint64_t a, uint64_t b, long idx);
size_t mt_pairmap__size(const struct mt_pairmap *m);

#endif
