/* SPDX-License-Identifier: MIT */
/* Driver-side virtqueue: set-up, and the public entry points dispatching on the layout
 * (drvq_split.c, drvq_packed.c). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>

#include "drvq.h"
#include "drvq_layout.h"
#include "util.h"

int drvq_init(struct vhu_drvq *q, unsigned index, unsigned num, bool packed, struct fe_mem *mem,
	      const struct logger *lg)
{
	*q = (struct vhu_drvq){
		.packed = packed,
		.num = (uint16_t)num,
		.mem = mem,
		.lg = lg,
		.kick_fd = -1,
		.call_fd = -1,
		.index = index,
		.pow2 = is_pow2(num),
	};
	if (num == 0 || num > VRING_MAX_SIZE || (!packed && !is_pow2(num)))
		return -EINVAL;
	q->next = calloc(num, sizeof(*q->next));
	q->slot = calloc(num, sizeof(*q->slot));
	q->order = calloc(num, sizeof(*q->order));
	q->ind = fe_mem_alloc(mem, (size_t)num * DRVQ_IND_MAX * 16, 16);
	if (!q->next || !q->slot || !q->order || !q->ind)
		goto err;
	if ((packed ? packed_drv_init(q) : split_drv_init(q)) < 0)
		goto err;
	return 0;
err:
	drvq_free(q);
	return -ENOMEM;
}

void drvq_free(struct vhu_drvq *q)
{
	free(q->next);
	free(q->slot);
	free(q->order);
	q->next = q->order = NULL;
	q->slot = NULL;
}

void drvq_set_features(struct vhu_drvq *q, bool event_idx, bool in_order, bool indirect)
{
	q->event_idx = event_idx;
	q->in_order = in_order;
	q->indirect = indirect;
}

uint32_t drvq_base(const struct vhu_drvq *q)
{
	struct vring_base b = { q->avail_idx, q->last_used, q->avail_wrap, q->used_wrap };

	return vring_base_encode(q->packed, &b);
}

uint32_t drvq_resume_base(struct vhu_drvq *q)
{
	/* After a back-end died, the new one starts at the first buffer the old one did not
	 * complete: what was available but not used is processed again (as QEMU does when it
	 * restores last_avail_idx from the used index). */
	struct vring_base b = { 0 };

	if (q->packed) {
		packed_drv_resume_base(q, &b.avail, &b.avail_wrap);
		b.used = b.avail;
		b.used_wrap = b.avail_wrap;
	} else {
		b.avail = b.used = split_drv_resume_base(q);
	}
	return vring_base_encode(q->packed, &b);
}

VHU_EXPORT int vhu_drvq_add(struct vhu_drvq *q, const struct iovec *iov, unsigned out_num,
			    unsigned in_num, void *token)
{
	if (q->broken)
		return -EIO;
	if (out_num + in_num == 0 || out_num + in_num > q->num)
		return -EINVAL;
	return q->packed ? packed_drv_add(q, iov, out_num, in_num, token)
			 : split_drv_add(q, iov, out_num, in_num, token);
}

VHU_EXPORT bool vhu_drvq_kick(struct vhu_drvq *q)
{
	if (q->broken || q->num_added == 0)
		return false;
	if (!(q->packed ? packed_drv_kick_prepare(q) : split_drv_kick_prepare(q)))
		return false;
	if (q->kick_fd >= 0)
		eventfd_write(q->kick_fd, 1);
	q->kicks++;
	return true;
}

VHU_EXPORT int vhu_drvq_add_burst(struct vhu_drvq *q, const struct iovec *iov, unsigned n,
				  bool writable, void *const *tokens)
{
	unsigned added;

	if (q->broken)
		return -EIO;
	if (n == 0)
		return 0;
	if (q->num_free == 0)
		return -ENOSPC;
	added = q->packed ? packed_drv_add_burst(q, iov, n, writable, tokens)
			  : split_drv_add_burst(q, iov, n, writable, tokens);
	return added ? (int)added : -EFAULT;
}

