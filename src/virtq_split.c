/* SPDX-License-Identifier: MIT */
/*
 * Split virtqueues ("Split Virtqueues" in the virtio spec): device half.
 * Descriptor table, available ring (driver -> device), used ring (device -> driver).
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "inflight.h"
#include "util.h"
#include "virtq_layout.h"
#include "vring.h"

static inline uint16_t *avail_event(struct vhu_virtq *vq)
{
	return vring_split_avail_event(vq->split.used, vq->num);
}

static inline uint16_t *used_event(struct vhu_virtq *vq)
{
	return vring_split_used_event(vq->split.avail, vq->num);
}

int split_areas(struct vhu_virtq *vq)
{
	void *desc = ring_area(vq, vq->addr.desc, vring_split_desc_size(vq->num), IOTLB_PERM_RO);
	void *avail = ring_area(vq, vq->addr.avail, vring_split_avail_size(vq->num), IOTLB_PERM_RO);
	void *used = ring_area(vq, vq->addr.used, vring_split_used_size(vq->num), IOTLB_PERM_WO);

	if (!desc || !avail || !used)
		return vq->tlb_miss ? -EAGAIN : -EFAULT;
	/* The spec's alignment of the front-end's addresses, and of our pointers too: a region
	 * whose user address and file offset disagree modulo 4 would misalign them, and the
	 * index and flag fields are accessed atomically. */
	if (!vring_split_aligned(vq->addr.desc, vq->addr.avail, vq->addr.used) ||
	    !vring_split_aligned((uintptr_t)desc, (uintptr_t)avail, (uintptr_t)used))
		return -EINVAL;
	vq->split.desc = desc;
	vq->split.avail = avail;
	vq->split.used = used;
	/* "VHOST_VRING_F_LOG": the used ring is logged at the address the front-end gave. */
	vq->log_used = vq->addr.log;
	/* ACCESS_PLATFORM: the log address is an IOVA too (QEMU gives the used ring's); the log
	 * is by guest-physical address, which is where the used ring is. */
	if (vq->iotlb)
		vq->log_used = iotlb_hva_to_gpa(vq->mem, vq->split.used);
	return 0;
}

int split_map(struct vhu_virtq *vq)
{
	int ret = split_areas(vq);

	if (ret)
		return ret;
	vq->last_avail_idx = vq->base_avail;
	vq->shadow_avail_idx = vq->base_avail;
	/* A ring that was only paused resumes where it was; a new one takes the used index from
	 * shared memory, which after a reconnect is the truth. */
	vq->used_idx = vq->resume ? vq->base_used : le16toh(load_relaxed16(&vq->split.used->idx));
	return 0;
}

/* Walks the chain at head, whose first descriptor (a private copy) is d, into e. */
static int split_walk(struct vhu_virtq *vq, uint16_t head, struct vhu_elem *e, struct vring_desc d)
{
	const struct vring_desc *table = vq->split.desc;
	unsigned max = vq->num, i = head, count = 0;
	bool indirect = false;
	int ret = 0;

	for (;;) {
		uint64_t addr = le64toh(d.addr);
		uint32_t len = le32toh(d.len);
		uint16_t flags = le16toh(d.flags), next = le16toh(d.next);

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
			if (!table && vq->tlb_miss)
				return -EAGAIN;
			if (!table)
				return ring_broken(vq, "indirect table 0x%llx+%u outside memory",
						   (unsigned long long)addr, len);
			indirect = true;
			max = len / sizeof(struct vring_desc);
			i = 0;
			count = 0;
			memcpy(&d, &table[i], sizeof(d));
			continue;
		}
		if (ret == 0)
			ret = elem_add_desc(vq, e, addr, len, flags & VRING_DESC_F_WRITE);
		if (ret == -EIO || ret == -EAGAIN)
			return ret;
		if (!(flags & VRING_DESC_F_NEXT))
			break;
		if (++count >= max)
			return ring_broken(vq, "descriptor chain %u loops", head);
		if (next >= max)
			return ring_broken(vq, "descriptor %u: next %u out of range", i, next);
		i = next;
		/* One read of each descriptor into private memory; an indirect table may sit at
		 * any address the driver chose, so no aligned access is assumed. */
		memcpy(&d, &table[i], sizeof(d));
	}
	return ret;
}

/* Walks one chain starting at head, into e. The common chain, one descriptor without an
 * indirect table, here; any other in split_walk(), from the same copy of its first
 * descriptor. */
