// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "cfi.h"
#include "pairmap.h"
#include "procmaps.h"
#include "strutil.h"
#include "unwind.h"

/*
 * One file's table and the traced processes that map it. A table no
 * process uses any more goes idle: out of BPF's sight (its header is
 * removed), its rows kept MT_IDLE_S or more (dropped at a later exit). A
 * process mapping the same file again meanwhile gets it back by putting
 * the header back, where building it again and replacing its rows in the
 * hash of maps would wait for two RCU grace periods (about 25 ms here): a
 * shell loop's short processes, one after the other, paid that each.
 */
struct table {
	struct mt_cfi_key key;
	pid_t *users;
	size_t nusers, cap;
	uint64_t map_bytes, rows;
	struct mt_cfi_table hdr;	/* what cfi_tables holds for it */
	struct file_id {		/* the file it was built from */
		int64_t ctime_ns, mtime_ns, size;
	} file;
	double idle_since;	/* idle: when its last user went */
	bool loaded;		/* in the BPF maps (rows, or "no CFI") */
	bool idle;		/* loaded, but no user and no header in BPF */
	bool dead;		/* freed; the slot is reused */
};

#define MT_IDLE_S 10.0

struct mt_unwind {
	int rows_fd, tables_fd, asked_fd;
	struct ring_buffer *rb;
	struct table *v;
	size_t n, cap;
	struct mt_pairmap *index;	/* (dev, ino) -> index in v */
	volatile __u64 *epoch;
	/* per traced process: a hash of its executable mappings at the last
	 * scan; a change means code may have been unmapped */
	struct mt_pairmap *maps_seen;
	struct mt_unwind_stats stats;
	int pending_err;
	/* tables built but not yet in the BPF maps: adding a map to a hash
	 * of maps waits for an RCU grace period (10-20 ms here), once per
	 * batch rather than once per file */
	struct pending {
		struct mt_cfi_key key;
		struct mt_cfi_table hdr;
		int fd;
	} *pending;
	size_t npending, cap_pending;
	/* files to tell the callback about at the next flush */
	struct news {
		struct mt_unwind_file f;
		pid_t pid;
		uint64_t rows;
		int err;
	} *news;
	size_t nnews, cap_news;
	mt_unwind_cb cb;
	void *cb_ctx;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The kernel's dev_t encoding (what BPF reads from the superblock). */
static uint32_t kdev(uint32_t major, uint32_t minor)
{
	return major << 20 | minor;
}

static struct table *find(struct mt_unwind *u, const struct mt_cfi_key *k)
{
	long i = mt_pairmap__get(u->index, k->dev, k->ino);

	return i < 0 || u->v[i].dead ? NULL : &u->v[i];
}

static struct table *get(struct mt_unwind *u, const struct mt_cfi_key *k)
{
	struct table *t = find(u, k);
	long i = mt_pairmap__get(u->index, k->dev, k->ino);

