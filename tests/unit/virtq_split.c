/* SPDX-License-Identifier: MIT */
/* Split ring, device half: chains, indirect tables, used ring, notifications, rewind,
 * and the broken flag. The test plays the driver by writing the ring by hand. */
#include <errno.h>

#include "t.h"
#include "ring.h"

T_DEFINE;

static struct vring_desc *D;
static struct vring_avail *A;
static struct vring_used *U;

static void setup(bool event_idx)
{
	ring_setup(false, event_idx);
	D = (void *)(g + DESC_OFF);
	A = (void *)(g + AVAIL_OFF);
	U = (void *)(g + USED_OFF);
}

static void publish(uint16_t head)
{
	A->ring[A->idx % vq.num] = head;
	__atomic_store_n(&A->idx, (uint16_t)(A->idx + 1), __ATOMIC_RELEASE);
}

static int chain(void)
{
	struct vhu_elem e;

	setup(false);
	ASSERT_EQ(vhu_virtq_pop(&vq, &e), 0);
	D[3] = (struct vring_desc){ gpa(BUF_OFF), 10, VRING_DESC_F_NEXT, 7 };
	D[7] = (struct vring_desc){ gpa(BUF_OFF + 100), 20, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE,
				    1 };
	D[1] = (struct vring_desc){ gpa(BUF_OFF + 200), 30, VRING_DESC_F_WRITE, 0 };
	publish(3);
	ASSERT_EQ(vhu_virtq_pop(&vq, &e), 1);
	ASSERT_EQ(e.id, 3);
	ASSERT_EQ(e.out_num, 1);
	ASSERT_EQ(e.in_num, 2);
	ASSERT_EQ(e.out_len, 10);
	ASSERT_EQ(e.in_len, 50);
	g[BUF_OFF] = 0x5a;
	g[BUF_OFF + 200] = 0xa5;
	ASSERT_EQ(*(uint8_t *)e.iov[0].iov_base, 0x5a);
	ASSERT_EQ(*(uint8_t *)e.iov[2].iov_base, 0xa5);
	ASSERT_EQ(vhu_virtq_pop(&vq, &e), 0);
	vhu_virtq_push(&vq, &e, 45);
	ASSERT_EQ(U->idx, 0); /* not visible before flush */
	vhu_virtq_flush(&vq);
	ASSERT_EQ(U->idx, 1);
	ASSERT_EQ(U->ring[0].id, 3);
	ASSERT_EQ(U->ring[0].len, 45);
	ASSERT_TRUE(called());
	/* A written length beyond the writable bytes is clamped. */
	publish(3);
	ASSERT_EQ(vhu_virtq_pop(&vq, &e), 1);
	vhu_virtq_push(&vq, &e, 1000);
	vhu_virtq_flush(&vq);
	ASSERT_EQ(U->ring[1].len, 50);
	return 0;
}

static int indirect(void)
{
	struct vhu_elem e;
	struct vring_desc *t = (void *)(g + BUF_OFF + 0x1000);

	setup(false);
	t[0] = (struct vring_desc){ gpa(BUF_OFF), 12, VRING_DESC_F_NEXT, 2 };
	t[2] = (struct vring_desc){ gpa(BUF_OFF + 64), 100, VRING_DESC_F_WRITE, 0 };
	D[0] = (struct vring_desc){ gpa(BUF_OFF + 0x1000), 3 * 16, VRING_DESC_F_INDIRECT, 0 };
	publish(0);
	ASSERT_EQ(vhu_virtq_pop(&vq, &e), 1);
	ASSERT_EQ(e.out_len, 12);
	ASSERT_EQ(e.in_len, 100);
	return 0;
}

/* An indirect table across two regions that are contiguous in guest-physical space is one
 * table (the walker reads a copy). Before: the ring broke, while a plain descriptor across the
 * same boundary worked. */
