// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <math.h>
#include <stdlib.h>
#include "json_writer.h"

#define MT_JSON_MAX_NEST 32

struct mt_json {
	FILE *f;
	bool pretty;
	int depth;
	bool first[MT_JSON_MAX_NEST]; /* no element yet at this level */
	bool after_key;
};

struct mt_json *mt_json__new(FILE *f, bool pretty)
{
	struct mt_json *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->f = f;
	w->pretty = pretty;
	w->first[0] = true;
	return w;
}

void mt_json__free(struct mt_json *w)
{
	free(w);
}

static void indent(struct mt_json *w)
{
	if (!w->pretty)
		return;
	fputc('\n', w->f);
	for (int i = 0; i < w->depth; i++)
		fputs("  ", w->f);
}

/* Separator before a value or key at the current level. */
static void sep(struct mt_json *w)
{
	if (w->after_key) {
		w->after_key = false;
		return;
	}
	if (!w->first[w->depth])
		fputc(',', w->f);
	w->first[w->depth] = false;
	if (w->depth)
		indent(w);
}

static void open(struct mt_json *w, char c)
{
	sep(w);
	fputc(c, w->f);
	if (w->depth < MT_JSON_MAX_NEST - 1)
		w->depth++;
	w->first[w->depth] = true;
}

static void close_(struct mt_json *w, char c)
{
	bool empty = w->first[w->depth];

	if (w->depth)
		w->depth--;
	if (!empty)
		indent(w);
	fputc(c, w->f);
}

void mt_json__begin_object(struct mt_json *w) { open(w, '{'); }
void mt_json__end_object(struct mt_json *w) { close_(w, '}'); }
void mt_json__begin_array(struct mt_json *w) { open(w, '['); }
void mt_json__end_array(struct mt_json *w) { close_(w, ']'); }

static void put_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"': fputs("\\\"", f); break;
		case '\\': fputs("\\\\", f); break;
		case '\n': fputs("\\n", f); break;
		case '\r': fputs("\\r", f); break;
		case '\t': fputs("\\t", f); break;
		default:
			if (*p < 0x20)
				fprintf(f, "\\u%04x", *p);
			else
				fputc(*p, f);
		}
	}
	fputc('"', f);
}

void mt_json__key(struct mt_json *w, const char *key)
{
	sep(w);
	put_string(w->f, key);
	fputs(w->pretty ? ": " : ":", w->f);
	w->after_key = true;
}

void mt_json__string(struct mt_json *w, const char *s)
{
	sep(w);
	if (s)
		put_string(w->f, s);
	else
		fputs("null", w->f);
}

void mt_json__uint(struct mt_json *w, uint64_t v)
{
	sep(w);
	fprintf(w->f, "%llu", (unsigned long long)v);
}

void mt_json__int(struct mt_json *w, int64_t v)
{
	sep(w);
	fprintf(w->f, "%lld", (long long)v);
}

void mt_json__double(struct mt_json *w, double v)
{
	sep(w);
	if (isfinite(v))
		fprintf(w->f, "%.3f", v);
	else
		fputs("null", w->f);
}

void mt_json__bool(struct mt_json *w, bool v)
{
	sep(w);
	fputs(v ? "true" : "false", w->f);
}

void mt_json__null(struct mt_json *w)
{
	sep(w);
	fputs("null", w->f);
}
