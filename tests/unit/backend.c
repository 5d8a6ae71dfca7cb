/* SPDX-License-Identifier: MIT */
/*
 * Back-end core, in process: a test device (it consumes queue 1 and returns each buffer)
 * runs vhu_backend_dispatch() on a thread; the test drives it over a socketpair with the raw
 * test driver and checks the protocol behaviour real front-ends depend on.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <vhu/vhu.h>

#include "common/drv.h"
#include "t.h"

T_DEFINE;

static int handshake(uint64_t features);

static int open_fds_now(void)
{
	int n = 0;
	DIR *dir = opendir("/proc/self/fd");
	if (!dir)
		return -1;
	for (struct dirent *e; (e = readdir(dir));)
		n += e->d_name[0] != '.';
	closedir(dir);
	return n;
}

struct tdev {
	struct vhu_backend *be;
	pthread_mutex_t lock;
	bool started[DRV_NQ];
	unsigned starts, stops, enables, disables, resets, feature_sets;
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

static int q_start(void *dev, struct vhu_virtq *vq)
{
	struct tdev *t = dev;
	t->started[vhu_virtq_index(vq)] = true;
	t->starts++;
	return 0;
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
	((struct tdev *)dev)->disables += !on;
}

static void t_reset(void *dev)
{
	((struct tdev *)dev)->resets++;
}

static void features_set(void *dev, uint64_t f)
{
	(void)f;
	((struct tdev *)dev)->feature_sets++;
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
	.size = sizeof(struct vhu_device_ops),
	.features = (1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_F_RING_PACKED) |
		    (1ULL << VIRTIO_RING_F_EVENT_IDX) | (1ULL << VIRTIO_RING_F_INDIRECT_DESC),
	.protocol_features = 1ULL << VHU_PROTO_F_CONFIG,
	.queue_num = 2,
	.get_config = get_config,
	.queue_start = q_start,
	.queue_stop = q_stop,
	.queue_enable = q_enable,
	.features_set = features_set,
	.status_set = status_set,
	.reset = t_reset,
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
	ASSERT_EQ(v, 509);
	ASSERT_OK(drv_get_u64(&d, VHU_REQ_GET_PROTOCOL_FEATURES, &v));
	ASSERT_TRUE(v & (1ull << VHU_PROTO_F_CONFIG));
	ASSERT_TRUE(v & (1ull << VHU_PROTO_F_LOG_SHMFD));
	ASSERT_OK(drv_get_u64(&d, VHU_REQ_GET_FEATURES, &v));
	ASSERT_TRUE(v & (1ull << VHU_F_LOG_ALL));
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

/* RESET_DEVICE: rings stopped and forgotten, features cleared, the device's reset op called
 * once. SET_STATUS(0) is not a reset (QEMU sends it at every stop). */
static int reset_device(void)
{
	uint64_t zero = 0;

	ASSERT_OK(start_pair(false));
	ASSERT_OK(roundtrip(0));
	ASSERT_EQ(drv_call_ack(&d, VHU_REQ_SET_STATUS, &zero, 8, NULL, 0), 0);
	ASSERT_EQ(dev.resets, 0);
	ASSERT_TRUE(dev.started[1]);
	ASSERT_EQ(drv_call_ack(&d, VHU_REQ_RESET_DEVICE, NULL, 0, NULL, 0), 0);
	ASSERT_EQ(dev.resets, 1);
	ASSERT_TRUE(!dev.started[0] && !dev.started[1]);
	ASSERT_TRUE(!vhu_virtq_enabled(vhu_backend_virtq(dev.be, 1)));
	ASSERT_EQ(vhu_backend_features(dev.be), 0);
	/* Ownership, protocol features and memory stay: the rings can be set up again (the
	 * driver's rings start over too). */
	for (unsigned q = 0; q < DRV_NQ; q++) {
		struct drv_ring *r = &d.r[q];
		memset(d.mem + r->desc_off, 0, 0x3000);
		r->avail_idx = r->used_seen = 0;
	}
	ASSERT_OK(drv_start(&d, false, ~0ull));
	ASSERT_OK(roundtrip(0));
	stop_pair();
	ASSERT_OK(dev.last_err);
	return 0;
}

/* RESET_OWNER (deprecated): "use it to disable all rings", nothing more. The rings stay
 * started, features and memory stay, the device is not reset; enabling a ring again is all a
 * front-end needs to go on. */
static int reset_owner(void)
{
	struct vhu_vring_state en = { 1, 1 };
	uint64_t f;

	ASSERT_OK(start_pair(false));
	ASSERT_OK(roundtrip(0));
	f = vhu_backend_features(dev.be);
	ASSERT_EQ(drv_call_ack(&d, VHU_REQ_RESET_OWNER, NULL, 0, NULL, 0), 0);
	ASSERT_TRUE(!vhu_virtq_enabled(vhu_backend_virtq(dev.be, 0)));
	ASSERT_TRUE(!vhu_virtq_enabled(vhu_backend_virtq(dev.be, 1)));
	ASSERT_EQ(dev.disables, 2);
	ASSERT_TRUE(dev.started[0] && dev.started[1]);
	ASSERT_EQ(dev.resets, 0);
	ASSERT_EQ(vhu_backend_features(dev.be), f);
	ASSERT_EQ(drv_call_ack(&d, VHU_REQ_SET_VRING_ENABLE, &en, 8, NULL, 0), 0);
	ASSERT_OK(roundtrip(1));
	stop_pair();
	ASSERT_OK(dev.last_err);
	return 0;
}

