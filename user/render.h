/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Rendering a report as text or JSON (docs/json-format.md). Pure. */
#ifndef MT_RENDER_H
#define MT_RENDER_H

#include <stdio.h>
#include "report.h"

struct mt_render_opts {
	double min_age_s;	/* for the text headings */
	bool pretty;		/* JSON: indented (default: one line) */
};

void mt_render__json(const struct mt_report *r, const struct mt_render_opts *o, FILE *f);
void mt_render__text(const struct mt_report *r, const struct mt_render_opts *o, FILE *f);

#endif
