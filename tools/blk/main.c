/* SPDX-License-Identifier: MIT */
/* vhu-blk: a vhost-user virtio-blk back-end on an image file (or a null device). */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/stat.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_ring.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/daemon.h"
#include "../common/opt.h"
#include "blk.h"

static struct blkdev g_dev;

void blk_log(void *opaque, int level, const char *msg)
{
	struct blkdev *d = opaque;

	if (level > (d && d->verbose ? VHU_LOG_DEBUG : VHU_LOG_INFO))
		return;
	fprintf(stderr, "vhu-blk: %s: %s\n", vhu_log_level_name(level), msg);
}

#define STR_(x) #x
#define STR(x)	STR_(x)

struct args {
	const char *path, *image, *vduse;
	int fd;
	uint64_t null_size;
	unsigned nqueues, poll_us;
	bool ro, client, writethrough, verbose, caps, tlb_per_buffer;
	const char *serial;
	struct listen_opts listen;
	struct daemon_user user;
};

static struct args a = {
	.fd = -1, .nqueues = 1, .poll_us = 50, .serial = "vhu-blk", .listen = LISTEN_OPTS_INIT
};

static const struct opt opts[] = {
	{ "socket-path", 's', "PATH", opt_str, &a.path,
	  "listen on PATH (or connect with --client)" },
	{ "fd", 'f', "N", opt_int, &a.fd, "use the inherited socket fd N (listening or connected)",
	  0, 1 << 30 },
	{ "vduse", 0, "NAME", opt_str, &a.vduse,
	  "serve the disk as the VDUSE device NAME (/dev/vduse/NAME;\n"
	  "then `vdpa dev add name NAME mgmtdev vduse`) instead of vhost-user" },
	{ "image", 'i', "FILE", opt_str, &a.image, "the disk: a raw image file or block device" },
	{ "blk-file", 0, "FILE", opt_str, &a.image,
	  "the same as --image (vhost-user.rst's name for it)" },
	{ "null", 'n', "SIZE", opt_size, &a.null_size,
	  "a device of SIZE bytes (K/M/G) that completes I/O without\n"
	  "touching storage (benchmarks)" },
	{ "read-only", 'r', NULL, opt_flag, &a.ro,
	  "offer VIRTIO_BLK_F_RO; writes fail with IOERR" },
	{ "queues", 'q', "N", opt_uint, &a.nqueues,
	  "queues (default 1, max " STR(BLK_MAX_QUEUES) "), each on its own thread", 1,
	  BLK_MAX_QUEUES },
	{ "client", 'c', NULL, opt_flag, &a.client,
	  "connect to PATH, reconnecting when the front-end goes away" },
	{ "socket-mode", 0, "MODE", opt_sock_mode, &a.listen.mode,
	  "octal mode of the listening socket (default 0600, or\n0660 with --socket-group)" },
	{ "socket-group", 0, "GROUP", opt_sock_group, &a.listen.gid,
	  "group of the listening socket (name or number)" },
	{ "user", 'u', "USER[:GROUP]", opt_user, &a.user,
	  "once the socket (or VDUSE device) and the image are open,\n"
	  "run as USER (and GROUP, default USER's) for good; the\n"
	  "listening socket is USER's" },
	{ "serial", 0, "ID", opt_str, &a.serial, "device id for GET_ID (default \"vhu-blk\")" },
	{ "writethrough", 0, NULL, opt_flag, &a.writethrough,
	  "start with the write cache off (CONFIG_WCE writeback 0)" },
	{ "poll-us", 0, "N", opt_uint, &a.poll_us,
	  "a queue thread polls its ring and completions for N us after\n"
	  "its last request before sleeping (default 50; 0: never)",
	  0, 1000000 },
	{ "iotlb-per-buffer", 0, NULL, opt_flag, &a.tlb_per_buffer,
	  "ACCESS_PLATFORM: ask the front-end again for every request's mappings (QEMU 7.2 "
	  "guests booted intel_iommu=on)" },
	{ "verbose", 'v', NULL, opt_flag, &a.verbose, "log every protocol message" },
	{ "print-capabilities", 0, NULL, opt_flag, &a.caps,
	  "print the back-end capabilities as JSON and exit" },
};

