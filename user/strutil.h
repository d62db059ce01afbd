/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Strict number parsing for the command line and /proc. */
#ifndef MT_STRUTIL_H
#define MT_STRUTIL_H

#include <stddef.h>
#include <stdint.h>

/* Decimal unsigned integer, whole string. 0 or -EINVAL / -ERANGE. */
int mt_parse_u64(const char *s, uint64_t *out);
/* Like mt_parse_u64, with an optional K/M/G/T suffix (powers of 1024). */
int mt_parse_size(const char *s, uint64_t *out);
/* Non-negative finite number of seconds, e.g. "2", "0.5". */
int mt_parse_seconds(const char *s, double *out);
/* Whole contents of a (proc) file, NUL-terminated; NULL with errno set. */
char *mt_read_file(const char *path);
/* Human-readable bytes: "512 B", "1.5 KiB", ... into buf. */
const char *mt_fmt_bytes(uint64_t bytes, char *buf, unsigned long len);

/* Grow *v (elements of size bytes) to hold need; capacity doubles.
 * 0 or -ENOMEM (then *v is unchanged). */
int mt_grow(void **v, size_t *cap, size_t need, size_t size);

#endif
