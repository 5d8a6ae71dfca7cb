/* SPDX-License-Identifier: MIT */
/*
 * Front-end core: the start sequence of QEMU's vhost_dev_start and DPDK's
 * virtio_user_start_device over a transport (fe_ops.h), shared memory and driver queues.
 */
#include <errno.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "drvq.h"
#include "fe_log.h"
#include "fe_mem.h"
#include "fe_ops.h"
#include "iotlb.h"
#include "msg.h"
#include "sock.h"
#include "util.h"

#define FE_MAX_VQS 64

struct vhu_frontend {
	const struct fe_ops *ops;
	enum vhu_transport transport;
	struct fe_conn *conn;
	struct logger lg;
	struct fe_mem mem;
	uint64_t dev_features, dev_protocol_features;
	uint64_t features, protocol_features;
	uint64_t queue_num, max_mem_slots;
	uint64_t backend_features; /* vhost backend features in use (kernel, vdpa) */
	uint32_t device_id;
	unsigned nvqs;
	bool started;
	bool poll;
	int timeout_ms;
	unsigned reconnects;
	/* INFLIGHT_SHMFD: the back-end's buffer, kept across its restarts (QEMU does the same) */
	int inflight_fd;
	struct vhu_inflight inflight;
	/* Dirty page logging: the log (allocated at the first log_start) and whether the
	 * device runs with it. */
	struct fe_log log;
	bool log_on;
	/* BACKEND_REQ: our end of the back-end channel (non-blocking) or -1, the request being
	 * assembled, and the application's config change callback. */
	int chan_fd;
	/* vhost-vdpa: the config change interrupt (an eventfd given with SET_CONFIG_CALL), served
	 * like the back-end channel; -1 without. */
	int config_fd;
	struct msg chan_rx;
	size_t chan_got;
	vhu_frontend_config_cb config_cb;
	void *config_cb_opaque;
	unsigned iommu; /* VHU_FRONTEND_IOMMU* or 0 */
	struct vhu_drvq vqs[FE_MAX_VQS];
};

/* Protocol features the front-end knows how to use. */
#define FE_PROTOCOL_FEATURES                                                                       \
	(bit64(VHU_PROTO_F_MQ) | bit64(VHU_PROTO_F_REPLY_ACK) | bit64(VHU_PROTO_F_CONFIG) |        \
	 bit64(VHU_PROTO_F_STATUS) | bit64(VHU_PROTO_F_CONFIGURE_MEM_SLOTS) |                      \
	 bit64(VHU_PROTO_F_INFLIGHT_SHMFD) | bit64(VHU_PROTO_F_LOG_SHMFD) |                        \
	 bit64(VHU_PROTO_F_BACKEND_REQ))

static void chan_close(struct vhu_frontend *fe)
{
	close_fd(&fe->chan_fd);
	msg_close_fds(&fe->chan_rx);
	fe->chan_got = 0;
}

/* vhost_setup_backend_channel: a socket pair, the back-end's end sent with
 * SET_BACKEND_REQ_FD, ours kept non-blocking (the back-end is not trusted to write whole
 * messages). */
static int chan_open(struct vhu_frontend *fe)
{
	int sv[2], ret;

	chan_close(fe);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	ret = fcntl(sv[0], F_SETFL, O_NONBLOCK) < 0 ? -errno : 0;
	if (!ret)
		ret = FE_OP(fe->ops, fe->conn, set_backend_req_fd, sv[1]);
	close(sv[1]);
	if (ret) {
		close(sv[0]);
		return ret;
	}
	fe->chan_fd = sv[0];
	return 0;
}

/* A verb the transport does not have counts as "nothing offered". */
static int nosup_zero(int ret)
{
	return ret == -ENOTSUP ? 0 : ret;
}

