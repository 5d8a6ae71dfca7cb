/* SPDX-License-Identifier: MIT */
/*
 * Split virtqueues ("Split Virtqueues" in the virtio spec): driver half. The front-end writes
 * descriptors and the available ring, and reads the used ring the device writes (checked:
 * drvq_ring.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "drvq_layout.h"
#include "util.h"
#include "vring.h"

int split_drv_init(struct vhu_drvq *q)
{
	unsigned n = q->num;

	/* "Virtqueue Part Sizes" (vring.h), each part placed well beyond its alignment. */
	q->split.desc = fe_mem_alloc((struct fe_mem *)q->mem, vring_split_desc_size(n), 4096);
	q->split.avail = fe_mem_alloc((struct fe_mem *)q->mem, vring_split_avail_size(n), 64);
	q->split.used = fe_mem_alloc((struct fe_mem *)q->mem, vring_split_used_size(n), 4096);
	if (!q->split.desc || !q->split.avail || !q->split.used)
		return -ENOMEM;
	q->desc_area = q->split.desc;
	q->driver_area = q->split.avail;
	q->device_area = q->split.used;
	q->written_area = q->split.used;
	for (unsigned i = 0; i < n; i++)
		q->next[i] = (uint16_t)(i + 1 < n ? i + 1 : 0);
	q->num_free = (uint16_t)n;
	q->free_head = 0;
	return 0;
}

static void split_drv_fill(struct vring_desc *d, uint64_t addr, uint32_t len, uint16_t flags,
			   uint16_t next)
{
	d->addr = htole64(addr);
	d->len = htole32(len);
	d->flags = htole16(flags);
	d->next = htole16(next);
}

int split_drv_add(struct vhu_drvq *q, const struct iovec *iov, unsigned out_num, unsigned in_num,
		  void *token)
{
	unsigned n = out_num + in_num, need;
	bool ind = q->indirect && n > 1 && n <= DRVQ_IND_MAX;
	uint16_t head = q->free_head, idx = head, last = head;
	uint32_t in_len = 0;
	uint64_t gpa[DRVQ_IND_MAX];
	struct fe_mem_xlat x = fe_mem_xlat(q->mem); /* once per call, as in bursts */

	need = ind ? 1 : n;
	if (q->num_free < need)
		return -ENOSPC;
	for (unsigned i = 0; i < n; i++) {
		uint64_t a = fe_mem_xlat_dma(&x, iov[i].iov_base, iov[i].iov_len);
		if (!a || iov[i].iov_len > UINT32_MAX)
			return -EFAULT;
		if (i < DRVQ_IND_MAX)
			gpa[i] = a;
		if (i >= out_num)
			in_len += (uint32_t)iov[i].iov_len;
	}
	if (ind) {
		struct vring_desc *t =
			(struct vring_desc *)(q->ind + (size_t)head * DRVQ_IND_MAX * 16);
		for (unsigned i = 0; i < n; i++)
			split_drv_fill(&t[i], gpa[i], (uint32_t)iov[i].iov_len,
				       (uint16_t)((i >= out_num ? VRING_DESC_F_WRITE : 0) |
						  (i + 1 < n ? VRING_DESC_F_NEXT : 0)),
				       (uint16_t)(i + 1));
		split_drv_fill(&q->split.desc[head], fe_mem_xlat_dma(&x, t, 16u * n), 16u * n,
			       VRING_DESC_F_INDIRECT, 0);
		q->free_head = q->next[head];
	} else {
		for (unsigned i = 0; i < n; i++) {
			uint64_t a = i < DRVQ_IND_MAX
					     ? gpa[i]
					     : fe_mem_xlat_dma(&x, iov[i].iov_base, iov[i].iov_len);
			split_drv_fill(&q->split.desc[idx], a, (uint32_t)iov[i].iov_len,
				       (uint16_t)((i >= out_num ? VRING_DESC_F_WRITE : 0) |
						  (i + 1 < n ? VRING_DESC_F_NEXT : 0)),
				       q->next[idx]);
			last = idx;
			idx = q->next[idx];
		}
		q->free_head = q->next[last];
	}
	q->num_free = (uint16_t)(q->num_free - need);
	q->slot[head] = (struct drvq_slot){ token, in_len, (uint16_t)need, true, q->seq++ };
	q->writable_out = (uint16_t)(q->writable_out + (in_len != 0));
	if (q->in_order)
		q->order[drvq_order_at(q, &q->order_tail)] = head;
	q->split.avail->ring[q->avail_idx & (q->num - 1)] = htole16(head);
	q->avail_idx++;
	q->num_added++;
	/* Pairs with the device's acquire load of avail->idx: the descriptors and the ring
	 * entry are visible first. */
	store_release16(&q->split.avail->idx, htole16(q->avail_idx));
	return 0;
}

