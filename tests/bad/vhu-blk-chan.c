/* SPDX-License-Identifier: MIT */
/*
 * The back-end channel against a running vhu-blk on an image file, black box. A front-end
 * (tests/common/drv) negotiates BACKEND_REQ, CONFIG and REPLY_ACK and gives vhu-blk a channel;
 * the test resizes the image and sends vhu-blk SIGHUP, and vhu-blk sends
 * BACKEND_CONFIG_CHANGE_MSG with NEED_REPLY. Then:
 *  - the front-end sends GET_CONFIG on the main socket before it acks (QEMU 7.2's order): it
 *    is answered with the new capacity (vhu-blk does not wait for the ack), and I/O past the
 *    old end works;
 *  - a front-end that never acks, closes the channel with the ack owed, or answers with
 *    garbage loses the channel (vhu-blk says why) and the device serves on;
 *  - a channel that is not a stream socket is refused (non-zero ack), the connection stays;
 *  - an image that shrank: requests past the new end fail with IOERR and the image stays the
 *    size it was made.
 * Finally vhu-blk holds no more fds than before and exits 0 on SIGTERM.
 *
 * usage: vhu-blk-chan PATH-TO-vhu-blk
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_blk.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../common/bad.h"
#include "../common/drv.h"
#include "../t.h"

T_DEFINE;

static char sock_path[128], log_path[128], image_path[128];
static struct bad_daemon dm = { .name = "vhu-blk", .sock = sock_path, .log = log_path };

#define MIB (1024 * 1024)

static int resize(uint64_t bytes)
{
	if (truncate(image_path, (off_t)bytes) < 0)
		return -errno;
	return kill(dm.pid, SIGHUP) < 0 ? -errno : 0;
}

/* The next back-end request on the channel (header only: CONFIG_CHANGE_MSG has no payload),
 * within timeout_ms. 0, or -1. */
static int chan_recv(int fd, struct vhu_hdr *h, int timeout_ms)
{
	struct pollfd p = { fd, POLLIN, 0 };

	if (poll(&p, 1, timeout_ms) != 1)
		return -1;
	return recv(fd, h, sizeof(*h), MSG_DONTWAIT) == (ssize_t)sizeof(*h) ? 0 : -1;
}

static int chan_ack(int fd, uint32_t req, uint64_t v)
{
	struct {
		struct vhu_hdr h;
		uint64_t v;
	} __attribute__((packed)) a = { { req, VHU_VERSION | VHU_FLAG_REPLY, 8 }, v };

	return send(fd, &a, sizeof(a), MSG_NOSIGNAL) == (ssize_t)sizeof(a) ? 0 : -1;
}

/* Capacity from GET_CONFIG, or 0. */
static uint64_t capacity(struct drv *d)
{
	struct vhu_config c = { .offset = 0, .size = 8 };
	struct vhu_hdr h;
	uint64_t v;

	if (drv_send(d, VHU_REQ_GET_CONFIG, VHU_VERSION, &c, VHU_CONFIG_HDR_SIZE + 8, NULL, 0) ||
	    drv_recv(d, &h, &c, sizeof(c), 3000) != VHU_CONFIG_HDR_SIZE + 8)
		return 0;
	memcpy(&v, c.region, 8);
	return v;
}

static uint64_t data(unsigned i)
{
	return drv_gpa(0x180000 + (uint64_t)i * 4096);
}

/* One request of 4 KiB at sector, data at data(slot); returns its status (0xff: none). */
static int blk_io(struct drv *d, unsigned slot, uint32_t type, uint64_t sector)
{
	uint8_t *hb = drv_buf(d, 0, 2 * slot), *st = drv_buf(d, 0, 2 * slot + 1);
	struct virtio_blk_outhdr *h = (void *)hb;
	uint64_t a[3] = { drv_buf_gpa(d, 0, 2 * slot), data(slot),
			  drv_buf_gpa(d, 0, 2 * slot + 1) };
	uint32_t l[3] = { sizeof(*h), 4096, 1 }, id, len;
	uint16_t f[3] = { 0, type == VIRTIO_BLK_T_IN ? VRING_DESC_F_WRITE : 0, VRING_DESC_F_WRITE };

	h->type = type;
	h->ioprio = 0;
	h->sector = sector;
	*st = 0xff;
	drv_add_raw(d, 0, a, l, f, 3);
	if (drv_get_used(d, 0, &id, &len, 3000) != 1)
		return 0xff;
	return *st;
}

/* Connects and starts a one-queue device with BACKEND_REQ, CONFIG, REPLY_ACK and a channel
 * (*chan: the front-end's end). */
