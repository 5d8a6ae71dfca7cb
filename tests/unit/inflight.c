/* SPDX-License-Identifier: MIT */
/*
 * Inflight I/O tracking (src/inflight.c), split and packed: a device takes four buffers,
 * completes two of them out of order and "crashes"; a new device started on the same inflight
 * region resubmits exactly the other two, in the order they were taken, then goes on with new
 * buffers; the driver gets every buffer back once. Also a crash in the middle of a packed push
 * (region updated, used descriptor not written, and the reverse).
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../../src/drvq.h"
#include "../../src/inflight.h"
#include "../../src/virtq_ctl.h"
#include "../../src/vring.h"
#include "../../src/util.h"
#include "../t.h"

T_DEFINE;

#define QSZ  16
#define FRAG 4096

static struct fe_mem fm;
static struct mem dm;
static struct vhu_drvq dq;
static struct vhu_virtq vq;
static void *region;

static int setup_mem(bool packed, bool fragmented)
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
	mem_init(&dm);
	if (fragmented) {
		/* The same memory as 4 KiB regions (hot-plugged memory, or ADD_MEM_REG slots):
		 * a large buffer then needs an iovec per page. */
		for (uint64_t off = 0; off < fm.size; off += FRAG) {
			uint64_t a = (uint64_t)(uintptr_t)fm.base + off;
			struct vhu_mem_region r = { FE_MEM_GPA_BASE + off, FRAG, a, off };
			int fd = dup(fm.fd);
			ASSERT_OK(mem_add(&dm, &r, &fd, NULL));
		}
	} else {
		struct vhu_mem_region r = { FE_MEM_GPA_BASE, fm.size, (uint64_t)(uintptr_t)fm.base,
					    0 };
		int fd = dup(fm.fd);
		ASSERT_OK(mem_set_table(&dm, &r, 1, &fd, NULL));
	}
	ASSERT_OK(drvq_init(&dq, 0, QSZ, packed, &fm, NULL));
	region = calloc(1, inflight_region_size(QSZ));
	ASSERT_TRUE(region != NULL);
	return 0;
}

static int setup(bool packed)
{
	return setup_mem(packed, false);
}

/* IN_ORDER negotiated for the next device_start(). */
static bool start_in_order;

