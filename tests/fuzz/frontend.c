/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target on the front-end's handling of back-end replies (src/fe_user.c's reply
 * checks, and what src/frontend.c does with the values: features, protocol features, queue
 * and slot counts, vring bases, config, the inflight fd). A fake back-end thread accepts the
 * front-end's connection and answers every request that expects a reply with the next chunk
 * of the input; the front-end opens, starts (split or packed, with the features the input
 * wants), reads config, reconnects after a hang-up, and stops.
 *
 * A chunk: one control byte, then
 *   bit 0 clear: a payload size byte and the payload; the header is the one a well-behaved
 *                back-end would send (the request answered, VERSION | REPLY);
 *   bit 0 set:   a raw 12-byte header and as many payload bytes as it claims (fewer if the
 *                input ends, then the connection closes);
 *   bit 1:       the fd count differs from the expected (an fd where none belongs, none
 *                for GET_INFLIGHT_FD);
 *   bit 2:       hang up instead of answering (the next connection takes the next chunks);
 *   bits 4-7:    size in pages of the memfd sent with an inflight reply.
 *
 * The back-end channel: when the input's protocol features offer BACKEND_REQ, the fake
 * back-end keeps the channel the front-end gives it, and after open (and again after start)
 * the harness takes a byte n from the input and writes n % 4 pieces on the channel, each a
 * control byte (bit 0: an eventfd rides along), a length byte and that many raw bytes,
 * calling vhu_frontend_channel_dispatch() after each (its config callback reads the config,
 * which the fake back-end answers from the input as any reply). Acks are read and dropped.
 */
#include <errno.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <vhu/vhu.h>

#include "msg.h"
#include "sock.h"

struct fuzz_hdr {
	uint64_t features; /* what the driver wants */
	uint8_t nvqs;
	uint8_t qlog;
	uint8_t flags; /* bit 0 poll */
	uint8_t pad;
};

static char path[64];
static int lfd = -1;
static int chan = -1; /* the back-end's end of the back-end channel, or -1 */
static struct {
	const uint8_t *data;
	size_t size;
	int done;
} in;

static bool wants_reply(const struct msg *m)
{
	switch (m->hdr.request) {
	case VHU_REQ_GET_FEATURES:
	case VHU_REQ_GET_PROTOCOL_FEATURES:
	case VHU_REQ_GET_VRING_BASE:
	case VHU_REQ_GET_QUEUE_NUM:
	case VHU_REQ_GET_CONFIG:
	case VHU_REQ_GET_INFLIGHT_FD:
	case VHU_REQ_GET_MAX_MEM_SLOTS:
	case VHU_REQ_GET_STATUS:
		return true;
	}
	return m->hdr.flags & VHU_FLAG_NEED_REPLY;
}

static int take(void *dst, size_t n)
{
	size_t c = n < in.size ? n : in.size;

	memcpy(dst, in.data, c);
	in.data += c;
	in.size -= c;
	return c == n ? 0 : -1;
}

/* Answers req with the next chunk. 1: answered, 0: hang up, -1: input exhausted. */
static int answer(int fd, const struct msg *req)
{
	static struct msg m;
	uint8_t ctl, sz;
	int memfd = -1, ret;
	unsigned nfds;

	if (take(&ctl, 1))
		return -1;
	if (ctl & 4)
		return 0;
	if (ctl & 1) {
		if (take(&m.hdr, sizeof(m.hdr)))
			return -1;
	} else {
		if (take(&sz, 1))
			return -1;
		m.hdr = (struct vhu_hdr){ .request = req->hdr.request,
					  .flags = VHU_VERSION | VHU_FLAG_REPLY,
					  .size = sz };
	}
	uint32_t claimed = m.hdr.size < MSG_MAX_PAYLOAD ? m.hdr.size : MSG_MAX_PAYLOAD;
	size_t got = claimed < in.size ? claimed : in.size;
	memset(m.p.raw, 0, claimed);
	take(m.p.raw, got);
	nfds = req->hdr.request == VHU_REQ_GET_INFLIGHT_FD;
	if (ctl & 2)
		nfds = !nfds;
	if (nfds) {
		memfd = memfd_create("fuzz-inflight", MFD_CLOEXEC);
		if (memfd < 0 || ftruncate(memfd, (off_t)(ctl >> 4) * 4096))
			abort();
	}
	/* sock_send checks the size it sends: write the bytes by hand. */
	struct iovec iov[2] = { { &m.hdr, sizeof(m.hdr) }, { m.p.raw, got } };
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
	if (nfds) {
		mh.msg_control = cbuf;
		mh.msg_controllen = sizeof(cbuf);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &memfd, sizeof(int));
	}
	ret = sendmsg(fd, &mh, MSG_NOSIGNAL) < 0 ? 0 : 1;
	if (memfd >= 0)
		close(memfd);
	/* A reply cut short by the end of the input: close, the front-end sees EOF. */
	return got < claimed ? -1 : ret;
}

