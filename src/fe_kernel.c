/* SPDX-License-Identifier: MIT */
/*
 * The vhost-kernel transport of the front-end: the kernel's vhost-net worker moves frames
 * between our rings and a tap. As DPDK's virtio-user (vhost_kernel.c) does, each queue pair
 * has a /dev/vhost-net fd of its own (rings 0 and 1 of it: rx and tx) and a queue of the tap
 * of its own (a multi_queue tap for more than one pair); VIRTIO_NET_F_MQ is emulated that way
 * and never reaches the kernel. Pair 0's fd is opened with the connection; the others when
 * their first ring is set up, and then get the owner, features and memory table pair 0 has.
 *
 * The tap (the application's iface) is attached when it exists, created otherwise. A tap we
 * create is not persistent: it is gone when our last queue of it closes, so nothing we made
 * outlives us; a tap that existed is only detached. The virtio-net header is the tap's
 * (IFF_VNET_HDR, TUNSETVNETHDRSZ: 12 bytes with VERSION_1 or MRG_RXBUF, else 10), so the
 * device's own VHOST_NET_F_VIRTIO_NET_HDR is kept out of the features.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/vhost.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_net.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fe_ops.h"
#include "fe_vhost.h"
#include "util.h"

#define KERNEL_MAX_PAIRS 8 /* DPDK's VHOST_KERNEL_MAX_QUEUES */
#define TUN_PATH	 "/dev/net/tun"

struct fe_conn {
	char path[PATH_MAX];
	char iface[IFNAMSIZ];
	const struct logger *lg;
	int vhostfd[KERNEL_MAX_PAIRS];
	int tapfd[KERNEL_MAX_PAIRS];
	uint64_t features; /* as set, with MQ */
	bool features_set;
	const struct fe_mem *mem; /* the memory table, once set */
	bool created;		  /* we created the tap */
};

static bool kernel_mq(const struct fe_conn *c)
{
	return has_bit(c->features, VIRTIO_NET_F_MQ);
}

/* What the kernel gets: without the emulated MQ and vhost-user's PROTOCOL_FEATURES. */
static uint64_t kernel_features(const struct fe_conn *c)
{
	return c->features & ~(bit64(VIRTIO_NET_F_MQ) | bit64(VHU_F_PROTOCOL_FEATURES));
}

static int kernel_open(struct fe_conn **out, const struct fe_open_args *a)
{
	struct fe_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->lg = a->lg;
	for (unsigned i = 0; i < KERNEL_MAX_PAIRS; i++)
		c->vhostfd[i] = c->tapfd[i] = -1;
	if (strlen(a->path) >= sizeof(c->path) ||
	    (a->iface && strlen(a->iface) >= sizeof(c->iface))) {
		log_err(c->lg, "%s: path or interface name too long", a->path);
		free(c);
		return -ENAMETOOLONG;
	}
	strcpy(c->path, a->path);
	snprintf(c->iface, sizeof(c->iface), "%s", a->iface ? a->iface : "vhu%d");
	c->vhostfd[0] = open(c->path, O_RDWR | O_CLOEXEC);
	if (c->vhostfd[0] < 0) {
		int ret = -errno;
		log_err(c->lg, "open %s: %s", c->path, strerror(-ret));
		free(c);
		return ret;
	}
	*out = c;
	return 0;
}

static void kernel_close(struct fe_conn *c)
{
	if (!c)
		return;
	for (unsigned i = 0; i < KERNEL_MAX_PAIRS; i++) {
		close_fd(&c->tapfd[i]);
		close_fd(&c->vhostfd[i]);
	}
	if (c->created)
		log_info(c->lg, "tap %s: removed with its last queue", c->iface);
	free(c);
}

static int kernel_set_owner(struct fe_conn *c)
{
	return FE_VHOST_IOCTL(c->vhostfd[0], VHOST_SET_OWNER, NULL, c->path, c->lg);
}

static int kernel_get_device_id(struct fe_conn *c, uint32_t *id)
{
	(void)c;
	*id = VIRTIO_ID_NET;
	return 0;
}

static int kernel_get_features(struct fe_conn *c, uint64_t *f)
{
	int ret = FE_VHOST_IOCTL(c->vhostfd[0], VHOST_GET_FEATURES, f, c->path, c->lg);

	if (ret)
		return ret;
	*f &= ~bit64(VHOST_NET_F_VIRTIO_NET_HDR);
	*f |= bit64(VIRTIO_NET_F_MQ);
	return 0;
}

static unsigned hdr_len(const struct fe_conn *c)
{
	return has_bit(c->features, VIRTIO_F_VERSION_1) ||
			       has_bit(c->features, VIRTIO_NET_F_MRG_RXBUF)
		       ? sizeof(struct virtio_net_hdr_mrg_rxbuf)
		       : sizeof(struct virtio_net_hdr);
}

