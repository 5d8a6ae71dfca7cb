/* SPDX-License-Identifier: MIT */
/*
 * IOTLB (VIRTIO_F_ACCESS_PLATFORM) against a running vhu-blk or vhu-net, black box. A front-end
 * (tests/common/drv with iommu: ring and descriptor addresses are IOVAs, a back-end channel)
 * drives it:
 *  - hostile IOTLB_MSGs (zero size, ranges that wrap, unknown types and permissions, uaddrs
 *    outside the memory table, thousands of updates) get a non-zero status, an invalidation
 *    of nothing a zero one, and the daemon serves on;
 *  - vhu-blk: rings whose addresses are not mapped wait (a miss per area on the channel) and
 *    start with the update; a request whose data page was invalidated waits, without
 *    spinning a CPU, for the update its miss asks for (the miss names the page and the
 *    write permission), then completes with the right data; a read into a read-only mapping
 *    breaks the ring (said in the log), the daemon lives on;
 *  - vhu-blk: a device stop (GET_VRING_BASE) forgets the IOTLB: the restarted ring misses
 *    again instead of running on mappings the front-end no longer vouches for;
 *  - vhu-blk --iotlb-per-buffer: an IOVA the "guest" mapped elsewhere without telling the
 *    back-end (QEMU 7.2 under a lazy guest) is asked for again by the next request that uses
 *    it, and that request moves the new page's bytes, not the old one's.
 *  - vhu-blk: an invalidation of a running ring's own area (its avail ring) takes effect at
 *    the next request: a miss names the area, nothing completes until the update.
 *  - vhu-net --loopback: a frame whose receive buffer misses is held, and frames after it keep
 *    their order, also one that arrives after the update was taken but before the receive
 *    ring's kick that the update makes; on a receive ring whose kick is VRING_NOFD, the held
 *    frame goes out after the update with no other frame to push it; a held 300-byte frame
 *    arrives whole.
 * usage: iotlb PATH-TO-DAEMON blk|net
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_net.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../common/bad.h"
#include "../common/drv.h"
#include "../t.h"

T_DEFINE;

#define UPDATE	   2
#define INVALIDATE 3
#define RO	   1
#define WO	   2
#define RW	   3

static char sock_path[128], log_path[128], image_path[128];
static struct bad_daemon dm = { .sock = sock_path, .log = log_path };
static bool blk;

static int start(struct drv *d)
{
	ASSERT_OK(drv_open(d, sock_path));
	d->iommu = true;
	d->nq = blk ? 1 : 2;
	ASSERT_OK(drv_start(d, false, ~0ull));
	ASSERT_TRUE(d->features & (1ULL << 33));
	return 0;
}

/* The next back-end request on the channel within timeout_ms, into *m. 0 or -1. */
static int chan_recv(int fd, struct vhu_hdr *h, struct vhu_iotlb_msg *m, int timeout_ms)
{
	struct pollfd p = { fd, POLLIN, 0 };
	uint8_t buf[sizeof(*h) + sizeof(*m)];

	if (poll(&p, 1, timeout_ms) != 1)
		return -1;
	if (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) != (ssize_t)sizeof(buf))
		return -1;
	memcpy(h, buf, sizeof(*h));
	memcpy(m, buf + sizeof(*h), sizeof(*m));
	return 0;
}

/* Throws away what the channel holds. */
static void chan_drain(int fd)
{
	uint8_t buf[4096];
	while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		;
}