/* "VHOST_USER_SET_VRING_ERR": the err eventfd is written when the ring breaks. */
static int vring_err_fires(void)
{
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	struct drv_ring *r = &d.r[1];
	uint64_t u = 1;
	eventfd_t v = 0;

	ASSERT_TRUE(efd >= 0);
	ASSERT_OK(start_pair(false));
	ASSERT_EQ(drv_call_ack(&d, VHU_REQ_SET_VRING_ERR, &u, 8, &efd, 1), 0);
	ASSERT_OK(roundtrip(0));
	ASSERT_EQ(eventfd_read(efd, &v), -1); /* nothing yet */
	/* A head index past the ring: the device's next pop breaks the ring. */
	r->avail->ring[r->avail_idx % DRV_QSIZE] = DRV_QSIZE + 5;
	__atomic_store_n(&r->avail->idx, (uint16_t)(r->avail_idx + 1), __ATOMIC_RELEASE);
	drv_kick(&d, 1);
	struct pollfd p = { .fd = efd, .events = POLLIN };
	ASSERT_EQ(poll(&p, 1, 2000), 1);
	ASSERT_OK(eventfd_read(efd, &v));
	ASSERT_EQ(v, 1);
	ASSERT_TRUE(vhu_virtq_broken(vhu_backend_virtq(dev.be, 1)));
	stop_pair();
	close(efd);
	return 0;
}

/* A request whose protocol feature was not negotiated is refused cleanly: a failure ack when
 * asked for, the failure form of its reply when it has one, fds closed, the connection up. A
 * malformed one still closes it. */
static int gated_refused(void)
{
	struct vhu_mem_single m = { 0 };
	struct vhu_hdr h;
	uint64_t v, pf = 1ull << VHU_PROTO_F_REPLY_ACK;
	int before;

	ASSERT_OK(start_pair(-1));
	ASSERT_OK(drv_send(&d, VHU_REQ_SET_PROTOCOL_FEATURES, VHU_VERSION, &pf, 8, NULL, 0));
	before = open_fds_now();
	m.region = (struct vhu_mem_region){ DRV_GPA_BASE, DRV_MEM_SIZE, (uint64_t)(uintptr_t)d.mem,
					    0 };
	ASSERT_EQ(drv_call_ack(&d, VHU_REQ_ADD_MEM_REG, &m, sizeof(m), &d.memfd, 1), ENOPROTOOPT);
	ASSERT_EQ(open_fds_now(), before); /* the fd that came with it was closed */
	/* Replies that carry data fail with an empty payload. */
	ASSERT_OK(drv_send(&d, VHU_REQ_GET_MAX_MEM_SLOTS, VHU_VERSION, NULL, 0, NULL, 0));
	ASSERT_EQ(drv_recv(&d, &h, &v, 8, 2000), 0);
	ASSERT_EQ(h.request, VHU_REQ_GET_MAX_MEM_SLOTS);
	ASSERT_TRUE(h.flags & VHU_FLAG_REPLY);
	/* No need_reply: no reply, just the log. */
	v = 7;
	ASSERT_OK(drv_send(&d, VHU_REQ_SET_STATUS, VHU_VERSION, &v, 8, NULL, 0));
	ASSERT_OK(drv_get_u64(&d, VHU_REQ_GET_FEATURES, &v));
	ASSERT_EQ(dev.status, 0);
	ASSERT_OK(dev.last_err);
	/* Malformed (a 4-byte SET_STATUS) and not negotiated: the connection goes. */
	ASSERT_OK(drv_send(&d, VHU_REQ_SET_STATUS, VHU_VERSION, &v, 4, NULL, 0));
	for (int i = 0; i < 200 && !dev.last_err; i++)
		usleep(10000);
	ASSERT_EQ(dev.last_err, -EPROTO);
	stop_pair();
	return 0;
}

/* GET_MAX_MEM_SLOTS says 509: that many regions are mapped, the 510th is refused and the
 * connection goes on. */