/*
 * Cache lines (docs/ARCHITECTURE.md, "Cache lines per burst"): a burst of 32 one-part
 * buffers writes 32 descriptors (8 lines, written whole, 4 descriptors each), 32 avail
 * entries (1 line of 64 two-byte entries, 2 at a wrap) and the avail index (1 line, with the
 * flags): 10 lines move to the device once each, against 32 index publishes, each pulling the
 * index line back and forth, with one vhu_drvq_add() per buffer.
 */
unsigned split_drv_add_burst(struct vhu_drvq *q, const struct iovec *iov, unsigned n, bool writable,
			     void *const *tokens)
{
	/* The queue's fields in locals for the loop: the descriptor and ring stores could
	 * otherwise alias them and force a reload after each. */
	struct fe_mem_xlat x = fe_mem_xlat(q->mem);
	struct vring_desc *desc = q->split.desc;
	struct vring_avail *ring = q->split.avail;
	struct drvq_slot *slot = q->slot;
	const uint16_t *next = q->next;
	uint16_t *order = q->in_order ? q->order : NULL;
	uint16_t mask = (uint16_t)(q->num - 1), avail = q->avail_idx, head = q->free_head;
	uint16_t otail = q->order_tail; /* a split ring's size is a power of two */
	uint16_t flags = writable ? VRING_DESC_F_WRITE : 0;
	uint64_t seq = q->seq;
	unsigned i;

	if (n > q->num_free)
		n = q->num_free;
	for (i = 0; i < n; i++) {
		uint64_t a = fe_mem_xlat_dma(&x, iov[i].iov_base, iov[i].iov_len);
		uint32_t len = (uint32_t)iov[i].iov_len;
		if (!a || iov[i].iov_len > UINT32_MAX)
			break;
		/* The whole descriptor, in field order: 4 of them fill a line. */
		split_drv_fill(&desc[head], a, len, flags, 0);
		struct drvq_slot *sl = &slot[head];
		sl->token = tokens[i];
		sl->in_len = writable ? len : 0;
		sl->ndescs = 1;
		sl->busy = true;
		if (!order) /* split_drv_resume_base() sorts by it; IN_ORDER needs no sort */
			sl->seq = seq++;
		if (order)
			order[otail++ & mask] = head;
		ring->ring[avail++ & mask] = htole16(head);
		head = next[head];
	}
	q->free_head = head;
	q->num_free = (uint16_t)(q->num_free - i);
	q->num_added = (uint16_t)(q->num_added + i);
	q->writable_out = (uint16_t)(q->writable_out + (writable ? i : 0));
	q->avail_idx = avail;
	q->order_tail = otail;
	q->seq = seq;
	/* One publish per burst. Pairs with the device's acquire load of avail->idx: the
	 * descriptors and the ring entries are visible first. */
	if (i)
		store_release16(&ring->idx, htole16(avail));
	return i;
}

bool split_drv_kick_prepare(struct vhu_drvq *q)
{
	uint16_t new = q->avail_idx, old = (uint16_t)(new - q->num_added);

	q->num_added = 0;
	/* Pairs with the device's fence between writing avail_event (or the used flags) and
	 * re-reading avail->idx: either it sees our entries or we see its request for a kick. */
	full_fence();
	if (q->event_idx) {
		uint16_t ev =
			le16toh(load_relaxed16(vring_split_avail_event(q->split.used, q->num)));
		return vring_need_event(ev, new, old);
	}
	return !(le16toh(load_relaxed16(&q->split.used->flags)) & VRING_USED_F_NO_NOTIFY);
}

/* Returns a completed buffer's descriptors to the free list. */
void split_drv_done(struct vhu_drvq *q, uint16_t head)
{
	struct drvq_slot *s = &q->slot[head];
	uint16_t last = head;

	for (unsigned i = 1; i < s->ndescs; i++)
		last = q->next[last];
	q->next[last] = q->free_head;
	q->free_head = head;
	q->num_free = (uint16_t)(q->num_free + s->ndescs);
	q->writable_out = (uint16_t)(q->writable_out - (s->in_len != 0));
	s->busy = false;
}

/* The device published used entries [from, to) and the index: recorded once per batch,
 * not per entry, for vhu_drvq_device_writes(). */
static void split_drv_written(struct vhu_drvq *q, uint16_t from, uint16_t to)
{
	unsigned a = from & (q->num - 1u), n = (uint16_t)(to - from);
	unsigned first = n < q->num - a ? n : q->num - a;

	drvq_written(q, q->split.used, 4); /* flags, idx */
	drvq_written(q, &q->split.used->ring[a], 8u * first);
	if (n > first)
		drvq_written(q, &q->split.used->ring[0], 8u * (n - first));
}

/* The one read of the device's used index per burst (1 line, with the used flags; it moves
 * from the device once per burst the device published). */
