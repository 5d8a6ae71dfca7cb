/* SPDX-License-Identifier: MIT */
/*
 * A minimal vhost-user front-end on libvhu: connects to a virtio-rng back-end (such as
 * rng.c), starts its queue, asks for random bytes four times and prints how many came.
 * Exits 0 when every request was answered with bytes that are not all zero.
 *
 *   cc -o vhu-example-rng-fe rng-fe.c $(pkg-config --cflags --libs vhu)
 *   ./vhu-example-rng-fe --socket-path /tmp/rng.sock
 */
#include <errno.h>
#include <getopt.h>
#include <linux/virtio_config.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include <vhu/vhu.h>

#define LEN 256

int main(int argc, char **argv)
{
	static const struct option opts[] = { { "socket-path", required_argument, NULL, 's' },
					      { 0 } };
	struct vhu_frontend_opts o = { .size = VHU_FRONTEND_OPTS_SIZE,
				       .timeout_ms = 5000,
				       .mem_size = 1 << 20 };
	struct vhu_frontend_start_opts so = { .size = VHU_FRONTEND_START_OPTS_SIZE,
					      .features = 1ULL << VIRTIO_F_VERSION_1,
					      .nvqs = 1,
					      .queue_size = 64 };
	struct vhu_frontend *fe;
	int c, ret, ok = 0;

	while ((c = getopt_long(argc, argv, "s:", opts, NULL)) != -1)
		if (c == 's')
			o.path = optarg;
	if (!o.path) {
		fprintf(stderr, "usage: %s --socket-path PATH\n", argv[0]);
		return 2;
	}
	ret = vhu_frontend_open(&fe, &o);
	if (ret) {
		fprintf(stderr, "rng-fe: %s: %s\n", o.path, strerror(-ret));
		return 1;
	}
	printf("back-end offers features 0x%llx, protocol features 0x%llx\n",
	       (unsigned long long)vhu_frontend_device_features(fe),
	       (unsigned long long)vhu_frontend_device_protocol_features(fe));
	ret = vhu_frontend_start(fe, &so);
	uint8_t *buf = ret ? NULL : vhu_frontend_alloc(fe, LEN, 64);
	struct vhu_drvq *q = vhu_frontend_queue(fe, 0);
	for (int round = 0; buf && q && round < 4; round++) {
		struct iovec iov = { buf, LEN };
		uint32_t len = 0;
		memset(buf, 0, LEN);
		/* One device-writable buffer; the token comes back with it. */
		if (vhu_drvq_add(q, &iov, 0, 1, buf) < 0)
			break;
		vhu_drvq_kick(q);
		/* Wait for the used buffer: the call eventfd says when (up to 5 s). */
		void *token = NULL;
		for (int t = 0; t < 500 && !(token = vhu_drvq_get(q, &len)); t++) {
			struct pollfd p = { .fd = vhu_drvq_call_fd(q), .events = POLLIN };
			uint64_t v;
			if (poll(&p, 1, 10) > 0 && read(p.fd, &v, sizeof(v)) < 0)
				break;
		}
		unsigned nonzero = 0;
		for (uint32_t i = 0; token == buf && i < len && i < LEN; i++)
			nonzero += buf[i] != 0;
		printf("request %d: %u random bytes (%u not zero)\n", round, len, nonzero);
		ok += token == buf && len == LEN && nonzero > 0;
	}
	if (ret)
		fprintf(stderr, "rng-fe: start: %s\n", strerror(-ret));
	vhu_frontend_close(fe);
	printf("%s\n", ok == 4 ? "ok" : "FAILED");
	return ok == 4 ? 0 : 1;
}