	if (t)
		return t;
	if (i < 0) {
		if (mt_grow((void **)&u->v, &u->cap, u->n + 1, sizeof(*u->v)) ||
		    mt_pairmap__put(u->index, k->dev, k->ino, (long)u->n))
			return NULL;
		i = (long)u->n++;
	}
	t = &u->v[i];
	memset(t, 0, sizeof(*t));
	t->key = *k;
	return t;
}

static int add_user(struct table *t, pid_t pid)
{
	for (size_t i = 0; i < t->nusers; i++)
		if (t->users[i] == pid)
			return 0;
	if (mt_grow((void **)&t->users, &t->cap, t->nusers + 1, sizeof(*t->users)))
		return -ENOMEM;
	t->users[t->nusers++] = pid;
	return 0;
}

/* A file's id in stack frames: its slot, which only it ever takes. */
static uint32_t table_id(const struct mt_unwind *u, const struct table *t)
{
	return (uint32_t)(t - u->v) + 1;
}

int mt_unwind__file(const struct mt_unwind *u, uint32_t id, uint32_t *dev, uint64_t *ino)
{
	if (!id || id > u->n)
		return -ENOENT;
	*dev = u->v[id - 1].key.dev;
	*ino = u->v[id - 1].key.ino;
	return 0;
}

/* Rows into a new array map (pages first), then the map into cfi_rows. */
static int load_rows(struct mt_unwind *u, struct table *t, const struct mt_cfi *c)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_INNER_MAP | BPF_F_MMAPABLE);
	struct mt_cfi_page *pages;
	uint32_t npages, first_page;
	size_t n, bytes;
	void *mem;
	int fd, err;

	err = mt_cfi__pages(c->rows, c->nrows, 0, &pages, &npages, &first_page);
	if (err)
		return err;
	n = npages + c->nrows;
	bytes = (n * 8 + 4095) & ~(size_t)4095;
	for (uint32_t i = 0; i < npages; i++)
		pages[i].first_row += npages; /* rows follow the pages */
	fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "mt_cfi", 4, 8, (uint32_t)n, &opts);
	if (fd < 0) {
		free(pages);
		return -errno;
	}
	mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (mem == MAP_FAILED) {
		err = -errno;
		goto out;
	}
	memcpy(mem, pages, npages * 8);
	memcpy((char *)mem + npages * 8, c->rows, c->nrows * 8);
	munmap(mem, bytes);
	if ((err = mt_grow((void **)&u->pending, &u->cap_pending, u->npending + 1,
			   sizeof(*u->pending))))
		goto out;
	t->hdr = (struct mt_cfi_table){ .seg_delta = c->seg_delta, .npages = npages,
					.first_page = first_page, .id = table_id(u, t) };
	u->pending[u->npending++] = (struct pending){ .key = t->key, .fd = fd, .hdr = t->hdr };
	fd = -1; /* until mt_unwind__flush */
	t->map_bytes = bytes;
	t->rows = n;
	u->stats.tables++;
	u->stats.rows += n;
	u->stats.map_bytes += bytes;
out:
	free(pages);
	if (fd >= 0)
		close(fd);
	return err;
}

int mt_unwind__flush(struct mt_unwind *u)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	__u32 n = (__u32)u->npending;
	struct mt_cfi_key *keys = calloc(n + 1, sizeof(*keys));
	struct mt_cfi_table *hdrs = calloc(n + 1, sizeof(*hdrs));
	__u32 *fds = calloc(n + 1, sizeof(*fds));
	double t0 = now_s();
	int err = 0;

	if (!keys || !hdrs || !fds) {
		err = -ENOMEM;
		goto out;
	}
	for (__u32 i = 0; i < n; i++) {
		keys[i] = u->pending[i].key;
		hdrs[i] = u->pending[i].hdr;
		fds[i] = (__u32)u->pending[i].fd;
	}
	/* rows before the headers: BPF looks at the header first */
	if (n && (bpf_map_update_batch(u->rows_fd, keys, fds, &n, &opts) ||
		  bpf_map_update_batch(u->tables_fd, keys, hdrs, &n, &opts)))
		err = -errno;
out:
	for (size_t i = 0; i < u->npending; i++) {
		struct table *t;

		close(u->pending[i].fd); /* cfi_rows holds the maps */
		if (!err || !(t = find(u, &u->pending[i].key)))
			continue;
		/* not in BPF after all: forget it, so it is asked for again */
		bpf_map_delete_elem(u->rows_fd, &t->key);
		bpf_map_delete_elem(u->tables_fd, &t->key);
		bpf_map_delete_elem(u->asked_fd, &t->key);
		u->stats.tables--;
		u->stats.rows -= t->rows;
		u->stats.map_bytes -= t->map_bytes;
		t->rows = t->map_bytes = 0;
		t->loaded = false;
	}
	u->npending = 0;
	u->stats.build_s += now_s() - t0;
	for (size_t i = 0; i < u->nnews; i++) {
		struct news *w = &u->news[i];

		if (u->cb && w->f.path)
			u->cb(u->cb_ctx, w->pid, &w->f, w->rows, w->err ? w->err : err);
		free((char *)w->f.path);
		if (w->f.fd >= 0)
			close(w->f.fd);
	}
	u->nnews = 0;
	free(keys);
	free(hdrs);
	free(fds);
	return err;
}

/* Which file fd is open on, beyond its inode number (which a new file may
 * get once the old one is deleted). */
