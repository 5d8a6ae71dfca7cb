/* SPDX-License-Identifier: MIT */
/*
 * The ring layout module (src/vring.h) against the spec's numbers and against
 * <linux/virtio_ring.h>'s own vring_size / vring_init / vring_used_event / vring_avail_event:
 * part sizes and alignments, event index places, packed flag predicates over all flag
 * combinations, wrap advance across laps, off_wrap and event positions, and the
 * GET/SET_VRING_BASE encoding (tests/fuzz/vring.c checks the same invariants on random input).
 */
#include <errno.h>

#include "../../src/vring.h"
#include "t.h"

T_DEFINE;

static int split_sizes(void)
{
	/* "Virtqueue Part Sizes" for Queue Size 256: 4096, 518, 2054 bytes. */
	ASSERT_EQ(vring_split_desc_size(256), 4096);
	ASSERT_EQ(vring_split_avail_size(256), 518);
	ASSERT_EQ(vring_split_used_size(256), 2054);
	ASSERT_EQ(vring_split_desc_size(VRING_MAX_SIZE), 16u * 32768);
	/* Linux's legacy layout is the same parts back to back: table and avail ring, aligned,
	 * then the used ring. */
	for (unsigned n = 1; n <= VRING_MAX_SIZE; n *= 2) {
		uint64_t first = vring_split_desc_size(n) + vring_split_avail_size(n);
		ASSERT_EQ(vring_size(n, 4096),
			  ((first + 4095) & ~4095ull) + vring_split_used_size(n));
	}
	ASSERT_TRUE(vring_split_aligned(0x1000, 0x2002, 0x3004));
	ASSERT_TRUE(!vring_split_aligned(0x1008, 0x2002, 0x3004));
	ASSERT_TRUE(!vring_split_aligned(0x1000, 0x2001, 0x3004));
	ASSERT_TRUE(!vring_split_aligned(0x1000, 0x2002, 0x3002));
	ASSERT_EQ(vring_packed_desc_size(256), 4096);
	ASSERT_TRUE(vring_packed_aligned(0x1000, 0x2004, 0x3008));
	ASSERT_TRUE(!vring_packed_aligned(0x1004, 0x2004, 0x3008));
	ASSERT_TRUE(!vring_packed_aligned(0x1000, 0x2002, 0x3008));
	ASSERT_TRUE(!vring_packed_aligned(0x1000, 0x2004, 0x3001));
	return 0;
}

static int event_places(void)
{
	static uint8_t mem[3 * 4096] __attribute__((aligned(4096)));

	for (unsigned n = 1; n <= 256; n *= 2) {
		struct vring vr;
		vring_init(&vr, n, mem, 4096);
		ASSERT_TRUE(vring_split_used_event(vr.avail, n) == &vring_used_event(&vr));
		ASSERT_TRUE(vring_split_avail_event(vr.used, n) == &vring_avail_event(&vr));
		/* The last two bytes of each part, as the part sizes count them. */
		ASSERT_EQ((uint8_t *)vring_split_used_event(vr.avail, n) + 2 - (uint8_t *)vr.avail,
			  vring_split_avail_size(n));
		ASSERT_EQ((uint8_t *)vring_split_avail_event(vr.used, n) + 2 - (uint8_t *)vr.used,
			  vring_split_used_size(n));
	}
	return 0;
}

static int packed_predicates(void)
{
	const uint16_t A = VRING_PK_F_AVAIL, U = VRING_PK_F_USED;

	ASSERT_EQ(A, 0x80);
	ASSERT_EQ(U, 0x8000);
	/* wrap 1: available is A=1 U=0, used is A=1 U=1; wrap 0 the inverse. */
	ASSERT_TRUE(vring_packed_is_avail(A, true));
	ASSERT_TRUE(!vring_packed_is_avail(0, true) && !vring_packed_is_avail(U, true) &&
		    !vring_packed_is_avail(A | U, true));
	ASSERT_TRUE(vring_packed_is_avail(U, false));
	ASSERT_TRUE(!vring_packed_is_avail(0, false) && !vring_packed_is_avail(A, false) &&
		    !vring_packed_is_avail(A | U, false));
	ASSERT_TRUE(vring_packed_is_used(A | U, true) && vring_packed_is_used(0, false));
	ASSERT_TRUE(!vring_packed_is_used(A, true) && !vring_packed_is_used(U, true) &&
		    !vring_packed_is_used(0, true) && !vring_packed_is_used(A | U, false));
	/* Other flag bits do not matter. */
	ASSERT_TRUE(vring_packed_is_avail(A | VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, true));
	for (int w = 0; w < 2; w++) {
		ASSERT_TRUE(vring_packed_is_avail(vring_packed_avail_bits(w), w));
		ASSERT_TRUE(vring_packed_is_used(vring_packed_used_bits(w), w));
		ASSERT_TRUE(!vring_packed_is_used(vring_packed_avail_bits(w), w));
		ASSERT_TRUE(!vring_packed_is_avail(vring_packed_used_bits(w), w));
	}
	return 0;
}

