// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "elfsyms.h"

static int open_elf(const char *path, int *fd, Elf **elf)
{
	if (elf_version(EV_CURRENT) == EV_NONE)
		return -EINVAL;
	*fd = open(path, O_RDONLY | O_CLOEXEC);
	if (*fd < 0)
		return -errno;
	*elf = elf_begin(*fd, ELF_C_READ_MMAP, NULL);
	if (!*elf || elf_kind(*elf) != ELF_K_ELF) {
		if (*elf)
			elf_end(*elf);
		close(*fd);
		return -ENOEXEC;
	}
	return 0;
}

/* Virtual address to file offset, through the PT_LOAD that holds it. */
static uint64_t vaddr_to_offset(Elf *elf, uint64_t vaddr)
{
	size_t n;

	if (elf_getphdrnum(elf, &n))
		return 0;
	for (size_t i = 0; i < n; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(elf, i, &ph) || ph.p_type != PT_LOAD)
			continue;
		if (vaddr >= ph.p_vaddr && vaddr < ph.p_vaddr + ph.p_filesz)
			return vaddr - ph.p_vaddr + ph.p_offset;
	}
	return 0;
}

static void scan_symtab(Elf *elf, Elf_Scn *scn, const GElf_Shdr *sh,
			const char *const *names, size_t n, uint64_t *offs)
{
	Elf_Data *data = elf_getdata(scn, NULL);
	size_t count = sh->sh_entsize ? sh->sh_size / sh->sh_entsize : 0;

	for (size_t i = 0; data && i < count; i++) {
		GElf_Sym sym;
		const char *name;

		if (!gelf_getsym(data, i, &sym) || sym.st_shndx == SHN_UNDEF ||
		    GELF_ST_TYPE(sym.st_info) != STT_FUNC || !sym.st_value)
			continue;
		name = elf_strptr(elf, sh->sh_link, sym.st_name);
		if (!name)
			continue;
		for (size_t j = 0; j < n; j++)
			if (!offs[j] && !strcmp(name, names[j]))
				offs[j] = vaddr_to_offset(elf, sym.st_value);
	}
}

int mt_elf__func_offsets(const char *path, const char *const *names, size_t n,
			 uint64_t *offs)
{
	Elf_Scn *scn = NULL;
	Elf *elf;
	int fd, err;

	memset(offs, 0, n * sizeof(*offs));
	err = open_elf(path, &fd, &elf);
	if (err)
		return err;
	for (int pass = 0; pass < 2; pass++) {
		Elf32_Word want = pass ? SHT_DYNSYM : SHT_SYMTAB;

		while ((scn = elf_nextscn(elf, scn))) {
			GElf_Shdr sh;

			if (gelf_getshdr(scn, &sh) && sh.sh_type == want)
				scan_symtab(elf, scn, &sh, names, n, offs);
		}
	}
	elf_end(elf);
	close(fd);
	return 0;
}

/* The dynamic section's entries (*n of them) and its header; NULL if none. */
static Elf_Data *dynamic(Elf *elf, GElf_Shdr *sh, size_t *n)
{
	Elf_Scn *scn = NULL;

	*n = 0;
	while ((scn = elf_nextscn(elf, scn))) {
		Elf_Data *data;

		if (!gelf_getshdr(scn, sh) || sh->sh_type != SHT_DYNAMIC)
			continue;
		data = elf_getdata(scn, NULL);
		if (data && sh->sh_entsize)
			*n = sh->sh_size / sh->sh_entsize;
		return data;
	}
	return NULL;
}

int mt_elf__needed(const char *path, char **needed, int max, char *runpath, size_t len)
{
	int fd, err, n = 0;
	Elf_Data *data;
	GElf_Shdr sh;
	GElf_Dyn d;
	size_t nd;
	Elf *elf;

	runpath[0] = 0;
	err = open_elf(path, &fd, &elf);
	if (err)
		return err;
	data = dynamic(elf, &sh, &nd);
	for (size_t i = 0; i < nd && gelf_getdyn(data, i, &d); i++) {
		const char *s;

		if (d.d_tag != DT_NEEDED && d.d_tag != DT_RUNPATH && d.d_tag != DT_RPATH)
			continue;
		s = elf_strptr(elf, sh.sh_link, d.d_un.d_val);
		if (!s)
			continue;
		if (d.d_tag == DT_NEEDED && n < max)
			needed[n++] = strdup(s);
		else if (d.d_tag != DT_NEEDED && (d.d_tag == DT_RUNPATH || !runpath[0]))
			snprintf(runpath, len, "%s", s);
	}
	elf_end(elf);
	close(fd);
	return n;
}

int mt_elf__interp(const char *path, char *buf, size_t len)
{
	size_t n, size;
	Elf *elf;
	int fd, err, dyn = 0;

	err = open_elf(path, &fd, &elf);
	if (err)
		return err;
	if (len)
		buf[0] = 0;
	if (!elf_getphdrnum(elf, &n)) {
		for (size_t i = 0; i < n; i++) {
			GElf_Phdr ph;
			const char *raw;

			if (!gelf_getphdr(elf, i, &ph) || ph.p_type != PT_INTERP)
				continue;
			dyn = 1;
			raw = elf_rawfile(elf, &size);
			if (len && raw && ph.p_offset < size)
				snprintf(buf, len, "%.*s",
					 (int)(size - ph.p_offset < ph.p_filesz ? size - ph.p_offset :
										 ph.p_filesz),
					 raw + ph.p_offset);
		}
	}
	elf_end(elf);
	close(fd);
	return dyn;
}

int mt_elf__is_dynamic(const char *path)
{
	return mt_elf__interp(path, NULL, 0);
}

bool mt_elf__defines(const char *path, const char *name)
{
	uint64_t off = 0;

	return !mt_elf__func_offsets(path, &name, 1, &off) && off;
}

int mt_elf__is_program(const char *path)
{
	int fd, err, prog = 0;
	Elf_Data *data;
	GElf_Ehdr eh;
	GElf_Shdr sh;
	GElf_Dyn d;
	size_t nd;
	Elf *elf;

	err = open_elf(path, &fd, &elf);
	if (err)
		return err;
	if (gelf_getehdr(elf, &eh) && eh.e_type == ET_EXEC)
		prog = 1;
	data = prog ? NULL : dynamic(elf, &sh, &nd);
	for (size_t i = 0; data && i < nd && gelf_getdyn(data, i, &d); i++)
		if (d.d_tag == DT_FLAGS_1 && (d.d_un.d_val & DF_1_PIE))
			prog = 1;
	elf_end(elf);
	close(fd);
	return prog;
}
