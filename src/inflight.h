/* SPDX-License-Identifier: MIT */
/*
 * Inflight I/O tracking (vhost-user.rst "Inflight I/O tracking"): a shared buffer, kept by the
 * front-end across back-end restarts, that records which buffers the back-end took and has
 * not completed, so a restarted back-end resubmits each of them exactly once. Split rings
 * record heads; packed rings keep a copy of every descriptor taken, since the device
 * overwrites the ring with used entries.
 *
 * Trust: the region is front-end memory. It is read exactly once, when a ring starts: a
 * snapshot is copied into private memory, validated as a whole, and the ring's private
 * tracking state (free list, in-flight set, the requests to resubmit with copies of their
 * descriptors) is built from the copy. From then on the region is only written, never read,
 * so whatever the front-end writes into it cannot reach an index or a length the device uses.
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

/* A descriptor as it was taken (packed), in private memory. */
struct inflight_copy {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
};

/* One request the previous back-end had in flight, to resubmit. */
struct inflight_resub {
	uint64_t counter; /* order of the original pops */
	uint16_t head;	  /* split: descriptor head; packed: head entry of the region */
	uint16_t id;	  /* packed: buffer id */
	uint16_t first;	  /* packed: index of its first copy in inflight.copies */
	uint16_t ndescs;  /* packed: descriptors it occupied in the ring */
};

#define INFLIGHT_NONE 0xffff

/* A ring's private tracking state. Only this, never the region, is read on the data path. */
struct inflight {
	uint16_t num;
	uint64_t counter; /* the next pop's counter value */
	uint16_t *next;	  /* the region's next links as we wrote them */
	/* split */
	uint8_t *busy; /* head -> in flight */
	uint16_t last_batch_head;
	uint16_t batch; /* pushes since the last flush */
	/* packed */
	uint16_t *head_of; /* buffer id -> its head entry, INFLIGHT_NONE when not in flight */
	uint16_t *last;	   /* head entry -> the entry of its last descriptor */
	uint16_t free_head, old_free_head;
	uint16_t cursor; /* entry the next descriptor of the chain being popped goes to */
	uint16_t taken;	 /* descriptors of that chain recorded so far */
	/* requests in flight before the restart, oldest first */
	struct inflight_resub *resub;
	unsigned nresub, pos;
	struct inflight_copy *copies;
};

struct vhu_virtq;
/* At ring start, with vq->inf the region: initialises a fresh region, or after a restart
 * validates it, repairs the last batch and builds the resubmit list (ordered by counter) and
 * sets the ring's positions. 0 or -errno (-EINVAL: the region does not describe a state the
 * ring can be in; it was logged). */
int inflight_split_start(struct vhu_virtq *vq);
int inflight_packed_start(struct vhu_virtq *vq);
/* Frees the private state (tracking off). */
void inflight_reset(struct vhu_virtq *vq);
/* Requests still to resubmit. */
unsigned inflight_pending(const struct vhu_virtq *vq);

/* Split hooks. _pop records head as taken (-EIO, ring broken: the head is already in flight);
 * _push links it into the batch; _flushed runs after used->idx was published. */
int inflight_split_pop(struct vhu_virtq *vq, uint16_t head);
void inflight_split_push(struct vhu_virtq *vq, uint16_t head);
void inflight_split_flushed(struct vhu_virtq *vq);

/* Packed hooks. While a chain is walked, _desc records each descriptor taken (k-th of the
 * chain, its fields as the walker read them); -EIO when more descriptors would be in flight
 * than the ring has entries. _pop commits the chain as buffer id (-EIO: id already in flight).
 * _push_begin runs before the used descriptor's flags are written, _push_end after. */
int inflight_packed_desc(struct vhu_virtq *vq, unsigned k, uint64_t addr, uint32_t len,
			 uint16_t flags, uint16_t id);
int inflight_packed_pop(struct vhu_virtq *vq, uint16_t ndescs, uint16_t id);
void inflight_packed_push_begin(struct vhu_virtq *vq, uint16_t id, uint16_t used_idx,
				bool used_wrap);
void inflight_packed_push_end(struct vhu_virtq *vq, uint16_t id, uint16_t used_idx, bool used_wrap);

#endif
