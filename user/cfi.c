// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * CFI to unwind rows. libdw interprets the CFA programs (CIE initial
 * instructions, remember/restore state, ...): for each function we ask it
 * for the frame at the function's start, take the rule it gives for the
 * range [start, end), and go on from end until the function is done.
 * Rules the BPF unwinder cannot follow become MT_CFA_NONE rows, where it
 * falls back to frame pointers.
 */
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <errno.h>
#include <gelf.h>
#include <stdlib.h>
#include <string.h>
#include "cfi.h"
#include "strutil.h"

/* DWARF register numbers, x86-64 psABI */
#define REG_RBP 6
#define REG_RSP 7
#define REG_RA 16

struct addrs {
	uint64_t *v;
	size_t n, cap;
};

static int addrs_push(struct addrs *a, uint64_t x)
{
	return mt_grow((void **)&a->v, &a->cap, a->n + 1, sizeof(*a->v)) ? -ENOMEM :
	       (a->v[a->n++] = x, 0);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int32_t get_s32(const uint8_t *p)
{
	int32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

/*
 * Function starts from .eh_frame_hdr's search table: (initial location,
 * FDE) pairs, datarel sdata4 from the header, which every linker writes.
 */
static int starts_from_hdr(Elf *elf, struct addrs *out)
{
	size_t nph;

	if (elf_getphdrnum(elf, &nph))
		return -ENODATA;
	for (size_t i = 0; i < nph; i++) {
		GElf_Phdr ph;
		Elf_Data *d;
		const uint8_t *p;
		uint32_t count;

		if (!gelf_getphdr(elf, i, &ph) || ph.p_type != PT_GNU_EH_FRAME)
			continue;
		d = elf_getdata_rawchunk(elf, ph.p_offset, ph.p_filesz, ELF_T_BYTE);
		/* version 1; fde_count udata4; table datarel|sdata4 */
		if (!d || d->d_size < 12)
			return -ENODATA;
		p = d->d_buf;
		if (p[0] != 1 || p[2] != (DW_EH_PE_udata4) || p[3] != (DW_EH_PE_datarel | DW_EH_PE_sdata4) ||
		    (p[1] & 0x0f) != DW_EH_PE_sdata4)
			return -ENODATA;
		memcpy(&count, p + 8, sizeof(count));
		if ((uint64_t)count * 8 > d->d_size - 12)
			return -ENODATA;
		for (uint32_t k = 0; k < count; k++)
			if (addrs_push(out, ph.p_vaddr + (int64_t)get_s32(p + 12 + 8 * k)))
				return -ENOMEM;
		return 0;
	}
	return -ENODATA;
}

static Elf_Scn *find_section(Elf *elf, const char *want, GElf_Shdr *sh)
{
	size_t shstrndx;
	Elf_Scn *scn = NULL;

	if (elf_getshdrstrndx(elf, &shstrndx))
		return NULL;
	while ((scn = elf_nextscn(elf, scn))) {
		const char *name;

		if (!gelf_getshdr(scn, sh) || sh->sh_type == SHT_NOBITS)
			continue;
		name = elf_strptr(elf, shstrndx, sh->sh_name);
		if (name && !strcmp(name, want))
			return scn;
	}
	return NULL;
}

/* Size of a pointer in encoding enc; 0 when not fixed-size. */
static size_t enc_size(uint8_t enc)
{
	switch (enc & 0x0f) {
	case DW_EH_PE_absptr:
	case DW_EH_PE_udata8:
	case DW_EH_PE_sdata8:
		return 8;
	case DW_EH_PE_udata4:
	case DW_EH_PE_sdata4:
		return 4;
	case DW_EH_PE_udata2:
	case DW_EH_PE_sdata2:
		return 2;
	}
	return 0;
}

/* The FDE pointer encoding a CIE's augmentation ("zPLR...") gives. */
static int fde_encoding(const Dwarf_CIE *cie)
{
	const char *a = cie->augmentation;
	const uint8_t *p = cie->augmentation_data, *end = p + cie->augmentation_data_size;

	if (!a || a[0] != 'z')
		return DW_EH_PE_absptr;
	for (a++; *a && p && p <= end; a++) {
		switch (*a) {
		case 'R':
			return p < end ? *p : -1;
		case 'L':
			p++;
			break;
		case 'P': {
			size_t n;

			if (p >= end || !(n = enc_size(*p)))
				return -1;
			p += 1 + n;
			break;
		}
		case 'S':
		case 'B':
			break;
		default:
			return -1;
		}
	}
	return DW_EH_PE_absptr;
}

/* Read a pointer of encoding enc at p (vaddr at: where p is mapped). */
static bool read_ptr(const uint8_t *p, const uint8_t *end, uint8_t enc, uint64_t at,
		     uint64_t *out)
{
	size_t n = enc_size(enc);
	uint64_t v = 0;

	if (!n || p + n > end)
		return false;
	memcpy(&v, p, n);
	if (enc & 0x08 && n < 8 && (v >> (n * 8 - 1)) & 1) /* signed: extend */
		v |= ~0ULL << (n * 8);
	switch (enc & 0x70) {
	case DW_EH_PE_absptr:
		break;
	case DW_EH_PE_pcrel:
		v += at;
		break;
	default:
		return false;
	}
	*out = v;
	return true;
}

/*
 * Function starts by walking the CIEs and FDEs of .eh_frame (no search
 * table: e.g. static programs linked without --eh-frame-hdr) or
 * .debug_frame (absolute addresses).
 */
static int starts_from_section(Elf *elf, const char *section, struct addrs *out)
{
	const unsigned char *ident = (const unsigned char *)elf_getident(elf, NULL);
	bool eh = !strcmp(section, ".eh_frame");
	Dwarf_Off off = 0, next;
	GElf_Shdr sh;
	Elf_Scn *scn = find_section(elf, section, &sh);
	Elf_Data *d = scn ? elf_getdata(scn, NULL) : NULL;

	if (!ident || !d)
		return -ENODATA;
	for (;;) {
		Dwarf_CFI_Entry e;
		int r = dwarf_next_cfi(ident, d, eh, off, &next, &e);

		if (r > 0)
			break;
		if (r == 0 && !dwarf_cfi_cie_p(&e)) {
			Dwarf_CFI_Entry cie;
			Dwarf_Off cnext;
			const uint8_t *p = e.fde.start, *end = e.fde.end;
			uint64_t a;
			int enc = DW_EH_PE_absptr;

			if (eh) {
				enc = -1;
				if (!dwarf_next_cfi(ident, d, eh, e.fde.CIE_pointer, &cnext, &cie) &&
				    dwarf_cfi_cie_p(&cie))
					enc = fde_encoding(&cie.cie);
			}
			if (enc >= 0 && read_ptr(p, end, (uint8_t)enc,
						 sh.sh_addr + (uint64_t)(p - (const uint8_t *)d->d_buf),
						 &a) && a && addrs_push(out, a))
				return -ENOMEM;
		}
		if (next == (Dwarf_Off)-1 || next <= off)
			break;
		off = next;
	}
	return out->n ? 0 : -ENODATA;
}

/* binutils' .plt rule: CFA = rsp + 8 + ((rip & 15) >= N) << 3 */
static int plt_threshold(const Dwarf_Op *o, size_t n)
{
	if (n != 9 || o[0].atom != DW_OP_breg7 || o[0].number != 8 ||
	    o[1].atom != DW_OP_breg16 || o[1].number != 0 || o[2].atom != DW_OP_lit15 ||
	    o[3].atom != DW_OP_and || o[4].atom < DW_OP_lit0 || o[4].atom > DW_OP_lit15 ||
	    o[5].atom != DW_OP_ge || o[6].atom != DW_OP_lit3 || o[7].atom != DW_OP_shl ||
	    o[8].atom != DW_OP_plus)
		return -1;
	return o[4].atom - DW_OP_lit0;
}

/* A register saved at CFA + off: DW_OP_call_frame_cfa, DW_OP_plus_uconst off */
static bool saved_at(const Dwarf_Op *o, size_t n, int64_t *off)
{
	if (n == 1 && o[0].atom == DW_OP_call_frame_cfa) {
		*off = 0;
		return true;
	}
	if (n != 2 || o[0].atom != DW_OP_call_frame_cfa || o[1].atom != DW_OP_plus_uconst)
		return false;
	*off = (int64_t)o[1].number;
	return true;
}

static struct mt_cfi_row classify(Dwarf_Frame *f, bool signal, uint64_t pc)
{
	struct mt_cfi_row r = { .pc = (uint32_t)pc, .kind = MT_CFA_NONE };
	Dwarf_Op mem[3], *ops;
	size_t n;
	int64_t off;
	int plt;

	if (signal) {
		r.kind = MT_CFA_SIGNAL;
		return r;
	}
	if (dwarf_frame_register(f, REG_RA, mem, &ops, &n))
		return r;
	if (n == 0 && ops) {
		r.kind = MT_CFA_END; /* return address undefined: _start, thread start */
		return r;
	}
	if (!saved_at(ops, n, &off) || off != -8)
		return r;
	if (dwarf_frame_register(f, REG_RBP, mem, &ops, &n))
		return r;
	if (n == 0)
		r.rbp_off = ops ? MT_RBP_UNDEF : MT_RBP_SAME;
	else if (saved_at(ops, n, &off) && off % 8 == 0 && off / 8 > MT_RBP_UNDEF && off < 0)
		r.rbp_off = (int8_t)(off / 8);
	else
		r.rbp_off = MT_RBP_UNDEF;
	if (dwarf_frame_cfa(f, &ops, &n))
		return r;
	if (n == 1 && ops[0].atom == DW_OP_bregx &&
	    (ops[0].number == REG_RSP || ops[0].number == REG_RBP) &&
	    (int64_t)ops[0].number2 >= 0 && ops[0].number2 <= UINT16_MAX) {
		r.kind = ops[0].number == REG_RSP ? MT_CFA_RSP : MT_CFA_RBP;
		r.cfa_off = (uint16_t)ops[0].number2;
	} else if ((plt = plt_threshold(ops, n)) >= 0) {
		r.kind = MT_CFA_PLT;
		r.cfa_off = (uint16_t)plt;
		r.rbp_off = MT_RBP_SAME;
	}
	return r;
}

static int emit(struct mt_cfi *c, size_t *cap, struct mt_cfi_row r)
{
	struct mt_cfi_row *last = c->nrows ? &c->rows[c->nrows - 1] : NULL;

	if (last && last->pc == r.pc) {
		*last = r; /* a zero-length range: the later rule wins */
		if (c->nrows > 1) {
			struct mt_cfi_row *prev = &c->rows[c->nrows - 2];

			if (prev->kind == r.kind && prev->cfa_off == r.cfa_off &&
			    prev->rbp_off == r.rbp_off)
				c->nrows--;
		}
		return 0;
	}
	if (last && last->kind == r.kind && last->cfa_off == r.cfa_off && last->rbp_off == r.rbp_off)
		return 0;
	if (mt_grow((void **)&c->rows, cap, c->nrows + 1, sizeof(*c->rows)))
		return -ENOMEM;
	c->rows[c->nrows++] = r;
	return 0;
}

/* One function from start, until limit or the end of its FDE. */
static int walk_fde(Dwarf_CFI *cfi, uint64_t start, uint64_t limit, struct mt_cfi *c, size_t *cap)
{
	uint64_t pc = start;

	while (pc < limit && pc <= UINT32_MAX) {
		struct mt_cfi_row r;
		Dwarf_Frame *f;
		Dwarf_Addr s, e;
		bool signal;

		if (dwarf_cfi_addrframe(cfi, pc, &f))
			break;
		if (dwarf_frame_info(f, &s, &e, &signal) < 0 || e <= pc) {
			free(f);
			break;
		}
		r = classify(f, signal, pc);
		free(f);
		c->unsupported += r.kind == MT_CFA_NONE;
		if (emit(c, cap, r))
			return -ENOMEM;
		pc = e;
	}
	/* past the function: no rule until the next one starts */
	if (pc < limit && pc <= UINT32_MAX)
		return emit(c, cap, (struct mt_cfi_row){ .pc = (uint32_t)pc, .kind = MT_CFA_NONE });
	return 0;
}

static uint64_t exec_seg_delta(Elf *elf)
{
	size_t nph;

	if (elf_getphdrnum(elf, &nph))
		return 0;
	for (size_t i = 0; i < nph; i++) {
		GElf_Phdr ph;

		if (gelf_getphdr(elf, i, &ph) && ph.p_type == PT_LOAD && (ph.p_flags & PF_X))
			return ph.p_vaddr - ph.p_offset;
	}
	return 0;
}

static int build(Elf *elf, struct mt_cfi *c)
{
	struct addrs starts = {};
	Dwarf_CFI *ehcfi = NULL, *cfi;
	Dwarf *dw = NULL;
	size_t cap = 0;
	int err;

	if ((!starts_from_hdr(elf, &starts) ||
	     (starts.n = 0, !starts_from_section(elf, ".eh_frame", &starts))) &&
	    (ehcfi = dwarf_getcfi_elf(elf))) {
		cfi = ehcfi;
		c->source = ".eh_frame";
	} else {
		starts.n = 0;
		dw = dwarf_begin_elf(elf, DWARF_C_READ, NULL);
		cfi = dw ? dwarf_getcfi(dw) : NULL;
		if (!cfi || (err = starts_from_section(elf, ".debug_frame", &starts)))
			goto nodata;
		c->source = ".debug_frame";
	}
	qsort(starts.v, starts.n, sizeof(*starts.v), cmp_u64);
	for (size_t i = 0; i < starts.n; i++) {
		if (i && starts.v[i] == starts.v[i - 1])
			continue;
		c->nfdes++;
		err = walk_fde(cfi, starts.v[i], i + 1 < starts.n ? starts.v[i + 1] : UINT64_MAX, c,
			       &cap);
		if (err)
			goto out;
	}
	err = c->nrows ? 0 : -ENODATA;
	goto out;
nodata:
	err = -ENODATA;
out:
	free(starts.v);
	if (ehcfi)
		dwarf_cfi_end(ehcfi);
	if (dw)
		dwarf_end(dw);
	return err;
}

int mt_cfi__build(int fd, struct mt_cfi *out)
{
	Elf *elf;
	GElf_Ehdr eh;
	int err;

	memset(out, 0, sizeof(*out));
	if (elf_version(EV_CURRENT) == EV_NONE)
		return -ENOEXEC;
	elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!elf)
		return -ENOEXEC;
	if (elf_kind(elf) != ELF_K_ELF || !gelf_getehdr(elf, &eh) ||
	    eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_machine != EM_X86_64) {
		elf_end(elf);
		return -ENOEXEC;
	}
	out->seg_delta = exec_seg_delta(elf);
	err = build(elf, out);
	elf_end(elf);
	if (err)
		mt_cfi__clear(out);
	return err;
}

void mt_cfi__clear(struct mt_cfi *c)
{
	if (!c)
		return;
	free(c->rows);
	memset(c, 0, sizeof(*c));
}

const struct mt_cfi_row *mt_cfi__find(const struct mt_cfi_row *rows, size_t n, uint32_t vaddr)
{
	size_t lo = 0, hi = n;

	/* the last row with pc <= vaddr */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (rows[mid].pc <= vaddr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo ? &rows[lo - 1] : NULL;
}

int mt_cfi__pages(const struct mt_cfi_row *rows, size_t n, uint32_t row_base,
		  struct mt_cfi_page **pages, uint32_t *npages, uint32_t *first_page)
{
	uint32_t lo, hi;
	size_t r = 0;

	*pages = NULL;
	*npages = *first_page = 0;
	if (!n)
		return 0;
	lo = rows[0].pc >> MT_CFI_PAGE_SHIFT;
	hi = rows[n - 1].pc >> MT_CFI_PAGE_SHIFT;
	*pages = calloc((size_t)hi - lo + 1, sizeof(**pages));
	if (!*pages)
		return -ENOMEM;
	for (uint32_t p = lo; p <= hi; p++) {
		uint64_t end = (uint64_t)(p + 1) << MT_CFI_PAGE_SHIFT;
		size_t first;

		/* r: the row covering the page's first byte (or row 0) */
		while (r + 1 < n && rows[r + 1].pc <= (uint64_t)p << MT_CFI_PAGE_SHIFT)
			r++;
		first = r;
		while (r + 1 < n && rows[r + 1].pc < end)
			r++;
		(*pages)[p - lo] = (struct mt_cfi_page){ .first_row = row_base + (uint32_t)first,
							 .nrows = (uint32_t)(r - first + 1) };
	}
	*npages = hi - lo + 1;
	*first_page = lo;
	return 0;
}
