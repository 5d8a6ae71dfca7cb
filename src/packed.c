/* SPDX-License-Identifier: MIT */
/*
 * Packed virtqueues ("Packed Virtqueues" in the virtio spec): device half.
 * One descriptor ring shared by both sides; AVAIL/USED flag bits against wrap counters say who
 * owns each slot. Event suppression structures replace the split ring's flags and event idx.
 */
#include <errno.h>
#include <string.h>

#include "inflight.h"
#include "ring.h"
#include "util.h"

#define F_AVAIL	 (1u << VRING_PACKED_DESC_F_AVAIL)
#define F_USED	 (1u << VRING_PACKED_DESC_F_USED)
#define WRAP_BIT (1u << VRING_PACKED_EVENT_F_WRAP_CTR)

int packed_map(struct vhu_virtq *vq)
{
	uint64_t n = vq->num;

	vq->pk.desc = mem_uva_to_hva(vq->mem, vq->addr.desc, 16 * n);
	vq->pk.driver = mem_uva_to_hva(vq->mem, vq->addr.avail, 4);
	vq->pk.device = mem_uva_to_hva(vq->mem, vq->addr.used, 4);
	if (!vq->pk.desc || !vq->pk.driver || !vq->pk.device)
		return -EFAULT;
	if ((vq->addr.desc & 15) || (vq->addr.avail & 3) || (vq->addr.used & 3))
		return -EINVAL;
	if (vq->base_avail >= vq->num || vq->base_used >= vq->num)
		return -EINVAL;
	vq->last_avail_idx = vq->base_avail;
	vq->avail_wrap = vq->base_avail_wrap;
	vq->used_idx = vq->base_used;
	vq->used_wrap = vq->base_used_wrap;
	return 0;
}

/* "Packed Virtqueues": a descriptor is available when its AVAIL bit matches the driver wrap
 * counter and its USED bit does not. */
static inline bool desc_is_avail(uint16_t flags, bool wrap)
{
	return !!(flags & F_AVAIL) == wrap && !!(flags & F_USED) != wrap;
}

static int packed_indirect(struct vhu_virtq *vq, struct vhu_elem *e, uint64_t addr, uint32_t len)
{
	const struct vring_packed_desc *t;
	unsigned n;
	int ret = 0;

	if (len == 0 || len % sizeof(*t) || len / sizeof(*t) > RING_MAX_SIZE)
		return ring_broken(vq, "indirect table length %u in buffer at %u", len,
				   vq->last_avail_idx);
	t = ring_indirect_table(vq, addr, len);
	if (!t)
		return ring_broken(vq, "indirect table 0x%llx+%u outside memory",
				   (unsigned long long)addr, len);
	n = len / sizeof(*t);
	/* "Indirect Descriptors" (packed): the whole table is one buffer, in order. */
	for (unsigned i = 0; i < n; i++) {
		uint16_t f = le16toh(t[i].flags);
		if (f & VRING_DESC_F_INDIRECT)
			return ring_broken(vq, "nested indirect table at %u", vq->last_avail_idx);
		int r = elem_add_desc(vq, e, le64toh(t[i].addr), le32toh(t[i].len),
				      f & VRING_DESC_F_WRITE);
		if (r == -EIO)
			return r;
		if (r && !ret)
			ret = r;
	}
	return ret;
}

/* After a restart: the next request the previous back-end had in flight, rebuilt from the
 * private copies of its descriptors taken at ring start (the ring slots may hold used entries
 * by now, and the region is not read again). */
static int packed_resubmit(struct vhu_virtq *vq, struct vhu_elem *e)
{
	const struct inflight *s = vq->infs;
	const struct inflight_resub *q = &s->resub[vq->infs->pos++];
	int ret = 0;

	e->out_num = e->in_num = 0;
	e->out_len = e->in_len = 0;
	for (unsigned k = 0; k < q->ndescs; k++) {
		const struct inflight_copy *d = &s->copies[q->first + k];
		int x;
		/* Checked at start: an indirect descriptor is alone in its chain. */
		if (d->flags & VRING_DESC_F_INDIRECT)
			x = packed_indirect(vq, e, d->addr, d->len);
		else
			x = elem_add_desc(vq, e, d->addr, d->len, d->flags & VRING_DESC_F_WRITE);
		if (x == -EIO)
			return x;
		if (x && !ret)
			ret = x;
	}
	e->id = q->id;
	e->ndescs = q->ndescs;
	vq->st.pops++;
	return ret == 0 ? 1 : ret;
}