static int mem_slots_509(void)
{
	struct vhu_mem_single m = { 0 };
	int mfd = memfd_create("unit-slots", MFD_CLOEXEC);
	uint64_t v;

	ASSERT_TRUE(mfd >= 0);
	ASSERT_OK(ftruncate(mfd, 4096));
	ASSERT_OK(start_pair(-1));
	ASSERT_OK(handshake(1ull << VIRTIO_F_VERSION_1));
	ASSERT_OK(drv_get_u64(&d, VHU_REQ_GET_MAX_MEM_SLOTS, &v));
	ASSERT_EQ(v, 509);
	for (unsigned i = 0; i <= v; i++) {
		m.region = (struct vhu_mem_region){ 0x10000000ull + i * 4096ull, 4096,
						    0x7f0000000000ull + i * 4096ull, 0 };
		int64_t ack = drv_call_ack(&d, VHU_REQ_ADD_MEM_REG, &m, sizeof(m), &mfd, 1);
		if (i < v && ack != 0) {
			T_FAILF("region %u refused: %lld", i, (long long)ack);
			return -1;
		}
		if (i == v)
			ASSERT_TRUE(ack > 0);
	}
	uint64_t len = 4096;
	ASSERT_TRUE(vhu_backend_gpa_to_va(dev.be, 0x10000000ull + 508 * 4096ull, &len) != NULL);
	/* One out, and the last one fits again. */
	m.region = (struct vhu_mem_region){ 0x10000000ull, 4096, 0x7f0000000000ull, 0 };
	ASSERT_EQ(drv_call_ack(&d, VHU_REQ_REM_MEM_REG, &m, sizeof(m), NULL, 0), 0);
	m.region = (struct vhu_mem_region){ 0x10000000ull + 509 * 4096ull, 4096,
					    0x7f0000000000ull + 509 * 4096ull, 0 };
	ASSERT_EQ(drv_call_ack(&d, VHU_REQ_ADD_MEM_REG, &m, sizeof(m), &mfd, 1), 0);
	stop_pair();
	ASSERT_OK(dev.last_err);
	close(mfd);
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

/* Front-end handshake up to SET_FEATURES (REPLY_ACK negotiated), without rings or memory. */
static int handshake(uint64_t features)
{
	uint64_t f, pf;

	ASSERT_OK(drv_get_u64(&d, VHU_REQ_GET_FEATURES, &f));
	ASSERT_OK(drv_send(&d, VHU_REQ_SET_OWNER, VHU_VERSION, NULL, 0, NULL, 0));
	ASSERT_OK(drv_get_u64(&d, VHU_REQ_GET_PROTOCOL_FEATURES, &pf));
	pf &= (1ull << VHU_PROTO_F_REPLY_ACK) | (1ull << VHU_PROTO_F_CONFIGURE_MEM_SLOTS);
	ASSERT_OK(drv_send(&d, VHU_REQ_SET_PROTOCOL_FEATURES, VHU_VERSION, &pf, 8, NULL, 0));
	d.features = f & features;
	ASSERT_EQ(drv_call_ack(&d, VHU_REQ_SET_FEATURES, &d.features, 8, NULL, 0), 0);
	return 0;
}

/* Rings set up completely (split) before any memory table: they must start once memory comes,
 * through SET_MEM_TABLE or ADD_MEM_REG. */
static int rings_before_memory(bool add_reg)
{
	ASSERT_OK(start_pair(-1));
	ASSERT_OK(handshake(~(1ull << VIRTIO_F_RING_PACKED)));
	for (unsigned q = 0; q < 2; q++) {
		struct drv_ring *r = &d.r[q];
		struct vhu_vring_state num = { q, DRV_QSIZE }, base = { q, 0 }, en = { q, 1 };
		struct vhu_vring_addr a = {
			.index = q,
			.desc = (uint64_t)(uintptr_t)(d.mem + r->desc_off),
			.avail = (uint64_t)(uintptr_t)(d.mem + r->avail_off),
			.used = (uint64_t)(uintptr_t)(d.mem + r->used_off),
		};
		uint64_t u = q;
		ASSERT_EQ(drv_call_ack(&d, VHU_REQ_SET_VRING_NUM, &num, 8, NULL, 0), 0);
		ASSERT_EQ(drv_call_ack(&d, VHU_REQ_SET_VRING_BASE, &base, 8, NULL, 0), 0);
		ASSERT_EQ(drv_call_ack(&d, VHU_REQ_SET_VRING_ADDR, &a, sizeof(a), NULL, 0), 0);
		ASSERT_EQ(drv_call_ack(&d, VHU_REQ_SET_VRING_CALL, &u, 8, &r->call, 1), 0);
		ASSERT_EQ(drv_call_ack(&d, VHU_REQ_SET_VRING_KICK, &u, 8, &r->kick, 1), 0);
		ASSERT_EQ(drv_call_ack(&d, VHU_REQ_SET_VRING_ENABLE, &en, 8, NULL, 0), 0);
	}
	ASSERT_TRUE(!dev.started[0] && !dev.started[1]); /* nothing to map them with yet */
	if (add_reg) {
		struct vhu_mem_single m = { 0 };
		m.region = (struct vhu_mem_region){ DRV_GPA_BASE, DRV_MEM_SIZE,
						    (uint64_t)(uintptr_t)d.mem, 0 };
		ASSERT_EQ(drv_call_ack(&d, VHU_REQ_ADD_MEM_REG, &m, sizeof(m), &d.memfd, 1), 0);
	} else {
		ASSERT_OK(drv_set_mem(&d));
	}
	ASSERT_TRUE(dev.started[0] && dev.started[1]);
	ASSERT_OK(roundtrip(0));
	stop_pair();
	ASSERT_OK(dev.last_err);
	return 0;
}

static int rings_before_mem_table(void)
{
	return rings_before_memory(false);
}

static int rings_before_add_mem_reg(void)
{
	return rings_before_memory(true);
}

/* SET_VRING_ENABLE "should be sent only when VHOST_USER_F_PROTOCOL_FEATURES has been
 * negotiated": once features are acked without it, it is refused (a failure ack, the
 * connection stays, as for any request whose feature was not negotiated). Before SET_FEATURES it is
 * accepted (QEMU 7.2's virtio-net enables rings then); GET_PROTOCOL_FEATURES needs the bit offered
 * only. */
static int enable_needs_protocol_features(void)
{
	struct vhu_vring_state en = { 1, 1 }, dis = { 1, 0 };
	uint64_t v;

	ASSERT_OK(start_pair(-1));
	ASSERT_OK(drv_send(&d, VHU_REQ_SET_VRING_ENABLE, VHU_VERSION, &en, 8, NULL, 0));
	ASSERT_OK(drv_get_u64(&d, VHU_REQ_GET_FEATURES, &v)); /* sync */
	ASSERT_TRUE(vhu_virtq_enabled(vhu_backend_virtq(dev.be, 1)));
	ASSERT_OK(handshake(1ull << VIRTIO_F_VERSION_1)); /* bit 30 not acked */
	ASSERT_OK(drv_get_u64(&d, VHU_REQ_GET_PROTOCOL_FEATURES, &v));
	unsigned enables = dev.enables;
	ASSERT_EQ(drv_call_ack(&d, VHU_REQ_SET_VRING_ENABLE, &dis, 8, NULL, 0), ENOPROTOOPT);
	ASSERT_TRUE(vhu_virtq_enabled(vhu_backend_virtq(dev.be, 1)));
	ASSERT_EQ(dev.enables, enables);
	ASSERT_OK(drv_get_u64(&d, VHU_REQ_GET_FEATURES, &v)); /* the connection is up */
	stop_pair();
	ASSERT_OK(dev.last_err);
	/* A RESET_DEVICE forgets the acked features: enabling before SET_FEATURES works again. */
	ASSERT_OK(start_pair(-1));
	ASSERT_OK(handshake(1ull << VIRTIO_F_VERSION_1));
	uint64_t pf = (1ull << VHU_PROTO_F_REPLY_ACK) | (1ull << VHU_PROTO_F_RESET_DEVICE);
	ASSERT_OK(drv_send(&d, VHU_REQ_SET_PROTOCOL_FEATURES, VHU_VERSION, &pf, 8, NULL, 0));
	ASSERT_EQ(drv_call_ack(&d, VHU_REQ_RESET_DEVICE, NULL, 0, NULL, 0), 0);
	ASSERT_EQ(drv_call_ack(&d, VHU_REQ_SET_VRING_ENABLE, &dis, 8, NULL, 0), 0);
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

/* ---- non-blocking control plane: dispatch called directly on this thread ---- */

static int sp_fe = -1;

static int open_fds(void)
{
	int n = 0;
	DIR *dir = opendir("/proc/self/fd");
	if (!dir)
		return -1;
	for (struct dirent *e; (e = readdir(dir));)
		n += e->d_name[0] != '.';
	closedir(dir);
	return n;
}

static int direct_pair(void)
{
	int sp[2];

	memset(&dev, 0, sizeof(dev));
	ASSERT_OK(vhu_backend_new(&dev.be, &ops, &dev, DRV_NQ));
	ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp));
	ASSERT_OK(vhu_backend_attach(dev.be, sp[1]));
	ASSERT_TRUE(fcntl(sp[1], F_GETFL) & O_NONBLOCK);
	sp_fe = sp[0];
	return 0;
}

