/* SPDX-License-Identifier: MIT */
/* Public virtqueue entry points: broken-ring and poison checks, then dispatch on the layout
 * (virtq_split.c, virtq_packed.c); and the control plane's calls on a ring (virtq_ctl.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include "inflight.h"
#include "stall.h"
#include "util.h"
#include "virtq_ctl.h"
#include "virtq_layout.h"

void virtq_init(struct vhu_virtq *vq, unsigned index, const struct mem *mm, const struct logger *lg)
{
	*vq = (struct vhu_virtq){
		.index = index,
		.mem = mm,
		.lg = lg,
		.kick_fd = -1,
		.call_fd = -1,
		.err_fd = -1,
		.log_fd = -1,
	};
}

void virtq_reset(struct vhu_virtq *vq)
{
	void *priv = vq->priv;
	struct vhu_virtq_stats st = vq->st;

	close_fd(&vq->kick_fd);
	close_fd(&vq->call_fd);
	close_fd(&vq->err_fd);
	inflight_reset(vq);
	free(vq->ind_copy);
	virtq_init(vq, vq->index, vq->mem, vq->lg);
	/* Counters are cumulative over the queue's life, across reconnects. */
	vq->priv = priv;
	vq->st = st;
	vq->st.broken = 0;
}

int virtq_map(struct vhu_virtq *vq, bool packed, bool event_idx, bool in_order)
{
	int ret;

	vq->packed = packed;
	vq->event_idx = event_idx;
	/* Inflight tracking (INFLIGHT_SHMFD) records every used entry on its own: no batches. */
	vq->in_order = in_order && !vq->inf;
	vq->io_n = 0;
	vq->signalled_used_valid = false;
	vq->pk_npend = 0;
	vq->tlb_miss = false;
	iotlb_cache_reset(&vq->tlbc);
	/* Tracking state is rebuilt from the region at every start: nothing of an earlier
	 * start (another size, another region) survives it. */
	inflight_reset(vq);
	/* Read before the areas are translated: a change meanwhile has them translated again. */
	if (vq->iotlb)
		vq->ring_gen = iotlb_gen(vq->iotlb);
	ret = packed ? packed_map(vq) : split_map(vq);
	if (ret == 0 && vq->inf)
		return packed ? inflight_packed_start(vq) : inflight_split_start(vq);
	if (ret && ret != -EAGAIN) /* -EAGAIN: an IOTLB miss, the ring waits for the update */
		log_err(vq->lg,
			"vring %u: addresses desc 0x%llx avail 0x%llx used 0x%llx (size %u) %s",
			vq->index, (unsigned long long)vq->addr.desc,
			(unsigned long long)vq->addr.avail, (unsigned long long)vq->addr.used,
			vq->num,
			ret == -EFAULT ? "are outside every memory region" : "are invalid");
	return ret;
}

void virtq_save(struct vhu_virtq *vq)
{
	/* Packed: a burst pushed but never flushed is published now, as a split ring's used
	 * entries would be by the next back-end's first flush. IN_ORDER: a batch not written
	 * out yet is, on either layout (split: with the used index that covers it, which a
	 * reconnecting back-end takes from the ring). */
	if (!vq->broken) {
		if (vq->packed)
			packed_publish(vq);
		else
			split_publish(vq);
	}
	vq->pk_npend = 0;
	vq->io_n = 0;
	vq->base_avail = vq->last_avail_idx;
	vq->base_avail_wrap = vq->packed ? vq->avail_wrap : false;
	vq->base_used = vq->used_idx;
	vq->base_used_wrap = vq->packed ? vq->used_wrap : false;
	vq->resume = true;
}

uint32_t virtq_base(const struct vhu_virtq *vq)
{
	struct vring_base b = { vq->base_avail, vq->base_used, vq->base_avail_wrap,
				vq->base_used_wrap };

	return vring_base_encode(vq->packed, &b);
}

/*
 * ACCESS_PLATFORM: "Invalidations take effect for every later translation", the ring's own
 * areas included. The IOTLB changed since they were translated: again, before the next pop (an
 * invalidation that did not touch them gives the same pointers). A miss: the ring waits for the
 * update (-EAGAIN), keeping its old pointers for what was popped already (they point into the
 * memory regions, which stay mapped); an area now mapped elsewhere moves the ring there; one
 * mapped without the permission it needs breaks the ring.
 */
