/* SPDX-License-Identifier: MIT */
/*
 * The library's virtio-net receive helper (src/net.c) on real rings: a back-end in process,
 * set up by the raw test driver over a socketpair, then vhu_net_rx() on the rx queue with
 * split and packed rings, mergeable buffers and not. Checks what the driver sees: used
 * lengths, num_buffers, the bytes, and a ring left as it was when buffers run short.
 */
#include <errno.h>
#include <linux/virtio_config.h>
#include <linux/virtio_net.h>
#include <linux/virtio_ring.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <vhu/vhu.h>

#include "common/drv.h"
#include "t.h"

T_DEFINE;

#define RXQ 0

static struct vhu_backend *be;
static struct drv d;
static volatile bool setup_done;
static uint8_t frame[300];
static struct vhu_elem elems[8];

static void tlog(void *o, int level, const char *msg)
{
	(void)o;
	if (getenv("VERBOSE") || level == VHU_LOG_ERR)
		fprintf(stderr, "  backend %s: %s\n", vhu_log_level_name(level), msg);
}

static const struct vhu_device_ops ops = {
	.size = sizeof(struct vhu_device_ops),
	.features = (1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_F_RING_PACKED) |
		    (1ULL << VIRTIO_NET_F_MRG_RXBUF),
	.log = tlog,
	.log_level = VHU_LOG_WARN,
};

/* Serves the control plane until the driver has set the rings up; the test thread then is
 * the rx queue's only user. */
static void *dispatch_thread(void *arg)
{
	(void)arg;
	while (!setup_done) {
		struct pollfd p = { .fd = vhu_backend_fd(be), .events = POLLIN };
		if (poll(&p, 1, 2) > 0 && vhu_backend_dispatch(be))
			break;
	}
	return NULL;
}

static int start(bool packed, bool mrg)
{
	pthread_t th;
	int sp[2];

	setup_done = false;
	ASSERT_OK(vhu_backend_new(&be, &ops, NULL, 2));
	ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp));
	ASSERT_OK(vhu_backend_attach(be, sp[1]));
	ASSERT_OK(drv_open_fd(&d, sp[0]));
	ASSERT_OK(pthread_create(&th, NULL, dispatch_thread, NULL));
	int ret = drv_start(&d, packed,
			    (1ULL << VIRTIO_F_VERSION_1) |
				    (mrg ? 1ULL << VIRTIO_NET_F_MRG_RXBUF : 0));
	setup_done = true;
	pthread_join(th, NULL);
	ASSERT_OK(ret);
	ASSERT_TRUE(vhu_has_feature(vhu_backend_features(be), VIRTIO_NET_F_MRG_RXBUF) == mrg);
	return 0;
}

static void stop(void)
{
	vhu_backend_free(be);
	be = NULL;
	drv_close(&d);
}

static int rx(const void *hdr, unsigned nelems)
{
	struct iovec iov[2] = { { frame, 100 }, { frame + 100, 200 } }; /* 300 bytes in two parts */
	return vhu_net_rx(vhu_backend_virtq(be, RXQ), vhu_backend_features(be), hdr, iov, 2, elems,
			  nelems);
}

static uint16_t num_buffers(unsigned slot)
{
	const uint8_t *b = drv_buf(&d, RXQ, slot);
	return (uint16_t)(b[10] | b[11] << 8);
}

