// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "pairmap.h"
#include "report.h"

const char *const mt_lost_names[MT_CNT__COUNT - MT_CNT__EVENTS] = {
	[MT_CNT_LOST_ALLOCS_FULL - MT_CNT__EVENTS] = "allocs_map_full",
	[MT_CNT_LOST_STATS_FULL - MT_CNT__EVENTS] = "stats_map_full",
	[MT_CNT_LOST_STACKS_FULL - MT_CNT__EVENTS] = "stack_map_full",
	[MT_CNT_LOST_STACK_FAILED - MT_CNT__EVENTS] = "stack_unavailable",
	[MT_CNT_LOST_THREADS_FULL - MT_CNT__EVENTS] = "thread_map_full",
	[MT_CNT_LOST_FREE_UNTRACKED - MT_CNT__EVENTS] = "free_untracked",
	[MT_CNT_LOST_STALE - MT_CNT__EVENTS] = "free_missed",
	[MT_CNT_LOST_TRUNCATED - MT_CNT__EVENTS] = "stack_truncated",
	[MT_CNT_LOST_STACK_COLLISION - MT_CNT__EVENTS] = "stack_collision",
	[MT_CNT_LOST_UNWIND_REQUEST - MT_CNT__EVENTS] = "unwind_request_dropped",
	[MT_CNT_LOST_PROC_EVENT - MT_CNT__EVENTS] = "exec_event_dropped",
	[MT_CNT_LOST_PROCESS_LIMIT - MT_CNT__EVENTS] = "process_limit",
	[MT_CNT_LOST_BATCH_UNREAD - MT_CNT__EVENTS] = "batch_unreadable",
};

const char *mt_stack_kind(uint64_t stack_id)
{
	if (stack_id & MT_STACK_KERNEL)
		return "kernel";
	if (stack_id & MT_STACK_MMAP)
		return "mmap";
	if (stack_id & MT_STACK_BRK)
		return "brk";
	return "user";
}

static uint64_t proc_key(uint32_t tgid, uint32_t gen)
{
	return (uint64_t)gen << 32 | tgid;
}

int mt_snapshot__add_stats(struct mt_snapshot *s, const struct mt_stat_entry *more, size_t n)
{
	struct mt_pairmap *idx;
	struct mt_stat_entry *all;
	size_t len = s->nstats;
	int err = 0;

	if (!n)
		return 0;
	idx = mt_pairmap__new(s->nstats + n);
	all = realloc(s->stats, (s->nstats + n) * sizeof(*all));
	if (!idx || !all) {
		mt_pairmap__free(idx);
		if (all)
			s->stats = all;
		return -ENOMEM;
	}
	s->stats = all;
	for (size_t i = 0; !err && i < len; i++)
		err = mt_pairmap__put(idx, proc_key(all[i].k.tgid, all[i].k.gen), all[i].k.stack_id,
				      (long)i);
	for (size_t i = 0; !err && i < n; i++) {
		const struct mt_stat_entry *m = &more[i];
		long j = mt_pairmap__get(idx, proc_key(m->k.tgid, m->k.gen), m->k.stack_id);

		if (j >= 0) {
			all[j].v.alloc_bytes += m->v.alloc_bytes;
			all[j].v.alloc_count += m->v.alloc_count;
			continue;
		}
		all[len] = *m;
		err = mt_pairmap__put(idx, proc_key(m->k.tgid, m->k.gen), m->k.stack_id, (long)len);
		len++;
	}
	s->nstats = len;
	mt_pairmap__free(idx);
	return err;
}

int mt_snapshot__add_allocs(struct mt_snapshot *s, const struct mt_alloc_entry *more, size_t n)
{
	struct mt_alloc_entry *all;

	if (!n)
		return 0;
	all = realloc(s->allocs, (s->nallocs + n) * sizeof(*all));
	if (!all)
		return -ENOMEM;
	memcpy(all + s->nallocs, more, n * sizeof(*all));
	s->allocs = all;
	s->nallocs += n;
	return 0;
}

