// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * CFI to unwind rows. libdw splits the section into CIEs and FDEs
 * (dwarf_next_cfi); the CFA programs are run here, tracking only what a
 * row holds (the CFA rule, rbp's and the return address's rules), in one
 * pass per function: bounded work and memory whatever the input (libdw's
 * own interpreter can be made to allocate gigabytes by one register
 * number: found by fuzzing). Rules the BPF unwinder cannot follow become
 * MT_CFA_NONE rows, where it falls back to frame pointers.
 */
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <errno.h>
#include <gelf.h>
#include <stdlib.h>
#include <string.h>
#include "cfi.h"
#include "pairmap.h"
#include "strutil.h"

/* DWARF register numbers, x86-64 psABI */
#define REG_RBP 6
#define REG_RSP 7
#define REG_RA 16

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

/* ---- a CFA program interpreter: only what the rows need ---------------- */

/* How the caller finds a register, as far as the rows care. */
enum how { H_SAME, H_UNDEF, H_OFFSET, H_OTHER };

struct rule {
	uint8_t how;
	int64_t off;		/* H_OFFSET: saved at CFA + off */
};

struct cfa_state {
	uint8_t cfa_how;	/* C_REG, C_PLT, C_OTHER */
	uint64_t cfa_reg;
	int64_t cfa_off;	/* C_REG: offset; C_PLT: threshold */
	struct rule rbp, ra;
};

enum { C_REG, C_PLT, C_OTHER };

struct cie_info {
	const uint8_t *insns, *end;
	uint64_t caf;		/* code alignment factor */
	int64_t daf;		/* data alignment factor */
	uint64_t ra_reg;
	int fde_enc;
	bool signal, z;
	struct cfa_state init;	/* after the initial instructions */
};

struct cursor {
	const uint8_t *p, *end;
	bool bad;
};

/* a * b, wrapping (hostile input must not be undefined behaviour) */
static int64_t mulw(uint64_t a, int64_t b)
{
	return (int64_t)(a * (uint64_t)b);
}

static uint64_t uleb(struct cursor *c)
{
	uint64_t v = 0;
	unsigned shift = 0;

	while (c->p < c->end) {
		uint8_t b = *c->p++;

		if (shift < 64)
			v |= (uint64_t)(b & 0x7f) << shift;
		shift += 7;
		if (!(b & 0x80))
			return v;
	}
	c->bad = true;
	return 0;
}

static int64_t sleb(struct cursor *c)
{
	int64_t v = 0;
	unsigned shift = 0;
	uint8_t b = 0;

	while (c->p < c->end) {
		b = *c->p++;
		if (shift < 64)
			v |= (int64_t)((uint64_t)(b & 0x7f) << shift);
		shift += 7;
		if (!(b & 0x80)) {
			if (shift < 64 && (b & 0x40))
				v = (int64_t)((uint64_t)v | (~0ULL << shift));
			return v;
		}
	}
	c->bad = true;
	return 0;
}

static uint64_t fixed(struct cursor *c, size_t n)
{
	uint64_t v = 0;

	if ((size_t)(c->end - c->p) < n) {
		c->bad = true;
		return 0;
	}
	memcpy(&v, c->p, n);
	c->p += n;
	return v;
}

static void skip(struct cursor *c, uint64_t n)
{
	if ((uint64_t)(c->end - c->p) < n) {
		c->bad = true;
		c->p = c->end;
	} else {
		c->p += n;
	}
}

/* binutils' .plt rule: CFA = rsp + 8 + ((rip & 15) >= N) << 3, as bytes */
static int plt_threshold(const uint8_t *e, uint64_t len)
{
	static const uint8_t head[] = { DW_OP_breg7, 8, DW_OP_breg16, 0, DW_OP_lit15, DW_OP_and };
	static const uint8_t tail[] = { DW_OP_ge, DW_OP_lit3, DW_OP_shl, DW_OP_plus };

	if (len != sizeof(head) + 1 + sizeof(tail) || memcmp(e, head, sizeof(head)) ||
	    e[6] < DW_OP_lit0 || e[6] > DW_OP_lit15 || memcmp(e + 7, tail, sizeof(tail)))
		return -1;
	return e[6] - DW_OP_lit0;
}

static struct rule *rule_of(struct cfa_state *s, const struct cie_info *ci, uint64_t reg)
{
	return reg == REG_RBP ? &s->rbp : reg == ci->ra_reg ? &s->ra : NULL;
}

#define MAX_REMEMBER 8

