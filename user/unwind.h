/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The unwind tables in BPF: one per file (device, inode), shared by every
 * traced process that maps the file, built from its CFI (cfi.h) when a
 * process is attached or when the BPF unwinder first meets the file
 * (dlopen, exec), and freed when no traced process maps it any more.
 */
#ifndef MT_UNWIND_H
#define MT_UNWIND_H

#include <stdint.h>
#include <sys/types.h>
#include <linux/types.h>

struct mt_unwind;

struct mt_unwind_stats {
	uint64_t tables;	/* files with rows in BPF */
	uint64_t no_cfi;	/* files without usable CFI */
	uint64_t rows;		/* rows and pages loaded */
	uint64_t map_bytes;	/* BPF memory they take */
	double build_s;		/* time spent building and loading */
	uint64_t revived;	/* idle tables a process used again (not rebuilt) */
};

/* The maps of the BPF side (cfi_rows, cfi_tables, cfi_asked, cfi_misses),
 * and its cache epoch, moved on when code may have been unmapped. */
int mt_unwind__new(int rows_fd, int tables_fd, int asked_fd, int misses_fd,
		   volatile __u64 *epoch, struct mt_unwind **out);
void mt_unwind__free(struct mt_unwind *u);
/* Tables for every executable file pid maps now. 0 or -errno. */
int mt_unwind__add_process(struct mt_unwind *u, pid_t pid);
/* The table of a file pid will map (a command before exec); it reaches
 * BPF at the next mt_unwind__flush. 0 or -errno. */
int mt_unwind__add_file(struct mt_unwind *u, pid_t pid, const char *path);
/* Put the tables built since the last flush into BPF, in one batch. */
int mt_unwind__flush(struct mt_unwind *u);
/* pid is gone: free the tables no other traced process uses. */
void mt_unwind__drop_process(struct mt_unwind *u, pid_t pid);
/* A descriptor readable when the BPF side asks for tables. */
int mt_unwind__fd(const struct mt_unwind *u);
/* Serve pending requests. Number served, or -errno. */
int mt_unwind__poll(struct mt_unwind *u);
/* Told of each file met: its table's rows (0: no CFI), err -errno; fd
 * is open on the file for the callback's duration (dup it to keep it). */
struct mt_unwind_file {
	uint32_t id;		/* in stack frames (MT_FRAME_FILE) */
	uint32_t dev;		/* kernel dev_t */
	uint64_t ino;
	const char *path;
	int fd;
};
typedef void (*mt_unwind_cb)(void *ctx, pid_t pid, const struct mt_unwind_file *f,
			     uint64_t rows, int err);
void mt_unwind__set_cb(struct mt_unwind *u, mt_unwind_cb cb, void *ctx);
/* The file of a frame's id: 0, or -ENOENT. */
int mt_unwind__file(const struct mt_unwind *u, uint32_t id, uint32_t *dev, uint64_t *ino);
void mt_unwind__stats(const struct mt_unwind *u, struct mt_unwind_stats *s);

#endif
