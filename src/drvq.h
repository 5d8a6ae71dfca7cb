/* SPDX-License-Identifier: MIT */
/*
 * The driver-side virtqueue, shared by both ring layouts (split.c and packed.c hold the
 * "driver half" sections). The front-end owns the ring memory; nothing the device writes into
 * it is trusted: used ids are checked against the buffers outstanding, lengths against their
 * size, and every chaining decision is made from private copies, never from ring memory.
 */
#ifndef VHU_DRVQ_H
#define VHU_DRVQ_H

#include <linux/virtio_ring.h>
#include <stdbool.h>
#include <stdint.h>

#include "barrier.h"
#include "fe_mem.h"
#include "log.h"
#include "vhu/frontend.h"

/* Most parts one indirect table holds; longer buffers use a direct chain. */
#define DRVQ_IND_MAX 16

struct drvq_slot {
	void *token;
	uint32_t in_len; /* writable bytes, the most the device may report */
	uint16_t ndescs; /* ring descriptors the buffer occupies */
	bool busy;
	uint64_t seq; /* order in which buffers were made available */
};

struct vhu_drvq {
	/* ---- data path ---- */
	bool packed;
	bool event_idx;
	bool in_order;
	bool indirect;
	bool broken;
	uint16_t num;
	uint16_t num_free;
	uint16_t free_head;   /* split: first free descriptor; packed: first free buffer id */
	uint16_t avail_idx;   /* split: free-running avail index; packed: next slot */
	bool avail_wrap;      /* packed */
	uint16_t num_added;   /* avail entries (split) or descriptors (packed) since last kick */
	uint16_t last_used;   /* split: free-running; packed: next slot to read */
	bool used_wrap;	      /* packed */
	uint16_t shadow_used; /* split: used->idx as last read */
	union {
		struct {
			struct vring_desc *desc;
			struct vring_avail *avail;
			struct vring_used *used;
		} split;
		struct {
			struct vring_packed_desc *desc;
			struct vring_packed_desc_event *driver;
			struct vring_packed_desc_event *device;
		} pk;
	};
	uint16_t *next;		/* private links: split descriptors / packed buffer ids */
	struct drvq_slot *slot; /* by split head or packed buffer id */
	/* IN_ORDER: ids in the order they were made available, and a batch being returned. */
	uint16_t *order;
	uint16_t order_head, order_tail; /* free-running, masked by num... kept < 2^16 */
	bool batch;
	uint16_t batch_id;
	uint32_t batch_len;
	uint8_t *ind; /* num * DRVQ_IND_MAX indirect descriptors (16 bytes each) */
	const struct fe_mem *mem;
	const struct logger *lg;
	int kick_fd;
	int call_fd;
	unsigned index;
	uint64_t kicks;
	uint64_t seq;

	/* ---- ring memory, for SET_VRING_ADDR ---- */
	void *desc_area, *driver_area, *device_area;
};

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
int drvq_broken(struct vhu_drvq *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- layout halves (driver side) ---- */
int split_drv_init(struct vhu_drvq *q);
int split_drv_add(struct vhu_drvq *q, const struct iovec *iov, unsigned out_num, unsigned in_num,
		  void *token);
bool split_drv_kick_prepare(struct vhu_drvq *q);
/* The next used entry: 1 with the buffer's id (checked outstanding) and length, 0 when none,
 * -EIO (queue broken). Split advances past the entry; packed leaves that to _done. */
int split_drv_used(struct vhu_drvq *q, uint16_t *id, uint32_t *len);
/* The buffer is handed back: its descriptors (and, packed, the used position) move on. */
void split_drv_done(struct vhu_drvq *q, uint16_t id);
bool split_drv_enable_cb(struct vhu_drvq *q);
void split_drv_disable_cb(struct vhu_drvq *q);

int packed_drv_init(struct vhu_drvq *q);
int packed_drv_add(struct vhu_drvq *q, const struct iovec *iov, unsigned out_num, unsigned in_num,
		   void *token);
bool packed_drv_kick_prepare(struct vhu_drvq *q);
int packed_drv_used(struct vhu_drvq *q, uint16_t *id, uint32_t *len);
void packed_drv_done(struct vhu_drvq *q, uint16_t id);
bool packed_drv_enable_cb(struct vhu_drvq *q);
void packed_drv_disable_cb(struct vhu_drvq *q);

#endif