static int areas_current(struct vhu_virtq *vq)
{
	uint64_t g = iotlb_gen(vq->iotlb);
	int ret;

	if (likely(g == vq->ring_gen))
		return 0;
	ret = vq->packed ? packed_areas(vq) : split_areas(vq);
	if (ret == -EAGAIN)
		return ret;
	if (ret)
		return ring_broken(vq,
				   "after an IOTLB change its areas (desc 0x%llx avail 0x%llx used "
				   "0x%llx) are %s",
				   (unsigned long long)vq->addr.desc,
				   (unsigned long long)vq->addr.avail,
				   (unsigned long long)vq->addr.used,
				   ret == -EINVAL ? "misaligned" : "not mapped for the device");
	vq->ring_gen = g;
	return 0;
}

/* The SIGBUS guard (guard.h) found this device's memory shrunk, before or during this call
 * (the access that faulted read zeroes): the ring is broken. */
static bool poisoned(struct vhu_virtq *vq)
{
	if (likely(!guard_poisoned(&vq->mem->poison)))
		return false;
	ring_broken(vq, "poisoned");
	return true;
}

/* ACCESS_PLATFORM: before a pop. 1: pop, 0: wait for an update (nothing to pop), -EIO. */
static int iotlb_ready(struct vhu_virtq *vq)
{
	int ret;

	/* After a miss, nothing until the update came (it kicks the ring). */
	if (ring_tlb_waiting(vq))
		return 0;
	ret = areas_current(vq);
	if (ret)
		return ret == -EAGAIN ? 0 : ret;
	return 1;
}

/* One element, the ring's checks done (and again by the caller for the poison). */
static inline __attribute__((always_inline)) int pop_one(struct vhu_virtq *vq, struct vhu_elem *e,
							 bool keep_nobufs)
{
	int ret;

	if (unlikely(vq->iotlb) && vq->iotlb->per_buffer) {
		vq->tlb_nused = 0;
		vq->tlb_over = false;
	}
	ret = vq->packed ? packed_pop(vq, e, keep_nobufs) : split_pop(vq, e, keep_nobufs);
	if (ret == -EAGAIN)
		ret = 0;
	/* VHU_DEVICE_F_IOTLB_PER_BUFFER: the buffer's pointers are resolved; what it was mapped
	 * through is forgotten, so that the next buffer at these IOVAs asks the front-end again
	 * (a guest may have unmapped and reused them without an invalidation reaching us). Also
	 * for a chain too long (-ENOBUFS): consumed all the same (or left in the ring, and
	 * translated again when popped). */
	if (unlikely(vq->iotlb) && vq->iotlb->per_buffer && (ret > 0 || ret == -ENOBUFS)) {
		static const struct iotlb_range all = { 0, UINT64_MAX };
		if (vq->tlb_over)
			iotlb_forget(vq->iotlb, &all, 1);
		else
			iotlb_forget(vq->iotlb, vq->tlb_used, vq->tlb_nused);
	}
	return ret;
}

VHU_EXPORT int vhu_virtq_pop(struct vhu_virtq *vq, struct vhu_elem *e)
{
	int ret;

	if (unlikely(vq->broken) || poisoned(vq))
		return -EIO;
	if (unlikely(vq->iotlb) && (ret = iotlb_ready(vq)) <= 0)
		return ret;
	ret = pop_one(vq, e, false);
	return poisoned(vq) ? -EIO : ret;
}

/*
 * The single pop's results, in a run: the checks of the ring (broken, poison, IOTLB areas)
 * once, the split ring's avail index read at most once, and each element through pop_one(),
 * the same walk and validation as vhu_virtq_pop(). The first result other than an element
 * ends the burst, and is what the call returns only when it is the first: a chain too long
 * after elements stays in the ring (the next call returns -ENOBUFS for it), a broken ring
 * returns -EIO at the next call, an IOTLB miss leaves the buffer and the rest in the ring.
 */