/* vhost_dev_init / virtio_user_dev_init: owner, then what the back-end offers. */
static int negotiate(struct vhu_frontend *fe)
{
	int ret;

	fe->device_id = 0;
	fe->dev_protocol_features = fe->protocol_features = fe->backend_features = 0;
	fe->queue_num = fe->max_mem_slots = 0;
	if ((ret = FE_OP(fe->ops, fe->conn, set_owner)) ||
	    (ret = nosup_zero(FE_OP(fe->ops, fe->conn, get_device_id, &fe->device_id))) ||
	    (ret = FE_OP(fe->ops, fe->conn, get_features, &fe->dev_features)) ||
	    (ret = nosup_zero(
		     FE_OP(fe->ops, fe->conn, negotiate_backend_features, &fe->backend_features))))
		return ret;
	if (has_bit(fe->dev_features, VHU_F_PROTOCOL_FEATURES)) {
		ret = FE_OP(fe->ops, fe->conn, get_protocol_features, &fe->dev_protocol_features);
		if (ret)
			return ret;
		fe->protocol_features = fe->dev_protocol_features & FE_PROTOCOL_FEATURES;
		ret = FE_OP(fe->ops, fe->conn, set_protocol_features, fe->protocol_features);
		if (ret)
			return ret;
	}
	/* vhost-user asks only with MQ and CONFIGURE_MEM_SLOTS negotiated (its own rule). */
	if ((ret = nosup_zero(FE_OP(fe->ops, fe->conn, get_queue_num, &fe->queue_num))) ||
	    (ret = nosup_zero(FE_OP(fe->ops, fe->conn, get_max_mem_slots, &fe->max_mem_slots))))
		return ret;
	chan_close(fe);
	if (has_bit(fe->protocol_features, VHU_PROTO_F_BACKEND_REQ) && (ret = chan_open(fe)))
		return ret;
	return 0;
}

/* The transport asked for, or the one the path names (DPDK's virtio_user_dev_init: a
 * character device is vhost-kernel, or vhost-vdpa when its name says so). */
static const struct fe_ops *pick_transport(enum vhu_transport *t, const char *path)
{
	struct stat st;

	if (*t == VHU_TRANSPORT_AUTO) {
		const char *base = strrchr(path, '/');
		base = base ? base + 1 : path;
		if (stat(path, &st) == 0 && S_ISCHR(st.st_mode))
			*t = strncmp(base, "vhost-vdpa", 10) == 0 ? VHU_TRANSPORT_VDPA
								  : VHU_TRANSPORT_KERNEL;
		else
			*t = VHU_TRANSPORT_USER;
	}
	switch (*t) {
	case VHU_TRANSPORT_USER:
		return &fe_user_ops;
	case VHU_TRANSPORT_KERNEL:
		return &fe_kernel_ops;
	case VHU_TRANSPORT_VDPA:
		return &fe_vdpa_ops;
	default:
		return NULL;
	}
}

/* The smallest struct vhu_frontend_opts a caller may pass: every member before iface (the
 * later ones default to zero when the caller's size does not cover them). */
#define OPTS_SIZE_MIN offsetof(struct vhu_frontend_opts, iface)
/* More than any release will grow to: a size beyond it is not a size. */
#define OPTS_SIZE_MAX 4096

/* The smallest struct vhu_frontend_start_opts: every member of the first release. */
#define START_OPTS_SIZE_MIN (offsetof(struct vhu_frontend_start_opts, poll) + sizeof(bool))

/* Copies a caller's options struct (its first member: its size as the caller compiled it)
 * into dst (this library's struct, have bytes), reading only the bytes the caller's struct
 * has: members past them stay zero (their defaults); members past this library's struct must
 * be zero (a newer caller asking for something this library cannot do), as the kernel's
 * copy_struct_from_user() rules for openat2() and clone3(). min: the smallest size a
 * release had. 0, -EINVAL or -E2BIG. */
static int sized_copy(void *dst, size_t have, const void *user, size_t min)
{
	size_t n;

	memset(dst, 0, have);
	if (!user)
		return -EINVAL;
	memcpy(&n, user, sizeof(n));
	if (n < min)
		return -EINVAL;
	if (n > OPTS_SIZE_MAX)
		return -E2BIG;
	if (n > have) {
		const unsigned char *tail = (const unsigned char *)user + have;
		for (size_t i = 0; i < n - have; i++)
			if (tail[i])
				return -E2BIG;
		n = have;
	}
	memcpy(dst, user, n);
	return 0;
}

