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
#include "dirty.h"
#include "log.h"
#include "inflight.h"
#include "iotlb.h"
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
	/* packed: used descriptors pushed since the last flush (slot, buffer id, length), which
	 * the flush stores whole, back to back in ring order: a burst's lines move to the driver
	 * once, where a driver polling the line of its next used descriptor would take it back
	 * after each descriptor's id and length; and what it can see is a prefix at any instant,
	 * as a restarted back-end expects. pk_pend_wrap: the wrap counter of pk_pend[0].slot (a
	 * later slot lower than its predecessor wrapped). */
	uint8_t pk_npend;
	bool pk_pend_wrap;
	struct {
		uint16_t slot, id;
		uint32_t len;
	} pk_pend[32];
	/* IN_ORDER negotiated (and no inflight tracking): buffers pushed with nothing writable
	 * are batched. io_n of them (split: buffers; packed: the descriptors they span, at most
	 * the ring) pushed since the batch began, io_n used positions back, the last with id
	 * io_id; their one used entry (split) or descriptor (packed) is written out at the
	 * batch's first position when the batch ends (virtq_split.c, virtq_packed.c). */
	bool in_order;
	uint16_t io_n;
	uint16_t io_id;
	/* RING_LOG_* bits, atomic: the control plane turns logging on and off while the ring
	 * runs (SET_FEATURES with LOG_ALL, SET_VRING_ADDR with VHOST_VRING_F_LOG). */
	uint8_t logging;
	bool log_pending; /* something was marked since the last flush (SET_LOG_FD) */
	VRING_PARTS;
	const struct mem *mem;
	/* The memory region the last descriptor fell in (no IOTLB, no owner's translation):
	 * most descriptors lie in the one before them did (mem.h, checked against the table's
	 * generation at every use). */
	struct mem_cache mc;
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
	/* The back-end's dirty log: replaced only while the ring is stopped. log_used: split:
	 * the used ring's log address (SET_VRING_ADDR), packed: the descriptor ring's guest
	 * address; log_device: packed, the device event area's. log_fd: SET_LOG_FD, or -1. */
	const struct dirty_log *dlog;
	uint64_t log_used;
	uint64_t log_device;
	int log_fd;
	bool log_warned;
	/* ACCESS_PLATFORM: ring and descriptor addresses are IOVAs, translated through iotlb
	 * (NULL: they are front-end VAs and guest-physical addresses) with this ring's cache.
	 * tlb_miss (atomic): a translation missed and the ring waits for an update, which
	 * changes the IOTLB's generation from miss_gen (iotlb.h). */
	struct iotlb *iotlb;
	struct iotlb_cache tlbc;
	uint64_t miss_gen;
	uint64_t ring_gen; /* the IOTLB generation the ring's area pointers were translated in */
	bool tlb_miss;
	/* A translation the ring's owner provides instead of the memory table and the IOTLB
	 * (VDUSE, vduse.c: IOVAs mapped from the kernel's IOTLB fds), with the same contract
	 * as ring_piece(); and a notification instead of the call eventfd (VDUSE injects the
	 * interrupt with an ioctl). NULL for vhost-user. Set while the ring is stopped. */
	void *(*xlate)(void *opaque, uint64_t addr, uint64_t *len, unsigned perm, int *err);
	void (*notify)(void *opaque, struct vhu_virtq *vq);
	void *xlate_opaque;
	/* iotlb->per_buffer: what the buffer being popped translated (ring_piece), forgotten
	 * once the pop succeeded; tlb_over: more ranges than fit, forget everything. */
	struct iotlb_range tlb_used[16];
	unsigned tlb_nused;
	bool tlb_over;
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

/* logging bits: device writes into buffers (LOG_ALL and a log), and ring writes too
 * (VHOST_VRING_F_LOG on the ring as well). */
#define RING_LOG_DATA 1u
#define RING_LOG_RING 2u

static inline unsigned ring_logging(const struct vhu_virtq *vq)
{
	return __atomic_load_n(&vq->logging, __ATOMIC_RELAXED);
}

/* Marks [hva, hva + len) of guest memory the device wrote (RING_LOG_DATA is set). */
void ring_log_hva(struct vhu_virtq *vq, const void *hva, uint64_t len);
/* Marks the ring's own memory it wrote: [base + off, base + off + len) with base log_used or
 * log_device, when RING_LOG_RING is set. */
