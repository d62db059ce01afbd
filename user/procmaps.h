/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Parsing the text of /proc/PID/maps: pure, no file access. */
#ifndef MT_PROCMAPS_H
#define MT_PROCMAPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mt_map {
	uint64_t start, end, pgoff;
	uint64_t inode;
	uint32_t dev_major, dev_minor;
	bool r, w, x, shared;
	bool deleted;		/* path ended in " (deleted)", now stripped */
	char *path;		/* "" for anonymous; "[vdso]", "[heap]", ... */
};

struct mt_maps {
	struct mt_map *v;	/* sorted by start, as the kernel prints them */
	size_t n;
};

/* Parse text into maps; 0, -EINVAL on a malformed line, -ENOMEM. */
int mt_procmaps__parse(const char *text, struct mt_maps *out);
void mt_procmaps__clear(struct mt_maps *m);
/* Read and parse /proc/PID/maps. 0 or -errno (-ENOENT: no such process). */
int mt_procmaps__read(int pid, struct mt_maps *out);
/* Mapping containing addr, or NULL (binary search). */
const struct mt_map *mt_procmaps__find(const struct mt_maps *m, uint64_t addr);
/*
 * Indices into old of the mappings now does not have as they were (same
 * range, file and offset): unmapped since, or replaced by an exec. Written
 * to idx (room for old->n); returns how many.
 */
size_t mt_procmaps__gone(const struct mt_maps *old, const struct mt_maps *now, size_t *idx);
/* True for a mapping backed by a regular file (not [vdso], not anonymous). */
bool mt_map__is_file(const struct mt_map *m);

#endif
