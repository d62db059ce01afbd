// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <inttypes.h>
#include <string.h>
#include "json_writer.h"
#include "render.h"
#include "strutil.h"

#define LOST(r, cnt) ((r)->lost[(cnt) - MT_CNT__EVENTS])

static double age_s(const struct mt_report *r, const struct mt_entry *e)
{
	if (!e->oldest_ts_ns || e->oldest_ts_ns > r->now_ns)
		return 0;
	return (r->now_ns - e->oldest_ts_ns) / 1e9;
}

static const char *leak_reason(const struct mt_entry *e)
{
	return e->exited ? "not_freed_at_exit" : "older_than_min_age";
}

static void json_frames(struct mt_json *w, const struct mt_entry *e)
{
	char addr[32];

	mt_json__key(w, "frames");
	mt_json__begin_array(w);
	for (size_t i = 0; i < e->nframes; i++) {
		const struct mt_frame *f = &e->frames[i];

		snprintf(addr, sizeof(addr), "0x%" PRIx64, f->addr);
		mt_json__begin_object(w);
		mt_json__key(w, "addr");
		mt_json__string(w, addr);
		mt_json__key(w, "symbol");
		mt_json__string(w, f->symbol);
		mt_json__key(w, "offset");
		mt_json__uint(w, f->offset);
		mt_json__key(w, "module");
		mt_json__string(w, f->module);
		mt_json__key(w, "file");
		mt_json__string(w, f->file);
		mt_json__key(w, "line");
		if (f->line > 0)
			mt_json__int(w, f->line);
		else
			mt_json__null(w);
		mt_json__key(w, "inlined");
		mt_json__bool(w, f->inlined);
		mt_json__end_object(w);
	}
	mt_json__end_array(w);
}

/* The fields a stack and a leak share; a leak counts its old blocks only. */
static void json_entry(struct mt_json *w, const struct mt_entry *e, bool leak)
{
	mt_json__key(w, "pid");
	mt_json__int(w, e->pid);
	mt_json__key(w, "start");
	mt_json__uint(w, e->gen);
	mt_json__key(w, "comm");
	mt_json__string(w, e->proc ? e->proc->comm : NULL);
	mt_json__key(w, "kind");
	mt_json__string(w, e->kind ? e->kind : "user");
	mt_json__key(w, "outstanding_bytes");
	mt_json__uint(w, leak ? e->leak_bytes : e->st.outstanding_bytes);
	mt_json__key(w, "outstanding_count");
	mt_json__uint(w, leak ? e->leak_count : e->st.outstanding_count);
	mt_json__key(w, "alloc_bytes");
	mt_json__uint(w, e->st.alloc_bytes);
	mt_json__key(w, "alloc_count");
	mt_json__uint(w, e->st.alloc_count);
	mt_json__key(w, "free_count");
	mt_json__uint(w, e->st.free_count);
	mt_json__key(w, "stack_id");
	{
		char id[24];

		snprintf(id, sizeof(id), "%016" PRIx64, e->stack_id);
		mt_json__string(w, id);
	}
	mt_json__key(w, "truncated");
	mt_json__bool(w, e->truncated);
	json_frames(w, e);
}

static void json_totals(struct mt_json *w, const struct mt_totals *t)
{
	mt_json__key(w, "totals");
	mt_json__begin_object(w);
	mt_json__key(w, "alloc_count");
	mt_json__uint(w, t->alloc_count);
	mt_json__key(w, "alloc_bytes");
	mt_json__uint(w, t->alloc_bytes);
	mt_json__key(w, "free_count");
	mt_json__uint(w, t->free_count);
	mt_json__key(w, "free_bytes");
	mt_json__uint(w, t->free_bytes);
	mt_json__key(w, "outstanding_count");
	mt_json__uint(w, t->outstanding_count);
	mt_json__key(w, "outstanding_bytes");
	mt_json__uint(w, t->outstanding_bytes);
	mt_json__key(w, "peak_outstanding_bytes");
	mt_json__uint(w, t->peak_outstanding_bytes);
	mt_json__key(w, "failed_count");
	mt_json__uint(w, t->alloc_failed);
	mt_json__key(w, "nested_count");
	mt_json__uint(w, t->nested);
	mt_json__key(w, "size_filtered_count");
	mt_json__uint(w, t->size_filtered);
	mt_json__key(w, "kernel_self_skipped");
	mt_json__uint(w, t->kernel_recursion);
	mt_json__end_object(w);
}