/* A device on the ring, as a back-end process starting (or restarting) would be. */
static int device_start(bool packed, uint32_t base)
{
	inflight_reset(&vq);
	virtq_init(&vq, 0, &dm, NULL);
	vq.num = QSZ;
	vq.addr.desc = (uint64_t)(uintptr_t)dq.desc_area;
	vq.addr.avail = (uint64_t)(uintptr_t)dq.driver_area;
	vq.addr.used = (uint64_t)(uintptr_t)dq.device_area;
	struct vring_base b;
	ASSERT_OK(vring_base_decode(packed, base, &b));
	vq.base_avail = b.avail;
	vq.base_avail_wrap = b.avail_wrap;
	vq.base_used = b.used;
	vq.base_used_wrap = b.used_wrap;
	vq.inf = region;
	return virtq_map(&vq, packed, false, start_in_order);
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
	ASSERT_EQ(inflight_pending(&vq), 2);
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
	ASSERT_EQ(inflight_pending(&vq), 0);
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
	ASSERT_EQ(inflight_pending(&vq), written ? 1 : 2);
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

/* ---- hostile or unusual shapes ---- */

static void *tok_n(unsigned i)
{
	return (void *)(uintptr_t)(i + 1);
}

/* Drains the driver's used ring into got[] (per token). */
static void collect(int *got)
{
	uint32_t len;
	void *tok;
	while ((tok = vhu_drvq_get(&dq, &len)))
		got[(uintptr_t)tok - 1]++;
}

/* The region is read once, at start. Rewriting all of it afterwards (as a front-end thread
 * could) changes nothing the device does: resubmission, pushes and new work stay right, and
 * nothing is written outside the ring (ASan). Before: packed_resubmit() re-read num and the
 * push moved the used position by it, past the ring. */
static int region_rewritten(bool packed)
{
	struct vhu_elem e[4];
	int got[8] = { 0 };

	ASSERT_OK(setup(packed));
	ASSERT_OK(device_start(packed, drvq_base(&dq)));
	for (int i = 0; i < 3; i++)
		ASSERT_OK(add((uint8_t)i));
	for (int i = 0; i < 3; i++)
		ASSERT_EQ(vhu_virtq_pop(&vq, &e[i]), 1);
	vhu_virtq_push(&vq, &e[1], 64);
	vhu_virtq_flush(&vq);
	collect(got);
	ASSERT_OK(device_start(packed, drvq_resume_base(&dq)));
	ASSERT_EQ(inflight_pending(&vq), 2);
	memset(region, 0xff, inflight_region_size(QSZ));
	ASSERT_EQ(vhu_virtq_pop(&vq, &e[0]), 1);
	ASSERT_EQ(tag_of(&e[0]), 0);
	ASSERT_EQ(e[0].ndescs, packed ? 2 : 1);
	memset(region, 0xa5, inflight_region_size(QSZ));
	ASSERT_EQ(vhu_virtq_pop(&vq, &e[1]), 1);
	ASSERT_EQ(tag_of(&e[1]), 2);
	vhu_virtq_push(&vq, &e[1], 64);
	vhu_virtq_push(&vq, &e[0], 64);
	vhu_virtq_flush(&vq);
	ASSERT_OK(add(3));
	memset(region, 0x00, inflight_region_size(QSZ));
	ASSERT_EQ(vhu_virtq_pop(&vq, &e[2]), 1);
	ASSERT_EQ(tag_of(&e[2]), 3);
	vhu_virtq_push(&vq, &e[2], 64);
	vhu_virtq_flush(&vq);
	collect(got);
	for (int i = 0; i < 4; i++)
		ASSERT_EQ(got[i], 1);
	ASSERT_TRUE(!vhu_drvq_broken(&dq));
	ASSERT_TRUE(!vq.broken);
	return 0;
}

static int split_region_rewritten(void)
{
	return region_rewritten(false);
}

static int packed_region_rewritten(void)
{
	return region_rewritten(true);
}

/* A region that does not describe a state the ring can be in is refused at start, never
 * half used: version, used indices, descriptor counts, chains, buffer ids. */
static int packed_region_refused(void)
{
	struct vhu_elem e[2];
	struct inflight_packed *r;

	ASSERT_OK(setup(true));
	r = region;
	ASSERT_OK(device_start(true, drvq_base(&dq)));
	ASSERT_OK(add(0));
	ASSERT_OK(add(1));
	ASSERT_EQ(vhu_virtq_pop(&vq, &e[0]), 1);
	ASSERT_EQ(vhu_virtq_pop(&vq, &e[1]), 1);
	uint32_t base = drvq_resume_base(&dq);
	uint8_t *save = malloc(inflight_region_size(QSZ));
	ASSERT_TRUE(save != NULL);
	memcpy(save, region, inflight_region_size(QSZ));
	uint16_t h0 = r->desc[0].inflight ? 0 : 2; /* first head entry in flight */
	ASSERT_EQ(r->desc[h0].inflight, 1);
	struct {
		const char *what;
		size_t off;
		uint64_t val;
		unsigned size;
	} bad[] = {
		{ "version", offsetof(struct inflight_packed, version), 2, 2 },
		{ "desc_num", offsetof(struct inflight_packed, desc_num), QSZ * 2, 2 },
		{ "old_used_idx", offsetof(struct inflight_packed, old_used_idx), QSZ, 2 },
		{ "used_idx", offsetof(struct inflight_packed, used_idx), 0xffff, 2 },
		{ "num 0", offsetof(struct inflight_packed, desc[h0].num), 0, 2 },
		{ "num huge", offsetof(struct inflight_packed, desc[h0].num), 0xffff, 2 },
		{ "last", offsetof(struct inflight_packed, desc[h0].last), 9, 2 },
		{ "next", offsetof(struct inflight_packed, desc[h0].next), 0xfff0, 2 },
		{ "id", offsetof(struct inflight_packed, desc[h0 + 1].id), QSZ, 2 },
	};
	int ret = 0;
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]) && !ret; i++) {
		memcpy(region, save, inflight_region_size(QSZ));
		memcpy((uint8_t *)region + bad[i].off, &bad[i].val, bad[i].size);
		if (device_start(true, base) != -EINVAL) {
			T_FAILF("region with a bad %s was accepted", bad[i].what);
			ret = -1;
		}
	}
	/* Two in-flight requests naming one buffer id. */
	memcpy(region, save, inflight_region_size(QSZ));
	uint16_t other = (uint16_t)(h0 == 0 ? 2 : 0);
	r->desc[other + 1].id = r->desc[h0 + 1].id;
	if (!ret && device_start(true, base) != -EINVAL) {
		T_FAILF("two in-flight requests with one id were accepted");
		ret = -1;
	}
	/* The unchanged region still resubmits both. */
	memcpy(region, save, inflight_region_size(QSZ));
	free(save);
	if (ret)
		return ret;
	ASSERT_OK(device_start(true, base));
	ASSERT_EQ(inflight_pending(&vq), 2);
	return 0;
}

