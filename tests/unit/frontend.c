/* SPDX-License-Identifier: MIT */
/*
 * The front-end library's side of the back-end channel (src/frontend.c): a fake back-end
 * thread offers BACKEND_REQ and checks that the channel it is given is an AF_UNIX stream
 * socket; the test then plays the back-end on that channel. CONFIG_CHANGE_MSG reaches the
 * application's callback (which reads the config over the main socket) and is acked on
 * NEED_REPLY only; every other request is refused cleanly (non-zero ack, fds closed, LOOKUP
 * answered without an fd); requests split or batched are served whole; malformed input, an
 * unknown request, a closed channel or a back-end that reads no acks drop the channel and
 * nothing else (the main connection serves on).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_config.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <vhu/vhu.h>

#include "msg.h"
#include "sock.h"
#include "t.h"

T_DEFINE;

static char path[64];
static int lfd = -1;
static int chan = -1;	       /* the back-end's end, from SET_BACKEND_REQ_FD */
static uint64_t cfg_value = 7; /* what the fake back-end's GET_CONFIG returns */

static void *fake_backend(void *arg)
{
	int fd = sock_accept(lfd);
	uint64_t pf = 0;
	struct msg m;

	(void)arg;
	if (fd < 0)
		return NULL;
	sock_set_timeout(fd, 5000);
	while (sock_recv(fd, &m, false) == 0) {
		struct msg r;
		bool reply =
			(pf >> VHU_PROTO_F_REPLY_ACK & 1) && (m.hdr.flags & VHU_FLAG_NEED_REPLY);
		msg_init(&r, m.hdr.request, VHU_FLAG_REPLY, 8);
		r.p.u64 = 0;
		switch (m.hdr.request) {
		case VHU_REQ_GET_FEATURES:
			r.p.u64 = (1ULL << VIRTIO_F_VERSION_1) | (1ULL << VHU_F_PROTOCOL_FEATURES);
			reply = true;
			break;
		case VHU_REQ_GET_PROTOCOL_FEATURES:
			r.p.u64 = (1ULL << VHU_PROTO_F_REPLY_ACK) | (1ULL << VHU_PROTO_F_CONFIG) |
				  (1ULL << VHU_PROTO_F_BACKEND_REQ);
			reply = true;
			break;
		case VHU_REQ_SET_PROTOCOL_FEATURES:
			pf = m.p.u64;
			reply = false;
			break;
		case VHU_REQ_GET_CONFIG:
			r.hdr.size = m.hdr.size;
			r.p.config = m.p.config;
			memcpy(r.p.config.region, &cfg_value, 8);
			reply = true;
			break;
		case VHU_REQ_SET_BACKEND_REQ_FD: {
			int type = 0, dom = 0;
			socklen_t l = sizeof(int);
			getsockopt(m.fds[0], SOL_SOCKET, SO_TYPE, &type, &l);
			l = sizeof(int);
			getsockopt(m.fds[0], SOL_SOCKET, SO_DOMAIN, &dom, &l);
			if (m.nfds == 1 && type == SOCK_STREAM && dom == AF_UNIX) {
				__atomic_store_n(&chan, m.fds[0], __ATOMIC_RELEASE);
				m.fds[0] = -1;
			} else {
				r.p.u64 = 1;
			}
			break;
		}
		default:
			break;
		}
		msg_close_fds(&m);
		if (reply && sock_send(fd, &r, NULL, 0))
			break;
	}
	close(fd);
	return NULL;
}

static pthread_t thr;

static int open_fe(struct vhu_frontend **fe)
{
	struct vhu_frontend_opts o = { .size = VHU_FRONTEND_OPTS_SIZE,
				       .path = path,
				       .timeout_ms = 2000,
				       .mem_size = 1 << 20 };

	chan = -1;
	ASSERT_OK(pthread_create(&thr, NULL, fake_backend, NULL));
	ASSERT_OK(vhu_frontend_open(fe, &o));
	ASSERT_TRUE(vhu_frontend_protocol_features(*fe) & (1ULL << VHU_PROTO_F_BACKEND_REQ));
	ASSERT_TRUE(__atomic_load_n(&chan, __ATOMIC_ACQUIRE) >= 0);
	ASSERT_TRUE(vhu_frontend_channel_fd(*fe) >= 0);
	return 0;
}

static void close_fe(struct vhu_frontend *fe)
{
	vhu_frontend_close(fe);
	pthread_join(thr, NULL);
	if (chan >= 0)
		close(chan);
	chan = -1;
}

static int breq(uint32_t req, uint32_t flags, const void *p, uint32_t size, int fd)
{
	struct msg m;

	msg_init(&m, req, flags, size);
	if (size)
		memcpy(m.p.raw, p, size);
	return sock_send(chan, &m, fd >= 0 ? &fd : NULL, fd >= 0 ? 1 : 0);
}

