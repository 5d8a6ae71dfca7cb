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

/* The next used buffer (vhu_drvq_get); last_only: IN_ORDER split with nothing writable
 * outstanding, where no used entry is read (split_drv_used_last()). */
static void *get_one(struct vhu_drvq *q, uint32_t *len, bool last_only)
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
		if (q->packed)
			r = packed_drv_used(q, &id, &l);
		else if (last_only)
			r = split_drv_used_last(q, &id, &l);
		else
			r = split_drv_used(q, &id, &l);
		if (r <= 0)
			return NULL;
		if (q->in_order) {
			uint16_t first = q->order[drvq_order_at(q, &q->order_head)];
			if (first != id) {
				q->batch = true;
				q->batch_step = !q->packed && !last_only;
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
	return get_one(q, len, false);
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
	bool last_only;

	if (q->broken || max == 0)
		return 0;
	if (!q->packed && split_drv_refresh(q) < 0)
		return 0;
	/* Only the entries that one read of the index showed: no second read per burst. */
	last_only = !q->packed && q->in_order && q->writable_out == 0;
	while (n < max && (q->batch || q->packed || q->last_used != q->shadow_used)) {
		uint32_t l;
		void *t = get_one(q, &l, last_only);
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
