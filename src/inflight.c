/* SPDX-License-Identifier: MIT */
/* Inflight I/O tracking for split rings, step by step as vhost-user.rst describes it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <linux/virtio_ring.h>

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
	free(vq->inf_head);
	vq->inf_head = NULL;
	vq->resubmit = NULL;
	vq->nresubmit = vq->resubmit_pos = 0;
	vq->inf_batch = 0;
}

/* ---- packed rings ---- */

#define F_AVAIL (1u << VRING_PACKED_DESC_F_AVAIL)
#define F_USED	(1u << VRING_PACKED_DESC_F_USED)

static const struct inflight_packed *sort_region;

static int by_counter_packed(const void *a, const void *b)
{
	uint64_t x = sort_region->desc[*(const uint16_t *)a].counter;
	uint64_t y = sort_region->desc[*(const uint16_t *)b].counter;
	return x < y ? -1 : x > y;
}

int inflight_packed_start(struct vhu_virtq *vq)
{
	struct inflight_packed *r = vq->inf;
	unsigned n = 0, total = 0;
	uint64_t max = 0;

	inflight_reset(vq);
	vq->inf_head = calloc(vq->num, sizeof(*vq->inf_head));
	if (!vq->inf_head)
		return -ENOMEM;
	if (r->version == 0) {
		memset(r->desc, 0, sizeof(r->desc[0]) * vq->num);
		/* The free list ends in desc_num, an index no entry has. */
		for (unsigned i = 0; i < vq->num; i++)
			r->desc[i].next = (uint16_t)(i + 1);
		r->features = 0;
		r->desc_num = vq->num;
		r->free_head = r->old_free_head = 0;
		r->used_idx = r->old_used_idx = vq->used_idx;
		r->used_wrap_counter = r->old_used_wrap_counter = vq->used_wrap;
		r->version = 1;
		vq->inf_counter = 1;
		return 0;
	}
	if (r->version != 1 || r->desc_num != vq->num || r->old_used_idx >= vq->num ||
	    r->used_idx >= vq->num || r->old_free_head >= vq->num || r->free_head >= vq->num) {
		log_err(vq->lg, "vring %u: inflight region version %u for %u entries, ring has %u",
			vq->index, r->version, r->desc_num, vq->num);
		return -EINVAL;
	}
	/* "If used_idx does not match old_used_idx": a push was under way. If its used
	 * descriptor reached the ring, commit it, else roll it back. */
	if (r->used_idx != r->old_used_idx) {
		uint16_t f = le16toh(load_acquire16(&vq->pk.desc[r->old_used_idx].flags));
		uint16_t avail = r->old_used_wrap_counter ? F_AVAIL : F_USED;
		if ((f & (F_AVAIL | F_USED)) != avail) {
			r->old_free_head = r->free_head;
			r->old_used_idx = r->used_idx;
			r->old_used_wrap_counter = r->used_wrap_counter;
		}
	}
	r->free_head = r->old_free_head;
	r->used_idx = r->old_used_idx;
	r->used_wrap_counter = r->old_used_wrap_counter;
	/* Entries on the free list are not in flight, whatever their flag says. */
	uint16_t h = r->free_head;
	for (unsigned i = 0; i < vq->num && h < vq->num; i++) {
		r->desc[h].inflight = 0;
		h = r->desc[h].next;
	}
	vq->resubmit = calloc(vq->num, sizeof(*vq->resubmit));
	if (!vq->resubmit)
		return -ENOMEM;
	for (unsigned i = 0; i < vq->num; i++) {
		const struct inflight_desc_packed *d = &r->desc[i];
		if (d->inflight != 1 || d->num == 0 || d->num > vq->num || d->id >= vq->num)
			continue;
		vq->resubmit[n++] = (uint16_t)i;
		total += d->num;
		if (d->counter > max)
			max = d->counter;
	}
	sort_region = r;
	qsort(vq->resubmit, n, sizeof(*vq->resubmit), by_counter_packed);
	vq->nresubmit = n;
	vq->resubmit_pos = 0;
	vq->inf_counter = max + 1;
	/* Taken so far = used + in flight: the ring position after them is where to go on. */
	unsigned pos = r->used_idx + (total % vq->num);
	bool wrap = r->used_wrap_counter;
	if (total >= vq->num) {
		log_err(vq->lg, "vring %u: %u descriptors in flight on a ring of %u", vq->index,
			total, vq->num);
		return -EINVAL;
	}
	if (pos >= vq->num) {
		pos -= vq->num;
		wrap = !wrap;
	}
	if (n || pos != vq->last_avail_idx)
		log_info(vq->lg, "vring %u: resubmitting %u requests in flight; avail %u (base %u)",
			 vq->index, n, pos, vq->last_avail_idx);
	vq->last_avail_idx = (uint16_t)pos;
	vq->avail_wrap = wrap;
	vq->used_idx = r->used_idx;
	vq->used_wrap = r->used_wrap_counter;
	return 0;
}

/* The region lives in the front-end's memory: an index in it that points outside is the
 * front-end's doing; tracking stops for this ring (and says so) rather than write outside. */
static bool packed_region_bad(struct vhu_virtq *vq, unsigned idx)
{
	if (idx < vq->num)
		return false;
	log_err(vq->lg, "vring %u: inflight region corrupt (index %u); tracking stopped", vq->index,
		idx);
	vq->inf = NULL;
	return true;
}

void inflight_packed_pop(struct vhu_virtq *vq, uint16_t start, uint16_t ndescs, uint16_t id)
{
	struct inflight_packed *r = vq->inf;
	uint16_t head = r->old_free_head, slot = start;

	if (packed_region_bad(vq, head))
		return;
	/* "If d is head descriptor": a new entry, ordered by the global counter. */
	r->desc[head].num = 0;
	r->desc[head].counter = vq->inf_counter++;
	r->desc[head].inflight = 1;
	for (unsigned k = 0; k < ndescs; k++) {
		const struct vring_packed_desc *d = &vq->pk.desc[slot];
		if (packed_region_bad(vq, r->free_head))
			return;
		struct inflight_desc_packed *x = &r->desc[r->free_head];
		if (k + 1 == ndescs)
			r->desc[head].last = r->free_head;
		r->desc[head].num++;
		x->addr = le64toh(d->addr);
		x->len = le32toh(d->len);
		x->flags = le16toh(d->flags);
		x->id = le16toh(d->id);
		r->free_head = x->next;
		if (++slot >= vq->num)
			slot = 0;
	}
	r->old_free_head = r->free_head;
	vq->inf_head[id] = head;
}

void inflight_packed_push_begin(struct vhu_virtq *vq, uint16_t id, uint16_t used_idx,
				bool used_wrap)
{
	struct inflight_packed *r = vq->inf;
	uint16_t h = vq->inf_head[id];

	if (packed_region_bad(vq, r->desc[h].last))
		return;
	r->desc[r->desc[h].last].next = r->free_head;
	r->free_head = h;
	r->used_idx = used_idx;
	r->used_wrap_counter = used_wrap;
}

void inflight_packed_push_end(struct vhu_virtq *vq, uint16_t id)
{
	struct inflight_packed *r = vq->inf;

	r->desc[vq->inf_head[id]].inflight = 0;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	r->old_free_head = r->free_head;
	r->old_used_idx = r->used_idx;
	r->old_used_wrap_counter = r->used_wrap_counter;
}
