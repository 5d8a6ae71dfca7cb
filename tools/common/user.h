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
 * when USER or GROUP is unknown or malformed.
 */
int parse_user(const char *arg, struct daemon_user *u);
/* The option parser: struct daemon_user. */
int opt_user(const struct opt *o, const char *arg);

/*
 * Becomes u (nothing when !u->set): supplementary groups, then the real, effective and saved
 * group and user ids, which takes every capability away; then checks that root cannot be
 * taken back and sets no_new_privs. A process that is not root may only "become" itself. 0,
 * or -errno (the process must not go on: it may be half-way).
 */
int daemon_drop_privileges(const struct daemon_user *u);

#endif
