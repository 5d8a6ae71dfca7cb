/* SPDX-License-Identifier: MIT */
/* Packed ring, device half: availability against wrap counters across several laps, chains
 * and buffer ids, indirect tables, used flags, event suppression, rewind, broken flag. */
#include <errno.h>

#include "t.h"
#include "ring.h"

T_DEFINE;

#define AV (1u << VRING_PACKED_DESC_F_AVAIL)
#define US (1u << VRING_PACKED_DESC_F_USED)

static struct vring_packed_desc *D;
static struct vring_packed_desc_event *DRV, *DEV;
static uint16_t next;  /* driver's next slot */
static bool wrap;      /* driver's wrap counter */
static uint16_t useen; /* driver's next used slot */
static bool uwrap;

static void setup(bool event_idx)
{
	ring_setup(true, event_idx);
	D = (void *)(g + DESC_OFF);
	DRV = (void *)(g + AVAIL_OFF);
	DEV = (void *)(g + USED_OFF);
	next = 0;
	wrap = uwrap = true;
	useen = 0;
}

/* Makes a buffer of n descriptors available; returns its id. */
static uint16_t add(unsigned n, uint16_t id, bool writable)
{
	uint16_t first = next, ff = 0;
	for (unsigned i = 0; i < n; i++) {
		uint16_t f = (uint16_t)((wrap ? AV : US) | (i + 1 < n ? VRING_DESC_F_NEXT : 0) |
					(writable ? VRING_DESC_F_WRITE : 0));
		D[next].addr = gpa(BUF_OFF + next * 64);
		D[next].len = 64;
		D[next].id = id;
		if (i == 0)
			ff = f;
		else
			D[next].flags = f;
		if (++next == vq.num) {
			next = 0;
			wrap = !wrap;
		}
	}
	__atomic_store_n(&D[first].flags, ff, __ATOMIC_RELEASE);
	return id;
}

/* Driver side: reads the next used buffer. */
static int get_used(uint16_t *id, uint32_t *len, unsigned ndesc)
{
	uint16_t f = __atomic_load_n(&D[useen].flags, __ATOMIC_ACQUIRE);
	if (!!(f & AV) != uwrap || !!(f & US) != uwrap)
		return 0;
	*id = D[useen].id;
	*len = D[useen].len;
	useen = (uint16_t)(useen + ndesc);
	if (useen >= vq.num) {
		useen = (uint16_t)(useen - vq.num);
		uwrap = !uwrap;
	}
	return 1;
}

static int laps(void)
{
	struct vhu_elem e;
	uint16_t id;
	uint32_t len;

	setup(false);
	ASSERT_EQ(vhu_virtq_pop(&vq, &e), 0);
	/* 3-descriptor buffers over many laps of a 16-slot ring (not a multiple of 3). */
	for (unsigned i = 0; i < 50; i++) {
		add(3, (uint16_t)(i % QN), i % 2);
		ASSERT_EQ(vhu_virtq_pop(&vq, &e), 1);
		ASSERT_EQ(e.id, i % QN);
		ASSERT_EQ(e.ndescs, 3);
		ASSERT_EQ(e.out_num + e.in_num, 3);
		ASSERT_EQ(vhu_virtq_pop(&vq, &e), 0);
		vhu_virtq_push(&vq, &e, i % 2 ? 10 : 0);
		vhu_virtq_flush(&vq);
		ASSERT_EQ(get_used(&id, &len, 3), 1);
		ASSERT_EQ(id, i % QN);
		ASSERT_EQ(len, i % 2 ? 10 : 0);
	}
	ASSERT_TRUE(called());
	return 0;
}

static int out_of_order(void)
{
	struct vhu_elem a, b;
	uint16_t id;
	uint32_t len;

	setup(false);
	add(1, 5, true);
	add(2, 9, true);
	ASSERT_EQ(vhu_virtq_pop(&vq, &a), 1);
	ASSERT_EQ(vhu_virtq_pop(&vq, &b), 1);
	/* Completing b first: the used slot 0 carries id 9, then slot 2 carries id 5. */
	vhu_virtq_push(&vq, &b, 1);
	vhu_virtq_push(&vq, &a, 2);
	vhu_virtq_flush(&vq);
	ASSERT_EQ(get_used(&id, &len, 2), 1);
	ASSERT_EQ(id, 9);
	ASSERT_EQ(get_used(&id, &len, 1), 1);
	ASSERT_EQ(id, 5);
	return 0;
}

