/* SPDX-License-Identifier: MIT */
/*
 * Back-end core, in process: a test device (it consumes queue 1 and returns each buffer)
 * runs vhu_backend_dispatch() on a thread; the test drives it over a socketpair with the raw
 * test driver and checks the protocol behaviour real front-ends depend on.
 */
#include <errno.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>
#include <poll.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <vhu/vhu.h>

#include "common/drv.h"
#include "t.h"

T_DEFINE;

struct tdev {
	struct vhu_backend *be;
	pthread_mutex_t lock;
	bool started[DRV_NQ];
	unsigned starts, stops, enables;
	uint8_t status;
	volatile bool quit;
	int last_err;
	uint8_t config[16];
};

static void tlog(void *o, int level, const char *msg)
{
	(void)o;
	if (getenv("VERBOSE") || level == VHU_LOG_ERR)
		fprintf(stderr, "  backend %s: %s\n", vhu_log_level_name(level), msg);
}

static void q_start(void *dev, struct vhu_virtq *vq)
{
	struct tdev *t = dev;
	t->started[vhu_virtq_index(vq)] = true;
	t->starts++;
}

static void q_stop(void *dev, struct vhu_virtq *vq)
{
	struct tdev *t = dev;
	t->started[vhu_virtq_index(vq)] = false;
	t->stops++;
}

static void q_enable(void *dev, struct vhu_virtq *vq, bool on)
{
	(void)vq;
	((struct tdev *)dev)->enables += on;
}

static void status_set(void *dev, uint8_t s)
{
	((struct tdev *)dev)->status = s;
}

static int get_config(void *dev, void *buf, uint32_t off, uint32_t len)
{
	struct tdev *t = dev;
	if (off + len > sizeof(t->config))
		return -EINVAL;
	memcpy(buf, t->config + off, len);
	return 0;
}

static const struct vhu_device_ops ops = {
	.features = (1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_F_RING_PACKED) |
		    (1ULL << VIRTIO_RING_F_EVENT_IDX) | (1ULL << VIRTIO_RING_F_INDIRECT_DESC),
	.protocol_features = 1ULL << VHU_PROTO_F_CONFIG,
	.queue_num = 2,
	.get_config = get_config,
	.queue_start = q_start,
	.queue_stop = q_stop,
	.queue_enable = q_enable,
	.status_set = status_set,
	.log = tlog,
	.log_level = VHU_LOG_DEBUG,
};

static void *device_thread(void *arg)
{
	struct tdev *t = arg;
	struct vhu_elem e;

	while (!t->quit) {
		struct pollfd p = { .fd = vhu_backend_fd(t->be), .events = POLLIN };
		if (poll(&p, 1, 2) > 0) {
			int r = vhu_backend_dispatch(t->be);
			if (r) {
				t->last_err = r;
				break;
			}
		}
		struct vhu_virtq *vq = vhu_backend_virtq(t->be, 1);
		if (t->started[1]) {
			while (vhu_virtq_pop(vq, &e) == 1)
				vhu_virtq_push(vq, &e, e.in_len);
			vhu_virtq_flush(vq);
		}
	}
	return NULL;
}

static struct tdev dev;
static struct drv d;
static pthread_t thr;

static int start_pair(int packed) /* -1: connect only */
{
	int sp[2];

	memset(&dev, 0, sizeof(dev));
	memcpy(dev.config, "vhu-config-bytes", 16);
	ASSERT_OK(vhu_backend_new(&dev.be, &ops, &dev, DRV_NQ));
	ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp));
	ASSERT_OK(vhu_backend_attach(dev.be, sp[1]));
	ASSERT_EQ(vhu_backend_attach(dev.be, sp[1]), -EBUSY);
	ASSERT_OK(drv_open_fd(&d, sp[0]));
	ASSERT_OK(pthread_create(&thr, NULL, device_thread, &dev));
	if (packed >= 0)
		ASSERT_OK(drv_start(&d, packed == 1, ~0ull));
	return 0;
}