VHU_EXPORT int vhu_virtq_pop_burst(struct vhu_virtq *vq, struct vhu_elem *e, unsigned n)
{
	unsigned i = 0;
	int ret = 0;

	if (unlikely(vq->broken) || poisoned(vq))
		return -EIO;
	if (unlikely(vq->iotlb) && (ret = iotlb_ready(vq)) <= 0)
		return ret;
	/* After a restart the resubmitted requests come one at a time (they are not in the
	 * avail ring). Split: no more than the driver's index, read once, says. */
	if (unlikely(vq->infs && vq->infs->pos < vq->infs->nresub)) {
		n = MIN(n, 1u);
	} else if (!vq->packed) {
		unsigned avail = split_avail(vq);
		n = MIN(n, avail);
	}
	if (unlikely(vq->broken))
		return -EIO;
	if (likely(!vq->iotlb || !vq->iotlb->per_buffer)) {
		/* pop_one() is the layout's pop then: the loop runs where it is inlined. */
		i = vq->packed ? packed_pop_many(vq, e, n, &ret) : split_pop_many(vq, e, n, &ret);
		if (ret == -EAGAIN)
			ret = 0;
	} else {
		for (; i < n; i++) {
			ret = pop_one(vq, &e[i], i > 0);
			if (ret <= 0)
				break;
		}
	}
	if (poisoned(vq))
		return -EIO;
	if (i == 0 && n)
		return ret;
	return (int)i;
}

static void log_written(struct vhu_virtq *vq, const struct vhu_elem *e, uint32_t written)
{
	uint32_t end = e->out_num + e->in_num;

	if (end > VHU_ELEM_MAX_IOV)
		end = VHU_ELEM_MAX_IOV;
	for (uint32_t i = e->out_num; i < end && written; i++) {
		uint32_t n = MIN((uint64_t)written, e->iov[i].iov_len);
		ring_log_hva(vq, e->iov[i].iov_base, n);
		written -= n;
	}
}

/* One element, the ring's checks done. */
static inline __attribute__((always_inline)) void
push_one(struct vhu_virtq *vq, const struct vhu_elem *e, uint32_t written)
{
	if (written > e->in_len)
		written = e->in_len;
	/* The element is the application's: a count no pop could have produced would move the
	 * used position off the ring's geometry. */
	if (unlikely(e->ndescs == 0 || e->ndescs > vq->num)) {
		ring_broken(vq, "pushed element %u claims %u descriptors", e->id, e->ndescs);
		return;
	}
	/* "Migration": the pages of what the device wrote are marked before the driver can see
	 * the buffer used. `written` bytes from the start of the device-writable part. */
	if (unlikely(ring_logging(vq) & RING_LOG_DATA))
		log_written(vq, e, written);
	/* IN_ORDER tx buffers join the pending batch here, without a call. */
	if (vq->packed) {
		if (!packed_push_batched(vq, e))
			packed_push(vq, e, written);
	} else if (!split_push_batched(vq, e)) {
		split_push(vq, e, written);
	}
}

VHU_EXPORT void vhu_virtq_push(struct vhu_virtq *vq, const struct vhu_elem *e, uint32_t written)
{
	if (unlikely(vq->broken) || poisoned(vq))
		return;
	push_one(vq, e, written);
	poisoned(vq);
}

VHU_EXPORT void vhu_virtq_push_burst(struct vhu_virtq *vq, const struct vhu_elem *e,
				     const uint32_t *written, unsigned n)
{
	if (unlikely(vq->broken) || poisoned(vq))
		return;
	for (unsigned i = 0; i < n && !vq->broken; i++)
		push_one(vq, &e[i], written ? written[i] : 0);
	poisoned(vq);
}

VHU_EXPORT void vhu_virtq_log_write(struct vhu_virtq *vq, const void *addr, size_t len)
{
	if (unlikely(ring_logging(vq) & RING_LOG_DATA) && !vq->broken)
		ring_log_hva(vq, addr, len);
}

VHU_EXPORT void vhu_virtq_flush(struct vhu_virtq *vq)
{
	bool notify;

	if (unlikely(vq->broken) || poisoned(vq))
		return;
	notify = vq->packed ? packed_flush(vq) : split_flush(vq);
	if (poisoned(vq))
		return;
	/* SET_LOG_FD: "the log was written", like the kernel's log eventfd; never waits. */
	if (unlikely(vq->log_pending) && vq->log_fd >= 0) {
		vq->log_pending = false;
		if (peer_eventfd_write(vq->log_fd) == -EINTR)
			vq->st.stalls++;
	}
	if (notify && vq->notify) {
		vq->notify(vq->xlate_opaque, vq);
		vq->st.calls++;
	} else if (notify && vq->call_fd >= 0) {
		/* Non-blocking (SET_VRING_CALL): a counter at its maximum fails with EAGAIN, and
		 * the front-end has a notification pending anyway. */
		if (unlikely(peer_eventfd_write(vq->call_fd) == -EINTR)) {
			vq->st.stalls++;
			ring_broken(vq, "the call eventfd blocked: the front-end made it blocking "
					"and filled its counter");
			return;
		}
		vq->st.calls++;
	}
}