static int indirect(void)
{
	struct vhu_elem e;
	struct vring_packed_desc *t = (void *)(g + BUF_OFF + 0x2000);

	setup(false);
	t[0] = (struct vring_packed_desc){ gpa(BUF_OFF), 12, 0, 0 };
	t[1] = (struct vring_packed_desc){ gpa(BUF_OFF + 100), 30, 0, VRING_DESC_F_WRITE };
	D[0] = (struct vring_packed_desc){ gpa(BUF_OFF + 0x2000), 32, 7, 0 };
	__atomic_store_n(&D[0].flags, (uint16_t)(AV | VRING_DESC_F_INDIRECT), __ATOMIC_RELEASE);
	ASSERT_EQ(vhu_virtq_pop(&vq, &e), 1);
	ASSERT_EQ(e.id, 7);
	ASSERT_EQ(e.ndescs, 1);
	ASSERT_EQ(e.out_len, 12);
	ASSERT_EQ(e.in_len, 30);
	return 0;
}

/* An indirect table across two regions contiguous in guest-physical space (see split.c). */
static int indirect_across_regions(void)
{
	struct vhu_elem e;
	uint64_t cut = BUF_OFF + 0x3000;
	struct vring_packed_desc *t = (void *)(g + cut - 16);

	setup(false);
	ASSERT_OK(ring_split_memory(cut, true));
	t[0] = (struct vring_packed_desc){ gpa(BUF_OFF), 12, 0, 0 };
	t[1] = (struct vring_packed_desc){ gpa(BUF_OFF + 100), 30, 0, VRING_DESC_F_WRITE };
	D[0] = (struct vring_packed_desc){ gpa(cut - 16), 32, 7, 0 };
	__atomic_store_n(&D[0].flags, (uint16_t)(AV | VRING_DESC_F_INDIRECT), __ATOMIC_RELEASE);
	int r = vhu_virtq_pop(&vq, &e);
	ring_split_memory(0, true);
	ASSERT_EQ(r, 1);
	ASSERT_EQ(e.id, 7);
	ASSERT_EQ(e.out_len, 12);
	ASSERT_EQ(e.in_len, 30);
	return 0;
}

static int suppression(void)
{
	struct vhu_elem e;

	setup(false);
	DRV->flags = VRING_PACKED_EVENT_FLAG_DISABLE;
	add(1, 0, false);
	ASSERT_EQ(vhu_virtq_pop(&vq, &e), 1);
	vhu_virtq_push(&vq, &e, 0);
	vhu_virtq_flush(&vq);
	ASSERT_TRUE(!called());
	vhu_virtq_disable_notify(&vq);
	ASSERT_EQ(DEV->flags, VRING_PACKED_EVENT_FLAG_DISABLE);
	ASSERT_TRUE(!vhu_virtq_enable_notify(&vq));
	ASSERT_EQ(DEV->flags, VRING_PACKED_EVENT_FLAG_ENABLE);
	add(1, 1, false);
	ASSERT_TRUE(vhu_virtq_enable_notify(&vq));
	return 0;
}

static int event_desc(void)
{
	struct vhu_elem e;

	setup(true);
	/* Notify only once the device passes slot 2 of the current lap. */
	DRV->off_wrap = 2 | (1u << 15);
	DRV->flags = VRING_PACKED_EVENT_FLAG_DESC;
	int notified = 0;
	for (int i = 0; i < 4; i++) {
		add(1, (uint16_t)i, false);
		ASSERT_EQ(vhu_virtq_pop(&vq, &e), 1);
		vhu_virtq_push(&vq, &e, 0);
		vhu_virtq_flush(&vq);
		notified += called();
	}
	/* First flush (no history) and the one that crosses slot 2. */
	ASSERT_EQ(notified, 2);
	vhu_virtq_enable_notify(&vq);
	ASSERT_EQ(DEV->flags, VRING_PACKED_EVENT_FLAG_DESC);
	ASSERT_EQ(DEV->off_wrap, 4 | (1u << 15));
	return 0;
}

