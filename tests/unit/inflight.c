/* SPDX-License-Identifier: MIT */
/*
 * Inflight I/O tracking (src/inflight.c), split and packed: a device takes four buffers,
 * completes two of them out of order and "crashes"; a new device started on the same inflight
 * region resubmits exactly the other two, in the order they were taken, then goes on with new
 * buffers; the driver gets every buffer back once. Also a crash in the middle of a packed push
 * (region updated, used descriptor not written, and the reverse).
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../../src/drvq.h"
#include "../../src/inflight.h"
#include "../../src/ring.h"
#include "../../src/util.h"
#include "../t.h"

T_DEFINE;

#define QSZ 16

static struct fe_mem fm;
static struct mem dm;
static struct vhu_drvq dq;
static struct vhu_virtq vq;
static void *region;

static int setup(bool packed)
{
	static bool once;

	if (once) {
		drvq_free(&dq);
		fe_mem_free(&fm);
		mem_clear(&dm);
		inflight_reset(&vq);
		free(region);
	}
	once = true;
	ASSERT_OK(fe_mem_init(&fm, 1u << 20, NULL));
	struct vhu_mem_region r = { (uint64_t)(uintptr_t)fm.base, fm.size,
				    (uint64_t)(uintptr_t)fm.base, 0 };
	int fd = dup(fm.fd);
	mem_init(&dm);
	ASSERT_OK(mem_set_table(&dm, &r, 1, &fd, NULL));
	ASSERT_OK(drvq_init(&dq, 0, QSZ, packed, &fm, NULL));
	region = calloc(1, inflight_region_size(QSZ));
	ASSERT_TRUE(region != NULL);
	return 0;
}

/* A device on the ring, as a back-end process starting (or restarting) would be. */
static int device_start(bool packed, uint32_t base)
{
	inflight_reset(&vq);
	virtq_init(&vq, 0, &dm, NULL);
	vq.num = QSZ;
	vq.addr.desc = (uint64_t)(uintptr_t)dq.desc_area;
	vq.addr.avail = (uint64_t)(uintptr_t)dq.driver_area;
	vq.addr.used = (uint64_t)(uintptr_t)dq.device_area;
	vq.base_avail = (uint16_t)(base & 0x7fff);
	vq.base_avail_wrap = packed && (base >> 15 & 1);
	vq.base_used = packed ? (uint16_t)(base >> 16 & 0x7fff) : (uint16_t)base;
	vq.base_used_wrap = packed && (base >> 31);
	vq.inf = region;
	return virtq_map(&vq, packed, false);
}

static int add(uint8_t tag)
{
	struct iovec iov[2] = { { fe_mem_alloc(&fm, 64, 64), 64 },
				{ fe_mem_alloc(&fm, 64, 64), 64 } };
	memset(iov[0].iov_base, tag, 64);
	return vhu_drvq_add(&dq, iov, 1, 1, (void *)(uintptr_t)(tag + 1));
}

static uint8_t tag_of(const struct vhu_elem *e)
{
	return *(uint8_t *)e->iov[0].iov_base;
}

