/* SPDX-License-Identifier: MIT */
/* Driver-side virtqueue: set-up, and the public entry points dispatching on the layout. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>

#include "drvq.h"
#include "util.h"

int drvq_broken(struct vhu_drvq *q, const char *fmt, ...)
{
	char buf[256];
	va_list ap;

	if (!q->broken) {
		va_start(ap, fmt);
		vsnprintf(buf, sizeof(buf), fmt, ap);
		va_end(ap);
		log_err(q->lg, "queue %u broken by the back-end: %s; not touching it again",
			q->index, buf);
		q->broken = true;
	}
	return -EIO;
}

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
	if (num == 0 || num > 32768 || (!packed && !is_pow2(num)))
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
	if (!q->packed)
		return q->avail_idx;
	/* "VHOST_USER_SET_VRING_BASE" for packed rings: bits 0-14 avail index, 15 its wrap
	 * counter, 16-30 used index, 31 its wrap counter. */
	return (uint32_t)q->avail_idx | (uint32_t)q->avail_wrap << 15 |
	       (uint32_t)q->last_used << 16 | (uint32_t)q->used_wrap << 31;
}

static void advance(uint16_t *pos, bool *wrap, unsigned n, unsigned num)
{
	unsigned p = *pos + n;

	if (p >= num) {
		p -= num;
		*wrap = !*wrap;
	}
	*pos = (uint16_t)p;
}

/* Packed: the first position the device has not marked used, walking (without consuming)
 * over the used descriptors the driver has not read yet. */
static uint32_t packed_resume_base(const struct vhu_drvq *q)
{
	uint16_t p = q->last_used;
	bool w = q->used_wrap;
	uint16_t oh = q->order_head;

	if (q->batch) {
		while (oh != q->order_tail) {
			uint16_t id = q->order[(oh++) % q->num];
			advance(&p, &w, q->slot[id].ndescs, q->num);
			if (id == q->batch_id)
				break;
		}
	}
	for (unsigned n = 0; n < q->num; n++) {
		uint16_t f = le16toh(load_acquire16(&q->pk.desc[p].flags));
		bool avail = f & (1u << VRING_PACKED_DESC_F_AVAIL);
		bool used = f & (1u << VRING_PACKED_DESC_F_USED);
		uint16_t id = le16toh(q->pk.desc[p].id);
		if (avail != w || used != w || id >= q->num || !q->slot[id].busy)
			break;
		if (!q->in_order) {
			advance(&p, &w, q->slot[id].ndescs, q->num);
			continue;
		}
		while (oh != q->order_tail) {
			uint16_t h = q->order[(oh++) % q->num];
			advance(&p, &w, q->slot[h].ndescs, q->num);
			if (h == id)
				break;
		}
	}
	return (uint32_t)p | (uint32_t)w << 15 | (uint32_t)p << 16 | (uint32_t)w << 31;
}

static const struct vhu_drvq *sort_q;

static int by_seq(const void *a, const void *b)
{
	uint64_t x = sort_q->slot[*(const uint16_t *)a].seq,
		 y = sort_q->slot[*(const uint16_t *)b].seq;
	return x < y ? -1 : x > y;
}

static uint32_t split_resume_base(struct vhu_drvq *q)
{
	uint16_t used = le16toh(load_acquire16(&q->split.used->idx)), n = 0;
	uint16_t out = (uint16_t)(q->avail_idx - used);

	if (q->in_order || out == 0 || out > q->num)
		return used;
	uint8_t *done = calloc(q->num, 1);
	uint16_t *heads = calloc(q->num, sizeof(*heads));
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
			heads[n++] = (uint16_t)h;
	if (n == out) {
		sort_q = q;
		qsort(heads, n, sizeof(*heads), by_seq);
		for (uint16_t i = 0; i < n; i++)
			q->split.avail->ring[(uint16_t)(used + i) & (q->num - 1)] =
				htole16(heads[i]);
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

uint32_t drvq_resume_base(struct vhu_drvq *q)
{
	/* After a back-end died, the new one starts at the first buffer the old one did not
	 * complete: what was available but not used is processed again (as QEMU does when it
	 * restores last_avail_idx from the used index). */
	if (q->packed)
		return packed_resume_base(q);
	return split_resume_base(q);
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

VHU_EXPORT void *vhu_drvq_get(struct vhu_drvq *q, uint32_t *len)
{
	uint16_t id;
	uint32_t l;

	if (q->broken)
		return NULL;
	if (q->batch) {
		/* IN_ORDER: buffers before the one the device named are done too. */
		if (q->order_head == q->order_tail) {
			drvq_broken(q, "in-order batch ends at a buffer never made available");
			return NULL;
		}
		id = q->order[(q->order_head++) % q->num];
		l = id == q->batch_id ? q->batch_len : 0;
		q->batch = id != q->batch_id;
	} else {
		if ((q->packed ? packed_drv_used(q, &id, &l) : split_drv_used(q, &id, &l)) <= 0)
			return NULL;
		if (q->in_order) {
			uint16_t first = q->order[(q->order_head++) % q->num];
			if (first != id) {
				q->batch = true;
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

VHU_EXPORT bool vhu_drvq_enable_cb(struct vhu_drvq *q)
{
	if (q->broken)
		return false;
	return q->packed ? packed_drv_enable_cb(q) : split_drv_enable_cb(q);
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
