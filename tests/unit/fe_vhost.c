/* SPDX-License-Identifier: MIT */
/*
 * The front-end's vhost ioctl transports (src/fe_kernel.c, src/fe_vdpa.c) on the host, which
 * has neither /dev/vhost-net nor a vDPA device: the device is a FIFO (the IOTLB messages
 * vhost-vdpa gets written land in it, and the test reads them back), and ioctl() is this
 * program's own, playing /dev/vhost-net, /dev/net/tun and /dev/vhost-vdpa-N for fds on the
 * FIFO and on /dev/net/tun (no tap is ever made) and passing every other fd to the kernel.
 * It checks the sequence each kind needs: vhost-kernel's fd and tap queue per pair, features
 * without the emulated MQ, vnet header size, backend attach and detach around the stop;
 * vhost-vdpa's status handshake, backend features, one batched IOTLB update with IOVA = VA
 * inside the IOVA range, descriptors carrying VAs, config reads and the config interrupt; that
 * a failing ioctl is named with its device and leaves no fd behind; the transport picked
 * from the path; and that vhu_frontend_open() reads only the options the caller's size covers.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/vhost.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_net.h>
#include <linux/virtio_ring.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <vhu/vhu.h>

#include "t.h"

T_DEFINE;

/* ---- the fake devices ---- */

enum kind { K_OTHER, K_DEV, K_TUN };

struct call {
	int fd;
	unsigned long req;
	uint64_t a, b; /* the interesting fields */
};

static char dev_path[64];
static struct call calls[512];
static unsigned ncalls;
static uint8_t status;
static unsigned long fail_req; /* this request fails with EPERM */
static uint64_t iova_first, iova_last = UINT64_MAX;
static bool refuse_features_ok;
static uint64_t dev_features;
static uint32_t device_id;
static char tun_name[IFNAMSIZ]; /* the name the last TUNSETIFF asked for */

static enum kind kind_of(int fd)
{
	char p[64], l[128];
	ssize_t n;

	snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
	n = readlink(p, l, sizeof(l) - 1);
	if (n < 0)
		return K_OTHER;
	l[n] = 0;
	if (!strcmp(l, dev_path))
		return K_DEV;
	if (!strcmp(l, "/dev/net/tun"))
		return K_TUN;
	return K_OTHER;
}

static void record(int fd, unsigned long req, uint64_t a, uint64_t b)
{
	if (ncalls < sizeof(calls) / sizeof(calls[0]))
		calls[ncalls++] = (struct call){ fd, req, a, b };
}