VHU_EXPORT int vhu_frontend_open(struct vhu_frontend **out, const struct vhu_frontend_opts *opts)
{
	struct vhu_frontend_opts copy, *o = &copy;
	struct vhu_frontend *fe;
	int timeout;
	enum vhu_transport t;
	const struct fe_ops *ops;
	int ret;

	ret = sized_copy(o, sizeof(*o), opts, OPTS_SIZE_MIN);
	if (ret)
		return ret;
	timeout = o->timeout_ms > 0 ? o->timeout_ms : 5000;
	t = o->transport;
	if (!o->path || !(ops = pick_transport(&t, o->path)))
		return -EINVAL;
	fe = calloc(1, sizeof(*fe));
	if (!fe)
		return -ENOMEM;
	fe->ops = ops;
	fe->transport = t;
	fe->inflight_fd = -1;
	fe->log.fd = -1;
	fe->chan_fd = fe->config_fd = -1;
	msg_init(&fe->chan_rx, 0, 0, 0);
	fe->lg = (struct logger){ .fn = o->log, .opaque = o->log_opaque, .level = o->log_level };
	ret = fe_mem_init(&fe->mem, o->mem_size ? o->mem_size : 64u << 20, o->hugepage_dir);
	if (ret) {
		log_err(&fe->lg, "shared memory: %s", strerror(-ret));
		goto err_free;
	}
	fe->mem.dma_va = ops->dma_va;
	struct fe_open_args oa = { .path = o->path,
				   .server = o->server,
				   .timeout_ms = timeout,
				   .iface = o->iface,
				   .lg = &fe->lg };
	ret = ops->open(&fe->conn, &oa);
	if (ret)
		goto err_mem;
	log_debug(&fe->lg, "%s: %s", o->path, ops->name);
	fe->timeout_ms = timeout;
	ret = negotiate(fe);
	if (ret)
		goto err_conn;
	/* A config interrupt where the transport has one (vhost-vdpa). */
	fe->config_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (fe->config_fd < 0) {
		ret = -errno;
		goto err_conn;
	}
	ret = FE_OP(ops, fe->conn, set_config_call, fe->config_fd);
	if (ret == -ENOTSUP)
		close_fd(&fe->config_fd);
	else if (ret)
		goto err_conn;
	*out = fe;
	return 0;
err_conn:
	close_fd(&fe->config_fd);
	chan_close(fe);
	fe->ops->close(fe->conn);
err_mem:
	fe_mem_free(&fe->mem);
err_free:
	free(fe);
	return ret;
}

static void free_queues(struct vhu_frontend *fe)
{
	for (unsigned i = 0; i < fe->nvqs; i++) {
		close_fd(&fe->vqs[i].kick_fd);
		close_fd(&fe->vqs[i].call_fd);
		drvq_free(&fe->vqs[i]);
	}
	fe->nvqs = 0;
}

VHU_EXPORT void vhu_frontend_close(struct vhu_frontend *fe)
{
	if (!fe)
		return;
	if (fe->started)
		vhu_frontend_stop(fe);
	chan_close(fe);
	fe->ops->close(fe->conn);
	free_queues(fe);
	close_fd(&fe->inflight_fd);
	close_fd(&fe->config_fd);
	fe_log_free(&fe->log);
	fe_mem_free(&fe->mem);
	free(fe);
}

VHU_EXPORT uint64_t vhu_frontend_device_features(const struct vhu_frontend *fe)
{
	return fe->dev_features;
}

VHU_EXPORT enum vhu_transport vhu_frontend_transport(const struct vhu_frontend *fe)
{
	return fe->transport;
}

VHU_EXPORT uint32_t vhu_frontend_device_id(const struct vhu_frontend *fe)
{
	return fe->device_id;
}

VHU_EXPORT uint64_t vhu_frontend_device_protocol_features(const struct vhu_frontend *fe)
{
	return fe->dev_protocol_features;
}

VHU_EXPORT unsigned vhu_frontend_queue_num(const struct vhu_frontend *fe)
{
	return (unsigned)fe->queue_num;
}

VHU_EXPORT unsigned vhu_frontend_max_mem_slots(const struct vhu_frontend *fe)
{
	return (unsigned)fe->max_mem_slots;
}

VHU_EXPORT uint64_t vhu_frontend_features(const struct vhu_frontend *fe)
{
	return fe->features;
}

VHU_EXPORT uint64_t vhu_frontend_protocol_features(const struct vhu_frontend *fe)
{
	return fe->protocol_features;
}

VHU_EXPORT int vhu_frontend_get_config(struct vhu_frontend *fe, uint32_t off, void *buf,
				       uint32_t len)
{
	return FE_OP(fe->ops, fe->conn, get_config, off, buf, len);
}

