// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <criterion/criterion.h>
#include <stdlib.h>
#include "demangle.h"

static void check(const char *in, const char *want)
{
	char *got = mt_demangle(in);

	cr_assert_str_eq(got, want, "%s", in);
	free(got);
}

Test(demangle, cxx)
{
	check("_ZN3app5Cache4fillEi", "app::Cache::fill(int)");
	check("_Z11make_bufferIiEPT_m", "int* make_buffer<int>(unsigned long)");
	check("_Znwm", "operator new(unsigned long)");
}

Test(demangle, rust_legacy_hash_dropped)
{
	check("_ZN4core3fmt5write17h0123456789abcdefE", "core::fmt::write");
}

Test(demangle, rust_v0)
{
	check("_RNvCs1234_7mycrate3foo", "mycrate::foo");
}

Test(demangle, plain_names_kept)
{
	check("main", "main");
	check("__libc_start_call_main", "__libc_start_call_main");
	cr_assert_null(mt_demangle(NULL));
}
