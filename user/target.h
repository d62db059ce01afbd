/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Traced processes: checking PIDs, running a command, /proc facts. */
#ifndef MT_TARGET_H
#define MT_TARGET_H

#include <stddef.h>
#include <sys/types.h>
#include "report.h"

/* 0, -ESRCH (no such process) or -errno. */
int mt_target__check_pid(pid_t pid);
/* The process (thread group) a thread ID belongs to, or -errno. */
pid_t mt_target__tgid(pid_t tid);
/* comm and exe of a live process; fields untouched where unreadable. */
void mt_target__proc_info(pid_t pid, struct mt_proc *p);
/* A list of file paths, each file (device, inode) once. */
struct mt_paths {
	char **v;
	size_t n;
};

void mt_paths__clear(struct mt_paths *p);
/* Add path unless its file is there already (/lib is /usr/lib, ...): 1
 * added, 0 there already, or -errno (-ENOENT: no such file). */
int mt_paths__add(struct mt_paths *p, const char *path);
/*
 * Every executable file pid maps (its program, libraries), as paths that
 * open the mapped file itself (/proc/PID/map_files/START-END: nothing is
 * resolved in the process's mount namespace). 0 or -errno.
 */
int mt_target__mapped_files(pid_t pid, struct mt_paths *out);
/*
 * What `exe` will map when run, as the dynamic loader finds it: exe,
 * LD_PRELOAD, then DT_NEEDED recursively (RUNPATH/RPATH with $ORIGIN,
 * LD_LIBRARY_PATH, the system library directories). 0 or -errno.
 */
int mt_target__dependencies(const char *exe, struct mt_paths *out);
/*
 * A forked child of a process that hit nop5 sites in the file lib at the
 * file offsets offs (--preload): give back to the kernel's int3 those of
 * its copies that call the parent's trampoline, which the child does not
 * have (mt_probesite__orphan_call). pid must not run meanwhile (stopped,
 * or not yet past its first stop). The number of sites fixed, or -errno.
 */
int mt_target__rearm_sites(pid_t pid, const char *lib, const uint64_t *offs, size_t n);
/* Resolve COMMAND like execvp does. 0, -ENOENT or -EACCES. */
int mt_target__resolve_cmd(const char *cmd, char *path, size_t len);
/* A pidfd that becomes readable when pid exits, or -errno. */
int mt_target__pidfd(pid_t pid);

/*
 * A command started by memtrace. It waits before exec until released, so
 * probes attach first; it is ptrace-seized with an exit stop only, so its
 * mappings can be read after its last allocation and before it is gone.
 */
struct mt_child {
	pid_t pid;
	int go_fd;		/* write end: release the child */
	int err_fd;		/* read end: errno of a failed exec, or EOF */
	int status;		/* wait status once exited */
	bool exited;
};

enum mt_child_event {
	MT_CHILD_NONE,
	MT_CHILD_EXITING,	/* pid stopped at exit, maps readable: resume it */
	MT_CHILD_EXITED,	/* pid gone (the command: status valid) */
	MT_CHILD_FORKED,	/* pid stopped having forked newpid: resume it */
	MT_CHILD_NEWBORN,	/* pid, a new process, stopped before it runs */
	MT_CHILD_EXECED,	/* pid stopped after exec, new image mapped: resume it */
};

/* The command and every process it starts are traced (ptrace-seized:
 * fork, exec and exit stops; signals and job control pass through). */
struct mt_child_ev {
	enum mt_child_event type;
	pid_t pid;
	pid_t newpid;		/* MT_CHILD_FORKED */
	int stopsig;		/* MT_CHILD_NEWBORN: the group stop's signal; SIGTRAP
				 * for a new process's first stop, and once no
				 * group stop holds (SIGCONT ended it) */
};

int mt_target__spawn(char **argv, const char *path, struct mt_child *c);
/* Let the child exec. 0, or -errno from the failed exec (child reaped). */
int mt_target__release(struct mt_child *c);
/* Handle one pending state change of the command or a descendant
 * (non-blocking). Events that leave a process stopped are returned for
 * the caller to act on, then mt_target__cont. */
int mt_target__poll(struct mt_child *c, struct mt_child_ev *ev); /* 0: nothing pending */
/* Resume a stopped descendant; keep one in a group stop stopped. */
void mt_target__cont(pid_t pid);
void mt_target__listen(pid_t pid);
/* Block until the child is gone, letting it through any stop. */
void mt_target__reap(struct mt_child *c);
/* Exit code to pass through: status, or 128 + signal. */
int mt_target__exit_code(const struct mt_child *c);

#endif