static void stop_pair(void)
{
	dev.quit = true;
	pthread_join(thr, NULL);
	drv_close(&d);
	vhu_backend_free(dev.be);
}

/* One buffer through queue 1. */
static int roundtrip(unsigned slot)
{
	uint32_t id, len;
	int head = drv_add_buf(&d, 1, slot, 100, true);
	ASSERT_TRUE(head >= 0);
	ASSERT_EQ(drv_get_used(&d, 1, &id, &len, 2000), 1);
	ASSERT_EQ(id, head);
	ASSERT_EQ(len, 100);
	return 0;
}

static int get_base(unsigned q, uint32_t *num)
{
	struct vhu_vring_state s = { q, 0 };
	struct vhu_hdr h;
	ASSERT_OK(drv_send(&d, VHU_REQ_GET_VRING_BASE, VHU_VERSION, &s, 8, NULL, 0));
	ASSERT_EQ(drv_recv(&d, &h, &s, sizeof(s), 2000), 8);
	ASSERT_TRUE(h.flags & VHU_FLAG_REPLY);
	ASSERT_EQ(s.index, q);
	*num = s.num;
	return 0;
}

static int handshake_and_queries(void)
{
	uint64_t v;

	ASSERT_OK(start_pair(false));
	ASSERT_TRUE(dev.started[0] && dev.started[1]);
	ASSERT_EQ(dev.enables, 2);
	ASSERT_OK(drv_get_u64(&d, VHU_REQ_GET_QUEUE_NUM, &v));
	ASSERT_EQ(v, 2);
	ASSERT_OK(drv_get_u64(&d, VHU_REQ_GET_MAX_MEM_SLOTS, &v));
	ASSERT_EQ(v, 256);
	ASSERT_OK(drv_get_u64(&d, VHU_REQ_GET_PROTOCOL_FEATURES, &v));
	ASSERT_TRUE(v & (1ull << VHU_PROTO_F_CONFIG));
	ASSERT_TRUE(!(v & (1ull << VHU_PROTO_F_LOG_SHMFD))); /* not offered: not implemented */
	ASSERT_OK(roundtrip(0));
	ASSERT_OK(roundtrip(1));
	stop_pair();
	ASSERT_OK(dev.last_err);
	return 0;
}

static int config_and_status(void)
{
	struct vhu_config c = { .offset = 4, .size = 6 };
	struct vhu_hdr h;
	uint64_t v = VIRTIO_CONFIG_S_DRIVER_OK | VIRTIO_CONFIG_S_ACKNOWLEDGE;

	ASSERT_OK(start_pair(false));
	ASSERT_OK(drv_send(&d, VHU_REQ_GET_CONFIG, VHU_VERSION, &c, 12 + 6, NULL, 0));
	ASSERT_EQ(drv_recv(&d, &h, &c, sizeof(c), 2000), 18);
	ASSERT_OK(memcmp(c.region, "config", 6));
	/* Out of the device's range: an empty reply, and the connection lives on. */
	c = (struct vhu_config){ .offset = 12, .size = 8 };
	ASSERT_OK(drv_send(&d, VHU_REQ_GET_CONFIG, VHU_VERSION, &c, 12 + 8, NULL, 0));
	ASSERT_EQ(drv_recv(&d, &h, &c, sizeof(c), 2000), 0);
	ASSERT_EQ(drv_call_ack(&d, VHU_REQ_SET_STATUS, &v, 8, NULL, 0), 0);
	ASSERT_EQ(dev.status, v);
	ASSERT_OK(drv_get_u64(&d, VHU_REQ_GET_STATUS, &v));
	ASSERT_EQ(v, VIRTIO_CONFIG_S_DRIVER_OK | VIRTIO_CONFIG_S_ACKNOWLEDGE);
	/* SET_CONFIG without a set_config op: refused with a non-zero ack, not a hang-up. */
	c = (struct vhu_config){ .offset = 0, .size = 1 };
	ASSERT_TRUE(drv_call_ack(&d, VHU_REQ_SET_CONFIG, &c, 13, NULL, 0) > 0);
	ASSERT_OK(roundtrip(0));
	stop_pair();
	ASSERT_OK(dev.last_err);
	return 0;
}