/* MRG_RXBUF: 12 + 300 bytes over 128-byte buffers take 3 (128, 128, 56). */
static int mergeable(bool packed)
{
	uint32_t id, len;

	if (start(packed, true))
		return -1;
	struct vhu_virtq *vq = vhu_backend_virtq(be, RXQ);
	/* one buffer: too few; nothing is consumed */
	drv_add_buf(&d, RXQ, 0, 128, true);
	ASSERT_EQ(rx(NULL, 8), -ENOBUFS);
	vhu_virtq_flush(vq);
	ASSERT_EQ(drv_get_used(&d, RXQ, &id, &len, 0), 0);
	/* two more: the frame takes all three, starting with the first */
	drv_add_buf(&d, RXQ, 1, 128, true);
	drv_add_buf(&d, RXQ, 2, 128, true);
	ASSERT_EQ(rx(NULL, 2), -ENOBUFS); /* scratch for two elements only */
	struct virtio_net_hdr_mrg_rxbuf h = { .hdr.flags = VIRTIO_NET_HDR_F_DATA_VALID,
					      .num_buffers = 77 };
	ASSERT_OK(rx(&h, 8));
	vhu_virtq_flush(vq);
	uint32_t lens[3] = { 128, 128, 56 };
	for (unsigned i = 0; i < 3; i++) {
		ASSERT_EQ(drv_get_used(&d, RXQ, &id, &len, 100), 1);
		ASSERT_EQ(len, lens[i]);
	}
	ASSERT_EQ(drv_get_used(&d, RXQ, &id, &len, 0), 0);
	ASSERT_EQ(num_buffers(0), 3);
	ASSERT_EQ(drv_buf(&d, RXQ, 0)[0], VIRTIO_NET_HDR_F_DATA_VALID);
	ASSERT_OK(memcmp(drv_buf(&d, RXQ, 0) + 12, frame, 116));
	ASSERT_OK(memcmp(drv_buf(&d, RXQ, 1), frame + 116, 128));
	ASSERT_OK(memcmp(drv_buf(&d, RXQ, 2), frame + 244, 56));
	/* a first buffer shorter than the header goes back empty; the next frame moves on */
	drv_add_buf(&d, RXQ, 3, 8, true);
	drv_add_buf(&d, RXQ, 4, 2048, true);
	ASSERT_EQ(rx(NULL, 8), -EMSGSIZE);
	ASSERT_OK(rx(NULL, 8));
	vhu_virtq_flush(vq);
	ASSERT_EQ(drv_get_used(&d, RXQ, &id, &len, 100), 1);
	ASSERT_EQ(len, 0);
	ASSERT_EQ(drv_get_used(&d, RXQ, &id, &len, 100), 1);
	ASSERT_EQ(len, 312);
	ASSERT_EQ(num_buffers(4), 1);
	ASSERT_EQ(drv_buf(&d, RXQ, 4)[0], 0); /* NULL header: zeroes */
	ASSERT_OK(memcmp(drv_buf(&d, RXQ, 4) + 12, frame, 300));
	stop();
	return 0;
}

/* Without MRG_RXBUF (VERSION_1: 12-byte header, num_buffers 1) one buffer takes the frame. */
static int single(bool packed)
{
	uint32_t id, len;

	if (start(packed, false))
		return -1;
	struct vhu_virtq *vq = vhu_backend_virtq(be, RXQ);
	ASSERT_EQ(rx(NULL, 8), -ENOBUFS); /* empty ring */
	drv_add_buf(&d, RXQ, 0, 128, true);
	drv_add_buf(&d, RXQ, 1, 2048, true);
	ASSERT_EQ(rx(NULL, 8), -EMSGSIZE); /* too short for the frame: back empty */
	ASSERT_OK(rx(NULL, 1));
	vhu_virtq_flush(vq);
	ASSERT_EQ(drv_get_used(&d, RXQ, &id, &len, 100), 1);
	ASSERT_EQ(len, 0);
	ASSERT_EQ(drv_get_used(&d, RXQ, &id, &len, 100), 1);
	ASSERT_EQ(len, 312);
	ASSERT_EQ(num_buffers(1), 1);
	ASSERT_OK(memcmp(drv_buf(&d, RXQ, 1) + 12, frame, 300));
	stop();
	return 0;
}

/* The buffer RX_AHEAD (4) places past the next pop is prefetched (ring_prefetch_ahead,
 * src/ring.c). One there with an address outside guest memory, one that wraps, 0, or a chain
 * starting at one of those, changes nothing: the frame lands whole in its buffer, and the ring
 * is broken only when a pop reaches the bad buffer; only a prefetch (which never faults) sees
 * such an address before that. Each kind sits exactly where the first frame's prefetch looks. */