/* The answer to a back-end request, within 1 s: its u64, or -1 with none; nfds counted. */
static int64_t answer(uint32_t req, unsigned *nfds)
{
	struct pollfd p = { chan, POLLIN, 0 };
	struct msg m;

	if (poll(&p, 1, 1000) != 1 || sock_recv(chan, &m, true))
		return -1;
	if (nfds)
		*nfds = m.nfds;
	msg_close_fds(&m);
	if (m.hdr.request != req || m.hdr.size != 8)
		return -1;
	return (int64_t)m.p.u64;
}

static bool quiet(void)
{
	struct pollfd p = { chan, POLLIN, 0 };
	return poll(&p, 1, 100) == 0;
}

static unsigned calls;
static uint64_t seen;

static void on_change(struct vhu_frontend *fe, void *opaque)
{
	(void)opaque;
	calls++;
	vhu_frontend_get_config(fe, 0, &seen, 8);
}

static int count_fds(void)
{
	int n = 0;
	for (int fd = 0; fd < 1024; fd++)
		n += fcntl(fd, F_GETFD) >= 0;
	return n;
}

static int config_change(void)
{
	struct vhu_frontend *fe;

	ASSERT_OK(open_fe(&fe));
	vhu_frontend_set_config_cb(fe, on_change, NULL);
	ASSERT_OK(vhu_frontend_channel_dispatch(fe)); /* nothing there: returns at once */
	cfg_value = 12345;
	ASSERT_OK(breq(VHU_BREQ_CONFIG_CHANGE_MSG, VHU_FLAG_NEED_REPLY, NULL, 0, -1));
	ASSERT_OK(vhu_frontend_channel_dispatch(fe));
	ASSERT_EQ(calls, 1);
	ASSERT_EQ(seen, 12345);
	unsigned nfds = 9;
	ASSERT_EQ(answer(VHU_BREQ_CONFIG_CHANGE_MSG, &nfds), 0);
	ASSERT_EQ(nfds, 0);
	/* Without NEED_REPLY: served, not acked. */
	ASSERT_OK(breq(VHU_BREQ_CONFIG_CHANGE_MSG, 0, NULL, 0, -1));
	ASSERT_OK(vhu_frontend_channel_dispatch(fe));
	ASSERT_EQ(calls, 2);
	ASSERT_TRUE(quiet());
	/* Two at once, and one in two pieces. */
	ASSERT_OK(breq(VHU_BREQ_CONFIG_CHANGE_MSG, VHU_FLAG_NEED_REPLY, NULL, 0, -1));
	ASSERT_OK(breq(VHU_BREQ_CONFIG_CHANGE_MSG, VHU_FLAG_NEED_REPLY, NULL, 0, -1));
	ASSERT_OK(vhu_frontend_channel_dispatch(fe));
	ASSERT_EQ(calls, 4);
	ASSERT_EQ(answer(VHU_BREQ_CONFIG_CHANGE_MSG, NULL), 0);
	ASSERT_EQ(answer(VHU_BREQ_CONFIG_CHANGE_MSG, NULL), 0);
	uint32_t hdr[3] = { VHU_BREQ_CONFIG_CHANGE_MSG, VHU_VERSION | VHU_FLAG_NEED_REPLY, 0 };
	ASSERT_EQ(write(chan, hdr, 6), 6);
	ASSERT_OK(vhu_frontend_channel_dispatch(fe));
	ASSERT_EQ(calls, 4);
	ASSERT_EQ(write(chan, (char *)hdr + 6, 6), 6);
	ASSERT_OK(vhu_frontend_channel_dispatch(fe));
	ASSERT_EQ(calls, 5);
	ASSERT_EQ(answer(VHU_BREQ_CONFIG_CHANGE_MSG, NULL), 0);
	close_fe(fe);
	return 0;
}

