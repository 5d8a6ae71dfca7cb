/* SPDX-License-Identifier: MIT */
/*
 * The generic device-side ring (virtq.c): the control plane's calls on a ring, above both
 * layouts. The public data-path entry points (vhu_virtq_*) are in include/vhu/virtq.h.
 */
#ifndef VHU_VIRTQ_CTL_H
#define VHU_VIRTQ_CTL_H

#include <stdbool.h>
#include <stdint.h>

#include "ring.h"

/* Resolves the ring addresses through mem and loads indices from the base values; the
 * negotiated EVENT_IDX and IN_ORDER. Returns 0, or -EFAULT when an address is outside every
 * region. */
int virtq_map(struct vhu_virtq *vq, bool packed, bool event_idx, bool in_order);
/* Back to the initial state, closing fds (not enabled, not started). */
void virtq_reset(struct vhu_virtq *vq);
void virtq_init(struct vhu_virtq *vq, unsigned index, const struct mem *mm,
		const struct logger *lg);
/* Saves the live indices into the base values (the ring is being stopped). */
void virtq_save(struct vhu_virtq *vq);
/* Ring state for GET_VRING_BASE, from the base values. */
uint32_t virtq_base(const struct vhu_virtq *vq);

#endif
