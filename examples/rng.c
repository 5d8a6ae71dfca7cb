/* SPDX-License-Identifier: MIT */
/*
 * A minimal vhost-user back-end on libvhu: virtio-rng (device ID 4), one queue whose buffers
 * it fills with random bytes. It serves one front-end and exits when that one hangs up.
 *
 *   cc -o vhu-example-rng rng.c $(pkg-config --cflags --libs vhu)
 *   ./vhu-example-rng --socket-path /tmp/rng.sock
 *   qemu-system-x86_64 ... -chardev socket,id=c,path=/tmp/rng.sock \
 *       -device vhost-user-rng-pci,chardev=c
 */
#include <errno.h>
#include <getopt.h>
#include <linux/virtio_config.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <vhu/vhu.h>

struct rng {
	struct vhu_backend *be;
	struct vhu_virtq *vq; /* the request queue while it is started, else NULL */
	unsigned long long bytes;
};

static void log_line(void *opaque, int level, const char *msg)
{
	(void)opaque;
	if (level <= VHU_LOG_INFO)
		fprintf(stderr, "rng: %s: %s\n", vhu_log_level_name(level), msg);
}

/* Called on the dispatch thread (this one): the queue may be served from now on. */
static int queue_start(void *dev, struct vhu_virtq *vq)
{
	((struct rng *)dev)->vq = vq;
	return 0;
}

static void queue_stop(void *dev, struct vhu_virtq *vq)
{
	(void)vq;
	((struct rng *)dev)->vq = NULL;
}

/* Buffers served per turn: a front-end that refills its ring as fast as it is served must not
 * keep the socket (its next request) waiting forever. */
#define RNG_TURN 64

/* Fills up to RNG_TURN available buffers: the writable part gets random bytes. Returns true when
 * it stopped at RNG_TURN, with more perhaps waiting (their kick already drained). */
static bool serve(struct rng *r)
{
	struct vhu_elem e;
	unsigned served = 0;
	int ret;

	vhu_virtq_kick_drain(r->vq);
	while (served < RNG_TURN && (ret = vhu_virtq_pop(r->vq, &e)) != 0) {
		served++;
		uint32_t written = 0;
		if (ret < 0 && ret != -ENOBUFS)
			break; /* broken ring: the front-end wrote nonsense */
		for (unsigned i = e.out_num; ret > 0 && i < e.out_num + e.in_num; i++) {
			ssize_t n = getrandom(e.iov[i].iov_base, e.iov[i].iov_len, GRND_NONBLOCK);
			if (n <= 0)
				break;
			written += (uint32_t)n;
		}
		vhu_virtq_push(r->vq, &e, written);
		r->bytes += written;
	}
	vhu_virtq_flush(r->vq);
	return served == RNG_TURN;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = { { "socket-path", required_argument, NULL, 's' },
					      { 0 } };
	static const struct vhu_device_ops ops = {
		.size = sizeof(struct vhu_device_ops),
		.features = 1ULL << VIRTIO_F_VERSION_1,
		.queue_start = queue_start,
		.queue_stop = queue_stop,
		.log = log_line,
		.log_level = VHU_LOG_INFO,
	};
	struct rng r = { 0 };
	const char *path = NULL;
	int c, lfd = -1, fd = -1, ret;

	while ((c = getopt_long(argc, argv, "s:", opts, NULL)) != -1)
		if (c == 's')
			path = optarg;
	if (!path) {
		fprintf(stderr, "usage: %s --socket-path PATH\n", argv[0]);
		return 2;
	}
	ret = vhu_backend_new(&r.be, &ops, &r, 1);
	if (ret == 0 && (lfd = ret = vhu_listen(path)) >= 0)
		ret = fd = vhu_accept(lfd);
	if (ret >= 0)
		ret = vhu_backend_attach(r.be, fd);
	if (ret < 0) {
		fprintf(stderr, "rng: %s: %s\n", path, strerror(-ret));
		return 1;
	}
	fprintf(stderr, "rng: front-end connected (libvhu %s)\n", vhu_version());
	for (bool more = false;;) {
		struct pollfd p[2] = { { .fd = vhu_backend_fd(r.be), .events = POLLIN },
				       { .fd = r.vq ? vhu_virtq_kick_fd(r.vq) : -1,
					 .events = POLLIN } };
		/* Without a kick fd the ring is polled every millisecond; with a turn left
		 * over, the socket is only looked at before the next one. */
		if (poll(p, 2, more ? 0 : r.vq && p[1].fd < 0 ? 1 : -1) < 0 && errno != EINTR)
			break;
		if (p[0].revents && vhu_backend_dispatch(r.be) < 0)
			break; /* hung up, or broke the protocol */
		more = r.vq && (p[1].revents || p[1].fd < 0 || more) && serve(&r);
	}
	fprintf(stderr, "rng: front-end gone after %llu random bytes\n", r.bytes);
	vhu_backend_free(r.be);
	close(lfd);
	unlink(path);
	return 0;
}
