/* SPDX-License-Identifier: MIT */
/*
 * The device halves of the two ring layouts, called only by the generic entry points in
 * virtq.c after the broken-ring check: virtq_split.c ("Split Virtqueues") and virtq_packed.c
 * ("Packed Virtqueues"). They depend only downwards: ring.h, inflight.h, mem.h, vring.h.
 */
#ifndef VHU_VIRTQ_LAYOUT_H
#define VHU_VIRTQ_LAYOUT_H

#include <stdbool.h>
#include <stdint.h>

#include "ring.h"

/* keep_nobufs: a chain too long (-ENOBUFS) is left in the ring, not consumed (a burst ends
 * before it). */
int split_pop(struct vhu_virtq *vq, struct vhu_elem *e, bool keep_nobufs);

/* The loop of split_pop_many() and packed_pop_many(), instantiated in each layout's file with
 * its pop (a constant, inlined there): up to n pops, keep_nobufs for all but the first, ending
 * at the first result that is not an element, left in *ret (0 when all n were popped). */
static inline __attribute__((always_inline)) unsigned
layout_pop_many(struct vhu_virtq *vq, struct vhu_elem *e, unsigned n, int *ret,
		int (*pop)(struct vhu_virtq *, struct vhu_elem *, bool))
{
	unsigned i;

	*ret = 0;
	for (i = 0; i < n; i++) {
		int r = pop(vq, &e[i], i > 0);
		if (r <= 0) {
			*ret = r;
			break;
		}
	}
	return i;
}
/* As packed_pop_many(), with split_pop()'s pop. */
unsigned split_pop_many(struct vhu_virtq *vq, struct vhu_elem *e, unsigned n, int *ret);
/* Buffers available from the avail index as last read, reading it again (once) only when
 * they are all popped; 0 and the ring broken when the index is impossible. */
unsigned split_avail(struct vhu_virtq *vq);
/* A used entry for e, which split_push_batched() did not take (below). */
void split_push(struct vhu_virtq *vq, const struct vhu_elem *e, uint32_t len);
bool split_flush(struct vhu_virtq *vq);
/* IN_ORDER: writes out a pending batch and publishes the used index covering it (the ring
 * is being stopped); nothing when no batch is pending. */
void split_publish(struct vhu_virtq *vq);
bool split_enable_notify(struct vhu_virtq *vq);
void split_disable_notify(struct vhu_virtq *vq);
int split_map(struct vhu_virtq *vq);
/* The ring's area pointers (and log addresses) from its addresses; nothing changed unless all
 * are mapped: -EAGAIN (an IOTLB miss, sent), -EFAULT, -EINVAL. Part of _map; with ACCESS_PLATFORM
 * also again after an IOTLB change (virtq.c). */
int split_areas(struct vhu_virtq *vq);

int packed_pop(struct vhu_virtq *vq, struct vhu_elem *e, bool keep_nobufs);
/* The loop of vhu_virtq_pop_burst() for a ring without per-buffer IOTLB bookkeeping:
 * layout_pop_many() with packed_pop()'s pop. Returns how many were popped. */
unsigned packed_pop_many(struct vhu_virtq *vq, struct vhu_elem *e, unsigned n, int *ret);
/* A used descriptor for e, which packed_push_batched() did not take (below). */
void packed_push(struct vhu_virtq *vq, const struct vhu_elem *e, uint32_t len);
bool packed_flush(struct vhu_virtq *vq);
/* Stores the flags of the used descriptors pushed since the last flush, in ring order,
 * after writing out a pending IN_ORDER batch. */
void packed_publish(struct vhu_virtq *vq);
bool packed_enable_notify(struct vhu_virtq *vq);
void packed_disable_notify(struct vhu_virtq *vq);
int packed_map(struct vhu_virtq *vq);
int packed_areas(struct vhu_virtq *vq);

/*
 * IN_ORDER ("In-order use of descriptors"): a buffer with nothing device-writable joins the
 * pending batch, whose one used entry (split) / descriptor (packed) the flush, or the next
 * buffer that is not batched, writes out. Inline, so that a push burst pays no call for the
 * common tx buffer; true when e was taken. A batch spans at most the ring.
 */
static inline bool split_push_batched(struct vhu_virtq *vq, const struct vhu_elem *e)
{
	if (!vq->in_order || e->in_len != 0 || vq->io_n >= vq->num)
		return false;
	vq->io_n++;
	vq->io_id = e->id;
	vq->used_idx++;
	return true;
}

static inline bool packed_push_batched(struct vhu_virtq *vq, const struct vhu_elem *e)
{
	if (!vq->in_order || e->in_len != 0 || vq->io_n + e->ndescs > vq->num)
		return false;
	vq->io_n = (uint16_t)(vq->io_n + e->ndescs);
	vq->io_id = e->id;
	vring_packed_advance(&vq->used_idx, &vq->used_wrap, e->ndescs, vq->num);
	return true;
}

#endif