static int file_id(int fd, struct file_id *id)
{
	struct stat st;

	if (fstat(fd, &st))
		return -errno;
	*id = (struct file_id){
		.ctime_ns = st.st_ctim.tv_sec * 1000000000LL + st.st_ctim.tv_nsec,
		.mtime_ns = st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec,
		.size = st.st_size,
	};
	return 0;
}

/* Build and load the table of the file open at fd (or mark it CFI-less). */
static int load(struct mt_unwind *u, struct table *t, int fd)
{
	struct mt_cfi c;
	double t0 = now_s();
	int err = file_id(fd, &t->file) ?: mt_cfi__build(fd, &c);

	if (!err) {
		err = load_rows(u, t, &c);
		mt_cfi__clear(&c);
	}
	if (err == -ENODATA || err == -ENOEXEC) {
		/* no table: the unwinder uses frame pointers there */
		t->hdr = (struct mt_cfi_table){ .id = table_id(u, t) };
		err = bpf_map_update_elem(u->tables_fd, &t->key, &t->hdr, BPF_ANY) ? -errno : 0;
		u->stats.no_cfi++;
	}
	u->stats.build_s += now_s() - t0;
	t->loaded = !err;
	return err;
}

static void unload(struct mt_unwind *u, struct table *t);

/* An idle table met again, with its file open at fd: back in BPF's sight
 * if it is still that file's (true); else unloaded (false). */
static bool revive(struct mt_unwind *u, struct table *t, int fd)
{
	struct file_id now;

	if (!file_id(fd, &now) && !memcmp(&now, &t->file, sizeof(now)) &&
	    !bpf_map_update_elem(u->tables_fd, &t->key, &t->hdr, BPF_ANY)) {
		bpf_map_update_elem(u->asked_fd, &t->key, &(uint8_t){ 1 }, BPF_ANY);
		t->idle = false;
		u->stats.revived++;
		return true;
	}
	unload(u, t);
	return false;
}

/* The table for the file behind fd (path, for the callback), used by pid. */
static int ensure(struct mt_unwind *u, const struct mt_cfi_key *k, pid_t pid, int fd,
		  const char *path)
{
	struct table *t = get(u, k);
	int err;

	/* a file replaced since at the same inode: built anew (in its slot) */
	if (t && t->idle && !revive(u, t, fd))
		t = get(u, k);
	if (!t)
		return -ENOMEM;
	if ((err = add_user(t, pid)))
		return err;
	if (t->loaded)
		return 0;
	err = load(u, t, fd);
	bpf_map_update_elem(u->asked_fd, k, &(uint8_t){ 1 }, BPF_ANY);
	/* told once the table is in BPF (mt_unwind__flush) */
	if (u->cb && !mt_grow((void **)&u->news, &u->cap_news, u->nnews + 1, sizeof(*u->news))) {
		u->news[u->nnews++] = (struct news){
			.f = { .id = table_id(u, t), .dev = k->dev, .ino = k->ino,
			       .path = strdup(path ? path : ""),
			       .fd = fcntl(fd, F_DUPFD_CLOEXEC, 0) },
			.pid = pid, .rows = t->rows, .err = err };
	}
	return err;
}