int mt_snapshot__add_slots(struct mt_snapshot *s, const struct mt_slot *slots, size_t n)
{
	size_t cap = s->nallocs;

	for (size_t i = 0; i < n; i++) {
		const struct mt_slot *sl = &slots[i];
		__u64 addr = __atomic_load_n(&sl->addr, __ATOMIC_ACQUIRE);
		struct mt_alloc_entry e;

		if (addr <= MT_SLOT_BUSY)
			continue;
		e.k = (struct mt_alloc_key){ .tgid = sl->tgid, .gen = sl->gen, .addr = addr };
		e.v = sl->a;
		/* the block is the one addr named only if addr stayed (the
		 * fence keeps the copy before the second read) */
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (__atomic_load_n(&sl->addr, __ATOMIC_RELAXED) != addr)
			continue;
		if (s->nallocs == cap) {
			size_t ncap = cap < 64 ? 64 : 2 * cap;
			struct mt_alloc_entry *all = realloc(s->allocs, ncap * sizeof(*all));

			if (!all)
				return -ENOMEM;
			s->allocs = all;
			cap = ncap;
		}
		s->allocs[s->nallocs++] = e;
	}
	return 0;
}

static uint64_t block_key_hash(const struct mt_alloc_key *k)
{
	uint64_t h = k->addr ^ ((uint64_t)k->tgid << 32 | k->gen);

	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	return h ^ (h >> 33);
}

int mt_snapshot__add_unique(struct mt_snapshot *s, const struct mt_alloc_entry *more, size_t n)
{
	size_t have = s->nallocs, cap = 16, kept = 0;
	struct mt_alloc_entry *all;
	uint32_t *idx = NULL;	/* open addressing: index + 1 of a block, 0 empty */

	if (!have)
		return mt_snapshot__add_allocs(s, more, n);
	if (!n)
		return 0;
	while (cap < 2 * have)
		cap *= 2;
	all = realloc(s->allocs, (have + n) * sizeof(*all));
	if (all)
		s->allocs = all;
	idx = calloc(cap, sizeof(*idx));
	if (!all || !idx) {
		free(idx);
		return -ENOMEM;
	}
	for (size_t i = 0; i < have; i++) {
		size_t j = block_key_hash(&all[i].k) & (cap - 1);

		while (idx[j])
			j = (j + 1) & (cap - 1);
		idx[j] = i + 1;
	}
	for (size_t i = 0; i < n; i++) {
		size_t j = block_key_hash(&more[i].k) & (cap - 1);
		bool dup = false;

		for (; idx[j] && !dup; j = (j + 1) & (cap - 1))
			dup = !memcmp(&all[idx[j] - 1].k, &more[i].k, sizeof(more[i].k));
		if (!dup)
			all[have + kept++] = more[i];
	}
	s->nallocs = have + kept;
	free(idx);
	return 0;
}

uint64_t mt_block_time_ns(const struct mt_clock *c, uint64_t ts)
{
	uint64_t ticks, age;

	if (!c->hz)
		return ts;
	ticks = c->jiffies > ts ? c->jiffies - ts : 0;
	/* in two parts: ticks * 1e9 overflows after 2^64 / 1e9 / HZ s */
	age = ticks / c->hz * 1000000000ULL + ticks % c->hz * 1000000000ULL / c->hz;
	return c->mono_ns > age ? c->mono_ns - age : 0;
}

/* The process (pid, gen), or the one of that pid whose start is unknown. */
static const struct mt_proc *find_proc(const struct mt_report *r, const struct mt_pairmap *by,
				      pid_t pid, uint32_t gen)
{
	long i = mt_pairmap__get(by, (uint64_t)pid, gen);

	if (i < 0)
		i = mt_pairmap__get(by, (uint64_t)pid, 0);
	return i < 0 ? NULL : &r->procs[i];
}