static inline int split_map_chain(struct vhu_virtq *vq, uint16_t head, struct vhu_elem *e)
{
	struct vring_desc d;

	e->id = head;
	e->ndescs = 1;
	e->out_num = e->in_num = 0;
	e->out_len = e->in_len = 0;
	if (head >= vq->num)
		return ring_broken(vq, "avail ring names head %u, ring size %u", head, vq->num);
	memcpy(&d, &vq->split.desc[head], sizeof(d));
	if (likely(!(le16toh(d.flags) & (VRING_DESC_F_NEXT | VRING_DESC_F_INDIRECT))))
		return elem_add_desc(vq, e, le64toh(d.addr), le32toh(d.len),
				     le16toh(d.flags) & VRING_DESC_F_WRITE);
	return split_walk(vq, head, e, d);
}

unsigned split_avail(struct vhu_virtq *vq)
{
	if (vq->last_avail_idx == vq->shadow_avail_idx) {
		/* Pairs with the driver's release store of avail->idx: ring entries and the
		 * descriptors they name are visible once the index is. */
		vq->shadow_avail_idx = le16toh(load_acquire16(&vq->split.avail->idx));
		if ((uint16_t)(vq->shadow_avail_idx - vq->last_avail_idx) > vq->num) {
			ring_broken(vq, "avail idx %u is more than %u ahead of %u",
				    vq->shadow_avail_idx, vq->num, vq->last_avail_idx);
			return 0;
		}
	}
	return (uint16_t)(vq->shadow_avail_idx - vq->last_avail_idx);
}

static inline __attribute__((always_inline)) int pop(struct vhu_virtq *vq, struct vhu_elem *e,
						     bool keep_nobufs)
{
	uint16_t head;

	/* After a restart, the requests the previous back-end had in flight come first. */
	if (unlikely(vq->infs && vq->infs->pos < vq->infs->nresub)) {
		head = vq->infs->resub[vq->infs->pos++].head;
		int ret = split_map_chain(vq, head, e);
		if (ret == -EAGAIN) {
			vq->infs->pos--; /* an IOTLB miss: taken again after the update */
			return ret;
		}
		vq->st.pops++;
		return ret == 0 ? 1 : ret;
	}
	if (vq->last_avail_idx == vq->shadow_avail_idx && !split_avail(vq))
		return vq->broken ? -EIO : 0;
	head = le16toh(vq->split.avail->ring[vq->last_avail_idx & (vq->num - 1)]);
	vq->last_avail_idx++;
	vq->st.pops++;
	int ret = split_map_chain(vq, head, e);
	/* -EAGAIN, an IOTLB miss: the buffer stays in the ring, popped again after the update;
	 * keep_nobufs (a burst with elements before it): so does a chain too long, which the
	 * next pop takes. */
	if (ret == -EAGAIN || (keep_nobufs && ret == -ENOBUFS)) {
		vq->last_avail_idx--;
		vq->st.pops--;
		return ret;
	}
	/* Every element the device consumed is tracked, also one it cannot use (-ENOBUFS): it
	 * is pushed like any other, and a restart must find it. */
	if (vq->infs && ret != -EIO) {
		int r = inflight_split_pop(vq, head);
		if (r)
			return r;
	}
	return ret == 0 ? 1 : ret;
}

int split_pop(struct vhu_virtq *vq, struct vhu_elem *e, bool keep_nobufs)
{
	return pop(vq, e, keep_nobufs);
}

unsigned split_pop_many(struct vhu_virtq *vq, struct vhu_elem *e, unsigned n, int *ret)
{
	return layout_pop_many(vq, e, n, ret, pop);
}

/* One used entry for e, at the next slot. */
static inline __attribute__((always_inline)) void
split_used_entry(struct vhu_virtq *vq, const struct vhu_elem *e, uint32_t len)
{
	struct vring_used_elem *u = &vq->split.used->ring[vq->used_idx & (vq->num - 1)];

	u->id = htole32(e->id);
	u->len = htole32(len);
	ring_log_ring(vq, &vq->log_used, (uint64_t)((uint8_t *)u - (uint8_t *)vq->split.used),
		      sizeof(*u));
	vq->used_idx++;
	if (vq->infs)
		inflight_split_push(vq, e->id);
}

