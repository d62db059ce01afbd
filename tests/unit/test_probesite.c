// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* Probe placement on hand-assembled x86-64 code. */
#include <criterion/criterion.h>
#include <string.h>
#include "probesite.h"
#include "procmaps.h"

#define TEST_RDI 0x48, 0x85, 0xff		/* test rdi, rdi */
#define JE_PLUS7 0x0f, 0x84, 0x07, 0, 0, 0	/* je .+6+7 */
#define ENDBR64 0xf3, 0x0f, 0x1e, 0xfa
#define PUSH_RBP 0x55
#define PUSH_RBX 0x53
#define NOP 0x90
#define RET 0xc3

static struct mt_site site(const uint8_t *c, size_t n, bool free_like)
{
	struct mt_site s;

	cr_assert_eq(mt_probesite__choose(c, n, free_like, &s), 0);
	return s;
}

/* glibc's free: test rdi,rdi; je <ret>; push rbp */
Test(probesite, free_past_null_check)
{
	const uint8_t c[] = { TEST_RDI, JE_PLUS7, PUSH_RBP, NOP, NOP, NOP, NOP, NOP, NOP, RET };
	struct mt_site s = site(c, sizeof(c), true);

	cr_assert_eq(s.delta, 9);
	cr_assert_eq(s.why, MT_SITE_NULL_CHECK);
	cr_assert_str_eq(s.first_insn, "push rbp");
}

Test(probesite, null_check_only_for_free)
{
	const uint8_t c[] = { TEST_RDI, JE_PLUS7, PUSH_RBP, NOP, NOP, NOP, NOP, NOP, NOP, RET };
	struct mt_site s = site(c, sizeof(c), false);

	/* not free-like: the branch is not skipped, it is probed itself */
	cr_assert_eq(s.delta, 3);
	cr_assert_eq(s.why, MT_SITE_SKIPPED);
}

Test(probesite, null_check_must_return)
{
	/* the je goes somewhere that does work, not to a ret */
	const uint8_t c[] = { TEST_RDI, JE_PLUS7, PUSH_RBP, NOP, NOP, NOP, NOP, NOP, NOP, PUSH_RBX };
	struct mt_site s = site(c, sizeof(c), true);

	cr_assert_eq(s.delta, 3);
	cr_assert_eq(s.why, MT_SITE_SKIPPED);
}

Test(probesite, null_check_target_outside_code)
{
	const uint8_t c[] = { TEST_RDI, JE_PLUS7, PUSH_RBP };
	struct mt_site s = site(c, sizeof(c), true);

	cr_assert_eq(s.delta, 3); /* cannot see the target: no skipping it */
}

Test(probesite, emulated_entry_stays)
{
	const uint8_t c[] = { PUSH_RBP, TEST_RDI };
	struct mt_site s = site(c, sizeof(c), false);

	cr_assert_eq(s.delta, 0);
	cr_assert_eq(s.why, MT_SITE_ENTRY_EMULATED);
}

/* libstdc++'s operator new: endbr64; test rdi,rdi; mov eax,1; push rbx */
Test(probesite, past_endbr_and_scratch_writes)
{
	const uint8_t c[] = { ENDBR64, TEST_RDI, 0xb8, 1, 0, 0, 0, PUSH_RBX };
	struct mt_site s = site(c, sizeof(c), false);

	cr_assert_eq(s.delta, 12);
	cr_assert_str_eq(s.first_insn, "push rbx");
}

Test(probesite, argument_write_is_not_skipped)
{
	/* mov rdi, rax: the argument would differ at the probe */
	const uint8_t c[] = { 0x48, 0x89, 0xc7, PUSH_RBX };
	struct mt_site s = site(c, sizeof(c), false);

	cr_assert_eq(s.delta, 0);
	cr_assert_eq(s.why, MT_SITE_ENTRY_FALLBACK);
}

Test(probesite, stack_pointer_write_is_not_skipped)
{
	/* endbr64; sub rsp, 8: [rsp] would no longer be the return address */
	const uint8_t c[] = { ENDBR64, 0x48, 0x83, 0xec, 0x08, PUSH_RBX };
	struct mt_site s = site(c, sizeof(c), false);

	cr_assert_eq(s.delta, 0);
	cr_assert_eq(s.why, MT_SITE_ENTRY_FALLBACK);
}

Test(probesite, memory_write_is_not_skipped)
{
	/* mov [rip+0], eax writes memory */
	const uint8_t c[] = { 0x89, 0x05, 0, 0, 0, 0, PUSH_RBX };
	struct mt_site s = site(c, sizeof(c), false);

	cr_assert_eq(s.delta, 0);
}

Test(probesite, garbage_and_empty)
{
	const uint8_t c[] = { 0x0f, 0x0b }; /* ud2 */
	struct mt_site s = site(c, sizeof(c), true);

	cr_assert_eq(s.delta, 0);
	cr_assert_eq(s.why, MT_SITE_ENTRY_FALLBACK);
	s = site(c, 0, true);
	cr_assert_eq(s.delta, 0);
}

/* A forked child's copy of a site its parent hit: a call whose target
 * (the parent's trampoline page) the child does not map. */
Test(probesite, orphan_call_only_into_nothing)
{
	const char *text = "7f0000000000-7f0000001000 r-xp 00000000 fe:01 42 /lib/libx.so\n"
			   "7f0000400000-7f0000401000 --xp 00000000 00:00 0 [uprobes]\n";
	struct mt_maps m = {};
	uint64_t site = 0x7f0000000100;
	/* call rel32 to site + 5 + rel */
	uint8_t to_tramp[5] = { 0xe8 }, to_lib[5] = { 0xe8 }, to_hole[5] = { 0xe8 };
	uint8_t nop5[5] = { 0x0f, 0x1f, 0x44, 0x00, 0x00 };
	int32_t rel;

	cr_assert_eq(mt_procmaps__parse(text, &m), 0);
	rel = (int32_t)(0x7f0000400000 - (site + 5));
	memcpy(to_tramp + 1, &rel, 4);
	rel = 0x200;
	memcpy(to_lib + 1, &rel, 4);
	rel = (int32_t)(0x7f0000800000 - (site + 5));
	memcpy(to_hole + 1, &rel, 4);
	cr_assert_not(mt_probesite__orphan_call(to_tramp, site, &m), "the trampoline is there");
	cr_assert_not(mt_probesite__orphan_call(to_lib, site, &m));
	cr_assert(mt_probesite__orphan_call(to_hole, site, &m));
	cr_assert_not(mt_probesite__orphan_call(nop5, site, &m));
	cr_assert_not(mt_probesite__orphan_call(mt_probesite__nop5_armed, site, &m));
	/* the parent's page is gone from the child */
	mt_procmaps__clear(&m);
	cr_assert_eq(mt_procmaps__parse("7f0000000000-7f0000001000 r-xp 00000000 fe:01 42 "
					"/lib/libx.so\n", &m), 0);
	cr_assert(mt_probesite__orphan_call(to_tramp, site, &m));
	mt_procmaps__clear(&m);
}