int split_drv_refresh(struct vhu_drvq *q)
{
	uint16_t old = q->shadow_used;

	if (q->last_used != q->shadow_used)
		return 0; /* entries left from the last read */
	/* Pairs with the device's release store of used->idx. */
	q->shadow_used = le16toh(load_acquire16(&q->split.used->idx));
	if ((uint16_t)(q->shadow_used - q->last_used) > q->num - q->num_free)
		return drvq_broken(q, "used index moved from %u to %u with %u buffers out",
				   q->last_used, q->shadow_used, q->num - q->num_free);
	/* IN_ORDER: a device that batches writes one entry per batch, at its first slot,
	 * unless every buffer out is writable (one entry each): then what it wrote is recorded
	 * as the entries are read (split_drv_used()). */
	if (q->shadow_used != old) {
		unsigned out = (q->order_tail + 2u * q->num - q->order_head) % (2u * q->num);
		q->written_each = q->in_order && q->writable_out != out;
		if (q->written_each)
			drvq_written(q, q->split.used, 4);
		else
			split_drv_written(q, q->last_used, q->shadow_used);
	}
	return 0;
}

int split_drv_used(struct vhu_drvq *q, uint16_t *id, uint32_t *len)
{
	if (q->last_used == q->shadow_used) {
		if (split_drv_refresh(q) < 0)
			return -EIO;
		if (q->last_used == q->shadow_used)
			return 0;
	}
	struct vring_used_elem *u = &q->split.used->ring[q->last_used & (q->num - 1)];
	uint32_t i = le32toh(u->id);
	if (i >= q->num || !q->slot[i].busy)
		return drvq_broken(q, "used entry names buffer %u, which is not outstanding", i);
	*id = (uint16_t)i;
	*len = le32toh(u->len);
	if (q->written_each)
		drvq_written(q, u, sizeof(*u));
	q->last_used++;
	return 1;
}

bool split_drv_enable_cb(struct vhu_drvq *q)
{
	if (q->event_idx)
		store_relaxed16(vring_split_used_event(q->split.avail, q->num),
				htole16(q->last_used));
	else
		store_relaxed16(&q->split.avail->flags, 0);
	/* Pairs with the device's fence between publishing used->idx and reading our flag. */
	full_fence();
	return le16toh(load_acquire16(&q->split.used->idx)) != q->last_used;
}

void split_drv_disable_cb(struct vhu_drvq *q)
{
	store_relaxed16(&q->split.avail->flags, htole16(VRING_AVAIL_F_NO_INTERRUPT));
	if (q->event_idx) /* as far ahead as the index space allows */
		store_relaxed16(vring_split_used_event(q->split.avail, q->num),
				htole16((uint16_t)(q->last_used + 0x7fff)));
}

/* A buffer not completed: the order it was made available in, and its head. Sorted as
 * pairs, so the comparison needs no context (no object in a global for qsort, which two
 * queues resuming on two threads would race on). */
struct pending {
	uint64_t seq;
	uint16_t head;
};

static int by_seq(const void *a, const void *b)
{
	uint64_t x = ((const struct pending *)a)->seq, y = ((const struct pending *)b)->seq;
	return x < y ? -1 : x > y;
}

uint16_t split_drv_resume_base(struct vhu_drvq *q)
{
	uint16_t used = le16toh(load_acquire16(&q->split.used->idx)), n = 0;
	uint16_t out = (uint16_t)(q->avail_idx - used);

	if (q->in_order || out == 0 || out > q->num)
		return used;
	uint8_t *done = calloc(q->num, 1);
	struct pending *heads = calloc(q->num, sizeof(*heads));
	if (!done || !heads) {
		free(done);
		free(heads);
		return used;
	}
	/* Completed, not yet taken by the application: they stay in the used ring. */
	for (uint16_t i = q->last_used; i != used; i++) {
		uint32_t id = le32toh(q->split.used->ring[i & (q->num - 1)].id);
		if (id < q->num)
			done[id] = 1;
	}
	for (unsigned h = 0; h < q->num; h++)
		if (q->slot[h].busy && !done[h])
			heads[n++] = (struct pending){ q->slot[h].seq, (uint16_t)h };
	if (n == out) {
		qsort(heads, n, sizeof(*heads), by_seq);
		for (uint16_t i = 0; i < n; i++)
			q->split.avail->ring[(uint16_t)(used + i) & (q->num - 1)] =
				htole16(heads[i].head);
		/* Pairs with the new back-end's acquire load of avail->idx (unchanged value). */
		store_release16(&q->split.avail->idx, htole16(q->avail_idx));
	} else {
		log_warn(q->lg, "queue %u: %u buffers incomplete but %u after the used index",
			 q->index, n, out);
	}
	free(done);
	free(heads);
	return used;
}