/* IN_ORDER: the pending batch's one used entry, at the slot of its first buffer. */
static void split_batch_out(struct vhu_virtq *vq)
{
	/* The batch's first slot: one per buffer, io_n back. */
	struct vring_used_elem *u =
		&vq->split.used->ring[(uint16_t)(vq->used_idx - vq->io_n) & (vq->num - 1)];

	u->id = htole32(vq->io_id);
	u->len = 0;
	ring_log_ring(vq, &vq->log_used, (uint64_t)((uint8_t *)u - (uint8_t *)vq->split.used),
		      sizeof(*u));
	vq->io_n = 0;
}

/* The batch ends before e, which gets an entry of its own. */
static __attribute__((noinline)) void split_batch_end(struct vhu_virtq *vq,
						      const struct vhu_elem *e, uint32_t len)
{
	split_batch_out(vq);
	split_used_entry(vq, e, len);
}

/*
 * "In-order use of descriptors": with IN_ORDER the device may "notify the use of a batch of
 * buffers to the driver by only writing out a single used ring entry with the id
 * corresponding to the head entry of the descriptor chain describing the last buffer in the
 * batch", "at an offset matching the first available ring entry in the batch", and
 * "increments the used idx by the size of the batch". Batched: buffers with nothing
 * device-writable (net tx), whose lengths no driver reads. A buffer with a writable part
 * ends the batch and gets its own entry (drivers read rx lengths entry by entry), and so
 * does a flush. Cache lines ("Cache lines per burst" in docs/ARCHITECTURE.md): a burst of 32
 * tx buffers writes 1 used entry instead of 32 (1 line instead of 4-5), plus the index. The
 * batching test is split_push_batched() (virtq_layout.h), which virtq.c calls first, inline;
 * here the buffers it did not take.
 */
void split_push(struct vhu_virtq *vq, const struct vhu_elem *e, uint32_t len)
{
	if (vq->io_n) {
		split_batch_end(vq, e, len);
		return;
	}
	split_used_entry(vq, e, len);
}

/* Publishes the used index; returns whether the driver wants a notification. */
bool split_flush(struct vhu_virtq *vq)
{
	uint16_t old = vq->signalled_used, new = vq->used_idx;
	bool valid = vq->signalled_used_valid;

	if (vq->io_n)
		split_batch_out(vq);
	if (valid && old == new)
		return false;
	/* Pairs with the driver's acquire load of used->idx: used entries are visible first. */
	store_release16(&vq->split.used->idx, htole16(new));
	ring_log_ring(vq, &vq->log_used, offsetof(struct vring_used, idx), sizeof(uint16_t));
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

void split_publish(struct vhu_virtq *vq)
{
	if (!vq->io_n)
		return;
	split_batch_out(vq);
	/* Pairs with the driver's acquire load of used->idx, as in split_flush(). */
	store_release16(&vq->split.used->idx, htole16(vq->used_idx));
	ring_log_ring(vq, &vq->log_used, offsetof(struct vring_used, idx), sizeof(uint16_t));
}

bool split_enable_notify(struct vhu_virtq *vq)
{
	if (vq->event_idx) {
		store_relaxed16(avail_event(vq), htole16(vq->last_avail_idx));
		ring_log_ring(vq, &vq->log_used,
			      (uint64_t)((uint8_t *)avail_event(vq) - (uint8_t *)vq->split.used),
			      sizeof(uint16_t));
	} else {
		store_relaxed16(&vq->split.used->flags, 0);
		ring_log_ring(vq, &vq->log_used, 0, sizeof(uint16_t));
	}
	/* Pairs with the driver's fence between publishing avail->idx and reading our flag or
	 * avail_event: either we see its new buffers now, or it sees that it must kick. */
	full_fence();
	vq->shadow_avail_idx = le16toh(load_acquire16(&vq->split.avail->idx));
	/* The copy split_pop() will use without reading again: checked here, as there. */
	if ((uint16_t)(vq->shadow_avail_idx - vq->last_avail_idx) > vq->num) {
		ring_broken(vq, "avail idx %u is more than %u ahead of %u", vq->shadow_avail_idx,
			    vq->num, vq->last_avail_idx);
		return false;
	}
	return vq->shadow_avail_idx != vq->last_avail_idx;
}

void split_disable_notify(struct vhu_virtq *vq)
{
	/* With EVENT_IDX, leaving avail_event behind is enough: the driver kicks only when it
	 * crosses it. */
	if (!vq->event_idx) {
		store_relaxed16(&vq->split.used->flags, htole16(VRING_USED_F_NO_NOTIFY));
		ring_log_ring(vq, &vq->log_used, 0, sizeof(uint16_t));
	}
}