static int kernel_set_features(struct fe_conn *c, uint64_t f)
{
	uint64_t kf;
	int ret;

	c->features = f;
	c->features_set = true;
	kf = kernel_features(c);
	for (unsigned i = 0; i < KERNEL_MAX_PAIRS; i++) {
		int sz = (int)hdr_len(c);
		if (c->vhostfd[i] >= 0 &&
		    (ret = FE_VHOST_IOCTL(c->vhostfd[i], VHOST_SET_FEATURES, &kf, c->path, c->lg)))
			return ret;
		if (c->tapfd[i] >= 0 &&
		    (ret = FE_VHOST_IOCTL(c->tapfd[i], TUNSETVNETHDRSZ, &sz, TUN_PATH, c->lg)))
			return ret;
	}
	return 0;
}

static int kernel_get_queue_num(struct fe_conn *c, uint64_t *n)
{
	(void)c;
	*n = KERNEL_MAX_PAIRS;
	return 0;
}

static int kernel_set_mem_table(struct fe_conn *c, const struct fe_mem *m)
{
	int ret;

	c->mem = m;
	for (unsigned i = 0; i < KERNEL_MAX_PAIRS; i++)
		if (c->vhostfd[i] >= 0 &&
		    (ret = fe_vhost_set_mem_table(c->vhostfd[i], m, c->path, c->lg)))
			return ret;
	return 0;
}

/* The fd of ring idx's pair, opened (owner, features, memory table) the first time. */
static int pair_fd(struct fe_conn *c, unsigned idx, int *fd)
{
	unsigned p = idx / 2;
	uint64_t kf = kernel_features(c);
	int ret;

	if (p >= KERNEL_MAX_PAIRS) {
		log_err(c->lg, "%s: ring %u: at most %u queue pairs", c->path, idx,
			KERNEL_MAX_PAIRS);
		return -EINVAL;
	}
	if (c->vhostfd[p] < 0) {
		int nfd = open(c->path, O_RDWR | O_CLOEXEC);
		if (nfd < 0) {
			ret = -errno;
			log_err(c->lg, "open %s (queue pair %u): %s", c->path, p, strerror(-ret));
			return ret;
		}
		if ((ret = FE_VHOST_IOCTL(nfd, VHOST_SET_OWNER, NULL, c->path, c->lg)) ||
		    (c->features_set &&
		     (ret = FE_VHOST_IOCTL(nfd, VHOST_SET_FEATURES, &kf, c->path, c->lg))) ||
		    (c->mem && (ret = fe_vhost_set_mem_table(nfd, c->mem, c->path, c->lg)))) {
			close(nfd);
			return ret;
		}
		c->vhostfd[p] = nfd;
	}
	*fd = c->vhostfd[p];
	return 0;
}

static int kernel_set_vring_num(struct fe_conn *c, unsigned idx, unsigned num)
{
	int fd, ret = pair_fd(c, idx, &fd);
	return ret ? ret : fe_vhost_set_vring_num(fd, idx % 2, num, c->path, c->lg);
}

static int kernel_set_vring_base(struct fe_conn *c, unsigned idx, uint32_t base)
{
	int fd, ret = pair_fd(c, idx, &fd);
	return ret ? ret : fe_vhost_set_vring_base(fd, idx % 2, base, c->path, c->lg);
}

static int kernel_set_vring_addr(struct fe_conn *c, const struct vhu_vring_addr *a)
{
	int fd, ret = pair_fd(c, a->index, &fd);
	return ret ? ret : fe_vhost_set_vring_addr(fd, a->index % 2, a, c->path, c->lg);
}

static int kernel_set_vring_kick(struct fe_conn *c, unsigned idx, int efd)
{
	int fd, ret = pair_fd(c, idx, &fd);
	return ret ? ret : fe_vhost_set_vring_kick(fd, idx % 2, efd, c->path, c->lg);
}

static int kernel_set_vring_call(struct fe_conn *c, unsigned idx, int efd)
{
	int fd, ret = pair_fd(c, idx, &fd);
	return ret ? ret : fe_vhost_set_vring_call(fd, idx % 2, efd, c->path, c->lg);
}

static int kernel_net_set_backend(struct fe_conn *c, unsigned idx, int tapfd)
{
	struct vhost_vring_file f = { .index = idx % 2, .fd = tapfd };
	int fd, ret = pair_fd(c, idx, &fd);

	return ret ? ret : FE_VHOST_IOCTL(fd, VHOST_NET_SET_BACKEND, &f, c->path, c->lg);
}

/* The stop: the tap detached from the ring first (QEMU's vhost_net_stop_one), then where
 * the ring stopped. */
static int kernel_get_vring_base(struct fe_conn *c, unsigned idx, uint32_t *base)
{
	int fd, ret = kernel_net_set_backend(c, idx, -1);

	if (!ret)
		ret = pair_fd(c, idx, &fd);
	return ret ? ret : fe_vhost_get_vring_base(fd, idx % 2, base, c->path, c->lg);
}

/* The tap's flags from sysfs (tun_flags), or -errno when there is no such tun device. */
static int tap_flags(const char *iface, unsigned *flags)
{
	char p[96], buf[32];
	FILE *f;

	snprintf(p, sizeof(p), "/sys/class/net/%s/tun_flags", iface);
	f = fopen(p, "re");
	if (!f)
		return -errno;
	bool ok = fgets(buf, sizeof(buf), f) != NULL;
	fclose(f);
	if (!ok)
		return -EIO;
	*flags = (unsigned)strtoul(buf, NULL, 16);
	return 0;
}

