// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "procmaps.h"
#include "strutil.h"

#define DELETED_SUFFIX " (deleted)"

static int parse_line(const char *line, size_t len, struct mt_map *m)
{
	char perms[5], *path;
	int pos = 0;

	memset(m, 0, sizeof(*m));
	if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %4s %" SCNx64 " %x:%x %" SCNu64 "%n",
		   &m->start, &m->end, perms, &m->pgoff, &m->dev_major, &m->dev_minor,
		   &m->inode, &pos) != 7 || pos <= 0 || (size_t)pos > len ||
	    strlen(perms) != 4 || m->end < m->start)
		return -EINVAL;
	m->r = perms[0] == 'r';
	m->w = perms[1] == 'w';
	m->x = perms[2] == 'x';
	m->shared = perms[3] == 's';
	/* the path starts after the padding and may itself contain spaces */
	while ((size_t)pos < len && line[pos] == ' ')
		pos++;
	path = strndup(line + pos, len - pos);
	if (!path)
		return -ENOMEM;
	len = strlen(path);
	if (len > strlen(DELETED_SUFFIX) &&
	    !strcmp(path + len - strlen(DELETED_SUFFIX), DELETED_SUFFIX)) {
		path[len - strlen(DELETED_SUFFIX)] = 0;
		m->deleted = true;
	}
	m->path = path;
	return 0;
}

int mt_procmaps__parse(const char *text, struct mt_maps *out)
{
	size_t cap = 0;
	const char *p = text;

	out->v = NULL;
	out->n = 0;
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		int err;

		if (len) {
			if (mt_grow((void **)&out->v, &cap, out->n + 1, sizeof(*out->v))) {
				mt_procmaps__clear(out);
				return -ENOMEM;
			}
			err = parse_line(p, len, &out->v[out->n]);
			if (err) {
				mt_procmaps__clear(out);
				return err;
			}
			out->n++;
		}
		p += len + (nl ? 1 : 0);
	}
	return 0;
}

void mt_procmaps__clear(struct mt_maps *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->v[i].path);
	free(m->v);
	m->v = NULL;
	m->n = 0;
}

const struct mt_map *mt_procmaps__find(const struct mt_maps *m, uint64_t addr)
{
	size_t lo = 0, hi = m->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (addr < m->v[mid].start)
			hi = mid;
		else if (addr >= m->v[mid].end)
			lo = mid + 1;
		else
			return &m->v[mid];
	}
	return NULL;
}

static bool same_map(const struct mt_map *a, const struct mt_map *b)
{
	return a->start == b->start && a->end == b->end && a->pgoff == b->pgoff &&
	       a->inode == b->inode && a->dev_major == b->dev_major &&
	       a->dev_minor == b->dev_minor;
}

size_t mt_procmaps__gone(const struct mt_maps *old, const struct mt_maps *now, size_t *idx)
{
	size_t n = 0;

	for (size_t i = 0; i < old->n; i++) {
		const struct mt_map *m = mt_procmaps__find(now, old->v[i].start);

		if (!m || !same_map(m, &old->v[i]))
			idx[n++] = i;
	}
	return n;
}

bool mt_map__is_file(const struct mt_map *m)
{
	return m->inode != 0 && m->path[0] == '/';
}

int mt_procmaps__read(int pid, struct mt_maps *out)
{
	char path[64], *text;
	int err;

	memset(out, 0, sizeof(*out));
	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	text = mt_read_file(path);
	if (!text)
		return errno ? -errno : -ENOENT;
	err = mt_procmaps__parse(text, out);
	free(text);
	return err;
}
