/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Where to put a uprobe in a function so the kernel emulates the probed
 * instruction instead of single-stepping it (about 0.6 us against 6 us
 * per hit on a VM). Pure: decodes bytes it is given (capstone).
 *
 * From the entry, only instructions that are no branch, write no memory
 * and write nothing but flags and scratch registers (rax, r10, r11) are
 * skipped (endbr64, nop, test, cmp, mov/lea/xor into scratch), plus, for
 * a free-like function, a `test rdi,rdi; je T` whose target T is `ret`
 * (free(NULL) does nothing). The probe goes on the first instruction the
 * kernel emulates (push reg, jmp/jcc/call rel, nop). The arguments, rsp
 * and the return address at [rsp] are then as at entry: entry and return
 * probes stay exact. If no such site is found the entry is used.
 */
#ifndef MT_PROBESITE_H
#define MT_PROBESITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum mt_site_why {
	MT_SITE_ENTRY_EMULATED,	/* entry instruction is emulated already */
	MT_SITE_SKIPPED,	/* moved past instructions without effect on us */
	MT_SITE_NULL_CHECK,	/* moved past free's NULL check */
	MT_SITE_ENTRY_FALLBACK,	/* nothing better found: entry */
	MT_SITE_NOP5,		/* --preload's sites: a 5-byte nop, no trap */
};

struct mt_site {
	uint64_t delta;		/* bytes from the function's entry */
	enum mt_site_why why;
	char first_insn[64];	/* mnemonic and operands of the probed insn */
};

/*
 * code: the function's bytes from its entry (len bytes, more is better:
 * a NULL check's target is decoded too). free_like: the first argument
 * is a pointer whose NULL makes the function return at once.
 */
int mt_probesite__choose(const uint8_t *code, size_t len, bool free_like,
			 struct mt_site *out);
const char *mt_site_why__str(enum mt_site_why w);

/*
 * Linux 6.18 turns a hit nop5 site into a call to a trampoline page of
 * the process, which fork does not copy: a forked child's next hit of a
 * site its parent had hit calls into nothing (SIGSEGV). Is code, the 5
 * bytes at vaddr, such a call, its target in no mapping of maps? Its fix:
 * the form the kernel installs (int3, then the nop's other bytes).
 */
struct mt_maps;
bool mt_probesite__orphan_call(const uint8_t code[5], uint64_t vaddr,
			       const struct mt_maps *maps);
extern const uint8_t mt_probesite__nop5_armed[5];

#endif