static int hostile(void)
{
	struct drv d;
	uint64_t v, far = 1ULL << 40;

	ASSERT_OK(start(&d));
	ASSERT_TRUE(drv_iotlb(&d, UPDATE, far, 0, 0, RW) > 0);		       /* zero size */
	ASSERT_TRUE(drv_iotlb(&d, UPDATE, UINT64_MAX - 100, 4096, 0, RW) > 0); /* wraps */
	ASSERT_TRUE(drv_iotlb(&d, UPDATE, far, 4096, UINT64_MAX - 2048 - (uintptr_t)d.mem, RW) >
		    0);						 /* uaddr wraps */
	ASSERT_TRUE(drv_iotlb(&d, UPDATE, far, 4096, 0, 0) > 0); /* no permission */
	ASSERT_TRUE(drv_iotlb(&d, UPDATE, far, 4096, 0, 7) > 0); /* unknown permission */
	ASSERT_TRUE(drv_iotlb(&d, 1, far, 4096, 0, RW) > 0);	 /* MISS: ours to send */
	ASSERT_TRUE(drv_iotlb(&d, 4, far, 4096, 0, RW) > 0);	 /* ACCESS_FAIL */
	ASSERT_TRUE(drv_iotlb(&d, 77, far, 4096, 0, RW) > 0);	 /* unknown type */
	ASSERT_TRUE(drv_iotlb(&d, UPDATE, far, 4096, DRV_MEM_SIZE, RW) > 0); /* past memory */
	ASSERT_TRUE(drv_iotlb(&d, UPDATE, far, 8192, DRV_MEM_SIZE - 4096, RW) > 0);
	ASSERT_TRUE(drv_iotlb(&d, UPDATE, far, 4096, -(int64_t)(uintptr_t)d.mem + 4096, RW) > 0);
	ASSERT_EQ(drv_iotlb(&d, INVALIDATE, far, 4096, 0, 0), 0); /* nothing there: fine */
	ASSERT_TRUE(drv_iotlb(&d, INVALIDATE, far, 0, 0, 0) > 0);
	ASSERT_TRUE(drv_iotlb(&d, INVALIDATE, UINT64_MAX - 10, 4096, 0, 0) > 0);
	/* Far more updates than the table holds: each one taken (older ones evicted). */
	for (unsigned i = 0; i < 6000; i++)
		if (drv_iotlb(&d, UPDATE, far + 4096ull * i, 4096, (i % 1024) * 4096ull, RO) != 0) {
			T_FAILF("update %u refused", i);
			return -1;
		}
	ASSERT_OK(drv_get_u64(&d, VHU_REQ_GET_FEATURES, &v));
	ASSERT_TRUE(alive(dm.pid));
	ASSERT_TRUE(grep_log(log_path, "IOTLB update.*size 0"));
	ASSERT_TRUE(grep_log(log_path, "not inside one region of the memory table"));
	ASSERT_TRUE(grep_log(log_path, "permission 7 is not RO, WO or RW"));
	drv_close(&d);
	return 0;
}

static uint64_t data(unsigned i)
{
	return drv_gpa(0x180000 + (uint64_t)i * 4096);
}

static uint8_t *data_ptr(struct drv *d, unsigned i)
{
	return d->mem + (data(i) - DRV_GPA_BASE);
}

/* Queues one 4 KiB request at sector with data at data(slot); does not wait. */
static void blk_submit(struct drv *d, unsigned slot, uint32_t type, uint64_t sector)
{
	uint8_t *hb = drv_buf(d, 0, 2 * slot), *st = drv_buf(d, 0, 2 * slot + 1);
	struct virtio_blk_outhdr *h = (void *)hb;
	uint64_t a[3] = { drv_buf_gpa(d, 0, 2 * slot), data(slot),
			  drv_buf_gpa(d, 0, 2 * slot + 1) };
	uint32_t l[3] = { sizeof(*h), 4096, 1 };
	uint16_t f[3] = { 0, type == VIRTIO_BLK_T_IN ? VRING_DESC_F_WRITE : 0, VRING_DESC_F_WRITE };

	h->type = type;
	h->ioprio = 0;
	h->sector = sector;
	*st = 0xff;
	drv_add_raw(d, 0, a, l, f, 3);
}

static int blk_io(struct drv *d, unsigned slot, uint32_t type, uint64_t sector)
{
	uint32_t id, len;

	blk_submit(d, slot, type, sector);
	if (drv_get_used(d, 0, &id, &len, 3000) != 1)
		return 0xff;
	return *drv_buf(d, 0, 2 * slot + 1);
}

