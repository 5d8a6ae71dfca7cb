/* SPDX-License-Identifier: MIT */
/* The dirty page log (dirty.h). */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dirty.h"
#include "guard.h"
#include "util.h"

/* A log covers guest memory, so it is at most 1/32768 of a 64-bit address space; a larger
 * claim is a front-end mistake, not a mapping to attempt. */
#define DIRTY_MAX_SIZE (1ULL << 40)

int dirty_map(struct dirty_log *l, int fd, uint64_t size, uint64_t offset,
	      struct guard_poison *poison, const struct logger *lg)
{
	long pg = sysconf(_SC_PAGESIZE);
	uint64_t end, start, len;
	struct stat st;
	void *map;
	int ret, guard;

	*l = (struct dirty_log){ .guard = -1 };
	if (size == 0 || size > DIRTY_MAX_SIZE || !add_ok(offset, size, &end) ||
	    end > (uint64_t)INT64_MAX) {
		log_err(lg, "SET_LOG_BASE: log of 0x%llx bytes at offset 0x%llx is invalid",
			(unsigned long long)size, (unsigned long long)offset);
		return -EINVAL;
	}
	ret = mem_fd_check(fd, "dirty log", lg);
	if (ret)
		return ret;
	if (fstat(fd, &st) < 0)
		return -errno;
	/* Map only what fstat proves: a page past the end of the file raises SIGBUS. */
	if (!S_ISREG(st.st_mode) || end > (uint64_t)st.st_size) {
		log_err(lg,
			"SET_LOG_BASE: log (offset 0x%llx, size 0x%llx) is not inside its fd "
			"(%s of 0x%llx bytes)",
			(unsigned long long)offset, (unsigned long long)size,
			S_ISREG(st.st_mode) ? "a file" : "not a file",
			(unsigned long long)st.st_size);
		return -EINVAL;
	}
	uint64_t page = mem_page_size(fd);
	if (page < (uint64_t)pg)
		page = (uint64_t)pg;
	start = offset & ~(page - 1);
	len = end - start;
	map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)start);
	if (map == MAP_FAILED) {
		ret = -errno;
		log_err(lg, "SET_LOG_BASE: mmap of the log: %s", strerror(-ret));
		return ret;
	}
	/* The front-end can still shrink the file later: guarded like the memory regions. */
	guard = guard_add(map, len, page, GUARD_LOG, poison);
	if (guard == -ENOSPC) {
		log_err(lg, "SET_LOG_BASE: every SIGBUS guard slot is in use");
		munmap(map, len);
		return -ENOSPC;
	}
	l->map = map;
	l->map_len = len;
	l->bits = (uint8_t *)map + (offset - start);
	l->size = size;
	l->guard = guard;
	return 0;
}

void dirty_unmap(struct dirty_log *l)
{
	if (l->map) {
		guard_remove(l->guard);
		munmap(l->map, l->map_len);
	}
	*l = (struct dirty_log){ .guard = -1 };
}

bool dirty_mark(const struct dirty_log *l, uint64_t gpa, uint64_t len)
{
	uint64_t first, last, limit = l->size * 8;
	bool inside = true;

	if (len == 0)
		return true;
	first = gpa >> DIRTY_PAGE_SHIFT;
	last = (gpa + len - 1 < gpa ? UINT64_MAX : gpa + len - 1) >> DIRTY_PAGE_SHIFT;
	if (last >= limit) {
		inside = false;
		if (first >= limit)
			return false;
		last = limit - 1;
	}
	/* Whole bytes in the middle of a long range take one OR each. */
	while (first <= last) {
		uint8_t bits;
		uint64_t byte = first / 8;
		unsigned lo = first % 8, hi = byte == last / 8 ? last % 8 : 7;

		bits = (uint8_t)((0xffu >> (7 - hi)) & (0xffu << lo));
		__atomic_fetch_or(&l->bits[byte], bits, __ATOMIC_RELEASE);
		first = (byte + 1) * 8;
	}
	return inside;
}

bool dirty_mark_hva(const struct dirty_log *l, const struct mem *mm, const void *hva, uint64_t len)
{
	const uint8_t *p = hva;
	bool ok = true;

	while (len) {
		unsigned i;
		for (i = 0; i < mm->n; i++) {
			const struct mem_region *r = &mm->regions[i];
			if (p >= r->hva && (uint64_t)(p - r->hva) < r->size)
				break;
		}
		if (i == mm->n)
			return false;
		const struct mem_region *r = &mm->regions[i];
		uint64_t off = (uint64_t)(p - r->hva), n = MIN(len, r->size - off);
		ok &= dirty_mark(l, r->gpa + off, n);
		p += n;
		len -= n;
	}
	return ok;
}