static void json_procs(struct mt_json *w, const struct mt_report *r)
{
	mt_json__key(w, "processes");
	mt_json__begin_array(w);
	for (size_t i = 0; i < r->nprocs; i++) {
		mt_json__begin_object(w);
		mt_json__key(w, "pid");
		mt_json__int(w, r->procs[i].pid);
		mt_json__key(w, "start");
		mt_json__uint(w, r->procs[i].gen);
		mt_json__key(w, "comm");
		mt_json__string(w, r->procs[i].comm);
		mt_json__key(w, "exe");
		mt_json__string(w, r->procs[i].exe[0] ? r->procs[i].exe : NULL);
		mt_json__key(w, "cgroup");
		mt_json__string(w, r->procs[i].cgroup[0] ? r->procs[i].cgroup : NULL);
		mt_json__key(w, "exited");
		mt_json__bool(w, r->procs[i].exited);
		mt_json__end_object(w);
	}
	mt_json__end_array(w);
}

void mt_render__json(const struct mt_report *r, const struct mt_render_opts *o, FILE *f)
{
	struct mt_json *w = mt_json__new(f, o->pretty);

	if (!w)
		return;
	mt_json__begin_object(w);
	mt_json__key(w, "version");
	mt_json__int(w, r->version);
	mt_json__key(w, "final");
	mt_json__bool(w, r->final);
	mt_json__key(w, "duration_s");
	mt_json__double(w, r->duration_s);
	mt_json__key(w, "sample_bytes");
	mt_json__uint(w, r->sample_bytes);
	mt_json__key(w, "self");
	mt_json__begin_object(w);
	mt_json__key(w, "cpu_s");
	mt_json__double(w, r->self.cpu_s);
	mt_json__key(w, "max_rss_kib");
	mt_json__uint(w, r->self.max_rss_kib);
	if (r->self.bpf_measured) {
		mt_json__key(w, "bpf_runs");
		mt_json__uint(w, r->self.bpf_runs);
		mt_json__key(w, "bpf_run_ns");
		mt_json__uint(w, r->self.bpf_ns);
	}
	mt_json__end_object(w);
	json_procs(w, r);
	json_totals(w, &r->totals);
	mt_json__key(w, "lost");
	mt_json__begin_object(w);
	for (int i = 0; i < MT_CNT__COUNT - MT_CNT__EVENTS; i++) {
		mt_json__key(w, mt_lost_names[i]);
		mt_json__uint(w, r->lost[i]);
	}
	mt_json__key(w, "total");
	mt_json__uint(w, r->lost_total);
	mt_json__end_object(w);
	mt_json__key(w, "stacks");
	mt_json__begin_array(w);
	for (size_t i = 0; i < r->ntop; i++) {
		mt_json__begin_object(w);
		json_entry(w, &r->entries[r->top[i]], false);
		mt_json__end_object(w);
	}
	mt_json__end_array(w);
	mt_json__key(w, "leaks");
	mt_json__begin_array(w);
	for (size_t i = 0; i < r->nleaks; i++) {
		const struct mt_entry *e = &r->entries[r->leaks[i]];

		mt_json__begin_object(w);
		json_entry(w, e, true);
		mt_json__key(w, "oldest_age_s");
		mt_json__double(w, age_s(r, e));
		mt_json__key(w, "reason");
		mt_json__string(w, leak_reason(e));
		mt_json__end_object(w);
	}
	mt_json__end_array(w);
	mt_json__end_object(w);
	fputc('\n', f);
	mt_json__free(w);
}

static void text_frames(const struct mt_entry *e, FILE *f)
{
	if (!e->nframes)
		fprintf(f, "        [stack unavailable]\n");
	for (size_t i = 0; i < e->nframes; i++) {
		const struct mt_frame *fr = &e->frames[i];

		fprintf(f, "        #%-2zu 0x%012" PRIx64 " ", i, fr->addr);
		if (fr->symbol && fr->inlined)
			fprintf(f, "%s", fr->symbol);
		else if (fr->symbol)
			fprintf(f, "%s+0x%" PRIx64, fr->symbol, fr->offset);
		else
			fprintf(f, "[unknown]");
		if (fr->inlined)
			fprintf(f, " (inlined)");
		if (fr->file)
			fprintf(f, " at %s:%d", fr->file, fr->line);
		if (fr->module)
			fprintf(f, " in %s", fr->module);
		fputc('\n', f);
	}
	if (e->nframes && e->truncated)
		fprintf(f, "        ... (truncated: the stack could not be walked further)\n");
}

static const char *plural(uint64_t n)
{
	return n == 1 ? "" : "s";
}

static const char *comm_of(const struct mt_entry *e)
{
	return e->proc ? e->proc->comm : "?";
}