/*
 * Run instructions from c on s, stopping after an advance: returns the
 * new location's delta in code units (0: instructions exhausted), with
 * *more set while there are instructions left. Bad input sets c->bad.
 */
static uint64_t run_to_advance(struct cursor *c, struct cfa_state *s, const struct cie_info *ci,
			       struct cfa_state *stack, int *depth, bool *more, uint64_t *set_loc,
			       uint64_t insn_vaddr_base, const uint8_t *sec_base)
{
	while (c->p < c->end && !c->bad) {
		uint8_t op = *c->p++, lo = op & 0x3f;
		uint64_t reg, n;
		struct rule *r;

		switch (op >> 6) {
		case 1: /* advance_loc */
			*more = true;
			return lo;
		case 2: /* offset */
			n = uleb(c);
			if ((r = rule_of(s, ci, lo)))
				*r = (struct rule){ H_OFFSET, mulw(n, ci->daf) };
			continue;
		case 3: /* restore */
			if ((r = rule_of(s, ci, lo)))
				*r = *rule_of((struct cfa_state *)&ci->init, ci, lo);
			continue;
		}
		switch (op) {
		case DW_CFA_nop:
		case DW_CFA_GNU_args_size:
			if (op == DW_CFA_GNU_args_size)
				uleb(c);
			break;
		case DW_CFA_set_loc: {
			uint64_t a;

			if (!sec_base || !read_ptr(c->p, c->end, (uint8_t)ci->fde_enc,
				      insn_vaddr_base + (uint64_t)(c->p - sec_base), &a)) {
				c->bad = true;
				break;
			}
			skip(c, enc_size((uint8_t)ci->fde_enc));
			*set_loc = a;
			*more = true;
			return 0;
		}
		case DW_CFA_advance_loc1:
			*more = true;
			return fixed(c, 1);
		case DW_CFA_advance_loc2:
			*more = true;
			return fixed(c, 2);
		case DW_CFA_advance_loc4:
			*more = true;
			return fixed(c, 4);
		case DW_CFA_offset_extended:
			reg = uleb(c);
			n = uleb(c);
			if ((r = rule_of(s, ci, reg)))
				*r = (struct rule){ H_OFFSET, mulw(n, ci->daf) };
			break;
		case DW_CFA_offset_extended_sf:
			reg = uleb(c);
			if ((r = rule_of(s, ci, reg)))
				*r = (struct rule){ H_OFFSET, mulw((uint64_t)sleb(c), ci->daf) };
			else
				sleb(c);
			break;
		case DW_CFA_GNU_negative_offset_extended:
			reg = uleb(c);
			n = uleb(c);
			if ((r = rule_of(s, ci, reg)))
				*r = (struct rule){ H_OFFSET, mulw(0 - n, ci->daf) };
			break;
		case DW_CFA_restore_extended:
			reg = uleb(c);
			if ((r = rule_of(s, ci, reg)))
				*r = *rule_of((struct cfa_state *)&ci->init, ci, reg);
			break;
		case DW_CFA_undefined:
		case DW_CFA_same_value:
			reg = uleb(c);
			if ((r = rule_of(s, ci, reg)))
				*r = (struct rule){ op == DW_CFA_undefined ? H_UNDEF : H_SAME, 0 };
			break;
		case DW_CFA_register:
			reg = uleb(c);
			uleb(c);
			if ((r = rule_of(s, ci, reg)))
				*r = (struct rule){ H_OTHER, 0 };
			break;
		case DW_CFA_remember_state:
			if (*depth >= MAX_REMEMBER) {
				c->bad = true;
				break;
			}
			stack[(*depth)++] = *s;
			break;
		case DW_CFA_restore_state:
			if (*depth <= 0) {
				c->bad = true;
				break;
			}
			/* the whole row, CFA included, as GCC's unwinder and libdw
			 * do */
			*s = stack[--(*depth)];
			break;
		case DW_CFA_def_cfa:
			s->cfa_reg = uleb(c);
			s->cfa_off = (int64_t)uleb(c);
			s->cfa_how = C_REG;
			break;
		case DW_CFA_def_cfa_sf:
			s->cfa_reg = uleb(c);
			s->cfa_off = mulw((uint64_t)sleb(c), ci->daf);
			s->cfa_how = C_REG;
			break;
		case DW_CFA_def_cfa_register:
			s->cfa_reg = uleb(c);
			if (s->cfa_how != C_REG) /* keeps the offset of a register rule */
				s->cfa_how = C_OTHER;
			break;
		case DW_CFA_def_cfa_offset:
			s->cfa_off = (int64_t)uleb(c);
			if (s->cfa_how == C_PLT)
				s->cfa_how = C_OTHER;
			break;
		case DW_CFA_def_cfa_offset_sf:
			s->cfa_off = mulw((uint64_t)sleb(c), ci->daf);
			if (s->cfa_how == C_PLT)
				s->cfa_how = C_OTHER;
			break;
		case DW_CFA_def_cfa_expression: {
			uint64_t len = uleb(c);
			int plt = c->bad || (uint64_t)(c->end - c->p) < len ? -1 :
				  plt_threshold(c->p, len);

			skip(c, len);
			s->cfa_how = plt >= 0 ? C_PLT : C_OTHER;
			s->cfa_off = plt;
			break;
		}
		case DW_CFA_expression:
		case DW_CFA_val_expression:
			reg = uleb(c);
			skip(c, uleb(c));
			if ((r = rule_of(s, ci, reg)))
				*r = (struct rule){ H_OTHER, 0 };
			break;
		case DW_CFA_val_offset:
		case DW_CFA_val_offset_sf:
			reg = uleb(c);
			if (op == DW_CFA_val_offset)
				uleb(c);
			else
				sleb(c);
			if ((r = rule_of(s, ci, reg)))
				*r = (struct rule){ H_OTHER, 0 };
			break;
		default: /* unknown: nothing after it can be trusted */
			c->bad = true;
			break;
		}
	}
	*more = false;
	return 0;
}