static int indirect_across_regions(void)
{
	struct vhu_elem e;
	uint64_t cut = BUF_OFF + 0x3000;
	struct vring_desc *t = (void *)(g + cut - 16);

	setup(false);
	ASSERT_OK(ring_split_memory(cut, false));
	t[0] = (struct vring_desc){ gpa(BUF_OFF), 12, VRING_DESC_F_NEXT, 1 };
	t[1] = (struct vring_desc){ gpa(cut - 50), 100, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 2 };
	t[2] = (struct vring_desc){ gpa(BUF_OFF + 64), 8, VRING_DESC_F_WRITE, 0 };
	D[0] = (struct vring_desc){ gpa(cut - 16), 3 * 16, VRING_DESC_F_INDIRECT, 0 };
	publish(0);
	int r = vhu_virtq_pop(&vq, &e);
	ring_split_memory(0, false);
	ASSERT_EQ(r, 1);
	ASSERT_EQ(e.out_len, 12);
	ASSERT_EQ(e.in_len, 108);
	ASSERT_EQ(e.in_num, 3); /* the 100 bytes cross the cut: two iovecs */
	return 0;
}

static int notify_flags(void)
{
	struct vhu_elem e;

	setup(false);
	D[0] = (struct vring_desc){ gpa(BUF_OFF), 10, 0, 0 };
	A->flags = VRING_AVAIL_F_NO_INTERRUPT;
	publish(0);
	ASSERT_EQ(vhu_virtq_pop(&vq, &e), 1);
	vhu_virtq_push(&vq, &e, 0);
	vhu_virtq_flush(&vq);
	ASSERT_TRUE(!called());
	vhu_virtq_disable_notify(&vq);
	ASSERT_EQ(U->flags, VRING_USED_F_NO_NOTIFY);
	ASSERT_TRUE(!vhu_virtq_enable_notify(&vq));
	ASSERT_EQ(U->flags, 0);
	publish(0);
	ASSERT_TRUE(vhu_virtq_enable_notify(&vq)); /* arrived meanwhile */
	return 0;
}

static int event_idx(void)
{
	struct vhu_elem e;
	uint16_t *used_event = &A->ring[QN];
	uint16_t *avail_event = (uint16_t *)&U->ring[QN];

	setup(true);
	D[0] = (struct vring_desc){ gpa(BUF_OFF), 10, 0, 0 };
	*used_event = 1; /* notify when used idx passes 1 */
	for (int i = 0; i < 3; i++) {
		publish(0);
		ASSERT_EQ(vhu_virtq_pop(&vq, &e), 1);
		vhu_virtq_push(&vq, &e, 0);
		vhu_virtq_flush(&vq);
		/* First flush always notifies; then only when crossing used_event. */
		bool want = i == 0 || i == 1;
		ASSERT_EQ(called(), want);
	}
	ASSERT_TRUE(!vhu_virtq_enable_notify(&vq));
	ASSERT_EQ(*avail_event, 3);
	return 0;
}

static int rewind_cursor(void)
{
	struct vhu_elem e;

	setup(false);
	D[0] = (struct vring_desc){ gpa(BUF_OFF), 10, VRING_DESC_F_WRITE, 0 };
	D[1] = (struct vring_desc){ gpa(BUF_OFF), 10, VRING_DESC_F_WRITE, 0 };
	publish(0);
	publish(1);
	uint32_t c = vhu_virtq_cursor(&vq);
	ASSERT_EQ(vhu_virtq_pop(&vq, &e), 1);
	ASSERT_EQ(vhu_virtq_pop(&vq, &e), 1);
	vhu_virtq_rewind(&vq, c);
	ASSERT_EQ(vhu_virtq_pop(&vq, &e), 1);
	ASSERT_EQ(e.id, 0);
	return 0;
}

static int too_many_iov(void)
{
	struct vhu_elem e;

	setup(false);
	for (int i = 0; i < QN; i++)
		D[i] = (struct vring_desc){ gpa(BUF_OFF), 1, VRING_DESC_F_NEXT, (uint16_t)(i + 1) };
	D[QN - 2].flags = 0;
	/* 15 descriptors fit; a 70-entry indirect table does not. */
	struct vring_desc *t = (void *)(g + BUF_OFF + 0x2000);
	for (int i = 0; i < 70; i++)
		t[i] = (struct vring_desc){ gpa(BUF_OFF), 1, i < 69 ? VRING_DESC_F_NEXT : 0,
					    (uint16_t)(i + 1) };
	D[QN - 1] = (struct vring_desc){ gpa(BUF_OFF + 0x2000), 70 * 16, VRING_DESC_F_INDIRECT, 0 };
	publish(0);
	ASSERT_EQ(vhu_virtq_pop(&vq, &e), 1);
	ASSERT_EQ(e.out_num, QN - 1);
	ASSERT_EQ(e.out_len, QN - 1);
	publish(QN - 1);
	ASSERT_EQ(vhu_virtq_pop(&vq, &e), -ENOBUFS);
	ASSERT_EQ(e.id, QN - 1); /* consumed: push it back empty */
	ASSERT_TRUE(!vhu_virtq_broken(&vq));
	return 0;
}

