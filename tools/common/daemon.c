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
	}
	return r;
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

static void ep_add(struct dconn *c, int fd, void *ev)
{
	struct epoll_event e = { .events = EPOLLIN, .data.ptr = ev };

	if (epoll_ctl(c->ep, EPOLL_CTL_ADD, fd, &e) < 0)
		dlog(c, VHU_LOG_ERR, "epoll_ctl failed: the socket is not watched");
}

static int attach(struct dconn *c, int fd)
{
	int ret = vhu_backend_attach(c->be, fd);

	if (ret)
		return ret;
	c->fd = fd;
	ep_add(c, fd, c->ev_conn);
	return 0;
}

int dconn_open(struct dconn *c, struct vhu_backend *be, const char *path, bool client, int fd,
	       const struct listen_opts *o)
{
	int acc = 0;
	socklen_t sl = sizeof(acc);

	c->path = path;
	c->client = client;
	c->lfd = c->fd = -1;
	c->be = be;
	if (fd >= 0) {
		if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &sl) < 0)
			return -errno;
		if (acc) {
			c->lfd = fd;
			ep_add(c, fd, c->ev_listen);
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
	ep_add(c, c->lfd, c->ev_listen);
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
	if (now_ms < c->next_connect_ms)
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

void dconn_drop(struct dconn *c)
{
	if (c->fd < 0)
		return;
	epoll_ctl(c->ep, EPOLL_CTL_DEL, c->fd, NULL);
	vhu_backend_detach(c->be);
	c->fd = -1;
	c->next_connect_ms = 0;
}

bool dconn_done(const struct dconn *c)
{
	return c->fd < 0 && c->lfd < 0 && !c->client;
}

void dconn_close(struct dconn *c)
{
	dconn_drop(c);
	if (c->lfd >= 0) {
		epoll_ctl(c->ep, EPOLL_CTL_DEL, c->lfd, NULL);
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