static int packed_advance(void)
{
	uint16_t p = 0;
	bool w = true;

	/* Three laps of 5 slots in steps of 1, 2, 3: the counter flips at each lap. */
	for (unsigned step = 1, total = 0; total + step <= 15; total += step, step = step % 3 + 1) {
		vring_packed_advance(&p, &w, step, 5);
		ASSERT_EQ(p, (total + step) % 5);
		ASSERT_EQ(w, ((total + step) / 5) % 2 == 0);
	}
	p = 4;
	w = false;
	vring_packed_advance(&p, &w, 5, 5); /* a whole lap */
	ASSERT_EQ(p, 4);
	ASSERT_TRUE(w);
	p = 32767;
	vring_packed_advance(&p, &w, 1, VRING_MAX_SIZE);
	ASSERT_EQ(p, 0);
	ASSERT_TRUE(!w);
	return 0;
}

static int packed_events(void)
{
	ASSERT_EQ(vring_packed_off_wrap(5, true), 0x8005);
	ASSERT_EQ(vring_packed_off_wrap(5, false), 5);
	/* An event in the current lap is where it says; one in the other lap is num earlier. */
	ASSERT_EQ(vring_packed_event_idx(0x8005, true, 16), 5);
	ASSERT_EQ(vring_packed_event_idx(0x0005, false, 16), 5);
	ASSERT_EQ(vring_packed_event_idx(0x0005, true, 16), (uint16_t)(5 - 16));
	/* The device at slot 2 of lap "wrap 1" after 4 used descriptors from slot 14 of the
	 * previous lap (old = 14 - 16); the driver asked for an event at slot 15 of that lap:
	 * crossed. At slot 1 of this lap: also crossed; at slot 3: not yet. */
	uint16_t old = (uint16_t)(14 - 16), new = 2;
	ASSERT_TRUE(vring_need_event(vring_packed_event_idx(15, true, 16), new, old));
	ASSERT_TRUE(vring_need_event(vring_packed_event_idx(0x8001, true, 16), new, old));
	ASSERT_TRUE(!vring_need_event(vring_packed_event_idx(0x8003, true, 16), new, old));
	return 0;
}

static int base_encoding(void)
{
	struct vring_base b = { 5, 3, true, false }, d;

	/* vhost-user.rst: avail index bits 0-14, its wrap 15, used index 16-30, its wrap 31. */
	ASSERT_EQ(vring_base_encode(true, &b), 0x00038005u);
	b = (struct vring_base){ 0x7fff, 0x7fff, false, true };
	ASSERT_EQ(vring_base_encode(true, &b), 0xffff7fffu);
	ASSERT_OK(vring_base_decode(true, 0x80008000u, &d)); /* a new ring: 0/1, 0/1 */
	ASSERT_TRUE(d.avail == 0 && d.used == 0 && d.avail_wrap && d.used_wrap);
	ASSERT_OK(vring_base_decode(true, 0x00038005u, &d));
	ASSERT_TRUE(d.avail == 5 && d.avail_wrap && d.used == 3 && !d.used_wrap);
	/* Split: a 16-bit free-running index, the rest reserved. */
	b = (struct vring_base){ 0xfffe, 0xfffe, false, false };
	ASSERT_EQ(vring_base_encode(false, &b), 0xfffe);
	ASSERT_OK(vring_base_decode(false, 0xfffe, &d));
	ASSERT_TRUE(d.avail == 0xfffe && d.used == 0xfffe && !d.avail_wrap && !d.used_wrap);
	ASSERT_EQ(vring_base_decode(false, 0x10000, &d), -ERANGE);
	for (uint32_t v = 0; v < 0xffff0000u; v += 0x10001u * 7919) {
		ASSERT_OK(vring_base_decode(true, v, &d));
		ASSERT_EQ(vring_base_encode(true, &d), v);
	}
	return 0;
}

int main(void)
{
	RUN(split_sizes);
	RUN(event_places);
	RUN(packed_predicates);
	RUN(packed_advance);
	RUN(packed_events);
	RUN(base_encoding);
	T_MAIN_END();
}
