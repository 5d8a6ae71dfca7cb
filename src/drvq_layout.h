/* SPDX-License-Identifier: MIT */
/*
 * The driver halves of the two ring layouts, called only by the generic entry points in
 * drvq.c after the broken-queue check: drvq_split.c and drvq_packed.c. They depend only
 * downwards: drvq_ring.h, fe_mem.h, vring.h.
 */
#ifndef VHU_DRVQ_LAYOUT_H
#define VHU_DRVQ_LAYOUT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "drvq_ring.h"

int split_drv_init(struct vhu_drvq *q);
int split_drv_add(struct vhu_drvq *q, const struct iovec *iov, unsigned out_num, unsigned in_num,
		  void *token);
bool split_drv_kick_prepare(struct vhu_drvq *q);
/* The next used entry: 1 with the buffer's id (checked outstanding) and length, 0 when none,
 * -EIO (queue broken). Split advances past the entry; packed leaves that to _done. */
int split_drv_used(struct vhu_drvq *q, uint16_t *id, uint32_t *len);
/* Bursts (vhu_drvq_add_burst): up to n one-part buffers, made available with one publish of
 * the avail index (split) or of the first head's flags (packed); the count added. */
unsigned split_drv_add_burst(struct vhu_drvq *q, const struct iovec *iov, unsigned n, bool writable,
			     void *const *tokens);
/* Reads the device's used index once: the entries up to it are what a burst may take. 0 or
 * -EIO. */
int split_drv_refresh(struct vhu_drvq *q);
/* IN_ORDER: a buffer of a batch after the first is returned: the used index moves past it
 * (a batch takes one used index per buffer). 0, or -EIO when the batch goes past the index. */
static inline int split_drv_batch_step(struct vhu_drvq *q)
{
	/* The index that showed the batch's entry covered the whole batch. */
	if (q->last_used == q->shadow_used)
		return drvq_broken(q, "in-order batch at used index %u ends past it", q->last_used);
	q->last_used++;
	return 0;
}
/* The buffer is handed back: its descriptors (and, packed, the used position) move on. */
void split_drv_done(struct vhu_drvq *q, uint16_t id);
/* Asks for a call; true when a used entry is waiting already. IN_ORDER batches are the
 * generic layer's: it answers for them. */
bool split_drv_enable_cb(struct vhu_drvq *q);
void split_drv_disable_cb(struct vhu_drvq *q);
/* Split: the resume base of drvq_resume_base(), repairing the avail ring first. */
uint16_t split_drv_resume_base(struct vhu_drvq *q);

int packed_drv_init(struct vhu_drvq *q);
int packed_drv_add(struct vhu_drvq *q, const struct iovec *iov, unsigned out_num, unsigned in_num,
		   void *token);
bool packed_drv_kick_prepare(struct vhu_drvq *q);
int packed_drv_used(struct vhu_drvq *q, uint16_t *id, uint32_t *len);
unsigned packed_drv_add_burst(struct vhu_drvq *q, const struct iovec *iov, unsigned n,
			      bool writable, void *const *tokens);
void packed_drv_done(struct vhu_drvq *q, uint16_t id);
bool packed_drv_enable_cb(struct vhu_drvq *q);
void packed_drv_disable_cb(struct vhu_drvq *q);
/* Packed: the position of drvq_resume_base() (avail and used halves equal). */
void packed_drv_resume_base(const struct vhu_drvq *q, uint16_t *pos, bool *wrap);

#endif