/* A request with a u64 payload, as it goes on the wire (20 bytes, no padding). */
static void u64_msg(uint8_t *buf, uint32_t req, uint64_t v)
{
	struct vhu_hdr h = { req, VHU_VERSION, 8 };
	memcpy(buf, &h, 12);
	memcpy(buf + 12, &v, 8);
}

/* Sends len bytes; fd (if >= 0) rides with the first of them. */
static int send_part(const void *buf, size_t len, int fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { (void *)buf, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (fd >= 0) {
		mh.msg_control = cbuf;
		mh.msg_controllen = sizeof(cbuf);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	return sendmsg(sp_fe, &mh, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -1;
}

/* A message that comes one byte per dispatch call, its fd on a payload byte: every call
 * returns at once (0) until the last byte, and only then is the message handled. */
static int message_in_pieces(void)
{
	uint8_t kick[20];
	struct vhu_hdr h = { VHU_REQ_GET_FEATURES, VHU_VERSION, 0 }, rh;
	int efd = eventfd(0, EFD_CLOEXEC);
	uint64_t f;

	u64_msg(kick, VHU_REQ_SET_VRING_KICK, 1);
	ASSERT_OK(direct_pair());
	alarm(10); /* a dispatch that blocks is a failure, not a hang */
	ASSERT_EQ(vhu_backend_dispatch(dev.be), 0); /* nothing there yet */
	for (size_t i = 0; i < sizeof(kick); i++) {
		ASSERT_OK(send_part(kick + i, 1, i == 14 ? efd : -1));
		ASSERT_EQ(vhu_virtq_kick_fd(vhu_backend_virtq(dev.be, 1)), -1);
		ASSERT_EQ(vhu_backend_dispatch(dev.be), 0);
	}
	int kfd = vhu_virtq_kick_fd(vhu_backend_virtq(dev.be, 1));
	ASSERT_TRUE(kfd >= 0);
	/* The peer's eventfd was made non-blocking: the flag is on the shared description. */
	ASSERT_TRUE(fcntl(efd, F_GETFL) & O_NONBLOCK);
	/* Two messages in one write: each dispatch call handles one. */
	uint8_t two[24];
	memcpy(two, &h, 12);
	memcpy(two + 12, &h, 12);
	ASSERT_OK(send_part(two, 24, -1));
	ASSERT_EQ(vhu_backend_dispatch(dev.be), 0);
	ASSERT_EQ(vhu_backend_dispatch(dev.be), 0);
	for (int i = 0; i < 2; i++) {
		ASSERT_EQ(recv(sp_fe, &rh, 12, MSG_DONTWAIT), 12);
		ASSERT_EQ(recv(sp_fe, &f, 8, MSG_DONTWAIT), 8);
		ASSERT_EQ(rh.request, VHU_REQ_GET_FEATURES);
	}
	alarm(0);
	close(efd);
	close(sp_fe);
	vhu_backend_free(dev.be);
	return 0;
}

/* A message cut off mid-way holds its fds in the back-end: detach closes them. */
static int partial_message_fds_closed(void)
{
	uint8_t call[20];
	int before = open_fds();

	u64_msg(call, VHU_REQ_SET_VRING_CALL, 0);
	ASSERT_OK(direct_pair());
	for (int i = 0; i < 3; i++) {
		int efd = eventfd(0, EFD_CLOEXEC);
		/* header plus 2 bytes of payload, each piece with an fd */
		ASSERT_OK(send_part(call + 4 * i, i < 2 ? 4 : 6, efd));
		close(efd);
		ASSERT_EQ(vhu_backend_dispatch(dev.be), 0);
	}
	ASSERT_EQ(open_fds(), before + 2 + 3); /* the pair, and the three fds in the back-end */
	vhu_backend_detach(dev.be);
	ASSERT_EQ(open_fds(), before + 1);
	close(sp_fe);
	vhu_backend_free(dev.be);
	return 0;
}

/* Only eventfds, and no semaphore eventfd as a kick fd: the connection is refused. */
static int refuse_fd(int fd, uint32_t req, const char *what)
{
	uint8_t m[20];

	u64_msg(m, req, 0);
	ASSERT_OK(direct_pair());
	ASSERT_OK(send_part(m, sizeof(m), fd));
	int r = vhu_backend_dispatch(dev.be);
	if (r != -EINVAL)
		T_FAILF("%s as %s: dispatch returned %d", what, vhu_request_name(req), r);
	close(sp_fe);
	vhu_backend_free(dev.be);
	return r == -EINVAL ? 0 : -1;
}

static int only_eventfds(void)
{
	static const uint32_t reqs[] = { VHU_REQ_SET_VRING_KICK, VHU_REQ_SET_VRING_CALL,
					 VHU_REQ_SET_VRING_ERR };
	int p[2], sp[2], before = open_fds();
	char tmpl[] = "/tmp/vhu-unit-XXXXXX";
	int file = mkstemp(tmpl);

	ASSERT_TRUE(file >= 0);
	unlink(tmpl);
	ASSERT_OK(pipe2(p, O_CLOEXEC));
	ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp));
	for (unsigned i = 0; i < 3; i++) {
		ASSERT_OK(refuse_fd(p[0], reqs[i], "a pipe"));
		ASSERT_OK(refuse_fd(sp[0], reqs[i], "a socket"));
		ASSERT_OK(refuse_fd(file, reqs[i], "a regular file"));
	}
	int sem = eventfd(5, EFD_CLOEXEC | EFD_SEMAPHORE);
	ASSERT_OK(refuse_fd(sem, VHU_REQ_SET_VRING_KICK, "a semaphore eventfd"));
	/* The blocking flag was left alone on what was refused. */
	ASSERT_TRUE(!(fcntl(p[0], F_GETFL) & O_NONBLOCK));
	close(sem);
	close(p[0]);
	close(p[1]);
	close(sp[0]);
	close(sp[1]);
	close(file);
	ASSERT_EQ(open_fds(), before);
	return 0;
}

/* A front-end that sends requests and never reads the replies is dropped once our socket
 * send buffer is full (-ENOBUFS), without a dispatch call ever waiting. */
static int reply_stall_drops(void)
{
	struct vhu_hdr h[64];
	int r = 0;

	for (unsigned i = 0; i < 64; i++)
		h[i] = (struct vhu_hdr){ VHU_REQ_GET_FEATURES, VHU_VERSION, 0 };
	ASSERT_OK(direct_pair());
	alarm(10);
	for (int round = 0; round < 100000 && r == 0; round++) {
		if (round % 64 == 0)
			send(sp_fe, h, sizeof(h), MSG_DONTWAIT | MSG_NOSIGNAL);
		r = vhu_backend_dispatch(dev.be);
	}
	alarm(0);
	ASSERT_EQ(r, -ENOBUFS);
	close(sp_fe);
	vhu_backend_free(dev.be);
	return 0;
}

/* ---- extension points: ops size, process_msg hook, mem_changed, queue_start refusal ---- */

static struct {
	struct vhu_backend *be;
	volatile bool quit;
	volatile unsigned hooked, mem_changes, starts;
	volatile bool refuse;
	volatile int err;
	int taken_fd;
} x;

static int x_hook(void *o, struct vhu_msg *m)
{
	(void)o;
	x.hooked++;
	switch (m->request) {
	case 90: /* a request the library does not know */
		return VHU_MSG_HANDLED;
	case 91:
		if (m->size != 8 || m->max_size < 8)
			return -EINVAL;
		((uint64_t *)m->payload)[0] += 1;
		return VHU_MSG_REPLY;
	case 92:
		if (m->nfds != 1)
			return VHU_MSG_REFUSED;
		x.taken_fd = m->fds[0];
		m->fds[0] = -1;
		return VHU_MSG_HANDLED;
	case 93:
		return VHU_MSG_REFUSED;
	case 94:
		return -EPERM;
	default:
		return VHU_MSG_NOT_HANDLED;
	}
}

static void x_mem_changed(void *o)
{
	(void)o;
	x.mem_changes++;
}

static int x_start(void *o, struct vhu_virtq *vq)
{
	(void)o;
	if (x.refuse && vhu_virtq_index(vq) == 1)
		return -EAGAIN;
	x.starts++;
	return 0;
}

static void x_stop(void *o, struct vhu_virtq *vq)
{
	(void)o;
	(void)vq;
}

static const struct vhu_device_ops x_ops = {
	.size = sizeof(struct vhu_device_ops),
	.features = 1ULL << VIRTIO_F_VERSION_1,
	.queue_start = x_start,
	.queue_stop = x_stop,
	.log = tlog,
	.log_level = VHU_LOG_DEBUG,
	.process_msg = x_hook,
	.mem_changed = x_mem_changed,
};

static void *x_thread(void *arg)
{
	(void)arg;
	while (!x.quit) {
		struct pollfd p = { .fd = vhu_backend_fd(x.be), .events = POLLIN };
		int r = poll(&p, 1, 2) > 0 ? vhu_backend_dispatch(x.be) : 0;
		if (r) {
			x.err = r;
			break;
		}
	}
	return NULL;
}

/* A caller built against older headers (smaller struct) or newer ones (larger). */
static int ops_size(void)
{
	struct {
		struct vhu_device_ops ops;
		uint64_t newer[2];
	} big = { .ops = x_ops };
	struct vhu_backend *be;

	big.ops.size = 0;
	ASSERT_EQ(vhu_backend_new(&be, &big.ops, NULL, 2), -EINVAL);
	big.ops.size = (uint32_t)sizeof(big);
	ASSERT_OK(vhu_backend_new(&be, &big.ops, NULL, 2));
	vhu_backend_free(be);
	big.newer[1] = 1;
	ASSERT_EQ(vhu_backend_new(&be, &big.ops, NULL, 2), -E2BIG);
	/* the first release's struct ends at log_level: the hook past it is not read */
	big.ops.size = (uint32_t)(offsetof(struct vhu_device_ops, log_level) + sizeof(int));
	ASSERT_OK(vhu_backend_new(&be, &big.ops, NULL, 2));
	vhu_backend_free(be);
	big.ops.size -= 1;
	ASSERT_EQ(vhu_backend_new(&be, &big.ops, NULL, 2), -EINVAL);
	return 0;
}

static int extension_hooks(void)
{
	pthread_t th;
	struct vhu_hdr h;
	uint64_t v = 41, pf;
	int sp[2], efd = eventfd(0, EFD_CLOEXEC);

	memset(&x, 0, sizeof(x));
	x.taken_fd = -1;
	ASSERT_OK(vhu_backend_new(&x.be, &x_ops, NULL, 2));
	ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp));
	ASSERT_OK(vhu_backend_attach(x.be, sp[1]));
	ASSERT_OK(drv_open_fd(&d, sp[0]));
	ASSERT_OK(pthread_create(&th, NULL, x_thread, NULL));
	ASSERT_OK(drv_get_u64(&d, VHU_REQ_GET_PROTOCOL_FEATURES, &pf));
	ASSERT_TRUE(x.hooked >= 1); /* it saw GET_PROTOCOL_FEATURES and let the library answer */
	pf = 1ULL << VHU_PROTO_F_REPLY_ACK;
	ASSERT_OK(drv_send(&d, VHU_REQ_SET_PROTOCOL_FEATURES, VHU_VERSION, &pf, 8, NULL, 0));
	/* requests the library does not know: handled, replied, fd taken, refused */
	ASSERT_EQ(drv_call_ack(&d, 90, NULL, 0, NULL, 0), 0);
	ASSERT_OK(drv_send(&d, 91, VHU_VERSION, &v, 8, NULL, 0));
	ASSERT_EQ(drv_recv(&d, &h, &v, sizeof(v), 2000), 8);
	ASSERT_EQ(h.request, 91);
	ASSERT_EQ(v, 42);
	ASSERT_EQ(drv_call_ack(&d, 92, NULL, 0, &efd, 1), 0);
	ASSERT_TRUE(x.taken_fd >= 0 && eventfd_write(x.taken_fd, 1) == 0); /* still open */
	close(x.taken_fd);
	ASSERT_EQ(drv_call_ack(&d, 93, NULL, 0, NULL, 0), 1);
	/* mem_changed after the table changed */
	ASSERT_EQ(x.mem_changes, 0);
	ASSERT_OK(drv_set_mem(&d));
	ASSERT_EQ(x.mem_changes, 1);
	/* queue 1 refuses to start: its SET_VRING_KICK fails, the connection stays, and it
	 * starts at the next try */
	x.refuse = true;
	d.nq = 2;
	ASSERT_EQ(drv_start(&d, false, ~0ull), -EIO);
	ASSERT_EQ(x.starts, 1);
	ASSERT_EQ(drv_get_u64(&d, VHU_REQ_GET_FEATURES, &v), 0);
	x.refuse = false;
	uint64_t u = 1;
	ASSERT_EQ(drv_call_ack(&d, VHU_REQ_SET_VRING_KICK, &u, 8, &d.r[1].kick, 1), 0);
	ASSERT_EQ(x.starts, 2);
	/* a hook error is fatal: dispatch returns it */
	ASSERT_OK(drv_send(&d, 94, VHU_VERSION, NULL, 0, NULL, 0));
	for (int i = 0; i < 2000 && !x.err; i++)
		usleep(1000);
	ASSERT_EQ(x.err, -EPERM);
	x.quit = true;
	pthread_join(th, NULL);
	vhu_backend_free(x.be);
	drv_close(&d);
	return 0;
}