static int misses(void)
{
	struct drv d;
	struct vhu_hdr h;
	struct vhu_iotlb_msg m;
	uint32_t id, len;
	unsigned nmiss = 0;

	ASSERT_OK(start(&d));
	/* Nothing mapped: the ring's areas miss, on the channel, without NEED_REPLY. */
	while (chan_recv(d.chan, &h, &m, nmiss ? 200 : 3000) == 0) {
		ASSERT_EQ(h.request, VHU_BREQ_IOTLB_MSG);
		ASSERT_EQ(h.flags, VHU_VERSION);
		ASSERT_EQ(m.type, 1);
		ASSERT_TRUE(m.iova >= DRV_GPA_BASE && m.iova < DRV_GPA_BASE + DRV_MEM_SIZE);
		nmiss++;
	}
	ASSERT_TRUE(nmiss >= 1 && nmiss <= 3);
	ASSERT_EQ(drv_iotlb(&d, UPDATE, DRV_GPA_BASE, DRV_MEM_SIZE, 0, RW), 0);
	memset(data_ptr(&d, 0), 0x5a, 4096);
	ASSERT_EQ(blk_io(&d, 0, VIRTIO_BLK_T_OUT, 8), VIRTIO_BLK_S_OK);
	/* The data page of slot 1 taken back: a read into it waits for its miss's answer. */
	ASSERT_EQ(drv_iotlb(&d, INVALIDATE, data(1), 4096, 0, 0), 0);
	memset(data_ptr(&d, 1), 0, 4096);
	long t0 = cpu_ticks(dm.pid);
	blk_submit(&d, 1, VIRTIO_BLK_T_IN, 8);
	ASSERT_OK(chan_recv(d.chan, &h, &m, 3000));
	ASSERT_EQ(m.type, 1);
	ASSERT_EQ(m.iova, data(1));
	ASSERT_EQ(m.perm, WO); /* the device writes there */
	ASSERT_EQ(drv_get_used(&d, 0, &id, &len, 500), 0);
	long spent = cpu_ticks(dm.pid) - t0;
	if (t0 >= 0 && spent > 15) {
		T_FAILF("the daemon used %ld ticks while the ring waited for the IOTLB", spent);
		return -1;
	}
	ASSERT_EQ(drv_iotlb(&d, UPDATE, data(1), 4096, data(1) - DRV_GPA_BASE, WO), 0);
	ASSERT_EQ(drv_get_used(&d, 0, &id, &len, 3000), 1);
	ASSERT_EQ(*drv_buf(&d, 0, 3), VIRTIO_BLK_S_OK);
	ASSERT_OK(memcmp(data_ptr(&d, 0), data_ptr(&d, 1), 4096));
	/* Read-only mapping, device write: refused, the ring is broken, the daemon lives. */
	ASSERT_EQ(drv_iotlb(&d, UPDATE, data(2), 4096, data(2) - DRV_GPA_BASE, RO), 0);
	blk_submit(&d, 2, VIRTIO_BLK_T_IN, 8);
	ASSERT_EQ(drv_get_used(&d, 0, &id, &len, 500), 0);
	ASSERT_TRUE(grep_log(log_path, "IOTLB mapping does not allow device writes"));
	ASSERT_TRUE(alive(dm.pid));
	chan_drain(d.chan);
	drv_close(&d);
	return 0;
}

/* Answers the channel's misses, page by page (the page at from with the one at to, the others
 * with themselves), until the request on ring 0 completes. 0, or -1 after 5 s. */
static int serve_until_used(struct drv *d, uint64_t from, uint64_t to, unsigned *nmiss)
{
	struct vhu_hdr h;
	struct vhu_iotlb_msg m;
	uint32_t id, len;

	for (int i = 0; i < 250; i++) {
		if (drv_get_used(d, 0, &id, &len, 10) == 1)
			return 0;
		while (chan_recv(d->chan, &h, &m, 10) == 0) {
			uint64_t page = m.iova & ~0xfffull;
			if (m.type != 1)
				continue;
			(*nmiss)++;
			if (drv_iotlb(d, UPDATE, page, 4096,
				      (page == from ? to : page) - DRV_GPA_BASE, RW) != 0)
				return -1;
		}
	}
	return -1;
}

/*
 * --iotlb-per-buffer: each request's mappings are forgotten once the daemon took it. The
 * "guest" then points IOVA data(0) at another page and sends nothing (as QEMU 7.2 does for a
 * lazy intel_iommu=on guest): the next request at data(0) must miss and write the new page's
 * bytes. Without the flag it would write the old page's, through the mapping it kept.
 */