static void text_header(const struct mt_report *r, FILE *f)
{
	char a[32], b[32], c[32];
	const struct mt_totals *t = &r->totals;

	fprintf(f, "memtrace %s report after %.1f s\n", r->final ? "final" : "interval",
		r->duration_s);
	if (r->sample_bytes)
		fprintf(f, "  sampled: one allocation per %llu bytes on average; bytes and "
			"counts are estimates\n", (unsigned long long)r->sample_bytes);
	for (size_t i = 0; i < r->nprocs; i++)
		fprintf(f, "  process %d %s (%s)%s\n", r->procs[i].pid, r->procs[i].comm,
			r->procs[i].exe[0] ? r->procs[i].exe : "?",
			r->procs[i].exited ? " exited" : "");
	fprintf(f, "  allocated %s in %" PRIu64 " call%s; freed %s in %" PRIu64 " call%s\n",
		mt_fmt_bytes(t->alloc_bytes, a, sizeof(a)), t->alloc_count, plural(t->alloc_count),
		mt_fmt_bytes(t->free_bytes, b, sizeof(b)), t->free_count, plural(t->free_count));
	fprintf(f, "  outstanding %s in %" PRIu64 " block%s (peak %s)\n",
		mt_fmt_bytes(t->outstanding_bytes, a, sizeof(a)), t->outstanding_count,
		plural(t->outstanding_count), mt_fmt_bytes(t->peak_outstanding_bytes, c, sizeof(c)));
	fprintf(f, "  memtrace itself: %.2f s CPU, %llu KiB peak RSS\n", r->self.cpu_s,
		(unsigned long long)r->self.max_rss_kib);
	if (r->self.bpf_measured)
		fprintf(f, "  BPF programs on the allocator probes (run by the traced threads): %" PRIu64
			   " run%s, %.3f s, %.0f ns a run\n",
			r->self.bpf_runs, plural(r->self.bpf_runs), r->self.bpf_ns / 1e9,
			r->self.bpf_runs ? (double)r->self.bpf_ns / r->self.bpf_runs : 0.0);
	if (t->alloc_failed)
		fprintf(f, "  failed allocations (NULL, not recorded): %" PRIu64 "\n",
			t->alloc_failed);
	fprintf(f, "  lost: %" PRIu64, r->lost_total);
	for (int i = 0; i < MT_CNT__COUNT - MT_CNT__EVENTS; i++)
		if (r->lost[i])
			fprintf(f, "  %s=%" PRIu64, mt_lost_names[i], r->lost[i]);
	fputc('\n', f);
	/* the losses a larger map avoids: say which option */
	if (LOST(r, MT_CNT_LOST_ALLOCS_FULL))
		fprintf(f, "  (allocs_map_full: more live blocks than --max-allocs; raise it)\n");
	if (LOST(r, MT_CNT_LOST_STATS_FULL) || LOST(r, MT_CNT_LOST_STACKS_FULL))
		fprintf(f, "  (%s: more stacks than --max-stacks; raise it)\n",
			LOST(r, MT_CNT_LOST_STATS_FULL) ? "stats_map_full" : "stack_map_full");
}

void mt_render__text(const struct mt_report *r, const struct mt_render_opts *o, FILE *f)
{
	char a[32], b[32];

	text_header(r, f);
	fprintf(f, "\nTop %zu stacks by outstanding bytes:\n", r->ntop);
	if (!r->ntop)
		fprintf(f, "  (no allocations seen)\n");
	for (size_t i = 0; i < r->ntop; i++) {
		const struct mt_entry *e = &r->entries[r->top[i]];

		fprintf(f, "  [%zu] %s%s%s outstanding in %" PRIu64 " block%s; %s allocated in %"
			PRIu64 " call%s; pid %d (%s)\n", i + 1,
			e->kind && strcmp(e->kind, "user") ? e->kind : "",
			e->kind && strcmp(e->kind, "user") ? ": " : "",
			mt_fmt_bytes(e->st.outstanding_bytes, a, sizeof(a)),
			(uint64_t)e->st.outstanding_count, plural(e->st.outstanding_count),
			mt_fmt_bytes(e->st.alloc_bytes, b, sizeof(b)),
			(uint64_t)e->st.alloc_count, plural(e->st.alloc_count), e->pid, comm_of(e));
		text_frames(e, f);
	}
	fprintf(f, "\nLeak candidates (outstanding for at least %.1f s, or never freed by an "
		"exited process): %zu\n", o->min_age_s, r->nleaks);
	for (size_t i = 0; i < r->nleaks; i++) {
		const struct mt_entry *e = &r->entries[r->leaks[i]];

		fprintf(f, "  [%zu] %s in %" PRIu64 " block%s, oldest %.1f s, %s; pid %d (%s)\n",
			i + 1, mt_fmt_bytes(e->leak_bytes, a, sizeof(a)), e->leak_count,
			plural(e->leak_count),
			age_s(r, e), e->exited ? "never freed before exit" : "still live",
			e->pid, comm_of(e));
		text_frames(e, f);
	}
	fflush(f);
}
