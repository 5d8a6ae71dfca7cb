/* SPDX-License-Identifier: MIT */
/*
 * The vhost-vdpa transport of the front-end: /dev/vhost-vdpa-N, a vDPA device (hardware, or
 * a VDUSE device served by a process), as QEMU's vhost-vdpa.c and DPDK's vhost_vdpa.c drive
 * it. What differs from vhost-kernel:
 *  - memory is not a table: the device sees the front-end's memory through its IOTLB,
 *    programmed with VHOST_IOTLB_UPDATE messages written to the fd (struct vhost_msg_v2,
 *    backend feature IOTLB_MSG_V2; in one batch with IOTLB_BATCH), address space 0. The IOVA
 *    is the front-end's own address (fe_ops.dma_va), which must lie within
 *    VHOST_VDPA_GET_IOVA_RANGE. The memory must be a shared file mapping (memfd, hugetlbfs:
 *    fe_mem.c makes nothing else): VDUSE maps the file behind the IOVA into its server, and
 *    with anonymous memory it accepts the update and then never completes I/O;
 *  - the device status is the driver's (VHOST_VDPA_SET_STATUS): reset and ACKNOWLEDGE |
 *    DRIVER at open, FEATURES_OK after the features (read back: "the driver MUST re-read
 *    device status to ensure the FEATURES_OK bit is still set"), DRIVER_OK at the end;
 *  - the device has an id, a config space (VHOST_VDPA_GET/SET_CONFIG) and a config change
 *    interrupt (VHOST_VDPA_SET_CONFIG_CALL); rings are enabled one by one
 *    (VHOST_VDPA_SET_VRING_ENABLE).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/vhost.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fe_ops.h"
#include "fe_vhost.h"
#include "util.h"

#define VDPA_ACCESS_PLATFORM 33
#define VDPA_MAX_CONFIG	     4096

struct fe_conn {
	char path[PATH_MAX];
	const struct logger *lg;
	int fd;
	uint32_t device_id;
	uint64_t dev_features;
	uint64_t backend_features; /* set with VHOST_SET_BACKEND_FEATURES */
	uint8_t status;		   /* as last set */
	bool suspended;
	/* The mapping made by set_mem_table: [iova, iova + size), 0 size when none. */
	uint64_t map_iova, map_size;
};

static int vdpa_status(struct fe_conn *c, uint8_t s)
{
	int ret = FE_VHOST_IOCTL(c->fd, VHOST_VDPA_SET_STATUS, &s, c->path, c->lg);

	if (!ret)
		c->status = s;
	return ret;
}

static int vdpa_open(struct fe_conn **out, const struct fe_open_args *a)
{
	struct fe_conn *c = calloc(1, sizeof(*c));
	int ret;

	if (!c)
		return -ENOMEM;
	c->lg = a->lg;
	if (strlen(a->path) >= sizeof(c->path)) {
		free(c);
		return -ENAMETOOLONG;
	}
	strcpy(c->path, a->path);
	c->fd = open(c->path, O_RDWR | O_CLOEXEC);
	if (c->fd < 0) {
		ret = -errno;
		log_err(c->lg, "open %s: %s", c->path, strerror(-ret));
		free(c);
		return ret;
	}
	*out = c;
	return 0;
}

/* Sends one IOTLB message (V2, address space 0). */
static int iotlb_write(struct fe_conn *c, uint8_t type, uint64_t iova, uint64_t size,
		       uint64_t uaddr)
{
	static const char *const names[] = { [VHOST_IOTLB_UPDATE] = "VHOST_IOTLB_UPDATE",
					     [VHOST_IOTLB_INVALIDATE] = "VHOST_IOTLB_INVALIDATE",
					     [VHOST_IOTLB_BATCH_BEGIN] = "VHOST_IOTLB_BATCH_BEGIN",
					     [VHOST_IOTLB_BATCH_END] = "VHOST_IOTLB_BATCH_END" };
	struct vhost_msg_v2 m;
	ssize_t n;

	memset(&m, 0, sizeof(m));
	m.type = VHOST_IOTLB_MSG_V2;
	m.asid = 0;
	m.iotlb.iova = iova;
	m.iotlb.size = size;
	m.iotlb.uaddr = uaddr;
	m.iotlb.perm = type == VHOST_IOTLB_UPDATE ? VHOST_ACCESS_RW : 0;
	m.iotlb.type = type;
	do
		n = write(c->fd, &m, sizeof(m));
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(m)) {
		int ret = n < 0 ? -errno : -EIO;
		log_err(c->lg, "%s (iova 0x%llx size 0x%llx) on %s: %s", names[type],
			(unsigned long long)iova, (unsigned long long)size, c->path,
			strerror(-ret));
		return ret;
	}
	log_debug(c->lg, "%s iova 0x%llx size 0x%llx on %s", names[type], (unsigned long long)iova,
		  (unsigned long long)size, c->path);
	return 0;
}

