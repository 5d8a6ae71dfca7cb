/* SPDX-License-Identifier: MIT */
/*
 * What both device halves share (ring.h): the sticky broken flag, a descriptor's buffer into
 * an element, an indirect table as one readable piece. Below the halves, above mem.c.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ring.h"
#include "stall.h"
#include "util.h"

int ring_broken(struct vhu_virtq *vq, const char *fmt, ...)
{
	char buf[256];
	va_list ap;

	if (!vq->broken) {
		/* Whatever went wrong, a ring of poisoned memory read zeroes: say why. */
		if (guard_poisoned(&vq->mem->poison)) {
			char why[128];
			guard_describe(&vq->mem->poison, why, sizeof(why));
			snprintf(buf, sizeof(buf), "front-end memory shrank under the device: %s",
				 why);
		} else {
			va_start(ap, fmt);
			vsnprintf(buf, sizeof(buf), fmt, ap);
			va_end(ap);
		}
		log_err(vq->lg, "vring %u broken: %s; not touching it again", vq->index, buf);
		vq->broken = true;
		vq->st.broken = 1;
		/* "VHOST_USER_SET_VRING_ERR": the err eventfd tells the front-end of the error.
		 * Non-blocking (SET_VRING_ERR): EAGAIN means one is pending already. */
		if (vq->err_fd >= 0)
			if (peer_eventfd_write(vq->err_fd) == -EINTR)
				vq->st.stalls++;
	}
	return -EIO;
}

int elem_add_desc(struct vhu_virtq *vq, struct vhu_elem *e, uint64_t addr, uint32_t len,
		  bool writable)
{
	unsigned used = e->out_num + e->in_num;
	int n;

	if (!writable && e->in_num)
		return ring_broken(vq, "readable descriptor after a writable one");
	if ((uint64_t)(writable ? e->in_len : e->out_len) + len > UINT32_MAX)
		return ring_broken(vq, "buffer longer than 4 GiB");
	if (len == 0)
		return 0;
	n = mem_map_iov(vq->mem, addr, len, &e->iov[used], VHU_ELEM_MAX_IOV - used);
	if (n == -EFAULT)
		return ring_broken(vq, "descriptor 0x%llx+%u outside guest memory",
				   (unsigned long long)addr, len);
	if (n < 0)
		return n;
	if (writable) {
		e->in_num += (uint32_t)n;
		e->in_len += len;
	} else {
		e->out_num += (uint32_t)n;
		e->out_len += len;
	}
	return 0;
}

const void *ring_indirect_table(struct vhu_virtq *vq, uint64_t addr, uint32_t len)
{
	const void *t = mem_gpa_to_hva_whole(vq->mem, addr, len);
	uint64_t off = 0;

	if (t)
		return t;
	/* "Indirect Descriptors": the table is len bytes of guest-physical memory; where they
	 * sit in two mappings, the walker reads a copy. Rare (memory hot-plug), so the buffer
	 * is grown on demand and kept for the ring's life. */
	if (vq->ind_copy_size < len) {
		void *p = realloc(vq->ind_copy, len);
		if (!p)
			return NULL;
		vq->ind_copy = p;
		vq->ind_copy_size = len;
	}
	while (off < len) {
		uint64_t l = len - off;
		const void *src = mem_gpa_to_hva(vq->mem, addr + off, &l);
		if (!src)
			return NULL;
		memcpy((uint8_t *)vq->ind_copy + off, src, l);
		off += l;
	}
	return vq->ind_copy;
}

/* A write the log cannot hold (a guest address past its end: the front-end sent a log too
 * small for its memory) is said once per ring start; the rest of the range is marked. */
static void log_outside(struct vhu_virtq *vq, const char *what)
{
	if (vq->log_warned)
		return;
	vq->log_warned = true;
	log_err(vq->lg,
		"vring %u: a write into %s could not be logged (outside the memory table or past "
		"the end of the dirty log): a migration would miss it",
		vq->index, what);
}

void ring_log_hva(struct vhu_virtq *vq, const void *hva, uint64_t len)
{
	vq->log_pending = true;
	if (unlikely(!dirty_mark_hva(vq->dlog, vq->mem, hva, len)))
		log_outside(vq, "a buffer");
}

void ring_log_gpa(struct vhu_virtq *vq, const uint64_t *base, uint64_t off, uint64_t len)
{
	/* base may be rewritten by the control plane (SET_VRING_ADDR of a running ring). */
	uint64_t b = __atomic_load_n(base, __ATOMIC_RELAXED);

	vq->log_pending = true;
	if (unlikely(!dirty_mark(vq->dlog, b + off, len)))
		log_outside(vq, "the ring");
}
