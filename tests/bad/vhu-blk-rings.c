/* SPDX-License-Identifier: MIT */
/*
 * Ring states against a running vhu-blk on an image file, black box. "Ring states": a started
 * but disabled ring is processed "without causing any side effects"; for a block device that
 * means a write waits in the ring (executing it is a side effect, completing it unexecuted
 * would lose it). The test disables the ring, posts a write, checks that the image is untouched,
 * that nothing comes back used and that the daemon sleeps meanwhile; then enables the ring and
 * checks the write is done and completed.
 *
 * usage: vhu-blk-rings PATH-TO-vhu-blk
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_blk.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../common/bad.h"
#include "../common/drv.h"
#include "../t.h"

T_DEFINE;

#define IMG_SIZE (1u << 20)

static char sock_path[128], log_path[128], img_path[128];
static struct bad_daemon dm = { .name = "vhu-blk", .sock = sock_path, .log = log_path };

static int image_sector(unsigned sector, uint8_t *buf)
{
	int fd = open(img_path, O_RDONLY);
	if (fd < 0)
		return -1;
	ssize_t n = pread(fd, buf, 512, (off_t)sector * 512);
	close(fd);
	return n == 512 ? 0 : -1;
}

static int set_enable(struct drv *d, unsigned q, unsigned on)
{
	struct vhu_vring_state s = { q, on };
	return (int)drv_call_ack(d, VHU_REQ_SET_VRING_ENABLE, &s, sizeof(s), NULL, 0);
}

/* Posts a write of 512 bytes of `fill` at `sector` on queue 0, in buffer slots 3*n.. */
static void post_write(struct drv *d, unsigned n, unsigned sector, uint8_t fill)
{
	struct virtio_blk_outhdr *h = (void *)drv_buf(d, 0, 3 * n);
	uint8_t *data = drv_buf(d, 0, 3 * n + 1), *st = drv_buf(d, 0, 3 * n + 2);
	uint64_t addr[3] = { drv_buf_gpa(d, 0, 3 * n), drv_buf_gpa(d, 0, 3 * n + 1),
			     drv_buf_gpa(d, 0, 3 * n + 2) };
	uint32_t len[3] = { sizeof(*h), 512, 1 };
	uint16_t flags[3] = { 0, 0, VRING_DESC_F_WRITE };

	*h = (struct virtio_blk_outhdr){ .type = VIRTIO_BLK_T_OUT, .sector = sector };
	memset(data, fill, 512);
	*st = 0xee;
	drv_add_raw(d, 0, addr, len, flags, 3);
}

static int disabled_ring_holds_writes(void)
{
	uint8_t sec[512], zero[512] = { 0 };
	uint32_t id, len;
	struct drv d;

	ASSERT_OK(drv_open(&d, sock_path));
	d.nq = 1;
	ASSERT_OK(drv_start(&d, false, ~0ull));
	/* The ring works while enabled. */
	post_write(&d, 0, 1, 0x11);
	ASSERT_EQ(drv_get_used(&d, 0, &id, &len, 3000), 1);
	ASSERT_EQ(*drv_buf(&d, 0, 2), VIRTIO_BLK_S_OK);
	ASSERT_OK(image_sector(1, sec));
	ASSERT_TRUE(sec[0] == 0x11 && sec[511] == 0x11);

	ASSERT_EQ(set_enable(&d, 0, 0), 0);
	long t0 = cpu_ticks(dm.pid);
	post_write(&d, 1, 2, 0x22);
	post_write(&d, 2, 3, 0x33);
	/* Neither executed nor completed while disabled... */
	ASSERT_EQ(drv_get_used(&d, 0, &id, &len, 500), 0);
	ASSERT_OK(image_sector(2, sec));
	ASSERT_OK(memcmp(sec, zero, 512));
	ASSERT_OK(image_sector(3, sec));
	ASSERT_OK(memcmp(sec, zero, 512));
	ASSERT_EQ(*drv_buf(&d, 0, 5), 0xee);
	/* ...and held without spinning: well under half a CPU over those 500 ms. */
	long t1 = cpu_ticks(dm.pid);
	ASSERT_TRUE(t0 >= 0 && t1 >= 0);
	if (t1 - t0 > sysconf(_SC_CLK_TCK) / 8) {
		T_FAILF("vhu-blk used %ld ticks while its only ring was disabled", t1 - t0);
		return -1;
	}
	/* A kick on the disabled ring changes nothing either. */
	drv_kick(&d, 0);
	ASSERT_EQ(drv_get_used(&d, 0, &id, &len, 200), 0);

	/* Enabled again: both writes are executed and completed, in order. */
	ASSERT_EQ(set_enable(&d, 0, 1), 0);
	ASSERT_EQ(drv_get_used(&d, 0, &id, &len, 3000), 1);
	ASSERT_EQ(drv_get_used(&d, 0, &id, &len, 3000), 1);
	ASSERT_EQ(*drv_buf(&d, 0, 5), VIRTIO_BLK_S_OK);
	ASSERT_EQ(*drv_buf(&d, 0, 8), VIRTIO_BLK_S_OK);
	ASSERT_OK(image_sector(2, sec));
	ASSERT_TRUE(sec[0] == 0x22 && sec[511] == 0x22);
	ASSERT_OK(image_sector(3, sec));
	ASSERT_TRUE(sec[0] == 0x33 && sec[511] == 0x33);
	drv_close(&d);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s VHU-BLK\n", argv[0]);
		return T_FAIL;
	}
	snprintf(sock_path, sizeof(sock_path), "/tmp/vhu-blk-rings-%d.sock", getpid());
	snprintf(log_path, sizeof(log_path), "/tmp/vhu-blk-rings-%d.log", getpid());
	snprintf(img_path, sizeof(img_path), "/tmp/vhu-blk-rings-%d.img", getpid());
	if (bad_make_image(img_path, IMG_SIZE))
		return T_FAIL;
	bad_start(&dm, argv[1],
		  (const char *[]){ "--socket-path", sock_path, "--image", img_path, "--verbose",
				    NULL },
		  false);

	RUN(disabled_ring_holds_writes);

	bad_stop(&dm);
	bad_finish(&dm, 40);
	unlink(img_path);
	T_MAIN_END();
}