static const struct opt_cmd cmd = {
	.prog = "vhu-blk",
	.synopsis = "Usage: vhu-blk --socket-path PATH (--image FILE | --null SIZE) [OPTIONS]\n"
		    "       vhu-blk --vduse NAME (--image FILE | --null SIZE) [OPTIONS]",
	.summary = "A vhost-user virtio-blk back-end: I/O through io_uring, one thread per queue.",
	OPT_CMD_OPTS(opts),
	.epilog = "Signals: SIGUSR1 prints per-queue counters; SIGTERM/SIGINT exit cleanly; SIGHUP "
		  "re-reads\nthe image's size and tells the front-end when it changed (online "
		  "resize).\n",
};

/* ---- device callbacks ---- */

static int cb_get_config(void *dev, void *buf, uint32_t off, uint32_t len)
{
	struct blkdev *d = dev;
	struct virtio_blk_config c;

	memset(&c, 0, sizeof(c));
	c.capacity = __atomic_load_n(&d->capacity, __ATOMIC_RELAXED);
	c.size_max = BLK_SIZE_MAX;
	c.seg_max = BLK_SEG_MAX;
	c.blk_size = BLK_SECTOR;
	c.physical_block_exp = 3; /* 4 KiB physical blocks */
	c.min_io_size = 1;
	c.opt_io_size = 8;
	c.wce = __atomic_load_n(&d->wce, __ATOMIC_RELAXED);
	c.num_queues = (uint16_t)d->nqueues;
	c.max_discard_sectors = BLK_MAX_DZ_SECT;
	c.max_discard_seg = BLK_MAX_DZ_SEG;
	c.discard_sector_alignment = 8;
	c.max_write_zeroes_sectors = BLK_MAX_DZ_SECT;
	c.max_write_zeroes_seg = BLK_MAX_DZ_SEG;
	c.write_zeroes_may_unmap = 1;
	if (off > sizeof(c) || len > sizeof(c) - off)
		return -EINVAL;
	memcpy(buf, (uint8_t *)&c + off, len);
	return 0;
}

/*
 * SET_CONFIG: flags 0 (VHOST_SET_CONFIG_TYPE_FRONTEND) is the guest writing its config space,
 * where only writeback is writable, and only when CONFIG_WCE was negotiated ("If the
 * VIRTIO_BLK_F_CONFIG_WCE feature is negotiated, the cache mode can be read or set through the
 * writeback field"). Flags 1 (MIGRATION) restores the source's config on the destination:
 * "back-ends MUST NOT accept SET_CONFIG for read-only configuration space fields unless the
 * live migration bit is set". vhu-blk cannot change its geometry or limits, so a migration write
 * is accepted when every read-only byte it covers equals this device's own, and then sets
 * writeback if it covers it; a different disk is refused.
 */
static int cb_set_config(void *dev, const void *buf, uint32_t off, uint32_t len, uint32_t flags)
{
	const uint32_t wb = offsetof(struct virtio_blk_config, wce);
	const uint8_t *in = buf;
	struct blkdev *d = dev;
	struct virtio_blk_config c;

	if (flags == 0) {
		if (off != wb || len != 1 ||
		    !(vhu_backend_features(d->be) & (1ULL << VIRTIO_BLK_F_CONFIG_WCE)))
			return -EINVAL;
	} else if (flags == 1) {
		if (cb_get_config(d, &c, 0, sizeof(c)))
			return -EINVAL;
		if (off > sizeof(c) || len > sizeof(c) - off)
			return -EINVAL;
		for (uint32_t i = off; i < off + len; i++)
			if (i != wb && in[i - off] != ((const uint8_t *)&c)[i]) {
				blk_log(d, VHU_LOG_WARN,
					"SET_CONFIG (migration) of another disk's config: refused");
				return -EINVAL;
			}
		if (wb < off || wb >= off + len)
			return 0;
	} else {
		return -EINVAL;
	}
	/* "writing respectively 0 and 1 to the writeback field" */
	if (in[wb - off] > 1)
		return -EINVAL;
	__atomic_store_n(&d->wce, in[wb - off] != 0, __ATOMIC_RELAXED);
	return 0;
}

