/* SPDX-License-Identifier: MIT */
/*
 * Runs inside the test guest: drives a virtio-blk vDPA device through /dev/vhost-vdpa-N with
 * the bare vhost-vdpa ioctls (a minimal front-end of its own, to test the device side: vhu-fe
 * has the real one). Memory is a shared memfd given by IOTLB updates (VHOST_IOTLB_MSG_V2); one
 * split ring of 16. It writes 4 KiB at a sector, maps a second buffer while the device runs
 * (an IOTLB update after DRIVER_OK: VDUSE's UPDATE_IOTLB with the queue running), reads the
 * sector back into it, compares, then checks VHOST_GET_VRING_BASE (VDUSE's GET_VQ_STATE) says
 * both requests were taken, and resets the device.
 * With "shrink" it writes, then makes a read available and shrinks the memfd to nothing
 * (ftruncate) before the kick: the device's next look at the ring faults (SIGBUS in the device's
 * process), which must cost only this device's ring: no completion comes (exit status 3, the
 * ring is not read again here: our own mapping of it is gone too), the device process lives
 * on, and the reset at the end makes the device usable again.
 * With "broken" it writes, then makes available a head outside the ring, which must break the
 * ring; then mends that avail entry into a valid read and maps more memory (VDUSE's
 * UPDATE_IOTLB, which stops and restarts the running rings): the broken ring must stay
 * stopped, so the read must not complete (exit status 4 after the reset; a ring restarted by
 * mistake would take the mended entry and complete it: exit status 1). It mends the entry once
 * a line comes on stdin: the caller sends it when the device has said the ring broke.
 * usage: vdpablk /dev/vhost-vdpa-N SECTOR [shrink|broken]
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/vhost.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define IOVA	 0x10000000ull
#define MEM	 (1u << 20)
#define QN	 16
#define DESC	 0x0
#define AVAIL	 0x1000
#define USED	 0x2000
#define HDR	 0x3000
#define STATUS	 0x3100
#define WBUF	 0x4000
#define RBUF_OFF 0x0 /* in the second mapping */
#define IOVA2	 0x20000000ull

static int fd;
static uint8_t *m, *m2;

