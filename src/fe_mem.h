/* SPDX-License-Identifier: MIT */
/*
 * The front-end's stand-in for guest memory: one shared file (memfd, or a file on hugetlbfs)
 * mapped once, carved by a bump allocator into rings, indirect tables and buffers. Its guest
 * physical addresses are the process's own virtual addresses (as DPDK's virtio-user does with
 * IOVA-as-VA), so translation is a bounds check.
 */
#ifndef VHU_FE_MEM_H
#define VHU_FE_MEM_H

#include <stddef.h>
#include <stdint.h>

struct fe_mem {
	int fd;
	uint8_t *base;
	size_t size;
	size_t brk; /* bytes handed out */
	/* ACCESS_PLATFORM (vhu_frontend_set_iommu): device addresses are IOVAs, the VA plus
	 * this offset (distinct from every VA); 0 without an IOMMU. */
	uint64_t iova_off;
};

/* Creates and maps size bytes: a memfd, or a file under hugepage_dir (unlinked at once) when
 * that is not NULL. 0 or -errno. */
int fe_mem_init(struct fe_mem *m, size_t size, const char *hugepage_dir);
void fe_mem_free(struct fe_mem *m);
/* Zeroed memory, aligned to align (a power of two); NULL when the area is exhausted. */
void *fe_mem_alloc(struct fe_mem *m, size_t size, size_t align);
/* Guest-physical address of [p, p + len), or 0 when it is not inside the area. */
uint64_t fe_mem_gpa(const struct fe_mem *m, const void *p, size_t len);

#endif