/* The next used buffer (vhu_drvq_get, and bursts without IN_ORDER). */
static void *get_one(struct vhu_drvq *q, uint32_t *len)
{
	uint16_t id;
	uint32_t l;
	int r;

	if (q->batch) {
		/* IN_ORDER: buffers before the one the device named are done too. */
		if (q->order_head == q->order_tail) {
			drvq_broken(q, "in-order batch ends at a buffer never made available");
			return NULL;
		}
		if (q->batch_step && split_drv_batch_step(q) < 0)
			return NULL;
		id = q->order[drvq_order_at(q, &q->order_head)];
		l = id == q->batch_id ? q->batch_len : 0;
		q->batch = id != q->batch_id;
	} else {
		r = q->packed ? packed_drv_used(q, &id, &l) : split_drv_used(q, &id, &l);
		if (r <= 0)
			return NULL;
		if (q->in_order) {
			uint16_t first = q->order[drvq_order_at(q, &q->order_head)];
			if (first != id) {
				q->batch = true;
				q->batch_step = !q->packed;
				q->batch_id = id;
				q->batch_len = l;
				l = 0;
			}
			id = first;
		}
	}
	/* DPDK 22.11's vhost reports the bytes it read for device-readable buffers of packed
	 * rings; with nothing writable there is nothing to trust or overflow: take 0. */
	if (q->slot[id].in_len == 0)
		l = 0;
	if (l > q->slot[id].in_len) {
		drvq_broken(q, "used length %u exceeds the %u writable bytes of buffer %u", l,
			    q->slot[id].in_len, id);
		return NULL;
	}
	void *token = q->slot[id].token;
	if (q->packed)
		packed_drv_done(q, id);
	else
		split_drv_done(q, id);
	*len = l;
	return token;
}

VHU_EXPORT void *vhu_drvq_get(struct vhu_drvq *q, uint32_t *len)
{
	if (q->broken)
		return NULL;
	return get_one(q, len);
}

/*
 * IN_ORDER bursts. Each used entry read names the last buffer of a batch (batch_id; it gets
 * the length the device reported, the buffers before it 0): split reads only the entries one
 * read of the index showed, and with nothing writable outstanding only the last of them;
 * packed reads the used descriptors, as DPDK 22.11's in-order packed clean-up does. Then the
 * batch's buffers are handed back oldest first, up to max. Used entries are 8 bytes, 8 to a
 * line: a burst of 32 read one by one pulls 4 lines from the device, the last one alone 1.
 * The checks and results are get_one()'s with split_drv_used() and packed_drv_used() (same
 * errors); the queue's fields stay in locals for the loop, as the stores into tokens and lens
 * could otherwise alias them. Inlined once per layout, so that neither pays for the other's
 * tests.
 */