int ioctl(int fd, unsigned long req, ...);
int ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	void *arg;
	enum kind k = kind_of(fd);

	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (req == SIOCGIFFLAGS || req == SIOCSIFFLAGS) {
		record(fd, req, 0, 0);
		return 0;
	}
	if (k == K_OTHER)
		return (int)syscall(SYS_ioctl, fd, req, arg);
	if (req == fail_req) {
		errno = EPERM;
		return -1;
	}
	switch (req) {
	case TUNSETIFF: {
		struct ifreq *r = arg;
		record(fd, req, (uint16_t)r->ifr_flags, 0);
		memcpy(tun_name, r->ifr_name, sizeof(tun_name));
		return 0;
	}
	case TUNSETVNETHDRSZ:
		record(fd, req, (uint64_t) * (int *)arg, 0);
		return 0;
	case TUNSETOFFLOAD:
		record(fd, req, (uint64_t)(uintptr_t)arg, 0);
		return 0;
	case VHOST_SET_OWNER:
	case VHOST_RESET_OWNER:
	case VHOST_VDPA_SUSPEND:
		record(fd, req, 0, 0);
		return 0;
	case VHOST_VDPA_GET_DEVICE_ID:
		*(uint32_t *)arg = device_id;
		return 0;
	case VHOST_GET_FEATURES:
		*(uint64_t *)arg = dev_features;
		return 0;
	case VHOST_SET_FEATURES:
	case VHOST_SET_BACKEND_FEATURES:
		record(fd, req, *(uint64_t *)arg, 0);
		return 0;
	case VHOST_GET_BACKEND_FEATURES:
		*(uint64_t *)arg = (1ull << VHOST_BACKEND_F_IOTLB_MSG_V2) |
				   (1ull << VHOST_BACKEND_F_IOTLB_BATCH) | (1ull << 7);
		return 0;
	case VHOST_VDPA_GET_VQS_COUNT:
		*(uint32_t *)arg = 2;
		return 0;
	case VHOST_VDPA_GET_VRING_NUM:
		*(uint16_t *)arg = 256;
		return 0;
	case VHOST_VDPA_GET_IOVA_RANGE: {
		struct vhost_vdpa_iova_range *r = arg;
		r->first = iova_first;
		r->last = iova_last;
		return 0;
	}
	case VHOST_VDPA_SET_STATUS:
		status = *(uint8_t *)arg;
		if (refuse_features_ok)
			status &= (uint8_t)~VIRTIO_CONFIG_S_FEATURES_OK;
		record(fd, req, *(uint8_t *)arg, 0);
		return 0;
	case VHOST_VDPA_GET_STATUS:
		*(uint8_t *)arg = status;
		return 0;
	case VHOST_VDPA_GET_CONFIG: {
		struct vhost_vdpa_config *c = arg;
		for (uint32_t i = 0; i < c->len; i++)
			c->buf[i] = (uint8_t)(c->off + i + 1);
		record(fd, req, c->off, c->len);
		return 0;
	}
	case VHOST_VDPA_SET_CONFIG_CALL:
		record(fd, req, (uint64_t)(int64_t) * (int *)arg, 0);
		return 0;
	case VHOST_SET_MEM_TABLE: {
		struct vhost_memory *m = arg;
		record(fd, req, m->nregions, m->regions[0].guest_phys_addr);
		return 0;
	}
	case VHOST_SET_VRING_ADDR: {
		struct vhost_vring_addr *a = arg;
		record(fd, req, a->index, a->desc_user_addr);
		return 0;
	}
	case VHOST_SET_VRING_NUM:
	case VHOST_SET_VRING_BASE:
	case VHOST_GET_VRING_BASE:
	case VHOST_VDPA_SET_VRING_ENABLE: {
		struct vhost_vring_state *s = arg;
		record(fd, req, s->index, s->num);
		return 0;
	}
	case VHOST_SET_VRING_KICK:
	case VHOST_SET_VRING_CALL:
	case VHOST_NET_SET_BACKEND: {
		struct vhost_vring_file *f = arg;
		record(fd, req, f->index, (uint64_t)(int64_t)f->fd);
		return 0;
	}
	default:
		errno = ENOTTY;
		return -1;
	}
}

/* ---- helpers ---- */

static char logbuf[8192];

static void logfn(void *opaque, int level, const char *msg)
{
	(void)opaque;
	(void)level;
	size_t n = strlen(logbuf);
	snprintf(logbuf + n, sizeof(logbuf) - n, "%s\n", msg);
}

static int reader = -1; /* the FIFO's other end: the IOTLB messages */

static void reset_fake(void)
{
	ncalls = 0;
	status = 0;
	fail_req = 0;
	iova_first = 0;
	iova_last = UINT64_MAX;
	refuse_features_ok = false;
	logbuf[0] = 0;
	tun_name[0] = 0;
}

static unsigned count(unsigned long req)
{
	unsigned n = 0;
	for (unsigned i = 0; i < ncalls; i++)
		n += calls[i].req == req;
	return n;
}

static const struct call *nth(unsigned long req, unsigned k)
{
	for (unsigned i = 0; i < ncalls; i++)
		if (calls[i].req == req && k-- == 0)
			return &calls[i];
	return NULL;
}

static int index_of(unsigned long req, uint64_t a, int fd)
{
	for (unsigned i = 0; i < ncalls; i++)
		if (calls[i].req == req && calls[i].a == a && (fd < 0 || calls[i].fd == fd))
			return (int)i;
	return -1;
}

