// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * --mmap: memory that bypasses malloc. Expected per function and kind:
 *   map_anon       mmap   3 x 65536 kept                     196608 / 3
 *   map_and_unmap  mmap   2 x 8192, both munmap'ed           0 / 0, 2 allocs
 *   map_grow       mmap   4096 then mremap'ed to 16384, kept  16384 / 1
 *   map_file       -      a file mapping: not an allocation
 *   big_malloc     user   malloc(1 MiB): glibc mmaps it inside malloc,
 *                         which is malloc's, not a second block
 *   grow_brk       brk    sbrk(8192)                          8192 / 1
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>
#include "testprog.h"

#define ANON(n) mmap(NULL, (n), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)

NOINLINE void map_anon(void)
{
	for (int i = 0; i < 3; i++)
		hold(ANON(65536));
}

NOINLINE void map_and_unmap(void)
{
	void *a = ANON(8192), *b = ANON(8192);

	munmap(a, 8192);
	munmap(b, 8192);
}

NOINLINE void map_grow(void)
{
	void *p = ANON(4096);

	hold(mremap(p, 4096, 16384, MREMAP_MAYMOVE));
}

NOINLINE void map_file(void)
{
	int fd = open("/proc/self/exe", O_RDONLY);

	hold(mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0));
	close(fd);
}

NOINLINE void big_malloc(void)
{
	hold(malloc(1 << 20));
}

NOINLINE void grow_brk(void)
{
	hold(sbrk(8192));
}

int main(void)
{
	map_anon();
	map_and_unmap();
	map_grow();
	map_file();
	big_malloc();
	grow_brk();
	return 0;
}