static int crash_and_resubmit(bool packed)
{
	struct vhu_elem e[5];
	uint32_t len;
	int got[8] = { 0 };

	ASSERT_OK(setup(packed));
	ASSERT_OK(device_start(packed, drvq_base(&dq)));
	for (int i = 0; i < 4; i++)
		ASSERT_OK(add((uint8_t)i));
	for (int i = 0; i < 4; i++) {
		ASSERT_EQ(vhu_virtq_pop(&vq, &e[i]), 1);
		ASSERT_EQ(tag_of(&e[i]), i);
	}
	vhu_virtq_push(&vq, &e[2], 64);
	vhu_virtq_push(&vq, &e[0], 64);
	vhu_virtq_flush(&vq);
	/* Crash: the device's state is gone; the region and the ring stay. */
	void *tok;
	while ((tok = vhu_drvq_get(&dq, &len)))
		got[(uintptr_t)tok - 1]++;
	ASSERT_EQ(got[0] + got[2], 2);
	ASSERT_OK(device_start(packed, drvq_resume_base(&dq)));
	ASSERT_EQ(vq.nresubmit, 2);
	ASSERT_EQ(vhu_virtq_pop(&vq, &e[0]), 1);
	ASSERT_EQ(tag_of(&e[0]), 1);
	ASSERT_EQ(vhu_virtq_pop(&vq, &e[1]), 1);
	ASSERT_EQ(tag_of(&e[1]), 3);
	ASSERT_EQ(vhu_virtq_pop(&vq, &e[2]), 0);
	/* New work after the restart lands where the ring really is. */
	ASSERT_OK(add(4));
	ASSERT_EQ(vhu_virtq_pop(&vq, &e[2]), 1);
	ASSERT_EQ(tag_of(&e[2]), 4);
	vhu_virtq_push(&vq, &e[1], 64);
	vhu_virtq_push(&vq, &e[2], 64);
	vhu_virtq_push(&vq, &e[0], 64);
	vhu_virtq_flush(&vq);
	while ((tok = vhu_drvq_get(&dq, &len)))
		got[(uintptr_t)tok - 1]++;
	for (int i = 0; i < 5; i++)
		ASSERT_EQ(got[i], 1);
	ASSERT_TRUE(!vhu_drvq_broken(&dq));
	ASSERT_TRUE(!vq.broken);
	ASSERT_EQ(vhu_drvq_num_free(&dq), QSZ);
	/* A second restart with nothing in flight resubmits nothing. */
	ASSERT_OK(device_start(packed, drvq_resume_base(&dq)));
	ASSERT_EQ(vq.nresubmit, 0);
	ASSERT_EQ(vhu_virtq_pop(&vq, &e[0]), 0);
	return 0;
}

static int split_crash(void)
{
	return crash_and_resubmit(false);
}

static int packed_crash(void)
{
	return crash_and_resubmit(true);
}

/* Packed: the device dies inside a push. Before the used descriptor is written the push is
 * rolled back (the buffer is resubmitted); after it, it is committed (not resubmitted). */
static int packed_mid_push(bool written)
{
	struct vhu_elem e[2];
	uint32_t len;

	ASSERT_OK(setup(true));
	ASSERT_OK(device_start(true, drvq_base(&dq)));
	ASSERT_OK(add(0));
	ASSERT_OK(add(1));
	ASSERT_EQ(vhu_virtq_pop(&vq, &e[0]), 1);
	ASSERT_EQ(vhu_virtq_pop(&vq, &e[1]), 1);
	/* What packed_push does for e[1], stopped half way. */
	unsigned next = vq.used_idx + e[1].ndescs;
	inflight_packed_push_begin(&vq, e[1].id, (uint16_t)next, vq.used_wrap);
	if (written) {
		struct vring_packed_desc *d = &vq.pk.desc[vq.used_idx];
		d->id = e[1].id;
		d->len = 64;
		store_release16(&d->flags, (1u << VRING_PACKED_DESC_F_AVAIL) |
						   (1u << VRING_PACKED_DESC_F_USED));
	}
	ASSERT_OK(device_start(true, drvq_resume_base(&dq)));
	ASSERT_EQ(vq.nresubmit, written ? 1 : 2);
	ASSERT_EQ(vhu_virtq_pop(&vq, &e[0]), 1);
	ASSERT_EQ(tag_of(&e[0]), 0);
	if (!written) {
		ASSERT_EQ(vhu_virtq_pop(&vq, &e[1]), 1);
		ASSERT_EQ(tag_of(&e[1]), 1);
		vhu_virtq_push(&vq, &e[1], 64);
	}
	vhu_virtq_push(&vq, &e[0], 64);
	vhu_virtq_flush(&vq);
	int n = 0;
	while (vhu_drvq_get(&dq, &len))
		n++;
	ASSERT_EQ(n, 2);
	ASSERT_TRUE(!vhu_drvq_broken(&dq));
	return 0;
}

static int packed_push_rolled_back(void)
{
	return packed_mid_push(false);
}

static int packed_push_committed(void)
{
	return packed_mid_push(true);
}

int main(void)
{
	RUN(split_crash);
	RUN(packed_crash);
	RUN(packed_push_rolled_back);
	RUN(packed_push_committed);
	T_MAIN_END();
}