/* QEMU 7.2 sends SET_STATUS(0) before GET_VRING_BASE: the ring state must survive it. */
static int status_zero_keeps_rings(bool packed)
{
	uint64_t zero = 0;
	uint32_t num;

	ASSERT_OK(start_pair(packed));
	for (unsigned i = 0; i < 5; i++)
		ASSERT_OK(roundtrip(i));
	ASSERT_EQ(drv_call_ack(&d, VHU_REQ_SET_STATUS, &zero, 8, NULL, 0), 0);
	ASSERT_OK(get_base(1, &num));
	if (packed)
		ASSERT_EQ(num, 5u | 1u << 15 | (5u | 1u << 15) << 16);
	else
		ASSERT_EQ(num, 5);
	ASSERT_TRUE(!dev.started[1]); /* GET_VRING_BASE stopped it */
	stop_pair();
	return 0;
}

static int status_zero_split(void)
{
	return status_zero_keeps_rings(false);
}

static int status_zero_packed(void)
{
	return status_zero_keeps_rings(true);
}

/* DPDK virtio-user re-sends SET_MEM_TABLE while running: rings keep their place. */
static int live_mem_table(void)
{
	uint32_t num;

	ASSERT_OK(start_pair(false));
	ASSERT_OK(roundtrip(0));
	ASSERT_OK(roundtrip(1));
	unsigned stops = dev.stops;
	ASSERT_OK(drv_set_mem(&d));
	ASSERT_TRUE(dev.stops > stops);
	ASSERT_TRUE(dev.started[0] && dev.started[1]);
	ASSERT_OK(roundtrip(2));
	ASSERT_OK(get_base(1, &num));
	ASSERT_EQ(num, 3);
	stop_pair();
	ASSERT_OK(dev.last_err);
	return 0;
}

static int mem_slots(void)
{
	struct vhu_mem_single r = { 0 };

	ASSERT_OK(start_pair(false));
	/* A second copy of the region (as each QEMU vhost_dev sends), then remove it twice. */
	r.region = (struct vhu_mem_region){ DRV_GPA_BASE, DRV_MEM_SIZE, (uint64_t)(uintptr_t)d.mem,
					    0 };
	ASSERT_EQ(drv_call_ack(&d, VHU_REQ_ADD_MEM_REG, &r, sizeof(r), &d.memfd, 1), 0);
	ASSERT_OK(roundtrip(0));
	ASSERT_EQ(drv_call_ack(&d, VHU_REQ_REM_MEM_REG, &r, sizeof(r), NULL, 0), 0);
	ASSERT_OK(roundtrip(1)); /* still mapped: one reference left */
	/* Removing an unknown region is refused but not fatal. */
	struct vhu_mem_single x = r;
	x.region.guest_phys_addr += 1ull << 30;
	ASSERT_TRUE(drv_call_ack(&d, VHU_REQ_REM_MEM_REG, &x, sizeof(x), NULL, 0) > 0);
	ASSERT_OK(roundtrip(2));
	stop_pair();
	ASSERT_OK(dev.last_err);
	return 0;
}

static int reset_device(void)
{
	ASSERT_OK(start_pair(false));
	ASSERT_OK(roundtrip(0));
	ASSERT_EQ(drv_call_ack(&d, VHU_REQ_RESET_DEVICE, NULL, 0, NULL, 0), 0);
	ASSERT_TRUE(!dev.started[0] && !dev.started[1]);
	ASSERT_EQ(vhu_backend_features(dev.be), 0);
	stop_pair();
	ASSERT_OK(dev.last_err);
	return 0;
}

/* QEMU 7.2 restarts rings (SET_VRING_CALL, SET_FEATURES again) while they run: a ring whose
 * device had turned kicks off in the shared notification fields starts again with kicks on. */
