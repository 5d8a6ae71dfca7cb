/* SPDX-License-Identifier: MIT */
/* Shared by the daemons: --socket-mode and --socket-group for a listening socket path. */
#ifndef VHU_TOOLS_LISTEN_H
#define VHU_TOOLS_LISTEN_H

#include <stdbool.h>
#include <sys/types.h>

struct listen_opts {
	int mode;	/* --socket-mode, or -1: 0600, 0660 with a group */
	gid_t gid;	/* --socket-group, or (gid_t)-1: the process's */
	uid_t uid;	/* --user: the socket's owner, or (uid_t)-1: the process's */
	gid_t user_gid; /* --user's group: the socket's without --socket-group */
};

#define LISTEN_OPTS_INIT                                                                           \
	{                                                                                          \
		.mode = -1, .gid = (gid_t)-1, .uid = (uid_t)-1, .user_gid = (gid_t)-1              \
	}

/* Parses an octal mode (0 to 0777). false when malformed. */
bool parse_socket_mode(const char *s, int *mode);
/* Parses a group name or number. false when unknown. */
bool parse_socket_group(const char *s, gid_t *gid);
/*
 * Listens on path with the options' mode, group and owner (--user: the socket as the user
 * would have made it). The socket listens with mode 0600 while its owner and group change,
 * so it is never open wider than asked. Returns the fd or -errno;
 * -EADDRINUSE when another back-end is listening on path.
 */
int listen_path(const char *path, const struct listen_opts *o);

#endif