/* An avail index more than a ring ahead breaks the ring also when it was read by
 * enable_notify (the copy it keeps is checked before the pop uses it). */
static int avail_ahead_via_notify(void)
{
	struct vhu_elem e;

	setup(false);
	__atomic_store_n(&A->idx, (uint16_t)(QN + 5), __ATOMIC_RELEASE);
	ASSERT_TRUE(!vhu_virtq_enable_notify(&vq));
	ASSERT_EQ(vhu_virtq_pop(&vq, &e), -EIO);
	ASSERT_TRUE(vhu_virtq_broken(&vq));
	return 0;
}

static int broken_sticks(void)
{
	struct vhu_elem e;

	setup(false);
	D[0] = (struct vring_desc){ gpa(BUF_OFF), 10, VRING_DESC_F_NEXT, 0 }; /* loops on itself */
	publish(0);
	ASSERT_EQ(vhu_virtq_pop(&vq, &e), -EIO);
	ASSERT_TRUE(vhu_virtq_broken(&vq));
	D[0].flags = 0;
	publish(0);
	ASSERT_EQ(vhu_virtq_pop(&vq, &e), -EIO); /* never touched again */
	vhu_virtq_flush(&vq);
	ASSERT_EQ(U->idx, 0);
	return 0;
}

static int zero_len_and_span(void)
{
	struct vhu_elem e;

	setup(false);
	D[0] = (struct vring_desc){ gpa(BUF_OFF), 0, VRING_DESC_F_NEXT, 1 };
	D[1] = (struct vring_desc){ gpa(MEMSZ - 8), 8, 0, 0 };
	publish(0);
	ASSERT_EQ(vhu_virtq_pop(&vq, &e), 1);
	ASSERT_EQ(e.out_num, 1);
	D[1].len = 9; /* one byte past the end of memory */
	publish(0);
	ASSERT_EQ(vhu_virtq_pop(&vq, &e), -EIO);
	return 0;
}

/* ---- IN_ORDER batches ("In-order use of descriptors") ---- */

#define NO_ID 0xffffffffu /* a used entry the device did not write */

/* A 64-entry ring with IN_ORDER, every used entry marked unwritten, and a dirty log of the
 * ring's writes whose page 0 holds the used index and entries 0-6 and page 1 the rest
 * (log_used is a guest address of the front-end's choosing). */
static uint8_t io_bits[8];
static struct dirty_log io_log = { .bits = io_bits, .size = sizeof(io_bits), .guard = -1 };

static void in_order_setup(void)
{
	ring_num = 64;
	ring_in_order = true;
	setup(false);
	ring_num = QN;
	ring_in_order = false;
	for (unsigned i = 0; i < 64; i++)
		U->ring[i] = (struct vring_used_elem){ NO_ID, NO_ID };
	memset(io_bits, 0, sizeof(io_bits));
	vq.dlog = &io_log;
	vq.log_used = 0x1000 - 0x40;
	vq.logging = RING_LOG_RING;
}

/* n one-descriptor buffers at heads first, first + 1, ... (mod 64), device-readable (tx) or
 * device-writable (rx), made available and popped into e[]. */
static int avail_pop(uint16_t first, unsigned n, bool writable, struct vhu_elem *e)
{
	for (unsigned i = 0; i < n; i++) {
		uint16_t h = (uint16_t)((first + i) % 64);
		D[h] = (struct vring_desc){ gpa(BUF_OFF + h * 64u), 64,
					    writable ? VRING_DESC_F_WRITE : 0, 0 };
		publish(h);
	}
	for (unsigned i = 0; i < n; i++)
		ASSERT_EQ(vhu_virtq_pop(&vq, &e[i]), 1);
	return 0;
}

/* Used entries [from, to) (mod 64) were not written. */
static int unwritten(unsigned from, unsigned to)
{
	for (unsigned i = from; i < to; i++)
		ASSERT_EQ(U->ring[i % 64].id, NO_ID);
	return 0;
}