int packed_pop(struct vhu_virtq *vq, struct vhu_elem *e)
{
	uint16_t idx = vq->last_avail_idx, flags;
	bool wrap = vq->avail_wrap;
	unsigned count = 0;
	int ret = 0;

	if (unlikely(vq->infs && vq->infs->pos < vq->infs->nresub))
		return packed_resubmit(vq, e);
	/* Pairs with the driver's release store of the first descriptor's flags, which it writes
	 * after every other descriptor of the buffer. */
	flags = le16toh(load_acquire16(&vq->pk.desc[idx].flags));
	if (!desc_is_avail(flags, wrap))
		return 0;
	e->out_num = e->in_num = 0;
	e->out_len = e->in_len = 0;
	for (;;) {
		const struct vring_packed_desc *d = &vq->pk.desc[idx];
		uint64_t addr = le64toh(d->addr);
		uint32_t len = le32toh(d->len);
		int r;

		if (count > 0) {
			flags = le16toh(d->flags);
			if (!desc_is_avail(flags, wrap))
				return ring_broken(
					vq, "chain at %u continues into a slot not available",
					vq->last_avail_idx);
		}
		e->id = le16toh(d->id);
		/* The region gets the fields as read here, not a second read of the ring. */
		if (vq->infs && inflight_packed_desc(vq, count, addr, len, flags, e->id))
			return -EIO;
		if (flags & VRING_DESC_F_INDIRECT) {
			if (count > 0 || (flags & VRING_DESC_F_NEXT))
				return ring_broken(vq, "indirect descriptor inside a chain at %u",
						   idx);
			r = packed_indirect(vq, e, addr, len);
		} else {
			r = elem_add_desc(vq, e, addr, len, flags & VRING_DESC_F_WRITE);
		}
		if (r == -EIO)
			return r;
		if (r && !ret)
			ret = r;
		count++;
		if (++idx >= vq->num) {
			idx = 0;
			wrap = !wrap;
		}
		if (!(flags & VRING_DESC_F_NEXT))
			break;
		if (count >= vq->num)
			return ring_broken(vq, "descriptor chain at %u longer than the ring",
					   vq->last_avail_idx);
	}
	if (e->id >= vq->num)
		return ring_broken(vq, "buffer id %u out of range (ring size %u)", e->id, vq->num);
	e->ndescs = (uint16_t)count;
	/* Every element consumed is tracked, also one the device cannot use (-ENOBUFS): it is
	 * pushed like any other, and a restart must find it. */
	if (vq->infs && inflight_packed_pop(vq, e->ndescs, e->id))
		return -EIO;
	vq->last_avail_idx = idx;
	vq->avail_wrap = wrap;
	vq->st.pops++;
	return ret == 0 ? 1 : ret;
}

void packed_push(struct vhu_virtq *vq, const struct vhu_elem *e, uint32_t len)
{
	struct vring_packed_desc *d = &vq->pk.desc[vq->used_idx];
	uint16_t flags = vq->used_wrap ? (F_AVAIL | F_USED) : 0;

	unsigned next = vq->used_idx + e->ndescs;
	bool next_wrap = vq->used_wrap;

	if (next >= vq->num) {
		next -= vq->num;
		next_wrap = !next_wrap;
	}
	d->id = htole16(e->id);
	d->len = htole32(len);
	if (vq->infs)
		inflight_packed_push_begin(vq, e->id, (uint16_t)next, next_wrap);
	/* Pairs with the driver's acquire load of flags: id and len are visible first. */
	store_release16(&d->flags, htole16(flags));
	if (vq->infs)
		inflight_packed_push_end(vq, e->id, (uint16_t)next, next_wrap);
	vq->used_idx = (uint16_t)next;
	vq->used_wrap = next_wrap;
}