VHU_EXPORT void *vhu_frontend_alloc(struct vhu_frontend *fe, size_t size, size_t align)
{
	return fe_mem_alloc(&fe->mem, size, align ? align : 64);
}

VHU_EXPORT struct vhu_drvq *vhu_frontend_queue(struct vhu_frontend *fe, unsigned index)
{
	return index < fe->nvqs ? &fe->vqs[index] : NULL;
}

/* SET_VRING_ADDR: the ring's addresses (our virtual addresses, as a VMM's), and with
 * logging on VHOST_VRING_F_LOG and the used ring's guest-physical address to log its writes
 * at (QEMU's vhost_virtqueue_set_addr; packed: the device area, as QEMU's used_phys). */
static int set_addr(struct vhu_frontend *fe, struct vhu_drvq *q)
{
	struct vhu_vring_addr a = {
		.index = q->index,
		.flags = fe->log_on ? 1u << VHU_VRING_F_LOG : 0,
		.desc = (uint64_t)(uintptr_t)q->desc_area + fe->mem.iova_off,
		.used = (uint64_t)(uintptr_t)q->device_area + fe->mem.iova_off,
		.avail = (uint64_t)(uintptr_t)q->driver_area + fe->mem.iova_off,
		.log = fe->log_on ? fe_mem_gpa(&fe->mem, q->device_area, 1) : 0,
	};

	return FE_OP(fe->ops, fe->conn, set_vring_addr, &a);
}

/* The features sent: the negotiated ones, with VHOST_F_LOG_ALL while logging. */
static uint64_t wire_features(const struct vhu_frontend *fe)
{
	return fe->features | (fe->log_on ? bit64(VHU_F_LOG_ALL) : 0);
}

/* --iommu: the vIOMMU maps the whole area ahead, so that the back-end misses only after
 * invalidations. Once per ring, after its addresses and before its kick: DPDK 22.11 keeps an
 * IOTLB per virtqueue and applies an update only to the rings that exist (a first message
 * for a ring creates it), so one sent before the rings is lost there and every page then
 * misses (docs/PROTOCOL.md); an IOTLB for the whole device just takes the same entry again. */
static int map_all(struct vhu_frontend *fe)
{
	struct vhu_iotlb_msg m = { .iova = (uintptr_t)fe->mem.base + fe->mem.iova_off,
				   .size = fe->mem.size,
				   .uaddr = (uintptr_t)fe->mem.base,
				   .perm = IOTLB_PERM_RW,
				   .type = IOTLB_UPDATE };

	return fe->iommu == VHU_FRONTEND_IOMMU ? FE_OP(fe->ops, fe->conn, iotlb_msg, &m) : 0;
}

/* One ring: size, base, addresses, call, kick (QEMU's vhost_virtqueue_start order). */
static int start_ring(struct vhu_frontend *fe, struct vhu_drvq *q, uint32_t base)
{
	int ret;

	if (q->kick_fd < 0)
		q->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (q->call_fd < 0 && !fe->poll)
		q->call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (q->kick_fd < 0 || (!fe->poll && q->call_fd < 0))
		return -errno;
	if ((ret = FE_OP(fe->ops, fe->conn, set_vring_num, q->index, q->num)) ||
	    (ret = FE_OP(fe->ops, fe->conn, set_vring_base, q->index, base)) ||
	    (ret = set_addr(fe, q)) || (ret = map_all(fe)) ||
	    (ret = FE_OP(fe->ops, fe->conn, set_vring_call, q->index, q->call_fd)) ||
	    (ret = FE_OP(fe->ops, fe->conn, set_vring_kick, q->index, q->kick_fd)))
		return ret;
	if (fe->poll)
		vhu_drvq_disable_cb(q);
	return 0;
}

/* Memory, rings, enable, DRIVER_OK: the part of the start sequence a reconnect repeats.
 * resume: each ring restarts where the previous back-end stopped completing buffers. */