/* ---- live migration: the dirty log ---- */

static unsigned count_bits(const uint8_t *b, size_t n)
{
	unsigned c = 0;
	for (size_t i = 0; i < n; i++)
		c += (unsigned)__builtin_popcount(b[i]);
	return c;
}

static bool page_marked(const uint8_t *log, uint64_t gpa)
{
	uint64_t p = gpa / 4096;
	return log[p / 8] >> (p % 8) & 1;
}

/* SET_LOG_BASE with LOG_SHMFD: the u64 reply (0 done), or -1 when none came. */
static int64_t log_base(int fd, uint64_t size, uint64_t offset)
{
	struct vhu_log_desc ld = { size, offset };
	struct vhu_hdr h;
	uint64_t v;

	if (drv_send(&d, VHU_REQ_SET_LOG_BASE, VHU_VERSION, &ld, sizeof(ld), &fd, 1) ||
	    drv_recv(&d, &h, &v, 8, 2000) != 8 || h.request != VHU_REQ_SET_LOG_BASE)
		return -1;
	return (int64_t)v;
}

static int set_features(uint64_t f)
{
	ASSERT_EQ(drv_call_ack(&d, VHU_REQ_SET_FEATURES, &f, 8, NULL, 0), 0);
	return 0;
}

/*
 * "Migration": LOG_ALL and VHOST_VRING_F_LOG turned on and off while the ring runs (as QEMU
 * does), without restarting it: with LOG_ALL the buffer's page is marked, with F_LOG the ring's
 * page too (split: the used ring at the log address; packed: the descriptor ring), nothing
 * else; logging off marks nothing. Bad logs are refused and the connection stays.
 */
