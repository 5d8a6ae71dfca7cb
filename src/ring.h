/* SPDX-License-Identifier: MIT */
/*
 * The device-side ring object shared by both layouts, and what both device halves use
 * (ring.c): the broken flag, descriptors into an element, indirect tables. Public code sees
 * the object only as the opaque struct vhu_virtq. Ring code never includes socket headers.
 * Layers, each including only headers below it: vring.h (spec facts) <- ring.h, inflight.h
 * <- virtq_layout.h (virtq_split.c, virtq_packed.c) <- virtq_ctl.h (virtq.c) <- backend.c.
 */
#ifndef VHU_RING_H
#define VHU_RING_H

#include <endian.h>
#include <linux/virtio_ring.h>
#include <stdbool.h>
#include <stdint.h>

#include "barrier.h"
#include "log.h"
#include "inflight.h"
#include "mem.h"
#include "vhu/virtq.h"
#include "vring.h"

/* Largest ring either layout accepts ("Virtqueues": Queue Size up to 32768). */
#define RING_MAX_SIZE VRING_MAX_SIZE

struct vhu_virtq {
	/* ---- data path, read on every pop/push ---- */
	bool packed;
	bool broken;
	bool event_idx;
	uint16_t num;
	uint16_t last_avail_idx;   /* next slot to pop (split: free-running; packed: < num) */
	uint16_t shadow_avail_idx; /* split: avail->idx as last read */
	uint16_t used_idx;	   /* split: free-running next used idx; packed: next used slot */
	uint16_t signalled_used;   /* used_idx at the last notification check */
	bool signalled_used_valid;
	bool avail_wrap; /* packed: driver wrap counter we expect */
	bool used_wrap;	 /* packed: device wrap counter we write */
	VRING_PARTS;
	const struct mem *mem;
	const struct logger *lg;
	int kick_fd;
	int call_fd;
	int err_fd;
	bool kick_nowait_off; /* preadv2(RWF_NOWAIT) is refused on this kick fd */
	struct vhu_virtq_stats st;
	/* INFLIGHT_SHMFD: this ring's region (struct inflight_split or _packed), written only,
	 * and the private tracking state that is read instead; both NULL when not in use. */
	void *inf;
	struct inflight *infs;
	/* An indirect table that crosses a memory region boundary, copied out (private). */
	void *ind_copy;
	size_t ind_copy_size;

	/* ---- control plane ---- */
	unsigned index;
	bool num_set;
	bool addr_set;
	bool kick_set; /* SET_VRING_KICK seen (fd or polling) */
	bool started;
	bool enabled;
	uint16_t base_avail; /* SET_VRING_BASE values, applied when the ring starts */
	uint16_t base_used;
	bool base_avail_wrap;
	bool base_used_wrap;
	bool resume; /* base_* were saved by a pause, not set by the front-end */
	struct vhu_vring_addr addr;
	void *priv;
};

/* Marks the ring broken: logs once, signals the err eventfd, never touches the ring again. */
int ring_broken(struct vhu_virtq *vq, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* An indirect table of len bytes at guest address addr, as a pointer the walker may read:
 * into guest memory when the table lies in one region, else a private copy of it (a table
 * may span regions that are contiguous in guest-physical space). NULL when unmapped. */
const void *ring_indirect_table(struct vhu_virtq *vq, uint64_t addr, uint32_t len);

/* Adds [addr, addr + len) of a descriptor to e (readable or writable side). */
int elem_add_desc(struct vhu_virtq *vq, struct vhu_elem *e, uint64_t addr, uint32_t len,
		  bool writable);

#endif
