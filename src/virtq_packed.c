/* SPDX-License-Identifier: MIT */
/*
 * Packed virtqueues ("Packed Virtqueues" in the virtio spec): device half.
 * One descriptor ring shared by both sides; AVAIL/USED flag bits against wrap counters say who
 * owns each slot. Event suppression structures replace the split ring's flags and event idx.
 */
#include <errno.h>
#include <string.h>

#include "inflight.h"
#include "util.h"
#include "virtq_layout.h"
#include "vring.h"

int packed_areas(struct vhu_virtq *vq)
{
	void *desc = ring_area(vq, vq->addr.desc, vring_packed_desc_size(vq->num), IOTLB_PERM_RW);
	void *driver = ring_area(vq, vq->addr.avail, VRING_PACKED_EVENT_SIZE, IOTLB_PERM_RO);
	void *device = ring_area(vq, vq->addr.used, VRING_PACKED_EVENT_SIZE, IOTLB_PERM_WO);

	if (!desc || !driver || !device)
		return vq->tlb_miss ? -EAGAIN : -EFAULT;
	/* The spec's alignment of the addresses, and of our pointers (see virtq_split.c). */
	if (!vring_packed_aligned(vq->addr.desc, vq->addr.avail, vq->addr.used) ||
	    !vring_packed_aligned((uintptr_t)desc, (uintptr_t)driver, (uintptr_t)device))
		return -EINVAL;
	vq->pk.desc = desc;
	vq->pk.driver = driver;
	vq->pk.device = device;
	/* What the device writes, by guest address for the dirty log: the descriptor ring (used
	 * descriptors) and the device event area. QEMU's log_guest_addr names only the latter. */
	vq->log_used = mem_uva_to_gpa(vq->mem, vq->addr.desc);
	vq->log_device = mem_uva_to_gpa(vq->mem, vq->addr.used);
	if (vq->iotlb) { /* IOVAs: the guest addresses of where they are */
		vq->log_used = iotlb_hva_to_gpa(vq->mem, vq->pk.desc);
		vq->log_device = iotlb_hva_to_gpa(vq->mem, vq->pk.device);
	}
	return 0;
}