/* A ring restarted without tracking (another size than the buffer was made for: the back-end
 * drops vq->inf) must forget the previous start's resubmit list. Before: NULL dereference. */
static int restart_without_region(bool packed)
{
	struct vhu_elem e[2];

	ASSERT_OK(setup(packed));
	ASSERT_OK(device_start(packed, drvq_base(&dq)));
	ASSERT_OK(add(0));
	ASSERT_OK(add(1));
	ASSERT_EQ(vhu_virtq_pop(&vq, &e[0]), 1);
	ASSERT_EQ(vhu_virtq_pop(&vq, &e[1]), 1);
	uint32_t base = drvq_resume_base(&dq);
	ASSERT_OK(device_start(packed, base));
	ASSERT_EQ(inflight_pending(&vq), 2);
	/* What vq_try_start() does for a ring whose size does not match the buffer. */
	vq.inf = NULL;
	struct vring_base b;
	ASSERT_OK(vring_base_decode(packed, base, &b));
	vq.base_avail = b.avail;
	ASSERT_OK(virtq_map(&vq, packed, false, false));
	ASSERT_EQ(inflight_pending(&vq), 0);
	/* Untracked, the ring resumes at the used position: the two buffers come from it. */
	ASSERT_EQ(vhu_virtq_pop(&vq, &e[0]), 1);
	ASSERT_EQ(tag_of(&e[0]), 0);
	ASSERT_EQ(vhu_virtq_pop(&vq, &e[1]), 1);
	ASSERT_EQ(tag_of(&e[1]), 1);
	ASSERT_EQ(vhu_virtq_pop(&vq, &e[1]), 0);
	ASSERT_TRUE(!vq.broken);
	return 0;
}

static int split_restart_without_region(void)
{
	return restart_without_region(false);
}

static int packed_restart_without_region(void)
{
	return restart_without_region(true);
}

/* An element the device cannot hold (-ENOBUFS: more than VHU_ELEM_MAX_IOV iovecs) is still
 * consumed and pushed, so it is tracked like any other. Before (packed): it was not recorded,
 * its push freed the stale entry of an earlier request with the same id a second time, and a
 * restart skipped a request in flight and ran one that had completed. */
