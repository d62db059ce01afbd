// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "strutil.h"

/* Leading decimal digits of s (no sign, no space); *end after them. */
static int parse_digits(const char *s, unsigned long long *v, char **end)
{
	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	*v = strtoull(s, end, 10);
	return errno == ERANGE ? -ERANGE : 0;
}

int mt_parse_u64(const char *s, uint64_t *out)
{
	unsigned long long v;
	char *end;
	int err = parse_digits(s, &v, &end);

	if (err)
		return err;
	if (*end)
		return -EINVAL;
	*out = v;
	return 0;
}

int mt_parse_size(const char *s, uint64_t *out)
{
	unsigned long long v;
	unsigned shift = 0;
	char *end;
	int err = parse_digits(s, &v, &end);

	if (err)
		return err;
	switch (toupper((unsigned char)*end)) {
	case 0: break;
	case 'K': shift = 10; break;
	case 'M': shift = 20; break;
	case 'G': shift = 30; break;
	case 'T': shift = 40; break;
	default: return -EINVAL;
	}
	if (*end && end[1] && !((end[1] == 'B' || end[1] == 'b') && !end[2]) &&
	    !((end[1] == 'i') && (end[2] == 'B') && !end[3]))
		return -EINVAL;
	if (shift && v > (~0ULL >> shift))
		return -ERANGE;
	*out = v << shift;
	return 0;
}

int mt_parse_seconds(const char *s, double *out)
{
	double v;
	char *end;

	if (!s || !(isdigit((unsigned char)*s) || *s == '.'))
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno == ERANGE || !isfinite(v))
		return -ERANGE;
	if (*end || v < 0)
		return -EINVAL;
	*out = v;
	return 0;
}

const char *mt_fmt_bytes(uint64_t bytes, char *buf, unsigned long len)
{
	static const char *units[] = { "KiB", "MiB", "GiB", "TiB" };
	double v = bytes;
	int u = -1;

	if (bytes < 1024) {
		snprintf(buf, len, "%llu B", (unsigned long long)bytes);
		return buf;
	}
	while (v >= 1024 && u < 3) {
		v /= 1024;
		u++;
	}
	snprintf(buf, len, "%.1f %s", v, units[u]);
	return buf;
}

char *mt_read_file(const char *path)
{
	size_t len = 0, cap = 1 << 16;
	char *buf = malloc(cap), *nb;
	int fd = open(path, O_RDONLY | O_CLOEXEC), saved;
	ssize_t n;

	if (fd < 0 || !buf)
		goto fail;
	while ((n = read(fd, buf + len, cap - len - 1)) > 0) {
		len += n;
		if (cap - len < 4096) {
			if (!(nb = realloc(buf, cap * 2)))
				goto fail;
			buf = nb;
			cap *= 2;
		}
	}
	if (n < 0)
		goto fail;
	close(fd);
	buf[len] = 0;
	return buf;
fail:
	saved = errno ? errno : ENOMEM;
	if (fd >= 0)
		close(fd);
	free(buf);
	errno = saved;
	return NULL;
}

int mt_grow(void **v, size_t *cap, size_t need, size_t size)
{
	size_t n = *cap ? *cap : 16;
	void *p;

	if (need <= *cap)
		return 0;
	if (need > SIZE_MAX / size)
		return -ENOMEM;
	while (n < need)
		n = n > SIZE_MAX / 2 ? need : n * 2;
	if (n > SIZE_MAX / size || !(p = realloc(*v, n * size)))
		return -ENOMEM;
	*v = p;
	*cap = n;
	return 0;
}
