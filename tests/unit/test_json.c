// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <criterion/criterion.h>
#include <stdlib.h>
#include "json_writer.h"

static char *write_doc(bool pretty)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct mt_json *w = mt_json__new(f, pretty);

	mt_json__begin_object(w);
	mt_json__key(w, "s");
	mt_json__string(w, "a\"b\\c\n\x01");
	mt_json__key(w, "n");
	mt_json__null(w);
	mt_json__key(w, "arr");
	mt_json__begin_array(w);
	mt_json__uint(w, 18446744073709551615ULL);
	mt_json__int(w, -3);
	mt_json__double(w, 1.5);
	mt_json__bool(w, false);
	mt_json__string(w, NULL);
	mt_json__end_array(w);
	mt_json__key(w, "empty");
	mt_json__begin_object(w);
	mt_json__end_object(w);
	mt_json__end_object(w);
	mt_json__free(w);
	fclose(f);
	return buf;
}

Test(json, compact_escaped)
{
	char *s = write_doc(false);

	cr_assert_str_eq(s, "{\"s\":\"a\\\"b\\\\c\\n\\u0001\",\"n\":null,"
			    "\"arr\":[18446744073709551615,-3,1.500,false,null],\"empty\":{}}");
	free(s);
}

Test(json, pretty)
{
	char *s = write_doc(true);

	cr_assert_str_eq(s, "{\n  \"s\": \"a\\\"b\\\\c\\n\\u0001\",\n  \"n\": null,\n"
			    "  \"arr\": [\n    18446744073709551615,\n    -3,\n    1.500,\n"
			    "    false,\n    null\n  ],\n  \"empty\": {}\n}");
	free(s);
}
