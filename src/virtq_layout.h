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
/* Buffers available from the avail index as last read, reading it again (once) only when
 * they are all popped; 0 and the ring broken when the index is impossible. */
unsigned split_avail(struct vhu_virtq *vq);
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
void packed_push(struct vhu_virtq *vq, const struct vhu_elem *e, uint32_t len);
bool packed_flush(struct vhu_virtq *vq);
/* Stores the flags of the used descriptors pushed since the last flush, in ring order,
 * after writing out a pending IN_ORDER batch. */
void packed_publish(struct vhu_virtq *vq);
bool packed_enable_notify(struct vhu_virtq *vq);
void packed_disable_notify(struct vhu_virtq *vq);
int packed_map(struct vhu_virtq *vq);
int packed_areas(struct vhu_virtq *vq);

#endif