static inline __attribute__((always_inline)) unsigned
get_burst_in_order(struct vhu_drvq *q, void **tokens, uint32_t *lens, unsigned max,
		   const bool packed)
{
	struct drvq_slot *slot = q->slot;
	uint16_t *next = q->next;
	const uint16_t *order = q->order;
	uint16_t head = q->order_head, tail = q->order_tail, num = q->num;
	uint16_t free_head = q->free_head, nfree = q->num_free, wout = q->writable_out;
	uint16_t used = q->last_used, shadow = q->shadow_used, bid = q->batch_id;
	uint32_t blen = q->batch_len;
	/* Split rings have a power-of-two size: the mask, without a test per buffer. */
	bool wrap = q->used_wrap, pow2 = !packed || q->pow2, batch = q->batch;
	bool last_only = !packed && wout == 0, step = !packed && q->batch_step;
	uintptr_t page = 0; /* packed: the page last recorded as written (drvq_written()) */
	unsigned n = 0;

	while (n < max) {
		if (!batch && packed) {
			struct vring_packed_desc *d = &q->pk.desc[used];
			/* Pairs with the device's release store of the used descriptor's flags. */
			uint16_t f = le16toh(load_acquire16(&d->flags));
			if (!vring_packed_is_used(f, wrap))
				break;
			bid = le16toh(d->id);
			if (bid >= num || !slot[bid].busy) {
				drvq_broken(
					q,
					"used descriptor names buffer %u, which is not outstanding",
					bid);
				break;
			}
			blen = le32toh(d->len);
			/* 16-byte descriptors in a page-aligned ring never straddle a page. */
			if ((uintptr_t)d >> 12 != page) {
				drvq_written(q, d, sizeof(*d));
				page = (uintptr_t)d >> 12;
			}
			batch = true;
		} else if (!batch && last_only) {
			/* No entry read: the index alone names the last buffer done (a batching
			 * device wrote one entry, at the batch's first slot). */
			if (used == shadow)
				break;
			uint16_t k = (uint16_t)(shadow - used);
			unsigned out = (tail + 2u * num - head) % (2u * num);
			if (k > out) {
				drvq_broken(q, "used index moved %u past %u outstanding buffers", k,
					    out);
				break;
			}
			uint16_t at = (uint16_t)((head + k - 1u) % (2u * num));
			bid = order[drvq_order_step(num, pow2, &at)];
			blen = 0;
			used = shadow;
			batch = true;
			step = false;
		} else if (!batch) {
			if (used == shadow)
				break;
			struct vring_used_elem *u = &q->split.used->ring[used & (num - 1)];
			uint32_t id = le32toh(u->id);
			if (id >= num || !slot[id].busy) {
				drvq_broken(q,
					    "used entry names buffer %u, which is not outstanding",
					    id);
				break;
			}
			if (q->written_each)
				drvq_written(q, u, sizeof(*u));
			bid = (uint16_t)id;
			blen = le32toh(u->len);
			used = (uint16_t)(used + 1);
			batch = true;
			/* "increments the used idx by the size of the batch": one index per
			 * buffer of the batch this entry names. */
			step = true;
		} else if (step) {
			if (used == shadow) {
				drvq_broken(q, "in-order batch at used index %u ends past it",
					    used);
				break;
			}
			used = (uint16_t)(used + 1);
		}
		if (head == tail) {
			drvq_broken(q, "in-order batch ends at a buffer never made available");
			break;
		}
		uint16_t id = order[drvq_order_step(num, pow2, &head)], last = id;
		struct drvq_slot *s = &slot[id];
		uint32_t l = 0;
		batch = id != bid;
		/* DPDK 22.11's vhost reports the bytes it read for device-readable buffers of
		 * packed rings; with nothing writable there is nothing to trust or overflow: 0. */
		if (!batch && s->in_len) {
			l = blen;
			if (l > s->in_len) {
				drvq_broken(
					q,
					"used length %u exceeds the %u writable bytes of buffer %u",
					l, s->in_len, id);
				break;
			}
		}
		/* The buffer is handed back (split_drv_done(), packed_drv_done()). */
		if (packed)
			vring_packed_advance(&used, &wrap, s->ndescs, num);
		else
			for (unsigned k = 1; k < s->ndescs; k++)
				last = next[last];
		next[last] = free_head;
		free_head = id;
		nfree = (uint16_t)(nfree + s->ndescs);
		wout = (uint16_t)(wout - (s->in_len != 0));
		s->busy = false;
		tokens[n] = s->token;
		lens[n++] = l;
	}
	q->order_head = head;
	q->free_head = free_head;
	q->num_free = nfree;
	q->writable_out = wout;
	q->last_used = used;
	q->used_wrap = wrap;
	q->batch = batch;
	q->batch_step = step;
	q->batch_id = bid;
	q->batch_len = blen;
	return n;
}

/* Nothing new, the usual answer to a polling loop, found with one read: split, the used index
 * (split_drv_refresh()); packed, the next descriptor's flags. */
static bool nothing_used(struct vhu_drvq *q)
{
	if (q->batch)
		return false;
	if (!q->packed)
		return q->last_used == q->shadow_used;
	/* Pairs with the device's release store of the used descriptor's flags. */
	uint16_t f = le16toh(load_acquire16(&q->pk.desc[q->last_used].flags));
	return !vring_packed_is_used(f, q->used_wrap);
}

/*
 * Cache lines (docs/ARCHITECTURE.md, "Cache lines per burst"), split: one read of the used
 * index (1 line from the device per burst), then the used entries it covers, 8 to a line (4
 * lines per 32), or with IN_ORDER and nothing writable outstanding none (the index names the
 * last buffer done). Packed: the used descriptors themselves, 4 to a line, as the device wrote
 * them (IN_ORDER: one per batch the device returned with one).
 * Our event fields are not written here: in a polling loop they stay as disable_cb left them.
 */