static int start(struct drv *d, int *chan)
{
	int sv[2];

	ASSERT_OK(drv_open(d, sock_path));
	d->nq = 1;
	ASSERT_OK(drv_start(d, false, ~0ull));
	uint64_t pf = d->protocol_features | 1ULL << VHU_PROTO_F_BACKEND_REQ;
	ASSERT_OK(drv_send(d, VHU_REQ_SET_PROTOCOL_FEATURES, VHU_VERSION, &pf, 8, NULL, 0));
	d->protocol_features = pf;
	ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
	ASSERT_EQ(drv_call_ack(d, VHU_REQ_SET_BACKEND_REQ_FD, NULL, 0, &sv[1], 1), 0);
	close(sv[1]);
	*chan = sv[0];
	return 0;
}

/* QEMU's order: GET_CONFIG on the main socket, then the ack. */
static int change_acked(void)
{
	struct drv d;
	struct vhu_hdr h;
	int chan;

	ASSERT_OK(start(&d, &chan));
	ASSERT_EQ(capacity(&d), 16 * MIB / 512);
	ASSERT_OK(resize(24 * MIB));
	ASSERT_OK(chan_recv(chan, &h, 3000));
	ASSERT_EQ(h.request, VHU_BREQ_CONFIG_CHANGE_MSG);
	ASSERT_EQ(h.flags, VHU_VERSION | VHU_FLAG_NEED_REPLY);
	ASSERT_EQ(h.size, 0);
	ASSERT_EQ(capacity(&d), 24 * MIB / 512);
	ASSERT_OK(chan_ack(chan, VHU_BREQ_CONFIG_CHANGE_MSG, 0));
	/* The new space is served: write and read back past the old end. */
	memset(d.mem + (data(0) - DRV_GPA_BASE), 0x5a, 4096);
	ASSERT_EQ(blk_io(&d, 0, VIRTIO_BLK_T_OUT, 20 * MIB / 512), VIRTIO_BLK_S_OK);
	ASSERT_EQ(blk_io(&d, 1, VIRTIO_BLK_T_IN, 20 * MIB / 512), VIRTIO_BLK_S_OK);
	ASSERT_OK(memcmp(d.mem + (data(0) - DRV_GPA_BASE), d.mem + (data(1) - DRV_GPA_BASE), 4096));
	/* A second change; the channel still works. */
	ASSERT_OK(resize(16 * MIB));
	ASSERT_OK(chan_recv(chan, &h, 3000));
	ASSERT_OK(chan_ack(chan, VHU_BREQ_CONFIG_CHANGE_MSG, 0));
	ASSERT_EQ(capacity(&d), 16 * MIB / 512);
	msleep(300);
	ASSERT_TRUE(!grep_log(log_path, "back-end channel dropped"));
	ASSERT_TRUE(grep_log(log_path, "front-end told"));
	close(chan);
	drv_close(&d);
	return bad_check_clean(&dm, "change acked");
}

enum misbehave { SILENT, CLOSE, GARBAGE };

/* The front-end gets the request and never acks / closes the channel / sends garbage: the
 * channel goes (the daemon says why), the device serves on with the new size. */
static int change_misbehaved(enum misbehave how, const char *expect)
{
	struct drv d;
	struct vhu_hdr h;
	int chan;
	uint64_t t0 = now_ms();

	ASSERT_OK(start(&d, &chan));
	ASSERT_OK(resize(20 * MIB));
	ASSERT_OK(chan_recv(chan, &h, 3000));
	if (how == CLOSE) {
		close(chan);
		chan = -1;
	} else if (how == GARBAGE) {
		ASSERT_EQ(send(chan, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 12,
			       MSG_NOSIGNAL),
			  12);
	}
	/* Not one GET_CONFIG waits behind the missing ack. */
	ASSERT_EQ(capacity(&d), 20 * MIB / 512);
	ASSERT_EQ(blk_io(&d, 0, VIRTIO_BLK_T_IN, 18 * MIB / 512), VIRTIO_BLK_S_OK);
	if (chan >= 0) {
		/* Silent: dropped within the 3 s deadline (and its 100 ms check), not before. */
		ASSERT_TRUE(closed_by_peer(chan, 6000));
		if (how == SILENT)
			ASSERT_TRUE(now_ms() - t0 >= 2900);
		close(chan);
	}
	for (int t = 0; t < 50 && !grep_log(log_path, expect); t++)
		msleep(20);
	if (!grep_log(log_path, expect)) {
		T_FAILF("no \"%s\" in the log", expect);
		return -1;
	}
	/* Without a channel the next change is only in the config space. */
	ASSERT_OK(resize(16 * MIB));
	msleep(200);
	ASSERT_EQ(capacity(&d), 16 * MIB / 512);
	ASSERT_EQ(blk_io(&d, 1, VIRTIO_BLK_T_IN, 0), VIRTIO_BLK_S_OK);
	drv_close(&d);
	return bad_check_clean(&dm, expect);
}