static int per_buffer(void)
{
	struct drv d;
	unsigned nmiss = 0;

	ASSERT_OK(start(&d));
	msleep(200);
	chan_drain(d.chan);
	ASSERT_EQ(drv_iotlb(&d, UPDATE, DRV_GPA_BASE, DRV_MEM_SIZE, 0, RW), 0);
	memset(data_ptr(&d, 0), 0x11, 4096);
	memset(data_ptr(&d, 1), 0x22, 4096);
	blk_submit(&d, 0, VIRTIO_BLK_T_OUT, 8);
	ASSERT_OK(serve_until_used(&d, 0, 0, &nmiss));
	ASSERT_EQ(*drv_buf(&d, 0, 1), VIRTIO_BLK_S_OK);
	/* IOVA data(0) now means data(1)'s page; no message says so. */
	nmiss = 0;
	blk_submit(&d, 0, VIRTIO_BLK_T_OUT, 16);
	ASSERT_OK(serve_until_used(&d, data(0), data(1), &nmiss));
	ASSERT_EQ(*drv_buf(&d, 0, 1), VIRTIO_BLK_S_OK);
	if (nmiss == 0) {
		T_FAILF("the second request at the same IOVAs missed nothing: mappings kept");
		return -1;
	}
	/* What sector 16 holds: the new page's bytes. */
	blk_submit(&d, 2, VIRTIO_BLK_T_IN, 16);
	ASSERT_OK(serve_until_used(&d, 0, 0, &nmiss));
	ASSERT_EQ(*drv_buf(&d, 0, 5), VIRTIO_BLK_S_OK);
	ASSERT_OK(memcmp(data_ptr(&d, 2), data_ptr(&d, 1), 4096));
	ASSERT_TRUE(alive(dm.pid));
	chan_drain(d.chan);
	drv_close(&d);
	return 0;
}

static int state(struct drv *d, uint32_t req, uint32_t num)
{
	struct vhu_vring_state s = { 0, num };
	return drv_call_ack(d, req, &s, sizeof(s), NULL, 0) == 0 ? 0 : -1;
}

/*
 * A device stop (GET_VRING_BASE of its last started ring) forgets the IOTLB: QEMU 7.2 sends no
 * invalidation while the device is stopped (nor for the firmware's identity mappings), so
 * the ring restarted at the same addresses, with no SET_MEM_TABLE in between, must miss
 * again rather than run on what was mapped before.
 */
static int stop_forgets(void)
{
	struct drv d;
	struct vhu_hdr h;
	struct vhu_iotlb_msg m;
	struct vhu_vring_state st = { 0, 0 };
	struct drv_ring *r;
	unsigned nmiss = 0;

	ASSERT_OK(start(&d));
	ASSERT_EQ(drv_iotlb(&d, UPDATE, DRV_GPA_BASE, DRV_MEM_SIZE, 0, RW), 0);
	memset(data_ptr(&d, 0), 0x33, 4096);
	ASSERT_EQ(blk_io(&d, 0, VIRTIO_BLK_T_OUT, 16), VIRTIO_BLK_S_OK);
	chan_drain(d.chan);
	ASSERT_OK(drv_send(&d, VHU_REQ_GET_VRING_BASE, VHU_VERSION, &st, sizeof(st), NULL, 0));
	ASSERT_EQ(drv_recv(&d, &h, &st, sizeof(st), 3000), (int)sizeof(st));
	r = &d.r[0];
	struct vhu_vring_addr a = { .index = 0,
				    .desc = drv_gpa(r->desc_off),
				    .avail = drv_gpa(r->avail_off),
				    .used = drv_gpa(r->used_off) };
	uint64_t u = 0;
	ASSERT_OK(state(&d, VHU_REQ_SET_VRING_NUM, DRV_QSIZE));
	ASSERT_OK(state(&d, VHU_REQ_SET_VRING_BASE, st.num));
	ASSERT_EQ(drv_call_ack(&d, VHU_REQ_SET_VRING_ADDR, &a, sizeof(a), NULL, 0), 0);
	ASSERT_EQ(drv_call_ack(&d, VHU_REQ_SET_VRING_KICK, &u, 8, &r->kick, 1), 0);
	ASSERT_OK(state(&d, VHU_REQ_SET_VRING_ENABLE, 1));
	while (chan_recv(d.chan, &h, &m, nmiss ? 200 : 2000) == 0) {
		ASSERT_EQ(m.type, 1);
		nmiss++;
	}
	if (nmiss == 0) {
		T_FAILF("the restarted ring missed nothing: the IOTLB outlived the device stop");
		return -1;
	}
	/* Answered, the ring runs again. */
	ASSERT_EQ(drv_iotlb(&d, UPDATE, DRV_GPA_BASE, DRV_MEM_SIZE, 0, RW), 0);
	ASSERT_EQ(blk_io(&d, 1, VIRTIO_BLK_T_IN, 16), VIRTIO_BLK_S_OK);
	ASSERT_OK(memcmp(data_ptr(&d, 0), data_ptr(&d, 1), 4096));
	chan_drain(d.chan);
	drv_close(&d);
	return 0;
}