static int ahead(bool packed)
{
	const uint64_t bad[] = { drv_gpa(0) + (1ULL << 40), ~0ULL - 8, 0 };
	const uint32_t blen[2] = { 2048, 2048 };
	const uint16_t fl[2] = { VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, VRING_DESC_F_WRITE };
	uint32_t id, len;

	for (unsigned k = 0; k < 2 * sizeof(bad) / sizeof(bad[0]); k++) {
		bool chain = k >= sizeof(bad) / sizeof(bad[0]);
		const uint64_t addr[2] = { bad[k % 3], drv_gpa(0) + (1ULL << 40) };
		if (start(packed, true))
			return -1;
		struct vhu_virtq *vq = vhu_backend_virtq(be, RXQ);
		for (unsigned i = 0; i < 5; i++) /* slots 0-4: the next pop's and four more */
			drv_add_buf(&d, RXQ, i, 2048, true);
		ASSERT_TRUE(drv_add_raw(&d, RXQ, addr, blen, chain ? fl : fl + 1, chain ? 2 : 1) >=
			    0);
		ASSERT_OK(rx(NULL, 8)); /* into buffer 0, prefetching the 5th after it */
		vhu_virtq_flush(vq);
		ASSERT_EQ(drv_get_used(&d, RXQ, &id, &len, 100), 1);
		ASSERT_EQ(len, 312);
		ASSERT_EQ(num_buffers(0), 1);
		ASSERT_OK(memcmp(drv_buf(&d, RXQ, 0) + 12, frame, 300));
		ASSERT_TRUE(!vhu_virtq_broken(vq));
		/* The pop itself refuses the bad buffer: the ring is broken then, not before. */
		for (unsigned i = 1; i < 5; i++)
			ASSERT_OK(rx(NULL, 8));
		ASSERT_EQ(rx(NULL, 8), -EIO);
		ASSERT_TRUE(vhu_virtq_broken(vq));
		stop();
	}
	return 0;
}

/* vhu_net_rx_burst: frames into one buffer each, from the start, until a buffer too short
 * for its frame; the ring is left at that buffer, which vhu_net_rx then takes (two merged
 * buffers here) and the next burst goes on after it. */
static int burst(bool packed)
{
	struct virtio_net_hdr_mrg_rxbuf h = { .hdr.flags = VIRTIO_NET_HDR_F_DATA_VALID,
					      .num_buffers = 77 };
	const struct vhu_net_frame f[4] = { { &h, frame, 300 },
					    { NULL, frame + 1, 60 },
					    { NULL, frame + 2, 200 },
					    { NULL, frame + 3, 0 } };
	const uint32_t want[6] = { 312, 72, 64, 148, 12 };
	uint32_t id, len;

	if (start(packed, true))
		return -1;
	struct vhu_virtq *vq = vhu_backend_virtq(be, RXQ);
	uint64_t feat = vhu_backend_features(be);
	ASSERT_EQ(vhu_net_rx_burst(vq, feat, f, 4, elems, 8), 0); /* empty ring */
	ASSERT_EQ(vhu_net_rx_burst(NULL, feat, f, 4, elems, 8), -EINVAL);
	/* Header bytes written only where they differ (hdr_store): buffers 1 and 4 hold a stale
	 * header, buffer 0 the very header frame 0 brings (left alone, and still right). */
	memset(drv_buf(&d, RXQ, 1), 0xa5, 12);
	memset(drv_buf(&d, RXQ, 4), 0x5a, 12);
	memcpy(drv_buf(&d, RXQ, 0), &h, 12);
	drv_buf(&d, RXQ, 0)[10] = 1; /* num_buffers as it will be */
	drv_buf(&d, RXQ, 0)[11] = 0;
	drv_add_buf(&d, RXQ, 0, 2048, true);
	drv_add_buf(&d, RXQ, 1, 2048, true);
	drv_add_buf(&d, RXQ, 2, 64, true); /* too short for frame 2 alone */
	drv_add_buf(&d, RXQ, 3, 2048, true);
	drv_add_buf(&d, RXQ, 4, 2048, true);
	ASSERT_EQ(vhu_net_rx_burst(vq, feat, f, 4, elems, 1), 1); /* nelems bounds it */
	ASSERT_EQ(vhu_net_rx_burst(vq, feat, f + 1, 3, elems, 8), 1);
	/* buffers 2 and 3 are in the ring again: vhu_net_rx merges them */
	struct iovec iov = { (void *)f[2].data, f[2].len };
	ASSERT_OK(vhu_net_rx(vq, feat, NULL, &iov, 1, elems, 8));
	ASSERT_EQ(vhu_net_rx_burst(vq, feat, f + 3, 1, elems, 8), 1);
	ASSERT_EQ(vhu_net_rx_burst(vq, feat, f, 4, elems, 8), 0); /* empty again */
	vhu_virtq_flush(vq);
	for (unsigned i = 0; i < 5; i++) {
		ASSERT_EQ(drv_get_used(&d, RXQ, &id, &len, 100), 1);
		ASSERT_EQ(len, want[i]);
	}
	ASSERT_EQ(drv_get_used(&d, RXQ, &id, &len, 0), 0);
	ASSERT_EQ(num_buffers(0), 1);
	ASSERT_EQ(drv_buf(&d, RXQ, 0)[0], VIRTIO_NET_HDR_F_DATA_VALID);
	ASSERT_OK(memcmp(drv_buf(&d, RXQ, 0) + 12, frame, 300));
	ASSERT_EQ(num_buffers(1), 1);
	for (unsigned i = 0; i < 10; i++)
		ASSERT_EQ(drv_buf(&d, RXQ, 1)[i], 0); /* NULL header: zeroes */
	ASSERT_OK(memcmp(drv_buf(&d, RXQ, 1) + 12, frame + 1, 60));
	ASSERT_EQ(num_buffers(2), 2);
	ASSERT_OK(memcmp(drv_buf(&d, RXQ, 2) + 12, frame + 2, 52));
	ASSERT_OK(memcmp(drv_buf(&d, RXQ, 3), frame + 54, 148));
	ASSERT_EQ(num_buffers(4), 1);
	for (unsigned i = 0; i < 10; i++)
		ASSERT_EQ(drv_buf(&d, RXQ, 4)[i], 0);
	/* Around the ring several times, a burst stopping at a short buffer each time: the
	 * position it goes back to (split: one entry per buffer; packed: slots, the wrap
	 * counter flipping) is where the next pop finds that buffer. Buffer 1 is a chain of two
	 * descriptors that the frame spans, and the short buffer one of two descriptors: packed,
	 * both take two slots, which the cursor must count. */
	const uint16_t wr[2] = { VRING_DESC_F_WRITE, VRING_DESC_F_WRITE };
	for (unsigned r = 0; r < DRV_QSIZE; r++) { /* 3 buffers, 5 descriptors a round */
		const uint64_t a1[2] = { drv_buf_gpa(&d, RXQ, 1), drv_buf_gpa(&d, RXQ, 1) + 40 };
		const uint64_t a2[2] = { drv_buf_gpa(&d, RXQ, 2), drv_buf_gpa(&d, RXQ, 2) + 4 };
		const uint32_t l1[2] = { 40, 2000 }, l2[2] = { 4, 4 };
		drv_add_buf(&d, RXQ, 0, 2048, true);
		ASSERT_TRUE(drv_add_raw(&d, RXQ, a1, l1, wr, 2) >= 0);
		/* shorter than the header: goes back empty */
		ASSERT_TRUE(drv_add_raw(&d, RXQ, a2, l2, wr, 2) >= 0);
		ASSERT_EQ(vhu_net_rx_burst(vq, feat, f, 4, elems, 8), 2);
		iov = (struct iovec){ (void *)f[2].data, f[2].len };
		ASSERT_EQ(vhu_net_rx(vq, feat, NULL, &iov, 1, elems, 8), -EMSGSIZE);
		vhu_virtq_flush(vq);
		const uint32_t w[3] = { 312, 72, 0 };
		for (unsigned i = 0; i < 3; i++) {
			ASSERT_EQ(drv_get_used(&d, RXQ, &id, &len, 100), 1);
			ASSERT_EQ(len, w[i]);
		}
		ASSERT_OK(memcmp(drv_buf(&d, RXQ, 1) + 12, frame + 1, 60));
	}
	ASSERT_TRUE(!vhu_virtq_broken(vq));
	stop();
	return 0;
}

