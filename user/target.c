// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "elfsyms.h"
#include "probesite.h"
#include "procmaps.h"
#include "strutil.h"
#include "target.h"

int mt_target__check_pid(pid_t pid)
{
	char p[64];

	if (kill(pid, 0) && errno == ESRCH)
		return -ESRCH;
	snprintf(p, sizeof(p), "/proc/%d/maps", pid);
	if (access(p, R_OK))
		return errno == ENOENT ? -ESRCH : -errno;
	return 0;
}

static ssize_t read_small(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	return n;
}

pid_t mt_target__tgid(pid_t tid)
{
	char path[64], buf[2048], *t;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/status", tid);
	n = read_small(path, buf, sizeof(buf));
	if (n < 0)
		return n == -ENOENT ? -ESRCH : n;
	t = strstr(buf, "\nTgid:");
	return t ? (pid_t)strtol(t + 6, NULL, 10) : -EINVAL;
}

void mt_target__proc_info(pid_t pid, struct mt_proc *p)
{
	char path[64], buf[sizeof(p->exe)];
	ssize_t n;

	p->pid = pid;
	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	if (read_small(path, buf, sizeof(p->comm)) > 0) {
		buf[strcspn(buf, "\n")] = 0;
		snprintf(p->comm, sizeof(p->comm), "%.31s", buf);
	}
	snprintf(path, sizeof(path), "/proc/%d/exe", pid);
	n = readlink(path, buf, sizeof(buf) - 1);
	if (n > 0) {
		buf[n] = 0;
		memcpy(p->exe, buf, n + 1);
	}
	/* the unified hierarchy's line: "0::/system.slice/x.service" */
	snprintf(path, sizeof(path), "/proc/%d/cgroup", pid);
	if (read_small(path, buf, sizeof(buf)) > 0) {
		char *l = strstr(buf, "0::");

		if (l && (l == buf || l[-1] == '\n')) {
			l += 3;
			l[strcspn(l, "\n")] = 0;
			snprintf(p->cgroup, sizeof(p->cgroup), "%s", l);
		}
	}
}

void mt_paths__clear(struct mt_paths *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->v[i]);
	free(p->v);
	p->v = NULL;
	p->n = 0;
}