static int never_acks(void)
{
	return change_misbehaved(SILENT, "no ack to BACKEND_CONFIG_CHANGE_MSG within 3000 ms");
}

static int closes_channel(void)
{
	return change_misbehaved(CLOSE, "closed it with acks owed");
}

static int garbage_ack(void)
{
	return change_misbehaved(GARBAGE, "malformed message from the front-end");
}

/* A pipe or a datagram socket for a channel: refused, the connection stays. */
static int channel_not_a_stream(void)
{
	struct drv d;
	int p[2], sv[2];

	ASSERT_OK(drv_open(&d, sock_path));
	d.nq = 1;
	ASSERT_OK(drv_start(&d, false, ~0ull));
	uint64_t pf = d.protocol_features | 1ULL << VHU_PROTO_F_BACKEND_REQ;
	ASSERT_OK(drv_send(&d, VHU_REQ_SET_PROTOCOL_FEATURES, VHU_VERSION, &pf, 8, NULL, 0));
	ASSERT_OK(pipe2(p, O_CLOEXEC));
	ASSERT_OK(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv));
	ASSERT_TRUE(drv_call_ack(&d, VHU_REQ_SET_BACKEND_REQ_FD, NULL, 0, &p[1], 1) > 0);
	ASSERT_TRUE(drv_call_ack(&d, VHU_REQ_SET_BACKEND_REQ_FD, NULL, 0, &sv[1], 1) > 0);
	close(p[0]);
	close(p[1]);
	close(sv[0]);
	close(sv[1]);
	ASSERT_EQ(capacity(&d), 16 * MIB / 512);
	ASSERT_EQ(blk_io(&d, 0, VIRTIO_BLK_T_IN, 0), VIRTIO_BLK_S_OK);
	ASSERT_TRUE(grep_log(log_path, "not an AF_UNIX stream socket"));
	drv_close(&d);
	return bad_check_clean(&dm, "channel not a stream");
}

/* Shrunk to 8 MiB: past the new end, reads and writes fail with IOERR and the image is not
 * grown again; below it, I/O works. */
static int shrunk(void)
{
	struct drv d;
	struct vhu_hdr h;
	struct stat st;
	int chan;

	ASSERT_OK(start(&d, &chan));
	ASSERT_OK(resize(8 * MIB));
	ASSERT_OK(chan_recv(chan, &h, 3000));
	ASSERT_OK(chan_ack(chan, VHU_BREQ_CONFIG_CHANGE_MSG, 0));
	ASSERT_EQ(capacity(&d), 8 * MIB / 512);
	ASSERT_EQ(blk_io(&d, 0, VIRTIO_BLK_T_OUT, 10 * MIB / 512), VIRTIO_BLK_S_IOERR);
	ASSERT_EQ(blk_io(&d, 1, VIRTIO_BLK_T_IN, 10 * MIB / 512), VIRTIO_BLK_S_IOERR);
	/* The last 4 KiB straddling the end. */
	ASSERT_EQ(blk_io(&d, 2, VIRTIO_BLK_T_OUT, 8 * MIB / 512 - 4), VIRTIO_BLK_S_IOERR);
	ASSERT_EQ(blk_io(&d, 3, VIRTIO_BLK_T_OUT, 8 * MIB / 512 - 8), VIRTIO_BLK_S_OK);
	ASSERT_OK(stat(image_path, &st));
	ASSERT_EQ(st.st_size, 8 * MIB);
	ASSERT_OK(resize(16 * MIB));
	ASSERT_OK(chan_recv(chan, &h, 3000));
	ASSERT_OK(chan_ack(chan, VHU_BREQ_CONFIG_CHANGE_MSG, 0));
	close(chan);
	drv_close(&d);
	return bad_check_clean(&dm, "shrunk");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s VHU-BLK\n", argv[0]);
		return T_FAIL;
	}
	snprintf(sock_path, sizeof(sock_path), "/tmp/vhu-blk-chan-%d.sock", getpid());
	snprintf(log_path, sizeof(log_path), "/tmp/vhu-blk-chan-%d.log", getpid());
	snprintf(image_path, sizeof(image_path), "/tmp/vhu-blk-chan-%d.img", getpid());
	if (bad_make_image(image_path, 16 * MIB))
		return T_FAIL;
	bad_start(&dm, argv[1],
		  (const char *[]){ "--socket-path", sock_path, "--image", image_path, NULL },
		  false);

	RUN(change_acked);
	RUN(never_acks);
	RUN(closes_channel);
	RUN(garbage_ack);
	RUN(channel_not_a_stream);
	RUN(shrunk);

	bad_stop(&dm);
	bad_finish(&dm, 40);
	unlink(image_path);
	T_MAIN_END();
}
