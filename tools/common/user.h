/* SPDX-License-Identifier: MIT */
/*
 * --user USER[:GROUP] for the daemons: what needs root (binding sockets, creating taps and
 * VDUSE devices, opening the image) is done first, then the process becomes USER for good,
 * before it reads a byte from a front-end (as QEMU's -run-with user= and ovs-vswitchd's
 * --user do).
 */
#ifndef VHU_TOOLS_USER_H
#define VHU_TOOLS_USER_H

#include <stdbool.h>
#include <sys/types.h>

#include "opt.h"

struct daemon_user {
	bool set;
	bool groups; /* the supplementary groups from the group database (name known) */
	uid_t uid;
	gid_t gid;
	char name[64];
};

/*
 * USER is a name or a number; GROUP (a name or a number) defaults to USER's primary group. A
 * number with no passwd entry needs GROUP and gets no supplementary groups. 0, or -EINVAL
 * when USER or GROUP is unknown or malformed, or USER is root.
 */
int parse_user(const char *arg, struct daemon_user *u);
/* The option parser: struct daemon_user. */
int opt_user(const struct opt *o, const char *arg);

/* Before anything is set up: a process that is not root may only "become" itself (its real,
 * effective and saved ids already USER's and GROUP's). 0, or -EPERM. */
int daemon_user_check(const struct daemon_user *u);
/* At start-up, before any thread: no_new_privs for the whole process when u->set (threads
 * inherit it; the daemons never exec). 0 or -errno. */
int daemon_user_early(const struct daemon_user *u);

/*
 * Becomes u (nothing when !u->set): as root, the supplementary groups, then the real,
 * effective and saved group and user ids, which takes every capability away; started as USER,
 * its file or ambient capabilities are dropped. Capabilities are per thread: it must be called
 * while the process has one thread (the daemons start theirs after it), else -EBUSY. Then checks
 * every id, that root cannot be taken back and that no capability is left, and sets
 * no_new_privs. 0, or -errno (the process must not go on: it may be half-way).
 */
int daemon_drop_privileges(const struct daemon_user *u);

#endif