/* A running ring whose avail ring is invalidated: the ring's own areas are translations too
 * ("invalidations take effect for every later translation"), not pointers kept from its start. */
static int ring_invalidated(void)
{
	struct drv d;
	struct vhu_hdr h;
	struct vhu_iotlb_msg m;
	uint32_t id, len;
	uint64_t avail;

	ASSERT_OK(start(&d));
	avail = drv_gpa(d.r[0].avail_off);
	ASSERT_EQ(drv_iotlb(&d, UPDATE, DRV_GPA_BASE, DRV_MEM_SIZE, 0, RW), 0);
	memset(data_ptr(&d, 0), 0x77, 4096);
	ASSERT_EQ(blk_io(&d, 0, VIRTIO_BLK_T_OUT, 24), VIRTIO_BLK_S_OK);
	chan_drain(d.chan);
	ASSERT_EQ(drv_iotlb(&d, INVALIDATE, avail, 4096, 0, 0), 0);
	memset(data_ptr(&d, 1), 0, 4096);
	blk_submit(&d, 1, VIRTIO_BLK_T_IN, 24);
	if (chan_recv(d.chan, &h, &m, 3000) != 0) {
		T_FAILF("no miss after the avail ring was invalidated: the ring ran on its old "
			"pointer");
		return -1;
	}
	ASSERT_EQ(m.type, 1);
	ASSERT_EQ(m.iova & ~0xfffull, avail);
	ASSERT_EQ(m.perm, RO);
	ASSERT_EQ(drv_get_used(&d, 0, &id, &len, 500), 0);
	/* Mapped again: the request goes through with the data written before. */
	ASSERT_EQ(drv_iotlb(&d, UPDATE, avail, 4096, avail - DRV_GPA_BASE, RO), 0);
	ASSERT_EQ(drv_get_used(&d, 0, &id, &len, 3000), 1);
	ASSERT_EQ(*drv_buf(&d, 0, 3), VIRTIO_BLK_S_OK);
	ASSERT_OK(memcmp(data_ptr(&d, 0), data_ptr(&d, 1), 4096));
	chan_drain(d.chan);
	drv_close(&d);
	return 0;
}

/* A loopback frame of len bytes (non-IP: only its MACs are swapped) after a zero virtio-net
 * header in tx slot `slot`, carrying mark (0: the pattern of each byte's position); its source is
 * the broadcast address, so that the reflected frame goes to the broadcast address, which every
 * receive filter takes. */
static void net_frame(struct drv *d, unsigned slot, uint32_t len, uint8_t mark)
{
	uint8_t *b = drv_buf(d, 1, slot);

	memset(b, 0, 12);
	memset(b + 12, mark, len);
	for (uint32_t i = 0; !mark && i < len; i++)
		b[12 + i] = (uint8_t)(i * 7 + 3); /* mark 0: a pattern of the byte's position */
	memcpy(b + 12, (const uint8_t[]){ 0x02, 0, 0, 0, 0, 0x01 }, 6);
	memset(b + 12 + 6, 0xff, 6);
	b[12 + 12] = 0x88;
	b[12 + 13] = 0xb5;
	drv_add_buf(d, 1, slot, 12 + len, false);
}

/* The tx slots of held_setup()'s five receive buffers, in the order they are posted. */
static const unsigned rx_slots[] = { 0, 2, 1, 4, 5 };

/* Port `d` for the held-frame tests: every page mapped but that of rx slots 2 and 3, five
 * 64-byte receive buffers (slots 0, 2, 1, 4, 5: the second on that page; ids in rx_id), and
 * frame 1 (flen bytes, 66 to 300, with mark) sent. It needs two or more of them (MRG_RXBUF):
 * the second misses, the daemon asks for the page, and the frame is held. Returns the page's
 * address, or 0. */
