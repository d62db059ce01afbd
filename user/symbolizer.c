// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <dwarf.h>
#include <elfutils/libdwfl.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "demangle.h"
#include "pairmap.h"
#include "procmaps.h"
#include "strutil.h"
#include "symbolizer.h"

#define MAX_INLINE 16

struct seg {
	uint64_t off, vaddr, filesz;
};

struct cached {
	struct mt_frame *frames;
	size_t n;
};

struct binary {
	uint64_t dev, ino;
	char *path;
	int fd;			/* -1 once handed to libdwfl, or if unopened */
	Dwfl *dwfl;
	Dwfl_Module *mod;
	GElf_Addr bias;
	struct seg *segs;
	size_t nsegs;
	bool tried;		/* libdwfl set up (or failed to) */
	struct mt_pairmap *cache; /* elf vaddr -> index into cached */
	struct cached *cached;
	size_t ncached, cap_cached;
};

/*
 * Code mappings a process has had and no longer has (its image before an
 * exec, a library unloaded), newest last: a stack stored as addresses
 * (--batch's, or a frame in a file without unwind table) may still hold
 * their addresses. Only their ranges, offsets and binaries are kept.
 */
#define MT_GONE_MAX 1024

struct gone {
	uint64_t start, end, pgoff;
	long bin;
};

struct proc {
	pid_t pid;
	struct mt_maps maps;
	long *bin;		/* per mapping: index into binaries, or -1 */
	struct gone *gone;
	size_t ngone;
};

struct mt_symbolizer {
	struct binary **bins;
	size_t nbins;
	struct proc *procs;
	size_t nprocs;
	struct mt_pairmap *bin_idx; /* (dev, ino) -> index */
};

static const Dwfl_Callbacks dwfl_cbs = {
	.find_elf = dwfl_build_id_find_elf,
	.find_debuginfo = dwfl_standard_find_debuginfo,
	.section_address = dwfl_offline_section_address,
};

struct mt_symbolizer *mt_symbolizer__new(void)
{
	struct mt_symbolizer *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->bin_idx = mt_pairmap__new(64);
	if (!s->bin_idx) {
		free(s);
		return NULL;
	}
	return s;
}

static void free_frames(struct mt_frame *f, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free((char *)f[i].symbol);
		free((char *)f[i].raw_symbol);
		free((char *)f[i].file);
	}
	free(f);
}

static void binary_free(struct binary *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->ncached; i++)
		free_frames(b->cached[i].frames, b->cached[i].n);
	free(b->cached);
	mt_pairmap__free(b->cache);
	if (b->dwfl)
		dwfl_end(b->dwfl);
	if (b->fd >= 0)
		close(b->fd);
	free(b->segs);
	free(b->path);
	free(b);
}

void mt_symbolizer__free(struct mt_symbolizer *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->nbins; i++)
		binary_free(s->bins[i]);
	for (size_t i = 0; i < s->nprocs; i++) {
		mt_procmaps__clear(&s->procs[i].maps);
		free(s->procs[i].bin);
		free(s->procs[i].gone);
	}
	free(s->bins);
	free(s->procs);
	mt_pairmap__free(s->bin_idx);
	free(s);
}

/* Open the mapped file as the process sees it, even if deleted. */
static int open_mapped(pid_t pid, const struct mt_map *m)
{
	char p[4200];
	int fd;

	snprintf(p, sizeof(p), "/proc/%d/map_files/%llx-%llx", pid,
		 (unsigned long long)m->start, (unsigned long long)m->end);
	/* never by path inside the process's root: see target.h */
	fd = open(p, O_RDONLY | O_CLOEXEC);
	return fd;
}