static struct mt_cfi_row classify(const struct cfa_state *s, bool signal, uint64_t pc)
{
	struct mt_cfi_row r = { .pc = (uint32_t)pc, .kind = MT_CFA_NONE };

	if (signal) {
		r.kind = MT_CFA_SIGNAL;
		return r;
	}
	if (s->ra.how == H_UNDEF) {
		r.kind = MT_CFA_END; /* return address undefined: _start, thread start */
		return r;
	}
	if (s->ra.how != H_OFFSET || s->ra.off != -8)
		return r;
	if (s->rbp.how == H_SAME)
		r.rbp_off = MT_RBP_SAME;
	else if (s->rbp.how == H_OFFSET && s->rbp.off % 8 == 0 && s->rbp.off < 0 &&
		 s->rbp.off / 8 > MT_RBP_UNDEF)
		r.rbp_off = (int8_t)(s->rbp.off / 8);
	else
		r.rbp_off = MT_RBP_UNDEF;
	if (s->cfa_how == C_REG && (s->cfa_reg == REG_RSP || s->cfa_reg == REG_RBP) &&
	    s->cfa_off >= 0 && s->cfa_off <= UINT16_MAX) {
		r.kind = s->cfa_reg == REG_RSP ? MT_CFA_RSP : MT_CFA_RBP;
		r.cfa_off = (uint16_t)s->cfa_off;
	} else if (s->cfa_how == C_PLT) {
		r.kind = MT_CFA_PLT;
		r.cfa_off = (uint16_t)s->cfa_off;
		r.rbp_off = MT_RBP_SAME;
	}
	return r;
}