/*
 * The cache mode a negotiation gives (virtio-blk "Device Initialization" and "Device
 * Operation"): with CONFIG_WCE and FLUSH, writeback's initial value (1, or 0 with
 * --writethrough); "If VIRTIO_BLK_F_CONFIG_WCE is negotiated but VIRTIO_BLK_F_FLUSH is not, the
 * device MUST initialize writeback to 0"; FLUSH alone: writeback ("the driver SHOULD assume
 * presence of a writeback cache"), the driver flushes; neither: a write is stable once completed
 * ("neither VIRTIO_BLK_F_CONFIG_WCE nor VIRTIO_BLK_F_FLUSH feature were negotiated, but
 * VIRTIO_BLK_F_FLUSH was offered"), so writethrough. QEMU sends SET_FEATURES again each time
 * it restarts the device (a paused guest resumed): the same two bits keep the mode the driver
 * chose through SET_CONFIG; only a different pair, or the first negotiation after a reset,
 * decides it again.
 */
static void cb_features_set(void *dev, uint64_t f)
{
	const uint64_t wce = 1ULL << VIRTIO_BLK_F_CONFIG_WCE, flush = 1ULL << VIRTIO_BLK_F_FLUSH;
	struct blkdev *d = dev;
	int64_t bits = (int64_t)(f & (wce | flush));
	bool wb;

	if (bits == d->wce_feats)
		return;
	d->wce_feats = bits;
	if (f & wce)
		wb = (f & flush) ? d->wce_initial : false;
	else
		wb = f & flush;
	__atomic_store_n(&d->wce, wb, __ATOMIC_RELAXED);
	blk_log(d, VHU_LOG_INFO, wb ? "write cache: writeback" : "write cache: writethrough");
}

/* RESET_DEVICE: writeback back to its initial value, the next negotiation decides again. */
static void cb_reset(void *dev)
{
	struct blkdev *d = dev;

	__atomic_store_n(&d->wce, d->wce_initial, __ATOMIC_RELAXED);
	d->wce_feats = -1;
}

/* A queue without its I/O thread is refused: it stays stopped (the library logs it). */
static int cb_queue_start(void *dev, struct vhu_virtq *vq)
{
	return bqueue_start(dev, vq);
}

static void cb_queue_stop(void *dev, struct vhu_virtq *vq)
{
	bqueue_stop(dev, vq);
}

static void cb_queue_enable(void *dev, struct vhu_virtq *vq, bool enabled)
{
	bqueue_enable(dev, vq, enabled);
}

/* ---- image ---- */

/* The image's size in bytes, whole sectors: a regular file's length, a block device's size. */
static int image_size(int fd, uint64_t *size)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(fd, BLKGETSIZE64, size) < 0)
			return -errno;
	} else {
		*size = (uint64_t)st.st_size;
	}
	*size -= *size % BLK_SECTOR;
	return 0;
}

static int open_image(struct blkdev *d, const char *path)
{
	int flags = d->ro ? O_RDONLY : O_RDWR;
	int ret;

	d->fd_buffered = open(path, flags | O_CLOEXEC);
	if (d->fd_buffered < 0)
		return -errno;
	ret = image_size(d->fd_buffered, &d->size);
	if (ret)
		return ret;
	/* O_DIRECT where the file system has it; requests it cannot take go buffered. */
	d->fd = open(path, flags | O_CLOEXEC | O_DIRECT);
	d->dio_align = 4096;
	if (d->fd < 0) {
		d->fd = d->fd_buffered;
		return 0;
	}
#ifdef STATX_DIOALIGN
	struct statx sx;
	if (statx(d->fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) == 0 &&
	    (sx.stx_mask & STATX_DIOALIGN) && sx.stx_dio_mem_align && sx.stx_dio_offset_align)
		d->dio_align = sx.stx_dio_mem_align > sx.stx_dio_offset_align
				       ? sx.stx_dio_mem_align
				       : sx.stx_dio_offset_align;
#endif
	return 0;
}

/* ---- main loop: one front-end at a time ---- */

