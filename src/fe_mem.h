/* SPDX-License-Identifier: MIT */
/*
 * The front-end's stand-in for guest memory: one shared file (memfd, or a file on hugetlbfs)
 * mapped once, carved by a bump allocator into rings, indirect tables and buffers. It sits at
 * guest-physical address FE_MEM_GPA_BASE, as a VM's RAM sits low in its address space: the
 * dirty log, which "covers from address 0 to the maximum of guest regions" (vhost-user.rst
 * "Migration"), then stays as small as the memory (one bit per 4 KiB page). Translation is a
 * bounds check and an offset. Ring addresses (SET_VRING_ADDR) are the process's own virtual
 * addresses, as a VMM's are.
 */
#ifndef VHU_FE_MEM_H
#define VHU_FE_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Guest-physical address of byte 0 of the area (not 0: 0 means "not in the area"). */
#define FE_MEM_GPA_BASE 0x100000ull

struct fe_mem {
	int fd;
	uint8_t *base;
	size_t size;
	size_t brk; /* bytes handed out */
	/* ACCESS_PLATFORM (vhu_frontend_set_iommu): device addresses are IOVAs, the VA plus
	 * this offset (distinct from every VA); 0 without an IOMMU. */
	uint64_t iova_off;
	/* vhost-vdpa: the device sees the area at the front-end's own addresses (IOVA = VA):
	 * descriptors carry virtual addresses. */
	bool dma_va;
};

/* Creates and maps size bytes: a memfd, or a file under hugepage_dir (unlinked at once) when
 * that is not NULL. 0 or -errno. */
int fe_mem_init(struct fe_mem *m, size_t size, const char *hugepage_dir);
void fe_mem_free(struct fe_mem *m);
/* Zeroed memory, aligned to align (a power of two); NULL when the area is exhausted. */
void *fe_mem_alloc(struct fe_mem *m, size_t size, size_t align);
/* Guest-physical address of [p, p + len), or 0 when it is not inside the area (the memory
 * table's and the dirty log's address space). */
uint64_t fe_mem_gpa(const struct fe_mem *m, const void *p, size_t len);

/*
 * The fields fe_mem_dma() reads, copied once per burst (fe_mem_xlat()) so that a loop writing
 * descriptors does not reload them after every store, and translation stays inline (no call
 * per buffer). A copy lives only while one add call runs; vhu_frontend_set_iommu() and the
 * transport's dma_va change the area between calls, never during one, so there is nothing
 * to invalidate (unit drvq: burst_xlat_fresh).
 */
struct fe_mem_xlat {
	uintptr_t base;
	size_t size;  /* 0 when the area is not mapped: nothing translates */
	uint64_t off; /* what a descriptor carries for byte b of the area: b + off */
};

static inline struct fe_mem_xlat fe_mem_xlat(const struct fe_mem *m)
{
	struct fe_mem_xlat x = { (uintptr_t)m->base, m->base ? m->size : 0, 0 };

	/* IOVA = VA + iova_off (ACCESS_PLATFORM), VA (dma_va), else the guest-physical address. */
	x.off = m->iova_off || m->dma_va ? x.base + m->iova_off : FE_MEM_GPA_BASE;
	return x;
}

/* The address a descriptor carries for [p, p + len) (fe_mem_dma()), 0 when it is not inside
 * the area. */
static inline uint64_t fe_mem_xlat_dma(const struct fe_mem_xlat *x, const void *p, size_t len)
{
	uintptr_t b = (uintptr_t)p - x->base; /* wraps above size when p < base */

	if (!x->size || b > x->size || len > x->size - b)
		return 0;
	return (uint64_t)b + x->off;
}

/* The address a descriptor carries for [p, p + len): its IOVA with ACCESS_PLATFORM (the VA plus
 * iova_off), its VA with dma_va, else its guest-physical address; 0 when it is not inside the
 * area. */
static inline uint64_t fe_mem_dma(const struct fe_mem *m, const void *p, size_t len)
{
	struct fe_mem_xlat x = fe_mem_xlat(m);

	return fe_mem_xlat_dma(&x, p, len);
}

#endif
