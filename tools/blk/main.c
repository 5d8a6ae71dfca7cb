/* SPDX-License-Identifier: MIT */
/* vhu-blk: a vhost-user virtio-blk back-end on an image file (or a null device). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/fs.h>
#include <linux/stat.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../common/listen.h"
#include "../common/size.h"
#include "blk.h"

static struct blkdev g_dev;

void blk_log(void *opaque, int level, const char *msg)
{
	struct blkdev *d = opaque;

	if (level > (d && d->verbose ? VHU_LOG_DEBUG : VHU_LOG_INFO))
		return;
	fprintf(stderr, "vhu-blk: %s: %s\n", vhu_log_level_name(level), msg);
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: vhu-blk --socket-path PATH (--image FILE | --null SIZE) [OPTIONS]\n"
		"A vhost-user virtio-blk back-end: I/O through io_uring, one thread per queue.\n"
		"\n"
		"  -s, --socket-path PATH   listen on PATH (or connect with --client)\n"
		"  -f, --fd N               use the inherited socket fd N (listening or "
		"connected)\n"
		"  -i, --image FILE         the disk: a raw image file or block device\n"
		"  -n, --null SIZE          a device of SIZE bytes (K/M/G) that completes I/O "
		"without\n"
		"                           touching storage (benchmarks)\n"
		"  -r, --read-only          offer VIRTIO_BLK_F_RO; writes fail with IOERR\n"
		"  -q, --queues N           queues (default 1, max %d), each on its own thread\n"
		"  -c, --client             connect to PATH, reconnecting when the front-end goes "
		"away\n"
		"      --socket-mode MODE   octal mode of the listening socket (default 0600, or\n"
		"                           0660 with --socket-group)\n"
		"      --socket-group GROUP group of the listening socket (name or number)\n"
		"      --serial ID          device id for GET_ID (default \"vhu-blk\")\n"
		"      --writethrough       start with the write cache off (CONFIG_WCE writeback "
		"0)\n"
		"  -v, --verbose            log every protocol message\n"
		"      --print-capabilities print the back-end capabilities as JSON and exit\n"
		"  -h, --help               this text\n"
		"\n"
		"Signals: SIGUSR1 prints per-queue counters; SIGTERM/SIGINT exit cleanly.\n",
		BLK_MAX_QUEUES);
}

/* ---- device callbacks ---- */

