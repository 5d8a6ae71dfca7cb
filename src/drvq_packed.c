/* SPDX-License-Identifier: MIT */
/*
 * Packed virtqueues ("Packed Virtqueues" in the virtio spec): driver half. The front-end
 * makes descriptors available and reads back the ones the device marked used (checked:
 * drvq_ring.h); event suppression structures replace the split ring's flags and event idx.
 */
#include <errno.h>
#include <string.h>

#include "drvq_layout.h"
#include "util.h"
#include "vring.h"

int packed_drv_init(struct vhu_drvq *q)
{
	unsigned n = q->num;

	/* "Packed Virtqueues" (vring.h), each part placed well beyond its alignment. */
	q->pk.desc = fe_mem_alloc((struct fe_mem *)q->mem, vring_packed_desc_size(n), 4096);
	q->pk.driver = fe_mem_alloc((struct fe_mem *)q->mem, VRING_PACKED_EVENT_SIZE, 64);
	q->pk.device = fe_mem_alloc((struct fe_mem *)q->mem, VRING_PACKED_EVENT_SIZE, 64);
	if (!q->pk.desc || !q->pk.driver || !q->pk.device)
		return -ENOMEM;
	q->desc_area = q->pk.desc;
	q->driver_area = q->pk.driver;
	q->device_area = q->pk.device;
	q->written_area = q->pk.desc;
	for (unsigned i = 0; i < n; i++)
		q->next[i] = (uint16_t)(i + 1 < n ? i + 1 : 0);
	q->num_free = (uint16_t)n;
	q->free_head = 0;
	q->avail_wrap = true;
	q->used_wrap = true;
	return 0;
}

int packed_drv_add(struct vhu_drvq *q, const struct iovec *iov, unsigned out_num, unsigned in_num,
		   void *token)
{
	unsigned n = out_num + in_num, need;
	bool ind = q->indirect && n > 1 && n <= DRVQ_IND_MAX;
	uint16_t id = q->free_head, s = q->avail_idx, first = s, first_flags = 0;
	bool wrap = q->avail_wrap;
	uint32_t in_len = 0;
	struct fe_mem_xlat x = fe_mem_xlat(q->mem); /* once per call, as in bursts */

	need = ind ? 1 : n;
	if (q->num_free < need)
		return -ENOSPC;
	for (unsigned i = 0; i < n; i++) {
		if (!fe_mem_xlat_dma(&x, iov[i].iov_base, iov[i].iov_len) ||
		    iov[i].iov_len > UINT32_MAX)
			return -EFAULT;
		if (i >= out_num)
			in_len += (uint32_t)iov[i].iov_len;
	}
	if (ind) {
		struct vring_packed_desc *t =
			(struct vring_packed_desc *)(q->ind + (size_t)id * DRVQ_IND_MAX * 16);
		for (unsigned i = 0; i < n; i++) {
			t[i].addr = htole64(fe_mem_xlat_dma(&x, iov[i].iov_base, iov[i].iov_len));
			t[i].len = htole32((uint32_t)iov[i].iov_len);
			t[i].id = 0;
			t[i].flags = htole16(i >= out_num ? VRING_DESC_F_WRITE : 0);
		}
		struct vring_packed_desc *d = &q->pk.desc[s];
		d->addr = htole64(fe_mem_xlat_dma(&x, t, 16u * n));
		d->len = htole32(16u * n);
		d->id = htole16(id);
		first_flags = (uint16_t)(VRING_DESC_F_INDIRECT | vring_packed_avail_bits(wrap));
		vring_packed_advance(&s, &wrap, 1, q->num);
	} else {
		for (unsigned i = 0; i < n; i++) {
			struct vring_packed_desc *d = &q->pk.desc[s];
			uint16_t f = (uint16_t)((i >= out_num ? VRING_DESC_F_WRITE : 0) |
						(i + 1 < n ? VRING_DESC_F_NEXT : 0) |
						vring_packed_avail_bits(wrap));
			d->addr = htole64(fe_mem_xlat_dma(&x, iov[i].iov_base, iov[i].iov_len));
			d->len = htole32((uint32_t)iov[i].iov_len);
			d->id = htole16(id);
			if (i == 0)
				first_flags = f;
			else
				d->flags = htole16(f);
			vring_packed_advance(&s, &wrap, 1, q->num);
		}
	}
	q->free_head = q->next[id];
	q->num_free = (uint16_t)(q->num_free - need);
	q->slot[id] = (struct drvq_slot){ token, in_len, (uint16_t)need, true, q->seq++ };
	q->writable_out = (uint16_t)(q->writable_out + (in_len != 0));
	if (q->in_order)
		q->order[drvq_order_at(q, &q->order_tail)] = id;
	q->avail_idx = s;
	q->avail_wrap = wrap;
	q->num_added = (uint16_t)(q->num_added + need);
	/* Pairs with the device's acquire load of the head's flags: the rest of the chain is
	 * written first. */
	store_release16(&q->pk.desc[first].flags, htole16(first_flags));
	return 0;
}