static int rewind_wrap(void)
{
	struct vhu_elem e;

	setup(false);
	for (int i = 0; i < 14; i++) {
		add(1, 0, true);
		ASSERT_EQ(vhu_virtq_pop(&vq, &e), 1);
	}
	add(2, 1, true);
	add(2, 2, true); /* wraps */
	uint32_t c = vhu_virtq_cursor(&vq);
	ASSERT_EQ(vhu_virtq_pop(&vq, &e), 1);
	ASSERT_EQ(vhu_virtq_pop(&vq, &e), 1);
	ASSERT_EQ(e.id, 2);
	vhu_virtq_rewind(&vq, c);
	ASSERT_EQ(vhu_virtq_pop(&vq, &e), 1);
	ASSERT_EQ(e.id, 1);
	return 0;
}

static int broken(void)
{
	struct vhu_elem e;

	setup(false);
	D[0] = (struct vring_packed_desc){ gpa(BUF_OFF), 8, 99, 0 }; /* id out of range */
	__atomic_store_n(&D[0].flags, (uint16_t)AV, __ATOMIC_RELEASE);
	ASSERT_EQ(vhu_virtq_pop(&vq, &e), -EIO);
	ASSERT_TRUE(vhu_virtq_broken(&vq));
	setup(false);
	/* A chain whose next slot is not available. */
	D[0] = (struct vring_packed_desc){ gpa(BUF_OFF), 8, 0, 0 };
	__atomic_store_n(&D[0].flags, (uint16_t)(AV | VRING_DESC_F_NEXT), __ATOMIC_RELEASE);
	ASSERT_EQ(vhu_virtq_pop(&vq, &e), -EIO);
	return 0;
}

/* Bursts over many laps: partial bursts, chains of several descriptors, the used descriptors
 * in order with the lengths given. */
static int burst_laps(void)
{
	struct vhu_elem e[QN];
	uint32_t w[QN];
	uint16_t id;
	uint32_t len;

	setup(false);
	ASSERT_EQ(vhu_virtq_pop_burst(&vq, e, QN), 0);
	for (unsigned round = 0; round < 20; round++) {
		/* 5 buffers of 1 or 2 descriptors: 7 slots, not a divisor of 16. */
		for (unsigned i = 0; i < 5; i++)
			add(1 + (i % 2), (uint16_t)i, true);
		ASSERT_EQ(vhu_virtq_pop_burst(&vq, e, 2), 2);
		ASSERT_EQ(vhu_virtq_pop_burst(&vq, e + 2, QN), 3);
		ASSERT_EQ(vhu_virtq_pop_burst(&vq, e + 5, QN), 0);
		for (unsigned i = 0; i < 5; i++) {
			ASSERT_EQ(e[i].id, i);
			ASSERT_EQ(e[i].ndescs, 1 + (i % 2));
			w[i] = i + round;
		}
		vhu_virtq_push_burst(&vq, e, w, 5);
		vhu_virtq_flush(&vq);
		for (unsigned i = 0; i < 5; i++) {
			ASSERT_EQ(get_used(&id, &len, 1 + (i % 2)), 1);
			ASSERT_EQ(id, i);
			ASSERT_EQ(len, i + round);
		}
	}
	return 0;
}

/* A bad buffer in the middle of a burst (id out of range): the elements before it, the ring
 * broken, -EIO next; a chain too long after an element stays for the next burst. */