static void *fake_backend(void *arg)
{
	(void)arg;
	while (!__atomic_load_n(&in.done, __ATOMIC_ACQUIRE)) {
		int fd = sock_accept(lfd), r = 1;
		if (fd < 0)
			continue;
		if (__atomic_load_n(&in.done, __ATOMIC_ACQUIRE)) {
			close(fd); /* the wake-up connection */
			break;
		}
		sock_set_timeout(fd, 1000);
		static struct msg m;
		while (r > 0 && sock_recv(fd, &m, false) == 0) {
			if (m.hdr.request == VHU_REQ_SET_BACKEND_REQ_FD && m.nfds == 1) {
				int old = __atomic_exchange_n(&chan, m.fds[0], __ATOMIC_ACQ_REL);
				m.fds[0] = -1;
				if (old >= 0)
					close(old);
			}
			msg_close_fds(&m);
			if (wants_reply(&m))
				r = answer(fd, &m);
		}
		close(fd);
		if (r < 0)
			in.size = 0;
	}
	return NULL;
}

static void on_config(struct vhu_frontend *fe, void *opaque)
{
	uint8_t cfg[16];

	(void)opaque;
	vhu_frontend_get_config(fe, 0, cfg, sizeof(cfg));
}

/* Writes what the input says on the back-end channel, serving it after each piece. */
static void feed_channel(struct vhu_frontend *fe)
{
	int c = __atomic_load_n(&chan, __ATOMIC_ACQUIRE);
	uint8_t n, ctl, len, buf[256];

	if (c < 0 || vhu_frontend_channel_fd(fe) < 0 || take(&n, 1))
		return;
	vhu_frontend_set_config_cb(fe, on_config, NULL);
	for (unsigned i = 0; i < n % 4u; i++) {
		if (take(&ctl, 1) || take(&len, 1))
			return;
		size_t got = len < in.size ? len : in.size;
		take(buf, got);
		int efd = (ctl & 1) ? eventfd(0, EFD_CLOEXEC) : -1;
		struct iovec iov = { buf, got };
		char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
		if (efd >= 0) {
			mh.msg_control = cbuf;
			mh.msg_controllen = sizeof(cbuf);
			struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
			cm->cmsg_level = SOL_SOCKET;
			cm->cmsg_type = SCM_RIGHTS;
			cm->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(cm), &efd, sizeof(int));
		}
		if (got)
			sendmsg(c, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (efd >= 0)
			close(efd);
		if (vhu_frontend_channel_dispatch(fe))
			return;
		while (recv(c, buf, sizeof(buf), MSG_DONTWAIT) > 0)
			;
	}
}

static void remove_socket(void)
{
	unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_hdr h;
	pthread_t t;

	if (lfd < 0) {
		snprintf(path, sizeof(path), "/tmp/vhu-fuzz-fe-%d.sock", getpid());
		lfd = sock_listen(path, 0600);
		if (lfd < 0)
			abort();
		atexit(remove_socket);
	}
	if (size < sizeof(h))
		return 0;
	memcpy(&h, data, sizeof(h));
	in.data = data + sizeof(h);
	in.size = size - sizeof(h);
	in.done = 0;
	if (pthread_create(&t, NULL, fake_backend, NULL))
		abort();

	struct vhu_frontend *fe;
	struct vhu_frontend_opts o = {
		.size = VHU_FRONTEND_OPTS_SIZE, .path = path, .timeout_ms = 300, .mem_size = 1 << 20
	};
	if (vhu_frontend_open(&fe, &o) == 0) {
		feed_channel(fe);
		struct vhu_frontend_start_opts so = { .size = VHU_FRONTEND_START_OPTS_SIZE,
						      .features = h.features,
						      .nvqs = h.nvqs % 4 + 1,
						      .queue_size = 1u << (h.qlog % 9),
						      .poll = h.flags & 1 };
		int ret = vhu_frontend_start(fe, &so);
		if (ret && !vhu_frontend_alive(fe) && in.size)
			ret = vhu_frontend_reconnect(fe, 300);
		if (ret == 0)
			feed_channel(fe);
		uint8_t cfg[16];
		vhu_frontend_get_config(fe, 0, cfg, sizeof(cfg));
		if (ret == 0)
			vhu_frontend_stop(fe);
		vhu_frontend_close(fe);
	}
	/* Wake the fake back-end out of accept() and let it go. */
	__atomic_store_n(&in.done, 1, __ATOMIC_RELEASE);
	int wake = vhu_connect(path, 0);
	pthread_join(t, NULL);
	if (wake >= 0)
		close(wake);
	int c = __atomic_exchange_n(&chan, -1, __ATOMIC_ACQ_REL);
	if (c >= 0)
		close(c);
	return 0;
}