/* The loop's state: the device, its one port, the broken-ring eventfd's handler. */
struct blkloop {
	struct blkdev *d;
	struct dloop loop;
	struct dconn conn;
	struct dhandler broken;
};

/* A queue thread found its ring broken: drop the connection; with nothing left to serve
 * (a connected --fd), stop. */
static void on_broken(struct dhandler *h)
{
	struct blkloop *b = DAEMON_CONTAINER_OF(h, struct blkloop, broken);
	eventfd_t v;

	eventfd_read(b->d->broken_fd, &v);
	/* A stale note from a connection already gone finds no broken queue. */
	if (b->conn.fd < 0 || !bqueue_any_broken(b->d))
		return;
	blk_log(b->d, VHU_LOG_ERR, "dropping the connection: a ring is broken");
	dconn_drop(&b->conn);
	b->loop.quit |= dconn_done(&b->conn);
}

/* With no listener and no --client, the daemon ends when its connection closes. */
static void on_closed(struct dconn *c)
{
	struct blkloop *b = DAEMON_CONTAINER_OF(c, struct blkloop, conn);

	b->loop.quit |= dconn_done(c);
}

static void stats(void *dev)
{
	struct blkloop *b = dev;

	bqueue_print_stats(b->d);
}

/*
 * SIGHUP: online resize. The image's size is read again (a file grown or shrunk with
 * truncate, a block device resized); when the capacity changed, the config space has the new
 * one and the front-end is told (BACKEND_CONFIG_CHANGE_MSG), which makes QEMU re-read it with
 * GET_CONFIG and interrupt the guest. A front-end without CONFIG and BACKEND_REQ sees it at its
 * next GET_CONFIG. Until the SIGHUP the old size is in force: a write past the end of a file
 * that shrank would grow it again.
 */
static void hup(void *dev)
{
	struct blkloop *b = dev;
	struct blkdev *d = b->d;
	uint64_t old = __atomic_load_n(&d->capacity, __ATOMIC_RELAXED), size;
	char msg[200];
	int ret;

	if (d->null) {
		blk_log(d, VHU_LOG_INFO, "SIGHUP: a --null device keeps its size");
		return;
	}
	ret = image_size(d->fd_buffered, &size);
	if (ret) {
		snprintf(msg, sizeof(msg), "SIGHUP: %s: %s", a.image, strerror(-ret));
		blk_log(d, VHU_LOG_ERR, msg);
		return;
	}
	if (size / BLK_SECTOR == old) {
		snprintf(msg, sizeof(msg), "SIGHUP: size unchanged (%llu sectors)",
			 (unsigned long long)old);
		blk_log(d, VHU_LOG_INFO, msg);
		return;
	}
	d->size = size;
	__atomic_store_n(&d->capacity, size / BLK_SECTOR, __ATOMIC_RELAXED);
	if (d->vduse) {
		ret = vhu_vduse_config_changed(d->vduse);
		snprintf(msg, sizeof(msg), "SIGHUP: capacity %llu -> %llu sectors; %s",
			 (unsigned long long)old, (unsigned long long)(size / BLK_SECTOR),
			 ret == 0	  ? "driver told (config interrupt)"
			 : ret == -EINVAL ? "no driver yet: it reads the size at probe"
					  : "telling the driver failed");
		blk_log(d, ret && ret != -EINVAL ? VHU_LOG_ERR : VHU_LOG_INFO, msg);
		return;
	}
	ret = b->conn.fd >= 0 ? vhu_backend_config_changed(d->be) : -ENOTCONN;
	snprintf(msg, sizeof(msg), "SIGHUP: capacity %llu -> %llu sectors; %s",
		 (unsigned long long)old, (unsigned long long)(size / BLK_SECTOR),
		 ret == 0	       ? "front-end told (BACKEND_CONFIG_CHANGE_MSG)"
		 : ret == -ENOTCONN    ? "no front-end channel: it reads the size at GET_CONFIG"
		 : ret == -ENOPROTOOPT ? "CONFIG or BACKEND_REQ not negotiated: the front-end "
					 "reads it at its next GET_CONFIG"
				       : "telling the front-end failed");
	blk_log(d, ret && ret != -ENOTCONN && ret != -ENOPROTOOPT ? VHU_LOG_ERR : VHU_LOG_INFO,
		msg);
}

