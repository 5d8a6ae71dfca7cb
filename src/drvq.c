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
	if (q->broken)
		return NULL;
	return q->packed ? packed_drv_get(q, len) : split_drv_get(q, len);
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