int packed_map(struct vhu_virtq *vq)
{
	int ret;

	if (vq->base_avail >= vq->num || vq->base_used >= vq->num)
		return -EINVAL;
	if ((ret = packed_areas(vq)))
		return ret;
	vq->last_avail_idx = vq->base_avail;
	vq->avail_wrap = vq->base_avail_wrap;
	vq->used_idx = vq->base_used;
	vq->used_wrap = vq->base_used_wrap;
	return 0;
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
	if (!t && vq->tlb_miss)
		return -EAGAIN;
	if (!t)
		return ring_broken(vq, "indirect table 0x%llx+%u outside memory",
				   (unsigned long long)addr, len);
	n = len / sizeof(*t);
	/* "Indirect Descriptors" (packed): the whole table is one buffer, in order. */
	for (unsigned i = 0; i < n; i++) {
		/* One read into private memory, at whatever alignment the driver gave. */
		struct vring_packed_desc d;
		memcpy(&d, &t[i], sizeof(d));
		uint16_t f = le16toh(d.flags);
		if (f & VRING_DESC_F_INDIRECT)
			return ring_broken(vq, "nested indirect table at %u", vq->last_avail_idx);
		int r = elem_add_desc(vq, e, le64toh(d.addr), le32toh(d.len),
				      f & VRING_DESC_F_WRITE);
		if (r == -EIO || r == -EAGAIN)
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
		if (x == -EAGAIN) {
			vq->infs->pos--; /* an IOTLB miss: taken again after the update */
			return x;
		}
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

static inline __attribute__((always_inline)) int pop(struct vhu_virtq *vq, struct vhu_elem *e,
						     bool keep_nobufs)
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
	if (!vring_packed_is_avail(flags, wrap))
		return 0;
	e->out_num = e->in_num = 0;
	e->out_len = e->in_len = 0;
	/* The common buffer, one descriptor without an indirect table (and no inflight record to
	 * write): what the loop does with it, without the loop. */
	if (likely(!(flags & (VRING_DESC_F_NEXT | VRING_DESC_F_INDIRECT)) && !vq->infs)) {
		const struct vring_packed_desc *d = &vq->pk.desc[idx];
		e->id = le16toh(d->id);
		ret = elem_add_desc(vq, e, le64toh(d->addr), le32toh(d->len),
				    flags & VRING_DESC_F_WRITE);
		if (ret == -EIO || ret == -EAGAIN)
			return ret;
		count = 1;
		vring_packed_advance(&idx, &wrap, 1, vq->num);
		goto chain_end;
	}
	for (;;) {
		const struct vring_packed_desc *d = &vq->pk.desc[idx];
		uint64_t addr = le64toh(d->addr);
		uint32_t len = le32toh(d->len);
		int r;

		if (count > 0) {
			flags = le16toh(d->flags);
			if (!vring_packed_is_avail(flags, wrap))
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
		/* -EAGAIN, an IOTLB miss: nothing committed yet, popped again after the update. */
		if (r == -EIO || r == -EAGAIN)
			return r;
		if (r && !ret)
			ret = r;
		count++;
		vring_packed_advance(&idx, &wrap, 1, vq->num);
		if (!(flags & VRING_DESC_F_NEXT))
			break;
		if (count >= vq->num)
			return ring_broken(vq, "descriptor chain at %u longer than the ring",
					   vq->last_avail_idx);
	}
chain_end:
	if (e->id >= vq->num)
		return ring_broken(vq, "buffer id %u out of range (ring size %u)", e->id, vq->num);
	e->ndescs = (uint16_t)count;
	/* A burst with elements before this one: a chain too long stays in the ring (nothing
	 * committed), for the next pop to take. */
	if (keep_nobufs && ret == -ENOBUFS)
		return ret;
	/* Every element consumed is tracked, also one the device cannot use (-ENOBUFS): it is
	 * pushed like any other, and a restart must find it. */
	if (vq->infs && inflight_packed_pop(vq, e->ndescs, e->id))
		return -EIO;
	vq->last_avail_idx = idx;
	vq->avail_wrap = wrap;
	vq->st.pops++;
	return ret == 0 ? 1 : ret;
}

int packed_pop(struct vhu_virtq *vq, struct vhu_elem *e, bool keep_nobufs)
{
	return pop(vq, e, keep_nobufs);
}

unsigned packed_pop_many(struct vhu_virtq *vq, struct vhu_elem *e, unsigned n, int *ret)
{
	return layout_pop_many(vq, e, n, ret, pop);
}

/* Stores the pending used descriptors, in ring order. */
static void pend_store(struct vhu_virtq *vq)
{
	bool w = vq->pk_pend_wrap;
	uint16_t prev = 0;

	for (unsigned i = 0; i < vq->pk_npend; i++) {
		uint16_t slot = vq->pk_pend[i].slot;
		struct vring_packed_desc *d = &vq->pk.desc[slot];
		w ^= slot < prev; /* the ring wrapped in between */
		prev = slot;
		d->id = htole16(vq->pk_pend[i].id);
		d->len = htole32(vq->pk_pend[i].len);
		/* Pairs with the driver's acquire load of flags: id and len are visible first. */
		store_release16(&d->flags, htole16(vring_packed_used_bits(w)));
		/* "Migration": marked after its last write (the flags), or a log sync between
		 * the push and this store could send the page without it. */
		ring_log_ring(vq, &vq->log_used, (uint64_t)slot * sizeof(vq->pk.desc[0]),
			      sizeof(vq->pk.desc[0]));
	}
	vq->pk_npend = 0;
}

/* Adds the used descriptor (id, len) at slot (wrap its lap) to those the next flush stores. */
static inline __attribute__((always_inline)) void pend_add(struct vhu_virtq *vq, uint16_t slot,
							   bool wrap, uint16_t id, uint32_t len)
{
	if (vq->pk_npend == sizeof(vq->pk_pend) / sizeof(vq->pk_pend[0]))
		pend_store(vq);
	if (vq->pk_npend == 0)
		vq->pk_pend_wrap = wrap;
	vq->pk_pend[vq->pk_npend].slot = slot;
	vq->pk_pend[vq->pk_npend].id = id;
	vq->pk_pend[vq->pk_npend++].len = len;
}

/* One used descriptor for e, at the next used position. */
static inline __attribute__((always_inline)) void
packed_used_desc(struct vhu_virtq *vq, const struct vhu_elem *e, uint32_t len)
{
	struct vring_packed_desc *d = &vq->pk.desc[vq->used_idx];
	uint16_t flags = vring_packed_used_bits(vq->used_wrap);
	uint16_t next = vq->used_idx;
	bool next_wrap = vq->used_wrap;

	vring_packed_advance(&next, &next_wrap, e->ndescs, vq->num);
	if (!vq->infs) {
		/* Stored by the flush, with the rest of the burst ("Cache lines per burst" in
		 * docs/ARCHITECTURE.md): the driver, polling, reads each line of 4 used
		 * descriptors once instead of once per descriptor. */
		pend_add(vq, vq->used_idx, vq->used_wrap, e->id, len);
	} else {
		d->id = htole16(e->id);
		d->len = htole32(len);
		inflight_packed_push_begin(vq, e->id, next, next_wrap);
		/* Pairs with the driver's acquire load of flags: id and len are visible first. */
		store_release16(&d->flags, htole16(flags));
		ring_log_ring(vq, &vq->log_used, (uint64_t)(d - vq->pk.desc) * sizeof(*d),
			      sizeof(*d));
	}
	if (vq->infs)
		inflight_packed_push_end(vq, e->id, next, next_wrap);
	vq->used_idx = next;
	vq->used_wrap = next_wrap;
}

/* IN_ORDER: the pending batch's one used descriptor, over the first descriptor of its first
 * buffer, io_n (<= num) slots back; its flags go with the others'. */
static void packed_batch_out(struct vhu_virtq *vq)
{
	uint16_t pos = vq->used_idx;
	bool wrap = vq->used_wrap;

	if (pos >= vq->io_n) {
		pos = (uint16_t)(pos - vq->io_n);
	} else {
		pos = (uint16_t)(pos + vq->num - vq->io_n);
		wrap = !wrap;
	}
	vq->io_n = 0;
	pend_add(vq, pos, wrap, vq->io_id, 0);
}

/* The batch ends before e, which gets a used descriptor of its own. */
static __attribute__((noinline)) void packed_batch_end(struct vhu_virtq *vq,
						       const struct vhu_elem *e, uint32_t len)
{
	packed_batch_out(vq);
	packed_used_desc(vq, e, len);
}

/*
 * "In-order use of descriptors" (packed): with IN_ORDER the device may notify "the use of a
 * batch of buffers to the driver by only writing out a single used descriptor with the Buffer
 * ID corresponding to the last descriptor in the batch", "overwriting the first available
 * descriptor in the batch", and "skips forward in the ring according to the size of the
 * batch". Batched: buffers with nothing device-writable (net tx); one with a writable part
 * ends the batch and is written out on its own, and so does a flush. A batch spans at most
 * the ring (the wrap counter of each pending slot is rebuilt from the slot order). Cache
 * lines ("Cache lines per burst" in docs/ARCHITECTURE.md): a burst of 32 one-descriptor tx
 * buffers writes 1 used descriptor (1 line) instead of 32 (8-9 lines). The batching test is
 * packed_push_batched() (virtq_layout.h), which virtq.c calls first, inline; here the buffers
 * it did not take.
 */
void packed_push(struct vhu_virtq *vq, const struct vhu_elem *e, uint32_t len)
{
	if (vq->io_n) {
		packed_batch_end(vq, e, len);
		return;
	}
	packed_used_desc(vq, e, len);
}

void packed_publish(struct vhu_virtq *vq)
{
	if (vq->io_n)
		packed_batch_out(vq);
	pend_store(vq);
}

bool packed_flush(struct vhu_virtq *vq)
{
	/* Positions carry the wrap counter in bit 15: a batch of exactly one ring's worth of
	 * descriptors ends at the same slot, and must not look like no progress. */
	uint16_t pos = vring_packed_off_wrap(vq->used_idx, vq->used_wrap);
	uint16_t old = vq->signalled_used & (uint16_t)~VRING_PK_WRAP, new = vq->used_idx, flags,
		 off_wrap, off;
	bool valid = vq->signalled_used_valid;

	packed_publish(vq);
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
	/* Put event, new and old on one line of 16-bit indices across the wrap. */
	off = vring_packed_event_idx(off_wrap, vq->used_wrap, vq->num);
	if (new <= old)
		old -= vq->num;
	return vring_need_event(off, new, old);
}

bool packed_enable_notify(struct vhu_virtq *vq)
{
	if (vq->event_idx) {
		uint16_t ow = vring_packed_off_wrap(vq->last_avail_idx, vq->avail_wrap);
		store_relaxed16(&vq->pk.device->off_wrap, htole16(ow));
		store_relaxed16(&vq->pk.device->flags, htole16(VRING_PACKED_EVENT_FLAG_DESC));
	} else {
		store_relaxed16(&vq->pk.device->flags, htole16(VRING_PACKED_EVENT_FLAG_ENABLE));
	}
	ring_log_ring(vq, &vq->log_device, 0, VRING_PACKED_EVENT_SIZE);
	/* Pairs with the driver's fence between making a descriptor available and reading our
	 * event suppression structure. */
	full_fence();
	uint16_t f = le16toh(load_acquire16(&vq->pk.desc[vq->last_avail_idx].flags));
	return vring_packed_is_avail(f, vq->avail_wrap);
}

void packed_disable_notify(struct vhu_virtq *vq)
{
	store_relaxed16(&vq->pk.device->flags, htole16(VRING_PACKED_EVENT_FLAG_DISABLE));
	ring_log_ring(vq, &vq->log_device, 0, VRING_PACKED_EVENT_SIZE);
}
