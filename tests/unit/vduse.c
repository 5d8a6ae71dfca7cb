/* SPDX-License-Identifier: MIT */
/*
 * VDUSE without the kernel (src/vduse.c, ring.h's hooks):
 *  - the ring code through an owner's translation: descriptors are IOVAs resolved piece by
 *    piece (pages that follow each other in memory merge into one iovec), an unmapped IOVA
 *    breaks the ring, a flush notifies through the hook and not the call eventfd;
 *  - the kernel's requests, written into a socketpair that stands for /dev/vduse/NAME:
 *    indices and ranges checked (FAILED replies), an unknown type refused, a short request
 *    ends the dispatch, and an ioctl that fails (a socket has none) is logged with its name
 *    and the device's.
 */
#include <errno.h>
#include <linux/vduse.h>
#include <linux/virtio_config.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "t.h"
#include "ring.h"
#include "../../src/vduse_int.h"

T_DEFINE;

/* ---- the ring through a translation hook ---- */

#define IOVA 0x40000000ull
static unsigned notified;
static bool hole; /* the page at BUF_OFF + 0x3000 is unmapped */

/* IOVA -> guest memory at the same offset, one 4 KiB page per piece. */
static void *xl(void *opaque, uint64_t addr, uint64_t *len, unsigned perm, int *err)
{
	uint64_t off = addr - IOVA, room;

	(void)opaque;
	(void)perm;
	if (addr < IOVA || off >= MEMSZ || (hole && off >> 12 == (BUF_OFF + 0x3000) >> 12)) {
		*err = -EFAULT;
		return NULL;
	}
	room = 4096 - (off & 4095);
	if (*len > room)
		*len = room;
	*err = 0;
	return g + off;
}

static void nt(void *opaque, struct vhu_virtq *q)
{
	(void)opaque;
	(void)q;
	notified++;
}

static int ring_hooks(void)
{
	struct vring_desc *D;
	struct vring_avail *A;
	struct vring_used *U;
	struct vhu_elem e;

	(void)gpa; /* ring.h's helpers this test does not use */
	(void)ring_split_memory;
	ring_setup(false, false);
	free(vq.ind_copy);
	virtq_init(&vq, 0, &mm, NULL);
	vq.num = QN;
	vq.addr.desc = IOVA + DESC_OFF;
	vq.addr.avail = IOVA + AVAIL_OFF;
	vq.addr.used = IOVA + USED_OFF;
	vq.call_fd = callfd;
	vq.xlate = xl;
	vq.notify = nt;
	ASSERT_OK(virtq_map(&vq, false, false, false));
	D = (void *)(g + DESC_OFF);
	A = (void *)(g + AVAIL_OFF);
	U = (void *)(g + USED_OFF);
	/* 3 pages of data in one descriptor: pieces of 4 KiB, contiguous, one iovec. */
	D[0] = (struct vring_desc){ IOVA + BUF_OFF, 3 * 4096, VRING_DESC_F_WRITE, 0 };
	A->ring[0] = 0;
	__atomic_store_n(&A->idx, 1, __ATOMIC_RELEASE);
	ASSERT_EQ(vhu_virtq_pop(&vq, &e), 1);
	ASSERT_EQ(e.in_num, 1);
	ASSERT_EQ(e.in_len, 3 * 4096);
	ASSERT_TRUE(e.iov[0].iov_base == g + BUF_OFF);
	vhu_virtq_push(&vq, &e, 100);
	vhu_virtq_flush(&vq);
	ASSERT_EQ(U->idx, 1);
	ASSERT_EQ(notified, 1);
	ASSERT_TRUE(!called()); /* the hook, not the call eventfd */
	/* An IOVA the owner cannot map breaks the ring. */
	hole = true;
	D[1] = (struct vring_desc){ IOVA + BUF_OFF + 0x2000, 8192, 0, 0 };
	A->ring[1] = 1;
	__atomic_store_n(&A->idx, 2, __ATOMIC_RELEASE);
	ASSERT_EQ(vhu_virtq_pop(&vq, &e), -EIO);
	ASSERT_TRUE(vhu_virtq_broken(&vq));
	hole = false;
	return 0;
}

/* ---- the kernel's requests ---- */

static char logbuf[4096];
static uint8_t last_status = 0xff;

static void lg(void *opaque, int level, const char *msg)
{
	(void)opaque;
	(void)level;
	strncat(logbuf, msg, sizeof(logbuf) - strlen(logbuf) - 2);
	strcat(logbuf, "\n");
}

static void status_set(void *dev, uint8_t st)
{
	(void)dev;
	last_status = st;
}

static struct vhu_vduse *vd;
static int peer;