static bool iface_exists(const char *iface)
{
	char p[96];
	struct stat st;

	if (strchr(iface, '%'))
		return false;
	snprintf(p, sizeof(p), "/sys/class/net/%s", iface);
	return stat(p, &st) == 0;
}

static int tap_up(struct fe_conn *c)
{
	struct ifreq ifr;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), ret;

	if (s < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", c->iface);
	ret = FE_VHOST_IOCTL(s, SIOCGIFFLAGS, &ifr, c->iface, c->lg);
	if (!ret) {
		ifr.ifr_flags |= IFF_UP;
		ret = FE_VHOST_IOCTL(s, SIOCSIFFLAGS, &ifr, c->iface, c->lg);
	}
	close(s);
	return ret;
}

/* Queue p of the tap: attached to the existing tap (its multi_queue flag as it was made),
 * or the tap created (multi_queue when MQ was negotiated), header size and offloads set. */
static int tap_open(struct fe_conn *c, unsigned p)
{
	unsigned flags = 0;
	bool exists = iface_exists(c->iface);
	bool mq = kernel_mq(c);
	struct ifreq ifr;
	int fd, ret, sz = (int)hdr_len(c);

	if (exists) {
		ret = tap_flags(c->iface, &flags);
		if (ret) {
			log_err(c->lg, "%s exists but is not a tap (no tun_flags): %s", c->iface,
				strerror(-ret));
			return -ENODEV;
		}
		mq = flags & IFF_MULTI_QUEUE;
	}
	if (p > 0 && !mq) {
		log_err(c->lg, "tap %s: queue pair %u needs a multi_queue tap", c->iface, p);
		return -EINVAL;
	}
	fd = open(TUN_PATH, O_RDWR | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		ret = -errno;
		log_err(c->lg, "open %s: %s", TUN_PATH, strerror(-ret));
		return ret;
	}
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", c->iface);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | (mq ? IFF_MULTI_QUEUE : 0);
	ret = FE_VHOST_IOCTL(fd, TUNSETIFF, &ifr, TUN_PATH, c->lg);
	if (ret) {
		log_err(c->lg, "tap %s (%s, queue %u): TUNSETIFF failed", c->iface,
			exists ? "attach" : "create", p);
		goto err;
	}
	if (!exists && p == 0) {
		c->created = true;
		snprintf(c->iface, sizeof(c->iface), "%s", ifr.ifr_name);
		log_info(c->lg, "tap %s created%s", c->iface, mq ? " (multi_queue)" : "");
	}
	if ((ret = FE_VHOST_IOCTL(fd, TUNSETVNETHDRSZ, &sz, TUN_PATH, c->lg)) ||
	    (ret = FE_VHOST_IOCTL(fd, TUNSETOFFLOAD, (void *)0, TUN_PATH, c->lg)))
		goto err;
	if (c->created && p == 0 && (ret = tap_up(c)))
		goto err;
	c->tapfd[p] = fd;
	return 0;
err:
	close(fd);
	return ret;
}

/* Ring enable is the tap attached to the ring (DPDK's vhost_kernel_enable_queue_pair). */
static int kernel_set_vring_enable(struct fe_conn *c, unsigned idx, bool enable)
{
	unsigned p = idx / 2;
	int ret;

	if (p >= KERNEL_MAX_PAIRS)
		return -EINVAL;
	if (enable && c->tapfd[p] < 0 && (ret = tap_open(c, p)))
		return ret;
	return kernel_net_set_backend(c, idx, enable ? c->tapfd[p] : -1);
}

static int kernel_reset(struct fe_conn *c)
{
	int ret = 0;

	for (unsigned i = 0; i < KERNEL_MAX_PAIRS && !ret; i++)
		if (c->vhostfd[i] >= 0)
			ret = FE_VHOST_IOCTL(c->vhostfd[i], VHOST_RESET_OWNER, NULL, c->path,
					     c->lg);
	return ret;
}

const struct fe_ops fe_kernel_ops = {
	.name = "vhost-kernel",
	.open = kernel_open,
	.close = kernel_close,
	.set_owner = kernel_set_owner,
	.get_device_id = kernel_get_device_id,
	.get_features = kernel_get_features,
	.set_features = kernel_set_features,
	.get_queue_num = kernel_get_queue_num,
	.set_mem_table = kernel_set_mem_table,
	.set_vring_num = kernel_set_vring_num,
	.set_vring_base = kernel_set_vring_base,
	.get_vring_base = kernel_get_vring_base,
	.set_vring_addr = kernel_set_vring_addr,
	.set_vring_kick = kernel_set_vring_kick,
	.set_vring_call = kernel_set_vring_call,
	.set_vring_enable = kernel_set_vring_enable,
	.net_set_backend = kernel_net_set_backend,
	.reset = kernel_reset,
};
