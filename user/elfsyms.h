/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Function symbols of an ELF file, as file offsets for uprobes. */
#ifndef MT_ELFSYMS_H
#define MT_ELFSYMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * For each of names[0..n), store the file offset of the defined function
 * of that name in offs[i], or 0 when the file does not define it.
 * Looks in .symtab, then .dynsym (distribution libraries are stripped).
 * Returns 0 or -errno.
 */
int mt_elf__func_offsets(const char *path, const char *const *names, size_t n,
			 uint64_t *offs);
/* Does the file define the function name? (false also when unreadable) */
bool mt_elf__defines(const char *path, const char *name);
/*
 * The DT_NEEDED names of an ELF file into needed[0..max) (malloc'd), and
 * its DT_RUNPATH (or DT_RPATH) into runpath. Returns the count or -errno.
 */
int mt_elf__needed(const char *path, char **needed, int max, char *runpath, size_t len);
/* 1 if the ELF file has a PT_INTERP (dynamically linked), 0 if not, -errno. */
int mt_elf__is_dynamic(const char *path);
/* The same, and the dynamic loader's path (PT_INTERP) into buf. */
int mt_elf__interp(const char *path, char *buf, size_t len);
/* 1 if the ELF file is a program (ET_EXEC, or a PIE: DF_1_PIE), 0 if a
 * shared library, -errno. */
int mt_elf__is_program(const char *path);

#endif