bool packed_flush(struct vhu_virtq *vq)
{
	/* Positions carry the wrap counter in bit 15: a batch of exactly one ring's worth of
	 * descriptors ends at the same slot, and must not look like no progress. */
	uint16_t pos = (uint16_t)(vq->used_idx | (vq->used_wrap ? WRAP_BIT : 0));
	uint16_t old = vq->signalled_used & ~WRAP_BIT, new = vq->used_idx, flags, off_wrap, off;
	bool valid = vq->signalled_used_valid;

	if (valid && vq->signalled_used == pos)
		return false;
	vq->signalled_used = pos;
	vq->signalled_used_valid = true;
	/* Pairs with the driver's fence between writing its event suppression structure and
	 * reading descriptor flags. */
	full_fence();
	flags = le16toh(load_relaxed16(&vq->pk.driver->flags));
	if (flags != VRING_PACKED_EVENT_FLAG_DESC || !vq->event_idx)
		return flags != VRING_PACKED_EVENT_FLAG_DISABLE;
	if (!valid)
		return true;
	off_wrap = le16toh(load_relaxed16(&vq->pk.driver->off_wrap));
	off = off_wrap & ~WRAP_BIT;
	/* Put event, new and old on one line of 16-bit indices across the wrap. */
	if (new <= old)
		old -= vq->num;
	if (!!(off_wrap & WRAP_BIT) != vq->used_wrap)
		off -= vq->num;
	return vring_need_event(off, new, old);
}

bool packed_enable_notify(struct vhu_virtq *vq)
{
	if (vq->event_idx) {
		uint16_t ow = vq->last_avail_idx | (vq->avail_wrap ? WRAP_BIT : 0);
		store_relaxed16(&vq->pk.device->off_wrap, htole16(ow));
		store_relaxed16(&vq->pk.device->flags, htole16(VRING_PACKED_EVENT_FLAG_DESC));
	} else {
		store_relaxed16(&vq->pk.device->flags, htole16(VRING_PACKED_EVENT_FLAG_ENABLE));
	}
	/* Pairs with the driver's fence between making a descriptor available and reading our
	 * event suppression structure. */
	full_fence();
	uint16_t f = le16toh(load_acquire16(&vq->pk.desc[vq->last_avail_idx].flags));
	return desc_is_avail(f, vq->avail_wrap);
}

void packed_disable_notify(struct vhu_virtq *vq)
{
	store_relaxed16(&vq->pk.device->flags, htole16(VRING_PACKED_EVENT_FLAG_DISABLE));
}

/* ==== driver half ==== */

#include "drvq.h"

int packed_drv_init(struct vhu_drvq *q)
{
	unsigned n = q->num;

	/* "Packed Virtqueues": descriptor ring 16-byte aligned, event suppression areas 4. */
	q->pk.desc = fe_mem_alloc((struct fe_mem *)q->mem, 16u * n, 4096);
	q->pk.driver = fe_mem_alloc((struct fe_mem *)q->mem, 4, 64);
	q->pk.device = fe_mem_alloc((struct fe_mem *)q->mem, 4, 64);
	if (!q->pk.desc || !q->pk.driver || !q->pk.device)
		return -ENOMEM;
	q->desc_area = q->pk.desc;
	q->driver_area = q->pk.driver;
	q->device_area = q->pk.device;
	for (unsigned i = 0; i < n; i++)
		q->next[i] = (uint16_t)(i + 1 < n ? i + 1 : 0);
	q->num_free = (uint16_t)n;
	q->free_head = 0;
	q->avail_wrap = true;
	q->used_wrap = true;
	return 0;
}

static inline uint16_t packed_drv_avail_bits(bool wrap)
{
	/* Available: AVAIL equal to the driver's wrap counter, USED the opposite. */
	return (uint16_t)(wrap ? F_AVAIL : F_USED);
}

