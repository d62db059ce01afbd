// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* CFI to unwind rows, against tests/fixtures/cfi_sample.S (known CFI). */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>
#include "cfi.h"

#define SAMPLE MT_BUILDDIR "/tests/fixtures/cfi_sample.so"

static struct mt_cfi load_file(const char *path)
{
	struct mt_cfi c;
	int fd = open(path, O_RDONLY);

	cr_assert(fd >= 0, "cannot open %s", path);
	cr_assert_eq(mt_cfi__build(fd, &c), 0);
	close(fd);
	return c;
}

/* A symbol's address in the sample, from its symbol table. */
static uint32_t sym_addr(const char *name)
{
	int fd = open(SAMPLE, O_RDONLY);
	Elf *elf;
	Elf_Scn *scn = NULL;
	uint32_t addr = 0;

	cr_assert(fd >= 0);
	elf_version(EV_CURRENT);
	elf = elf_begin(fd, ELF_C_READ, NULL);
	while (elf && (scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;
		Elf_Data *d;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_SYMTAB || !(d = elf_getdata(scn, NULL)))
			continue;
		for (size_t i = 0; i < sh.sh_size / sh.sh_entsize; i++) {
			GElf_Sym sym;

			if (gelf_getsym(d, (int)i, &sym) &&
			    !strcmp(elf_strptr(elf, sh.sh_link, sym.st_name), name))
				addr = (uint32_t)sym.st_value;
		}
	}
	elf_end(elf);
	close(fd);
	cr_assert(addr, "no symbol %s in %s", name, SAMPLE);
	return addr;
}

struct want {
	uint32_t off;		/* from f_rsp */
	int kind, cfa_off, rbp_off;
};

static void expect(const struct mt_cfi *c, uint32_t base, const struct want *w, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct mt_cfi_row *r = mt_cfi__find(c->rows, c->nrows, base + w[i].off);

		cr_assert(r, "no row at +%u", w[i].off);
		cr_expect_eq(r->kind, w[i].kind, "+%u: kind %d, want %d", w[i].off, r->kind,
			     w[i].kind);
		if (w[i].kind == MT_CFA_RSP || w[i].kind == MT_CFA_RBP) {
			cr_expect_eq(r->cfa_off, w[i].cfa_off, "+%u: cfa_off %u, want %d",
				     w[i].off, r->cfa_off, w[i].cfa_off);
			cr_expect_eq(r->rbp_off, w[i].rbp_off, "+%u: rbp_off %d, want %d",
				     w[i].off, r->rbp_off, w[i].rbp_off);
		}
	}
}

Test(cfi, sample_rows)
{
	struct mt_cfi c = load_file(SAMPLE);
	uint32_t a = sym_addr("f_rsp"), plt = c.rows[0].pc;
	static const struct want w[] = {
		/* f_rsp */
		{ 0, MT_CFA_RSP, 8, MT_RBP_SAME },
		{ 1, MT_CFA_RSP, 16, MT_RBP_SAME },
		{ 4, MT_CFA_RSP, 16, MT_RBP_SAME },
		{ 5, MT_CFA_RSP, 48, MT_RBP_SAME },
		{ 9, MT_CFA_RSP, 16, MT_RBP_SAME },
		{ 10, MT_CFA_RSP, 8, MT_RBP_SAME },
		{ 11, MT_CFA_NONE, 0, 0 },	/* past its end: padding */
		{ 63, MT_CFA_NONE, 0, 0 },
		/* f_rbp: rbp saved at CFA-16 */
		{ 64, MT_CFA_RSP, 8, MT_RBP_SAME },
		{ 65, MT_CFA_RSP, 16, -2 },
		{ 68, MT_CFA_RBP, 16, -2 },
		{ 69, MT_CFA_RBP, 16, -2 },
		{ 70, MT_CFA_RSP, 8, MT_RBP_SAME },
		{ 71, MT_CFA_NONE, 0, 0 },
		/* f_end: return address undefined */
		{ 128, MT_CFA_END, 0, 0 },
		{ 135, MT_CFA_END, 0, 0 },
		/* f_sig: a signal frame */
		{ 192, MT_CFA_SIGNAL, 0, 0 },
		/* f_big: a CFA offset over 64 KiB has no row kind */
		{ 256, MT_CFA_RSP, 8, MT_RBP_SAME },
		{ 263, MT_CFA_NONE, 0, 0 },
		{ 270, MT_CFA_RSP, 8, MT_RBP_SAME },
		{ 271, MT_CFA_NONE, 0, 0 },
	};

	cr_expect_str_eq(c.source, ".eh_frame");
	cr_expect_eq(c.nfdes, 6); /* and the .plt f_end's call goes through */
	/* binutils' .plt: push (CFA rsp+16), jmp (+24), then the entries' rule */
	cr_expect_eq(c.rows[0].kind, MT_CFA_RSP);
	cr_expect_eq(c.rows[0].cfa_off, 16);
	cr_expect_eq(c.rows[2].pc, plt + 16);
	cr_expect_eq(c.rows[2].kind, MT_CFA_PLT);
	cr_expect_eq(c.rows[2].cfa_off, 11);
	cr_expect_eq(c.unsupported, 1);
	expect(&c, a, w, sizeof(w) / sizeof(w[0]));
	cr_expect_null(mt_cfi__find(c.rows, c.nrows, plt - 1), "no row before the first function");
	/* sorted, and no row repeats the rule of the one before */
	for (size_t i = 1; i < c.nrows; i++) {
		cr_expect_gt(c.rows[i].pc, c.rows[i - 1].pc);
		cr_expect(c.rows[i].kind != c.rows[i - 1].kind ||
			  c.rows[i].cfa_off != c.rows[i - 1].cfa_off ||
			  c.rows[i].rbp_off != c.rows[i - 1].rbp_off, "row %zu repeats", i);
	}
	mt_cfi__clear(&c);
}