static int dirty_logging(bool packed)
{
	const uint64_t log_all = 1ull << VHU_F_LOG_ALL,
		       need = (DRV_GPA_BASE + DRV_MEM_SIZE) / 32768;
	struct drv_ring *r;
	uint64_t pf;
	unsigned starts;
	uint8_t *log;
	int lfd, small, p[2];

	ASSERT_OK(start_pair(packed));
	r = &d.r[1];
	/* Without LOG_SHMFD negotiated, SET_LOG_BASE is refused. */
	lfd = memfd_create("log", MFD_CLOEXEC);
	ASSERT_TRUE(lfd >= 0);
	ASSERT_OK(ftruncate(lfd, 4096));
	log = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, lfd, 0);
	ASSERT_TRUE(log != MAP_FAILED);
	struct vhu_log_desc ld = { need, 0 };
	ASSERT_EQ(drv_call_ack(&d, VHU_REQ_SET_LOG_BASE, &ld, sizeof(ld), &lfd, 1), ENOPROTOOPT);
	pf = d.protocol_features | 1ull << VHU_PROTO_F_LOG_SHMFD;
	ASSERT_OK(drv_send(&d, VHU_REQ_SET_PROTOCOL_FEATURES, VHU_VERSION, &pf, 8, NULL, 0));
	d.protocol_features = pf;
	/* Bad logs: too small for the memory table, larger than its file, offset + size past the
	 * file or wrapping, not a memory file. Each gets a non-zero reply. */
	ASSERT_TRUE(log_base(lfd, need - 1, 0) > 0);
	ASSERT_TRUE(log_base(lfd, 8192, 0) > 0);
	ASSERT_TRUE(log_base(lfd, need, 4096 - need + 1) > 0);
	ASSERT_TRUE(log_base(lfd, need, UINT64_MAX - 8) > 0);
	ASSERT_OK(pipe(p));
	ASSERT_TRUE(log_base(p[0], need, 0) > 0);
	close(p[0]);
	close(p[1]);
	small = memfd_create("small", MFD_CLOEXEC);
	ASSERT_OK(ftruncate(small, (off_t)need - 1));
	ASSERT_TRUE(log_base(small, need, 0) > 0);
	close(small);
	ASSERT_OK(roundtrip(0));

	/* A new log pauses running rings across the swap (their threads may be marking the old
	 * one); turning logging on and off afterwards restarts nothing. */
	ASSERT_EQ(log_base(lfd, need, 0), 0);
	starts = dev.starts;
	unsigned fsets = dev.feature_sets;
	ASSERT_OK(roundtrip(1));
	ASSERT_EQ(count_bits(log, 4096), 0); /* LOG_ALL not negotiated: nothing */

	ASSERT_OK(set_features(d.features | log_all));
	ASSERT_OK(roundtrip(2));
	ASSERT_TRUE(page_marked(log, drv_buf_gpa(&d, 1, 2)));
	ASSERT_EQ(count_bits(log, 4096), 1); /* F_LOG not set: the ring is not logged */

	struct vhu_vring_addr a = {
		.index = 1,
		.flags = 1u << VHU_VRING_F_LOG,
		.desc = (uint64_t)(uintptr_t)(d.mem + r->desc_off),
		.avail = (uint64_t)(uintptr_t)(d.mem + r->avail_off),
		.used = (uint64_t)(uintptr_t)(d.mem + r->used_off),
		.log = drv_gpa(r->used_off),
	};
	ASSERT_EQ(drv_call_ack(&d, VHU_REQ_SET_VRING_ADDR, &a, sizeof(a), NULL, 0), 0);
	memset(log, 0, 4096);
	ASSERT_OK(roundtrip(4));
	ASSERT_TRUE(page_marked(log, drv_buf_gpa(&d, 1, 4)));
	ASSERT_TRUE(page_marked(log, drv_gpa(packed ? r->desc_off : r->used_off)));
	ASSERT_EQ(count_bits(log, 4096), 2);

	ASSERT_OK(set_features(d.features));
	memset(log, 0, 4096);
	ASSERT_OK(roundtrip(6));
	ASSERT_EQ(count_bits(log, 4096), 0);
	ASSERT_EQ(dev.starts, starts);	    /* no ring was restarted by any of it */
	ASSERT_EQ(dev.feature_sets, fsets); /* and the device was not told: LOG_ALL alone */
	ASSERT_OK(set_features(d.features & ~(1ull << VIRTIO_RING_F_EVENT_IDX)));
	ASSERT_EQ(dev.feature_sets, fsets + 1); /* any other change is its business */
	ASSERT_TRUE(dev.started[1]);
	stop_pair();
	ASSERT_OK(dev.last_err);
	munmap(log, 4096);
	close(lfd);
	return 0;
}