int packed_drv_add(struct vhu_drvq *q, const struct iovec *iov, unsigned out_num, unsigned in_num,
		   void *token)
{
	unsigned n = out_num + in_num, need;
	bool ind = q->indirect && n > 1 && n <= DRVQ_IND_MAX;
	uint16_t id = q->free_head, s = q->avail_idx, first = s, first_flags = 0;
	bool wrap = q->avail_wrap;
	uint32_t in_len = 0;

	need = ind ? 1 : n;
	if (q->num_free < need)
		return -ENOSPC;
	for (unsigned i = 0; i < n; i++) {
		if (!fe_mem_gpa(q->mem, iov[i].iov_base, iov[i].iov_len) ||
		    iov[i].iov_len > UINT32_MAX)
			return -EFAULT;
		if (i >= out_num)
			in_len += (uint32_t)iov[i].iov_len;
	}
	if (ind) {
		struct vring_packed_desc *t =
			(struct vring_packed_desc *)(q->ind + (size_t)id * DRVQ_IND_MAX * 16);
		for (unsigned i = 0; i < n; i++) {
			t[i].addr = htole64(fe_mem_gpa(q->mem, iov[i].iov_base, iov[i].iov_len));
			t[i].len = htole32((uint32_t)iov[i].iov_len);
			t[i].id = 0;
			t[i].flags = htole16(i >= out_num ? VRING_DESC_F_WRITE : 0);
		}
		struct vring_packed_desc *d = &q->pk.desc[s];
		d->addr = htole64(fe_mem_gpa(q->mem, t, 16u * n));
		d->len = htole32(16u * n);
		d->id = htole16(id);
		first_flags = (uint16_t)(VRING_DESC_F_INDIRECT | packed_drv_avail_bits(wrap));
		if (++s == q->num) {
			s = 0;
			wrap = !wrap;
		}
	} else {
		for (unsigned i = 0; i < n; i++) {
			struct vring_packed_desc *d = &q->pk.desc[s];
			uint16_t f = (uint16_t)((i >= out_num ? VRING_DESC_F_WRITE : 0) |
						(i + 1 < n ? VRING_DESC_F_NEXT : 0) |
						packed_drv_avail_bits(wrap));
			d->addr = htole64(fe_mem_gpa(q->mem, iov[i].iov_base, iov[i].iov_len));
			d->len = htole32((uint32_t)iov[i].iov_len);
			d->id = htole16(id);
			if (i == 0)
				first_flags = f;
			else
				d->flags = htole16(f);
			if (++s == q->num) {
				s = 0;
				wrap = !wrap;
			}
		}
	}
	q->free_head = q->next[id];
	q->num_free = (uint16_t)(q->num_free - need);
	q->slot[id] = (struct drvq_slot){ token, in_len, (uint16_t)need, true, q->seq++ };
	if (q->in_order)
		q->order[(q->order_tail++) % q->num] = id;
	q->avail_idx = s;
	q->avail_wrap = wrap;
	q->num_added = (uint16_t)(q->num_added + need);
	/* Pairs with the device's acquire load of the head's flags: the rest of the chain is
	 * written first. */
	store_release16(&q->pk.desc[first].flags, htole16(first_flags));
	return 0;
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
	ev = off_wrap & ~WRAP_BIT;
	if (!!(off_wrap & WRAP_BIT) != q->avail_wrap)
		ev = (uint16_t)(ev - q->num);
	return vring_need_event(ev, new, old);
}

/* Moves the used position past a completed buffer and frees its id. */
void packed_drv_done(struct vhu_drvq *q, uint16_t id)
{
	struct drvq_slot *s = &q->slot[id];
	unsigned u = q->last_used + s->ndescs;

	if (u >= q->num) {
		u -= q->num;
		q->used_wrap = !q->used_wrap;
	}
	q->last_used = (uint16_t)u;
	q->next[id] = q->free_head;
	q->free_head = id;
	q->num_free = (uint16_t)(q->num_free + s->ndescs);
	s->busy = false;
}

static bool packed_drv_used_at(struct vhu_drvq *q, uint16_t *flags_out)
{
	/* Pairs with the device's release store of the used descriptor's flags. */
	uint16_t f = le16toh(load_acquire16(&q->pk.desc[q->last_used].flags));

	*flags_out = f;
	return !!(f & F_AVAIL) == q->used_wrap && !!(f & F_USED) == q->used_wrap;
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
	return 1;
}

bool packed_drv_enable_cb(struct vhu_drvq *q)
{
	uint16_t flags;

	if (q->event_idx) {
		store_relaxed16(&q->pk.driver->off_wrap,
				htole16((uint16_t)(q->last_used | (q->used_wrap ? WRAP_BIT : 0))));
		store_relaxed16(&q->pk.driver->flags, htole16(VRING_PACKED_EVENT_FLAG_DESC));
	} else {
		store_relaxed16(&q->pk.driver->flags, htole16(VRING_PACKED_EVENT_FLAG_ENABLE));
	}
	/* Pairs with the device's fence between writing a used descriptor and reading our
	 * event suppression structure. */
	full_fence();
	return q->batch || packed_drv_used_at(q, &flags);
}

void packed_drv_disable_cb(struct vhu_drvq *q)
{
	store_relaxed16(&q->pk.driver->flags, htole16(VRING_PACKED_EVENT_FLAG_DISABLE));
}