static bool same_rows(const struct mt_cfi *x, const struct mt_cfi *y)
{
	return x->nrows == y->nrows && !memcmp(x->rows, y->rows, x->nrows * sizeof(*x->rows));
}

/* Without .eh_frame_hdr's search table, the FDEs are found by walking
 * .eh_frame itself (static programs linked without it): same rows. */
Test(cfi, eh_frame_without_hdr)
{
	struct mt_cfi c = load_file(SAMPLE), d = load_file(MT_BUILDDIR "/tests/fixtures/cfi_sample_nohdr.so");

	cr_expect_str_eq(d.source, ".eh_frame");
	cr_expect_eq(d.nfdes, c.nfdes);
	cr_expect(same_rows(&c, &d));
	mt_cfi__clear(&c);
	mt_cfi__clear(&d);
}

/* The same functions with their CFI in .debug_frame only (no PLT row
 * there: the linker writes the .plt's CFI to .eh_frame). */
Test(cfi, debug_frame)
{
	struct mt_cfi c = load_file(SAMPLE), d = load_file(MT_BUILDDIR "/tests/fixtures/cfi_sample_debug.so");
	uint32_t a = sym_addr("f_rsp");

	cr_expect_str_eq(d.source, ".debug_frame");
	cr_expect_eq(d.nfdes, 5);
	for (uint32_t x = a; x < a + 320; x++) {
		const struct mt_cfi_row *r = mt_cfi__find(c.rows, c.nrows, x);
		const struct mt_cfi_row *q = mt_cfi__find(d.rows, d.nrows, x);

		cr_assert(r && q, "+%u", x - a);
		cr_assert(r->kind == q->kind && r->cfa_off == q->cfa_off && r->rbp_off == q->rbp_off,
			  "+%u: %d/%u/%d vs %d/%u/%d", x - a, r->kind, r->cfa_off, r->rbp_off, q->kind,
			  q->cfa_off, q->rbp_off);
	}
	mt_cfi__clear(&c);
	mt_cfi__clear(&d);
}

Test(cfi, not_elf)
{
	struct mt_cfi c;
	int fd = open(MT_SRCDIR "/tests/fixtures/cfi_sample.S", O_RDONLY);

	cr_assert(fd >= 0);
	cr_expect_eq(mt_cfi__build(fd, &c), -ENOEXEC);
	cr_expect_null(c.rows);
	close(fd);
}

/* What the BPF side does: page, then binary search in the page's rows. */
static const struct mt_cfi_row *paged_find(const struct mt_cfi_row *rows,
					   const struct mt_cfi_page *pages, uint32_t npages,
					   uint32_t first_page, uint32_t vaddr)
{
	uint32_t p = (vaddr >> MT_CFI_PAGE_SHIFT) - first_page, lo, cnt;

	if ((vaddr >> MT_CFI_PAGE_SHIFT) < first_page || p >= npages)
		return NULL;
	lo = pages[p].first_row;
	cnt = pages[p].nrows;
	for (int i = 0; i < 16 && cnt > 1; i++) {
		uint32_t half = cnt / 2;

		if (rows[lo + half].pc <= vaddr) {
			lo += half;
			cnt -= half;
		} else {
			cnt = half;
		}
	}
	return rows[lo].pc <= vaddr ? &rows[lo] : NULL;
}