static uint64_t held_setup(struct drv *d, int *rx_id, uint32_t flen, uint8_t mark)
{
	struct vhu_hdr h;
	struct vhu_iotlb_msg m;
	uint32_t id, len;

	if (!(d->features & (1ULL << VIRTIO_NET_F_MRG_RXBUF)))
		return 0;
	uint64_t hole = drv_buf_gpa(d, 0, 2), end = DRV_GPA_BASE + DRV_MEM_SIZE;
	if (hole % 4096 || drv_buf_gpa(d, 0, 4) != hole + 4096)
		return 0;
	if (drv_iotlb(d, UPDATE, DRV_GPA_BASE, hole - DRV_GPA_BASE, 0, RW) ||
	    drv_iotlb(d, UPDATE, hole + 4096, end - hole - 4096, hole + 4096 - DRV_GPA_BASE, RW))
		return 0;
	msleep(100);
	chan_drain(d->chan); /* the rings' misses before the updates */
	for (unsigned i = 0; i < 5; i++)
		rx_id[i] = drv_add_buf(d, 0, rx_slots[i], 64, true);
	net_frame(d, 0, flen, mark);
	if (drv_get_used(d, 1, &id, &len, 3000) != 1 || chan_recv(d->chan, &h, &m, 3000) ||
	    m.type != 1 || (m.iova & ~0xfffull) != hole || m.perm != WO)
		return 0;
	if (drv_get_used(d, 0, &id, &len, 300) != 0) /* held */
		return 0;
	return hole;
}

/* Frame 1 of held_setup() in the first two buffers (num_buffers 2), ids[0..1], lens[0..1]. */
static int held_first_ok(struct drv *d, const int *rx_id, const uint32_t *ids, const uint32_t *lens)
{
	ASSERT_EQ(ids[0], (uint32_t)rx_id[0]);
	ASSERT_EQ(lens[0], 64);
	ASSERT_EQ(drv_buf(d, 0, 0)[12 + 20], 0xf1);
	ASSERT_EQ(drv_buf(d, 0, 0)[10], 2);
	ASSERT_EQ(ids[1], (uint32_t)rx_id[1]);
	ASSERT_EQ(lens[1], 12 + 100 - 64);
	return 0;
}

/* The update for held_setup()'s page, as a message (the caller sends it). */
static struct vhu_iotlb_msg held_update(const struct drv *d, uint64_t hole)
{
	return (struct vhu_iotlb_msg){ .iova = hole,
				       .size = 4096,
				       .uaddr = (uint64_t)(uintptr_t)d->mem + (hole - DRV_GPA_BASE),
				       .perm = RW,
				       .type = UPDATE };
}

/*
 * vhu-net: frame 1 is held (held_setup). The daemon is then stopped while the update and frame
 * 2's kick are sent, so that it takes the update first and frame 2 before the receive ring's
 * kick that the update makes (the kick eventfd is only readable after it): frame 2 fits one
 * buffer, and must still come after frame 1, not in the buffer frame 1 left.
 */
static int held_order(void)
{
	struct drv d;
	uint32_t ids[3], lens[3];
	int rx_id[5], st;
	uint64_t hole;

	ASSERT_OK(start(&d));
	ASSERT_TRUE((hole = held_setup(&d, rx_id, 100, 0xf1)) != 0);
	ASSERT_OK(kill(dm.pid, SIGSTOP));
	ASSERT_EQ(waitpid(dm.pid, &st, WUNTRACED), dm.pid);
	ASSERT_TRUE(WIFSTOPPED(st));
	struct vhu_iotlb_msg u = held_update(&d, hole);
	ASSERT_OK(drv_send(&d, VHU_REQ_IOTLB_MSG, VHU_VERSION, &u, sizeof(u), NULL, 0));
	net_frame(&d, 1, 40, 0xf2);
	ASSERT_OK(kill(dm.pid, SIGCONT));

	for (unsigned k = 0; k < 3; k++)
		ASSERT_EQ(drv_get_used(&d, 0, &ids[k], &lens[k], 3000), 1);
	ASSERT_OK(held_first_ok(&d, rx_id, ids, lens));
	/* Frame 2 in the third. */
	ASSERT_EQ(ids[2], (uint32_t)rx_id[2]);
	ASSERT_EQ(lens[2], 12 + 40);
	ASSERT_EQ(drv_buf(&d, 0, 1)[12 + 20], 0xf2);
	ASSERT_TRUE(alive(dm.pid));
	chan_drain(d.chan);
	drv_close(&d);
	return 0;
}

