/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* A small streaming JSON writer: commas and escaping are its business. */
#ifndef MT_JSON_WRITER_H
#define MT_JSON_WRITER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct mt_json;

struct mt_json *mt_json__new(FILE *f, bool pretty);
void mt_json__free(struct mt_json *w);

void mt_json__begin_object(struct mt_json *w);
void mt_json__end_object(struct mt_json *w);
void mt_json__begin_array(struct mt_json *w);
void mt_json__end_array(struct mt_json *w);
void mt_json__key(struct mt_json *w, const char *key);
void mt_json__string(struct mt_json *w, const char *s); /* NULL -> null */
void mt_json__uint(struct mt_json *w, uint64_t v);
void mt_json__int(struct mt_json *w, int64_t v);
void mt_json__double(struct mt_json *w, double v);
void mt_json__bool(struct mt_json *w, bool v);
void mt_json__null(struct mt_json *w);

#endif
