/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Addresses of traced processes to function, file:line and inline
 * frames, with libdwfl. Mappings are recorded while a process lives and
 * each mapped file is kept open, so stacks of processes that have exited
 * (or whose files were deleted) still resolve. One libdwfl session and
 * one result cache per binary (keyed by device and inode).
 */
#ifndef MT_SYMBOLIZER_H
#define MT_SYMBOLIZER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "report.h"

struct mt_symbolizer;

struct mt_symbolizer *mt_symbolizer__new(void);
void mt_symbolizer__free(struct mt_symbolizer *s);
/*
 * Read /proc/PID/maps (again) and open newly mapped files. Keeps what was
 * recorded before if the process is gone. 0 or -errno.
 */
int mt_symbolizer__add_process(struct mt_symbolizer *s, pid_t pid);
/* Forget what was recorded of pid (its binaries stay). */
void mt_symbolizer__drop_process(struct mt_symbolizer *s, pid_t pid);
/*
 * Symbolize one return address of pid into out[0..max): the innermost
 * inlined function first, the real function last. Returns the number of
 * frames (at least 1 when max >= 1; symbol NULL if unknown).
 */
size_t mt_symbolizer__lookup(struct mt_symbolizer *s, pid_t pid, uint64_t addr,
			     struct mt_frame *out, size_t max);

/* A file met by the unwinder (kernel dev_t), open at fd (taken). */
int mt_symbolizer__add_file(struct mt_symbolizer *s, uint32_t kdev, uint64_t ino,
			    const char *path, int fd);
/* Like lookup, for offset off in a file added with add_file; the frames'
 * addr is off. */
size_t mt_symbolizer__lookup_file(struct mt_symbolizer *s, uint32_t kdev, uint64_t ino,
				  uint64_t off, struct mt_frame *out, size_t max);

#endif