static bool batching(const struct fe_conn *c)
{
	return has_bit(c->backend_features, VHOST_BACKEND_F_IOTLB_BATCH);
}

static int unmap_all(struct fe_conn *c)
{
	int ret;

	if (!c->map_size)
		return 0;
	ret = iotlb_write(c, VHOST_IOTLB_INVALIDATE, c->map_iova, c->map_size, 0);
	if (!ret)
		c->map_size = 0;
	return ret;
}

static void vdpa_close(struct fe_conn *c)
{
	if (!c)
		return;
	/* Nothing left running or mapped behind us (closing the fd drops both as well). */
	if (c->status)
		vdpa_status(c, 0);
	unmap_all(c);
	close_fd(&c->fd);
	free(c);
}

static int vdpa_set_owner(struct fe_conn *c)
{
	int ret = FE_VHOST_IOCTL(c->fd, VHOST_SET_OWNER, NULL, c->path, c->lg);

	/* QEMU's vhost_vdpa_init: a reset, then ACKNOWLEDGE | DRIVER. */
	if (!ret)
		ret = vdpa_status(c, 0);
	if (!ret)
		ret = vdpa_status(c, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	return ret;
}

static int vdpa_get_device_id(struct fe_conn *c, uint32_t *id)
{
	int ret = FE_VHOST_IOCTL(c->fd, VHOST_VDPA_GET_DEVICE_ID, id, c->path, c->lg);

	if (!ret)
		c->device_id = *id;
	return ret;
}

static int vdpa_get_features(struct fe_conn *c, uint64_t *f)
{
	int ret = FE_VHOST_IOCTL(c->fd, VHOST_GET_FEATURES, f, c->path, c->lg);

	if (!ret)
		c->dev_features = *f;
	return ret;
}

/* The features, then FEATURES_OK, read back. ACCESS_PLATFORM is accepted whenever offered:
 * the device reaches our memory through its IOTLB, which is what it says (DPDK's
 * vhost_vdpa_set_features does the same). */
static int vdpa_set_features(struct fe_conn *c, uint64_t f)
{
	uint8_t st = 0;
	int ret;

	f &= ~bit64(VHU_F_PROTOCOL_FEATURES);
	f |= c->dev_features & bit64(VDPA_ACCESS_PLATFORM);
	if ((ret = FE_VHOST_IOCTL(c->fd, VHOST_SET_FEATURES, &f, c->path, c->lg)) ||
	    (ret = vdpa_status(c, c->status | VIRTIO_CONFIG_S_FEATURES_OK)) ||
	    (ret = FE_VHOST_IOCTL(c->fd, VHOST_VDPA_GET_STATUS, &st, c->path, c->lg)))
		return ret;
	if (!(st & VIRTIO_CONFIG_S_FEATURES_OK)) {
		log_err(c->lg, "%s refused the features 0x%llx (status 0x%x)", c->path,
			(unsigned long long)f, st);
		return -ENOTSUP;
	}
	return 0;
}

static int vdpa_negotiate_backend_features(struct fe_conn *c, uint64_t *f)
{
	uint64_t want = bit64(VHOST_BACKEND_F_IOTLB_MSG_V2) | bit64(VHOST_BACKEND_F_IOTLB_BATCH) |
			bit64(VHOST_BACKEND_F_SUSPEND);
	int ret = fe_vhost_backend_features(c->fd, want, f, c->path, c->lg);

	if (ret)
		return ret;
	if (!has_bit(*f, VHOST_BACKEND_F_IOTLB_MSG_V2)) {
		log_err(c->lg, "%s does not offer IOTLB_MSG_V2", c->path);
		return -ENOTSUP;
	}
	c->backend_features = *f;
	return 0;
}

static int vdpa_get_queue_num(struct fe_conn *c, uint64_t *n)
{
	uint32_t vqs;
	int ret = FE_VHOST_IOCTL(c->fd, VHOST_VDPA_GET_VQS_COUNT, &vqs, c->path, c->lg);

	if (ret)
		return ret;
	/* net: queue pairs (a control queue, if any, left out); others: queues. */
	*n = c->device_id == VIRTIO_ID_NET ? vqs / 2 : vqs;
	return 0;
}

static int vdpa_get_iova_range(struct fe_conn *c, uint64_t *first, uint64_t *last)
{
	struct vhost_vdpa_iova_range r;
	int ret = FE_VHOST_IOCTL(c->fd, VHOST_VDPA_GET_IOVA_RANGE, &r, c->path, c->lg);

	if (!ret) {
		*first = r.first;
		*last = r.last;
	}
	return ret;
}

/* The whole area, IOVA = its address (DPDK's vhost_vdpa_dma_map with IOVA as VA). */
static int vdpa_set_mem_table(struct fe_conn *c, const struct fe_mem *m)
{
	uint64_t va = (uint64_t)(uintptr_t)m->base, first = 0, last = UINT64_MAX;
	int ret;

	/* An old kernel without the query takes any IOVA. */
	ret = vdpa_get_iova_range(c, &first, &last);
	if (ret && ret != -ENOTTY)
		return ret;
	if (va < first || m->size == 0 || va + m->size - 1 > last) {
		log_err(c->lg,
			"%s: memory at 0x%llx+0x%zx lies outside the device's IOVA range "
			"0x%llx-0x%llx",
			c->path, (unsigned long long)va, m->size, (unsigned long long)first,
			(unsigned long long)last);
		return -ERANGE;
	}
	if (batching(c) && (ret = iotlb_write(c, VHOST_IOTLB_BATCH_BEGIN, 0, 0, 0)))
		return ret;
	ret = unmap_all(c);
	if (!ret)
		ret = iotlb_write(c, VHOST_IOTLB_UPDATE, va, m->size, va);
	if (!ret) {
		c->map_iova = va;
		c->map_size = m->size;
	}
	if (batching(c)) {
		int r = iotlb_write(c, VHOST_IOTLB_BATCH_END, 0, 0, 0);
		ret = ret ? ret : r;
	}
	return ret;
}

static int vdpa_get_vring_max_num(struct fe_conn *c, unsigned *num)
{
	uint16_t n;
	int ret = FE_VHOST_IOCTL(c->fd, VHOST_VDPA_GET_VRING_NUM, &n, c->path, c->lg);

	if (!ret)
		*num = n;
	return ret;
}

static int vdpa_get_config_size(struct fe_conn *c, uint32_t *size)
{
	return FE_VHOST_IOCTL(c->fd, VHOST_VDPA_GET_CONFIG_SIZE, size, c->path, c->lg);
}

static int vdpa_set_vring_num(struct fe_conn *c, unsigned idx, unsigned num)
{
	return fe_vhost_set_vring_num(c->fd, idx, num, c->path, c->lg);
}

static int vdpa_set_vring_base(struct fe_conn *c, unsigned idx, uint32_t base)
{
	return fe_vhost_set_vring_base(c->fd, idx, base, c->path, c->lg);
}

static int vdpa_get_vring_base(struct fe_conn *c, unsigned idx, uint32_t *base)
{
	return fe_vhost_get_vring_base(c->fd, idx, base, c->path, c->lg);
}

static int vdpa_set_vring_addr(struct fe_conn *c, const struct vhu_vring_addr *a)
{
	return fe_vhost_set_vring_addr(c->fd, a->index, a, c->path, c->lg);
}

static int vdpa_set_vring_kick(struct fe_conn *c, unsigned idx, int fd)
{
	return fe_vhost_set_vring_kick(c->fd, idx, fd, c->path, c->lg);
}

static int vdpa_set_vring_call(struct fe_conn *c, unsigned idx, int fd)
{
	return fe_vhost_set_vring_call(c->fd, idx, fd, c->path, c->lg);
}

static int vdpa_set_vring_enable(struct fe_conn *c, unsigned idx, bool enable)
{
	struct vhost_vring_state s = { .index = idx, .num = enable };
	return FE_VHOST_IOCTL(c->fd, VHOST_VDPA_SET_VRING_ENABLE, &s, c->path, c->lg);
}

/* VHOST_VDPA_GET_CONFIG / SET_CONFIG: len bytes at off, through a header the kernel reads. */
static int vdpa_config_io(struct fe_conn *c, bool set, uint32_t off, void *buf, uint32_t len)
{
	struct vhost_vdpa_config *cfg;
	int ret;

	if (len > VDPA_MAX_CONFIG)
		return -EINVAL;
	cfg = calloc(1, sizeof(*cfg) + len);
	if (!cfg)
		return -ENOMEM;
	cfg->off = off;
	cfg->len = len;
	if (set) {
		memcpy(cfg->buf, buf, len);
		ret = FE_VHOST_IOCTL(c->fd, VHOST_VDPA_SET_CONFIG, cfg, c->path, c->lg);
	} else {
		ret = FE_VHOST_IOCTL(c->fd, VHOST_VDPA_GET_CONFIG, cfg, c->path, c->lg);
		if (!ret)
			memcpy(buf, cfg->buf, len);
	}
	free(cfg);
	return ret;
}

static int vdpa_get_config(struct fe_conn *c, uint32_t off, void *buf, uint32_t len)
{
	return vdpa_config_io(c, false, off, buf, len);
}

static int vdpa_set_config(struct fe_conn *c, uint32_t off, const void *buf, uint32_t len)
{
	return vdpa_config_io(c, true, off, (void *)buf, len);
}

static int vdpa_set_config_call(struct fe_conn *c, int fd)
{
	return FE_VHOST_IOCTL(c->fd, VHOST_VDPA_SET_CONFIG_CALL, &fd, c->path, c->lg);
}

/* Status bits only ever add up until a reset ("The driver MUST NOT clear a device status
 * bit"): what is asked is added to what was set; 0 resets. */
static int vdpa_set_status(struct fe_conn *c, uint8_t s)
{
	if (s == 0) {
		c->suspended = false;
		return vdpa_status(c, 0);
	}
	return vdpa_status(c, c->status | s);
}

static int vdpa_get_status(struct fe_conn *c, uint8_t *s)
{
	return FE_VHOST_IOCTL(c->fd, VHOST_VDPA_GET_STATUS, s, c->path, c->lg);
}

static int vdpa_reset(struct fe_conn *c)
{
	return vdpa_set_status(c, 0);
}

/* VHOST_VDPA_SUSPEND (backend feature SUSPEND): the rings stop where they are, so that
 * GET_VRING_BASE reads a settled index (QEMU's vhost_vdpa_suspend). */
static int vdpa_suspend(struct fe_conn *c)
{
	int ret;

	if (!has_bit(c->backend_features, VHOST_BACKEND_F_SUSPEND) ||
	    !(c->status & VIRTIO_CONFIG_S_DRIVER_OK))
		return -ENOTSUP;
	if (c->suspended)
		return 0;
	ret = FE_VHOST_IOCTL(c->fd, VHOST_VDPA_SUSPEND, NULL, c->path, c->lg);
	if (!ret)
		c->suspended = true;
	return ret;
}

const struct fe_ops fe_vdpa_ops = {
	.name = "vhost-vdpa",
	.dma_va = true,
	.open = vdpa_open,
	.close = vdpa_close,
	.set_owner = vdpa_set_owner,
	.get_device_id = vdpa_get_device_id,
	.get_features = vdpa_get_features,
	.set_features = vdpa_set_features,
	.negotiate_backend_features = vdpa_negotiate_backend_features,
	.get_queue_num = vdpa_get_queue_num,
	.set_mem_table = vdpa_set_mem_table,
	.get_iova_range = vdpa_get_iova_range,
	.get_vring_max_num = vdpa_get_vring_max_num,
	.get_config_size = vdpa_get_config_size,
	.set_vring_num = vdpa_set_vring_num,
	.set_vring_base = vdpa_set_vring_base,
	.get_vring_base = vdpa_get_vring_base,
	.set_vring_addr = vdpa_set_vring_addr,
	.set_vring_kick = vdpa_set_vring_kick,
	.set_vring_call = vdpa_set_vring_call,
	.set_vring_enable = vdpa_set_vring_enable,
	.get_config = vdpa_get_config,
	.set_config = vdpa_set_config,
	.set_config_call = vdpa_set_config_call,
	.set_status = vdpa_set_status,
	.get_status = vdpa_get_status,
	.reset = vdpa_reset,
	.suspend = vdpa_suspend,
};