static int setup_device(struct vhu_frontend *fe, bool resume)
{
	int ret;

	/* Logging on: the log first, so that no back-end ever sees VHOST_F_LOG_ALL without
	 * one (QEMU sends it after the rings at start; mid-run it sends it first, as here). */
	if (fe->log_on &&
	    (ret = FE_OP(fe->ops, fe->conn, set_log_base, fe->log.fd, fe->log.words * 8, 0)))
		return ret;
	ret = FE_OP(fe->ops, fe->conn, set_features, wire_features(fe));
	if (ret)
		return ret;
	/* vhost_user_blk_start: features first, then the inflight buffer (asked for once, given
	 * back after every reconnect), then memory and rings. */
	if (has_bit(fe->protocol_features, VHU_PROTO_F_INFLIGHT_SHMFD)) {
		if (fe->inflight_fd < 0) {
			ret = FE_OP(fe->ops, fe->conn, get_inflight_fd, fe->nvqs, fe->vqs[0].num,
				    &fe->inflight, &fe->inflight_fd);
			if (ret)
				return ret;
		}
		ret = FE_OP(fe->ops, fe->conn, set_inflight_fd, &fe->inflight, fe->inflight_fd);
		if (ret)
			return ret;
	}
	ret = FE_OP(fe->ops, fe->conn, set_mem_table, &fe->mem);
	if (ret)
		return ret;
	for (unsigned i = 0; i < fe->nvqs; i++) {
		struct vhu_drvq *q = &fe->vqs[i];
		if ((ret = start_ring(fe, q, resume ? drvq_resume_base(q) : drvq_base(q))))
			return ret;
	}
	/* Every ring enabled: vhost-user's rings start disabled with
	 * VHOST_USER_F_PROTOCOL_FEATURES ("Ring states"), vhost-kernel attaches the taps here,
	 * vhost-vdpa enables each ring. */
	for (unsigned i = 0; i < fe->nvqs; i++)
		if ((ret = FE_OP(fe->ops, fe->conn, set_vring_enable, i, true)))
			return ret;
	return nosup_zero(FE_OP(fe->ops, fe->conn, set_status,
				VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
					VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK));
}

VHU_EXPORT int vhu_frontend_start(struct vhu_frontend *fe,
				  const struct vhu_frontend_start_opts *user)
{
	struct vhu_frontend_start_opts copy, *o = &copy;
	unsigned qsz;
	bool packed;
	int ret;

	ret = sized_copy(o, sizeof(*o), user, START_OPTS_SIZE_MIN);
	if (ret)
		return ret;
	qsz = o->queue_size ? o->queue_size : 256;
	if (fe->started || o->nvqs == 0 || o->nvqs > FE_MAX_VQS)
		return -EINVAL;
	fe->features = (o->features & fe->dev_features) |
		       (fe->dev_features & bit64(VHU_F_PROTOCOL_FEATURES));
	if (fe->iommu) {
		/* PROTOCOL-NOTES: "IOMMU_PLATFORM requires BACKEND_REQ + REPLY_ACK". */
		if (!has_bit(fe->dev_features, VIRTIO_F_ACCESS_PLATFORM) ||
		    !has_bit(fe->protocol_features, VHU_PROTO_F_BACKEND_REQ) ||
		    !has_bit(fe->protocol_features, VHU_PROTO_F_REPLY_ACK)) {
			log_err(&fe->lg, "--iommu: the back-end does not offer ACCESS_PLATFORM "
					 "with BACKEND_REQ and REPLY_ACK");
			return -ENOTSUP;
		}
		fe->features |= bit64(VIRTIO_F_ACCESS_PLATFORM);
	}
	if (!has_bit(fe->features, VIRTIO_F_VERSION_1)) {
		log_err(&fe->lg, "the back-end does not offer VERSION_1");
		return -ENOTSUP;
	}
	unsigned max_num;
	if (FE_OP(fe->ops, fe->conn, get_vring_max_num, &max_num) == 0 && qsz > max_num) {
		log_err(&fe->lg, "queue size %u: the device takes at most %u", qsz, max_num);
		return -EINVAL;
	}
	packed = has_bit(fe->features, VIRTIO_F_RING_PACKED);
	for (unsigned i = 0; i < o->nvqs; i++) {
		fe->vqs[i].kick_fd = fe->vqs[i].call_fd = -1;
		ret = drvq_init(&fe->vqs[i], i, qsz, packed, &fe->mem, &fe->lg);
		if (ret) {
			fe->nvqs = i;
			goto err;
		}
		drvq_set_features(&fe->vqs[i], has_bit(fe->features, VIRTIO_RING_F_EVENT_IDX),
				  has_bit(fe->features, VIRTIO_F_IN_ORDER),
				  has_bit(fe->features, VIRTIO_RING_F_INDIRECT_DESC));
	}
	fe->nvqs = o->nvqs;
	fe->poll = o->poll;
	ret = setup_device(fe, false);
	if (ret)
		goto err;
	fe->started = true;
	return 0;
err:
	log_err(&fe->lg, "device start failed: %s", strerror(-ret));
	free_queues(fe);
	return ret;
}