VHU_EXPORT unsigned vhu_drvq_get_burst(struct vhu_drvq *q, void **tokens, uint32_t *lens,
				       unsigned max)
{
	unsigned n = 0;

	if (q->broken || max == 0)
		return 0;
	if (!q->packed && split_drv_refresh(q) < 0)
		return 0;
	if (nothing_used(q))
		return 0;
	if (q->in_order)
		return q->packed ? get_burst_in_order(q, tokens, lens, max, true)
				 : get_burst_in_order(q, tokens, lens, max, false);
	/* Only the entries that one read of the index showed: no second read per burst. */
	while (n < max && (q->packed || q->last_used != q->shadow_used)) {
		uint32_t l;
		void *t = get_one(q, &l);
		if (!t)
			break;
		tokens[n] = t;
		lens[n++] = l;
	}
	return n;
}

VHU_EXPORT bool vhu_drvq_enable_cb(struct vhu_drvq *q)
{
	bool waiting;

	if (q->broken)
		return false;
	waiting = q->packed ? packed_drv_enable_cb(q) : split_drv_enable_cb(q);
	/* IN_ORDER: the rest of a batch the device returned with one entry is waiting too,
	 * whatever the ring says ("true when buffers are waiting", on either layout). */
	return waiting || q->batch;
}

VHU_EXPORT void vhu_drvq_disable_cb(struct vhu_drvq *q)
{
	if (q->broken)
		return;
	if (q->packed)
		packed_drv_disable_cb(q);
	else
		split_drv_disable_cb(q);
}

VHU_EXPORT int vhu_drvq_call_fd(const struct vhu_drvq *q)
{
	return q->call_fd;
}

VHU_EXPORT unsigned vhu_drvq_num_free(const struct vhu_drvq *q)
{
	return q->num_free;
}

VHU_EXPORT unsigned vhu_drvq_size(const struct vhu_drvq *q)
{
	return q->num;
}

VHU_EXPORT bool vhu_drvq_broken(const struct vhu_drvq *q)
{
	return q->broken;
}

/* ---- log checking: what the device wrote ---- */

/* Reports a field the device writes now and then (never read back in order) when its value
 * changed since the last report: a write of the same value goes unseen. */
static void event_field(struct vhu_drvq *q, unsigned k, uint16_t *p,
			void (*fn)(void *opaque, uint64_t gpa, uint64_t len, bool event),
			void *opaque)
{
	uint16_t v = load_relaxed16(p);

	if (v != q->written_event[k])
		fn(opaque, fe_mem_gpa(q->mem, p, 2), 2, true);
	q->written_event[k] = v;
}

VHU_EXPORT void vhu_drvq_device_writes(struct vhu_drvq *q,
				       void (*fn)(void *opaque, uint64_t gpa, uint64_t len,
						  bool event),
				       void *opaque)
{
	uintptr_t start = (uintptr_t)q->written_area;
	uintptr_t end = start + (q->packed ? vring_packed_desc_size(q->num)
					   : vring_split_used_size(q->num));

	/* Page k (counted from the area's first page), clipped to the area. */
	for (unsigned k = 0; k < 128; k++) {
		if (!(q->written_pages[k / 64] >> (k % 64) & 1))
			continue;
		uintptr_t a = ((start >> 12) + k) << 12, b = a + 4096;
		a = a < start ? start : a;
		b = b > end ? end : b;
		fn(opaque, fe_mem_gpa(q->mem, (const void *)a, b - a), b - a, false);
	}
	q->written_pages[0] = q->written_pages[1] = 0;
	if (q->packed) {
		event_field(q, 0, &q->pk.device->flags, fn, opaque);
		event_field(q, 1, &q->pk.device->off_wrap, fn, opaque);
	} else {
		event_field(q, 0, &q->split.used->flags, fn, opaque);
		if (q->event_idx)
			event_field(q, 1, vring_split_avail_event(q->split.used, q->num), fn,
				    opaque);
	}
}
