// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <criterion/criterion.h>
#include "helpers.h"
#include "ksyms.h"

Test(ksyms, parse_and_find)
{
	char *text = slurp(FIXTURE("kallsyms.txt"));
	struct mt_ksyms *k = mt_ksyms__parse(text);
	const struct mt_ksym *s;

	cr_assert_not_null(k);
	cr_assert_eq(mt_ksyms__count(k), 6); /* data symbol and garbage skipped */
	s = mt_ksyms__find(k, 0xffffffff81003123ULL);
	cr_assert_str_eq(s->name, "alloc_pipe_info");
	cr_assert_eq(0xffffffff81003123ULL - s->addr, 0x123);
	cr_assert_str_eq(s->module, "[kernel]");
	/* the data symbol is not a function: still inside do_one_initcall */
	cr_assert_str_eq(mt_ksyms__find(k, 0xffffffff81002010ULL)->name, "do_one_initcall");
	s = mt_ksyms__find(k, 0xffffffffc0001010ULL);
	cr_assert_str_eq(s->name, "nf_hook_thing");
	cr_assert_str_eq(s->module, "[nf_tables]");
	cr_assert_str_eq(mt_ksyms__find(k, 0xffffffff81003800ULL)->name, "weak_fn");
	cr_assert_null(mt_ksyms__find(k, 0x1000));
	cr_assert_eq(mt_ksyms__addr(k, "create_pipe_files"), 0xffffffff81003400ULL);
	cr_assert_eq(mt_ksyms__addr(k, "nope"), 0);
	mt_ksyms__free(k);
	free(text);
}

Test(ksyms, allocator_frames)
{
	cr_assert(mt_ksym__is_allocator("__kmalloc_cache_noprof"));
	cr_assert(mt_ksym__is_allocator("kmem_cache_alloc_noprof"));
	cr_assert(mt_ksym__is_allocator("bpf_trace_run6"));
	cr_assert(mt_ksym__is_allocator("__alloc_pages_noprof"));
	cr_assert(mt_ksym__is_allocator("pcpu_alloc_noprof"));
	cr_assert(!mt_ksym__is_allocator("alloc_pipe_info"));
	cr_assert(!mt_ksym__is_allocator("do_pipe2"));
	/* a page that grows a slab is shown as the slab's */
	cr_assert(!mt_ksym__is_allocator("allocate_slab"));
}
