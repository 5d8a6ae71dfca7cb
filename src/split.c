/* SPDX-License-Identifier: MIT */
/*
 * Split virtqueues ("Split Virtqueues" in the virtio spec): device half.
 * Descriptor table, available ring (driver -> device), used ring (device -> driver).
 */
#include <errno.h>
#include <string.h>

#include "inflight.h"
#include "ring.h"
#include "util.h"

/* avail_event lives after the used ring, used_event after the avail ring ("Used Buffer
 * Notification Suppression"). */
static inline uint16_t *avail_event(struct vhu_virtq *vq)
{
	return (uint16_t *)&vq->split.used->ring[vq->num];
}

static inline uint16_t *used_event(struct vhu_virtq *vq)
{
	return &vq->split.avail->ring[vq->num];
}

int split_map(struct vhu_virtq *vq)
{
	uint64_t n = vq->num;
	uint64_t desc_len = 16 * n, avail_len = 6 + 2 * n, used_len = 6 + 8 * n;

	vq->split.desc = mem_uva_to_hva(vq->mem, vq->addr.desc, desc_len);
	vq->split.avail = mem_uva_to_hva(vq->mem, vq->addr.avail, avail_len);
	vq->split.used = mem_uva_to_hva(vq->mem, vq->addr.used, used_len);
	if (!vq->split.desc || !vq->split.avail || !vq->split.used)
		return -EFAULT;
	if ((vq->addr.desc & 15) || (vq->addr.avail & 1) || (vq->addr.used & 3))
		return -EINVAL;
	vq->last_avail_idx = vq->base_avail;
	vq->shadow_avail_idx = vq->base_avail;
	/* A ring that was only paused resumes where it was; a new one takes the used index from
	 * shared memory, which after a reconnect is the truth. */
	vq->used_idx = vq->resume ? vq->base_used : le16toh(load_relaxed16(&vq->split.used->idx));
	return 0;
}

/* Walks one chain starting at head, into e. */
static int split_map_chain(struct vhu_virtq *vq, uint16_t head, struct vhu_elem *e)
{
	const struct vring_desc *table = vq->split.desc;
	unsigned max = vq->num, i = head, count = 0;
	bool indirect = false;
	int ret = 0;

	e->id = head;
	e->ndescs = 1;
	e->out_num = e->in_num = 0;
	e->out_len = e->in_len = 0;
	if (head >= vq->num)
		return ring_broken(vq, "avail ring names head %u, ring size %u", head, vq->num);
	for (;;) {
		const struct vring_desc *d = &table[i];
		uint64_t addr = le64toh(d->addr);
		uint32_t len = le32toh(d->len);
		uint16_t flags = le16toh(d->flags), next = le16toh(d->next);

		if (flags & VRING_DESC_F_INDIRECT) {
			if (indirect)
				return ring_broken(vq, "nested indirect table in chain %u", head);
			if (flags & VRING_DESC_F_NEXT)
				return ring_broken(vq, "indirect descriptor with NEXT in chain %u",
						   head);
			if (len == 0 || len % sizeof(struct vring_desc) ||
			    len / sizeof(struct vring_desc) > RING_MAX_SIZE)
				return ring_broken(vq, "indirect table length %u in chain %u", len,
						   head);
			table = ring_indirect_table(vq, addr, len);
			if (!table)
				return ring_broken(vq, "indirect table 0x%llx+%u outside memory",
						   (unsigned long long)addr, len);
			indirect = true;
			max = len / sizeof(struct vring_desc);
			i = 0;
			count = 0;
			continue;
		}
		if (ret == 0)
			ret = elem_add_desc(vq, e, addr, len, flags & VRING_DESC_F_WRITE);
		if (ret == -EIO)
			return ret;
		if (!(flags & VRING_DESC_F_NEXT))
			break;
		if (++count >= max)
			return ring_broken(vq, "descriptor chain %u loops", head);
		if (next >= max)
			return ring_broken(vq, "descriptor %u: next %u out of range", i, next);
		i = next;
	}
	return ret;
}

