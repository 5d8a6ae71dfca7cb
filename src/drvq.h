/* SPDX-License-Identifier: MIT */
/*
 * The generic driver-side ring (drvq.c): set-up, ring state for SET_VRING_BASE, and the public
 * entry points (vhu_drvq_* in include/vhu/frontend.h) dispatching on the layout.
 */
#ifndef VHU_DRVQ_H
#define VHU_DRVQ_H

#include <stdbool.h>
#include <stdint.h>

#include "drvq_ring.h"

/* Allocates the ring and its bookkeeping for num entries. 0 or -errno. */
int drvq_init(struct vhu_drvq *q, unsigned index, unsigned num, bool packed, struct fe_mem *mem,
	      const struct logger *lg);
/* Applies negotiated features (before the device starts). */
void drvq_set_features(struct vhu_drvq *q, bool event_idx, bool in_order, bool indirect);
/* Frees the private bookkeeping (ring memory belongs to the fe_mem area). Closes no fds. */
void drvq_free(struct vhu_drvq *q);
/* Ring state for SET_VRING_BASE (next avail index; packed: with wrap counters). */
uint32_t drvq_base(const struct vhu_drvq *q);
/* Ring state to resume with after the back-end was replaced. Split rings without IN_ORDER
 * are repaired first: the avail entries from the used index on are rewritten with the
 * buffers not completed, in the order they were made available (the old back-end may have
 * completed out of order, leaving completed buffers after the used index and incomplete
 * ones before it). */
uint32_t drvq_resume_base(struct vhu_drvq *q);

#endif
