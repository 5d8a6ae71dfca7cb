/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"

int daemon_signals_open(void)
{
	sigset_t mask;
	int sfd;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGUSR1);
	sigaddset(&mask, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		return -errno;
	signal(SIGPIPE, SIG_IGN);
	sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	return sfd < 0 ? -errno : sfd;
}

unsigned daemon_signals_read(int sfd)
{
	struct signalfd_siginfo si;
	unsigned r = 0;

	while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGUSR1)
			r |= DAEMON_SIG_STATS;
		else if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
			r |= DAEMON_SIG_QUIT;
		else if (si.ssi_signo == SIGHUP)
			r |= DAEMON_SIG_HUP;
	}
	return r;
}

void daemon_signals_block(void)
{
	sigset_t mask;

	sigemptyset(&mask);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGUSR1);
	sigprocmask(SIG_BLOCK, &mask, NULL);
}

void daemon_guards_install(const char *prog)
{
	int ret = vhu_eventfd_guard_install(SIGRTMIN);

	if (ret)
		fprintf(stderr,
			"%s: no eventfd guard (%s): a front-end can block the notifying thread\n",
			prog, strerror(-ret));
	ret = vhu_sigbus_guard_install();
	if (ret)
		fprintf(stderr,
			"%s: no SIGBUS guard (%s): a front-end that shrinks its memory can stop "
			"the process\n",
			prog, strerror(-ret));
}

int daemon_user_prepare(const char *prog, const struct daemon_user *u, struct listen_opts *lo)
{
	int ret;

	if (!u->set)
		return 0;
	if (daemon_user_check(u)) {
		fprintf(stderr, "%s: --user %s: only root can become another user\n", prog,
			u->name);
		return 2;
	}
	ret = daemon_user_early(u);
	if (ret) {
		fprintf(stderr, "%s: --user: %s\n", prog, strerror(-ret));
		return 1;
	}
	lo->uid = u->uid;
	lo->user_gid = u->gid;
	return 0;
}

int daemon_setup_done(const char *prog, const struct daemon_user *u)
{
	int ret = daemon_drop_privileges(u);

	if (ret) {
		fprintf(stderr, "%s: --user %s: %s\n", prog, u->name, strerror(-ret));
		return 1;
	}
	if (u->set)
		fprintf(stderr, "%s: running as uid %u gid %u (--user)\n", prog, (unsigned)u->uid,
			(unsigned)u->gid);
	/* Capabilities are per thread: the eventfd guard's starts after the drop. Nothing maps a
	 * front-end's memory or writes its eventfds before the loop runs. */
	daemon_guards_install(prog);
	return 0;
}

static void on_signal(struct dhandler *h)
{
	struct dloop *l = DAEMON_CONTAINER_OF(h, struct dloop, sig);
	unsigned sig = daemon_signals_read(l->sfd);

	if ((sig & DAEMON_SIG_STATS) && l->stats)
		l->stats(l->dev);
	if ((sig & DAEMON_SIG_HUP) && l->hup)
		l->hup(l->dev);
	if (sig & DAEMON_SIG_QUIT)
		l->quit = true;
}

int dloop_init(struct dloop *l)
{
	int ret;

	l->quit = false;
	l->sig.fn = on_signal;
	l->ep = epoll_create1(EPOLL_CLOEXEC);
	if (l->ep < 0)
		return -errno;
	l->sfd = daemon_signals_open();
	if (l->sfd < 0) {
		ret = l->sfd;
		goto close_ep;
	}
	ret = dloop_add(l, l->sfd, &l->sig);
	if (ret)
		goto close_sfd;
	return 0;
close_sfd:
	close(l->sfd);
close_ep:
	close(l->ep);
	return ret;
}

int dloop_add(struct dloop *l, int fd, struct dhandler *h)
{
	struct epoll_event e = { .events = EPOLLIN, .data.ptr = h };

	return epoll_ctl(l->ep, EPOLL_CTL_ADD, fd, &e) < 0 ? -errno : 0;
}

void dloop_del(struct dloop *l, int fd)
{
	if (fd >= 0)
		epoll_ctl(l->ep, EPOLL_CTL_DEL, fd, NULL);
}

int dloop_run(struct dloop *l)
{
	struct epoll_event evs[64];

	while (!l->quit) {
		int timeout = l->idle ? l->idle(l->dev) : -1;
		if (timeout == DLOOP_AGAIN)
			continue;
		int n = epoll_wait(l->ep, evs, 64, timeout);
		if (n < 0 && errno != EINTR)
			return -errno;
		for (int i = 0; i < n && !l->quit; i++) {
			struct dhandler *h = evs[i].data.ptr;
			h->fn(h);
		}
		if (l->after)
			l->after(l->dev);
	}
	return 0;
}

void dloop_fini(struct dloop *l)
{
	close(l->sfd);
	close(l->ep);
}

uint64_t daemon_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void dlog(struct dconn *c, int level, const char *msg)
{
	if (c->log)
		c->log(c->log_opaque, level, msg);
}

static void ep_add(struct dconn *c, int fd, struct dhandler *h)
{
	if (dloop_add(c->loop, fd, h) < 0)
		dlog(c, VHU_LOG_ERR, "epoll_ctl failed: the socket is not watched");
}

static void on_listen(struct dhandler *h)
{
	dconn_accept(DAEMON_CONTAINER_OF(h, struct dconn, h_listen));
}

