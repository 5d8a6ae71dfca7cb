/* SPDX-License-Identifier: MIT */
/*
 * Inflight I/O tracking (vhost-user.rst "Inflight I/O tracking"): a shared buffer, kept by the
 * front-end across back-end restarts, that records which buffers the back-end took and has
 * not completed, so a restarted back-end resubmits each of them exactly once. Split rings.
 */
#ifndef VHU_INFLIGHT_H
#define VHU_INFLIGHT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct inflight_desc_split {
	uint8_t inflight;
	uint8_t padding[5];
	uint16_t next;
	uint64_t counter;
};

struct inflight_split {
	uint64_t features;
	uint16_t version;
	uint16_t desc_num;
	uint16_t last_batch_head;
	uint16_t used_idx;
	struct inflight_desc_split desc[];
};

/* Bytes of one queue's region for queue_size entries (room for either layout, 64-aligned). */
size_t inflight_region_size(unsigned queue_size);

struct vhu_virtq;
/* At ring start: initialises a fresh region, or after a restart repairs the last batch and
 * builds the resubmit list (ordered by counter) and sets the ring's last_avail_idx. 0 or
 * -errno (-EINVAL: the region does not match the ring). */
int inflight_split_start(struct vhu_virtq *vq);
/* Hooks on the data path. */
void inflight_split_pop(struct vhu_virtq *vq, uint16_t head);
void inflight_split_push(struct vhu_virtq *vq, uint16_t head);
void inflight_split_flushed(struct vhu_virtq *vq);
/* Frees the resubmit list. */
void inflight_reset(struct vhu_virtq *vq);

#endif
