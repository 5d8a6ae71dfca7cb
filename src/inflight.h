/* SPDX-License-Identifier: MIT */
/*
 * Inflight I/O tracking (vhost-user.rst "Inflight I/O tracking"): a shared buffer, kept by the
 * front-end across back-end restarts, that records which buffers the back-end took and has
 * not completed, so a restarted back-end resubmits each of them exactly once. Split rings
 * record heads; packed rings keep a copy of every descriptor taken, since the device
 * overwrites the ring with used entries.
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

struct inflight_desc_packed {
	uint8_t inflight;
	uint8_t padding;
	uint16_t next;
	uint16_t last;
	uint16_t num;
	uint64_t counter;
	uint16_t id;
	uint16_t flags;
	uint32_t len;
	uint64_t addr;
};

struct inflight_packed {
	uint64_t features;
	uint16_t version;
	uint16_t desc_num;
	uint16_t free_head;
	uint16_t old_free_head;
	uint16_t used_idx;
	uint16_t old_used_idx;
	uint8_t used_wrap_counter;
	uint8_t old_used_wrap_counter;
	uint8_t padding[7];
	struct inflight_desc_packed desc[];
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
/* Packed rings: the same steps. _pop records the chain just taken from ring slots
 * [start, start + ndescs); _push_begin runs before the used descriptor's flags are written,
 * _push_end after. _resubmit builds the element for a head from the recorded copies. */
int inflight_packed_start(struct vhu_virtq *vq);
void inflight_packed_pop(struct vhu_virtq *vq, uint16_t start, uint16_t ndescs, uint16_t id);
void inflight_packed_push_begin(struct vhu_virtq *vq, uint16_t id, uint16_t used_idx,
				bool used_wrap);
void inflight_packed_push_end(struct vhu_virtq *vq, uint16_t id);
/* Frees the resubmit list. */
void inflight_reset(struct vhu_virtq *vq);

#endif
