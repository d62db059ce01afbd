// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * libFuzzer target: arbitrary bytes as an ELF file into mt_cfi__build
 * (ELF headers, .eh_frame_hdr, .eh_frame/.debug_frame through libdw).
 * make fuzz FUZZ_SECONDS=N runs it from the seeds in tests/fuzz/seeds.
 */
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>
#include "cfi.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	struct mt_cfi c;
	struct mt_cfi_page *pages;
	uint32_t npages, first;

	if (fd < 0)
		fd = memfd_create("fuzz", 0);
	if (ftruncate(fd, 0) || pwrite(fd, data, size, 0) != (ssize_t)size)
		return 0;
	if (mt_cfi__build(fd, &c))
		return 0;
	/* what is built must hold together */
	for (size_t i = 1; i < c.nrows; i++)
		if (c.rows[i].pc <= c.rows[i - 1].pc)
			abort();
	if (!mt_cfi__pages(c.rows, c.nrows, 0, &pages, &npages, &first))
		free(pages);
	mt_cfi__clear(&c);
	return 0;
}
