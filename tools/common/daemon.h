/* SPDX-License-Identifier: MIT */
/*
 * What vhu-net and vhu-blk share as daemons (vhost-user.rst "Backend program conventions"):
 * signals through a signalfd, the SIGBUS and eventfd guards, and the connection of one port:
 * a socket path it listens on or connects to (--client, reconnecting), or an inherited --fd
 * that is either listening or connected, with a second front-end refused. The daemons keep
 * their own event loops (vhu-net polls rings in its loop, vhu-blk has queue threads); each
 * port's fds go into them through this object.
 */
#ifndef VHU_TOOLS_DAEMON_H
#define VHU_TOOLS_DAEMON_H

#include <stdbool.h>
#include <stdint.h>

#include <vhu/vhu.h>

#include "listen.h"

/* Blocks SIGTERM, SIGINT, SIGUSR1 and SIGHUP, ignores SIGPIPE, and returns a non-blocking
 * signalfd for them, or -errno. */
int daemon_signals_open(void);

enum daemon_sig {
	DAEMON_SIG_QUIT = 1,  /* SIGTERM or SIGINT: exit cleanly */
	DAEMON_SIG_STATS = 2, /* SIGUSR1: print the counters */
};
/* Reads every pending signal; returns the DAEMON_SIG_* bits they ask for. SIGHUP asks for
 * nothing: a daemon started from a terminal outlives it. */
unsigned daemon_signals_read(int sfd);

/* Installs the SIGBUS guard (a front-end that shrinks its memory file loses its own
 * connection, not the process) and the eventfd guard on SIGRTMIN (one that makes its call
 * eventfd blocking and fills it loses its connection; the notifying thread lives on). A guard
 * that cannot be installed is reported on stderr, prefixed with prog. */
void daemon_guards_install(const char *prog);

/* The connection of one port. */
struct dconn {
	const char *path; /* --socket-path, or NULL with --fd */
	bool client;	  /* connect to path, again after each disconnect */
	int lfd;	  /* listening socket, or -1 */
	int fd;		  /* the connection, or -1 */
	bool fd_once;	  /* --fd with a connected socket: nothing to wait for once it closes */
	bool unlink;	  /* path is ours: remove it when done */
	uint64_t next_connect_ms;
	struct vhu_backend *be;
	/* Set by the caller before dconn_open: the epoll set the listening socket and the
	 * connection go into, with these as their epoll_data.ptr, and the log. */
	int ep;
	void *ev_listen, *ev_conn;
	void (*log)(void *opaque, int level, const char *msg);
	void *log_opaque;
};

/*
 * Sets c up on be: with fd >= 0, an inherited socket, listening or connected (SO_ACCEPTCONN
 * tells); else path, listened on with o's mode and group, or with client connected to by
 * dconn_try_connect. Returns 0 or -errno; -EADDRINUSE when another back-end listens on path.
 */
int dconn_open(struct dconn *c, struct vhu_backend *be, const char *path, bool client, int fd,
	       const struct listen_opts *o);
/* The listening socket is readable: accepts; a second front-end while one is connected is
 * refused. */
void dconn_accept(struct dconn *c);
/* --client: connects when due (once a second). true while not connected. */
bool dconn_try_connect(struct dconn *c, uint64_t now_ms);
/* The connection is readable: one dispatch step. 0 while it lives, or -errno once it closed
 * (it is detached then). */
int dconn_dispatch(struct dconn *c);
/* Detaches the connection (if any). */
void dconn_drop(struct dconn *c);
/* Whether the daemon has nothing more to serve: the --fd connection is gone. */
bool dconn_done(const struct dconn *c);
/* Drops the connection, closes the listener and removes its path. */
void dconn_close(struct dconn *c);

uint64_t daemon_now_ms(void);

/* Whether argv holds --print-capabilities. vhost-user.rst "Backend program conventions":
 * "Other options and arguments should be ignored", so it is looked for before parsing. */
bool daemon_wants_capabilities(int argc, char **argv);

#endif