/* Before each wait: --client connects (again once a second while it cannot); acks owed on
 * the back-end channel are read (they are never waited for) at least every 100 ms. */
static int idle(void *dev)
{
	struct blkloop *b = dev;
	int t = dconn_try_connect(&b->conn, daemon_now_ms()) ? 1000 : -1;

	if (vhu_backend_channel_dispatch(b->d->be) > 0 && (t < 0 || t > 100))
		t = 100;
	return t;
}

/* Opens the port's socket (or takes --fd). 0, or 1 after saying why. */
static int open_port(struct blkdev *d, struct dconn *c)
{
	int ret = dconn_open(c, d->be, a.path, a.client, a.fd, &a.listen);

	if (ret == -EADDRINUSE)
		fprintf(stderr, "vhu-blk: another back-end is listening on %s\n", a.path);
	else if (ret && a.fd >= 0)
		fprintf(stderr, "vhu-blk: --fd %d: %s\n", a.fd, strerror(-ret));
	else if (ret)
		fprintf(stderr, "vhu-blk: %s: %s\n", a.path, strerror(-ret));
	else if (c->fd_once)
		fprintf(stderr, "vhu-blk: --fd %d is a connected socket: serving it once\n", a.fd);
	return ret ? 1 : 0;
}

static int serve(struct blkdev *d)
{
	static struct blkloop b;
	int ret;

	b.d = d;
	ret = dloop_init(&b.loop);
	if (ret) {
		fprintf(stderr, "vhu-blk: %s\n", strerror(-ret));
		return 1;
	}
	ret = dloop_add(&b.loop, d->broken_fd, &b.broken);
	if (ret) {
		fprintf(stderr, "vhu-blk: %s\n", strerror(-ret));
		dloop_fini(&b.loop);
		return 1;
	}
	b.broken.fn = on_broken;
	b.loop.dev = &b;
	b.loop.stats = stats;
	b.loop.idle = idle;
	b.loop.hup = hup;
	b.conn = (struct dconn){
		.loop = &b.loop, .log = blk_log, .log_opaque = d, .closed = on_closed
	};
	if (open_port(d, &b.conn)) {
		dloop_fini(&b.loop);
		return 1;
	}
	/* The socket and the image are open. */
	if (daemon_setup_done("vhu-blk", &a.user)) {
		dconn_close(&b.conn);
		dloop_fini(&b.loop);
		return 1;
	}
	fprintf(stderr, "vhu-blk: %s, %llu MiB%s, %u queue(s)%s\n",
		a.image ? a.image : "null device", (unsigned long long)(d->size >> 20),
		d->ro ? " read-only" : "", d->nqueues, d->fd != d->fd_buffered ? ", O_DIRECT" : "");
	ret = dloop_run(&b.loop);
	dconn_close(&b.conn);
	dloop_fini(&b.loop);
	return ret ? 1 : 0;
}

/* ---- --vduse: the kernel's requests instead of a front-end's ---- */

struct vdloop {
	struct blkdev *d;
	struct dloop loop;
	struct dhandler dev, broken;
	int status;
};

/* The device fd is readable: the kernel's requests. A device the kernel gave up on ends the
 * daemon (exit status 1). */
static void on_vduse(struct dhandler *h)
{
	struct vdloop *v = DAEMON_CONTAINER_OF(h, struct vdloop, dev);

	if (vhu_vduse_dispatch(v->d->vduse) < 0) {
		v->status = 1;
		v->loop.quit = true;
	}
}

/* A broken ring stays broken until the driver resets the device (a new DRIVER_OK starts the
 * queues again): said here, the kernel's driver sees its requests time out. */
static void on_vduse_broken(struct dhandler *h)
{
	struct vdloop *v = DAEMON_CONTAINER_OF(h, struct vdloop, broken);
	eventfd_t n;

	eventfd_read(v->d->broken_fd, &n);
	if (bqueue_any_broken(v->d))
		blk_log(v->d, VHU_LOG_ERR,
			"a ring is broken: it stays stopped until the driver "
			"resets the device");
}

