/* SPDX-License-Identifier: MIT */
/*
 * The driver-side ring object shared by both layouts, and its sticky broken flag
 * (drvq_ring.c). The front-end owns the ring memory; nothing the device writes into it is
 * trusted: used ids are checked against the buffers outstanding, lengths against their size,
 * and every chaining decision is made from private copies, never from ring memory.
 * Layers, each including only headers below it: vring.h (spec facts) <- drvq_ring.h
 * <- drvq_layout.h (drvq_split.c, drvq_packed.c) <- drvq.h (drvq.c) <- frontend.c.
 */
#ifndef VHU_DRVQ_RING_H
#define VHU_DRVQ_RING_H

#include <stdbool.h>
#include <stdint.h>

#include "barrier.h"
#include "fe_mem.h"
#include "log.h"
#include "vhu/frontend.h"
#include "vring.h"

/* Most parts one indirect table holds; longer buffers use a direct chain. */
#define DRVQ_IND_MAX 16

struct drvq_slot {
	void *token;
	uint32_t in_len; /* writable bytes, the most the device may report */
	uint16_t ndescs; /* ring descriptors the buffer occupies */
	bool busy;
	uint64_t seq; /* order in which buffers were made available */
};

struct vhu_drvq {
	/* ---- data path ---- */
	bool packed;
	bool event_idx;
	bool in_order;
	bool indirect;
	bool broken;
	uint16_t num;
	uint16_t num_free;
	uint16_t free_head;   /* split: first free descriptor; packed: first free buffer id */
	uint16_t avail_idx;   /* split: free-running avail index; packed: next slot */
	bool avail_wrap;      /* packed */
	uint16_t num_added;   /* avail entries (split) or descriptors (packed) since last kick */
	uint16_t last_used;   /* split: free-running; packed: next slot to read */
	bool used_wrap;	      /* packed */
	uint16_t shadow_used; /* split: used->idx as last read */
	VRING_PARTS;
	uint16_t *next;		/* private links: split descriptors / packed buffer ids */
	struct drvq_slot *slot; /* by split head or packed buffer id */
	/* IN_ORDER: ids in the order they were made available, and a batch being returned. */
	uint16_t *order;
	/* Positions (drvq_order_at): equal when empty. A power-of-two ring (every split one)
	 * uses free-running 16-bit counters and a mask; any other size counts modulo 2 * num, as
	 * a free-running counter taken modulo num would jump at its wrap. */
	uint16_t order_head, order_tail;
	bool pow2; /* num is a power of two */
	bool batch;
	bool batch_step; /* split: each buffer of the batch moves last_used (one entry read) */
	uint16_t batch_id;
	uint32_t batch_len;
	/* Outstanding buffers with writable bytes: with none, a burst reads only the last used
	 * entry (IN_ORDER, split). */
	uint16_t writable_out;
	uint8_t *ind; /* num * DRVQ_IND_MAX indirect descriptors (16 bytes each) */
	const struct fe_mem *mem;
	const struct logger *lg;
	int kick_fd;
	int call_fd;
	unsigned index;
	uint64_t kicks;
	uint64_t seq;

	/* ---- ring memory, for SET_VRING_ADDR ---- */
	void *desc_area, *driver_area, *device_area;

	/* ---- what the device wrote, for vhu_drvq_device_writes() ---- */
	/* 4 KiB pages of the area the device writes entries to (split: used ring; packed:
	 * descriptor ring) holding an entry the driver found written; bit k is page k
	 * counted from the page of written_area. Both areas start on a page boundary (drvq
	 * init), so the largest (packed, 32768 entries of 16 bytes) spans 128 pages. */
	const void *written_area;
	uint64_t written_pages[2];
	/* Split, IN_ORDER: the entries up to the used index last read are recorded as they are
	 * read, not all at once (a device that batches wrote only some of them). */
	bool written_each;
	/* The device's event fields as last reported (split: used flags, avail_event;
	 * packed: device event flags, off_wrap). */
	uint16_t written_event[2];
};

int drvq_broken(struct vhu_drvq *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Records that the device wrote [p, p + len) of written_area (page granularity). */
static inline void drvq_written(struct vhu_drvq *q, const void *p, size_t len)
{
	uintptr_t base = (uintptr_t)q->written_area >> 12;
	uintptr_t first = ((uintptr_t)p >> 12) - base,
		  last = (((uintptr_t)p + len - 1) >> 12) - base;

	for (; first <= last && first < 128; first++)
		q->written_pages[first / 64] |= 1ull << (first % 64);
}

/* IN_ORDER: the order slot at position *x, and *x moved on (free-running with a power-of-two
 * size, else modulo 2 * num). */
static inline uint16_t drvq_order_step(uint16_t num, bool pow2, uint16_t *x)
{
	uint16_t i;

	if (pow2) {
		i = *x & (uint16_t)(num - 1);
		*x = (uint16_t)(*x + 1);
		return i;
	}
	i = *x >= num ? (uint16_t)(*x - num) : *x;
	*x = (unsigned)*x + 1 == 2u * num ? 0 : (uint16_t)(*x + 1);
	return i;
}

static inline uint16_t drvq_order_at(const struct vhu_drvq *q, uint16_t *x)
{
	return drvq_order_step(q->num, q->pow2, x);
}

#endif