static int burst_bad_nobufs(void)
{
	struct vhu_elem e[4];
	struct vring_packed_desc *t = (void *)(g + BUF_OFF + 0x2000);

	setup(false);
	add(1, 0, false);
	add(1, 1, false);
	uint16_t slot = next;
	add(1, 99, false);
	add(1, 2, false);
	ASSERT_EQ(D[slot].id, 99);
	ASSERT_EQ(vhu_virtq_pop_burst(&vq, e, 4), 2);
	ASSERT_TRUE(vhu_virtq_broken(&vq));
	ASSERT_EQ(vhu_virtq_pop_burst(&vq, e, 4), -EIO);

	setup(false);
	for (int i = 0; i < 70; i++)
		t[i] = (struct vring_packed_desc){ gpa(BUF_OFF), 1, 0, 0 };
	add(1, 0, false);
	D[1] = (struct vring_packed_desc){ gpa(BUF_OFF + 0x2000), 70 * 16, 4, 0 };
	__atomic_store_n(&D[1].flags, (uint16_t)(AV | VRING_DESC_F_INDIRECT), __ATOMIC_RELEASE);
	next = 2;
	add(1, 1, false);
	ASSERT_EQ(vhu_virtq_pop_burst(&vq, e, 4), 1);
	ASSERT_EQ(vhu_virtq_pop_burst(&vq, e + 1, 3), -ENOBUFS);
	ASSERT_EQ(e[1].id, 4);
	ASSERT_EQ(vhu_virtq_pop_burst(&vq, e + 2, 2), 1);
	ASSERT_EQ(e[2].id, 1);
	ASSERT_TRUE(!vhu_virtq_broken(&vq));
	return 0;
}

static int base_state(void)
{
	struct vhu_elem e;

	setup(false);
	for (int i = 0; i < 20; i++) {
		add(1, 0, false);
		ASSERT_EQ(vhu_virtq_pop(&vq, &e), 1);
		vhu_virtq_push(&vq, &e, 0);
	}
	virtq_save(&vq);
	/* 20 slots on a 16-slot ring: index 4, wrap counters flipped to 0. */
	ASSERT_EQ(virtq_base(&vq), 4 | (4u << 16));
	return 0;
}

/* ---- IN_ORDER batches ("In-order use of descriptors") ---- */

/* A ring of num slots with IN_ORDER, and a dirty log of the ring's writes whose page 0 holds
 * descriptor 0 and page 1 the rest (log_used is a guest address of the front-end's choosing). */
static uint8_t io_bits[8];
static struct dirty_log io_log = { .bits = io_bits, .size = sizeof(io_bits), .guard = -1 };

static void in_order_setup(unsigned num)
{
	ring_num = num;
	ring_in_order = true;
	setup(false);
	ring_num = QN;
	ring_in_order = false;
	memset(io_bits, 0, sizeof(io_bits));
	vq.dlog = &io_log;
	vq.log_used = 0x1000 - 16;
	vq.logging = RING_LOG_RING;
}

/* Is slot i still as the driver made it available (not marked used)? */
static bool still_avail(unsigned i)
{
	uint16_t f = __atomic_load_n(&D[i].flags, __ATOMIC_ACQUIRE);
	return !!(f & AV) != !!(f & US);
}

/* 32 one-descriptor tx buffers: one used descriptor over the first, naming the last with
 * length 0, the other 31 slots left as they were; the driver finds it and skips 32 slots. The
 * dirty log has that descriptor only (page 0). */
static int in_order_tx(void)
{
	struct vhu_elem e[32];
	uint16_t id;
	uint32_t len;

	in_order_setup(64);
	for (unsigned i = 0; i < 32; i++)
		add(1, (uint16_t)(40 + i % 24), false);
	for (unsigned i = 0; i < 32; i++)
		ASSERT_EQ(vhu_virtq_pop(&vq, &e[i]), 1);
	for (unsigned i = 0; i < 32; i++)
		vhu_virtq_push(&vq, &e[i], 0);
	ASSERT_TRUE(still_avail(0)); /* nothing before the flush */
	vhu_virtq_flush(&vq);
	ASSERT_EQ(get_used(&id, &len, 32), 1);
	ASSERT_EQ(id, 40 + 31 % 24);
	ASSERT_EQ(len, 0);
	for (unsigned i = 1; i < 32; i++)
		ASSERT_TRUE(still_avail(i));
	ASSERT_EQ(io_bits[0], 1);
	ASSERT_EQ(get_used(&id, &len, 1), 0);
	ASSERT_EQ(vhu_virtq_cursor(&vq), 32 | 1u << 16);
	return 0;
}