/* The binary (dev, ino), created with path and fd (taken) if new. */
static long binary_of(struct mt_symbolizer *s, uint64_t dev, uint64_t ino, const char *path,
		      int fd)
{
	long i = mt_pairmap__get(s->bin_idx, dev, ino);
	struct binary *b, **nb;

	if (i >= 0) {
		if (fd >= 0)
			close(fd);
		return i;
	}
	b = calloc(1, sizeof(*b));
	nb = realloc(s->bins, (s->nbins + 1) * sizeof(*nb));
	if (!b || !nb) {
		free(b);
		if (nb)
			s->bins = nb;
		if (fd >= 0)
			close(fd);
		return -1;
	}
	s->bins = nb;
	b->dev = dev;
	b->ino = ino;
	b->path = strdup(path);
	b->fd = fd;
	b->cache = mt_pairmap__new(256);
	s->bins[s->nbins] = b;
	if (mt_pairmap__put(s->bin_idx, dev, ino, s->nbins))
		return -1;
	return s->nbins++;
}

static uint64_t dev_key(uint32_t major, uint32_t minor)
{
	return (uint64_t)major << 32 | minor;
}

static long get_binary(struct mt_symbolizer *s, pid_t pid, const struct mt_map *m)
{
	uint64_t dev = dev_key(m->dev_major, m->dev_minor);

	if (mt_pairmap__get(s->bin_idx, dev, m->inode) >= 0)
		return mt_pairmap__get(s->bin_idx, dev, m->inode);
	return binary_of(s, dev, m->inode, m->path, open_mapped(pid, m));
}

int mt_symbolizer__add_file(struct mt_symbolizer *s, uint32_t kdev, uint64_t ino,
			    const char *path, int fd)
{
	return binary_of(s, dev_key(kdev >> 20, kdev & 0xfffff), ino, path, fd) < 0 ? -ENOMEM : 0;
}

static struct proc *find_proc(struct mt_symbolizer *s, pid_t pid)
{
	for (size_t i = 0; i < s->nprocs; i++)
		if (s->procs[i].pid == pid)
			return &s->procs[i];
	return NULL;
}

void mt_symbolizer__drop_process(struct mt_symbolizer *s, pid_t pid)
{
	struct proc *p = find_proc(s, pid);

	if (!p)
		return;
	mt_procmaps__clear(&p->maps);
	free(p->bin);
	free(p->gone);
	*p = s->procs[--s->nprocs];
}

/* Add p's code mappings that maps (its new ones) no longer has to p's
 * gone ones; the oldest go beyond MT_GONE_MAX. */
static void keep_gone(struct proc *p, const struct mt_maps *maps)
{
	size_t *idx = calloc(p->maps.n + 1, sizeof(*idx)), n, k = 0, drop;
	struct gone *g;

	if (!idx)
		return;
	n = mt_procmaps__gone(&p->maps, maps, idx);
	for (size_t i = 0; i < n; i++)
		if (p->bin[idx[i]] >= 0)
			idx[k++] = idx[i];
	g = k ? realloc(p->gone, (p->ngone + k) * sizeof(*g)) : NULL;
	if (g) {
		p->gone = g;
		for (size_t i = 0; i < k; i++) {
			const struct mt_map *m = &p->maps.v[idx[i]];

			g[p->ngone++] = (struct gone){ m->start, m->end, m->pgoff, p->bin[idx[i]] };
		}
		drop = p->ngone > MT_GONE_MAX ? p->ngone - MT_GONE_MAX : 0;
		memmove(g, g + drop, (p->ngone - drop) * sizeof(*g));
		p->ngone -= drop;
	}
	free(idx);
}

int mt_symbolizer__add_process(struct mt_symbolizer *s, pid_t pid)
{
	struct mt_maps maps;
	struct proc *p;
	long *bin;
	int err = mt_procmaps__read(pid, &maps);

	if (err)
		return err;
	if (!maps.n) { /* a zombie: keep what we had */
		mt_procmaps__clear(&maps);
		return -ESRCH;
	}
	bin = calloc(maps.n, sizeof(*bin));
	if (!bin) {
		mt_procmaps__clear(&maps);
		return -ENOMEM;
	}
	for (size_t i = 0; i < maps.n; i++)
		bin[i] = maps.v[i].x && mt_map__is_file(&maps.v[i]) ?
			 get_binary(s, pid, &maps.v[i]) : -1;
	p = find_proc(s, pid);
	if (!p) {
		struct proc *np = realloc(s->procs, (s->nprocs + 1) * sizeof(*np));

		if (!np) {
			mt_procmaps__clear(&maps);
			free(bin);
			return -ENOMEM;
		}
		s->procs = np;
		p = &s->procs[s->nprocs++];
		memset(p, 0, sizeof(*p));
		p->pid = pid;
	}
	keep_gone(p, &maps);
	mt_procmaps__clear(&p->maps);
	free(p->bin);
	p->maps = maps;
	p->bin = bin;
	return 0;
}