static int by_outstanding(const void *a, const void *b, void *arg)
{
	const struct mt_entry *e = arg, *x = &e[*(const size_t *)a], *y = &e[*(const size_t *)b];

	if (x->st.outstanding_bytes != y->st.outstanding_bytes)
		return x->st.outstanding_bytes > y->st.outstanding_bytes ? -1 : 1;
	if (x->st.alloc_bytes != y->st.alloc_bytes)
		return x->st.alloc_bytes > y->st.alloc_bytes ? -1 : 1;
	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	return x->stack_id < y->stack_id ? -1 : x->stack_id > y->stack_id;
}

static int by_leak(const void *a, const void *b, void *arg)
{
	const struct mt_entry *e = arg, *x = &e[*(const size_t *)a], *y = &e[*(const size_t *)b];

	if (x->leak_bytes != y->leak_bytes)
		return x->leak_bytes > y->leak_bytes ? -1 : 1;
	return by_outstanding(a, b, arg);
}

/*
 * Freed = allocated - outstanding. The snapshot reads the live blocks
 * before the totals, and BPF adds a block to allocs just before its
 * stack's totals: a block allocated in between would be outstanding but
 * not yet allocated. It was allocated: never report a negative free.
 */
static void derive_freed(struct mt_stack_totals *st, struct mt_totals *t)
{
	if (st->alloc_bytes < st->outstanding_bytes)
		st->alloc_bytes = st->outstanding_bytes;
	if (st->alloc_count < st->outstanding_count)
		st->alloc_count = st->outstanding_count;
	st->free_bytes = st->alloc_bytes - st->outstanding_bytes;
	st->free_count = st->alloc_count - st->outstanding_count;
	t->alloc_bytes += st->alloc_bytes;
	t->alloc_count += st->alloc_count;
	t->free_bytes += st->free_bytes;
	t->free_count += st->free_count;
}

/* One entry per (pid, stack): from the stats map, then the live blocks. */
static int collect(const struct mt_snapshot *s, const struct mt_report_opts *o,
		   struct mt_report *r)
{
	struct mt_pairmap *idx = mt_pairmap__new(s->nstats), *by = mt_pairmap__new(r->nprocs);
	uint64_t cutoff = s->now_ns > o->min_age_ns ? s->now_ns - o->min_age_ns : 0;
	int err = 0;

	r->entries = calloc(s->nstats + 1, sizeof(*r->entries));
	if (!idx || !by || !r->entries) {
		mt_pairmap__free(idx);
		mt_pairmap__free(by);
		return -ENOMEM;
	}
	for (size_t i = 0; i < r->nprocs; i++)
		if ((err = mt_pairmap__put(by, (uint64_t)r->procs[i].pid, r->procs[i].gen, (long)i)))
			goto out;
	for (size_t i = 0; i < s->nstats; i++) {
		struct mt_entry *e = &r->entries[r->nentries];

		e->pid = s->stats[i].k.tgid;
		e->gen = s->stats[i].k.gen;
		e->stack_id = s->stats[i].k.stack_id;
		e->st.alloc_bytes = s->stats[i].v.alloc_bytes;
		e->st.alloc_count = s->stats[i].v.alloc_count;
		e->proc = find_proc(r, by, e->pid, e->gen);
		e->kernel = e->stack_id & MT_STACK_KERNEL;
		e->kind = mt_stack_kind(e->stack_id);
		e->exited = e->proc && e->proc->exited;
		if ((err = mt_pairmap__put(idx, proc_key(e->pid, e->gen), e->stack_id, r->nentries)))
			goto out;
		r->nentries++;
	}
	for (size_t i = 0; i < s->nallocs; i++) {
		const struct mt_alloc_entry *a = &s->allocs[i];
		/* a kernel block counts for the process that allocated it */
		long j = mt_pairmap__get(idx, proc_key(a->v.owner, a->v.owner_gen), a->v.stack_id);
		struct mt_entry *e;

		r->totals.outstanding_count += a->v.count;
		r->totals.outstanding_bytes += a->v.size;
		if (j < 0)
			continue; /* its stats entry was lost: counted in lost */
		e = &r->entries[j];
		e->st.outstanding_bytes += a->v.size;
		e->st.outstanding_count += a->v.count;
		if (!e->oldest_ts_ns || a->v.ts < e->oldest_ts_ns)
			e->oldest_ts_ns = a->v.ts;
		if (e->exited || a->v.ts <= cutoff) {
			e->leak_bytes += a->v.size;
			e->leak_count += a->v.count;
		}
	}
	for (size_t i = 0; i < r->nentries; i++)
		derive_freed(&r->entries[i].st, &r->totals);
out:
	mt_pairmap__free(idx);
	mt_pairmap__free(by);
	return err;
}