static int dirty_logging_split(void)
{
	return dirty_logging(false);
}

static int dirty_logging_packed(void)
{
	return dirty_logging(true);
}

/* ---- the back-end channel (BACKEND_REQ) ---- */

static struct {
	struct vhu_backend *be;
	int want_change, change_ret, owed, quit;
} ch;

/* The dispatch thread: messages, acks, and config changes asked for by the test. */
static void *chan_thread(void *arg)
{
	(void)arg;
	while (!__atomic_load_n(&ch.quit, __ATOMIC_ACQUIRE)) {
		struct pollfd p = { .fd = vhu_backend_fd(ch.be), .events = POLLIN };
		if (poll(&p, 1, 2) > 0 && vhu_backend_dispatch(ch.be))
			break;
		if (__atomic_load_n(&ch.want_change, __ATOMIC_ACQUIRE)) {
			__atomic_store_n(&ch.change_ret, vhu_backend_config_changed(ch.be),
					 __ATOMIC_RELAXED);
			__atomic_store_n(&ch.want_change, 0, __ATOMIC_RELEASE);
		}
		__atomic_store_n(&ch.owed, vhu_backend_channel_dispatch(ch.be), __ATOMIC_RELEASE);
	}
	return NULL;
}

static int config_changed_now(void)
{
	__atomic_store_n(&ch.want_change, 1, __ATOMIC_RELEASE);
	while (__atomic_load_n(&ch.want_change, __ATOMIC_ACQUIRE))
		usleep(1000);
	return __atomic_load_n(&ch.change_ret, __ATOMIC_RELAXED);
}

/* BACKEND_REQ is offered only to a device that asks; SET_BACKEND_REQ_FD takes an AF_UNIX
 * stream socket; vhu_backend_config_changed() needs CONFIG and BACKEND_REQ and a channel,
 * sends with NEED_REPLY under REPLY_ACK and counts the ack owed until it comes; RESET_DEVICE
 * keeps the channel, detach closes it. */