/* fd, if it is open on file k; else -1 (and fd closed). */
static int is_file(int fd, const struct mt_cfi_key *k)
{
	struct stat st;

	if (fd >= 0 && (fstat(fd, &st) || st.st_ino != k->ino ||
			kdev(major(st.st_dev), minor(st.st_dev)) != k->dev)) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* The file mapped at [start, end) in pid, if it is still file k (the range
 * may have been remapped since: dlclose, exec, a reused PID). */
static int open_mapping(pid_t pid, uint64_t start, uint64_t end, const struct mt_cfi_key *k)
{
	char p[96];

	/* map_files: the mapped file itself, never a path resolved in the
	 * process's (maybe hostile) mount namespace */
	snprintf(p, sizeof(p), "/proc/%d/map_files/%llx-%llx", pid, (unsigned long long)start,
		 (unsigned long long)end);
	return is_file(open(p, O_RDONLY | O_CLOEXEC), k);
}

/* Cached rules in BPF may be stale: drop them all. */
static void new_epoch(struct mt_unwind *u)
{
	__atomic_fetch_add(u->epoch, 1, __ATOMIC_SEQ_CST);
}

static uint64_t mix(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h;
}

int mt_unwind__add_process(struct mt_unwind *u, pid_t pid)
{
	struct mt_maps maps;
	uint64_t h = 0;
	long prev;
	int err = mt_procmaps__read(pid, &maps);

	if (err)
		return err;
	for (size_t i = 0; i < maps.n; i++)
		if (maps.v[i].x)
			h = mix(h ^ maps.v[i].start ^ maps.v[i].end * 31 ^ maps.v[i].inode * 131);
	prev = mt_pairmap__get(u->maps_seen, (uint64_t)pid, 0);
	if (prev != -1 && (uint64_t)prev != (h >> 1))
		new_epoch(u); /* code mapped differently than at the last scan */
	mt_pairmap__put(u->maps_seen, (uint64_t)pid, 0, (long)(h >> 1));
	for (size_t i = 0; i < maps.n && !err; i++) {
		const struct mt_map *m = &maps.v[i];
		struct mt_cfi_key k = { .dev = kdev(m->dev_major, m->dev_minor), .ino = m->inode };
		struct table *t;
		int fd;

		if (!m->x || !m->inode)
			continue;
		t = find(u, &k);
		if (t && t->loaded && !t->idle) {
			err = add_user(t, pid);
			continue;
		}
		fd = open_mapping(pid, m->start, m->end, &k);
		if (fd < 0)
			continue; /* unmapped or remapped meanwhile */
		err = ensure(u, &k, pid, fd, m->path);
		close(fd);
	}
	mt_procmaps__clear(&maps);
	return mt_unwind__flush(u) ?: err;
}

int mt_unwind__add_file(struct mt_unwind *u, pid_t pid, const char *path)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC), err;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st)) {
		err = -errno;
	} else {
		struct mt_cfi_key k = { .dev = kdev(major(st.st_dev), minor(st.st_dev)),
					.ino = st.st_ino };

		err = ensure(u, &k, pid, fd, path);
	}
	close(fd);
	return err;
}

static void unload(struct mt_unwind *u, struct table *t)
{
	bpf_map_delete_elem(u->tables_fd, &t->key);
	bpf_map_delete_elem(u->rows_fd, &t->key);
	bpf_map_delete_elem(u->asked_fd, &t->key);
	if (t->rows) {
		u->stats.tables--;
		u->stats.rows -= t->rows;
		u->stats.map_bytes -= t->map_bytes;
	} else if (t->loaded) {
		u->stats.no_cfi--;
	}
	free(t->users);
	t->users = NULL;
	t->nusers = t->cap = 0;
	t->loaded = false;
	t->idle = false;
	t->dead = true;
	new_epoch(u);
}

/* No process uses t: out of BPF's sight (asked for again when met), its
 * rows kept for a while. */
static void go_idle(struct mt_unwind *u, struct table *t, double now)
{
	bpf_map_delete_elem(u->tables_fd, &t->key);
	bpf_map_delete_elem(u->asked_fd, &t->key);
	t->idle = true;
	t->idle_since = now;
	new_epoch(u);
}

void mt_unwind__drop_process(struct mt_unwind *u, pid_t pid)
{
	double now = now_s();

	for (size_t i = 0; i < u->n; i++) {
		struct table *t = &u->v[i];

		if (t->dead)
			continue;
		for (size_t j = 0; j < t->nusers; j++) {
			if (t->users[j] == pid) {
				t->users[j] = t->users[--t->nusers];
				break;
			}
		}
		if (t->nusers)
			continue;
		if (!t->loaded || (t->idle && now - t->idle_since > MT_IDLE_S))
			unload(u, t);
		else if (!t->idle)
			go_idle(u, t, now);
	}
}