static int rank(struct mt_report *r, uint64_t top)
{
	r->top = malloc((r->nentries + 1) * sizeof(size_t));
	r->leaks = malloc((r->nentries + 1) * sizeof(size_t));
	if (!r->top || !r->leaks)
		return -ENOMEM;
	for (size_t i = 0; i < r->nentries; i++) {
		r->top[r->ntop++] = i;
		if (r->entries[i].leak_count)
			r->leaks[r->nleaks++] = i;
	}
	qsort_r(r->top, r->ntop, sizeof(size_t), by_outstanding, r->entries);
	qsort_r(r->leaks, r->nleaks, sizeof(size_t), by_leak, r->entries);
	if (top && r->ntop > top)
		r->ntop = top;
	if (top && r->nleaks > top)
		r->nleaks = top;
	return 0;
}

int mt_report__build(const struct mt_snapshot *s, const struct mt_proc *procs,
		     size_t nprocs, const struct mt_report_opts *o, struct mt_report *r)
{
	int err;

	memset(r, 0, sizeof(*r));
	r->version = 1;
	r->sample_bytes = o->sample_bytes;
	r->final = o->final;
	r->duration_s = o->duration_s;
	r->now_ns = s->now_ns;
	r->procs = procs;
	r->nprocs = nprocs;
	r->totals.alloc_failed = s->counters[MT_CNT_ALLOC_FAILED];
	r->totals.nested = s->counters[MT_CNT_NESTED];
	r->totals.size_filtered = s->counters[MT_CNT_SIZE_FILTERED];
	r->totals.peak_outstanding_bytes = s->peak_bytes;
	for (int i = MT_CNT__EVENTS; i < MT_CNT__COUNT; i++) {
		r->lost[i - MT_CNT__EVENTS] = s->counters[i];
		r->lost_total += s->counters[i];
	}
	err = collect(s, o, r);
	/* the BPF peak is taken per batch of changes: never below now */
	if (r->totals.outstanding_bytes > r->totals.peak_outstanding_bytes)
		r->totals.peak_outstanding_bytes = r->totals.outstanding_bytes;
	if (!err)
		err = rank(r, o->top);
	if (err)
		mt_report__clear(r);
	return err;
}

void mt_report__clear(struct mt_report *r)
{
	for (size_t i = 0; i < r->nentries; i++)
		free(r->entries[i].frames);
	free(r->entries);
	free(r->top);
	free(r->leaks);
	memset(r, 0, sizeof(*r));
}

/* operator new, new[] and their nothrow/aligned variants: _Znw*, _Zna* */
static bool is_allocator_frame(const struct mt_frame *f)
{
	const char *s = f->raw_symbol;

	return s && (!strncmp(s, "_Znw", 4) || !strncmp(s, "_Zna", 4));
}

size_t mt_frames__skip_allocator(const struct mt_frame *f, size_t n)
{
	size_t i = 0;

	/* keep at least one frame: an all-allocator stack is still a stack */
	while (i + 1 < n && is_allocator_frame(&f[i]))
		i++;
	return i;
}