#define CHECK(x)                                                                                   \
	do {                                                                                       \
		if ((x) < 0) {                                                                     \
			fprintf(stderr, "vdpablk: %s: %s\n", #x, strerror(errno));                 \
			exit(1);                                                                   \
		}                                                                                  \
	} while (0)

static void iotlb(uint64_t iova, uint64_t size, void *uaddr, uint8_t type)
{
	struct vhost_msg_v2 msg = { .type = VHOST_IOTLB_MSG_V2 };

	msg.iotlb.iova = iova;
	msg.iotlb.size = size;
	msg.iotlb.uaddr = (uintptr_t)uaddr;
	msg.iotlb.perm = VHOST_ACCESS_RW;
	msg.iotlb.type = type;
	if (write(fd, &msg, sizeof(msg)) != sizeof(msg)) {
		fprintf(stderr, "vdpablk: IOTLB %s: %s\n",
			type == VHOST_IOTLB_UPDATE ? "update" : "invalidate", strerror(errno));
		exit(1);
	}
}

static void set_status(uint8_t s)
{
	uint8_t got;

	CHECK(ioctl(fd, VHOST_VDPA_SET_STATUS, &s));
	CHECK(ioctl(fd, VHOST_VDPA_GET_STATUS, &got));
	if (got != s) {
		fprintf(stderr, "vdpablk: status 0x%x written, 0x%x read\n", s, got);
		exit(1);
	}
}

/* One request: header, data (device-readable for OUT, writable for IN), status. shrink_fd >= 0:
 * that memfd is emptied before the kick, and only the call eventfd is watched (3 s). */
static int request(int kick, int call, uint16_t *avail_idx, uint32_t type, uint64_t sector,
		   uint64_t data_iova, int shrink_fd)
{
	struct vring_desc *d = (void *)(m + DESC);
	struct vring_avail *a = (void *)(m + AVAIL);
	struct vring_used *u = (void *)(m + USED);
	struct virtio_blk_outhdr *h = (void *)(m + HDR);
	uint16_t used_before = __atomic_load_n(&u->idx, __ATOMIC_ACQUIRE);
	struct pollfd p = { .fd = call, .events = POLLIN };
	eventfd_t v;

	h->type = type;
	h->ioprio = 0;
	h->sector = sector;
	m[STATUS] = 0xff;
	d[0] = (struct vring_desc){ IOVA + HDR, sizeof(*h), VRING_DESC_F_NEXT, 1 };
	d[1] = (struct vring_desc){ data_iova, 4096,
				    VRING_DESC_F_NEXT |
					    (type == VIRTIO_BLK_T_IN ? VRING_DESC_F_WRITE : 0),
				    2 };
	d[2] = (struct vring_desc){ IOVA + STATUS, 1, VRING_DESC_F_WRITE, 0 };
	a->ring[*avail_idx % QN] = 0;
	__atomic_store_n(&a->idx, (uint16_t)(*avail_idx + 1), __ATOMIC_RELEASE);
	(*avail_idx)++;
	if (shrink_fd >= 0) {
		CHECK(ftruncate(shrink_fd, 0));
		eventfd_write(kick, 1);
		if (poll(&p, 1, 3000) == 1) {
			fprintf(stderr, "vdpablk: a call after the memory was shrunk\n");
			return 0;
		}
		return -1;
	}
	eventfd_write(kick, 1);
	for (int i = 0; i < 100 && __atomic_load_n(&u->idx, __ATOMIC_ACQUIRE) == used_before; i++)
		if (poll(&p, 1, 100) == 1)
			eventfd_read(call, &v);
	if (__atomic_load_n(&u->idx, __ATOMIC_ACQUIRE) == used_before) {
		fprintf(stderr, "vdpablk: request type %u not completed in 10 s\n", type);
		return -1;
	}
	if (m[STATUS] != VIRTIO_BLK_S_OK) {
		fprintf(stderr, "vdpablk: request type %u status %u\n", type, m[STATUS]);
		return -1;
	}
	return 0;
}

/* "broken": a head outside the ring, then that entry mended and an IOTLB update; no
 * completion may come. */
static int broken_ring(int kick, int call, uint16_t *avail_idx, uint64_t sector)
{
	struct vring_desc *d = (void *)(m + DESC);
	struct vring_avail *a = (void *)(m + AVAIL);
	struct vring_used *u = (void *)(m + USED);
	struct virtio_blk_outhdr *h = (void *)(m + HDR);
	struct pollfd p = { .fd = call, .events = POLLIN };
	uint16_t used_before;
	eventfd_t v;

	/* Past the device's polling window, and no call left from the write (as "shrink"). */
	usleep(200000);
	eventfd_read(call, &v);
	used_before = __atomic_load_n(&u->idx, __ATOMIC_ACQUIRE);
	a->ring[*avail_idx % QN] = QN + 3;
	__atomic_store_n(&a->idx, (uint16_t)(*avail_idx + 1), __ATOMIC_RELEASE);
	eventfd_write(kick, 1);
	/* The caller says when the device has broken the ring (its log): a line on stdin. */
	char go[16];
	if (!fgets(go, sizeof(go), stdin)) {
		fprintf(stderr, "vdpablk: no word that the ring broke\n");
		return 1;
	}
	/* The same entry, now a valid read: only a ring restarted by mistake takes it. */
	h->type = VIRTIO_BLK_T_IN;
	h->ioprio = 0;
	h->sector = sector;
	m[STATUS] = 0xff;
	d[0] = (struct vring_desc){ IOVA + HDR, sizeof(*h), VRING_DESC_F_NEXT, 1 };
	d[1] = (struct vring_desc){ IOVA2 + RBUF_OFF, 4096, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE,
				    2 };
	d[2] = (struct vring_desc){ IOVA + STATUS, 1, VRING_DESC_F_WRITE, 0 };
	__atomic_store_n(&a->ring[*avail_idx % QN], 0, __ATOMIC_RELEASE);
	(*avail_idx)++;
	iotlb(IOVA2, MEM, m2, VHOST_IOTLB_UPDATE);
	eventfd_write(kick, 1);
	if (poll(&p, 1, 2000) == 1 || __atomic_load_n(&u->idx, __ATOMIC_ACQUIRE) != used_before) {
		fprintf(stderr,
			"vdpablk: the broken ring completed a request after the IOTLB "
			"update (status %u)\n",
			m[STATUS]);
		return 1;
	}
	set_status(0);
	close(fd);
	printf("vdpablk: ring broken by a bad head, IOTLB update, no completion, device reset\n");
	return 4;
}

int main(int argc, char **argv)
{
	uint64_t f, bf = 1ULL << VHOST_BACKEND_F_IOTLB_MSG_V2, sector;
	uint32_t id;
	uint16_t avail_idx = 0;
	int mfd, kick, call;

	bool shrink = argc == 4 && strcmp(argv[3], "shrink") == 0;
	bool broken = argc == 4 && strcmp(argv[3], "broken") == 0;

	if (argc != 3 && !shrink && !broken) {
		fprintf(stderr, "usage: vdpablk /dev/vhost-vdpa-N SECTOR [shrink|broken]\n");
		return 2;
	}
	sector = strtoull(argv[2], NULL, 0);
	fd = open(argv[1], O_RDWR);
	CHECK(fd);
	CHECK(ioctl(fd, VHOST_SET_OWNER));
	CHECK(ioctl(fd, VHOST_VDPA_GET_DEVICE_ID, &id));
	if (id != 2) {
		fprintf(stderr, "vdpablk: device id %u, not a block device\n", id);
		return 1;
	}
	CHECK(ioctl(fd, VHOST_SET_BACKEND_FEATURES, &bf));
	set_status(0);
	set_status(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	CHECK(ioctl(fd, VHOST_GET_FEATURES, &f));
	f &= (1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_F_ACCESS_PLATFORM);
	CHECK(ioctl(fd, VHOST_SET_FEATURES, &f));
	set_status(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
		   VIRTIO_CONFIG_S_FEATURES_OK);

	/* "VDUSE accepts anonymous memory silently and then never completes I/O": a memfd. */
	mfd = memfd_create("vdpablk", MFD_CLOEXEC);
	CHECK(mfd);
	CHECK(ftruncate(mfd, 2 * MEM));
	m = mmap(NULL, MEM, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	m2 = mmap(NULL, MEM, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, MEM);
	if (m == MAP_FAILED || m2 == MAP_FAILED)
		return 1;
	iotlb(IOVA, MEM, m, VHOST_IOTLB_UPDATE);

	struct vhost_vring_state num = { 0, QN }, base = { 0, 0 };
	struct vhost_vring_addr addr = { .index = 0,
					 .desc_user_addr = IOVA + DESC,
					 .avail_user_addr = IOVA + AVAIL,
					 .used_user_addr = IOVA + USED };
	kick = eventfd(0, EFD_CLOEXEC);
	call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	struct vhost_vring_file kf = { 0, kick }, cf = { 0, call };
	struct vhost_vring_state en = { 0, 1 };
	CHECK(ioctl(fd, VHOST_SET_VRING_NUM, &num));
	CHECK(ioctl(fd, VHOST_SET_VRING_ADDR, &addr));
	CHECK(ioctl(fd, VHOST_SET_VRING_BASE, &base));
	CHECK(ioctl(fd, VHOST_SET_VRING_KICK, &kf));
	CHECK(ioctl(fd, VHOST_SET_VRING_CALL, &cf));
	CHECK(ioctl(fd, VHOST_VDPA_SET_VRING_ENABLE, &en));
	set_status(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
		   VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK);

	for (int i = 0; i < 4096; i++)
		m[WBUF + i] = (uint8_t)(i * 7 + sector);
	if (request(kick, call, &avail_idx, VIRTIO_BLK_T_OUT, sector, IOVA + WBUF, -1))
		return 1;
	if (shrink) {
		/* Past the device's polling window after that completion (vhu-blk --poll-us), so
		 * that it looks at the ring again only on the kick, after the shrink; and no call
		 * left pending from the write, which the wait below would take for one. */
		eventfd_t v;
		usleep(200000);
		eventfd_read(call, &v);
		if (request(kick, call, &avail_idx, VIRTIO_BLK_T_IN, sector, IOVA + WBUF, mfd) == 0)
			return 1;
		set_status(0);
		close(fd);
		printf("vdpablk: memory shrunk under the ring: no completion, device reset\n");
		return 3;
	}
	if (broken)
		return broken_ring(kick, call, &avail_idx, sector);
	/* A second mapping while the device runs: the device side drops its mappings and maps
	 * again (UPDATE_IOTLB), the ring goes on. */
	iotlb(IOVA2, MEM, m2, VHOST_IOTLB_UPDATE);
	memset(m2 + RBUF_OFF, 0, 4096);
	if (request(kick, call, &avail_idx, VIRTIO_BLK_T_IN, sector, IOVA2 + RBUF_OFF, -1))
		return 1;
	if (memcmp(m + WBUF, m2 + RBUF_OFF, 4096)) {
		fprintf(stderr, "vdpablk: read back different data\n");
		return 1;
	}
	CHECK(ioctl(fd, VHOST_GET_VRING_BASE, &base));
	if (base.num != avail_idx) {
		fprintf(stderr, "vdpablk: GET_VRING_BASE %u, %u requests made\n", base.num,
			avail_idx);
		return 1;
	}
	set_status(0);
	close(fd);
	printf("vdpablk: write, map while running, read back, vring base %u: ok\n", base.num);
	return 0;
}
