/* SPDX-License-Identifier: MIT */
/*
 * Shared set-up for the driver-side unit tests (drvq.c, drvq_split.c, drvq_packed.c): a
 * driver queue (src/drvq.c and its layout halves) against the library's own device half,
 * over one shared memfd mapped twice, as two processes would.
 */
#ifndef VHU_TEST_DRVQ_PAIR_H
#define VHU_TEST_DRVQ_PAIR_H

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "../../src/drvq.h"
#include "../../src/virtq_ctl.h"
#include "../../src/util.h"
#include "../../src/vring.h"
#include "../t.h"

#define QSZ 64
/* The ring size setup() uses (QSZ unless a test sets another before calling it). */
static unsigned pair_num = QSZ;

static void print_log(void *opaque, int level, const char *msg)
{
	(void)opaque;
	fprintf(stderr, "  log %s: %s\n", vhu_log_level_name(level), msg);
}

static const struct logger lg = { print_log, NULL, VHU_LOG_WARN, NULL };
static struct fe_mem fm;
static struct mem dm; /* the device's view of the same memory */
static struct vhu_drvq dq;
static struct vhu_virtq vq;

/* A fresh memory area, driver queue and device queue. */
static inline int setup(bool packed, bool event_idx, bool in_order, bool indirect)
{
	static bool mapped;

	if (mapped) {
		drvq_free(&dq);
		fe_mem_free(&fm);
		mem_clear(&dm);
		close_fd(&dq.kick_fd);
		close_fd(&dq.call_fd);
	}
	mapped = true;
	ASSERT_OK(fe_mem_init(&fm, 4u << 20, NULL));
	struct vhu_mem_region r = { FE_MEM_GPA_BASE, fm.size, (uint64_t)(uintptr_t)fm.base, 0 };
	int fd = dup(fm.fd);
	mem_init(&dm);
	ASSERT_OK(mem_set_table(&dm, &r, 1, &fd, NULL));
	ASSERT_OK(drvq_init(&dq, 0, pair_num, packed, &fm, &lg));
	drvq_set_features(&dq, event_idx, in_order, indirect);
	dq.kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	dq.call_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	virtq_init(&vq, 0, &dm, &lg);
	vq.num = pair_num;
	vq.addr.desc = (uint64_t)(uintptr_t)dq.desc_area;
	vq.addr.avail = (uint64_t)(uintptr_t)dq.driver_area;
	vq.addr.used = (uint64_t)(uintptr_t)dq.device_area;
	struct vring_base b;
	ASSERT_OK(vring_base_decode(packed, drvq_base(&dq), &b));
	vq.base_avail = b.avail;
	vq.base_avail_wrap = b.avail_wrap;
	vq.base_used = b.used;
	vq.base_used_wrap = b.used_wrap;
	vq.kick_fd = -1;
	vq.call_fd = dup(dq.call_fd);
	return virtq_map(&vq, packed, event_idx, in_order);
}

/* Device: pops one element, checks its readable bytes are `tag`, fills the writable ones
 * with tag + 1 and pushes it with that length. Returns 1, 0 (empty) or -1. */
static inline int device_echo(void)
{
	struct vhu_elem e;
	int r = vhu_virtq_pop(&vq, &e);

	if (r <= 0)
		return r;
	uint8_t tag = e.out_num ? *(uint8_t *)e.iov[0].iov_base : 0;
	for (unsigned i = 0; i < e.out_num; i++)
		for (size_t j = 0; j < e.iov[i].iov_len; j++)
			if (((uint8_t *)e.iov[i].iov_base)[j] != tag)
				return -1;
	for (unsigned i = e.out_num; i < e.out_num + e.in_num; i++)
		memset(e.iov[i].iov_base, tag + 1, e.iov[i].iov_len);
	vhu_virtq_push(&vq, &e, e.in_len);
	return 1;
}

/* A buffer of `parts` readable and `parts` writable pieces of 100 bytes each. */
static inline int add_buf(uint8_t tag, unsigned parts, void *token)
{
	struct iovec iov[32];

	for (unsigned i = 0; i < 2 * parts; i++) {
		iov[i].iov_base = fe_mem_alloc(&fm, 100, 8);
		iov[i].iov_len = 100;
		if (i < parts)
			memset(iov[i].iov_base, tag, 100);
	}
	return vhu_drvq_add(&dq, iov, parts, parts, token);
}