static void vduse_stats(void *dev)
{
	struct vdloop *v = dev;

	bqueue_print_stats(v->d);
}

static void vduse_hup(void *dev)
{
	static struct blkloop b;
	struct vdloop *v = dev;

	b.d = v->d;
	b.conn.fd = -1;
	hup(&b);
}

static int serve_vduse(struct blkdev *d)
{
	static struct vdloop v;
	int ret;

	v.d = d;
	v.dev.fn = on_vduse;
	v.broken.fn = on_vduse_broken;
	ret = dloop_init(&v.loop);
	if (ret) {
		/* dloop_init closed what it had opened */
		fprintf(stderr, "vhu-blk: %s\n", strerror(-ret));
		return 1;
	}
	ret = dloop_add(&v.loop, vhu_vduse_fd(d->vduse), &v.dev);
	if (ret == 0)
		ret = dloop_add(&v.loop, d->broken_fd, &v.broken);
	if (ret) {
		fprintf(stderr, "vhu-blk: %s\n", strerror(-ret));
		dloop_fini(&v.loop);
		return 1;
	}
	/* The device is created, the image open. */
	if (daemon_setup_done("vhu-blk", &a.user)) {
		dloop_fini(&v.loop);
		return 1;
	}
	v.loop.dev = &v;
	v.loop.stats = vduse_stats;
	v.loop.hup = vduse_hup;
	fprintf(stderr, "vhu-blk: VDUSE device %s: %s, %llu MiB%s, %u queue(s)%s\n", a.vduse,
		a.image ? a.image : "null device", (unsigned long long)(d->size >> 20),
		d->ro ? " read-only" : "", d->nqueues, d->fd != d->fd_buffered ? ", O_DIRECT" : "");
	ret = dloop_run(&v.loop);
	dloop_fini(&v.loop);
	return ret || v.status ? 1 : 0;
}

/* ---- set-up ---- */

static uint64_t device_features(const struct blkdev *d)
{
	uint64_t f = (1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_RING_F_INDIRECT_DESC) |
		     (1ULL << VIRTIO_RING_F_EVENT_IDX) | (1ULL << VIRTIO_F_RING_PACKED) |
		     (1ULL << VIRTIO_BLK_F_SIZE_MAX) | (1ULL << VIRTIO_BLK_F_SEG_MAX) |
		     (1ULL << VIRTIO_BLK_F_BLK_SIZE) | (1ULL << VIRTIO_BLK_F_TOPOLOGY) |
		     (1ULL << VIRTIO_BLK_F_FLUSH) | (1ULL << VIRTIO_BLK_F_CONFIG_WCE) |
		     (1ULL << VIRTIO_BLK_F_MQ) | (1ULL << VIRTIO_F_ACCESS_PLATFORM);

	if (d->ro)
		f |= 1ULL << VIRTIO_BLK_F_RO;
	else
		f |= (1ULL << VIRTIO_BLK_F_DISCARD) | (1ULL << VIRTIO_BLK_F_WRITE_ZEROES);
	return f;
}

static int device_new(struct blkdev *d)
{
	uint64_t f = device_features(d);

	d->lim = (struct vhu_blk_limits){ .capacity = d->size / BLK_SECTOR,
					  .features = f,
					  .max_discard_sectors = BLK_MAX_DZ_SECT,
					  .max_write_zeroes_sectors = BLK_MAX_DZ_SECT,
					  .serial = d->serial };
	d->ops = (struct vhu_device_ops){
		.size = sizeof(d->ops),
		.features = f,
		.protocol_features = (1ULL << VHU_PROTO_F_CONFIG) |
				     (1ULL << VHU_PROTO_F_INFLIGHT_SHMFD) |
				     (1ULL << VHU_PROTO_F_BACKEND_REQ),
		.queue_num = d->nqueues,
		.get_config = cb_get_config,
		.set_config = cb_set_config,
		.queue_start = cb_queue_start,
		.queue_stop = cb_queue_stop,
		.queue_enable = cb_queue_enable,
		.features_set = cb_features_set,
		.reset = cb_reset,
		.log = blk_log,
		.log_opaque = d,
		.log_level = VHU_LOG_DEBUG,
		.flags = d->tlb_per_buffer ? VHU_DEVICE_F_IOTLB_PER_BUFFER : 0,
	};
	d->broken_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (d->broken_fd < 0)
		return -errno;
	if (a.vduse) {
		/* VDUSE keeps the config space read-only ("Now we only support read-only
		 * configuration space"): no CONFIG_WCE, the kernel refuses a blk device with it. */
		struct vhu_vduse_config vc = { .size = sizeof(vc),
					       .name = a.vduse,
					       .device_id = VIRTIO_ID_BLOCK,
					       .nvqs = d->nqueues,
					       .queue_size = 256,
					       .config_size = sizeof(struct virtio_blk_config) };
		d->ops.features &= ~(1ULL << VIRTIO_BLK_F_CONFIG_WCE);
		d->ops.protocol_features = 0;
		d->ops.set_config = NULL;
		d->lim.features = d->ops.features;
		return vhu_vduse_new(&d->vduse, &vc, &d->ops, d);
	}
	return vhu_backend_new(&d->be, &d->ops, d, d->nqueues);
}