Test(cfi, pages_match_binary_search)
{
	static const struct mt_cfi_row rows[] = {
		{ .pc = 0x1010, .kind = MT_CFA_RSP, .cfa_off = 8 },
		{ .pc = 0x1800, .kind = MT_CFA_RSP, .cfa_off = 16 },
		{ .pc = 0x2100, .kind = MT_CFA_RBP, .cfa_off = 16 },
		{ .pc = 0x2101, .kind = MT_CFA_RSP, .cfa_off = 24 },
		{ .pc = 0x2fff, .kind = MT_CFA_RSP, .cfa_off = 32 },
		{ .pc = 0x5000, .kind = MT_CFA_NONE },
	};
	size_t n = sizeof(rows) / sizeof(rows[0]);
	struct mt_cfi_page *pages;
	uint32_t npages, first;

	cr_assert_eq(mt_cfi__pages(rows, n, 0, &pages, &npages, &first), 0);
	cr_expect_eq(first, 1);
	cr_expect_eq(npages, 5);
	cr_expect_eq(pages[0].first_row, 0);
	cr_expect_eq(pages[0].nrows, 2);
	cr_expect_eq(pages[1].first_row, 1); /* 0x2000 is covered by the 0x1800 row */
	cr_expect_eq(pages[1].nrows, 4);
	cr_expect_eq(pages[2].first_row, 4);
	cr_expect_eq(pages[2].nrows, 1);
	cr_expect_eq(pages[4].first_row, 5);
	for (uint32_t a = 0xf00; a < 0x5100; a++)
		cr_assert_eq(paged_find(rows, pages, npages, first, a), mt_cfi__find(rows, n, a),
			     "at 0x%x", a);
	free(pages);
}

/* The same on a real library's table, every address. */
Test(cfi, pages_on_libc)
{
	struct mt_cfi c;
	struct mt_cfi_page *pages;
	uint32_t npages, first;
	int fd = open("/lib/x86_64-linux-gnu/libc.so.6", O_RDONLY);

	cr_assert(fd >= 0);
	cr_assert_eq(mt_cfi__build(fd, &c), 0);
	close(fd);
	cr_expect_gt(c.nfdes, 1000);
	cr_expect_lt(c.unsupported * 100, c.nrows, "most rows are rules the unwinder follows");
	cr_assert_eq(mt_cfi__pages(c.rows, c.nrows, 0, &pages, &npages, &first), 0);
	for (uint32_t a = c.rows[0].pc - 16; a < c.rows[c.nrows - 1].pc + 16; a++)
		cr_assert_eq(paged_find(c.rows, pages, npages, first, a),
			     mt_cfi__find(c.rows, c.nrows, a), "at 0x%x", a);
	free(pages);
	mt_cfi__clear(&c);
}

/*
 * Against libdw's own CFA interpreter, the reference: at every row start
 * and the byte before the next one, the rule libdw gives must classify as
 * our row does. Real libraries, built by real compilers.
 */
#include <dwarf.h>
#include <elfutils/libdw.h>

static bool libdw_saved_at(const Dwarf_Op *o, size_t n, int64_t *off)
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

/* libdw's frame at pc, classified as a row (kind -1: no frame) */
static struct mt_cfi_row libdw_row(Dwarf_CFI *cfi, uint64_t pc)
{
	struct mt_cfi_row r = { .pc = (uint32_t)pc, .kind = MT_CFA_NONE };
	Dwarf_Frame *f;
	Dwarf_Op mem[3], *ops;
	Dwarf_Addr s, e;
	size_t n;
	int64_t off;
	bool sig;

	if (dwarf_cfi_addrframe(cfi, pc, &f)) {
		r.kind = 0xff;
		return r;
	}
	dwarf_frame_info(f, &s, &e, &sig);
	if (sig) {
		r.kind = MT_CFA_SIGNAL;
		goto out;
	}
	dwarf_frame_register(f, 16, mem, &ops, &n);
	if (n == 0 && ops) {
		r.kind = MT_CFA_END;
		goto out;
	}
	if (!libdw_saved_at(ops, n, &off) || off != -8)
		goto out;
	dwarf_frame_register(f, 6, mem, &ops, &n);
	if (n == 0)
		r.rbp_off = ops ? MT_RBP_UNDEF : MT_RBP_SAME;
	else if (libdw_saved_at(ops, n, &off) && off % 8 == 0 && off < 0 && off / 8 > -128)
		r.rbp_off = (int8_t)(off / 8);
	else
		r.rbp_off = MT_RBP_UNDEF;
	dwarf_frame_cfa(f, &ops, &n);
	if (n == 1 && ops[0].atom == DW_OP_bregx && (ops[0].number == 7 || ops[0].number == 6) &&
	    (int64_t)ops[0].number2 >= 0 && ops[0].number2 <= UINT16_MAX) {
		r.kind = ops[0].number == 7 ? MT_CFA_RSP : MT_CFA_RBP;
		r.cfa_off = (uint16_t)ops[0].number2;
	} else if (n == 9 && ops[0].atom == DW_OP_breg7 && ops[4].atom >= DW_OP_lit0) {
		r.kind = MT_CFA_PLT;
		r.cfa_off = ops[4].atom - DW_OP_lit0;
		r.rbp_off = MT_RBP_SAME;
	}
out:
	free(f);
	return r;
}

