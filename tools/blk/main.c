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

static int cb_set_config(void *dev, const void *buf, uint32_t off, uint32_t len, uint32_t flags)
{
	struct blkdev *d = dev;

	(void)flags;
	/* Only the writeback field is writable ("Device configuration layout", CONFIG_WCE). */
	if (off != offsetof(struct virtio_blk_config, wce) || len != 1)
		return -EINVAL;
	__atomic_store_n(&d->wce, *(const uint8_t *)buf != 0, __ATOMIC_RELAXED);
	return 0;
}

static void cb_queue_start(void *dev, struct vhu_virtq *vq)
{
	if (bqueue_start(dev, vq))
		blk_log(dev, VHU_LOG_ERR, "cannot start a queue thread");
}

static void cb_queue_stop(void *dev, struct vhu_virtq *vq)
{
	bqueue_stop(dev, vq);
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

static int serve(struct blkdev *d, int lfd, const char *path, bool client, int sfd)
{
	int ep = epoll_create1(EPOLL_CLOEXEC), conn = -1;
	struct epoll_event ev = { .events = EPOLLIN };

	if (ep < 0)
		return -errno;
	ev.data.u32 = 1;
	epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);
	if (lfd >= 0) {
		ev.data.u32 = 2;
		epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
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
			case 3:
				if (vhu_backend_dispatch(d->be) == 0)
					break;
				epoll_ctl(ep, EPOLL_CTL_DEL, conn, NULL);
				vhu_backend_detach(d->be);
				conn = -1;
				blk_log(d, VHU_LOG_INFO, "connection closed");
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
	d->wce = true;
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
			d->wce = false;
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
	d->lim = (struct blk_limits){ .sectors = d->size / BLK_SECTOR,
				      .ro = d->ro,
				      .discard = !d->ro,
				      .write_zeroes = !d->ro };
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
	d->ops = (struct vhu_device_ops){
		.features = f,
		.protocol_features =
			(1ULL << VHU_PROTO_F_CONFIG) | (1ULL << VHU_PROTO_F_INFLIGHT_SHMFD),
		.queue_num = d->nqueues,
		.get_config = cb_get_config,
		.set_config = cb_set_config,
		.queue_start = cb_queue_start,
		.queue_stop = cb_queue_stop,
		.log = blk_log,
		.log_opaque = d,
		.log_level = VHU_LOG_DEBUG,
	};
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
	int lfd = -1;
	if (fd >= 0) {
		int acc = 0;
		socklen_t sl = sizeof(acc);
		getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &sl);
		if (acc) {
			lfd = fd;
		} else {
			vhu_backend_attach(d->be, fd);
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
	if (fd >= 0 && lfd < 0) {
		/* A connected --fd: dispatch until it closes. */
		while (!quit && vhu_backend_dispatch(d->be) == 0)
			;
	} else {
		serve(d, lfd, path, client, sfd);
	}
	vhu_backend_free(d->be);
	if (lfd >= 0 && path) {
		close(lfd);
		unlink(path);
	}
	if (d->fd >= 0 && d->fd != d->fd_buffered)
		close(d->fd);
	if (d->fd_buffered >= 0)
		close(d->fd_buffered);
	close(sfd);
	return 0;
bad:
	usage(stderr);
	return 2;
}