static int cb_get_config(void *dev, void *buf, uint32_t off, uint32_t len)
{
	struct blkdev *d = dev;
	struct virtio_blk_config c;

	memset(&c, 0, sizeof(c));
	c.capacity = d->size / BLK_SECTOR;
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

static int open_image(struct blkdev *d, const char *path)
{
	int flags = d->ro ? O_RDONLY : O_RDWR;
	struct stat st;

	d->fd_buffered = open(path, flags | O_CLOEXEC);
	if (d->fd_buffered < 0)
		return -errno;
	if (fstat(d->fd_buffered, &st) < 0)
		return -errno;
	if (S_ISBLK(st.st_mode)) {
		uint64_t sz;
		if (ioctl(d->fd_buffered, BLKGETSIZE64, &sz) < 0)
			return -errno;
		d->size = sz;
	} else {
		d->size = (uint64_t)st.st_size;
	}
	d->size -= d->size % BLK_SECTOR;
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

static volatile int quit;

/* conn: an attached connection to serve from the start (--fd with a connected socket); with
 * no listener and no --client, the daemon ends when it closes. */
static int serve(struct blkdev *d, int lfd, const char *path, bool client, int sfd, int conn)
{
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN };

	if (ep < 0)
		return -errno;
	ev.data.u32 = 1;
	epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);
	if (lfd >= 0) {
		ev.data.u32 = 2;
		epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	}
	if (d->broken_fd >= 0) {
		ev.data.u32 = 4;
		epoll_ctl(ep, EPOLL_CTL_ADD, d->broken_fd, &ev);
	}
	if (conn >= 0) {
		ev.data.u32 = 3;
		epoll_ctl(ep, EPOLL_CTL_ADD, conn, &ev);
	}
	while (!quit) {
		if (client && conn < 0) {
			int fd = vhu_connect(path, 0);
			if (fd >= 0) {
				conn = fd;
				vhu_backend_attach(d->be, fd);
				ev.data.u32 = 3;
				epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
				blk_log(d, VHU_LOG_INFO, "connected to front-end");
			}
		}
		struct epoll_event evs[8];
		int n = epoll_wait(ep, evs, 8, client && conn < 0 ? 1000 : -1);
		for (int i = 0; i < n; i++) {
			switch (evs[i].data.u32) {
			case 1: {
				struct signalfd_siginfo si;
				while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
					if (si.ssi_signo == SIGUSR1)
						bqueue_print_stats(d);
					else
						quit = 1;
				}
				break;
			}
			case 2: {
				int fd = vhu_accept(lfd);
				if (fd < 0)
					break;
				if (conn >= 0) {
					blk_log(d, VHU_LOG_WARN, "second front-end refused");
					close(fd);
					break;
				}
				conn = fd;
				vhu_backend_attach(d->be, fd);
				ev.data.u32 = 3;
				epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
				blk_log(d, VHU_LOG_INFO, "front-end connected");
				break;
			}
			case 4: {
				eventfd_t v;
				eventfd_read(d->broken_fd, &v);
				/* A stale note from a connection already gone finds no broken
				 * queue. */
				if (conn < 0 || !bqueue_any_broken(d))
					break;
				blk_log(d, VHU_LOG_ERR,
					"dropping the connection: a ring is broken");
				epoll_ctl(ep, EPOLL_CTL_DEL, conn, NULL);
				vhu_backend_detach(d->be);
				conn = -1;
				if (lfd < 0 && !client)
					quit = 1; /* nothing to wait for */
				break;
			}
			case 3:
				if (conn < 0 || vhu_backend_dispatch(d->be) == 0)
					break;
				epoll_ctl(ep, EPOLL_CTL_DEL, conn, NULL);
				vhu_backend_detach(d->be);
				conn = -1;
				blk_log(d, VHU_LOG_INFO, "connection closed");
				if (lfd < 0 && !client)
					quit = 1; /* nothing to wait for */
				break;
			}
		}
	}
	if (conn >= 0)
		vhu_backend_detach(d->be);
	close(ep);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket-path", required_argument, NULL, 's' },
		{ "fd", required_argument, NULL, 'f' },
		{ "image", required_argument, NULL, 'i' },
		{ "null", required_argument, NULL, 'n' },
		{ "read-only", no_argument, NULL, 'r' },
		{ "queues", required_argument, NULL, 'q' },
		{ "client", no_argument, NULL, 'c' },
		{ "socket-mode", required_argument, NULL, 'M' },
		{ "socket-group", required_argument, NULL, 'G' },
		{ "serial", required_argument, NULL, 'S' },
		{ "writethrough", no_argument, NULL, 'W' },
		{ "poll-us", required_argument, NULL, 'p' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "print-capabilities", no_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct blkdev *d = &g_dev;
	const char *path = NULL, *image = NULL;
	uint64_t null_size = 0;
	struct listen_opts lo = LISTEN_OPTS_INIT;
	bool client = false;
	int fd = -1, c, ret;

	setvbuf(stdout, NULL, _IOLBF, 0);
	d->nqueues = 1;
	d->wce = d->wce_initial = true;
	d->wce_feats = -1;
	d->poll_us = 50;
	snprintf(d->serial, sizeof(d->serial), "vhu-blk");
	while ((c = getopt_long(argc, argv, "s:f:i:n:rq:cvh", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			path = optarg;
			break;
		case 'f':
			fd = atoi(optarg);
			break;
		case 'i':
			image = optarg;
			break;
		case 'n':
			if (!parse_size(optarg, &null_size) || null_size < BLK_SECTOR)
				goto bad;
			break;
		case 'r':
			d->ro = true;
			break;
		case 'q':
			d->nqueues = (unsigned)atoi(optarg);
			if (d->nqueues < 1 || d->nqueues > BLK_MAX_QUEUES)
				goto bad;
			break;
		case 'c':
			client = true;
			break;
		case 'M':
			if (!parse_socket_mode(optarg, &lo.mode))
				goto bad;
			break;
		case 'G':
			if (!parse_socket_group(optarg, &lo.gid)) {
				fprintf(stderr, "vhu-blk: unknown group %s\n", optarg);
				return 2;
			}
			break;
		case 'S':
			snprintf(d->serial, sizeof(d->serial), "%s", optarg);
			break;
		case 'W':
			d->wce = d->wce_initial = false;
			break;
		case 'v':
			d->verbose = 1;
			break;
		case 'P':
			printf("{\n  \"type\": \"block\",\n  \"features\": [\n    \"read-only\"\n  "
			       "]\n}\n");
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			goto bad;
		}
	}
	if (optind < argc || (!path && fd < 0) || (path && fd >= 0) || (!image == !null_size))
		goto bad;
	if (image) {
		ret = open_image(d, image);
		if (ret) {
			fprintf(stderr, "vhu-blk: %s: %s\n", image, strerror(-ret));
			return 1;
		}
	} else {
		d->null = true;
		d->fd = d->fd_buffered = -1;
		d->size = null_size - null_size % BLK_SECTOR;
	}
	uint64_t f = (1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_RING_F_INDIRECT_DESC) |
		     (1ULL << VIRTIO_RING_F_EVENT_IDX) | (1ULL << VIRTIO_F_RING_PACKED) |
		     (1ULL << VIRTIO_BLK_F_SIZE_MAX) | (1ULL << VIRTIO_BLK_F_SEG_MAX) |
		     (1ULL << VIRTIO_BLK_F_BLK_SIZE) | (1ULL << VIRTIO_BLK_F_TOPOLOGY) |
		     (1ULL << VIRTIO_BLK_F_FLUSH) | (1ULL << VIRTIO_BLK_F_CONFIG_WCE) |
		     (1ULL << VIRTIO_BLK_F_MQ);
	if (d->ro)
		f |= 1ULL << VIRTIO_BLK_F_RO;
	else
		f |= (1ULL << VIRTIO_BLK_F_DISCARD) | (1ULL << VIRTIO_BLK_F_WRITE_ZEROES);
	d->lim = (struct vhu_blk_limits){ .capacity = d->size / BLK_SECTOR,
					  .features = f,
					  .max_discard_sectors = BLK_MAX_DZ_SECT,
					  .max_write_zeroes_sectors = BLK_MAX_DZ_SECT,
					  .serial = d->serial };
	d->ops = (struct vhu_device_ops){
		.size = sizeof(d->ops),
		.features = f,
		.protocol_features =
			(1ULL << VHU_PROTO_F_CONFIG) | (1ULL << VHU_PROTO_F_INFLIGHT_SHMFD),
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
	};
	/* A front-end that shrinks its memory or inflight file loses its connection; the
	 * process lives on. */
	/* A front-end that makes its call eventfd blocking and fills it loses its connection;
	 * the thread that would write it lives on. */
	ret = vhu_eventfd_guard_install(SIGRTMIN);
	if (ret)
		fprintf(stderr,
			"vhu-blk: no eventfd guard (%s): a front-end can block the notifying "
			"thread\n",
			strerror(-ret));
	ret = vhu_sigbus_guard_install();
	if (ret)
		fprintf(stderr,
			"vhu-blk: no SIGBUS guard (%s): a front-end that shrinks its memory "
			"can stop the process\n",
			strerror(-ret));
	d->broken_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ret = vhu_backend_new(&d->be, &d->ops, d, d->nqueues);
	if (ret) {
		fprintf(stderr, "vhu-blk: %s\n", strerror(-ret));
		return 1;
	}
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGUSR1);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	int sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	int lfd = -1, conn = -1;
	if (fd >= 0) {
		int acc = 0;
		socklen_t sl = sizeof(acc);
		getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &sl);
		if (acc) {
			lfd = fd;
		} else {
			ret = vhu_backend_attach(d->be, fd);
			if (ret) {
				fprintf(stderr, "vhu-blk: --fd %d: %s\n", fd, strerror(-ret));
				return 1;
			}
			conn = fd;
			fprintf(stderr, "vhu-blk: --fd %d is a connected socket: serving it once\n",
				fd);
		}
	} else if (!client) {
		lfd = listen_path(path, &lo);
		if (lfd == -EADDRINUSE) {
			fprintf(stderr, "vhu-blk: another back-end is listening on %s\n", path);
			return 1;
		}
		if (lfd < 0) {
			fprintf(stderr, "vhu-blk: %s: %s\n", path, strerror(-lfd));
			return 1;
		}
	}
	fprintf(stderr, "vhu-blk: %s, %llu MiB%s, %u queue(s)%s\n", image ? image : "null device",
		(unsigned long long)(d->size >> 20), d->ro ? " read-only" : "", d->nqueues,
		d->fd != d->fd_buffered ? ", O_DIRECT" : "");
	serve(d, lfd, path, client, sfd, conn);
	vhu_backend_free(d->be);
	if (lfd >= 0 && path) {
		close(lfd);
		unlink(path);
	}
	if (d->fd >= 0 && d->fd != d->fd_buffered)
		close(d->fd);
	if (d->fd_buffered >= 0)
		close(d->fd_buffered);
	if (d->broken_fd >= 0)
		close(d->broken_fd);
	close(sfd);
	return 0;
bad:
	usage(stderr);
	return 2;
}
