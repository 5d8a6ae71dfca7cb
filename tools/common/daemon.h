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
#include <stddef.h>
#include <stdint.h>

#include <vhu/vhu.h>

#include "listen.h"
#include "user.h"

#define DAEMON_CONTAINER_OF(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* An fd's reader in the loop: the loop calls fn when the fd is readable (level-triggered). A
 * device embeds one per fd and finds itself with DAEMON_CONTAINER_OF. */
struct dhandler {
	void (*fn)(struct dhandler *h);
};

#define DLOOP_AGAIN (-2) /* from idle: poll again at once, without looking at the fds */

/*
 * The event loop both daemons run: an epoll set of handlers and the signalfd (SIGTERM/SIGINT
 * end the loop, SIGUSR1 calls stats, SIGHUP nothing). The device's hooks: idle before each
 * wait (its own polling, reconnects: returns the wait's timeout in ms, -1 for none, or
 * DLOOP_AGAIN), after once each batch of events is handled.
 */
struct dloop {
	int ep, sfd;
	bool quit;
	struct dhandler sig;
	void *dev;
	void (*stats)(void *dev);
	int (*idle)(void *dev);
	void (*after)(void *dev);
	void (*hup)(void *dev); /* SIGHUP (optional; without it SIGHUP does nothing) */
};

/* Creates the epoll set and the signalfd (blocking the signals). 0 or -errno. A signal that
 * came since daemon_signals_block() waits in the signalfd. */
int dloop_init(struct dloop *l);
/* Watches fd for input with h. 0 or -errno (logged by the caller). */
int dloop_add(struct dloop *l, int fd, struct dhandler *h);
void dloop_del(struct dloop *l, int fd);
/* Runs until a signal (or a handler) sets quit. 0, or -errno when epoll fails. */
int dloop_run(struct dloop *l);
void dloop_fini(struct dloop *l);

/* Blocks SIGTERM, SIGINT, SIGUSR1 and SIGHUP, ignores SIGPIPE, and returns a non-blocking
 * signalfd for them, or -errno. */
/* Blocks SIGHUP and SIGUSR1 alone, at start-up before any thread: until the loop reads them,
 * they wait instead of killing the process (their default action). */
void daemon_signals_block(void);
int daemon_signals_open(void);

enum daemon_sig {
	DAEMON_SIG_QUIT = 1,  /* SIGTERM or SIGINT: exit cleanly */
	DAEMON_SIG_STATS = 2, /* SIGUSR1: print the counters */
	DAEMON_SIG_HUP = 4,   /* SIGHUP: the device's hup hook (vhu-blk: re-read the size) */
};
/* Reads every pending signal; returns the DAEMON_SIG_* bits they ask for. SIGHUP never ends
 * the daemon: one started from a terminal outlives it. */
unsigned daemon_signals_read(int sfd);

/* Installs the SIGBUS guard (a front-end that shrinks its memory file loses its own
 * connection, not the process) and the eventfd guard on SIGRTMIN (one that makes its call
 * eventfd blocking and fills it loses its connection; the notifying thread lives on). A guard
 * that cannot be installed is reported on stderr, prefixed with prog. */
void daemon_guards_install(const char *prog);

/*
 * --user (tools/common/user.h) for the daemon prog, after its options are parsed and before
 * anything is set up: a process that is not root must already be USER (else exit status 2),
 * no_new_privs is set while the process has one thread (else 1), and the listening sockets lo
 * describes become USER's. 0 to go on; otherwise the exit status, after saying why.
 */
int daemon_user_prepare(const char *prog, const struct daemon_user *u, struct listen_opts *lo);
/* Everything that needs root is set up: becomes USER (with --user, saying so), then installs
 * the guards, whose thread must not keep what the process gave up. Before the loop reads a
 * byte from a front-end or the kernel. 0, or 1 after saying why. */
int daemon_setup_done(const char *prog, const struct daemon_user *u);

/* The connection of one port. */
struct dconn {
	const char *path; /* --socket-path, or NULL with --fd */
	bool client;	  /* connect to path, again after each disconnect */
	int lfd;	  /* listening socket, or -1 */
	int fd;		  /* the connection, or -1 */
	bool fd_once;	  /* --fd with a connected socket: nothing to wait for once it closes */
	bool unlink;	  /* path is ours: remove it when done */
	uint64_t next_connect_ms;
	/* Back-off after a front-end blocked a notification (the eventfd guard interrupted a
	 * write, which holds the thread for tens of ms): the port takes no connection until
	 * refuse_until_ms, and the pause doubles at each repeat (a front-end that reconnects
	 * to do it again must not starve the other ports). */
	uint64_t refuse_until_ms, attached_ms, stalls_seen;
	unsigned backoff_ms;
	struct vhu_backend *be;
	struct dhandler h_listen, h_conn;
	/* Set by the caller before dconn_open: the loop the listening socket and the connection
	 * go into, the log, and (optional) a hook called once the connection has closed (by the
	 * front-end or dropped by us: dconn_drop). */
	struct dloop *loop;
	void (*log)(void *opaque, int level, const char *msg);
	void *log_opaque;
	void (*closed)(struct dconn *c);
};

/*
 * Sets c up on be: with fd >= 0, an inherited socket, listening or connected (SO_ACCEPTCONN
 * tells); else path, listened on with o's mode and group, or with client connected to by
 * dconn_try_connect. Returns 0 or -errno; -EADDRINUSE when another back-end listens on path.
 */
int dconn_open(struct dconn *c, struct vhu_backend *be, const char *path, bool client, int fd,
	       const struct listen_opts *o);
/* (The loop calls these through h_listen and h_conn.) The listening socket is readable:
 * accepts; a second front-end while one is connected is refused. */
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