static int enobufs_tracked(bool packed)
{
	struct vhu_elem e[3];
	int got[8] = { 0 };

	ASSERT_OK(setup_mem(packed, true));
	ASSERT_OK(device_start(packed, drvq_base(&dq)));
	/* X: taken and completed (buffer id 0). */
	ASSERT_OK(add(0));
	ASSERT_EQ(vhu_virtq_pop(&vq, &e[0]), 1);
	vhu_virtq_push(&vq, &e[0], 64);
	vhu_virtq_flush(&vq);
	collect(got);
	ASSERT_EQ(got[0], 1);
	/* B: 8 descriptors of 40 KiB, each over 10 regions: 80 iovecs. Reuses id 0. */
	struct iovec big[8];
	for (int i = 0; i < 8; i++) {
		big[i].iov_base = fe_mem_alloc(&fm, 40 << 10, 4096);
		big[i].iov_len = 40 << 10;
		ASSERT_TRUE(big[i].iov_base != NULL);
	}
	ASSERT_OK(vhu_drvq_add(&dq, big, 8, 0, tok_n(1)));
	ASSERT_EQ(vhu_virtq_pop(&vq, &e[0]), -ENOBUFS);
	vhu_virtq_push(&vq, &e[0], 0);
	vhu_virtq_flush(&vq);
	collect(got);
	ASSERT_EQ(got[1], 1);
	/* Y and Z in flight, Z completes, crash: exactly Y comes back. */
	ASSERT_OK(add(2));
	ASSERT_OK(add(3));
	ASSERT_EQ(vhu_virtq_pop(&vq, &e[1]), 1);
	ASSERT_EQ(vhu_virtq_pop(&vq, &e[2]), 1);
	vhu_virtq_push(&vq, &e[2], 64);
	vhu_virtq_flush(&vq);
	collect(got);
	ASSERT_OK(device_start(packed, drvq_resume_base(&dq)));
	ASSERT_EQ(inflight_pending(&vq), 1);
	ASSERT_EQ(vhu_virtq_pop(&vq, &e[0]), 1);
	ASSERT_EQ(tag_of(&e[0]), 2);
	ASSERT_EQ(vhu_virtq_pop(&vq, &e[1]), 0);
	vhu_virtq_push(&vq, &e[0], 64);
	vhu_virtq_flush(&vq);
	collect(got);
	for (int i = 0; i < 4; i++)
		ASSERT_EQ(got[i], 1);
	ASSERT_TRUE(!vhu_drvq_broken(&dq));
	ASSERT_EQ(vhu_drvq_num_free(&dq), QSZ);
	return 0;
}

static int split_enobufs_tracked(void)
{
	return enobufs_tracked(false);
}

static int packed_enobufs_tracked(void)
{
	return enobufs_tracked(true);
}

/* A driver that makes a buffer available again while it is in flight breaks the ring (it
 * would otherwise be tracked twice and completed once). */
static int split_duplicate_head(void)
{
	struct vhu_elem e[2];

	ASSERT_OK(setup(false));
	ASSERT_OK(device_start(false, drvq_base(&dq)));
	ASSERT_OK(add(0));
	ASSERT_EQ(vhu_virtq_pop(&vq, &e[0]), 1);
	struct vring_avail *av = dq.split.avail;
	uint16_t idx = av->idx;
	av->ring[idx % QSZ] = (uint16_t)e[0].id;
	store_release16(&av->idx, (uint16_t)(idx + 1));
	ASSERT_EQ(vhu_virtq_pop(&vq, &e[1]), -EIO);
	ASSERT_TRUE(vq.broken);
	return 0;
}

static int packed_duplicate_id(void)
{
	struct vhu_elem e[2];

	ASSERT_OK(setup(true));
	ASSERT_OK(device_start(true, drvq_base(&dq)));
	ASSERT_OK(add(0));
	ASSERT_EQ(vhu_virtq_pop(&vq, &e[0]), 1);
	/* The next slot, made available by hand with the id still in flight. */
	struct vring_packed_desc *d = &dq.pk.desc[dq.avail_idx];
	d->addr = (uint64_t)(uintptr_t)fe_mem_alloc(&fm, 64, 64);
	d->len = 64;
	d->id = e[0].id;
	store_release16(&d->flags, dq.avail_wrap ? 1u << VRING_PACKED_DESC_F_AVAIL
						 : 1u << VRING_PACKED_DESC_F_USED);
	ASSERT_EQ(vhu_virtq_pop(&vq, &e[1]), -EIO);
	ASSERT_TRUE(vq.broken);
	return 0;
}

/* Packed: a crash with the whole ring in flight (one descriptor per buffer) resumes one wrap
 * later at the used position. Before: refused as "descriptors in flight >= ring size". */