/* Bursts of 32 tx buffers: one used entry each, at the burst's first slot, naming its last
 * buffer with length 0, and the used index moved by 32; over a wrap of the 64-entry ring. The
 * dirty log has the one entry and the index, not the entries skipped. */
static int in_order_tx(void)
{
	struct vhu_elem e[32];

	in_order_setup();
	for (unsigned round = 0; round < 3; round++) {
		uint16_t first = (uint16_t)(32 * round + 5), slot = (uint16_t)(32 * round % 64);
		ASSERT_OK(avail_pop(first, 32, false, e));
		for (unsigned i = 0; i < 32; i++)
			vhu_virtq_push(&vq, &e[i], 0);
		ASSERT_EQ(U->idx, 32 * round); /* nothing before the flush */
		ASSERT_OK(unwritten(0, 64));
		vhu_virtq_flush(&vq);
		ASSERT_EQ(U->idx, 32 * (round + 1));
		ASSERT_EQ(U->ring[slot].id, (first + 31) % 64);
		ASSERT_EQ(U->ring[slot].len, 0);
		ASSERT_OK(unwritten(slot + 1u, slot + 32u));
		/* Round 0: the entry and the index, page 0; round 1: the entry, page 1. */
		if (round < 2)
			ASSERT_EQ(io_bits[0], round == 0 ? 1 : 3);
		io_bits[0] = 0;
		U->ring[slot] = (struct vring_used_elem){ NO_ID, NO_ID };
	}
	ASSERT_TRUE(called());
	return 0;
}

/* A writable buffer inside a run of tx buffers ends the batch and has its own entry with its
 * length (also when nothing was written into it); the tx buffers after it start a new batch.
 * Pops undone by a rewind in between change nothing. */
static int in_order_mixed(void)
{
	struct vhu_elem e[12], x[2];

	in_order_setup();
	ASSERT_OK(avail_pop(0, 5, false, e));
	for (unsigned i = 0; i < 5; i++)
		vhu_virtq_push(&vq, &e[i], 0);
	uint32_t c = vhu_virtq_cursor(&vq);
	ASSERT_OK(avail_pop(5, 2, true, x));
	vhu_virtq_rewind(&vq, c);
	ASSERT_EQ(vhu_virtq_pop(&vq, &e[5]), 1);
	ASSERT_EQ(e[5].id, 5);
	ASSERT_EQ(vhu_virtq_pop(&vq, &e[6]), 1);
	for (unsigned i = 7; i < 10; i++) {
		D[i] = (struct vring_desc){ gpa(BUF_OFF + i * 64u), 64, 0, 0 };
		publish((uint16_t)i);
	}
	for (unsigned i = 7; i < 10; i++)
		ASSERT_EQ(vhu_virtq_pop(&vq, &e[i]), 1);
	/* 5 and 6 are writable: 5 written into, 6 not, each its own entry. */
	vhu_virtq_push(&vq, &e[5], 7);
	vhu_virtq_push(&vq, &e[6], 0);
	for (unsigned i = 7; i < 10; i++)
		vhu_virtq_push(&vq, &e[i], 0);
	vhu_virtq_flush(&vq);
	ASSERT_EQ(U->idx, 10);
	ASSERT_EQ(U->ring[0].id, 4);
	ASSERT_EQ(U->ring[0].len, 0);
	ASSERT_OK(unwritten(1, 5));
	ASSERT_EQ(U->ring[5].id, 5);
	ASSERT_EQ(U->ring[5].len, 7);
	ASSERT_EQ(U->ring[6].id, 6);
	ASSERT_EQ(U->ring[6].len, 0);
	ASSERT_EQ(U->ring[7].id, 9);
	ASSERT_EQ(U->ring[7].len, 0);
	ASSERT_OK(unwritten(8, 64));
	return 0;
}

/* The ring stops with a batch pushed and not flushed: virtq_save() writes its entry and the
 * index (a reconnecting back-end takes the index from the ring), and a resumed ring goes on
 * after it. A broken ring publishes nothing. */