static void binary_setup(struct binary *b)
{
	Elf *elf;
	size_t n;

	b->tried = true;
	if (b->fd < 0)
		return;
	b->dwfl = dwfl_begin(&dwfl_cbs);
	if (!b->dwfl)
		return;
	/* libdwfl takes the descriptor */
	b->mod = dwfl_report_offline(b->dwfl, b->path, b->path, b->fd);
	b->fd = -1;
	dwfl_report_end(b->dwfl, NULL, NULL);
	if (!b->mod)
		return;
	elf = dwfl_module_getelf(b->mod, &b->bias);
	if (!elf || elf_getphdrnum(elf, &n))
		return;
	b->segs = calloc(n, sizeof(*b->segs));
	for (size_t i = 0; b->segs && i < n; i++) {
		GElf_Phdr ph;

		if (gelf_getphdr(elf, i, &ph) && ph.p_type == PT_LOAD)
			b->segs[b->nsegs++] = (struct seg){ ph.p_offset, ph.p_vaddr, ph.p_filesz };
	}
}

static bool to_vaddr(const struct binary *b, uint64_t file_off, uint64_t *vaddr)
{
	for (size_t i = 0; i < b->nsegs; i++) {
		const struct seg *g = &b->segs[i];

		if (file_off >= g->off && file_off < g->off + g->filesz) {
			*vaddr = file_off - g->off + g->vaddr;
			return true;
		}
	}
	return false;
}

static const char *die_name(Dwarf_Die *die)
{
	Dwarf_Attribute a;
	const char *n;

	n = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_linkage_name, &a));
	if (!n)
		n = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &a));
	if (!n)
		n = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_name, &a));
	return n;
}

static const char *call_file(Dwarf_Die *cu, Dwarf_Die *die)
{
	Dwarf_Attribute a;
	Dwarf_Files *files;
	Dwarf_Word idx;
	size_t nfiles;

	if (dwarf_formudata(dwarf_attr(die, DW_AT_call_file, &a), &idx) ||
	    dwarf_getsrcfiles(cu, &files, &nfiles) || idx >= nfiles)
		return NULL;
	return dwarf_filesrc(files, idx, NULL, NULL);
}

static int call_line(Dwarf_Die *die)
{
	Dwarf_Attribute a;
	Dwarf_Word v;

	if (dwarf_formudata(dwarf_attr(die, DW_AT_call_line, &a), &v))
		return 0;
	return (int)v;
}

static char *sdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

/*
 * Resolve pc (inside the call: return address - 1). Inlined frames come
 * first, each with the file:line where it is, the call site of each
 * giving the line of the next one out.
 */
static size_t resolve(struct binary *b, uint64_t pc, uint64_t addr_delta, struct mt_frame *out)
{
	const char *file = NULL, *raw;
	int line = 0;
	size_t n = 0;
	GElf_Off off = 0;
	GElf_Sym sym;
	Dwarf_Addr cubias;
	Dwarf_Die *cu, *scopes = NULL;
	Dwfl_Line *l = dwfl_module_getsrc(b->mod, pc);

	if (l)
		file = dwfl_lineinfo(l, NULL, &line, NULL, NULL, NULL);
	cu = dwfl_module_addrdie(b->mod, pc, &cubias);
	if (cu) {
		int ns = dwarf_getscopes(cu, pc - cubias, &scopes);

		for (int i = 0; i < ns && n < MAX_INLINE - 1; i++) {
			if (dwarf_tag(&scopes[i]) != DW_TAG_inlined_subroutine)
				continue;
			raw = die_name(&scopes[i]);
			out[n] = (struct mt_frame){
				.raw_symbol = sdup(raw), .symbol = mt_demangle(raw),
				.file = sdup(file), .line = line, .inlined = true,
			};
			n++;
			file = call_file(cu, &scopes[i]);
			line = call_line(&scopes[i]);
		}
		free(scopes);
	}
	raw = dwfl_module_addrinfo(b->mod, pc, &off, &sym, NULL, NULL, NULL);
	out[n] = (struct mt_frame){
		.raw_symbol = sdup(raw), .symbol = mt_demangle(raw),
		.offset = raw ? off + addr_delta : 0,
		.file = sdup(file), .line = line,
	};
	return n + 1;
}