VHU_EXPORT int vhu_frontend_stop(struct vhu_frontend *fe)
{
	int ret = 0, r;

	if (!fe->started)
		return 0;
	fe->started = false;
	/* Where the device can, it stops its rings first, so that the bases read are settled
	 * (vhost-vdpa's SUSPEND; QEMU's vhost_vdpa_dev_start(false)). */
	r = nosup_zero(FE_OP(fe->ops, fe->conn, suspend));
	if (r)
		ret = r;
	for (unsigned i = 0; i < fe->nvqs; i++) {
		uint32_t base;
		r = FE_OP(fe->ops, fe->conn, get_vring_base, i, &base);
		if (r && !ret)
			ret = r;
	}
	r = nosup_zero(FE_OP(fe->ops, fe->conn, set_status, 0));
	return ret ? ret : r;
}

VHU_EXPORT bool vhu_frontend_alive(struct vhu_frontend *fe)
{
	return fe->ops->alive ? fe->ops->alive(fe->conn) : true;
}

VHU_EXPORT int vhu_frontend_reconnect(struct vhu_frontend *fe, int timeout_ms)
{
	uint64_t had = fe->features;
	int ret;

	log_warn(&fe->lg, "back-end gone; %s",
		 fe->started ? "reconnecting" : "reconnecting (device not started)");
	ret = FE_OP(fe->ops, fe->conn, reconnect, timeout_ms > 0 ? timeout_ms : fe->timeout_ms);
	if (ret)
		return ret;
	ret = negotiate(fe);
	if (ret)
		return ret;
	if (!fe->started)
		return 0;
	if (had & ~(fe->dev_features | bit64(VHU_F_PROTOCOL_FEATURES))) {
		log_err(&fe->lg, "the back-end came back without features 0x%llx",
			(unsigned long long)(had & ~fe->dev_features));
		return -ENOTSUP;
	}
	ret = setup_device(fe, true);
	if (ret)
		return ret;
	/* Buffers made available while it was away: tell the new back-end about them. */
	for (unsigned i = 0; i < fe->nvqs; i++)
		eventfd_write(fe->vqs[i].kick_fd, 1);
	fe->reconnects++;
	log_info(&fe->lg, "back-end reconnected (%u so far)", fe->reconnects);
	return 0;
}

/* ---- dirty page logging ---- */

/* Logging on or off on a started device, as QEMU's vhost_migration_log: the log, features,
 * then every ring's addresses; the rings keep running. */
static int log_switch(struct vhu_frontend *fe)
{
	int ret;

	if (fe->log_on &&
	    (ret = FE_OP(fe->ops, fe->conn, set_log_base, fe->log.fd, fe->log.words * 8, 0)))
		return ret;
	ret = FE_OP(fe->ops, fe->conn, set_features, wire_features(fe));
	for (unsigned i = 0; i < fe->nvqs && !ret; i++)
		ret = set_addr(fe, &fe->vqs[i]);
	return ret;
}

VHU_EXPORT int vhu_frontend_log_start(struct vhu_frontend *fe)
{
	int ret;

	if (!has_bit(fe->protocol_features, VHU_PROTO_F_LOG_SHMFD) ||
	    !has_bit(fe->dev_features, VHU_F_LOG_ALL)) {
		log_err(&fe->lg, "the back-end cannot log dirty pages (LOG_SHMFD %s, LOG_ALL %s)",
			has_bit(fe->protocol_features, VHU_PROTO_F_LOG_SHMFD) ? "offered"
									      : "missing",
			has_bit(fe->dev_features, VHU_F_LOG_ALL) ? "offered" : "missing");
		return -ENOTSUP;
	}
	if (!fe->log.map) {
		/* "The log covers from address 0 to the maximum of guest regions." */
		ret = fe_log_init(&fe->log, FE_MEM_GPA_BASE + fe->mem.size);
		if (ret) {
			log_err(&fe->lg, "dirty log: %s", strerror(-ret));
			return ret;
		}
	}
	fe->log_on = true;
	if (!fe->started)
		return 0;
	ret = log_switch(fe);
	if (ret)
		log_err(&fe->lg, "starting dirty logging: %s", strerror(-ret));
	return ret;
}

