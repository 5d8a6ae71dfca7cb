/* SPDX-License-Identifier: MIT */
/*
 * Packed virtqueues ("Packed Virtqueues" in the virtio spec): device half.
 * One descriptor ring shared by both sides; AVAIL/USED flag bits against wrap counters say who
 * owns each slot. Event suppression structures replace the split ring's flags and event idx.
 */
#include <errno.h>
#include <string.h>

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
	t = mem_gpa_to_hva_whole(vq->mem, addr, len);
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

int packed_pop(struct vhu_virtq *vq, struct vhu_elem *e)
{
	uint16_t idx = vq->last_avail_idx, flags;
	bool wrap = vq->avail_wrap;
	unsigned count = 0;
	int ret = 0;

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
	vq->last_avail_idx = idx;
	vq->avail_wrap = wrap;
	vq->st.pops++;
	return ret == 0 ? 1 : ret;
}

void packed_push(struct vhu_virtq *vq, const struct vhu_elem *e, uint32_t len)
{
	struct vring_packed_desc *d = &vq->pk.desc[vq->used_idx];
	uint16_t flags = vq->used_wrap ? (F_AVAIL | F_USED) : 0;

	d->id = htole16(e->id);
	d->len = htole32(len);
	/* Pairs with the driver's acquire load of flags: id and len are visible first. */
	store_release16(&d->flags, htole16(flags));
	vq->used_idx += e->ndescs;
	if (vq->used_idx >= vq->num) {
		vq->used_idx -= vq->num;
		vq->used_wrap = !vq->used_wrap;
	}
}

bool packed_flush(struct vhu_virtq *vq)
{
	uint16_t old = vq->signalled_used, new = vq->used_idx, flags, off_wrap, off;
	bool valid = vq->signalled_used_valid;

	if (valid && old == new)
		return false;
	vq->signalled_used = new;
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