/* Many laps of a 37-slot ring (odd size, so batches end anywhere and cross its end with the
 * wrap counter flipping inside them): batches of 1-7 tx buffers of 1-3 descriptors, every
 * third one with a writable buffer in its middle, flushed once each. The driver finds one
 * used descriptor per run of tx buffers, with the last id, at the position that skips all
 * their descriptors, and the writable buffer's own with its length. */
static int in_order_laps(void)
{
	struct vhu_elem e[8];
	uint16_t id;
	uint32_t len;
	unsigned k = 0;

	in_order_setup(37);
	for (unsigned round = 0; round < 200; round++) {
		unsigned n = 1 + round % 7, w = round % 3 == 0 ? n / 2 : 8, span = 0;
		uint16_t last = 0;
		for (unsigned i = 0; i < n; i++, k++)
			add(1 + (k % 3), (uint16_t)(k % 37), i == w);
		for (unsigned i = 0; i < n; i++)
			ASSERT_EQ(vhu_virtq_pop(&vq, &e[i]), 1);
		for (unsigned i = 0; i < n; i++)
			vhu_virtq_push(&vq, &e[i], i == w ? 10 : 0);
		vhu_virtq_flush(&vq);
		for (unsigned i = 0; i < n; i++) {
			if (i == w) {
				ASSERT_EQ(get_used(&id, &len, e[i].ndescs), 1);
				ASSERT_EQ(id, e[i].id);
				ASSERT_EQ(len, 10);
				continue;
			}
			span += e[i].ndescs;
			last = e[i].id;
			if (i + 1 == n || i + 1 == w) {
				ASSERT_EQ(get_used(&id, &len, span), 1);
				ASSERT_EQ(id, last);
				ASSERT_EQ(len, 0);
				span = 0;
			}
		}
		ASSERT_EQ(get_used(&id, &len, 1), 0);
	}
	ASSERT_TRUE(!vhu_virtq_broken(&vq));
	return 0;
}

/* The ring stops with a batch pushed and not flushed: virtq_save() publishes its one used
 * descriptor before the base is taken, and a resumed ring goes on after it. */
static int in_order_save(void)
{
	struct vhu_elem e[3];
	uint16_t id;
	uint32_t len;

	in_order_setup(64);
	add(1, 3, false);
	add(2, 4, false);
	add(1, 5, false);
	for (unsigned i = 0; i < 3; i++)
		ASSERT_EQ(vhu_virtq_pop(&vq, &e[i]), 1);
	for (unsigned i = 0; i < 3; i++)
		vhu_virtq_push(&vq, &e[i], 0);
	ASSERT_TRUE(still_avail(0));
	virtq_save(&vq);
	ASSERT_EQ(virtq_base(&vq), 4 | 1u << 15 | 4u << 16 | 1u << 31);
	ASSERT_EQ(get_used(&id, &len, 4), 1);
	ASSERT_EQ(id, 5);
	ASSERT_TRUE(still_avail(1) && still_avail(3));
	ASSERT_OK(virtq_map(&vq, true, false, true));
	add(1, 6, false);
	add(1, 7, false);
	for (unsigned i = 0; i < 2; i++)
		ASSERT_EQ(vhu_virtq_pop(&vq, &e[i]), 1);
	vhu_virtq_push(&vq, &e[0], 0);
	vhu_virtq_push(&vq, &e[1], 0);
	vhu_virtq_flush(&vq);
	ASSERT_EQ(get_used(&id, &len, 2), 1);
	ASSERT_EQ(id, 7);
	ASSERT_TRUE(still_avail(5));
	return 0;
}

int main(void)
{
	RUN(laps);
	RUN(out_of_order);
	RUN(indirect);
	RUN(indirect_across_regions);
	RUN(suppression);
	RUN(event_desc);
	RUN(rewind_wrap);
	RUN(broken);
	RUN(base_state);
	RUN(in_order_tx);
	RUN(in_order_laps);
	RUN(in_order_save);
	RUN(burst_laps);
	RUN(burst_bad_nobufs);
	T_MAIN_END();
}