static int emit(struct mt_cfi *c, size_t *cap, struct mt_cfi_row r)
{
	struct mt_cfi_row *last = c->nrows ? &c->rows[c->nrows - 1] : NULL;

	if (last && r.pc < last->pc)
		return 0; /* overlapping functions (bad input): the first wins */
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

/* One function: [start, end) (clipped to limit), its CIE, instructions. */
struct fde_info {
	uint64_t start, end;
	const uint8_t *insns, *insns_end;
	uint32_t cie;		/* index into the CIE array */
};

static int walk_fde(const struct fde_info *f, const struct cie_info *ci, uint64_t limit,
		    uint64_t sec_vaddr, const uint8_t *sec_base, struct mt_cfi *c,
		    size_t *cap)
{
	struct cfa_state s = ci->init, stack[MAX_REMEMBER];
	struct cursor cur = { f->insns, f->insns_end, false };
	uint64_t loc = f->start, end = f->end < limit ? f->end : limit;
	int depth = 0, err;
	bool more = true;

	while (more && loc < end && loc <= UINT32_MAX) {
		uint64_t set = UINT64_MAX;
		uint64_t delta = run_to_advance(&cur, &s, ci, stack, &depth, &more, &set, sec_vaddr,
						sec_base);
		uint64_t next = set != UINT64_MAX ? set : loc + delta * ci->caf;
		struct mt_cfi_row r;

		if (cur.bad) {
			c->unsupported++;
			break; /* stop here: NONE from loc on */
		}
		if (more && next <= loc && set == UINT64_MAX)
			continue; /* advance by 0 */
		r = classify(&s, ci->signal, loc);
		c->unsupported += r.kind == MT_CFA_NONE;
		if ((err = emit(c, cap, r)))
			return err;
		if (!more)
			loc = end;
		else
			loc = next > loc ? next : loc;
	}
	if (cur.bad && loc < end && loc <= UINT32_MAX)
		return emit(c, cap, (struct mt_cfi_row){ .pc = (uint32_t)loc, .kind = MT_CFA_NONE });
	/* past the function: no rule until the next one starts */
	if (end < limit && end <= UINT32_MAX)
		return emit(c, cap, (struct mt_cfi_row){ .pc = (uint32_t)end, .kind = MT_CFA_NONE });
	return 0;
}

static int cmp_fde(const void *a, const void *b)
{
	const struct fde_info *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/* A CIE: its factors, augmentation, and the state its instructions set. */
static bool parse_cie(const Dwarf_CIE *e, bool eh, struct cie_info *ci)
{
	struct cfa_state stack[MAX_REMEMBER];
	struct cursor cur = { e->initial_instructions, e->initial_instructions_end, false };
	uint64_t dummy;
	int depth = 0;
	bool more;

	memset(ci, 0, sizeof(*ci));
	ci->caf = e->code_alignment_factor;
	ci->daf = e->data_alignment_factor;
	ci->ra_reg = e->return_address_register;
	ci->z = e->augmentation && e->augmentation[0] == 'z';
	ci->signal = e->augmentation && strchr(e->augmentation, 'S');
	ci->fde_enc = eh ? fde_encoding(e) : DW_EH_PE_udata8;
	if (ci->fde_enc < 0 || !enc_size((uint8_t)ci->fde_enc) || !ci->caf)
		return false;
	/* defaults: rbp callee-saved (unchanged), the return address unknown */
	ci->init = (struct cfa_state){ .cfa_how = C_OTHER, .rbp = { H_SAME, 0 },
				       .ra = { H_OTHER, 0 } };
	/* the initial instructions have no advance worth keeping */
	do {
		run_to_advance(&cur, &ci->init, ci, stack, &depth, &more, &dummy, 0, NULL);
	} while (more && !cur.bad);
	return !cur.bad;
}

/* Every FDE of a section (.eh_frame or .debug_frame), with its CIE. */
static int collect(Elf *elf, const char *section, struct fde_info **fdes, size_t *nfdes,
		   struct cie_info **cies, size_t *ncies, uint64_t *sec_vaddr,
		   const uint8_t **sec_base)
{
	const unsigned char *ident = (const unsigned char *)elf_getident(elf, NULL);
	bool eh = !strcmp(section, ".eh_frame");
	size_t fcap = 0, ccap = 0;
	struct mt_pairmap *by_off = mt_pairmap__new(16);
	Dwarf_Off off = 0, next;
	GElf_Shdr sh;
	Elf_Scn *scn = find_section(elf, section, &sh);
	Elf_Data *d = scn ? elf_getdata(scn, NULL) : NULL;
	int err = 0;

	*fdes = NULL;
	*cies = NULL;
	*nfdes = *ncies = 0;
	if (!by_off)
		return -ENOMEM;
	if (!ident || !d || !d->d_buf) {
		mt_pairmap__free(by_off);
		return -ENODATA;
	}
	*sec_vaddr = sh.sh_addr;
	*sec_base = d->d_buf;
	for (;;) {
		Dwarf_CFI_Entry e, ce;
		Dwarf_Off cnext;
		int r = dwarf_next_cfi(ident, d, eh, off, &next, &e);
		long ci;

		if (r > 0)
			break;
		if (r == 0 && !dwarf_cfi_cie_p(&e)) {
			struct cursor cur = { e.fde.start, e.fde.end, false };
			struct fde_info f;
			uint64_t start, range;

			ci = mt_pairmap__get(by_off, e.fde.CIE_pointer, 0);
			if (ci < 0 && !dwarf_next_cfi(ident, d, eh, e.fde.CIE_pointer, &cnext, &ce) &&
			    dwarf_cfi_cie_p(&ce)) {
				if ((err = mt_grow((void **)cies, &ccap, *ncies + 1, sizeof(**cies))))
					break;
				if (parse_cie(&ce.cie, eh, &(*cies)[*ncies])) {
					ci = (long)(*ncies)++;
				} else {
					ci = -2; /* unusable: its FDEs are skipped */
				}
				if ((err = mt_pairmap__put(by_off, e.fde.CIE_pointer, 0, ci)))
					break;
			}
			if (ci >= 0 && read_ptr(cur.p, cur.end, (uint8_t)(*cies)[ci].fde_enc,
						*sec_vaddr + (uint64_t)(cur.p - *sec_base), &start)) {
				skip(&cur, enc_size((uint8_t)(*cies)[ci].fde_enc));
				range = fixed(&cur, enc_size((uint8_t)(*cies)[ci].fde_enc));
				if ((*cies)[ci].z)
					skip(&cur, uleb(&cur));
				if (!cur.bad && start && range && start + range > start) {
					f = (struct fde_info){ start, start + range, cur.p, cur.end,
							       (uint32_t)ci };
					if ((err = mt_grow((void **)fdes, &fcap, *nfdes + 1,
							   sizeof(**fdes))))
						break;
					(*fdes)[(*nfdes)++] = f;
				}
			}
		}
		if (next == (Dwarf_Off)-1 || next <= off)
			break;
		off = next;
	}
	mt_pairmap__free(by_off);
	if (err)
		return err;
	return *nfdes ? 0 : -ENODATA;
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

/* The executable segments' addresses: rows outside them are noise (or an
 * attack: one FDE claiming 4 GiB would make a table of a million pages). */
struct text {
	uint64_t lo[8], hi[8];
	int n;
};

static void text_ranges(Elf *elf, struct text *t)
{
	size_t nph;

	t->n = 0;
	if (elf_getphdrnum(elf, &nph))
		return;
	for (size_t i = 0; i < nph && t->n < 8; i++) {
		GElf_Phdr ph;

		if (gelf_getphdr(elf, i, &ph) && ph.p_type == PT_LOAD && (ph.p_flags & PF_X) &&
		    ph.p_memsz && ph.p_vaddr + ph.p_memsz > ph.p_vaddr) {
			t->lo[t->n] = ph.p_vaddr;
			t->hi[t->n++] = ph.p_vaddr + ph.p_memsz;
		}
	}
}

/* Clip f to the executable segment it starts in; false if none. */
static bool clip(const struct text *t, struct fde_info *f)
{
	for (int i = 0; i < t->n; i++) {
		if (f->start >= t->lo[i] && f->start < t->hi[i]) {
			if (f->end > t->hi[i])
				f->end = t->hi[i];
			return true;
		}
	}
	return false;
}

static int build(Elf *elf, struct mt_cfi *c)
{
	struct fde_info *fdes = NULL;
	struct cie_info *cies = NULL;
	size_t nfdes = 0, ncies = 0, cap = 0, kept = 0;
	struct text text;
	uint64_t sec_vaddr = 0;
	const uint8_t *sec_base = NULL;
	int err = collect(elf, ".eh_frame", &fdes, &nfdes, &cies, &ncies, &sec_vaddr, &sec_base);

	c->source = ".eh_frame";
	if (err == -ENODATA) {
		free(fdes);
		free(cies);
		c->source = ".debug_frame";
		err = collect(elf, ".debug_frame", &fdes, &nfdes, &cies, &ncies, &sec_vaddr,
			      &sec_base);
	}
	if (err)
		goto out;
	text_ranges(elf, &text);
	for (size_t i = 0; i < nfdes; i++)
		if (clip(&text, &fdes[i]))
			fdes[kept++] = fdes[i];
	nfdes = kept;
	if (!nfdes) {
		err = -ENODATA;
		goto out;
	}
	qsort(fdes, nfdes, sizeof(*fdes), cmp_fde);
	for (size_t i = 0, j = 0; i < nfdes && !err; i++) {
		if (i && fdes[i].start == fdes[i - 1].start)
			continue; /* a duplicate: the first one counts */
		while (j < nfdes && fdes[j].start <= fdes[i].start)
			j++; /* the next function that starts later */
		c->nfdes++;
		err = walk_fde(&fdes[i], &cies[fdes[i].cie], j < nfdes ? fdes[j].start : UINT64_MAX,
			       sec_vaddr, sec_base, c, &cap);
	}
	if (!err && !c->nrows)
		err = -ENODATA;
out:
	free(fdes);
	free(cies);
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