int mt_paths__add(struct mt_paths *p, const char *path)
{
	struct stat st, o;
	char **nv;

	if (stat(path, &st))
		return -errno;
	for (size_t i = 0; i < p->n; i++)
		if (!stat(p->v[i], &o) && o.st_dev == st.st_dev && o.st_ino == st.st_ino)
			return 0;
	nv = realloc(p->v, (p->n + 1) * sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	p->v = nv;
	if (!(p->v[p->n] = strdup(path)))
		return -ENOMEM;
	p->n++;
	return 1;
}

int mt_target__mapped_files(pid_t pid, struct mt_paths *out)
{
	struct mt_maps maps;
	int err;

	memset(out, 0, sizeof(*out));
	err = mt_procmaps__read(pid, &maps);
	if (err)
		return err;
	for (size_t i = 0; i < maps.n && err >= 0; i++) {
		char path[4200];

		if (!maps.v[i].x || !mt_map__is_file(&maps.v[i]) || maps.v[i].deleted)
			continue;
		/* the mapped file itself: a path resolved in the process's root
		 * could be a symlink a hostile container points at host files */
		snprintf(path, sizeof(path), "/proc/%d/map_files/%llx-%llx", pid,
			 (unsigned long long)maps.v[i].start, (unsigned long long)maps.v[i].end);
		err = mt_paths__add(out, path);
		if (err == -ENOENT)
			err = 0; /* replaced on disk meanwhile: skip */
	}
	mt_procmaps__clear(&maps);
	if (err < 0)
		mt_paths__clear(out);
	return err < 0 ? err : 0;
}

/* Is m a mapping of the file st (lib: its path)? */
static bool maps_file(const struct mt_map *m, const struct stat *st, const char *lib)
{
	return m->inode == st->st_ino &&
	       ((m->dev_major == major(st->st_dev) && m->dev_minor == minor(st->st_dev)) ||
		!strcmp(m->path, lib));
}

int mt_target__rearm_sites(pid_t pid, const char *lib, const uint64_t *offs, size_t n)
{
	struct mt_maps maps = {};
	struct stat st;
	char mem[64];
	int fd = -1, fixed = 0, err;

	if (stat(lib, &st))
		return -errno;
	err = mt_procmaps__read(pid, &maps);
	if (err)
		return err;
	snprintf(mem, sizeof(mem), "/proc/%d/mem", pid);
	fd = open(mem, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		goto cleanup;
	}
	for (size_t i = 0; i < maps.n; i++) {
		const struct mt_map *m = &maps.v[i];

		if (!m->x || !maps_file(m, &st, lib))
			continue;
		for (size_t j = 0; j < n; j++) {
			uint64_t va = m->start + offs[j] - m->pgoff;
			uint8_t code[5];

			if (offs[j] < m->pgoff || va + 5 > m->end)
				continue;
			if (pread(fd, code, 5, (off_t)va) != 5) {
				err = -errno;
				goto cleanup;
			}
			if (!mt_probesite__orphan_call(code, va, &maps))
				continue;
			if (pwrite(fd, mt_probesite__nop5_armed, 5, (off_t)va) != 5) {
				err = -errno;
				goto cleanup;
			}
			fixed++;
		}
	}
cleanup:
	if (fd >= 0)
		close(fd);
	mt_procmaps__clear(&maps);
	return err ? err : fixed;
}

/* Find a library by name in a ':'-separated list of directories. */
static bool find_in(const char *dirs, const char *origin, const char *name, char *out,
		    size_t len)
{
	for (const char *d = dirs; d && *d;) {
		size_t n = strcspn(d, ":");
		char dir[2048];

		snprintf(dir, sizeof(dir), "%.*s", (int)n, d);
		if (!strncmp(dir, "$ORIGIN", 7) || !strncmp(dir, "${ORIGIN}", 9)) {
			const char *rest = dir + (dir[1] == '{' ? 9 : 7);
			char tmp[2048];

			snprintf(tmp, sizeof(tmp), "%s%s", origin, rest);
			snprintf(dir, sizeof(dir), "%s", tmp);
		}
		snprintf(out, len, "%s/%s", dir, name);
		if (n && !access(out, R_OK))
			return true;
		d += n + (d[n] == ':');
	}
	return false;
}

static const char *const system_dirs =
	"/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu:/lib64:/usr/lib64:/lib:/usr/lib:"
	"/usr/local/lib";

static void resolve(const char *name, const char *runpath, const char *origin, char *out,
		    size_t len)
{
	out[0] = 0;
	if (strchr(name, '/')) {
		snprintf(out, len, "%s", name);
		return;
	}
	if (find_in(runpath, origin, name, out, len) ||
	    find_in(getenv("LD_LIBRARY_PATH"), origin, name, out, len) ||
	    find_in(system_dirs, origin, name, out, len))
		return;
	out[0] = 0;
}

/* A script's interpreter ("#!/bin/sh -e" -> /bin/sh), or 0 if not one. */
static int interpreter(const char *path, char *out, size_t len)
{
	char buf[512];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	size_t start = 2;

	if (fd >= 0)
		close(fd);
	if (n < 3 || buf[0] != '#' || buf[1] != '!')
		return 0;
	buf[n] = 0;
	while (buf[start] == ' ' || buf[start] == '\t')
		start++;
	buf[start + strcspn(buf + start, " \t\n")] = 0;
	snprintf(out, len, "%s", buf + start);
	return out[0] == '/';
}

int mt_target__dependencies(const char *exe, struct mt_paths *out)
{
	const char *preload = getenv("LD_PRELOAD");
	char interp[2][512];
	int err;

	/* a script runs its interpreter (which may exec another: followed) */
	for (int depth = 0; depth < 2 && interpreter(exe, interp[depth], sizeof(interp[0]));
	     depth++)
		exe = interp[depth];
	memset(out, 0, sizeof(*out));
	if ((err = mt_paths__add(out, exe)) < 0)
		return err;
	for (const char *p = preload; p && *p;) {
		size_t n = strcspn(p, ": ");
		char name[1024], path[4096];

		snprintf(name, sizeof(name), "%.*s", (int)n, p);
		resolve(name, "", "", path, sizeof(path));
		if (path[0])
			mt_paths__add(out, path);
		p += n + (p[n] != 0);
	}
	/* breadth first, as the loader does; out grows while we walk it */
	for (size_t i = 0; i < out->n && out->n < 1024; i++) {
		char *needed[256], runpath[2048], origin[4096], *slash;
		int n = mt_elf__needed(out->v[i], needed, 256, runpath, sizeof(runpath));

		snprintf(origin, sizeof(origin), "%s", out->v[i]);
		slash = strrchr(origin, '/');
		if (slash)
			*slash = 0;
		for (int k = 0; k < n; k++) {
			char path[4096];

			resolve(needed[k], runpath, origin, path, sizeof(path));
			if (path[0])
				mt_paths__add(out, path);
			free(needed[k]);
		}
	}
	return 0;
}

static int check_exec(const char *path)
{
	struct stat st;

	if (stat(path, &st))
		return -errno;
	if (S_ISDIR(st.st_mode) || access(path, X_OK))
		return -EACCES;
	return 0;
}

int mt_target__resolve_cmd(const char *cmd, char *path, size_t len)
{
	const char *env = getenv("PATH"), *p;
	int err = -ENOENT;

	if (strchr(cmd, '/')) {
		snprintf(path, len, "%s", cmd);
		return check_exec(path);
	}
	if (!env)
		env = "/usr/local/bin:/usr/bin:/bin";
	for (p = env; ; p = strchr(p, ':') + 1) {
		size_t n = strcspn(p, ":");
		int e;

		snprintf(path, len, "%.*s%s%s", (int)n, n ? p : ".", "/", cmd);
		e = check_exec(path);
		if (!e)
			return 0;
		if (e == -EACCES)
			err = e; /* found but not runnable, keep looking */
		if (!p[n])
			break;
	}
	return err;
}

int mt_target__pidfd(pid_t pid)
{
	int fd = syscall(SYS_pidfd_open, pid, 0);

	return fd < 0 ? -errno : fd;
}

int mt_target__spawn(char **argv, const char *path, struct mt_child *c)
{
	int go[2] = { -1, -1 }, er[2] = { -1, -1 }, err;

	memset(c, 0, sizeof(*c));
	if (pipe2(go, O_CLOEXEC) || pipe2(er, O_CLOEXEC)) {
		err = -errno;
		goto fail;
	}
	c->pid = fork();
	if (c->pid < 0) {
		err = -errno;
		goto fail;
	}
	if (c->pid == 0) {
		char x;
		sigset_t none;

		/* memtrace blocks signals for its signalfd; the command must not */
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		close(go[1]);
		close(er[0]);
		if (read(go[0], &x, 1) != 1)
			_exit(127);
		execv(path, argv);
		err = errno;
		if (write(er[1], &err, sizeof(err)) < 0)
			_exit(127);
		_exit(127);
	}
	close(go[0]);
	close(er[1]);
	c->go_fd = go[1];
	c->err_fd = er[0];
	/* exit, fork and exec stops: memtrace follows the command's processes
	 * and hooks each before it runs; signals and stops pass through */
	if (ptrace(PTRACE_SEIZE, c->pid, 0,
		   PTRACE_O_TRACEEXIT | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK |
			   PTRACE_O_TRACEEXEC)) {
		err = -errno;
		kill(c->pid, SIGKILL);
		waitpid(c->pid, NULL, 0);
		close(c->go_fd);
		close(c->err_fd);
		return err;
	}
	return 0;
fail:
	for (int i = 0; i < 2; i++) {
		if (go[i] >= 0)
			close(go[i]);
		if (er[i] >= 0)
			close(er[i]);
	}
	return err;
}

int mt_target__release(struct mt_child *c)
{
	int e = 0;
	ssize_t n;

	n = write(c->go_fd, "x", 1);
	close(c->go_fd);
	if (n != 1) {
		kill(c->pid, SIGKILL);
	}
	do {
		n = read(c->err_fd, &e, sizeof(e));
	} while (n < 0 && errno == EINTR);
	close(c->err_fd);
	if (n == 0)
		return 0; /* closed by a successful exec */
	/* the child failed to exec and exits at once: reap it */
	mt_target__reap(c);
	return n == sizeof(e) ? -e : -EIO;
}

void mt_target__reap(struct mt_child *c)
{
	int st;

	while (!c->exited) {
		if (waitpid(c->pid, &st, __WALL) < 0) {
			if (errno == EINTR)
				continue;
			c->exited = true; /* not ours any more: nothing to wait for */
			return;
		}
		if (WIFEXITED(st) || WIFSIGNALED(st)) {
			c->status = st;
			c->exited = true;
		} else if (WIFSTOPPED(st)) {
			/* exit stop or any other stop: let it run on to its end */
			int sig = st >> 8 == (SIGTRAP | (PTRACE_EVENT_EXIT << 8)) ||
				  st >> 16 ? 0 : WSTOPSIG(st);

			ptrace(PTRACE_CONT, c->pid, 0, sig);
		}
	}
}

int mt_target__poll(struct mt_child *c, struct mt_child_ev *ev)
{
	unsigned long msg;
	int st;
	pid_t r;

	memset(ev, 0, sizeof(*ev));
	r = waitpid(-1, &st, WNOHANG | __WALL);
	if (r <= 0)
		return 0;
	ev->pid = r;
	if (WIFEXITED(st) || WIFSIGNALED(st)) {
		if (r == c->pid) {
			c->status = st;
			c->exited = true;
		}
		ev->type = MT_CHILD_EXITED;
		return 1;
	}
	if (!WIFSTOPPED(st))
		return 1;
	switch (st >> 16) {
	case PTRACE_EVENT_EXIT:
		ev->type = MT_CHILD_EXITING;
		return 1;
	case PTRACE_EVENT_FORK:
	case PTRACE_EVENT_VFORK:
		if (ptrace(PTRACE_GETEVENTMSG, r, 0, &msg)) {
			ptrace(PTRACE_CONT, r, 0, 0);
			return 1;
		}
		ev->newpid = (pid_t)msg;
		ev->type = MT_CHILD_FORKED;
		return 1;
	case PTRACE_EVENT_EXEC:
		ev->type = MT_CHILD_EXECED;
		return 1;
	case PTRACE_EVENT_STOP:
		/* a new process's first stop, a group stop (SIGSTOP, SIGTSTP), or
		 * a stopped process noticing a signal: the caller tells them
		 * apart (a group stop: mt_target__listen) */
		ev->type = MT_CHILD_NEWBORN;
		ev->stopsig = WSTOPSIG(st);
		return 1;
	}
	/* signal-delivery stop: deliver the signal as if we were not here */
	ptrace(PTRACE_CONT, r, 0, WSTOPSIG(st));
	return 1;
}

void mt_target__cont(pid_t pid)
{
	ptrace(PTRACE_CONT, pid, 0, 0);
}

void mt_target__listen(pid_t pid)
{
	ptrace(PTRACE_LISTEN, pid, 0, 0);
}

int mt_target__exit_code(const struct mt_child *c)
{
	if (WIFEXITED(c->status))
		return WEXITSTATUS(c->status);
	if (WIFSIGNALED(c->status))
		return 128 + WTERMSIG(c->status);
	return 1;
}