/* Everything else: refused with a non-zero answer, fds closed, the channel kept. */
static int refusals(void)
{
	struct vhu_frontend *fe;
	struct vhu_iotlb_msg miss = { .iova = 0x1000, .perm = 1, .type = 1 };
	struct vhu_vring_state st = { 0, 0 };
	uint8_t uuid[16] = { 1 };
	struct vhu_vring_area area = { .u64 = 0, .size = 4096 };
	unsigned nfds = 9;

	ASSERT_OK(open_fe(&fe));
	vhu_frontend_set_config_cb(fe, on_change, NULL);
	calls = 0;
	ASSERT_OK(breq(VHU_BREQ_IOTLB_MSG, VHU_FLAG_NEED_REPLY, &miss, sizeof(miss), -1));
	ASSERT_OK(vhu_frontend_channel_dispatch(fe));
	ASSERT_TRUE(answer(VHU_BREQ_IOTLB_MSG, NULL) > 0);
	ASSERT_OK(breq(VHU_BREQ_VRING_CALL, VHU_FLAG_NEED_REPLY, &st, sizeof(st), -1));
	ASSERT_OK(vhu_frontend_channel_dispatch(fe));
	ASSERT_TRUE(answer(VHU_BREQ_VRING_CALL, NULL) > 0);
	/* LOOKUP is always answered; a failure carries no fd. */
	ASSERT_OK(breq(VHU_BREQ_SHARED_OBJECT_LOOKUP, 0, uuid, sizeof(uuid), -1));
	ASSERT_OK(vhu_frontend_channel_dispatch(fe));
	ASSERT_TRUE(answer(VHU_BREQ_SHARED_OBJECT_LOOKUP, &nfds) > 0);
	ASSERT_EQ(nfds, 0);
	/* An fd with a refused request is closed, not kept. */
	int fds0 = count_fds(), efd = eventfd(0, EFD_CLOEXEC);
	ASSERT_OK(breq(VHU_BREQ_VRING_HOST_NOTIFIER_MSG, VHU_FLAG_NEED_REPLY, &area, sizeof(area),
		       efd));
	close(efd);
	ASSERT_OK(vhu_frontend_channel_dispatch(fe));
	ASSERT_TRUE(answer(VHU_BREQ_VRING_HOST_NOTIFIER_MSG, NULL) > 0);
	ASSERT_EQ(count_fds(), fds0);
	ASSERT_EQ(calls, 0);
	ASSERT_TRUE(vhu_frontend_channel_fd(fe) >= 0);
	close_fe(fe);
	return 0;
}

/* Malformed input drops the channel, only the channel. */
static int drop_cases(void)
{
	static const struct {
		const char *what;
		uint32_t hdr[3];
		int want;
	} bad[] = {
		{ "bad version", { VHU_BREQ_CONFIG_CHANGE_MSG, 2, 0 }, -EPROTO },
		{ "reply bit",
		  { VHU_BREQ_CONFIG_CHANGE_MSG, VHU_VERSION | VHU_FLAG_REPLY, 0 },
		  -EPROTO },
		{ "unknown request", { 99, VHU_VERSION, 0 }, -EPROTO },
		{ "oversize", { VHU_BREQ_IOTLB_MSG, VHU_VERSION, 1u << 20 }, -EMSGSIZE },
		{ "CONFIG_CHANGE with 16 bytes",
		  { VHU_BREQ_CONFIG_CHANGE_MSG, VHU_VERSION, 16 },
		  -EPROTO },
	};

	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct vhu_frontend *fe;
		uint8_t zero[16] = { 0 };
		uint64_t v = 0;
		ASSERT_OK(open_fe(&fe));
		ASSERT_EQ(write(chan, bad[i].hdr, 12), 12);
		if (bad[i].hdr[2] == 16)
			ASSERT_EQ(write(chan, zero, 16), 16);
		int ret = vhu_frontend_channel_dispatch(fe);
		if (ret != bad[i].want || vhu_frontend_channel_fd(fe) != -1) {
			T_FAILF("%s: %d, channel fd %d", bad[i].what, ret,
				vhu_frontend_channel_fd(fe));
			return -1;
		}
		ASSERT_EQ(vhu_frontend_channel_dispatch(fe), -ENOTCONN);
		ASSERT_OK(vhu_frontend_get_config(fe, 0, &v, 8)); /* the connection serves on */
		close_fe(fe);
	}
	return 0;
}

static int closed_and_unread(void)
{
	struct vhu_frontend *fe;
	int ret = 0;

	ASSERT_OK(open_fe(&fe));
	close(chan);
	chan = -1;
	ASSERT_EQ(vhu_frontend_channel_dispatch(fe), -ECONNRESET);
	ASSERT_EQ(vhu_frontend_channel_fd(fe), -1);
	close_fe(fe);

	/* A back-end that asks for acks and never reads them: -ENOBUFS, without blocking. */
	ASSERT_OK(open_fe(&fe));
	for (int n = 0; n < 100000 && ret == 0; n++) {
		for (int k = 0; k < 32; k++)
			ASSERT_OK(
				breq(VHU_BREQ_CONFIG_CHANGE_MSG, VHU_FLAG_NEED_REPLY, NULL, 0, -1));
		ret = vhu_frontend_channel_dispatch(fe);
	}
	ASSERT_EQ(ret, -ENOBUFS);
	ASSERT_EQ(vhu_frontend_channel_fd(fe), -1);
	close_fe(fe);
	return 0;
}

int main(void)
{
	snprintf(path, sizeof(path), "/tmp/vhu-unit-fe-%d.sock", getpid());
	lfd = sock_listen(path, 0600);
	if (lfd < 0)
		return T_FAIL;
	RUN(config_change);
	RUN(refusals);
	RUN(drop_cases);
	RUN(closed_and_unread);
	close(lfd);
	unlink(path);
	T_MAIN_END();
}