VHU_EXPORT int vhu_frontend_log_stop(struct vhu_frontend *fe)
{
	int ret;

	if (!fe->log_on)
		return 0;
	fe->log_on = false;
	if (!fe->started)
		return 0;
	ret = log_switch(fe);
	if (ret)
		log_err(&fe->lg, "stopping dirty logging: %s", strerror(-ret));
	return ret;
}

VHU_EXPORT size_t vhu_frontend_log_read(struct vhu_frontend *fe, uint64_t *dst, size_t n)
{
	if (!dst)
		return fe->log.words;
	return fe_log_read(&fe->log, dst, n);
}

VHU_EXPORT uint64_t vhu_frontend_gpa(const struct vhu_frontend *fe, const void *p, size_t len)
{
	return fe_mem_gpa(&fe->mem, p, len);
}

/* ---- the back-end channel (BACKEND_REQ) ---- */

VHU_EXPORT void vhu_frontend_set_config_cb(struct vhu_frontend *fe, vhu_frontend_config_cb cb,
					   void *opaque)
{
	fe->config_cb = cb;
	fe->config_cb_opaque = opaque;
}

VHU_EXPORT int vhu_frontend_channel_fd(const struct vhu_frontend *fe)
{
	return fe->chan_fd >= 0 ? fe->chan_fd : fe->config_fd;
}

/* A miss: answered with an update of the page (4 KiB) around it, when our memory holds it. */
static uint64_t iotlb_miss(struct vhu_frontend *fe, const struct vhu_iotlb_msg *miss)
{
	uint64_t lo = (uintptr_t)fe->mem.base + fe->mem.iova_off, page = miss->iova & ~0xfffull;
	struct vhu_iotlb_msg m = { .perm = IOTLB_PERM_RW, .type = IOTLB_UPDATE };

	if (!fe->iommu || miss->type != IOTLB_MISS || miss->iova < lo ||
	    miss->iova - lo >= fe->mem.size) {
		log_warn(&fe->lg, "BACKEND_IOTLB_MSG (type %u, iova 0x%llx) refused", miss->type,
			 (unsigned long long)miss->iova);
		return 1;
	}
	if (page < lo)
		page = lo;
	m.iova = page;
	m.size = MIN(0x1000 - (page & 0xfff), fe->mem.size - (page - lo));
	m.uaddr = page - fe->mem.iova_off;
	log_debug(&fe->lg, "IOTLB miss at 0x%llx: mapped 0x%llx+0x%llx",
		  (unsigned long long)miss->iova, (unsigned long long)m.iova,
		  (unsigned long long)m.size);
	return FE_OP(fe->ops, fe->conn, iotlb_msg, &m) ? 1 : 0;
}

VHU_EXPORT int vhu_frontend_set_iommu(struct vhu_frontend *fe, unsigned mode)
{
	if (fe->started || mode > VHU_FRONTEND_IOMMU_STRICT)
		return -EINVAL;
	fe->iommu = mode;
	/* IOVAs distinct from every address of ours: 2^48 above them (user VAs are below). */
	fe->mem.iova_off = mode ? 1ull << 48 : 0;
	return 0;
}

/* An update (RW) or invalidation of the 4 KiB pages of [p, p + len), inside our memory. */
static int iotlb_pages(struct vhu_frontend *fe, const void *p, size_t len, uint8_t type)
{
	uint64_t iova = fe_mem_dma(&fe->mem, p, len), lo, first, last;

	if (!fe->iommu || !iova || !len)
		return -EINVAL;
	lo = (uintptr_t)fe->mem.base + fe->mem.iova_off;
	first = MAX(iova & ~0xfffull, lo);
	last = MIN((iova + len - 1) | 0xfff, lo + fe->mem.size - 1);
	struct vhu_iotlb_msg m = { .iova = first,
				   .size = last - first + 1,
				   .uaddr = type == IOTLB_UPDATE ? first - fe->mem.iova_off : 0,
				   .perm = type == IOTLB_UPDATE ? IOTLB_PERM_RW : 0,
				   .type = type };
	return FE_OP(fe->ops, fe->conn, iotlb_msg, &m);
}

