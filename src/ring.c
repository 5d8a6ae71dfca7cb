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
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

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

/* Notes [iova, last] as used by the buffer being popped (merged with the previous range when
 * they touch: a buffer's pieces usually follow each other). */
static void tlb_used(struct vhu_virtq *vq, uint64_t iova, uint64_t last)
{
	struct iotlb_range *p = vq->tlb_nused ? &vq->tlb_used[vq->tlb_nused - 1] : NULL;

	if (p && iova <= p->last + 1 && last + 1 >= p->iova && p->last != UINT64_MAX) {
		p->iova = MIN(p->iova, iova);
		p->last = MAX(p->last, last);
	} else if (vq->tlb_nused < ARRAY_SIZE(vq->tlb_used)) {
		vq->tlb_used[vq->tlb_nused++] = (struct iotlb_range){ iova, last };
	} else {
		vq->tlb_over = true;
	}
}

void *ring_piece(struct vhu_virtq *vq, uint64_t addr, uint64_t *len, unsigned perm, int *err)
{
	void *p = NULL;
	int r;

	if (vq->xlate)
		return vq->xlate(vq->xlate_opaque, addr, len, perm, err);
	*err = -EFAULT;
	if (!vq->iotlb)
		return mem_gpa_to_hva(vq->mem, addr, len);
	/* The last piece again (per_buffer: no shortcut, every range used is noted below). */
	p = vq->iotlb->per_buffer ? NULL : iotlb_cache_last(vq->iotlb, &vq->tlbc, addr, len, perm);
	if (likely(p)) {
		*err = 0;
		return p;
	}
	r = iotlb_translate(vq->iotlb, &vq->tlbc, vq->mem, addr, len, perm, &p, &vq->miss_gen);
	if (r == 0 && vq->iotlb->per_buffer && *len)
		tlb_used(vq, addr, addr + (*len - 1));
	if (r == -EAGAIN)
		/* Pairs with the dispatch thread's generation bump then read of tlb_miss: either
		 * it sees us waiting and kicks, or we see the new generation (ring_tlb_waiting). */
		__atomic_store_n(&vq->tlb_miss, true, __ATOMIC_SEQ_CST);
	*err = r;
	return r ? NULL : p;
}

void *ring_area(struct vhu_virtq *vq, uint64_t addr, uint64_t len, unsigned perm)
{
	uint8_t *first = NULL;
	uint64_t off = 0, end;
	int err;

	if (!vq->iotlb && !vq->xlate)
		return mem_uva_to_hva(vq->mem, addr, len);
	if (!add_ok(addr, len, &end))
		return NULL;
	/* Pieces of IOTLB entries (pages of the vIOMMU, usually) that must follow each other in
	 * our memory too: a ring is one contiguous area. */
	while (off < len) {
		uint64_t l = len - off;
		uint8_t *p = ring_piece(vq, addr + off, &l, perm, &err);
		if (!p || (first && p != first + off))
			return NULL;
		if (!first)
			first = p;
		off += l;
	}
	return first;
}

/* ACCESS_PLATFORM (or the owner's translation): [iova, iova + len) into iovecs, split at
 * mapping and region ends. */
static int map_iov_iova(struct vhu_virtq *vq, uint64_t iova, uint32_t len, struct iovec *iov,
			unsigned max, unsigned perm)
{
	unsigned n = 0;
	uint64_t left = len, whole = len;
	/* The owner's translation (VDUSE) has no IOTLB and no cache. */
	void *first = vq->iotlb && !vq->iotlb->per_buffer
			      ? iotlb_cache_last(vq->iotlb, &vq->tlbc, iova, &whole, perm)
			      : NULL;
	int err;

	/* Most descriptors lie in the mapping the one before them did: one piece. */
	if (likely(first && whole == len && max)) {
		iov[0].iov_base = first;
		iov[0].iov_len = len;
		return 1;
	}
	while (left) {
		uint64_t l = left;
		void *p = ring_piece(vq, iova, &l, perm, &err);
		if (!p)
			return err;
		/* Pages of the vIOMMU that follow each other in our memory too: one iovec. */
		if (n && (uint8_t *)iov[n - 1].iov_base + iov[n - 1].iov_len == p) {
			iov[n - 1].iov_len += l;
			iova += l;
			left -= l;
			continue;
		}
		if (n == max)
			return -ENOBUFS;
		iov[n].iov_base = p;
		iov[n].iov_len = l;
		n++;
		iova += l;
		left -= l;
	}
	return (int)n;
}

