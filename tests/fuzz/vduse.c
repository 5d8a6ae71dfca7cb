/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target on the library's VDUSE request handling (src/vduse.c, vhu_vduse_dispatch):
 * the input is cut into messages that a socketpair, standing for /dev/vduse/NAME, delivers one
 * at a time: each starts with a length byte (0: a whole struct vduse_dev_request, else a short
 * message of that many bytes, which must end the dispatch with -EPROTO), then the message's bytes
 * (zero-filled when the input runs out). Every whole request must get exactly one reply carrying
 * its request id. The device has 1 to 4 queues (first input byte); the ioctls the handler makes
 * on DRIVER_OK fail on a socket, so those paths are taken up to the failure.
 */
#include <errno.h>
#include <linux/vduse.h>
#include <linux/virtio_config.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../src/vduse_int.h"

static void quiet(void *opaque, int level, const char *msg)
{
	(void)opaque;
	(void)level;
	(void)msg;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vhu_device_ops ops = { .size = sizeof(ops),
				      .features = 1ULL << VIRTIO_F_VERSION_1,
				      .log = quiet };
	struct vhu_vduse_config cfg = { .size = sizeof(cfg), .name = "fz", .device_id = 2 };
	struct vhu_vduse *vd;
	int sv[2];

	if (size < 1)
		return 0;
	cfg.nvqs = 1 + data[0] % 4;
	data++;
	size--;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv))
		abort();
	if (vduse_new_on_fd(&vd, &cfg, &ops, NULL, sv[0])) {
		close(sv[1]);
		return 0;
	}
	for (unsigned n = 0; size > 0 && n < 64; n++) {
		struct vduse_dev_request rq;
		struct vduse_dev_response rs;
		size_t len = data[0] ? data[0] % sizeof(rq) : sizeof(rq);
		size_t c;

		data++;
		size--;
		c = len < size ? len : size;
		memset(&rq, 0, sizeof(rq));
		memcpy(&rq, data, c);
		data += c;
		size -= c;
		if (len == 0 || write(sv[1], &rq, len) != (ssize_t)len)
			break;
		int ret = vhu_vduse_dispatch(vd);
		if (len != sizeof(rq)) {
			if (ret != -EPROTO)
				abort(); /* a short request must end the dispatch */
			break;
		}
		if (ret != 0 || read(sv[1], &rs, sizeof(rs)) != sizeof(rs) ||
		    rs.request_id != rq.request_id)
			abort(); /* a whole request gets one reply with its id */
		if (rs.result != VDUSE_REQ_RESULT_OK && rs.result != VDUSE_REQ_RESULT_FAILED)
			abort();
	}
	vhu_vduse_free(vd);
	close(sv[1]);
	return 0;
}