void ring_log_gpa(struct vhu_virtq *vq, const uint64_t *base, uint64_t off, uint64_t len);
static inline void ring_log_ring(struct vhu_virtq *vq, const uint64_t *base, uint64_t off,
				 uint64_t len)
{
	if (__builtin_expect(ring_logging(vq) & RING_LOG_RING, 0))
		ring_log_gpa(vq, base, off, len);
}

/* Marks the ring broken: logs once, signals the err eventfd, never touches the ring again. */
int ring_broken(struct vhu_virtq *vq, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* An indirect table of len bytes at guest address addr, as a pointer the walker may read:
 * into guest memory when the table lies in one region, else a private copy of it (a table
 * may span regions that are contiguous in guest-physical space). NULL when unmapped. */
const void *ring_indirect_table(struct vhu_virtq *vq, uint64_t addr, uint32_t len);

/* Is the ring waiting for an IOTLB update (a miss whose update has not come)? Clears the
 * wait once the IOTLB changed. */
static inline bool ring_tlb_waiting(struct vhu_virtq *vq)
{
	if (!__atomic_load_n(&vq->tlb_miss, __ATOMIC_SEQ_CST))
		return false;
	if (iotlb_gen(vq->iotlb) == vq->miss_gen)
		return true;
	__atomic_store_n(&vq->tlb_miss, false, __ATOMIC_SEQ_CST);
	return false;
}

/* A pointer to up to *len bytes at addr (guest-physical, or an IOVA with ACCESS_PLATFORM
 * needing permission perm), *len shortened at a mapping's end. NULL when unmapped; with
 * vq->tlb_miss set when it was an IOTLB miss (sent; the caller undoes and returns -EAGAIN),
 * *err -EACCES for a mapping without the permission. */
void *ring_piece(struct vhu_virtq *vq, uint64_t addr, uint64_t *len, unsigned perm, int *err);
/* A ring area of len contiguous bytes at a ring address (front-end VA, or an IOVA). */
void *ring_area(struct vhu_virtq *vq, uint64_t addr, uint64_t len, unsigned perm);

/* A hint for a receive path: the lines at offsets 0 and off of the buffer d places past the
 * next pop (packed: d descriptor slots, one buffer each when each is a single descriptor) are
 * prefetched, the one at off for writing (the one at 0, when another, for reading: the header
 * is written only where it differs), so that copying into one buffer after another finds the next
 * ones' lines on the way from the driver's CPU instead of waiting for each in turn. Its descriptor
 * is read only for this; the pop reads it again and nothing read here is used for anything
 * else (a prefetch of any address is harmless, never a fault). Only the common case: no IOTLB
 * or owner's translation, no inflight region, a single writable descriptor in the region the
 * ring's cache holds. */
void ring_prefetch_ahead(struct vhu_virtq *vq, unsigned d, uint32_t off);

/* For each of the n popped elements e: the lines at offsets 0 and off of its first writable
 * iovec prefetched as ring_prefetch_ahead does (for writing: PREFETCHW where the CPU has it).
 * The iovecs are the pop's, checked and mapped. */
void ring_prefetch_elems(const struct vhu_elem *e, unsigned n, uint32_t off);

/* Adds [addr, addr + len) of a descriptor to e (readable or writable side). */
int elem_add_desc_slow(struct vhu_virtq *vq, struct vhu_elem *e, uint64_t addr, uint32_t len,
		       bool writable);
static inline int elem_add_desc(struct vhu_virtq *vq, struct vhu_elem *e, uint64_t addr,
				uint32_t len, bool writable)
{
	unsigned used = e->out_num + e->in_num;
	void *p;

	/* The common case, a non-empty descriptor in the region the last one hit, with room
	 * and nothing the slow path would refuse (a readable after a writable one, 4 GiB):
	 * one iovec. Everything else, errors included, goes the one way. */
	if (__builtin_expect(!vq->iotlb && !vq->xlate && len && used < VHU_ELEM_MAX_IOV &&
				     (writable || !e->in_num),
			     1) &&
	    (p = mem_cache_hit(vq->mem, &vq->mc, addr, len)) != NULL) {
		uint32_t *n = writable ? &e->in_num : &e->out_num;
		uint32_t *l = writable ? &e->in_len : &e->out_len;
		if ((uint64_t)*l + len <= UINT32_MAX) {
			e->iov[used].iov_base = p;
			e->iov[used].iov_len = len;
			*n += 1;
			*l += len;
			return 0;
		}
	}
	return elem_add_desc_slow(vq, e, addr, len, writable);
}

#endif
