/* SPDX-License-Identifier: MIT */
/*
 * Test driver: a raw vhost-user front-end for tests. It owns a memfd "guest memory" and writes
 * split or packed rings into it by hand, so a test can put any descriptor, valid or hostile,
 * in front of a back-end. Not the front-end library: no abstraction, no recovery.
 */
#ifndef VHU_TEST_DRV_H
#define VHU_TEST_DRV_H

#include <stdbool.h>
#include <stdint.h>

#include <linux/virtio_ring.h>
#include <vhu/proto.h>

#define DRV_MEM_SIZE (4u << 20)
#define DRV_GPA_BASE 0x100000ull /* guest-physical address of byte 0 of the memfd */
#define DRV_QSIZE    64
#define DRV_NQ	     3 /* rx, tx and a control queue */

struct drv_ring {
	/* split */
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	/* packed */
	struct vring_packed_desc *pdesc;
	struct vring_packed_desc_event *drv_ev, *dev_ev;
	uint16_t avail_idx; /* split: next avail idx; packed: next slot */
	bool avail_wrap;
	uint16_t used_seen; /* split: last used idx read; packed: next slot to read */
	bool used_wrap;
	uint64_t desc_off, avail_off, used_off; /* offsets in memory */
	uint64_t buf_off;			/* start of this ring's buffer area */
	int kick, call;
};

struct drv {
	int fd;
	int memfd;
	uint8_t *mem;
	bool packed;
	unsigned nq; /* rings drv_start() sets up: 2 unless the test asks for the third */
	/* Set after drv_open: drv_start() negotiates ACCESS_PLATFORM and BACKEND_REQ (-ENOTSUP
	 * when not offered), gives the back-end a channel (chan: our end) and ring addresses as
	 * IOVAs equal to the guest-physical addresses; nothing is mapped until the test sends
	 * IOTLB updates (drv_iotlb). */
	bool iommu;
	int chan;
	uint64_t features, protocol_features;
	struct drv_ring r[DRV_NQ];
};

/* Connects to path (retrying up to 5 s) and maps the memory. 0 or -errno. */
int drv_open(struct drv *d, const char *path);
/* Uses an already connected socket. */
int drv_open_fd(struct drv *d, int fd);
void drv_close(struct drv *d);

/* Sends a message; payload may be NULL when size is 0. */
int drv_send(struct drv *d, uint32_t req, uint32_t flags, const void *payload, uint32_t size,
	     const int *fds, unsigned nfds);
/* Receives a reply within timeout_ms; returns payload size or -errno (-ECONNRESET on close). */
int drv_recv(struct drv *d, struct vhu_hdr *h, void *payload, uint32_t max, int timeout_ms);
/* Sends a u64 request with NEED_REPLY and returns the ack value (or -errno). */
int64_t drv_call_ack(struct drv *d, uint32_t req, const void *payload, uint32_t size,
		     const int *fds, unsigned nfds);
/* GET_* returning a u64. */
int drv_get_u64(struct drv *d, uint32_t req, uint64_t *v);

/* Full start: features (offered & want), protocol features, memory table, both rings. */
int drv_start(struct drv *d, bool packed, uint64_t want_features);
/* Sends the memory table (one region covering the memfd). */
int drv_set_mem(struct drv *d);

/* IOTLB_MSG of type (2 update, 3 invalidate) for [iova, iova + size) at memory offset
 * uaddr_off (the uaddr is d->mem + it) with perm; returns the back-end's u64 status or -errno. */
int64_t drv_iotlb(struct drv *d, uint8_t type, uint64_t iova, uint64_t size, uint64_t uaddr_off,
		  uint8_t perm);

/* Guest-physical address of a memory offset. */
static inline uint64_t drv_gpa(uint64_t off)
{
	return DRV_GPA_BASE + off;
}

/* Adds a buffer made of n descriptors (addr/len/flags given by the caller, flags in virtio
 * VRING_DESC_F_* terms) to ring q, and kicks. Returns the head/id used. */
int drv_add_raw(struct drv *d, unsigned q, const uint64_t *addr, const uint32_t *len,
		const uint16_t *flags, unsigned n);
/* Adds one buffer of len bytes at buffer slot `slot` of ring q (writable or readable). */
int drv_add_buf(struct drv *d, unsigned q, unsigned slot, uint32_t len, bool writable);
void drv_kick(struct drv *d, unsigned q);
/* Waits for the next used element on ring q; returns 1 with id/len, 0 on timeout. */
int drv_get_used(struct drv *d, unsigned q, uint32_t *id, uint32_t *len, int timeout_ms);
/* Pointer to buffer slot `slot` of ring q (2 KiB slots). */
uint8_t *drv_buf(struct drv *d, unsigned q, unsigned slot);
uint64_t drv_buf_gpa(struct drv *d, unsigned q, unsigned slot);

#endif