int elem_add_desc_slow(struct vhu_virtq *vq, struct vhu_elem *e, uint64_t addr, uint32_t len,
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
	n = vq->iotlb || vq->xlate
		    ? map_iov_iova(vq, addr, len, &e->iov[used], VHU_ELEM_MAX_IOV - used,
				   writable ? IOTLB_PERM_WO : IOTLB_PERM_RO)
		    : mem_map_iov_cached(vq->mem, &vq->mc, addr, len, &e->iov[used],
					 VHU_ELEM_MAX_IOV - used);
	if (n == -EAGAIN)
		return n;
	/* "the device never writes through a read-only mapping" (nor reads a write-only one). */
	if (n == -EACCES)
		return ring_broken(vq, "descriptor 0x%llx+%u: its IOTLB mapping does not allow %s",
				   (unsigned long long)addr, len,
				   writable ? "device writes" : "device reads");
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
	uint64_t off = 0, l = len;
	int err;
	const void *t = ring_piece(vq, addr, &l, IOTLB_PERM_RO, &err);

	if (t && l == len)
		return t;
	if (!t)
		return NULL;
	/* "Indirect Descriptors": the table is len bytes of guest-physical memory; where they
	 * sit in two mappings (or IOTLB entries), the walker reads a copy. Rare (memory
	 * hot-plug; vIOMMU pages not contiguous in our memory), so the buffer
	 * is grown on demand and kept for the ring's life. */
	if (vq->ind_copy_size < len) {
		void *p = realloc(vq->ind_copy, len);
		if (!p)
			return NULL;
		vq->ind_copy = p;
		vq->ind_copy_size = len;
	}
	while (off < len) {
		uint64_t n = len - off;
		const void *src = ring_piece(vq, addr + off, &n, IOTLB_PERM_RO, &err);
		if (!src)
			return NULL;
		memcpy((uint8_t *)vq->ind_copy + off, src, n);
		off += n;
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

#if defined(__x86_64__) || defined(__i386__)
/* PREFETCHW (CPUID 0x80000001 ECX bit 8): asks for the line to write it, so that the driver's
 * copy is given up before the store instead of at it. Checked once; a read prefetch without. */
static bool cpu_prefetchw(void)
{
	static int has = -1;
	int h = __atomic_load_n(&has, __ATOMIC_RELAXED);

	if (h < 0) {
		unsigned eax, ebx, ecx, edx;
		h = __get_cpuid(0x80000001, &eax, &ebx, &ecx, &edx) && (ecx & (1u << 8));
		__atomic_store_n(&has, h, __ATOMIC_RELAXED);
	}
	return h;
}
#endif

static inline void prefetch_for_write(const char *p)
{
#if defined(__x86_64__) || defined(__i386__)
	if (cpu_prefetchw()) {
		__asm__ volatile("prefetchw %0" : : "m"(*p));
		return;
	}
#endif
	__builtin_prefetch(p, 1);
}

/* A receive buffer at p whose frame starts at off (after the virtio-net header), len bytes
 * long. The header's line, when the frame does not start in it, is prefetched for reading
 * only: the receive path writes the header only where it differs (net.c hdr_store), and a
 * driver that leaves the header where its last frame had it (DPDK: the mbuf's headroom) then
 * keeps its copy of the line. The frame's first line is always written. */
static inline void prefetch_rx_buffer(const char *p, uint32_t off, size_t len)
{
	if (off >= len) {
		prefetch_for_write(p);
		return;
	}
	if ((uintptr_t)p / 64 != (uintptr_t)(p + off) / 64)
		__builtin_prefetch(p, 0, 3);
	prefetch_for_write(p + off);
}

void ring_prefetch_elems(const struct vhu_elem *e, unsigned n, uint32_t off)
{
	for (unsigned i = 0; i < n; i++) {
		if (!e[i].in_num)
			continue;
		const struct iovec *v = &e[i].iov[e[i].out_num];
		prefetch_rx_buffer(v->iov_base, off, v->iov_len);
	}
}

void ring_prefetch_ahead(struct vhu_virtq *vq, unsigned d, uint32_t off)
{
	uint64_t addr;
	uint16_t flags;
	const char *p;

	if (vq->broken || vq->iotlb || vq->xlate || vq->infs || d >= vq->num)
		return;
	/* Every field of the ring is loaded atomically: the driver may be writing it. */
	if (vq->packed) {
		uint16_t idx = vq->last_avail_idx;
		bool wrap = vq->avail_wrap;
		vring_packed_advance(&idx, &wrap, d, vq->num);
		const struct vring_packed_desc *pd = &vq->pk.desc[idx];
		flags = le16toh(load_acquire16(&pd->flags));
		if (!vring_packed_is_avail(flags, wrap))
			return;
		addr = le64toh(__atomic_load_n(&pd->addr, __ATOMIC_RELAXED));
	} else {
		/* Only below the avail index already read: the entries up to it are written. */
		if ((uint16_t)(vq->shadow_avail_idx - vq->last_avail_idx) <= d)
			return;
		uint16_t head = le16toh(load_relaxed16(
			&vq->split.avail
				 ->ring[(uint16_t)(vq->last_avail_idx + d) & (vq->num - 1)]));
		if (head >= vq->num)
			return;
		const struct vring_desc *sd = &vq->split.desc[head];
		flags = le16toh(load_relaxed16(&sd->flags));
		addr = le64toh(__atomic_load_n(&sd->addr, __ATOMIC_RELAXED));
	}
	/* A single writable descriptor: not a chain, and never an indirect table (which the
	 * device only reads; a prefetch for writing would take its line from the driver). */
	if ((flags & (VRING_DESC_F_NEXT | VRING_DESC_F_INDIRECT)) || !(flags & VRING_DESC_F_WRITE))
		return;
	p = mem_cache_hit(vq->mem, &vq->mc, addr, (uint64_t)off + 1);
	if (!p)
		return;
	prefetch_rx_buffer(p, off, (size_t)off + 1);
}