static int count_fds(void)
{
	int n = 0;
	for (int fd = 0; fd < 1024; fd++)
		n += fcntl(fd, F_GETFD) >= 0;
	return n;
}

static struct vhu_frontend_opts opts(enum vhu_transport t)
{
	return (struct vhu_frontend_opts){ .size = VHU_FRONTEND_OPTS_SIZE,
					   .transport = t,
					   .path = dev_path,
					   .mem_size = 4 << 20,
					   .iface = "vhufake0",
					   .log = logfn,
					   .log_level = VHU_LOG_DEBUG };
}

/* ---- vhost-kernel ---- */

static int kernel_two_pairs(void)
{
	struct vhu_frontend *fe;
	struct vhu_frontend_opts o = opts(VHU_TRANSPORT_KERNEL);
	uint64_t want = (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_NET_F_MQ) |
			(1ull << VIRTIO_NET_F_MRG_RXBUF);

	reset_fake();
	dev_features = (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_NET_F_MRG_RXBUF) |
		       (1ull << VHOST_NET_F_VIRTIO_NET_HDR) | (1ull << VIRTIO_RING_F_EVENT_IDX);
	ASSERT_OK(vhu_frontend_open(&fe, &o));
	ASSERT_EQ(vhu_frontend_transport(fe), VHU_TRANSPORT_KERNEL);
	ASSERT_EQ(vhu_frontend_device_id(fe), 1);
	/* MQ emulated by one fd per pair; the device's own header offer kept away. */
	uint64_t f = vhu_frontend_device_features(fe);
	ASSERT_TRUE(f >> VIRTIO_NET_F_MQ & 1);
	ASSERT_TRUE(!(f >> VHOST_NET_F_VIRTIO_NET_HDR & 1));
	ASSERT_TRUE(vhu_frontend_queue_num(fe) >= 2);
	ASSERT_EQ(vhu_frontend_get_config(fe, 0, &f, 8), -ENOTSUP);
	struct vhu_frontend_start_opts so = {
		.size = VHU_FRONTEND_START_OPTS_SIZE, .features = want, .nvqs = 4, .queue_size = 64
	};
	ASSERT_OK(vhu_frontend_start(fe, &so));
	/* Two device fds, each owned, with the features (no MQ) and the memory table. */
	ASSERT_EQ(count(VHOST_SET_OWNER), 2);
	int fd0 = nth(VHOST_SET_OWNER, 0)->fd, fd1 = nth(VHOST_SET_OWNER, 1)->fd;
	ASSERT_TRUE(fd0 != fd1);
	ASSERT_EQ(count(VHOST_SET_FEATURES), 2);
	for (unsigned k = 0; k < 2; k++) {
		ASSERT_EQ(nth(VHOST_SET_FEATURES, k)->a, want & ~(1ull << VIRTIO_NET_F_MQ));
		ASSERT_EQ(nth(VHOST_SET_MEM_TABLE, k)->a, 1);
		ASSERT_EQ(nth(VHOST_SET_MEM_TABLE, k)->b, 0x100000);
	}
	/* Rings 2 and 3 are rings 0 and 1 of the second fd. */
	ASSERT_TRUE(index_of(VHOST_SET_VRING_NUM, 0, fd1) >= 0);
	ASSERT_TRUE(index_of(VHOST_SET_VRING_NUM, 1, fd1) >= 0);
	ASSERT_EQ(count(VHOST_SET_VRING_NUM), 4);
	/* Two tap queues of one multi_queue tap with the virtio-net header, 12 bytes. */
	ASSERT_EQ(count(TUNSETIFF), 2);
	for (unsigned k = 0; k < 2; k++) {
		ASSERT_EQ(nth(TUNSETIFF, k)->a,
			  IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | IFF_MULTI_QUEUE);
		ASSERT_EQ(nth(TUNSETVNETHDRSZ, k)->a, 12);
	}
	int tap0 = nth(TUNSETIFF, 0)->fd, tap1 = nth(TUNSETIFF, 1)->fd;
	/* Created, so brought up. */
	ASSERT_EQ(count(SIOCSIFFLAGS), 1);
	/* Each ring's backend is its pair's tap queue. */
	ASSERT_EQ(count(VHOST_NET_SET_BACKEND), 4);
	for (unsigned k = 0; k < 4; k++) {
		const struct call *c = nth(VHOST_NET_SET_BACKEND, k);
		ASSERT_EQ(c->a, k % 2);
		ASSERT_EQ(c->fd, k < 2 ? fd0 : fd1);
		ASSERT_EQ(c->b, k < 2 ? tap0 : tap1);
	}
	/* Stop: every ring detached from its tap before its base is read. */
	unsigned before = ncalls;
	ASSERT_OK(vhu_frontend_stop(fe));
	for (unsigned i = 0; i < 4; i++) {
		int det = -1, get = -1;
		for (unsigned j = before; j < ncalls; j++) {
			int fd = i < 2 ? fd0 : fd1;
			if (calls[j].fd != fd || calls[j].a != i % 2)
				continue;
			if (calls[j].req == VHOST_NET_SET_BACKEND && (int64_t)calls[j].b == -1 &&
			    det < 0)
				det = (int)j;
			if (calls[j].req == VHOST_GET_VRING_BASE && get < 0)
				get = (int)j;
		}
		ASSERT_TRUE(det >= 0 && get > det);
	}
	vhu_frontend_close(fe);
	return 0;
}