static int in_order_save(void)
{
	struct vhu_elem e[3];

	in_order_setup();
	ASSERT_OK(avail_pop(0, 3, false, e));
	for (unsigned i = 0; i < 3; i++)
		vhu_virtq_push(&vq, &e[i], 0);
	ASSERT_EQ(U->idx, 0);
	virtq_save(&vq);
	ASSERT_EQ(U->idx, 3);
	ASSERT_EQ(U->ring[0].id, 2);
	ASSERT_OK(unwritten(1, 64));
	ASSERT_EQ(virtq_base(&vq), 3);
	ASSERT_OK(virtq_map(&vq, false, false, true));
	ASSERT_OK(avail_pop(3, 2, false, e));
	vhu_virtq_push(&vq, &e[0], 0);
	vhu_virtq_push(&vq, &e[1], 0);
	vhu_virtq_flush(&vq);
	ASSERT_EQ(U->idx, 5);
	ASSERT_EQ(U->ring[3].id, 4);
	ASSERT_OK(unwritten(4, 64));
	/* Broken with a batch pending: nothing more reaches the ring. */
	ASSERT_OK(avail_pop(5, 2, false, e));
	vhu_virtq_push(&vq, &e[0], 0);
	vhu_virtq_push(&vq, &e[1], 0);
	D[7] = (struct vring_desc){ gpa(BUF_OFF), 10, VRING_DESC_F_NEXT, 7 }; /* loops */
	publish(7);
	ASSERT_EQ(vhu_virtq_pop(&vq, &e[2]), -EIO);
	vhu_virtq_flush(&vq);
	virtq_save(&vq);
	ASSERT_EQ(U->idx, 5);
	ASSERT_OK(unwritten(4, 64));
	return 0;
}

/* ---- bursts (vhu_virtq_pop_burst, vhu_virtq_push_burst) ---- */

/* Partial bursts, across the ring's end: the elements of single pops, in order; a burst
 * asks no more than the avail index said, and the used ring gets them in order. */
static int burst_partial_wrap(void)
{
	struct vhu_elem e[QN];
	uint32_t w[QN];
	uint16_t want = 0;

	setup(false);
	for (int i = 0; i < QN; i++)
		D[i] = (struct vring_desc){ gpa(BUF_OFF + (uint64_t)i * 64), 64, VRING_DESC_F_WRITE,
					    0 };
	ASSERT_EQ(vhu_virtq_pop_burst(&vq, e, QN), 0);
	for (int round = 0; round < 5; round++) {
		for (int i = 0; i < 11; i++)
			publish((uint16_t)((round * 11 + i) % QN));
		ASSERT_EQ(vhu_virtq_pop_burst(&vq, e, 4), 4);
		ASSERT_EQ(vhu_virtq_pop_burst(&vq, e + 4, QN), 7); /* what was left */
		ASSERT_EQ(vhu_virtq_pop_burst(&vq, e + 11, QN), 0);
		for (int i = 0; i < 11; i++) {
			ASSERT_EQ(e[i].id, (round * 11 + i) % QN);
			ASSERT_EQ(e[i].in_num, 1);
			ASSERT_EQ(e[i].in_len, 64);
			ASSERT_TRUE(e[i].iov[0].iov_base ==
				    mm.regions[0].hva + BUF_OFF + e[i].id * 64);
			w[i] = (uint32_t)i;
		}
		vhu_virtq_push_burst(&vq, e, w, 11);
		vhu_virtq_flush(&vq);
		for (int i = 0; i < 11; i++, want++) {
			ASSERT_EQ(U->ring[want % QN].id, (round * 11 + i) % QN);
			ASSERT_EQ(U->ring[want % QN].len, i);
		}
		ASSERT_EQ(U->idx, want);
	}
	/* written NULL: nothing written into any. */
	publish(0);
	publish(1);
	ASSERT_EQ(vhu_virtq_pop_burst(&vq, e, 2), 2);
	vhu_virtq_push_burst(&vq, e, NULL, 2);
	vhu_virtq_flush(&vq);
	ASSERT_EQ(U->ring[(want + 1) % QN].len, 0);
	return 0;
}

/* A bad chain in the middle of a burst: the elements before it come back, the ring is
 * broken with the single pop's message, and the next burst returns -EIO. */