int split_pop(struct vhu_virtq *vq, struct vhu_elem *e)
{
	uint16_t head;

	/* After a restart, the requests the previous back-end had in flight come first. */
	if (unlikely(vq->infs && vq->infs->pos < vq->infs->nresub)) {
		head = vq->infs->resub[vq->infs->pos++].head;
		vq->st.pops++;
		int ret = split_map_chain(vq, head, e);
		return ret == 0 ? 1 : ret;
	}
	if (vq->last_avail_idx == vq->shadow_avail_idx) {
		/* Pairs with the driver's release store of avail->idx: ring entries and the
		 * descriptors they name are visible once the index is. */
		vq->shadow_avail_idx = le16toh(load_acquire16(&vq->split.avail->idx));
		if (vq->last_avail_idx == vq->shadow_avail_idx)
			return 0;
		if ((uint16_t)(vq->shadow_avail_idx - vq->last_avail_idx) > vq->num)
			return ring_broken(vq, "avail idx %u is more than %u ahead of %u",
					   vq->shadow_avail_idx, vq->num, vq->last_avail_idx);
	}
	head = le16toh(vq->split.avail->ring[vq->last_avail_idx & (vq->num - 1)]);
	vq->last_avail_idx++;
	vq->st.pops++;
	int ret = split_map_chain(vq, head, e);
	/* Every element the device consumed is tracked, also one it cannot use (-ENOBUFS): it
	 * is pushed like any other, and a restart must find it. */
	if (vq->infs && ret != -EIO) {
		int r = inflight_split_pop(vq, head);
		if (r)
			return r;
	}
	return ret == 0 ? 1 : ret;
}

void split_push(struct vhu_virtq *vq, const struct vhu_elem *e, uint32_t len)
{
	struct vring_used_elem *u = &vq->split.used->ring[vq->used_idx & (vq->num - 1)];

	u->id = htole32(e->id);
	u->len = htole32(len);
	vq->used_idx++;
	if (vq->infs)
		inflight_split_push(vq, e->id);
}

/* Publishes the used index; returns whether the driver wants a notification. */
bool split_flush(struct vhu_virtq *vq)
{
	uint16_t old = vq->signalled_used, new = vq->used_idx;
	bool valid = vq->signalled_used_valid;

	if (valid && old == new)
		return false;
	/* Pairs with the driver's acquire load of used->idx: used entries are visible first. */
	store_release16(&vq->split.used->idx, htole16(new));
	if (vq->infs)
		inflight_split_flushed(vq);
	vq->signalled_used = new;
	vq->signalled_used_valid = true;
	/* Pairs with the driver's fence between writing used_event / flags and reading used->idx:
	 * either it sees our index or we see its request for a notification. */
	full_fence();
	if (vq->event_idx)
		return !valid ||
		       vring_need_event(le16toh(load_relaxed16(used_event(vq))), new, old);
	return !(le16toh(load_relaxed16(&vq->split.avail->flags)) & VRING_AVAIL_F_NO_INTERRUPT);
}

bool split_enable_notify(struct vhu_virtq *vq)
{
	if (vq->event_idx)
		store_relaxed16(avail_event(vq), htole16(vq->last_avail_idx));
	else
		store_relaxed16(&vq->split.used->flags, 0);
	/* Pairs with the driver's fence between publishing avail->idx and reading our flag or
	 * avail_event: either we see its new buffers now, or it sees that it must kick. */
	full_fence();
	vq->shadow_avail_idx = le16toh(load_acquire16(&vq->split.avail->idx));
	return vq->shadow_avail_idx != vq->last_avail_idx;
}

void split_disable_notify(struct vhu_virtq *vq)
{
	/* With EVENT_IDX, leaving avail_event behind is enough: the driver kicks only when it
	 * crosses it. */
	if (!vq->event_idx)
		store_relaxed16(&vq->split.used->flags, htole16(VRING_USED_F_NO_NOTIFY));
}

/* ==== driver half ==== */

#include "drvq.h"