static int packed_full_ring(void)
{
	struct vhu_elem e;
	int got[QSZ] = { 0 };

	ASSERT_OK(setup(true));
	ASSERT_OK(device_start(true, drvq_base(&dq)));
	for (unsigned i = 0; i < QSZ; i++) {
		struct iovec iov = { fe_mem_alloc(&fm, 64, 64), 64 };
		memset(iov.iov_base, (int)i, 64);
		ASSERT_OK(vhu_drvq_add(&dq, &iov, 1, 0, tok_n(i)));
	}
	for (unsigned i = 0; i < QSZ; i++)
		ASSERT_EQ(vhu_virtq_pop(&vq, &e), 1);
	ASSERT_EQ(vhu_virtq_pop(&vq, &e), 0);
	ASSERT_OK(device_start(true, drvq_resume_base(&dq)));
	ASSERT_EQ(inflight_pending(&vq), QSZ);
	for (unsigned i = 0; i < QSZ; i++) {
		ASSERT_EQ(vhu_virtq_pop(&vq, &e), 1);
		ASSERT_EQ(tag_of(&e), i);
		vhu_virtq_push(&vq, &e, 0);
	}
	vhu_virtq_flush(&vq);
	collect(got);
	for (unsigned i = 0; i < QSZ; i++)
		ASSERT_EQ(got[i], 1);
	ASSERT_TRUE(!vhu_drvq_broken(&dq));
	return 0;
}

/* A rewind would take tracked buffers a second time: refused by breaking the ring. */
static int rewind_refused(void)
{
	struct vhu_elem e;

	ASSERT_OK(setup(false));
	ASSERT_OK(device_start(false, drvq_base(&dq)));
	ASSERT_OK(add(0));
	uint32_t c = vhu_virtq_cursor(&vq);
	ASSERT_EQ(vhu_virtq_pop(&vq, &e), 1);
	vhu_virtq_rewind(&vq, c);
	ASSERT_TRUE(vq.broken);
	return 0;
}

/* IN_ORDER does not batch a tracked ring's used entries: every device-readable buffer pushed
 * is recorded as completed, and a restart resubmits none of them. */
static int in_order_tracked(bool packed)
{
	struct vhu_elem e[3];
	uint32_t len;

	ASSERT_OK(setup(packed));
	drvq_set_features(&dq, false, true, false);
	start_in_order = true;
	int r = device_start(packed, drvq_base(&dq));
	start_in_order = false;
	ASSERT_OK(r);
	for (int i = 0; i < 3; i++) {
		struct iovec iov = { fe_mem_alloc(&fm, 64, 64), 64 };
		memset(iov.iov_base, i, 64);
		ASSERT_OK(vhu_drvq_add(&dq, &iov, 1, 0, (void *)(uintptr_t)(i + 1)));
	}
	for (int i = 0; i < 3; i++)
		ASSERT_EQ(vhu_virtq_pop(&vq, &e[i]), 1);
	for (int i = 0; i < 3; i++)
		vhu_virtq_push(&vq, &e[i], 0);
	vhu_virtq_flush(&vq);
	for (int i = 0; i < 3; i++)
		ASSERT_EQ((uintptr_t)vhu_drvq_get(&dq, &len), i + 1);
	ASSERT_OK(device_start(packed, drvq_resume_base(&dq)));
	ASSERT_EQ(inflight_pending(&vq), 0);
	ASSERT_EQ(vhu_virtq_pop(&vq, &e[0]), 0);
	return 0;
}

static int split_in_order_tracked(void)
{
	return in_order_tracked(false);
}

static int packed_in_order_tracked(void)
{
	return in_order_tracked(true);
}

int main(void)
{
	RUN(split_crash);
	RUN(packed_crash);
	RUN(packed_push_rolled_back);
	RUN(packed_push_committed);
	RUN(split_region_rewritten);
	RUN(packed_region_rewritten);
	RUN(packed_region_refused);
	RUN(split_restart_without_region);
	RUN(packed_restart_without_region);
	RUN(split_enobufs_tracked);
	RUN(packed_enobufs_tracked);
	RUN(split_duplicate_head);
	RUN(packed_duplicate_id);
	RUN(packed_full_ring);
	RUN(rewind_refused);
	RUN(split_in_order_tracked);
	RUN(packed_in_order_tracked);
	T_MAIN_END();
}