static int restart_turns_kicks_on(bool packed)
{
	/* Split without EVENT_IDX uses used->flags; packed with EVENT_IDX the event area. */
	uint64_t want = packed ? ~0ull : ~(1ULL << VIRTIO_RING_F_EVENT_IDX);
	struct drv_ring *r = &d.r[1];
	volatile uint16_t *flag;
	struct {
		uint64_t index;
	} call = { 1 };

	ASSERT_OK(start_pair(-1));
	ASSERT_OK(drv_start(&d, packed, want));
	ASSERT_OK(roundtrip(0));
	flag = packed ? &r->dev_ev->flags : &r->used->flags;
	*flag = packed ? VRING_PACKED_EVENT_FLAG_DISABLE : VRING_USED_F_NO_NOTIFY;
	unsigned starts = dev.starts;
	ASSERT_EQ(drv_call_ack(&d, VHU_REQ_SET_VRING_CALL, &call, 8, &r->call, 1), 0);
	ASSERT_TRUE(dev.starts > starts);
	if (packed)
		ASSERT_EQ(*flag, VRING_PACKED_EVENT_FLAG_DESC);
	else
		ASSERT_EQ(*flag, 0);
	ASSERT_OK(roundtrip(1));
	stop_pair();
	ASSERT_OK(dev.last_err);
	return 0;
}

static int restart_kicks_split(void)
{
	return restart_turns_kicks_on(false);
}

static int restart_kicks_packed(void)
{
	return restart_turns_kicks_on(true);
}

static int no_protocol_features(void)
{
	uint64_t f;

	ASSERT_OK(start_pair(-1));
	/* A legacy front-end: SET_FEATURES without bit 30 enables every ring at once. */
	ASSERT_OK(drv_get_u64(&d, VHU_REQ_GET_FEATURES, &f));
	ASSERT_TRUE(f & (1ull << VHU_F_PROTOCOL_FEATURES));
	f = 1ull << VIRTIO_F_VERSION_1;
	ASSERT_OK(drv_send(&d, VHU_REQ_SET_FEATURES, VHU_VERSION, &f, 8, NULL, 0));
	ASSERT_OK(drv_get_u64(&d, VHU_REQ_GET_FEATURES, &f)); /* sync */
	ASSERT_TRUE(vhu_virtq_enabled(vhu_backend_virtq(dev.be, 0)));
	ASSERT_TRUE(vhu_virtq_enabled(vhu_backend_virtq(dev.be, 1)));
	/* Without REPLY_ACK negotiated, NEED_REPLY gets no ack. */
	ASSERT_OK(drv_send(&d, VHU_REQ_SET_OWNER, VHU_VERSION | VHU_FLAG_NEED_REPLY, NULL, 0, NULL,
			   0));
	struct vhu_hdr h;
	uint64_t v;
	ASSERT_EQ(drv_recv(&d, &h, &v, 8, 200), -ETIMEDOUT);
	stop_pair();
	ASSERT_OK(dev.last_err);
	return 0;
}

static int detach_and_reattach(void)
{
	ASSERT_OK(start_pair(false));
	ASSERT_OK(roundtrip(0));
	dev.quit = true;
	pthread_join(thr, NULL);
	vhu_backend_detach(dev.be);
	ASSERT_TRUE(!dev.started[0] && !dev.started[1]);
	ASSERT_EQ(vhu_backend_fd(dev.be), -1);
	drv_close(&d);
	/* The same backend takes a new connection and works. */
	int sp[2];
	ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp));
	ASSERT_OK(vhu_backend_attach(dev.be, sp[1]));
	ASSERT_OK(drv_open_fd(&d, sp[0]));
	dev.quit = false;
	ASSERT_OK(pthread_create(&thr, NULL, device_thread, &dev));
	ASSERT_OK(drv_start(&d, true, ~0ull));
	ASSERT_OK(roundtrip(0));
	stop_pair();
	ASSERT_OK(dev.last_err);
	return 0;
}

