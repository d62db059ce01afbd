// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The bundled demo for `make demo`: a tiny "server" with one real leak,
 * a growing buffer it keeps, and short-lived allocations it frees.
 * Expected report: cache_session leaks 100 x 256 B = 25,600 B;
 * append_log holds 1 block of 8,192 B; handle_request frees all it takes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOINLINE __attribute__((noinline))

struct session { char user[200]; struct session *next; };

static void *volatile sink;
static char *log_buf;
static size_t log_cap;

NOINLINE static void cache_session(int id)
{
	struct session *s = malloc(256);	/* never freed: the leak */

	snprintf(s->user, sizeof(s->user), "user-%d", id);
	sink = s;
}

NOINLINE static void append_log(size_t need)
{
	if (need > log_cap) {
		log_cap = log_cap ? log_cap * 2 : 1024;
		log_buf = realloc(log_buf, log_cap);	/* kept until exit */
	}
}

NOINLINE static void handle_request(int id)
{
	char *body = calloc(1, 4096);			/* freed below */

	snprintf(body, 4096, "request %d", id);
	sink = body;
	free(body);
}

int main(void)
{
	for (int i = 0; i < 100; i++) {
		handle_request(i);
		cache_session(i);
		append_log((size_t)(i + 1) * 80);
	}
	printf("demo: handled 100 requests\n");
	return 0;
}
