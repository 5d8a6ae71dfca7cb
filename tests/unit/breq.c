/* SPDX-License-Identifier: MIT */
/*
 * The back-end channel (src/breq.c): what SET_BACKEND_REQ_FD accepts, requests sent with or
 * without NEED_REPLY, acks collected without waiting (in order, a failure counted), and every
 * way a front-end can misbehave on it dropping the channel: no ack in time, a reply that is
 * not the ack expected, garbage, a closed channel, a channel nobody reads. Nothing waits: each
 * call returns at once whatever the peer does.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "breq.h"
#include "sock.h"
#include "t.h"

T_DEFINE;

#define ACK  (1ull << VHU_PROTO_F_REPLY_ACK)
#define CFG  (1ull << VHU_PROTO_F_CONFIG)
#define BREQ (1ull << VHU_PROTO_F_BACKEND_REQ)

static const struct logger lg = { 0 };
static struct breq c;
static int fe = -1; /* the front-end's end of the channel */

static uint64_t ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A fresh channel: a stream socket pair, one end given to c. */
static int open_chan(void)
{
	int sv[2];

	breq_close(&c);
	if (fe >= 0)
		close(fe);
	ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
	ASSERT_OK(breq_set_fd(&c, sv[1]));
	fe = sv[0];
	return 0;
}

static int send_change(uint64_t pf)
{
	return breq_send(&c, VHU_BREQ_CONFIG_CHANGE_MSG, NULL, 0, 0, pf);
}

static int recv_req(struct msg *m)
{
	sock_set_timeout(fe, 1000);
	return sock_recv(fe, m, false);
}

static int send_ack(uint32_t req, uint64_t v)
{
	struct msg m;

	msg_init(&m, req, VHU_FLAG_REPLY, 8);
	m.p.u64 = v;
	return sock_send(fe, &m, NULL, 0);
}

/* Only an AF_UNIX stream socket is taken; it is made non-blocking. */
static int set_fd_checks(void)
{
	int p[2], sv[2], efd = eventfd(0, EFD_CLOEXEC);

	ASSERT_OK(pipe2(p, O_CLOEXEC));
	ASSERT_EQ(breq_set_fd(&c, p[0]), -ENOTSOCK);
	ASSERT_EQ(breq_set_fd(&c, efd), -ENOTSOCK);
	ASSERT_OK(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv));
	ASSERT_EQ(breq_set_fd(&c, sv[0]), -ENOTSOCK);
	ASSERT_EQ(breq_fd(&c), -1);
	close(p[0]);
	close(p[1]);
	close(efd);
	close(sv[0]);
	close(sv[1]);
	ASSERT_OK(open_chan());
	ASSERT_TRUE(fcntl(breq_fd(&c), F_GETFL) & O_NONBLOCK);
	/* A second SET_BACKEND_REQ_FD replaces the first, which is closed. */
	int old = fe;
	fe = -1;
	ASSERT_OK(open_chan());
	char b;
	ASSERT_EQ(read(old, &b, 1), 0); /* EOF: the back-end closed its end */
	close(old);
	return 0;
}

/* Without REPLY_ACK nothing is owed; with it, NEED_REPLY and an ack owed until it comes. */
static int send_and_ack(void)
{
	struct msg m;

	ASSERT_OK(open_chan());
	ASSERT_EQ(send_change(0), -ENOPROTOOPT); /* CONFIG not negotiated */
	ASSERT_OK(send_change(CFG | BREQ));
	ASSERT_OK(recv_req(&m));
	ASSERT_EQ(m.hdr.request, VHU_BREQ_CONFIG_CHANGE_MSG);
	ASSERT_EQ(m.hdr.flags, VHU_VERSION);
	ASSERT_EQ(m.hdr.size, 0);
	ASSERT_EQ(breq_poll(&c), 0);
	ASSERT_OK(send_change(CFG | BREQ | ACK));
	ASSERT_OK(send_change(CFG | BREQ | ACK));
	ASSERT_OK(recv_req(&m));
	ASSERT_EQ(m.hdr.flags, VHU_VERSION | VHU_FLAG_NEED_REPLY);
	ASSERT_EQ(breq_poll(&c), 2);
	ASSERT_OK(send_ack(VHU_BREQ_CONFIG_CHANGE_MSG, 0));
	ASSERT_EQ(breq_poll(&c), 1);
	/* A non-zero ack is a failure of that request, not of the channel. */
	ASSERT_OK(send_ack(VHU_BREQ_CONFIG_CHANGE_MSG, 5));
	ASSERT_EQ(breq_poll(&c), 0);
	ASSERT_EQ(c.failed, 1);
	ASSERT_TRUE(breq_fd(&c) >= 0);
	/* Requests with a data reply or fds are not for breq_send. */
	ASSERT_EQ(breq_send(&c, VHU_BREQ_SHARED_OBJECT_LOOKUP, "0123456789abcdef", 16, 0, ~0ull),
		  -ENOTSUP);
	ASSERT_EQ(breq_send(&c, 99, NULL, 0, 0, ~0ull), -ENOTSUP);
	/* At most BREQ_MAX_PENDING owed. */
	for (unsigned i = 0; i < BREQ_MAX_PENDING; i++)
		ASSERT_OK(send_change(CFG | BREQ | ACK));
	ASSERT_EQ(send_change(CFG | BREQ | ACK), -EBUSY);
	breq_close(&c);
	ASSERT_EQ(send_change(CFG | BREQ | ACK), -ENOTCONN);
	ASSERT_EQ(breq_poll(&c), 0);
	return 0;
}