/*
 * Cache lines (docs/ARCHITECTURE.md, "Cache lines per burst"): a burst of 32 one-part
 * buffers writes 32 descriptors, whole, 4 to a 64-byte line: 8 lines (9 when the burst does not
 * start on a line), each moving to the device once. The device writes the used descriptors
 * back into the same lines, so each moves back once when the driver reaps them: 16 (18)
 * transfers per 32 buffers, no index line.
 */
unsigned packed_drv_add_burst(struct vhu_drvq *q, const struct iovec *iov, unsigned n,
			      bool writable, void *const *tokens)
{
	/* The queue's fields in locals for the loop: the descriptor stores could otherwise
	 * alias them and force a reload after each. */
	struct fe_mem_xlat x = fe_mem_xlat(q->mem);
	struct vring_packed_desc *desc = q->pk.desc;
	struct drvq_slot *slot = q->slot;
	const uint16_t *next = q->next;
	uint16_t s = q->avail_idx, first = s, first_flags = 0, id = q->free_head, num = q->num;
	uint16_t wflag = writable ? VRING_DESC_F_WRITE : 0;
	uint16_t f = (uint16_t)(wflag | vring_packed_avail_bits(q->avail_wrap));
	uint16_t *order = q->in_order ? q->order : NULL, otail = q->order_tail;
	bool wrap = q->avail_wrap, pow2 = q->pow2;
	unsigned i;

	if (n > q->num_free)
		n = q->num_free;
	for (i = 0; i < n; i++) {
		uint64_t a = fe_mem_xlat_dma(&x, iov[i].iov_base, iov[i].iov_len);
		uint32_t len = (uint32_t)iov[i].iov_len;
		if (!a || iov[i].iov_len > UINT32_MAX)
			break;
		struct vring_packed_desc *d = &desc[s];
		/* The whole descriptor, in field order; every head but the first is published
		 * with its own flags here: the device reads the ring in order, so it sees them
		 * only after the first head's flags, stored last. */
		d->addr = htole64(a);
		d->len = htole32(len);
		d->id = htole16(id);
		if (i == 0)
			first_flags = f;
		else
			store_relaxed16(&d->flags, htole16(f));
		/* No seq: only a split ring's resume (split_drv_resume_base()) reads it. */
		struct drvq_slot *sl = &slot[id];
		sl->token = tokens[i];
		sl->in_len = writable ? len : 0;
		sl->ndescs = 1;
		sl->busy = true;
		if (order)
			order[drvq_order_step(num, pow2, &otail)] = id;
		id = next[id];
		if (++s == num) {
			/* "the ... Wrap Counter ... is changed" at the end of the ring */
			s = 0;
			wrap = !wrap;
			f = (uint16_t)(wflag | vring_packed_avail_bits(wrap));
		}
	}
	q->free_head = id;
	q->num_free = (uint16_t)(q->num_free - i);
	q->num_added = (uint16_t)(q->num_added + i);
	q->writable_out = (uint16_t)(q->writable_out + (writable ? i : 0));
	q->avail_idx = s;
	q->avail_wrap = wrap;
	q->order_tail = otail;
	/* One publish per burst. Pairs with the device's acquire load of the first head's
	 * flags: every descriptor of the burst is written first. */
	if (i)
		store_release16(&desc[first].flags, htole16(first_flags));
	return i;
}

