/* SPDX-License-Identifier: MIT */
/*
 * Device-side virtqueue access: pop available buffers, push used ones, notify the driver.
 * One generic API over split and packed rings.
 *
 * Threading: a virtqueue is used by one thread at a time. The library calls the device's
 * queue_start() before that thread may touch the queue and queue_stop() when it must stop;
 * queue_stop() must not return while the thread still uses the queue.
 */
#ifndef VHU_VIRTQ_H
#define VHU_VIRTQ_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

struct vhu_virtq;

/* Most iovecs one element can hold; a longer chain is refused (see vhu_virtq_pop()). */
#define VHU_ELEM_MAX_IOV 64

/*
 * One popped buffer. iov[0 .. out_num) are device-readable, iov[out_num .. out_num + in_num)
 * device-writable. The iovecs are views into the front-end's memory: they stay valid until
 * the element is pushed or the queue is stopped, whichever comes first.
 */
struct vhu_elem {
	uint16_t id;	 /* head index (split) or buffer id (packed) */
	uint16_t ndescs; /* descriptors the chain occupied in the ring */
	uint32_t out_num;
	uint32_t in_num;
	uint32_t out_len; /* bytes readable */
	uint32_t in_len;  /* bytes writable */
	struct iovec iov[VHU_ELEM_MAX_IOV];
};

/*
 * Takes the next available buffer. Returns 1 with *e filled, 0 when the ring is empty, or
 * -errno: -EIO when the ring is broken (the front-end wrote something invalid; it was logged
 * once and the ring is not touched again), -ENOBUFS when the chain needs more than
 * VHU_ELEM_MAX_IOV iovecs (the element is still consumed: push it with length 0).
 */
int vhu_virtq_pop(struct vhu_virtq *vq, struct vhu_elem *e);

/*
 * Up to n available buffers into e[0 .. n), with the checks vhu_virtq_pop() makes on every
 * call made once (broken ring, memory poison, IOTLB areas) and, on a split ring, the driver's
 * avail index read at most once. Each element gets exactly the walk and validation of
 * vhu_virtq_pop(): a burst returns what a run of single pops would, the same elements in the
 * same order, grouped. Returns how many elements it filled (0: the ring is empty), or, only
 * when no element came before it, what vhu_virtq_pop() would return for the first buffer:
 * -EIO (the ring is broken) or -ENOBUFS (e[0] is that chain, consumed: push it with length
 * 0). The first buffer that is not an element ends the burst after the elements before it:
 * - a chain needing more than VHU_ELEM_MAX_IOV iovecs stays in the ring, and the next call
 *   returns -ENOBUFS for it;
 * - one the front-end wrote invalid breaks the ring (logged as by vhu_virtq_pop()): the
 *   elements before it are returned (their pushes do nothing: the ring is not touched again),
 *   vhu_virtq_broken() is true, the next call returns -EIO;
 * - an IOTLB miss (ACCESS_PLATFORM): it and the buffers after it stay in the ring.
 * After a restart with inflight tracking, the resubmitted requests come one per call.
 */
int vhu_virtq_pop_burst(struct vhu_virtq *vq, struct vhu_elem *e, unsigned n);

/* Returns an element to the driver as used, with `written` bytes written into its in-iovecs.
 * Not visible to the driver until vhu_virtq_flush(). */
void vhu_virtq_push(struct vhu_virtq *vq, const struct vhu_elem *e, uint32_t written);
/* vhu_virtq_push() of e[0 .. n) in order, written[i] bytes into e[i] (written NULL: 0 for
 * all), the ring's checks made once. */
void vhu_virtq_push_burst(struct vhu_virtq *vq, const struct vhu_elem *e, const uint32_t *written,
			  unsigned n);

/*
 * Live migration: while the front-end has dirty logging on (VHOST_F_LOG_ALL), vhu_virtq_push()
 * marks the pages of the first `written` bytes of the element's device-writable iovecs, and
 * the ring marks its own writes. A device that writes front-end memory anywhere else (a status
 * byte at the end of a buffer pushed with a shorter length, memory it reached through
 * vhu_backend_gpa_to_va()) marks it with this call, after the write and before the push that
 * hands it to the driver. No-op when logging is off. Queue thread, like the other calls.
 */
void vhu_virtq_log_write(struct vhu_virtq *vq, const void *addr, size_t len);

/* Publishes pushed elements and signals the call eventfd unless the driver suppressed it. */
void vhu_virtq_flush(struct vhu_virtq *vq);

/* Position of the next pop, to undo pops that could not be used (mergeable rx buffers that
 * turned out too few). Only pops since the cursor may be rewound, and none of them pushed.
 * Not on a queue with inflight tracking (INFLIGHT_SHMFD), whose pops are recorded for a
 * restart: a rewind there breaks the queue. */
uint32_t vhu_virtq_cursor(const struct vhu_virtq *vq);
void vhu_virtq_rewind(struct vhu_virtq *vq, uint32_t cursor);

/* Asks the driver for kicks again. Returns true when buffers arrived meanwhile: process them,
 * the driver may not kick for those. */
bool vhu_virtq_enable_notify(struct vhu_virtq *vq);
/* Tells the driver kicks are not needed (the device polls). */
void vhu_virtq_disable_notify(struct vhu_virtq *vq);

unsigned vhu_virtq_index(const struct vhu_virtq *vq);
unsigned vhu_virtq_size(const struct vhu_virtq *vq);
/* Kick eventfd to wait on, or -1 when the front-end asked for polling (VRING_NOFD). */
int vhu_virtq_kick_fd(const struct vhu_virtq *vq);
/* Reads the kick eventfd's counter (non-blocking); returns the count, 0 if none. */
uint64_t vhu_virtq_kick_drain(struct vhu_virtq *vq);
/* VIRTIO_F_ACCESS_PLATFORM: the ring's last translation missed in the IOTLB and it waits for
 * the front-end's update; vhu_virtq_pop() returns 0 until then, and the library writes the
 * ring's kick eventfd when it comes. A device with data for the ring (a received frame) may
 * hold it until the kick rather than drop it. False without ACCESS_PLATFORM. */
bool vhu_virtq_iotlb_waiting(struct vhu_virtq *vq);
bool vhu_virtq_enabled(const struct vhu_virtq *vq);
bool vhu_virtq_broken(const struct vhu_virtq *vq);
bool vhu_virtq_packed(const struct vhu_virtq *vq);

/* Device-private pointer, for the application's per-queue state. */
void vhu_virtq_set_priv(struct vhu_virtq *vq, void *priv);
void *vhu_virtq_priv(const struct vhu_virtq *vq);

struct vhu_virtq_stats {
	uint64_t pops;	 /* buffers taken; one taken again after vhu_virtq_rewind() counts twice */
	uint64_t kicks;	 /* kick eventfd reads */
	uint64_t calls;	 /* call eventfd writes */
	uint64_t broken; /* 1 when the ring was marked broken */
	uint64_t stalls; /* call/err writes that blocked and were interrupted (eventfd guard) */
};
void vhu_virtq_stats(const struct vhu_virtq *vq, struct vhu_virtq_stats *st);

#ifdef __cplusplus
}
#endif

#endif