/* A front-end that never acks: the channel is dropped once the deadline passed, and not
 * before; polling never waits. */
static int ack_overdue(void)
{
	struct msg m;

	ASSERT_OK(open_chan());
	c.ack_timeout_ms = 200;
	uint64_t t0 = ms();
	ASSERT_OK(send_change(CFG | BREQ | ACK));
	ASSERT_OK(recv_req(&m));
	ASSERT_EQ(breq_poll(&c), 1);
	while (ms() - t0 < 150)
		ASSERT_EQ(breq_poll(&c), 1);
	while (breq_poll(&c) == 1 && ms() - t0 < 2000)
		;
	ASSERT_TRUE(ms() - t0 >= 200 && ms() - t0 < 1000);
	ASSERT_EQ(breq_fd(&c), -1);
	ASSERT_EQ(breq_poll(&c), 0);
	char b;
	ASSERT_EQ(read(fe, &b, 1), 0); /* the front-end sees the channel closed */
	c.ack_timeout_ms = BREQ_ACK_TIMEOUT_MS;
	return 0;
}

/* An ack to another request, an ack with no request owed, a request instead of a reply,
 * garbage bytes, a close with an ack owed: each drops the channel at once. */
static int bad_answers(void)
{
	struct msg m;

	ASSERT_OK(open_chan());
	ASSERT_OK(send_change(CFG | BREQ | ACK));
	ASSERT_OK(send_ack(VHU_BREQ_IOTLB_MSG, 0));
	ASSERT_EQ(breq_poll(&c), -EPROTO);
	ASSERT_EQ(breq_fd(&c), -1);

	ASSERT_OK(open_chan());
	ASSERT_OK(send_ack(VHU_BREQ_CONFIG_CHANGE_MSG, 0));
	ASSERT_EQ(breq_poll(&c), -EPROTO);

	ASSERT_OK(open_chan());
	ASSERT_OK(send_change(CFG | BREQ | ACK));
	msg_init(&m, VHU_REQ_GET_FEATURES, 0, 0);
	ASSERT_OK(sock_send(fe, &m, NULL, 0));
	ASSERT_EQ(breq_poll(&c), -EPROTO);

	ASSERT_OK(open_chan());
	ASSERT_OK(send_change(CFG | BREQ | ACK));
	ASSERT_EQ(write(fe, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 12), 12);
	ASSERT_EQ(breq_poll(&c), -EPROTO);

	/* Half an ack: nothing yet, and no wait. */
	ASSERT_OK(open_chan());
	ASSERT_OK(send_change(CFG | BREQ | ACK));
	uint32_t hdr[3] = { VHU_BREQ_CONFIG_CHANGE_MSG, VHU_VERSION | VHU_FLAG_REPLY, 8 };
	ASSERT_EQ(write(fe, hdr, sizeof(hdr)), sizeof(hdr));
	ASSERT_EQ(breq_poll(&c), 1);
	uint64_t v = 0;
	ASSERT_EQ(write(fe, &v, sizeof(v)), sizeof(v));
	ASSERT_EQ(breq_poll(&c), 0);

	/* Closed with an ack owed: dropped (-ECONNRESET); closed with none: quietly gone. */
	ASSERT_OK(send_change(CFG | BREQ | ACK));
	close(fe);
	fe = -1;
	ASSERT_EQ(breq_poll(&c), -ECONNRESET);
	ASSERT_OK(open_chan());
	close(fe);
	fe = -1;
	ASSERT_EQ(breq_poll(&c), -ECONNRESET);
	ASSERT_EQ(breq_fd(&c), -1);
	ASSERT_EQ(send_change(CFG | BREQ), -ENOTCONN);
	return 0;
}

/* A front-end that does not read the channel: sends fail without waiting once its buffer is
 * full, and the channel is dropped (-ENOBUFS). */
static int nobody_reads(void)
{
	int ret = 0, n = 0, sz = 4096;

	ASSERT_OK(open_chan());
	setsockopt(breq_fd(&c), SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	uint64_t t0 = ms();
	while (n < 1000000 && (ret = send_change(CFG | BREQ)) == 0)
		n++;
	ASSERT_EQ(ret, -ENOBUFS);
	ASSERT_TRUE(n > 0);
	ASSERT_TRUE(ms() - t0 < 2000);
	ASSERT_EQ(breq_fd(&c), -1);
	return 0;
}

int main(void)
{
	breq_init(&c, &lg);
	RUN(set_fd_checks);
	RUN(send_and_ack);
	RUN(ack_overdue);
	RUN(bad_answers);
	RUN(nobody_reads);
	breq_destroy(&c);
	if (fe >= 0)
		close(fe);
	T_MAIN_END();
}