int split_drv_init(struct vhu_drvq *q)
{
	unsigned n = q->num;

	/* "Virtqueue Part Sizes": descriptor table 16-byte aligned, available ring 2, used 4. */
	q->split.desc = fe_mem_alloc((struct fe_mem *)q->mem, 16u * n, 4096);
	q->split.avail = fe_mem_alloc((struct fe_mem *)q->mem, 6 + 2u * n, 64);
	q->split.used = fe_mem_alloc((struct fe_mem *)q->mem, 6 + 8u * n, 4096);
	if (!q->split.desc || !q->split.avail || !q->split.used)
		return -ENOMEM;
	q->desc_area = q->split.desc;
	q->driver_area = q->split.avail;
	q->device_area = q->split.used;
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

	need = ind ? 1 : n;
	if (q->num_free < need)
		return -ENOSPC;
	for (unsigned i = 0; i < n; i++) {
		uint64_t a = fe_mem_gpa(q->mem, iov[i].iov_base, iov[i].iov_len);
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
		split_drv_fill(&q->split.desc[head], fe_mem_gpa(q->mem, t, 16u * n), 16u * n,
			       VRING_DESC_F_INDIRECT, 0);
		q->free_head = q->next[head];
	} else {
		for (unsigned i = 0; i < n; i++) {
			uint64_t a = i < DRVQ_IND_MAX
					     ? gpa[i]
					     : fe_mem_gpa(q->mem, iov[i].iov_base, iov[i].iov_len);
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
	if (q->in_order)
		q->order[(q->order_tail++) % q->num] = head;
	q->split.avail->ring[q->avail_idx & (q->num - 1)] = htole16(head);
	q->avail_idx++;
	q->num_added++;
	/* Pairs with the device's acquire load of avail->idx: the descriptors and the ring
	 * entry are visible first. */
	store_release16(&q->split.avail->idx, htole16(q->avail_idx));
	return 0;
}

bool split_drv_kick_prepare(struct vhu_drvq *q)
{
	uint16_t new = q->avail_idx, old = (uint16_t)(new - q->num_added);

	q->num_added = 0;
	/* Pairs with the device's fence between writing avail_event (or the used flags) and
	 * re-reading avail->idx: either it sees our entries or we see its request for a kick. */
	full_fence();
	if (q->event_idx) {
		uint16_t ev = le16toh(load_relaxed16((uint16_t *)&q->split.used->ring[q->num]));
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
	s->busy = false;
}

int split_drv_used(struct vhu_drvq *q, uint16_t *id, uint32_t *len)
{
	if (q->last_used == q->shadow_used) {
		/* Pairs with the device's release store of used->idx. */
		q->shadow_used = le16toh(load_acquire16(&q->split.used->idx));
		if ((uint16_t)(q->shadow_used - q->last_used) > q->num - q->num_free)
			return drvq_broken(q, "used index moved from %u to %u with %u buffers out",
					   q->last_used, q->shadow_used, q->num - q->num_free);
		if (q->last_used == q->shadow_used)
			return 0;
	}
	struct vring_used_elem *u = &q->split.used->ring[q->last_used & (q->num - 1)];
	uint32_t i = le32toh(u->id);
	if (i >= q->num || !q->slot[i].busy)
		return drvq_broken(q, "used entry names buffer %u, which is not outstanding", i);
	*id = (uint16_t)i;
	*len = le32toh(u->len);
	q->last_used++;
	return 1;
}

bool split_drv_enable_cb(struct vhu_drvq *q)
{
	if (q->event_idx)
		store_relaxed16(&q->split.avail->ring[q->num], htole16(q->last_used));
	else
		store_relaxed16(&q->split.avail->flags, 0);
	/* Pairs with the device's fence between publishing used->idx and reading our flag. */
	full_fence();
	return !q->batch && le16toh(load_acquire16(&q->split.used->idx)) != q->last_used;
}

void split_drv_disable_cb(struct vhu_drvq *q)
{
	store_relaxed16(&q->split.avail->flags, htole16(VRING_AVAIL_F_NO_INTERRUPT));
	if (q->event_idx) /* as far ahead as the index space allows */
		store_relaxed16(&q->split.avail->ring[q->num],
				htole16((uint16_t)(q->last_used + 0x7fff)));
}