/* A single-pair start on an existing tap is not in this test: /sys/class/net has none. A
 * failing ioctl: named with its device; open leaves no fd behind. */
static int kernel_ioctl_failure(void)
{
	struct vhu_frontend *fe = NULL;
	struct vhu_frontend_opts o = opts(VHU_TRANSPORT_KERNEL);
	int fds = count_fds();

	reset_fake();
	fail_req = VHOST_GET_FEATURES;
	ASSERT_EQ(vhu_frontend_open(&fe, &o), -EPERM);
	ASSERT_TRUE(strstr(logbuf, "VHOST_GET_FEATURES on ") != NULL);
	ASSERT_TRUE(strstr(logbuf, dev_path) != NULL);
	ASSERT_EQ(count_fds(), fds);
	/* At start: the tap's TUNSETIFF fails, named, and nothing stays open after close. */
	reset_fake();
	fail_req = TUNSETIFF;
	ASSERT_OK(vhu_frontend_open(&fe, &o));
	struct vhu_frontend_start_opts so = { .size = VHU_FRONTEND_START_OPTS_SIZE,
					      .features = 1ull << VIRTIO_F_VERSION_1,
					      .nvqs = 2 };
	ASSERT_EQ(vhu_frontend_start(fe, &so), -EPERM);
	ASSERT_TRUE(strstr(logbuf, "TUNSETIFF on /dev/net/tun") != NULL);
	vhu_frontend_close(fe);
	ASSERT_EQ(count_fds(), fds);
	return 0;
}

/* ---- vhost-vdpa ---- */

static int read_msgs(struct vhost_msg_v2 *m, unsigned max)
{
	unsigned n = 0;
	while (n < max && read(reader, &m[n], sizeof(m[n])) == (ssize_t)sizeof(m[n]))
		n++;
	return (int)n;
}

static void config_cb(struct vhu_frontend *fe, void *opaque)
{
	(void)fe;
	(*(unsigned *)opaque)++;
}