static const struct cached *lookup_cached(struct binary *b, uint64_t vaddr)
{
	long i = mt_pairmap__get(b->cache, vaddr, 0);
	struct mt_frame tmp[MAX_INLINE];
	struct cached c;

	if (i >= 0)
		return &b->cached[i];
	c.n = resolve(b, vaddr + b->bias - 1, 1, tmp);
	c.frames = malloc(c.n * sizeof(*c.frames));
	if (!c.frames) {
		for (size_t j = 0; j < c.n; j++) {
			free((char *)tmp[j].symbol);
			free((char *)tmp[j].raw_symbol);
			free((char *)tmp[j].file);
		}
		return NULL;
	}
	memcpy(c.frames, tmp, c.n * sizeof(*c.frames));
	if (b->ncached == b->cap_cached) {
		size_t cap = b->cap_cached ? b->cap_cached * 2 : 64;
		struct cached *nc = realloc(b->cached, cap * sizeof(*nc));

		if (!nc) {
			free_frames(c.frames, c.n);
			return NULL;
		}
		b->cached = nc;
		b->cap_cached = cap;
	}
	b->cached[b->ncached] = c;
	if (mt_pairmap__put(b->cache, vaddr, 0, b->ncached))
		return NULL;
	return &b->cached[b->ncached++];
}

/* Frames of file offset off in binary b, reported at addr. */
static size_t lookup_in(struct binary *b, uint64_t off, uint64_t addr, struct mt_frame *out,
			size_t max)
{
	const struct cached *c = NULL;
	uint64_t vaddr;
	size_t n;

	out[0] = (struct mt_frame){ .addr = addr, .module = b->path };
	if (!b->tried)
		binary_setup(b);
	if (b->mod && to_vaddr(b, off, &vaddr))
		c = lookup_cached(b, vaddr);
	if (!c)
		return 1;
	n = c->n < max ? c->n : max;
	for (size_t i = 0; i < n; i++) {
		out[i] = c->frames[i];
		out[i].addr = addr;
		out[i].module = b->path;
	}
	return n;
}

size_t mt_symbolizer__lookup(struct mt_symbolizer *s, pid_t pid, uint64_t addr,
			     struct mt_frame *out, size_t max)
{
	struct proc *p = find_proc(s, pid);
	const struct mt_map *m = p ? mt_procmaps__find(&p->maps, addr) : NULL;

	if (!max)
		return 0;
	out[0] = (struct mt_frame){ .addr = addr };
	if (m && p->bin[m - p->maps.v] >= 0)
		return lookup_in(s->bins[p->bin[m - p->maps.v]], addr - m->start + m->pgoff, addr,
				 out, max);
	/* not in the process's code now: in code it had, the newest first */
	for (size_t i = p ? p->ngone : 0; i-- > 0;) {
		const struct gone *g = &p->gone[i];

		if (addr >= g->start && addr < g->end)
			return lookup_in(s->bins[g->bin], addr - g->start + g->pgoff, addr, out,
					 max);
	}
	return 1;
}

size_t mt_symbolizer__lookup_file(struct mt_symbolizer *s, uint32_t kdev, uint64_t ino,
				  uint64_t off, struct mt_frame *out, size_t max)
{
	long i = mt_pairmap__get(s->bin_idx, dev_key(kdev >> 20, kdev & 0xfffff), ino);

	if (!max)
		return 0;
	out[0] = (struct mt_frame){ .addr = off };
	return i < 0 ? 1 : lookup_in(s->bins[i], off, off, out, max);
}