/* SET_INFLIGHT_FD with a buffer larger than its fd (found by fuzz-dispatch: the first ring
 * start on it died of SIGBUS) is refused; one that fits is taken. */
static int inflight_fd_size(void)
{
	static struct vhu_device_ops ops_inf;
	uint64_t f, pf = (1ULL << VHU_PROTO_F_REPLY_ACK) | (1ULL << VHU_PROTO_F_INFLIGHT_SHMFD);
	int sp[2], fd = memfd_create("inflight", MFD_CLOEXEC);

	ops_inf = ops;
	ops_inf.protocol_features |= 1ULL << VHU_PROTO_F_INFLIGHT_SHMFD;
	memset(&dev, 0, sizeof(dev));
	ASSERT_OK(vhu_backend_new(&dev.be, &ops_inf, &dev, DRV_NQ));
	ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp));
	ASSERT_OK(vhu_backend_attach(dev.be, sp[1]));
	ASSERT_OK(drv_open_fd(&d, sp[0]));
	ASSERT_OK(pthread_create(&thr, NULL, device_thread, &dev));
	ASSERT_OK(drv_get_u64(&d, VHU_REQ_GET_FEATURES, &f));
	ASSERT_OK(drv_send(&d, VHU_REQ_SET_PROTOCOL_FEATURES, VHU_VERSION, &pf, 8, NULL, 0));
	ASSERT_TRUE(fd >= 0 && ftruncate(fd, 4096) == 0);
	struct vhu_inflight in = { .mmap_size = 1 << 20, .num_queues = 2, .queue_size = 16 };
	ASSERT_TRUE(drv_call_ack(&d, VHU_REQ_SET_INFLIGHT_FD, &in, sizeof(in), &fd, 1) > 0);
	stop_pair();
	ASSERT_EQ(dev.last_err, -EINVAL);
	/* The offset counts too; and a buffer that fits is fine. */
	ASSERT_OK(vhu_backend_new(&dev.be, &ops_inf, &dev, DRV_NQ));
	ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp));
	ASSERT_OK(vhu_backend_attach(dev.be, sp[1]));
	ASSERT_OK(drv_open_fd(&d, sp[0]));
	dev.quit = false;
	dev.last_err = 0;
	ASSERT_OK(pthread_create(&thr, NULL, device_thread, &dev));
	ASSERT_OK(drv_send(&d, VHU_REQ_SET_PROTOCOL_FEATURES, VHU_VERSION, &pf, 8, NULL, 0));
	ASSERT_TRUE(ftruncate(fd, 1 << 20) == 0);
	in.mmap_size = 1 << 20;
	ASSERT_EQ(drv_call_ack(&d, VHU_REQ_SET_INFLIGHT_FD, &in, sizeof(in), &fd, 1), 0);
	in.mmap_size = 4096;
	in.mmap_offset = 1 << 20;
	ASSERT_TRUE(drv_call_ack(&d, VHU_REQ_SET_INFLIGHT_FD, &in, sizeof(in), &fd, 1) > 0);
	stop_pair();
	close(fd);
	return 0;
}

static int peer_close(void)
{
	ASSERT_OK(start_pair(false));
	close(d.fd);
	d.fd = -1;
	for (int i = 0; i < 100 && !dev.last_err; i++)
		usleep(10000);
	ASSERT_EQ(dev.last_err, -ECONNRESET);
	stop_pair();
	return 0;
}

int main(void)
{
	RUN(handshake_and_queries);
	RUN(config_and_status);
	RUN(status_zero_split);
	RUN(status_zero_packed);
	RUN(live_mem_table);
	RUN(mem_slots);
	RUN(reset_device);
	RUN(restart_kicks_split);
	RUN(restart_kicks_packed);
	RUN(no_protocol_features);
	RUN(detach_and_reattach);
	RUN(peer_close);
	RUN(inflight_fd_size);
	T_MAIN_END();
}