static int burst_bad_mid(void)
{
	struct vhu_elem e[4];

	setup(false);
	D[0] = (struct vring_desc){ gpa(BUF_OFF), 10, 0, 0 };
	D[1] = (struct vring_desc){ gpa(BUF_OFF), 10, 0, 0 };
	D[2] = (struct vring_desc){ gpa(BUF_OFF), 10, VRING_DESC_F_NEXT, 2 }; /* loops */
	D[3] = (struct vring_desc){ gpa(BUF_OFF), 10, 0, 0 };
	publish(0);
	publish(1);
	publish(2);
	publish(3);
	ASSERT_EQ(vhu_virtq_pop_burst(&vq, e, 4), 2);
	ASSERT_TRUE(vhu_virtq_broken(&vq));
	ASSERT_EQ(vhu_virtq_pop_burst(&vq, e, 4), -EIO);
	ASSERT_EQ(vhu_virtq_pop(&vq, e), -EIO);
	vhu_virtq_push_burst(&vq, e, NULL, 2); /* a broken ring is not touched */
	vhu_virtq_flush(&vq);
	ASSERT_EQ(U->idx, 0);
	/* A head out of range, first in the burst: -EIO at once. */
	setup(false);
	publish(QN + 3);
	ASSERT_EQ(vhu_virtq_pop_burst(&vq, e, 4), -EIO);
	/* An avail index more than a ring ahead: -EIO, nothing popped. */
	setup(false);
	__atomic_store_n(&A->idx, (uint16_t)(QN + 1), __ATOMIC_RELEASE);
	ASSERT_EQ(vhu_virtq_pop_burst(&vq, e, 4), -EIO);
	ASSERT_EQ(vq.st.pops, 0);
	return 0;
}

/* A chain too long after elements ends the burst and stays in the ring; the next burst
 * returns -ENOBUFS for it (consumed, pushed back empty), then the rest. */
static int burst_nobufs(void)
{
	struct vhu_elem e[4];
	struct vring_desc *t = (void *)(g + BUF_OFF + 0x2000);

	setup(false);
	for (int i = 0; i < 70; i++)
		t[i] = (struct vring_desc){ gpa(BUF_OFF), 1, i < 69 ? VRING_DESC_F_NEXT : 0,
					    (uint16_t)(i + 1) };
	D[0] = (struct vring_desc){ gpa(BUF_OFF), 10, 0, 0 };
	D[5] = (struct vring_desc){ gpa(BUF_OFF + 0x2000), 70 * 16, VRING_DESC_F_INDIRECT, 0 };
	D[1] = (struct vring_desc){ gpa(BUF_OFF), 20, 0, 0 };
	publish(0);
	publish(5);
	publish(1);
	ASSERT_EQ(vhu_virtq_pop_burst(&vq, e, 4), 1);
	ASSERT_EQ(e[0].id, 0);
	ASSERT_EQ(vhu_virtq_pop_burst(&vq, e + 1, 3), -ENOBUFS);
	ASSERT_EQ(e[1].id, 5);
	ASSERT_EQ(vhu_virtq_pop_burst(&vq, e + 2, 2), 1);
	ASSERT_EQ(e[2].id, 1);
	ASSERT_EQ(e[2].out_len, 20);
	ASSERT_TRUE(!vhu_virtq_broken(&vq));
	vhu_virtq_push_burst(&vq, e, NULL, 3);
	vhu_virtq_flush(&vq);
	ASSERT_EQ(U->idx, 3);
	ASSERT_EQ(U->ring[1].id, 5);
	return 0;
}

static unsigned nmiss;
static void on_miss(void *opaque, uint64_t iova, unsigned perm)
{
	(void)opaque, (void)iova, (void)perm;
	nmiss++;
}

static int tlb_map(struct iotlb *t, uint64_t iova, uint64_t size, uint64_t uaddr)
{
	struct vhu_iotlb_msg m = {
		.iova = iova, .size = size, .uaddr = uaddr, .perm = 3, .type = IOTLB_UPDATE
	};
	return iotlb_msg(t, &mm, &m);
}

/* ACCESS_PLATFORM: a buffer that misses in the IOTLB in the middle of a burst ends it; it
 * and the buffers after it stay in the ring, popped once the update came. */