static void against_libdw(const char *path)
{
	struct mt_cfi c = load_file(path);
	int fd = open(path, O_RDONLY);
	Elf *elf = elf_begin(fd, ELF_C_READ, NULL);
	Dwarf_CFI *cfi = dwarf_getcfi_elf(elf);
	size_t checked = 0;

	cr_assert(cfi, "%s: no CFI for libdw", path);
	for (size_t i = 0; i + 1 < c.nrows; i++) {
		uint64_t at[2] = { c.rows[i].pc, c.rows[i + 1].pc - 1 };

		for (int k = 0; k < 2; k++) {
			struct mt_cfi_row want = libdw_row(cfi, at[k]);

			if (want.kind == 0xff) /* between functions */
				want.kind = MT_CFA_NONE;
			if (c.rows[i].kind == MT_CFA_NONE && want.kind == MT_CFA_NONE)
				continue;
			cr_assert(want.kind == c.rows[i].kind &&
					  (want.kind == MT_CFA_END || want.kind == MT_CFA_SIGNAL ||
					   (want.cfa_off == c.rows[i].cfa_off &&
					    want.rbp_off == c.rows[i].rbp_off)),
				  "%s at 0x%lx: ours %d/%u/%d, libdw %d/%u/%d", path, (long)at[k],
				  c.rows[i].kind, c.rows[i].cfa_off, c.rows[i].rbp_off, want.kind,
				  want.cfa_off, want.rbp_off);
			checked++;
		}
	}
	cr_expect_gt(checked, 1000);
	dwarf_cfi_end(cfi);
	elf_end(elf);
	close(fd);
	mt_cfi__clear(&c);
}

Test(cfi, same_rules_as_libdw_libc)
{
	against_libdw("/lib/x86_64-linux-gnu/libc.so.6");
}

Test(cfi, same_rules_as_libdw_libstdcxx)
{
	against_libdw("/lib/x86_64-linux-gnu/libstdc++.so.6");
}

Test(cfi, same_rules_as_libdw_ld_so)
{
	against_libdw("/lib64/ld-linux-x86-64.so.2");
}

/* Found by fuzzing: libdw's interpreter allocated 1.6 GB and ran 14 s on
 * this file (one huge register number). Ours must refuse it at once. */
Test(cfi, fuzz_regression_libdw_oom, .timeout = 5)
{
	struct mt_cfi c;
	int fd = open(MT_SRCDIR "/tests/fuzz/regress/libdw-oom.elf", O_RDONLY);

	cr_assert(fd >= 0);
	mt_cfi__build(fd, &c); /* any result, quickly and within memory */
	for (size_t i = 1; i < c.nrows; i++)
		cr_assert_gt(c.rows[i].pc, c.rows[i - 1].pc);
	mt_cfi__clear(&c);
	close(fd);
}

/* The same FDE twice: the function keeps its rows. */
Test(cfi, duplicate_fde)
{
	struct mt_cfi c = load_file(MT_BUILDDIR "/tests/fixtures/cfi_dup.so");

	cr_expect_eq(c.nfdes, 1);
	cr_assert_geq(c.nrows, 2);
	cr_expect_eq(c.rows[0].kind, MT_CFA_RSP);
	cr_expect_eq(c.rows[0].cfa_off, 8);
	mt_cfi__clear(&c);
}

/* An FDE claiming 3.75 GiB is clipped to the executable segment: a few
 * pages, not a million. */
Test(cfi, huge_fde_clipped)
{
	struct mt_cfi c = load_file(MT_BUILDDIR "/tests/fixtures/cfi_huge.so");
	struct mt_cfi_page *pages;
	uint32_t npages, first;

	cr_assert_eq(mt_cfi__pages(c.rows, c.nrows, 0, &pages, &npages, &first), 0);
	cr_expect_leq(npages, 4);
	free(pages);
	mt_cfi__clear(&c);
}