bool packed_drv_kick_prepare(struct vhu_drvq *q)
{
	uint16_t new = q->avail_idx, old = (uint16_t)(new - q->num_added), flags, off_wrap, ev;

	q->num_added = 0;
	/* Pairs with the device's fence between writing its event suppression structure and
	 * re-reading descriptor flags. */
	full_fence();
	flags = le16toh(load_relaxed16(&q->pk.device->flags));
	if (flags != VRING_PACKED_EVENT_FLAG_DESC || !q->event_idx)
		return flags != VRING_PACKED_EVENT_FLAG_DISABLE;
	off_wrap = le16toh(load_relaxed16(&q->pk.device->off_wrap));
	ev = vring_packed_event_idx(off_wrap, q->avail_wrap, q->num);
	return vring_need_event(ev, new, old);
}

/* Moves the used position past a completed buffer and frees its id. */
void packed_drv_done(struct vhu_drvq *q, uint16_t id)
{
	struct drvq_slot *s = &q->slot[id];

	vring_packed_advance(&q->last_used, &q->used_wrap, s->ndescs, q->num);
	q->next[id] = q->free_head;
	q->free_head = id;
	q->num_free = (uint16_t)(q->num_free + s->ndescs);
	q->writable_out = (uint16_t)(q->writable_out - (s->in_len != 0));
	s->busy = false;
}

static bool packed_drv_used_at(struct vhu_drvq *q, uint16_t *flags_out)
{
	/* Pairs with the device's release store of the used descriptor's flags. */
	uint16_t f = le16toh(load_acquire16(&q->pk.desc[q->last_used].flags));

	*flags_out = f;
	return vring_packed_is_used(f, q->used_wrap);
}

int packed_drv_used(struct vhu_drvq *q, uint16_t *id, uint32_t *len)
{
	uint16_t flags;

	if (!packed_drv_used_at(q, &flags))
		return 0;
	const struct vring_packed_desc *d = &q->pk.desc[q->last_used];
	uint16_t i = le16toh(d->id);
	if (i >= q->num || !q->slot[i].busy)
		return drvq_broken(q, "used descriptor names buffer %u, which is not outstanding",
				   i);
	*id = i;
	*len = le32toh(d->len);
	drvq_written(q, d, sizeof(*d));
	return 1;
}

bool packed_drv_enable_cb(struct vhu_drvq *q)
{
	uint16_t flags;

	if (q->event_idx) {
		store_relaxed16(&q->pk.driver->off_wrap,
				htole16(vring_packed_off_wrap(q->last_used, q->used_wrap)));
		store_relaxed16(&q->pk.driver->flags, htole16(VRING_PACKED_EVENT_FLAG_DESC));
	} else {
		store_relaxed16(&q->pk.driver->flags, htole16(VRING_PACKED_EVENT_FLAG_ENABLE));
	}
	/* Pairs with the device's fence between writing a used descriptor and reading our
	 * event suppression structure. */
	full_fence();
	return packed_drv_used_at(q, &flags);
}

void packed_drv_disable_cb(struct vhu_drvq *q)
{
	store_relaxed16(&q->pk.driver->flags, htole16(VRING_PACKED_EVENT_FLAG_DISABLE));
}

/* Packed: the first position the device has not marked used, walking (without consuming)
 * over the used descriptors the driver has not read yet. */
void packed_drv_resume_base(const struct vhu_drvq *q, uint16_t *pos, bool *wrap)
{
	uint16_t p = q->last_used;
	bool w = q->used_wrap;
	uint16_t oh = q->order_head;

	if (q->batch) {
		while (oh != q->order_tail) {
			uint16_t id = q->order[drvq_order_at(q, &oh)];
			vring_packed_advance(&p, &w, q->slot[id].ndescs, q->num);
			if (id == q->batch_id)
				break;
		}
	}
	for (unsigned n = 0; n < q->num; n++) {
		uint16_t f = le16toh(load_acquire16(&q->pk.desc[p].flags));
		uint16_t id = le16toh(q->pk.desc[p].id);
		if (!vring_packed_is_used(f, w) || id >= q->num || !q->slot[id].busy)
			break;
		if (!q->in_order) {
			vring_packed_advance(&p, &w, q->slot[id].ndescs, q->num);
			continue;
		}
		while (oh != q->order_tail) {
			uint16_t h = q->order[drvq_order_at(q, &oh)];
			vring_packed_advance(&p, &w, q->slot[h].ndescs, q->num);
			if (h == id)
				break;
		}
	}
	*pos = p;
	*wrap = w;
}