static void on_conn(struct dhandler *h)
{
	struct dconn *c = DAEMON_CONTAINER_OF(h, struct dconn, h_conn);

	if (c->fd < 0)
		return;	   /* dropped earlier in this batch of events */
	dconn_dispatch(c); /* a close calls c->closed (dconn_drop) */
}

/* Notification writes of this back-end the eventfd guard had to interrupt, so far. */
static uint64_t be_stalls(struct vhu_backend *be)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < vhu_backend_nvqs(be); i++) {
		struct vhu_virtq_stats st;
		vhu_virtq_stats(vhu_backend_virtq(be, i), &st);
		n += st.stalls;
	}
	return n;
}

#define BACKOFF_FIRST_MS 250
#define BACKOFF_MAX_MS	 8000
#define BACKOFF_RESET_MS 10000 /* a connection this long without a stall forgives */

static int attach(struct dconn *c, int fd)
{
	int ret = vhu_backend_attach(c->be, fd);

	if (ret)
		return ret;
	c->stalls_seen = be_stalls(c->be);
	c->attached_ms = daemon_now_ms();
	c->fd = fd;
	ep_add(c, fd, &c->h_conn);
	return 0;
}

int dconn_open(struct dconn *c, struct vhu_backend *be, const char *path, bool client, int fd,
	       const struct listen_opts *o)
{
	int acc = 0;
	socklen_t sl = sizeof(acc);

	c->h_listen.fn = on_listen;
	c->h_conn.fn = on_conn;
	c->path = path;
	c->client = client;
	c->lfd = c->fd = -1;
	c->be = be;
	if (fd >= 0) {
		if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &sl) < 0)
			return -errno;
		if (acc) {
			c->lfd = fd;
			ep_add(c, fd, &c->h_listen);
			return 0;
		}
		c->fd_once = true;
		return attach(c, fd);
	}
	if (client)
		return 0; /* dconn_try_connect connects */
	c->lfd = listen_path(path, o);
	if (c->lfd < 0)
		return c->lfd;
	c->unlink = true;
	ep_add(c, c->lfd, &c->h_listen);
	return 0;
}

void dconn_accept(struct dconn *c)
{
	int fd = vhu_accept(c->lfd);

	if (fd < 0)
		return;
	if (c->fd >= 0) {
		dlog(c, VHU_LOG_WARN, "second front-end refused: one connection per port");
		close(fd);
		return;
	}
	if (daemon_now_ms() < c->refuse_until_ms) {
		close(fd); /* back-off (dconn_drop): not logged, a loop of attempts would flood */
		return;
	}
	if (attach(c, fd)) {
		close(fd);
		return;
	}
	dlog(c, VHU_LOG_INFO, "front-end connected");
}

bool dconn_try_connect(struct dconn *c, uint64_t now_ms)
{
	int fd;

	if (!c->client || c->fd >= 0)
		return false;
	if (now_ms < c->next_connect_ms || now_ms < c->refuse_until_ms)
		return true;
	fd = vhu_connect(c->path, 0);
	if (fd >= 0 && attach(c, fd) == 0) {
		dlog(c, VHU_LOG_INFO, "connected to front-end");
		return false;
	}
	if (fd >= 0)
		close(fd);
	c->next_connect_ms = now_ms + 1000;
	return true;
}

/* Dispatch never blocks: it handles at most one message and returns 0 while a message is
 * still incomplete, so a slow front-end costs its port a buffer and the others nothing. */
int dconn_dispatch(struct dconn *c)
{
	int ret;

	if (c->fd < 0)
		return -ENOTCONN;
	ret = vhu_backend_dispatch(c->be);
	if (ret == 0)
		return 0;
	dlog(c, ret == -ECONNRESET ? VHU_LOG_INFO : VHU_LOG_ERR, "connection closed");
	dconn_drop(c);
	return ret;
}

/* Before a connection goes: did its front-end block a notification? Then the port pauses. */
static void backoff_check(struct dconn *c)
{
	uint64_t now = daemon_now_ms();

	if (be_stalls(c->be) == c->stalls_seen) {
		if (now - c->attached_ms >= BACKOFF_RESET_MS)
			c->backoff_ms = 0;
		return;
	}
	c->backoff_ms = c->backoff_ms ? c->backoff_ms * 2 : BACKOFF_FIRST_MS;
	if (c->backoff_ms > BACKOFF_MAX_MS)
		c->backoff_ms = BACKOFF_MAX_MS;
	c->refuse_until_ms = now + c->backoff_ms;
	char msg[160];
	snprintf(msg, sizeof(msg),
		 "the front-end blocked a notification: this port takes no connection for %u ms",
		 c->backoff_ms);
	dlog(c, VHU_LOG_WARN, msg);
}

void dconn_drop(struct dconn *c)
{
	if (c->fd < 0)
		return;
	backoff_check(c);
	dloop_del(c->loop, c->fd);
	vhu_backend_detach(c->be);
	c->fd = -1;
	c->next_connect_ms = 0;
	if (c->closed)
		c->closed(c);
}

bool dconn_done(const struct dconn *c)
{
	return c->fd < 0 && c->lfd < 0 && !c->client;
}

void dconn_close(struct dconn *c)
{
	dconn_drop(c);
	if (c->lfd >= 0) {
		dloop_del(c->loop, c->lfd);
		close(c->lfd);
		if (c->unlink)
			unlink(c->path);
	}
	c->lfd = -1;
}

bool daemon_wants_capabilities(int argc, char **argv)
{
	for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
		if (!strcmp(argv[i], "--print-capabilities"))
			return true;
	return false;
}