/* The BPF side met a file without a table. */
/* A directory on the filesystem of kernel device dev, from mountinfo. */
static int mount_fd_of(uint32_t dev)
{
	char *text = mt_read_file("/proc/self/mountinfo"), *line, *save = NULL;
	int fd = -1;

	for (line = text ? strtok_r(text, "\n", &save) : NULL; line && fd < 0;
	     line = strtok_r(NULL, "\n", &save)) {
		unsigned maj, min;
		char mnt[4096];

		if (sscanf(line, "%*u %*u %u:%u %*s %4095s", &maj, &min, mnt) == 3 &&
		    kdev(maj, min) == dev)
			fd = open(mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	free(text);
	return fd;
}

/*
 * The file (dev, ino) by handle, without any path: a process that exited
 * before its mapping could be opened leaves only that. ext4 and xfs
 * (FILEID_INO32_GEN); other filesystems fail, and the file gets no table.
 */
static int open_by_inode(const struct mt_cfi_key *k, uint32_t igen)
{
	struct {
		struct file_handle fh;
		uint32_t ino, gen;
	} h = { .fh = { .handle_bytes = 8, .handle_type = 1 /* FILEID_INO32_GEN */ },
		.ino = (uint32_t)k->ino, .gen = igen };
	int mfd, fd;

	if (k->ino > UINT32_MAX || (mfd = mount_fd_of(k->dev)) < 0)
		return -1;
	fd = open_by_handle_at(mfd, &h.fh, O_RDONLY | O_CLOEXEC);
	close(mfd);
	return is_file(fd, k);
}

static int on_miss(void *ctx, void *data, size_t len)
{
	struct mt_unwind *u = ctx;
	const struct mt_cfi_miss *m = data;
	char p[96], path[4096];
	ssize_t n;
	int fd, err;

	if (len < sizeof(*m))
		return 0;
	snprintf(p, sizeof(p), "/proc/%u/map_files/%llx-%llx", m->tgid,
		 (unsigned long long)m->vm_start, (unsigned long long)m->vm_end);
	fd = open_mapping((pid_t)m->tgid, m->vm_start, m->vm_end, &m->key);
	if (fd < 0) {
		/* gone already (a short-lived process): by inode */
		fd = open_by_inode(&m->key, m->igen);
		snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
	}
	if (fd < 0) {
		/* let the next process that meets it ask again */
		bpf_map_delete_elem(u->asked_fd, &m->key);
		return 0;
	}
	{
		n = readlink(p, path, sizeof(path) - 1);
		path[n > 0 ? n : 0] = 0;
		err = ensure(u, &m->key, (pid_t)m->tgid, fd, path);
		err = mt_unwind__flush(u) ?: err;
	}
	close(fd);
	if (err && !u->pending_err)
		u->pending_err = err;
	return 0;
}

int mt_unwind__new(int rows_fd, int tables_fd, int asked_fd, int misses_fd,
		   volatile __u64 *epoch, struct mt_unwind **out)
{
	struct mt_unwind *u = calloc(1, sizeof(*u));

	*out = NULL;
	if (!u)
		return -ENOMEM;
	u->rows_fd = rows_fd;
	u->tables_fd = tables_fd;
	u->asked_fd = asked_fd;
	u->epoch = epoch;
	u->index = mt_pairmap__new(64);
	u->maps_seen = mt_pairmap__new(16);
	u->rb = ring_buffer__new(misses_fd, on_miss, u, NULL);
	if (!u->index || !u->maps_seen || !u->rb) {
		int err = u->rb ? -ENOMEM : -errno;

		mt_unwind__free(u);
		return err;
	}
	*out = u;
	return 0;
}

void mt_unwind__free(struct mt_unwind *u)
{
	if (!u)
		return;
	ring_buffer__free(u->rb);
	for (size_t i = 0; i < u->npending; i++)
		close(u->pending[i].fd);
	free(u->pending);
	for (size_t i = 0; i < u->nnews; i++) {
		free((char *)u->news[i].f.path);
		close(u->news[i].f.fd);
	}
	free(u->news);
	for (size_t i = 0; i < u->n; i++)
		free(u->v[i].users);
	free(u->v);
	mt_pairmap__free(u->index);
	mt_pairmap__free(u->maps_seen);
	free(u);
}

int mt_unwind__fd(const struct mt_unwind *u)
{
	return ring_buffer__epoll_fd(u->rb);
}

int mt_unwind__poll(struct mt_unwind *u)
{
	int n = ring_buffer__consume(u->rb), err = u->pending_err;

	u->pending_err = 0;
	return n < 0 ? n : err ? err : n;
}

void mt_unwind__set_cb(struct mt_unwind *u, mt_unwind_cb cb, void *ctx)
{
	u->cb = cb;
	u->cb_ctx = ctx;
}

void mt_unwind__stats(const struct mt_unwind *u, struct mt_unwind_stats *s)
{
	*s = u->stats;
}