static int vdpa_start_stop(void)
{
	struct vhu_frontend *fe;
	struct vhu_frontend_opts o = opts(VHU_TRANSPORT_VDPA);
	struct vhost_msg_v2 m[8];

	reset_fake();
	device_id = 2;
	dev_features = (1ull << VIRTIO_F_VERSION_1) | (1ull << 33) | (1ull << VIRTIO_BLK_F_SEG_MAX);
	ASSERT_OK(vhu_frontend_open(&fe, &o));
	ASSERT_EQ(vhu_frontend_transport(fe), VHU_TRANSPORT_VDPA);
	ASSERT_EQ(vhu_frontend_device_id(fe), 2);
	ASSERT_EQ(vhu_frontend_queue_num(fe), 2);
	/* Backend features: what is offered of MSG_V2, BATCH (and SUSPEND: not offered). */
	ASSERT_EQ(nth(VHOST_SET_BACKEND_FEATURES, 0)->a,
		  (1ull << VHOST_BACKEND_F_IOTLB_MSG_V2) | (1ull << VHOST_BACKEND_F_IOTLB_BATCH));
	/* A config interrupt, served as the channel. */
	ASSERT_EQ(count(VHOST_VDPA_SET_CONFIG_CALL), 1);
	ASSERT_EQ((int)nth(VHOST_VDPA_SET_CONFIG_CALL, 0)->a, vhu_frontend_channel_fd(fe));
	/* Reset, then ACKNOWLEDGE | DRIVER. */
	ASSERT_EQ(count(VHOST_VDPA_SET_STATUS), 2);
	ASSERT_EQ(nth(VHOST_VDPA_SET_STATUS, 0)->a, 0);
	ASSERT_EQ(nth(VHOST_VDPA_SET_STATUS, 1)->a,
		  VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	/* The config interrupt reaches the application's callback through the channel. */
	unsigned changes = 0;
	vhu_frontend_set_config_cb(fe, config_cb, &changes);
	ASSERT_OK(vhu_frontend_channel_dispatch(fe));
	ASSERT_EQ(changes, 0);
	uint64_t one = 1;
	ASSERT_EQ(write((int)nth(VHOST_VDPA_SET_CONFIG_CALL, 0)->a, &one, 8), 8);
	ASSERT_OK(vhu_frontend_channel_dispatch(fe));
	ASSERT_EQ(changes, 1);
	uint8_t cfg[8];
	ASSERT_OK(vhu_frontend_get_config(fe, 4, cfg, sizeof(cfg)));
	ASSERT_EQ(cfg[0], 5);
	ASSERT_EQ(cfg[7], 12);

	uint8_t *buf = vhu_frontend_alloc(fe, 512, 64);
	struct vhu_frontend_start_opts so = { .size = VHU_FRONTEND_START_OPTS_SIZE,
					      .features = (1ull << VIRTIO_F_VERSION_1) |
							  (1ull << VIRTIO_BLK_F_SEG_MAX),
					      .nvqs = 1,
					      .queue_size = 64,
					      .poll = true };
	ASSERT_OK(vhu_frontend_start(fe, &so));
	/* The features with ACCESS_PLATFORM, then FEATURES_OK, then DRIVER_OK. */
	ASSERT_EQ(nth(VHOST_SET_FEATURES, 0)->a, so.features | (1ull << 33));
	ASSERT_EQ(count(VHOST_VDPA_SET_STATUS), 4);
	ASSERT_EQ(nth(VHOST_VDPA_SET_STATUS, 2)->a, VIRTIO_CONFIG_S_ACKNOWLEDGE |
							    VIRTIO_CONFIG_S_DRIVER |
							    VIRTIO_CONFIG_S_FEATURES_OK);
	ASSERT_EQ(nth(VHOST_VDPA_SET_STATUS, 3)->a, 0xf);
	ASSERT_TRUE(index_of(VHOST_VDPA_SET_STATUS, 0xf, -1) >
		    index_of(VHOST_VDPA_SET_VRING_ENABLE, 0, -1));
	ASSERT_EQ(nth(VHOST_VDPA_SET_VRING_ENABLE, 0)->b, 1);
	/* Memory: one update in a batch, IOVA = VA, read-write, address space 0. */
	ASSERT_EQ(read_msgs(m, 8), 3);
	ASSERT_EQ(m[0].type, VHOST_IOTLB_MSG_V2);
	ASSERT_EQ(m[0].iotlb.type, VHOST_IOTLB_BATCH_BEGIN);
	ASSERT_EQ(m[1].iotlb.type, VHOST_IOTLB_UPDATE);
	ASSERT_EQ(m[1].asid, 0);
	ASSERT_EQ(m[1].iotlb.perm, VHOST_ACCESS_RW);
	ASSERT_EQ(m[1].iotlb.iova, m[1].iotlb.uaddr);
	ASSERT_TRUE(m[1].iotlb.size >= 4 << 20);
	ASSERT_EQ(m[2].iotlb.type, VHOST_IOTLB_BATCH_END);
	uint64_t lo = m[1].iotlb.iova, hi = lo + m[1].iotlb.size;
	ASSERT_TRUE((uintptr_t)buf >= lo && (uintptr_t)buf + 512 <= hi);
	/* The ring and the descriptors carry our addresses. */
	uint64_t desc = nth(VHOST_SET_VRING_ADDR, 0)->b;
	ASSERT_TRUE(desc >= lo && desc < hi);
	struct iovec iov = { buf, 512 };
	ASSERT_OK(vhu_drvq_add(vhu_frontend_queue(fe, 0), &iov, 1, 0, buf));
	struct vring_desc *d = (struct vring_desc *)(uintptr_t)desc;
	ASSERT_EQ(d[0].addr, (uintptr_t)buf);
	/* Stop: the rings read, then a reset. */
	ASSERT_OK(vhu_frontend_stop(fe));
	ASSERT_EQ(count(VHOST_GET_VRING_BASE), 1);
	ASSERT_EQ(nth(VHOST_VDPA_SET_STATUS, 4)->a, 0);
	ASSERT_EQ(count(VHOST_VDPA_SUSPEND), 0);
	/* Close: the mapping taken back. */
	vhu_frontend_close(fe);
	ASSERT_EQ(read_msgs(m, 8), 1);
	ASSERT_EQ(m[0].iotlb.type, VHOST_IOTLB_INVALIDATE);
	ASSERT_EQ(m[0].iotlb.iova, lo);
	return 0;
}

static int vdpa_refusals(void)
{
	struct vhu_frontend *fe;
	struct vhu_frontend_opts o = opts(VHU_TRANSPORT_VDPA);
	struct vhu_frontend_start_opts so = { .size = VHU_FRONTEND_START_OPTS_SIZE,
					      .features = 1ull << VIRTIO_F_VERSION_1,
					      .nvqs = 1 };
	struct vhost_msg_v2 m[8];
	int fds = count_fds();

	/* Memory outside the IOVA range: refused before any update. */
	reset_fake();
	device_id = 2;
	dev_features = 1ull << VIRTIO_F_VERSION_1;
	iova_last = 0xfffff;
	ASSERT_OK(vhu_frontend_open(&fe, &o));
	ASSERT_EQ(vhu_frontend_start(fe, &so), -ERANGE);
	ASSERT_TRUE(strstr(logbuf, "outside the device's IOVA range") != NULL);
	vhu_frontend_close(fe);
	ASSERT_EQ(read_msgs(m, 8), 0);
	/* FEATURES_OK not kept by the device: start fails. */
	reset_fake();
	refuse_features_ok = true;
	ASSERT_OK(vhu_frontend_open(&fe, &o));
	ASSERT_EQ(vhu_frontend_start(fe, &so), -ENOTSUP);
	ASSERT_TRUE(strstr(logbuf, "refused the features") != NULL);
	vhu_frontend_close(fe);
	/* A ring larger than the device takes. */
	reset_fake();
	ASSERT_OK(vhu_frontend_open(&fe, &o));
	so.queue_size = 512;
	ASSERT_EQ(vhu_frontend_start(fe, &so), -EINVAL);
	vhu_frontend_close(fe);
	/* A failing ioctl: named with the device; no fd left. */
	reset_fake();
	fail_req = VHOST_VDPA_GET_DEVICE_ID;
	ASSERT_EQ(vhu_frontend_open(&fe, &o), -EPERM);
	ASSERT_TRUE(strstr(logbuf, "VHOST_VDPA_GET_DEVICE_ID on ") != NULL);
	ASSERT_TRUE(strstr(logbuf, dev_path) != NULL);
	read_msgs(m, 8);
	ASSERT_EQ(count_fds(), fds);
	return 0;
}

/* ---- the transport from the path ---- */

static int auto_pick(void)
{
	struct vhu_frontend *fe = NULL;
	struct vhu_frontend_opts o = opts(VHU_TRANSPORT_AUTO);

	/* A character device not named vhost-vdpa-N: vhost-kernel (the real /dev/null says
	 * ENOTTY to VHOST_SET_OWNER, named). */
	reset_fake();
	o.path = "/dev/null";
	ASSERT_EQ(vhu_frontend_open(&fe, &o), -ENOTTY);
	ASSERT_TRUE(strstr(logbuf, "VHOST_SET_OWNER on /dev/null") != NULL);
	/* Anything else: a vhost-user socket. */
	reset_fake();
	o.path = "/nonexistent/vhu.sock";
	o.timeout_ms = 100;
	ASSERT_TRUE(vhu_frontend_open(&fe, &o) < 0);
	ASSERT_TRUE(strstr(logbuf, "connect to /nonexistent/vhu.sock") != NULL);
	/* An unknown transport. */
	o.transport = (enum vhu_transport)9;
	ASSERT_EQ(vhu_frontend_open(&fe, &o), -EINVAL);
	return 0;
}

/* ---- the options' size (the ABI of a growing struct) ---- */

static int opts_size(void)
{
	struct vhu_frontend *fe = NULL;
	struct vhu_frontend_opts o = opts(VHU_TRANSPORT_KERNEL);
	struct vhu_frontend_start_opts so = { .size = VHU_FRONTEND_START_OPTS_SIZE,
					      .features = 1ull << VIRTIO_F_VERSION_1,
					      .nvqs = 2 };
	const size_t before_iface = offsetof(struct vhu_frontend_opts, iface);
	union {
		struct vhu_frontend_opts o;
		unsigned char b[sizeof(struct vhu_frontend_opts) + 64];
	} u;
	int fds = count_fds();

	/* No size (a caller that never called vhu_frontend_opts_init()): refused, nothing done. */
	reset_fake();
	o.size = 0;
	ASSERT_EQ(vhu_frontend_open(&fe, &o), -EINVAL);
	ASSERT_EQ(ncalls, 0);
	ASSERT_EQ(count_fds(), fds);
	o.size = VHU_FRONTEND_OPTS_SIZE;
	/* A caller compiled before iface existed: the bytes past its size (here no pointer at
	 * all) are never read, and the tap takes the default name. */
	memset(&u, 0xa5, sizeof(u));
	memcpy(&u, &o, before_iface);
	u.o.size = before_iface;
	reset_fake();
	ASSERT_OK(vhu_frontend_open(&fe, &u.o));
	ASSERT_OK(vhu_frontend_start(fe, &so));
	ASSERT_EQ(strcmp(tun_name, "vhu%d"), 0);
	vhu_frontend_close(fe);
	/* One byte less than that: not a struct any release had. */
	u.o.size = before_iface - 1;
	ASSERT_EQ(vhu_frontend_open(&fe, &u.o), -EINVAL);
	/* This header's size: iface is read. */
	reset_fake();
	ASSERT_OK(vhu_frontend_open(&fe, &o));
	ASSERT_OK(vhu_frontend_start(fe, &so));
	ASSERT_EQ(strcmp(tun_name, "vhufake0"), 0);
	vhu_frontend_close(fe);
	/* A newer caller's larger struct: zeros past this library's members are fine; a member
	 * this library does not know, set, is -E2BIG; so is a size no struct will reach. */
	memset(&u, 0, sizeof(u));
	memcpy(&u, &o, sizeof(o));
	u.o.size = sizeof(u);
	reset_fake();
	ASSERT_OK(vhu_frontend_open(&fe, &u.o));
	vhu_frontend_close(fe);
	u.b[sizeof(o) + 8] = 1;
	ASSERT_EQ(vhu_frontend_open(&fe, &u.o), -E2BIG);
	o.size = 1 << 20;
	ASSERT_EQ(vhu_frontend_open(&fe, &o), -E2BIG);
	ASSERT_EQ(count_fds(), fds);
	/* vhu_frontend_opts_init(): every member zero but the size. */
	memset(&u, 0xa5, sizeof(u));
	vhu_frontend_opts_init(&u.o);
	ASSERT_EQ(u.o.size, sizeof(struct vhu_frontend_opts));
	ASSERT_TRUE(!u.o.path && !u.o.iface && !u.o.mem_size && !u.o.transport);
	return 0;
}

/* The start options follow the same rules: no size, one byte short of the first release's
 * members, a set member past this library's struct, all refused before anything is sent. */
static int start_opts_size(void)
{
	struct vhu_frontend *fe = NULL;
	struct vhu_frontend_opts o = opts(VHU_TRANSPORT_KERNEL);
	const size_t all = offsetof(struct vhu_frontend_start_opts, poll) + sizeof(bool);
	union {
		struct vhu_frontend_start_opts so;
		unsigned char b[sizeof(struct vhu_frontend_start_opts) + 64];
	} u;
	int fds = count_fds();

	reset_fake();
	ASSERT_OK(vhu_frontend_open(&fe, &o));
	unsigned before = ncalls;
	memset(&u, 0, sizeof(u));
	u.so = (struct vhu_frontend_start_opts){ .features = 1ull << VIRTIO_F_VERSION_1,
						 .nvqs = 2 };
	ASSERT_EQ(vhu_frontend_start(fe, &u.so), -EINVAL); /* size 0 */
	u.so.size = all - 1;
	ASSERT_EQ(vhu_frontend_start(fe, &u.so), -EINVAL);
	u.so.size = sizeof(u);
	u.b[sizeof(u.so) + 8] = 1;
	ASSERT_EQ(vhu_frontend_start(fe, &u.so), -E2BIG);
	ASSERT_EQ(vhu_frontend_start(fe, NULL), -EINVAL);
	ASSERT_EQ(ncalls, before); /* nothing reached the device */
	/* A newer caller's larger struct with zeros past this library's members: started. */
	u.b[sizeof(u.so) + 8] = 0;
	ASSERT_OK(vhu_frontend_start(fe, &u.so));
	ASSERT_TRUE(ncalls > before);
	vhu_frontend_close(fe);
	ASSERT_EQ(count_fds(), fds);
	/* vhu_frontend_start_opts_init(): every member zero but the size. */
	memset(&u, 0xa5, sizeof(u));
	vhu_frontend_start_opts_init(&u.so);
	ASSERT_EQ(u.so.size, sizeof(struct vhu_frontend_start_opts));
	ASSERT_TRUE(!u.so.features && !u.so.nvqs && !u.so.queue_size && !u.so.poll);
	return 0;
}

int main(void)
{
	snprintf(dev_path, sizeof(dev_path), "/tmp/vhu-fe-vhost-%d", (int)getpid());
	if (mkfifo(dev_path, 0600) < 0) {
		perror("mkfifo");
		return T_SKIP;
	}
	reader = open(dev_path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (reader < 0) {
		unlink(dev_path);
		return T_SKIP;
	}
	RUN(kernel_two_pairs);
	RUN(kernel_ioctl_failure);
	RUN(vdpa_start_stop);
	RUN(vdpa_refusals);
	RUN(auto_pick);
	RUN(opts_size);
	RUN(start_opts_size);
	close(reader);
	unlink(dev_path);
	T_MAIN_END();
}