/*
 * vhu-net: the held frame delivered by the update alone, no other frame coming.
 * - nofd: on a receive ring whose kick is VRING_NOFD. The update has no eventfd to kick
 *   there: the daemon must try the held frame again by itself (it polls the ring while a
 *   frame is held), not keep it until the next frame.
 * - a 300-byte frame: longer than vhu-net's batch copies (256 bytes), so it comes through
 *   the daemon's one-frame buffer, which the next long frame overwrites; held, it must be
 *   kept whole, every byte checked across the five buffers it fills (a vhu-net that kept only
 *   the first 128 bytes of it fails at byte 128).
 */
static int held_deliver(bool nofd, uint32_t flen)
{
	struct drv d;
	uint32_t ids[5], lens[5];
	uint64_t hole, u64 = 0 | VHU_VRING_NOFD;
	int rx_id[5];
	unsigned nbuf = (12 + flen + 63) / 64;

	ASSERT_OK(start(&d));
	if (nofd)
		ASSERT_EQ(drv_call_ack(&d, VHU_REQ_SET_VRING_KICK, &u64, 8, NULL, 0), 0);
	ASSERT_TRUE(nbuf <= 5);
	ASSERT_TRUE((hole = held_setup(&d, rx_id, flen, 0)) != 0);
	struct vhu_iotlb_msg u = held_update(&d, hole);
	ASSERT_OK(drv_send(&d, VHU_REQ_IOTLB_MSG, VHU_VERSION, &u, sizeof(u), NULL, 0));
	for (unsigned k = 0; k < nbuf; k++) {
		if (drv_get_used(&d, 0, &ids[k], &lens[k], 3000) != 1) {
			T_FAILF("the held frame was not delivered after the update (buffer %u)", k);
			return -1;
		}
	}
	ASSERT_EQ(drv_buf(&d, 0, 0)[10], nbuf); /* num_buffers */
	/* Every byte past the MACs and type, in order across the buffers. */
	uint32_t at = 0; /* bytes of header and frame seen */
	for (unsigned k = 0; k < nbuf; k++) {
		ASSERT_EQ(ids[k], (uint32_t)rx_id[k]);
		const uint8_t *b = drv_buf(&d, 0, rx_slots[k]);
		for (uint32_t j = 0; j < lens[k]; j++, at++) {
			if (at < 12 + 14)
				continue;
			uint32_t i = at - 12;
			if (b[j] != (uint8_t)(i * 7 + 3)) {
				T_FAILF("frame byte %u is 0x%02x, sent 0x%02x", i, b[j],
					(uint8_t)(i * 7 + 3));
				return -1;
			}
		}
	}
	ASSERT_EQ(at, 12 + flen);
	ASSERT_TRUE(alive(dm.pid));
	chan_drain(d.chan);
	drv_close(&d);
	return 0;
}

static int held_nofd(void)
{
	return held_deliver(true, 100);
}

static int held_long(void)
{
	return held_deliver(false, 300);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s DAEMON blk|net\n", argv[0]);
		return T_FAIL;
	}
	blk = !strcmp(argv[2], "blk");
	dm.name = blk ? "vhu-blk" : "vhu-net";
	snprintf(sock_path, sizeof(sock_path), "/tmp/vhu-iotlb-%d.sock", getpid());
	snprintf(log_path, sizeof(log_path), "/tmp/vhu-iotlb-%d.log", getpid());
	snprintf(image_path, sizeof(image_path), "/tmp/vhu-iotlb-%d.img", getpid());
	if (blk) {
		if (bad_make_image(image_path, 16 << 20))
			return T_FAIL;
		bad_start(
			&dm, argv[1],
			(const char *[]){ "--socket-path", sock_path, "--image", image_path, NULL },
			want_valgrind());
	} else {
		bad_start(&dm, argv[1],
			  (const char *[]){ "--socket-path", sock_path, "--loopback", NULL },
			  want_valgrind());
	}

	RUN(hostile);
	if (!blk) {
		RUN(held_order);
		RUN(held_nofd);
		RUN(held_long);
	} else {
		RUN(misses);
		RUN(stop_forgets);
		RUN(ring_invalidated);
		/* The same daemon again, with --iotlb-per-buffer. */
		bad_stop(&dm);
		unlink(sock_path);
		bad_start(&dm, argv[1],
			  (const char *[]){ "--socket-path", sock_path, "--image", image_path,
					    "--iotlb-per-buffer", NULL },
			  want_valgrind());
		RUN(per_buffer);
	}

	bad_stop(&dm);
	bad_finish(&dm, 40);
	unlink(image_path);
	T_MAIN_END();
}
