/* SPDX-License-Identifier: MIT */
/* The back-end's end of the BACKEND_REQ channel: see breq.h for why nothing here waits. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "breq.h"
#include "sock.h"
#include "util.h"

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void breq_init(struct breq *c, const struct logger *lg)
{
	memset(c, 0, sizeof(*c));
	pthread_mutex_init(&c->lock, NULL);
	c->fd = -1;
	c->lg = lg;
	c->ack_timeout_ms = BREQ_ACK_TIMEOUT_MS;
	msg_init(&c->rx, 0, 0, 0);
}

static void close_locked(struct breq *c)
{
	close_fd(&c->fd);
	msg_close_fds(&c->rx);
	c->rx_got = 0;
	c->npending = 0;
}

void breq_destroy(struct breq *c)
{
	close_locked(c);
	pthread_mutex_destroy(&c->lock);
}

void breq_close(struct breq *c)
{
	pthread_mutex_lock(&c->lock);
	close_locked(c);
	pthread_mutex_unlock(&c->lock);
}

int breq_fd(struct breq *c)
{
	pthread_mutex_lock(&c->lock);
	int fd = c->fd;
	pthread_mutex_unlock(&c->lock);
	return fd;
}

/* "VHOST_USER_SET_BACKEND_REQ_FD": "Set the socket file descriptor for back-end initiated
 * requests." A socket, then: an AF_UNIX stream one, as the main connection (a pipe or a file
 * could not carry the acks back, a datagram socket would cut messages). */
int breq_set_fd(struct breq *c, int fd)
{
	int domain = 0, type = 0, fl;
	socklen_t l = sizeof(int);

	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &l) < 0) {
		log_err(c->lg, "SET_BACKEND_REQ_FD: the fd is not a socket");
		return -ENOTSOCK;
	}
	l = sizeof(int);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l) < 0 || domain != AF_UNIX ||
	    type != SOCK_STREAM) {
		log_err(c->lg,
			"SET_BACKEND_REQ_FD: socket of family %d type %d, not an AF_UNIX stream "
			"socket",
			domain, type);
		return -ENOTSOCK;
	}
	/* On the file description, which the front-end may share: the back-end never waits on
	 * it either way, since its sends are MSG_DONTWAIT and its reads non-blocking. */
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		int ret = -errno;
		log_err(c->lg, "SET_BACKEND_REQ_FD: cannot make it non-blocking: %s",
			strerror(-ret));
		return ret;
	}
	pthread_mutex_lock(&c->lock);
	if (c->fd >= 0)
		log_info(c->lg, "SET_BACKEND_REQ_FD: a new back-end channel replaces the old one");
	close_locked(c);
	c->fd = fd;
	pthread_mutex_unlock(&c->lock);
	return 0;
}

static void drop_locked(struct breq *c, const char *why)
{
	log_err(c->lg, "back-end channel dropped: %s", why);
	close_locked(c);
}

int breq_send(struct breq *c, uint32_t request, const void *p, uint32_t size, uint64_t features,
	      uint64_t protocol_features)
{
	const struct msg_rule *r = msg_backend_rule(request);
	bool ack = has_bit(protocol_features, VHU_PROTO_F_REPLY_ACK);
	char why[160];
	struct msg m;
	int ret;

	if (!r || r->reply != REPLY_ACK_ONLY || r->fds != FDS_NONE || size > MSG_MAX_PAYLOAD)
		return -ENOTSUP;
	msg_init(&m, request, ack ? VHU_FLAG_NEED_REPLY : 0, size);
	if (size)
		memcpy(m.p.raw, p, size);
	/* What the front-end will check, checked before it goes: the row's size and gate. */
	ret = msg_check_backend(&m, features, protocol_features, why, sizeof(why));
	if (ret) {
		log_warn(c->lg, "not sent: %s", why);
		return ret == -ENOPROTOOPT ? ret : -EINVAL;
	}
	pthread_mutex_lock(&c->lock);
	if (c->fd < 0) {
		ret = -ENOTCONN;
	} else if (ack && c->npending == BREQ_MAX_PENDING) {
		log_err(c->lg, "%s not sent: the front-end owes %u acks already", r->name,
			c->npending);
		ret = -EBUSY;
	} else {
		ret = sock_send_nowait(c->fd, &m, NULL, 0);
		if (ret == -EAGAIN) {
			/* Perhaps half sent: the channel is out of step for good. */
			drop_locked(c, "socket buffer full, the front-end does not read it");
			ret = -ENOBUFS;
		} else if (ret) {
			snprintf(why, sizeof(why), "sending %s: %s", r->name, strerror(-ret));
			drop_locked(c, why);
		} else {
			c->sent++;
			if (ack) {
				c->pending[c->npending].request = request;
				c->pending[c->npending].deadline_ms = now_ms() + c->ack_timeout_ms;
				c->npending++;
			}
			log_debug(c->lg, "-> %s%s", r->name, ack ? " (ack wanted)" : "");
		}
	}
	pthread_mutex_unlock(&c->lock);
	return ret;
}

/* One complete message in c->rx: the ack to the oldest request owed. */
static int take_ack_locked(struct breq *c)
{
	char why[200];
	int ret;

	if (!c->npending) {
		snprintf(why, sizeof(why), "unexpected message (request %u, flags 0x%x)",
			 c->rx.hdr.request, c->rx.hdr.flags);
		goto bad;
	}
	ret = msg_check_ack(&c->rx, c->pending[0].request, why, sizeof(why));
	if (ret)
		goto bad;
	if (c->rx.p.u64) {
		c->failed++;
		log_warn(c->lg, "the front-end failed %s (ack %llu)",
			 vhu_backend_request_name(c->pending[0].request),
			 (unsigned long long)c->rx.p.u64);
	} else {
		log_debug(c->lg, "<- ack to %s", vhu_backend_request_name(c->pending[0].request));
	}
	c->acked++;
	c->npending--;
	memmove(&c->pending[0], &c->pending[1], c->npending * sizeof(c->pending[0]));
	return 0;
bad:
	msg_close_fds(&c->rx);
	drop_locked(c, why);
	return -EPROTO;
}

int breq_poll(struct breq *c)
{
	int ret = 0;

	pthread_mutex_lock(&c->lock);
	while (c->fd >= 0) {
		ret = sock_recv_some(c->fd, &c->rx, &c->rx_got, true);
		if (ret == 0)
			break;
		if (ret == -ECONNRESET && !c->npending) {
			/* Nothing owed: a front-end going away closes it first (QEMU). */
			log_info(c->lg, "the front-end closed the back-end channel");
			close_locked(c);
			goto out;
		}
		if (ret < 0) {
			char why[96];
			snprintf(why, sizeof(why), "%s",
				 ret == -ECONNRESET ? "the front-end closed it with acks owed"
						    : "malformed message from the front-end");
			drop_locked(c, why);
			ret = ret == -ECONNRESET ? ret : -EPROTO;
			goto out;
		}
		c->rx_got = 0;
		ret = take_ack_locked(c);
		if (ret)
			goto out;
	}
	if (c->npending && now_ms() >= c->pending[0].deadline_ms) {
		char why[128];
		snprintf(why, sizeof(why), "no ack to %s within %u ms",
			 vhu_backend_request_name(c->pending[0].request), c->ack_timeout_ms);
		drop_locked(c, why);
		ret = -ETIMEDOUT;
		goto out;
	}
	ret = (int)c->npending;
out:
	pthread_mutex_unlock(&c->lock);
	return ret;
}