static int burst_iotlb_miss(void)
{
	static struct iotlb t;
	static const struct logger quiet;
	struct vhu_elem e[4];

	setup(false);
	iotlb_init(&t, &quiet, on_miss, NULL);
	ASSERT_OK(tlb_map(&t, UVA, BUF_OFF, UVA));		      /* the ring, at IOVA = UVA */
	ASSERT_OK(tlb_map(&t, GPA + BUF_OFF, 0x1000, UVA + BUF_OFF)); /* the first buffers */
	vq.iotlb = &t;
	ASSERT_OK(virtq_map(&vq, false, false, false));
	for (int i = 0; i < 4; i++)
		D[i] = (struct vring_desc){ gpa(BUF_OFF + (i == 2 ? 0x4000 : (uint64_t)i * 64)), 64,
					    0, 0 };
	for (int i = 0; i < 4; i++)
		publish((uint16_t)i);
	ASSERT_EQ(vhu_virtq_pop_burst(&vq, e, 4), 2);
	ASSERT_EQ(nmiss, 1);
	ASSERT_TRUE(vhu_virtq_iotlb_waiting(&vq));
	ASSERT_EQ(vhu_virtq_pop_burst(&vq, e + 2, 2), 0); /* waits for the update */
	ASSERT_OK(tlb_map(&t, GPA + BUF_OFF + 0x4000, 0x1000, UVA + BUF_OFF + 0x4000));
	ASSERT_EQ(vhu_virtq_pop_burst(&vq, e + 2, 2), 2);
	ASSERT_EQ(e[2].id, 2);
	ASSERT_EQ(e[3].id, 3);
	ASSERT_TRUE(e[2].iov[0].iov_base == mm.regions[0].hva + BUF_OFF + 0x4000);
	ASSERT_TRUE(!vhu_virtq_broken(&vq));
	vq.iotlb = NULL;
	return 0;
}

/* The region cache never outlives the table: after SET_MEM_TABLE a descriptor maps into the
 * new mappings, and after a region is removed, into nothing (the ring breaks) instead of
 * through a stale pointer. */
static int region_cache_stale(void)
{
	struct vhu_elem e;
	uint64_t cut = BUF_OFF + 0x3000;

	setup(false);
	D[0] = (struct vring_desc){ gpa(BUF_OFF + 0x4000), 10, 0, 0 };
	publish(0);
	ASSERT_EQ(vhu_virtq_pop(&vq, &e), 1); /* cached: the one region */
	ASSERT_OK(ring_split_memory(cut, false));
	publish(0);
	ASSERT_EQ(vhu_virtq_pop_burst(&vq, &e, 1), 1);
	ASSERT_TRUE(e.iov[0].iov_base == mm.regions[1].hva + 0x1000);
	/* REM_MEM_REG of the region the cache names (the back-end stops and restarts the
	 * rings; here the ring areas, in region 0, do not move). */
	struct vhu_mem_region r = { GPA + cut, MEMSZ - cut, UVA + cut, cut };
	ASSERT_OK(mem_remove(&mm, &r, NULL));
	publish(0);
	ASSERT_EQ(vhu_virtq_pop_burst(&vq, &e, 1), -EIO);
	ring_split_memory(0, false);
	return 0;
}

/* push_burst: an element no pop produced breaks the ring there, and the rest is not pushed.
 */
static int burst_push_bad(void)
{
	struct vhu_elem e[3];

	setup(false);
	D[0] = (struct vring_desc){ gpa(BUF_OFF), 10, 0, 0 };
	publish(0);
	publish(0);
	publish(0);
	ASSERT_EQ(vhu_virtq_pop_burst(&vq, e, 3), 3);
	e[1].ndescs = 0;
	vhu_virtq_push_burst(&vq, e, NULL, 3);
	ASSERT_TRUE(vhu_virtq_broken(&vq));
	ASSERT_EQ(vq.used_idx, 1);
	return 0;
}

int main(void)
{
	RUN(chain);
	RUN(indirect);
	RUN(indirect_across_regions);
	RUN(notify_flags);
	RUN(event_idx);
	RUN(rewind_cursor);
	RUN(too_many_iov);
	RUN(avail_ahead_via_notify);
	RUN(broken_sticks);
	RUN(zero_len_and_span);
	RUN(in_order_tx);
	RUN(in_order_mixed);
	RUN(in_order_save);
	RUN(burst_partial_wrap);
	RUN(burst_bad_mid);
	RUN(burst_nobufs);
	RUN(burst_iotlb_miss);
	RUN(region_cache_stale);
	RUN(burst_push_bad);
	T_MAIN_END();
}
