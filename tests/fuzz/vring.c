/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target on the ring layout module (src/vring.h), called directly: every spec fact
 * the device and driver halves share is checked against an independent reference on random
 * states. A mismatch aborts (libFuzzer keeps the input).
 * - GET/SET_VRING_BASE: decode(encode(x)) == x for valid states, encode(decode(v)) == v for
 *   every packed value, split values above 16 bits refused;
 * - packed AVAIL/USED predicates against the bit definitions, never both, and the bits the
 *   driver and the device write satisfy them;
 * - wrap advance: position stays < num, counter flips exactly when a lap is passed;
 * - off_wrap encoding round trip; vring_need_event() (split) against a walk over the indices,
 *   and the packed event position fed to it against a walk over (slot, wrap counter) pairs.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "../../src/vring.h"

struct in {
	const uint8_t *p;
	size_t n;
};

static uint32_t take(struct in *in, unsigned bytes)
{
	uint32_t v = 0;

	for (unsigned i = 0; i < bytes; i++) {
		v <<= 8;
		if (in->n) {
			v |= *in->p++;
			in->n--;
		}
	}
	return v;
}

#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c))                                                                          \
			abort();                                                                   \
	} while (0)

static void base(uint32_t v, uint32_t r)
{
	struct vring_base b, d;

	CHECK(vring_base_decode(true, v, &b) == 0);
	CHECK(vring_base_encode(true, &b) == v);
	CHECK(b.avail < 0x8000 && b.used < 0x8000);
	if (v > UINT16_MAX) {
		CHECK(vring_base_decode(false, v, &b) == -ERANGE);
	} else {
		CHECK(vring_base_decode(false, v, &b) == 0);
		CHECK(b.avail == v && b.used == v && !b.avail_wrap && !b.used_wrap);
		CHECK(vring_base_encode(false, &b) == v);
	}
	/* A valid packed state: indices below the largest ring. */
	b = (struct vring_base){ (uint16_t)(r % VRING_MAX_SIZE),
				 (uint16_t)((r >> 15) % VRING_MAX_SIZE), r >> 30 & 1, r >> 31 };
	CHECK(vring_base_decode(true, vring_base_encode(true, &b), &d) == 0);
	CHECK(b.avail == d.avail && b.used == d.used && b.avail_wrap == d.avail_wrap &&
	      b.used_wrap == d.used_wrap);
}

static void predicates(uint16_t flags, bool w)
{
	bool a = flags >> VRING_PACKED_DESC_F_AVAIL & 1, u = flags >> VRING_PACKED_DESC_F_USED & 1;

	CHECK(vring_packed_is_avail(flags, w) == (a == w && u != w));
	CHECK(vring_packed_is_used(flags, w) == (a == w && u == w));
	CHECK(!(vring_packed_is_avail(flags, w) && vring_packed_is_used(flags, w)));
	uint16_t other = flags & (uint16_t) ~(VRING_PK_F_AVAIL | VRING_PK_F_USED);
	CHECK(vring_packed_is_avail(other | vring_packed_avail_bits(w), w));
	CHECK(vring_packed_is_used(other | vring_packed_used_bits(w), w));
	/* What the driver wrote for lap w is not yet used in lap w, nor available in lap !w. */
	CHECK(!vring_packed_is_used(other | vring_packed_avail_bits(w), w));
	CHECK(!vring_packed_is_avail(other | vring_packed_avail_bits(w), !w));
}

/* Split: the device crossed event going from old to new, walking the free-running index. */
static bool crossed_split(uint16_t event, uint16_t new, uint16_t old)
{
	for (uint16_t i = old; i != new; i++)
		if (i == event)
			return true;
	return false;
}

static void packed_walk(unsigned num, uint16_t pos, bool wrap, unsigned n, uint16_t off, bool ew)
{
	uint16_t p = pos, np = pos;
	bool w = wrap, nw = wrap, hit = false;

	vring_packed_advance(&np, &nw, n, num);
	CHECK(np < num);
	CHECK(np == (pos + n) % num);
	CHECK(nw == (wrap ^ (pos + n >= num)));
	/* Reference: step slot by slot; the event is crossed when (off, ew) is written. */
	for (unsigned k = 0; k < n; k++) {
		if (p == off && w == ew)
			hit = true;
		vring_packed_advance(&p, &w, 1, num);
		CHECK(p < num);
	}
	CHECK(p == np && w == nw);
	/* What the halves compute: old and new on one line of the lap of new, the event
	 * position from off_wrap for that lap. */
	uint16_t ow = vring_packed_off_wrap(off, ew);
	CHECK((ow & 0x7fff) == off && !!(ow >> 15) == ew);
	uint16_t old = np <= pos ? (uint16_t)(pos - num) : pos;
	uint16_t ev = vring_packed_event_idx(ow, nw, num);
	CHECK(ev == (ew == nw ? off : (uint16_t)(off - num)));
	CHECK(!!vring_need_event(ev, np, old) == hit);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = { data, size };

	while (in.n) {
		uint32_t v = take(&in, 4), r = take(&in, 4);
		base(v, r);
		predicates((uint16_t)take(&in, 2), r & 1);

		uint16_t ev = (uint16_t)take(&in, 2), nw = (uint16_t)take(&in, 2),
			 od = (uint16_t)take(&in, 2);
		CHECK(!!vring_need_event(ev, nw, od) == crossed_split(ev, nw, od));

		unsigned num = take(&in, 2) % VRING_MAX_SIZE + 1;
		uint16_t pos = (uint16_t)(take(&in, 2) % num);
		unsigned n = take(&in, 2) % num + 1;
		uint16_t off = (uint16_t)(take(&in, 2) % num);
		uint8_t bits = (uint8_t)take(&in, 1);
		packed_walk(num, pos, bits & 1, n, off, bits & 2);
	}
	return 0;
}