static inline int shapes(bool packed, bool indirect)
{
	uint32_t len;

	ASSERT_OK(setup(packed, false, false, indirect));
	/* one part, 3 parts, 8 parts (indirect when negotiated) */
	unsigned parts[] = { 1, 3, 8 };
	for (unsigned round = 0; round < 3 * QSZ; round++) {
		unsigned p = parts[round % 3];
		ASSERT_OK(add_buf((uint8_t)round, p, (void *)(uintptr_t)(round + 1)));
		vhu_drvq_kick(&dq);
		ASSERT_EQ(device_echo(), 1);
		vhu_virtq_flush(&vq);
		ASSERT_EQ((uintptr_t)vhu_drvq_get(&dq, &len), round + 1);
		ASSERT_EQ(len, 100 * p);
		ASSERT_TRUE(vhu_drvq_get(&dq, &len) == NULL);
		ASSERT_EQ(vhu_drvq_num_free(&dq), QSZ);
		if (round % QSZ == QSZ - 1)
			fm.brk = 0x100000; /* reuse buffer memory, past the rings */
	}
	/* Fill the ring completely, then drain it. */
	unsigned n = 0;
	while (add_buf(7, 1, (void *)(uintptr_t)(n + 1)) == 0)
		n++;
	ASSERT_EQ(n, indirect ? QSZ : QSZ / 2);
	ASSERT_EQ(add_buf(7, 1, NULL), -ENOSPC);
	while (device_echo() == 1)
		;
	vhu_virtq_flush(&vq);
	for (unsigned i = 0; i < n; i++)
		ASSERT_EQ((uintptr_t)vhu_drvq_get(&dq, &len), i + 1);
	ASSERT_TRUE(!vhu_drvq_broken(&dq));
	return 0;
}

/* The device's first used entry written by hand, as a device that batches (IN_ORDER) or
 * misbehaves would write it: buffer id with len, at position 0 of a fresh ring, covering n
 * buffers (split: "it increments the used idx by the size of the batch"). */
static inline void used_by_hand(bool packed, uint16_t id, uint32_t len, uint16_t n)
{
	if (packed) {
		struct vring_packed_desc *d = &dq.pk.desc[0];
		d->id = id;
		d->len = len;
		store_release16(&d->flags, vring_packed_used_bits(true));
	} else {
		dq.split.used->ring[0].id = id;
		dq.split.used->ring[0].len = len;
		store_release16(&dq.split.used->idx, n);
	}
}

/* IN_ORDER: the device names only the last buffer of a batch; the driver returns all. */
static inline int in_order_batch(bool packed)
{
	struct vhu_elem e[3];
	uint32_t len;

	ASSERT_OK(setup(packed, false, true, false));
	for (int i = 0; i < 3; i++)
		ASSERT_OK(add_buf(1, 1, (void *)(uintptr_t)(i + 1)));
	for (int i = 0; i < 3; i++)
		ASSERT_EQ(vhu_virtq_pop(&vq, &e[i]), 1);
	/* Hand-written batch completion for the third buffer. */
	used_by_hand(packed, e[2].id, 42, 3);
	ASSERT_EQ((uintptr_t)vhu_drvq_get(&dq, &len), 1);
	ASSERT_EQ(len, 0);
	ASSERT_EQ((uintptr_t)vhu_drvq_get(&dq, &len), 2);
	ASSERT_EQ((uintptr_t)vhu_drvq_get(&dq, &len), 3);
	ASSERT_EQ(len, 42);
	ASSERT_TRUE(vhu_drvq_get(&dq, &len) == NULL);
	ASSERT_EQ(vhu_drvq_num_free(&dq), QSZ);
	/* And the ring goes on normally afterwards. */
	ASSERT_OK(add_buf(5, 1, (void *)(uintptr_t)9));
	if (packed) { /* the device's own cursor did not see the hand-written batch */
		vq.used_idx = 6;
	} else {
		vq.used_idx = 3;
	}
	ASSERT_EQ(device_echo(), 1);
	vhu_virtq_flush(&vq);
	ASSERT_EQ((uintptr_t)vhu_drvq_get(&dq, &len), 9);
	ASSERT_EQ(len, 100);
	return 0;
}

/* A device that names a buffer that is not outstanding, or reports too long a length. */
static inline int hostile(bool packed, bool bad_len)
{
	uint32_t len;

	ASSERT_OK(setup(packed, false, false, false));
	ASSERT_OK(add_buf(1, 1, (void *)1));
	if (packed) {
		struct vring_packed_desc *d = &dq.pk.desc[0];
		d->id = bad_len ? d->id : 33;
		d->len = bad_len ? 101 : 0;
		store_release16(&d->flags, (1u << VRING_PACKED_DESC_F_AVAIL) |
						   (1u << VRING_PACKED_DESC_F_USED));
	} else {
		dq.split.used->ring[0].id = bad_len ? 0 : 33;
		dq.split.used->ring[0].len = bad_len ? 101 : 0;
		store_release16(&dq.split.used->idx, 1);
	}
	ASSERT_TRUE(vhu_drvq_get(&dq, &len) == NULL);
	ASSERT_TRUE(vhu_drvq_broken(&dq));
	ASSERT_EQ(add_buf(1, 1, NULL), -EIO);
	return 0;
}

#endif