/* The device the options describe, and its image. 0, or the exit status after saying why. */
static int device_from_args(struct blkdev *d)
{
	int ret;

	if (a.null_size && a.null_size < BLK_SECTOR) {
		fprintf(stderr, "vhu-blk: --null takes at least %u bytes\n", BLK_SECTOR);
		return 2;
	}
	if ((!a.path && a.fd < 0 && !a.vduse) || (!!a.path + (a.fd >= 0) + !!a.vduse > 1) ||
	    (!a.image == !a.null_size)) {
		fprintf(stderr,
			"vhu-blk: one of --socket-path or --fd (or --vduse), and one of --image "
			"(or --blk-file) or --null\n");
		opt_usage(&cmd, stderr);
		return 2;
	}
	d->nqueues = a.nqueues;
	d->ro = a.ro;
	d->wce = d->wce_initial = !a.writethrough;
	d->wce_feats = -1;
	d->poll_us = a.poll_us;
	d->verbose = a.verbose;
	d->tlb_per_buffer = a.tlb_per_buffer;
	snprintf(d->serial, sizeof(d->serial), "%s", a.serial);
	if (!a.image) {
		d->null = true;
		d->fd = d->fd_buffered = -1;
		d->size = a.null_size - a.null_size % BLK_SECTOR;
		d->capacity = d->size / BLK_SECTOR;
		return 0;
	}
	ret = open_image(d, a.image);
	if (ret) {
		fprintf(stderr, "vhu-blk: %s: %s\n", a.image, strerror(-ret));
		return 1;
	}
	d->capacity = d->size / BLK_SECTOR;
	return 0;
}

static void device_free(struct blkdev *d)
{
	vhu_backend_free(d->be);
	vhu_vduse_free(d->vduse);
	if (d->fd >= 0 && d->fd != d->fd_buffered)
		close(d->fd);
	if (d->fd_buffered >= 0)
		close(d->fd_buffered);
	if (d->broken_fd >= 0)
		close(d->broken_fd);
}

int main(int argc, char **argv)
{
	struct blkdev *d = &g_dev;
	int ret;

	setvbuf(stdout, NULL, _IOLBF, 0);
	/* A SIGHUP at any time, also before the loop runs, waits for it: it never kills. */
	daemon_signals_block();
	if (daemon_wants_capabilities(argc, argv)) {
		/* vhost-user-blk's one feature: --read-only (and --blk-file, an option). */
		printf("{\n  \"type\": \"block\",\n  \"features\": [\n    \"read-only\"\n  ]\n}\n");
		return 0;
	}
	ret = opt_parse(&cmd, argc, argv);
	if (ret)
		return ret > 0 ? 0 : 2;
	ret = daemon_user_prepare("vhu-blk", &a.user, &a.listen);
	if (ret)
		return ret;
	ret = device_from_args(d);
	if (ret)
		return ret;
	ret = device_new(d);
	if (ret) {
		fprintf(stderr, "vhu-blk: %s\n", strerror(-ret));
		device_free(d);
		return 1;
	}
	ret = d->vduse ? serve_vduse(d) : serve(d);
	device_free(d);
	return ret;
}
