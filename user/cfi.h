/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * A file's call frame information (.eh_frame, else .debug_frame) as the
 * rows the BPF unwinder walks (struct mt_cfi_row in memtrace.h). Reads
 * the file; no BPF, no /proc.
 */
#ifndef MT_CFI_H
#define MT_CFI_H

#include <stddef.h>
#include <stdint.h>
#include "memtrace.h"

struct mt_cfi {
	struct mt_cfi_row *rows;	/* sorted by pc, no two alike in a row */
	size_t nrows;
	uint64_t seg_delta;		/* vaddr - file offset, executable segment */
	size_t nfdes;			/* functions described */
	size_t unsupported;		/* rows whose rule the unwinder lacks */
	const char *source;		/* ".eh_frame" or ".debug_frame" */
};

/*
 * Convert the CFI of the ELF file open at fd. 0, -ENOEXEC (not an x86-64
 * ELF), -ENODATA (no CFI), -ENOMEM. The rows end with an MT_CFA_NONE row
 * after the last function.
 */
int mt_cfi__build(int fd, struct mt_cfi *out);
void mt_cfi__clear(struct mt_cfi *c);
/* The row that covers vaddr, or NULL (binary search; the reference for
 * what the BPF side does). */
const struct mt_cfi_row *mt_cfi__find(const struct mt_cfi_row *rows, size_t n, uint32_t vaddr);
/*
 * The page index of rows (see struct mt_cfi_page), with row indices
 * offset by row_base. *first_page is the vaddr page of pages[0].
 * 0 or -ENOMEM; no rows gives no pages.
 */
int mt_cfi__pages(const struct mt_cfi_row *rows, size_t n, uint32_t row_base,
		  struct mt_cfi_page **pages, uint32_t *npages, uint32_t *first_page);

#endif