static int backend_channel(void)
{
	struct vhu_device_ops o = ops;
	uint64_t pf;
	int sp[2], sv[2], p[2];
	pthread_t t;
	struct vhu_hdr h;

	/* The default test device does not ask: not offered. */
	ASSERT_OK(start_pair(-1));
	ASSERT_OK(drv_get_u64(&d, VHU_REQ_GET_PROTOCOL_FEATURES, &pf));
	ASSERT_TRUE(!(pf & (1ull << VHU_PROTO_F_BACKEND_REQ)));
	stop_pair();

	o.protocol_features |= 1ull << VHU_PROTO_F_BACKEND_REQ;
	memset(&ch, 0, sizeof(ch));
	ASSERT_OK(vhu_backend_new(&ch.be, &o, &dev, DRV_NQ));
	ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp));
	ASSERT_OK(vhu_backend_attach(ch.be, sp[1]));
	ASSERT_OK(drv_open_fd(&d, sp[0]));
	ASSERT_EQ(vhu_backend_config_changed(ch.be), -ENOPROTOOPT);
	ASSERT_EQ(vhu_backend_channel_fd(ch.be), -1);
	ASSERT_OK(pthread_create(&t, NULL, chan_thread, NULL));
	ASSERT_OK(drv_get_u64(&d, VHU_REQ_GET_PROTOCOL_FEATURES, &pf));
	ASSERT_TRUE(pf & (1ull << VHU_PROTO_F_BACKEND_REQ));
	pf &= (1ull << VHU_PROTO_F_REPLY_ACK) | (1ull << VHU_PROTO_F_CONFIG) |
	      (1ull << VHU_PROTO_F_BACKEND_REQ) | (1ull << VHU_PROTO_F_RESET_DEVICE);
	ASSERT_OK(drv_send(&d, VHU_REQ_SET_PROTOCOL_FEATURES, VHU_VERSION, &pf, 8, NULL, 0));
	uint64_t v;
	ASSERT_OK(drv_get_u64(&d, VHU_REQ_GET_FEATURES, &v)); /* SET_PROTOCOL_FEATURES handled */
	ASSERT_EQ(config_changed_now(), -ENOTCONN);	      /* negotiated, but no channel yet */
	/* A pipe is not a channel: refused, the connection stays. */
	ASSERT_OK(pipe2(p, O_CLOEXEC));
	ASSERT_TRUE(drv_call_ack(&d, VHU_REQ_SET_BACKEND_REQ_FD, NULL, 0, &p[1], 1) > 0);
	close(p[0]);
	close(p[1]);
	ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
	ASSERT_EQ(drv_call_ack(&d, VHU_REQ_SET_BACKEND_REQ_FD, NULL, 0, &sv[1], 1), 0);
	close(sv[1]);
	ASSERT_OK(config_changed_now());
	ASSERT_EQ(recv(sv[0], &h, sizeof(h), 0), sizeof(h));
	ASSERT_EQ(h.request, VHU_BREQ_CONFIG_CHANGE_MSG);
	ASSERT_EQ(h.flags, VHU_VERSION | VHU_FLAG_NEED_REPLY);
	for (int i = 0; i < 100 && __atomic_load_n(&ch.owed, __ATOMIC_ACQUIRE) != 1; i++)
		usleep(1000);
	ASSERT_EQ(__atomic_load_n(&ch.owed, __ATOMIC_ACQUIRE), 1);
	/* The main socket is served while the ack is owed. */
	ASSERT_OK(drv_get_u64(&d, VHU_REQ_GET_FEATURES, &v));
	struct {
		struct vhu_hdr h;
		uint64_t v;
	} __attribute__((packed))
	ack = { { VHU_BREQ_CONFIG_CHANGE_MSG, VHU_VERSION | VHU_FLAG_REPLY, 8 }, 0 };
	ASSERT_EQ(send(sv[0], &ack, sizeof(ack), 0), sizeof(ack));
	for (int i = 0; i < 1000 && __atomic_load_n(&ch.owed, __ATOMIC_ACQUIRE) != 0; i++)
		usleep(1000);
	ASSERT_EQ(__atomic_load_n(&ch.owed, __ATOMIC_ACQUIRE), 0);
	/* RESET_DEVICE keeps the channel (QEMU sends SET_BACKEND_REQ_FD once). */
	ASSERT_EQ(drv_call_ack(&d, VHU_REQ_RESET_DEVICE, NULL, 0, NULL, 0), 0);
	ASSERT_OK(config_changed_now());
	ASSERT_EQ(recv(sv[0], &h, sizeof(h), 0), sizeof(h));
	__atomic_store_n(&ch.quit, 1, __ATOMIC_RELEASE);
	pthread_join(t, NULL);
	/* Detach closes it. */
	vhu_backend_detach(ch.be);
	ASSERT_EQ(vhu_backend_channel_fd(ch.be), -1);
	ASSERT_EQ(recv(sv[0], &h, sizeof(h), 0), 0);
	close(sv[0]);
	drv_close(&d);
	vhu_backend_free(ch.be);
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
	RUN(reset_owner);
	RUN(vring_err_fires);
	RUN(gated_refused);
	RUN(mem_slots_509);
	RUN(restart_kicks_split);
	RUN(restart_kicks_packed);
	RUN(no_protocol_features);
	RUN(rings_before_mem_table);
	RUN(rings_before_add_mem_reg);
	RUN(enable_needs_protocol_features);
	RUN(detach_and_reattach);
	RUN(peer_close);
	RUN(message_in_pieces);
	RUN(partial_message_fds_closed);
	RUN(only_eventfds);
	RUN(reply_stall_drops);
	RUN(ops_size);
	RUN(extension_hooks);
	RUN(inflight_fd_size);
	RUN(dirty_logging_split);
	RUN(dirty_logging_packed);
	RUN(backend_channel);
	T_MAIN_END();
}
