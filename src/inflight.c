/* SPDX-License-Identifier: MIT */
/* Inflight I/O tracking for split rings, step by step as vhost-user.rst describes it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "inflight.h"
#include "ring.h"
#include "util.h"

size_t inflight_region_size(unsigned queue_size)
{
	/* Split: 16-byte header + 16 bytes per entry; packed: 32 + 32. Either fits. */
	size_t n = 32 + 32 * (size_t)queue_size;
	return (n + 63) & ~(size_t)63;
}

static int by_counter(const void *a, const void *b, void *arg)
{
	const struct inflight_split *r = arg;
	uint64_t x = r->desc[*(const uint16_t *)a].counter,
		 y = r->desc[*(const uint16_t *)b].counter;
	return x < y ? -1 : x > y;
}

int inflight_split_start(struct vhu_virtq *vq)
{
	struct inflight_split *r = vq->inf;
	uint16_t used = le16toh(load_acquire16(&vq->split.used->idx));
	unsigned n = 0;
	uint64_t max = 0;

	inflight_reset(vq);
	if (r->version == 0) {
		/* A fresh buffer from GET_INFLIGHT_FD: nothing in flight. */
		memset(r->desc, 0, sizeof(r->desc[0]) * vq->num);
		r->features = 0;
		r->desc_num = vq->num;
		r->last_batch_head = 0;
		r->used_idx = used;
		r->version = 1;
		vq->inf_counter = 1;
		return 0;
	}
	if (r->version != 1 || r->desc_num != vq->num) {
		log_err(vq->lg, "vring %u: inflight region version %u for %u entries, ring has %u",
			vq->index, r->version, r->desc_num, vq->num);
		return -EINVAL;
	}
	/* "If the value of used_idx does not match the idx value of used ring": the last batch
	 * was published but its inflight flags not yet cleared. */
	if (r->used_idx != used) {
		uint16_t batch = (uint16_t)(used - r->used_idx), h = r->last_batch_head;
		for (unsigned i = 0; i < batch && i < vq->num && h < vq->num; i++) {
			r->desc[h].inflight = 0;
			h = r->desc[h].next;
		}
		r->used_idx = used;
	}
	vq->resubmit = calloc(vq->num, sizeof(*vq->resubmit));
	if (!vq->resubmit)
		return -ENOMEM;
	for (unsigned i = 0; i < vq->num; i++) {
		if (r->desc[i].inflight != 1)
			continue;
		vq->resubmit[n++] = (uint16_t)i;
		if (r->desc[i].counter > max)
			max = r->desc[i].counter;
	}
	qsort_r(vq->resubmit, n, sizeof(*vq->resubmit), by_counter, r);
	vq->nresubmit = n;
	vq->resubmit_pos = 0;
	vq->inf_counter = max + 1;
	/* Every buffer taken so far is either used or in flight: that is where to go on. */
	uint16_t avail = (uint16_t)(used + n);
	if (n || avail != vq->last_avail_idx)
		log_info(vq->lg, "vring %u: resubmitting %u requests in flight; avail %u (base %u)",
			 vq->index, n, avail, vq->last_avail_idx);
	vq->last_avail_idx = vq->shadow_avail_idx = avail;
	vq->used_idx = used;
	return 0;
}

void inflight_split_pop(struct vhu_virtq *vq, uint16_t head)
{
	struct inflight_split *r = vq->inf;

	r->desc[head].counter = vq->inf_counter++;
	r->desc[head].inflight = 1;
}

void inflight_split_push(struct vhu_virtq *vq, uint16_t head)
{
	struct inflight_split *r = vq->inf;

	r->desc[head].next = r->last_batch_head;
	r->last_batch_head = head;
	vq->inf_batch++;
}

void inflight_split_flushed(struct vhu_virtq *vq)
{
	struct inflight_split *r = vq->inf;
	uint16_t h = r->last_batch_head;

	/* used->idx is published: clear the batch, then record the index we cleared up to. */
	for (unsigned i = 0; i < vq->inf_batch && h < vq->num; i++) {
		r->desc[h].inflight = 0;
		h = r->desc[h].next;
	}
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	r->used_idx = vq->used_idx;
	vq->inf_batch = 0;
}

void inflight_reset(struct vhu_virtq *vq)
{
	free(vq->resubmit);
	vq->resubmit = NULL;
	vq->nresubmit = vq->resubmit_pos = 0;
	vq->inf_batch = 0;
}
