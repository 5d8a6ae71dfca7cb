/* SPDX-License-Identifier: MIT */
/*
 * The front-end's memory as the back-end sees it: a table of regions, each mmapped from the
 * fd the front-end sent. Translates guest-physical addresses (buffers) and front-end virtual
 * addresses (ring locations) into pointers, with bounds checks.
 */
#ifndef VHU_MEM_H
#define VHU_MEM_H

#include <stdint.h>
#include <sys/uio.h>

#include "guard.h"
#include "log.h"
#include "vhu/proto.h"

/* Answer to GET_MAX_MEM_SLOTS: 509, as libvhost-user and rust-vmm offer (KVM's 512 user
 * memory slots less the 3 x86 keeps; QEMU >= 8.1 uses them, QEMU 7.2 caps at 256). Constant, so
 * it never shrinks across reconnects, which QEMU refuses. */
#define MEM_MAX_SLOTS 509

struct mem_region {
	uint64_t gpa;
	uint64_t size;
	uint64_t uva;
	uint64_t mmap_offset;
	uint8_t *hva;	/* mmap base + mmap_offset */
	void *map_base; /* what munmap takes */
	uint64_t map_size;
	unsigned refs; /* ADD_MEM_REG of an identical region counts here */
	int guard;     /* SIGBUS guard slot, or -1 */
};

struct mem {
	unsigned n;
	/* Bumped by every change of the table (mem_set_table, mem_add, mem_remove, mem_clear):
	 * a ring's cache of the last region it hit (struct mem_cache) is valid only for the
	 * generation it was filled in. The back-end changes the table only while every ring is
	 * stopped (backend.c, stop_all), so no ring reads it during a change. */
	uint64_t gen;
	/* Set by the SIGBUS guard when a mapping of this device (a region, or the inflight
	 * buffer registered by the back-end) lost its pages: the front-end shrank the file. */
	struct guard_poison poison;
	struct mem_region regions[MEM_MAX_SLOTS];
};

/* Empty table, poison cleared. */
void mem_init(struct mem *mm);
/* 0 when fd is a memfd, tmpfs or hugetlbfs file (the only fds vhu maps); else logged and
 * -EINVAL. what names the fd in the log. */
int mem_fd_check(int fd, const char *what, const struct logger *lg);
/* Unmaps everything (the poison stays until mem_init). */
void mem_clear(struct mem *mm);
/* Replaces the table (SET_MEM_TABLE). Takes the fds on success (slots set to -1). On error the
 * old table is kept and the fds are left to the caller. */
int mem_set_table(struct mem *mm, const struct vhu_mem_region *r, unsigned n, int *fds,
		  const struct logger *lg);
/* ADD_MEM_REG: takes *fd on success. A region identical to a mapped one (same guest address,
 * user address and size) only takes a reference: QEMU 7.2 adds every region once per vhost_dev,
 * and a multiqueue net device has one vhost_dev per queue pair on the same socket. */
int mem_add(struct mem *mm, const struct vhu_mem_region *r, int *fd, const struct logger *lg);
/* REM_MEM_REG: matched on guest address, user address and size; drops one reference. */
int mem_remove(struct mem *mm, const struct vhu_mem_region *r, const struct logger *lg);

/* The page size a mapping of fd takes (hugetlbfs: the huge page size), from st_blksize. */
uint64_t mem_page_size(int fd);

/* Guest-physical -> pointer; *len is shortened to what stays inside one region. NULL when
 * gpa is not mapped. */
static inline void *mem_gpa_to_hva(const struct mem *mm, uint64_t gpa, uint64_t *len)
{
	for (unsigned i = 0; i < mm->n; i++) {
		const struct mem_region *r = &mm->regions[i];
		uint64_t off = gpa - r->gpa;
		if (gpa >= r->gpa && off < r->size) {
			if (*len > r->size - off)
				*len = r->size - off;
			return r->hva + off;
		}
	}
	return NULL;
}

/* A copy of the region a ring's last descriptor fell in (no pointer into the table, whose
 * slots move on REM_MEM_REG), valid while its gen is the table's. size 0: empty. */
struct mem_cache {
	uint64_t gpa;
	uint64_t size;
	uint8_t *hva;
	uint64_t gen;
};

/* [gpa, gpa + len) as one pointer when it lies in the cached region of the current table,
 * else NULL (mem_map_iov_cached() looks it up and refills the cache). */
static inline void *mem_cache_hit(const struct mem *mm, const struct mem_cache *c, uint64_t gpa,
				  uint64_t len)
{
	uint64_t off = gpa - c->gpa;

	if (__builtin_expect(
		    c->gen == mm->gen && gpa >= c->gpa && off < c->size && len <= c->size - off, 1))
		return c->hva + off;
	return NULL;
}

/* Front-end virtual -> pointer for len bytes that must be contiguous in one region. */
void *mem_uva_to_hva(const struct mem *mm, uint64_t uva, uint64_t len);
/* Front-end virtual -> guest-physical, UINT64_MAX when unmapped (the ring's own guest address,
 * for the dirty log). */
uint64_t mem_uva_to_gpa(const struct mem *mm, uint64_t uva);
/* gpa -> pointer for len bytes that must lie inside one region. */
void *mem_gpa_to_hva_whole(const struct mem *mm, uint64_t gpa, uint64_t len);

/* Fills iov with views of [gpa, gpa + len), split at region ends. Returns the number of
 * iovecs used, -EFAULT when part of the range is unmapped, -ENOBUFS when max is too small. */
int mem_map_iov(const struct mem *mm, uint64_t gpa, uint32_t len, struct iovec *iov, unsigned max);
/* mem_map_iov() through a ring's cache c: the region of the range's first byte is kept in c. */
int mem_map_iov_cached(const struct mem *mm, struct mem_cache *c, uint64_t gpa, uint32_t len,
		       struct iovec *iov, unsigned max);

#endif
