/* SPDX-License-Identifier: MIT */
/*
 * The dirty page log for live migration ("Migration" in vhost-user.rst): a bitmap in a file the
 * front-end shares (SET_LOG_BASE with LOG_SHMFD), one bit per 4 KiB page of guest-physical
 * memory. While VHOST_F_LOG_ALL is negotiated, every byte the device writes into front-end
 * memory sets its page's bit with an atomic OR, after the write: the front-end reads and
 * clears the bitmap while the rings run, and copies a page only after it saw the bit.
 */
#ifndef VHU_DIRTY_H
#define VHU_DIRTY_H

#include <stdbool.h>
#include <stdint.h>

#include "log.h"
#include "mem.h"

/* "VHOST_LOG_PAGE 0x1000" */
#define DIRTY_PAGE_SHIFT 12
#define DIRTY_PAGE	 (1ULL << DIRTY_PAGE_SHIFT)

struct dirty_log {
	uint8_t *bits; /* the bitmap: map + the offset's part inside a page */
	uint64_t size; /* bytes of bitmap: pages [0, 8 * size) can be marked */
	void *map;     /* what munmap takes */
	uint64_t map_len;
	int guard; /* SIGBUS guard slot, or -1 */
};

/* Pages a bitmap of size bytes covers, and the bitmap bytes memory up to gpa end needs. */
static inline uint64_t dirty_bytes_for(uint64_t end)
{
	return (end + DIRTY_PAGE * 8 - 1) / (DIRTY_PAGE * 8);
}

/*
 * Maps the log from fd (SET_LOG_BASE): size bytes of bitmap at offset. Only what fstat proves
 * is mapped (memfd, tmpfs, hugetlbfs only: mem_fd_check), and the mapping is registered with
 * the SIGBUS guard under poison. The fd is not taken. 0, or -errno (logged): -EINVAL for a
 * size of 0, an offset + size that overflows or is past the end of the file.
 */
int dirty_map(struct dirty_log *l, int fd, uint64_t size, uint64_t offset,
	      struct guard_poison *poison, const struct logger *lg);
/* Unmaps (nothing when not mapped) and clears l. */
void dirty_unmap(struct dirty_log *l);

/*
 * Marks the pages of [gpa, gpa + len). Release order: the device's writes to those pages
 * are visible before the bits. Returns false when part of the range lies past the log (the
 * pages inside it are still marked).
 */
bool dirty_mark(const struct dirty_log *l, uint64_t gpa, uint64_t len);

/* The guest-physical range of [hva, hva + len) of mapped memory, region by region, marked.
 * Returns false when part of it is outside every region or past the log. */
bool dirty_mark_hva(const struct dirty_log *l, const struct mem *mm, const void *hva, uint64_t len);

#endif