static int open_fake(void)
{
	struct vhu_device_ops ops = { .size = sizeof(ops),
				      .features = 1ULL << VIRTIO_F_VERSION_1,
				      .status_set = status_set,
				      .log = lg,
				      .log_level = VHU_LOG_DEBUG };
	struct vhu_vduse_config cfg = {
		.size = sizeof(cfg), .name = "t0", .device_id = 2, .nvqs = 2
	};
	int sv[2];

	ASSERT_OK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv));
	peer = sv[1];
	ASSERT_OK(vduse_new_on_fd(&vd, &cfg, &ops, NULL, sv[0]));
	/* Bad arguments never reach the kernel. */
	cfg.nvqs = 0;
	ASSERT_EQ(vhu_vduse_new(&vd, &cfg, &ops, NULL), -EINVAL);
	cfg.nvqs = 2;
	cfg.name = "a/b";
	ASSERT_EQ(vhu_vduse_new(&vd, &cfg, &ops, NULL), -EINVAL);
	return 0;
}

/* Sends one request, dispatches, returns the reply's result (or -1 with no reply). */
static int ask(struct vduse_dev_request *rq, struct vduse_dev_response *rs)
{
	static uint32_t id = 100;

	rq->request_id = ++id;
	if (write(peer, rq, sizeof(*rq)) != sizeof(*rq))
		return -2;
	if (vhu_vduse_dispatch(vd) != 0)
		return -3;
	memset(rs, 0, sizeof(*rs));
	if (read(peer, rs, sizeof(*rs)) != sizeof(*rs) || rs->request_id != id)
		return -1;
	return (int)rs->result;
}

static int requests(void)
{
	struct vduse_dev_request rq;
	struct vduse_dev_response rs;

	ASSERT_OK(open_fake());
	/* GET_VQ_STATE: index checked against the queues created. */
	memset(&rq, 0, sizeof(rq));
	rq.type = VDUSE_GET_VQ_STATE;
	rq.vq_state.index = 2;
	ASSERT_EQ(ask(&rq, &rs), VDUSE_REQ_RESULT_FAILED);
	ASSERT_TRUE(strstr(logbuf, "GET_VQ_STATE for queue 2 of 2") != NULL);
	rq.vq_state.index = 0xffffffffu;
	ASSERT_EQ(ask(&rq, &rs), VDUSE_REQ_RESULT_FAILED);
	rq.vq_state.index = 1;
	ASSERT_EQ(ask(&rq, &rs), VDUSE_REQ_RESULT_OK);
	ASSERT_EQ(rs.vq_state.index, 1);
	ASSERT_EQ(rs.vq_state.split.avail_index, 0);
	/* UPDATE_IOTLB: an inverted range is refused, a whole one accepted. */
	memset(&rq, 0, sizeof(rq));
	rq.type = VDUSE_UPDATE_IOTLB;
	rq.iova.start = 0x2000;
	rq.iova.last = 0x1000;
	ASSERT_EQ(ask(&rq, &rs), VDUSE_REQ_RESULT_FAILED);
	rq.iova.start = 0;
	rq.iova.last = UINT64_MAX;
	ASSERT_EQ(ask(&rq, &rs), VDUSE_REQ_RESULT_OK);
	/* SET_STATUS without DRIVER_OK: stored and passed on. */
	memset(&rq, 0, sizeof(rq));
	rq.type = VDUSE_SET_STATUS;
	rq.s.status = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER;
	ASSERT_EQ(ask(&rq, &rs), VDUSE_REQ_RESULT_OK);
	ASSERT_EQ(last_status, 3);
	/* DRIVER_OK needs VDUSE_DEV_GET_FEATURES, which a socket does not have: FAILED, the
	 * ioctl and the device named, the status not passed on. */
	logbuf[0] = 0;
	rq.s.status = 0xf;
	ASSERT_EQ(ask(&rq, &rs), VDUSE_REQ_RESULT_FAILED);
	ASSERT_TRUE(strstr(logbuf, "VDUSE_DEV_GET_FEATURES on VDUSE device t0") != NULL);
	ASSERT_EQ(last_status, 3);
	/* A type the library does not know. */
	rq.type = 77;
	ASSERT_EQ(ask(&rq, &rs), VDUSE_REQ_RESULT_FAILED);
	/* Nothing pending: 0. A short request: the dispatch ends with -EPROTO. */
	ASSERT_EQ(vhu_vduse_dispatch(vd), 0);
	ASSERT_EQ(write(peer, &rq, 10), 10);
	ASSERT_EQ(vhu_vduse_dispatch(vd), -EPROTO);
	vhu_vduse_free(vd);
	close(peer);
	return 0;
}

int main(void)
{
	RUN(ring_hooks);
	RUN(requests);
	T_MAIN_END();
}