static int split_burst(void)
{
	return burst(false);
}
static int packed_burst(void)
{
	return burst(true);
}

static int split_ahead(void)
{
	return ahead(false);
}
static int packed_ahead(void)
{
	return ahead(true);
}

static int split_mrg(void)
{
	return mergeable(false);
}
static int packed_mrg(void)
{
	return mergeable(true);
}
static int split_nomrg(void)
{
	return single(false);
}
static int packed_nomrg(void)
{
	return single(true);
}

static int hdr_len(void)
{
	ASSERT_EQ(vhu_net_hdr_len(0), 10);
	ASSERT_EQ(vhu_net_hdr_len(1ULL << VIRTIO_NET_F_MRG_RXBUF), 12);
	ASSERT_EQ(vhu_net_hdr_len(1ULL << VIRTIO_F_VERSION_1), 12);
	ASSERT_TRUE(vhu_has_feature(1ULL << 63, 63));
	ASSERT_TRUE(!vhu_has_feature(~0ULL, 64));
	return 0;
}

int main(void)
{
	for (unsigned i = 0; i < sizeof(frame); i++)
		frame[i] = (uint8_t)(i * 7 + 1);
	RUN(hdr_len);
	RUN(split_mrg);
	RUN(packed_mrg);
	RUN(split_nomrg);
	RUN(packed_nomrg);
	RUN(split_ahead);
	RUN(packed_ahead);
	RUN(split_burst);
	RUN(packed_burst);
	T_MAIN_END();
}