VHU_EXPORT uint32_t vhu_virtq_cursor(const struct vhu_virtq *vq)
{
	return vq->last_avail_idx | (vq->avail_wrap ? 1u << 16 : 0);
}

VHU_EXPORT void vhu_virtq_rewind(struct vhu_virtq *vq, uint32_t cursor)
{
	/* The rewound buffers were recorded as in flight: taking them again would look like the
	 * driver offering them twice, and a restart would resubmit them. Refused, visibly. */
	if (vq->infs && cursor != vhu_virtq_cursor(vq)) {
		ring_broken(vq, "vhu_virtq_rewind() on a ring with inflight tracking");
		return;
	}
	vq->last_avail_idx = (uint16_t)cursor;
	vq->avail_wrap = !!(cursor >> 16);
}

VHU_EXPORT bool vhu_virtq_enable_notify(struct vhu_virtq *vq)
{
	bool more;

	if (unlikely(vq->broken))
		return false;
	more = vq->packed ? packed_enable_notify(vq) : split_enable_notify(vq);
	/* Waiting for an IOTLB update: more only once it came (else the caller would spin on a
	 * buffer it cannot map). */
	if (unlikely(vq->iotlb) && __atomic_load_n(&vq->tlb_miss, __ATOMIC_SEQ_CST))
		return !ring_tlb_waiting(vq);
	return more;
}

VHU_EXPORT void vhu_virtq_disable_notify(struct vhu_virtq *vq)
{
	if (unlikely(vq->broken))
		return;
	if (vq->packed)
		packed_disable_notify(vq);
	else
		split_disable_notify(vq);
}

VHU_EXPORT uint64_t vhu_virtq_kick_drain(struct vhu_virtq *vq)
{
	uint64_t v = 0;
	struct iovec iov = { &v, sizeof(v) };
	ssize_t n = -1;

	if (vq->kick_fd < 0)
		return 0;
	/* The kick fd is O_NONBLOCK (SET_VRING_KICK), but that flag lives on a file description
	 * the front-end shares and could clear again: RWF_NOWAIT asks for "never wait" on this
	 * read alone. Where it is refused (older kernels), the ring remembers it: state of this
	 * object, not of the process, so two rings on two threads share nothing. */
	if (!vq->kick_nowait_off) {
		n = preadv2(vq->kick_fd, &iov, 1, -1, RWF_NOWAIT);
		if (n < 0 && errno == EOPNOTSUPP)
			vq->kick_nowait_off = true;
	}
	if (vq->kick_nowait_off)
		n = read(vq->kick_fd, &v, sizeof(v));
	if (n != sizeof(v))
		return 0;
	vq->st.kicks++;
	return v;
}

VHU_EXPORT bool vhu_virtq_iotlb_waiting(struct vhu_virtq *vq)
{
	return vq->iotlb && ring_tlb_waiting(vq);
}

VHU_EXPORT unsigned vhu_virtq_index(const struct vhu_virtq *vq)
{
	return vq->index;
}

VHU_EXPORT unsigned vhu_virtq_size(const struct vhu_virtq *vq)
{
	return vq->num;
}

VHU_EXPORT int vhu_virtq_kick_fd(const struct vhu_virtq *vq)
{
	return vq->kick_fd;
}

VHU_EXPORT bool vhu_virtq_enabled(const struct vhu_virtq *vq)
{
	return vq->enabled;
}

VHU_EXPORT bool vhu_virtq_broken(const struct vhu_virtq *vq)
{
	return vq->broken;
}

VHU_EXPORT bool vhu_virtq_packed(const struct vhu_virtq *vq)
{
	return vq->packed;
}

VHU_EXPORT void vhu_virtq_set_priv(struct vhu_virtq *vq, void *priv)
{
	vq->priv = priv;
}

VHU_EXPORT void *vhu_virtq_priv(const struct vhu_virtq *vq)
{
	return vq->priv;
}

VHU_EXPORT void vhu_virtq_stats(const struct vhu_virtq *vq, struct vhu_virtq_stats *st)
{
	*st = vq->st;
}