VHU_EXPORT int vhu_frontend_iotlb_invalidate(struct vhu_frontend *fe, const void *p, size_t len)
{
	return iotlb_pages(fe, p, len, IOTLB_INVALIDATE);
}

VHU_EXPORT int vhu_frontend_iotlb_map(struct vhu_frontend *fe, const void *p, size_t len)
{
	return iotlb_pages(fe, p, len, IOTLB_UPDATE);
}

/* One well-formed back-end request in m: served or refused; returns the status its ack (or
 * status reply) carries, 0 for done. */
static uint64_t chan_serve(struct vhu_frontend *fe, struct msg *m)
{
	switch (m->hdr.request) {
	case VHU_BREQ_CONFIG_CHANGE_MSG:
		/* "host driver can send VHOST_USER_GET_CONFIG message to the back-end to get the
		 * latest content": the application's to do, in its callback. */
		log_info(&fe->lg, "the back-end's config space changed");
		if (fe->config_cb)
			fe->config_cb(fe, fe->config_cb_opaque);
		return 0;
	case VHU_BREQ_IOTLB_MSG:
		return iotlb_miss(fe, &m->p.iotlb);
	default:
		log_warn(&fe->lg, "%s refused: not supported by this front-end",
			 vhu_backend_request_name(m->hdr.request));
		return 1;
	}
}

/* Handles the complete request in fe->chan_rx. 0, or -errno after dropping the channel. */
static int chan_handle(struct vhu_frontend *fe)
{
	struct msg *m = &fe->chan_rx;
	uint64_t status = 1;
	char why[160];
	int ret = msg_check_backend(m, fe->features, fe->protocol_features, why, sizeof(why));

	if (ret && ret != -ENOPROTOOPT) {
		log_err(&fe->lg, "back-end channel: rejected message: %s; channel dropped", why);
		chan_close(fe);
		return ret == -ENOTSUP ? -EPROTO : ret;
	}
	if (ret)
		log_warn(&fe->lg, "back-end channel: refused: %s", why);
	else
		status = chan_serve(fe, m);
	/* Fds nothing took (none is taken yet: HOST_NOTIFIER and SHMEM_MAP are refused). */
	msg_close_fds(m);
	if (!msg_backend_wants_reply(m, fe->protocol_features))
		return 0;
	/* REPLY_ACK: "the front-end must respond with zero when operation is successfully
	 * completed, or non-zero otherwise"; SHARED_OBJECT_LOOKUP's reply without an fd is its
	 * failure form. */
	msg_init(m, m->hdr.request, VHU_FLAG_REPLY, sizeof(uint64_t));
	m->p.u64 = status;
	ret = sock_send_nowait(fe->chan_fd, m, NULL, 0);
	if (ret) {
		log_err(&fe->lg, "back-end channel: ack to %s: %s; channel dropped",
			vhu_backend_request_name(m->hdr.request),
			ret == -EAGAIN ? "the back-end does not read its acks" : strerror(-ret));
		chan_close(fe);
		return ret == -EAGAIN ? -ENOBUFS : ret;
	}
	return 0;
}

/* Requests served per call at most: a back-end that floods the channel does not hold the
 * application's thread. */
#define CHAN_BATCH 32

VHU_EXPORT int vhu_frontend_channel_dispatch(struct vhu_frontend *fe)
{
	eventfd_t cnt;

	if (fe->config_fd >= 0) {
		if (eventfd_read(fe->config_fd, &cnt) == 0) {
			log_info(&fe->lg, "the device's config space changed");
			if (fe->config_cb)
				fe->config_cb(fe, fe->config_cb_opaque);
		}
		return 0;
	}
	for (unsigned n = 0; n < CHAN_BATCH && fe->chan_fd >= 0; n++) {
		int ret = sock_recv_some(fe->chan_fd, &fe->chan_rx, &fe->chan_got, false);
		if (ret == 0)
			return 0;
		if (ret < 0) {
			if (ret == -ECONNRESET)
				log_warn(&fe->lg, "back-end channel closed by the back-end");
			else
				log_err(&fe->lg,
					"back-end channel: bad message: %s; channel dropped",
					strerror(-ret));
			chan_close(fe);
			return ret;
		}
		fe->chan_got = 0;
		ret = chan_handle(fe);
		if (ret)
			return ret;
	}
	return fe->chan_fd >= 0 ? 0 : -ENOTCONN;
}
