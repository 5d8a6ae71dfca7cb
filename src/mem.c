/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mem.h"
#include "util.h"

void mem_init(struct mem *mm)
{
	mm->n = 0;
	mm->gen++;
	guard_clear(&mm->poison);
}

static void region_unmap(struct mem_region *r)
{
	guard_remove(r->guard);
	r->guard = -1;
	if (r->map_base)
		munmap(r->map_base, r->map_size);
	r->map_base = NULL;
	r->hva = NULL;
}

uint64_t mem_page_size(int fd)
{
	struct stat st;
	uint64_t align = 4096;

	/* hugetlbfs files must be mapped in whole huge pages; st_blksize gives the page size. */
	if (fstat(fd, &st) == 0 && st.st_blksize > 0)
		align = (uint64_t)st.st_blksize;
	return (align & (align - 1)) == 0 ? align : 4096;
}

void mem_clear(struct mem *mm)
{
	for (unsigned i = 0; i < mm->n; i++)
		region_unmap(&mm->regions[i]);
	mm->n = 0;
	mm->gen++;
}

static bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

/* Checks one region's fields for sense, before any mmap. */
static int region_check(const struct vhu_mem_region *r, const struct logger *lg)
{
	uint64_t end;

	if (r->memory_size == 0) {
		log_err(lg, "memory region at gpa 0x%llx has size 0",
			(unsigned long long)r->guest_phys_addr);
		return -EINVAL;
	}
	if (!add_ok(r->guest_phys_addr, r->memory_size, &end) ||
	    !add_ok(r->userspace_addr, r->memory_size, &end) ||
	    !add_ok(r->mmap_offset, r->memory_size, &end) || end > (uint64_t)INT64_MAX) {
		log_err(lg, "memory region gpa 0x%llx size 0x%llx wraps the address space",
			(unsigned long long)r->guest_phys_addr, (unsigned long long)r->memory_size);
		return -EINVAL;
	}
	return 0;
}

int mem_fd_check(int fd, const char *what, const struct logger *lg)
{
	/* Only memory-backed files: memfd, tmpfs (/dev/shm) and hugetlbfs. A page of a file on
	 * any other file system is read through it: on FUSE or NFS the front-end (or a server
	 * it runs) can make every access, even fstat, wait forever, and the thread with it.
	 * F_GET_SEALS answers without asking the file system: it works on shmem and hugetlbfs
	 * files (sealed or not) and fails with EINVAL on every other kind of fd. */
	if (fcntl(fd, F_GET_SEALS) < 0) {
		log_err(lg,
			"%s: the fd is not a memfd, tmpfs or hugetlbfs file (%s); refused: a file "
			"on another file system can block every access to it",
			what, strerror(errno));
		return -EINVAL;
	}
	return 0;
}

static int region_map(struct mem *mm, struct mem_region *out, const struct vhu_mem_region *r,
		      int fd, const struct logger *lg)
{
	struct stat st;
	uint64_t size = r->mmap_offset + r->memory_size, align;
	void *p;
	int ret = mem_fd_check(fd, "memory region", lg);

	if (ret)
		return ret;
	if (fstat(fd, &st) < 0)
		return -errno;
	/* Pages past the end of a file raise SIGBUS when touched: a region must lie inside its
	 * file (memfd, hugetlbfs or shm file). */
	if (S_ISREG(st.st_mode) && (uint64_t)st.st_size < size) {
		log_err(lg,
			"memory region (gpa 0x%llx, size 0x%llx, offset 0x%llx) runs past the "
			"end of its file (0x%llx bytes)",
			(unsigned long long)r->guest_phys_addr, (unsigned long long)r->memory_size,
			(unsigned long long)r->mmap_offset, (unsigned long long)st.st_size);
		return -EINVAL;
	}
	align = mem_page_size(fd);
	size = (size + align - 1) & ~(align - 1);
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
	if (p == MAP_FAILED) {
		int err = -errno;
		log_err(lg, "mmap of memory region (gpa 0x%llx, size 0x%llx) failed: %s",
			(unsigned long long)r->guest_phys_addr, (unsigned long long)r->memory_size,
			strerror(-err));
		return err;
	}
	/* The front-end can still shrink the file (ftruncate): the SIGBUS guard keeps that
	 * from killing the process, and poisons this device alone. */
	out->guard = guard_add(p, size, align, r->guest_phys_addr, &mm->poison);
	if (out->guard == -ENOSPC) {
		log_err(lg, "memory region (gpa 0x%llx): every SIGBUS guard slot is in use",
			(unsigned long long)r->guest_phys_addr);
		munmap(p, size);
		return -ENOSPC;
	}
	out->gpa = r->guest_phys_addr;
	out->size = r->memory_size;
	out->uva = r->userspace_addr;
	out->mmap_offset = r->mmap_offset;
	out->map_base = p;
	out->map_size = size;
	out->hva = (uint8_t *)p + r->mmap_offset;
	return 0;
}

int mem_set_table(struct mem *mm, const struct vhu_mem_region *r, unsigned n, int *fds,
		  const struct logger *lg)
{
	struct mem_region next[VHU_MEM_BASELINE_NREGIONS];
	unsigned i, j;
	int ret;

	if (n > VHU_MEM_BASELINE_NREGIONS)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		ret = region_check(&r[i], lg);
		if (ret)
			return ret;
		for (j = 0; j < i; j++) {
			if (ranges_overlap(r[i].guest_phys_addr, r[i].memory_size,
					   r[j].guest_phys_addr, r[j].memory_size)) {
				log_err(lg, "memory regions %u and %u overlap", j, i);
				return -EINVAL;
			}
		}
	}
	memset(next, 0, sizeof(next));
	for (i = 0; i < n; i++) {
		ret = region_map(mm, &next[i], &r[i], fds[i], lg);
		if (ret)
			goto err_unmap;
		next[i].refs = 1;
	}
	mem_clear(mm);
	memcpy(mm->regions, next, sizeof(next[0]) * n);
	mm->n = n;
	mm->gen++;
	/* The mappings keep the memory; the fds are no longer needed. */
	for (i = 0; i < n; i++)
		close_fd(&fds[i]);
	return 0;

err_unmap:
	while (i--)
		region_unmap(&next[i]);
	return ret;
}

int mem_add(struct mem *mm, const struct vhu_mem_region *r, int *fd, const struct logger *lg)
{
	int ret = region_check(r, lg);

	if (ret)
		return ret;
	if (mm->n >= MEM_MAX_SLOTS) {
		log_err(lg, "ADD_MEM_REG: all %u slots in use", MEM_MAX_SLOTS);
		return -ENOSPC;
	}
	for (unsigned i = 0; i < mm->n; i++) {
		struct mem_region *x = &mm->regions[i];
		if (x->gpa == r->guest_phys_addr && x->size == r->memory_size &&
		    x->uva == r->userspace_addr) {
			x->refs++;
			close_fd(fd);
			return 0;
		}
		if (ranges_overlap(r->guest_phys_addr, r->memory_size, mm->regions[i].gpa,
				   mm->regions[i].size)) {
			log_err(lg, "ADD_MEM_REG: region at gpa 0x%llx overlaps region %u",
				(unsigned long long)r->guest_phys_addr, i);
			return -EINVAL;
		}
	}
	ret = region_map(mm, &mm->regions[mm->n], r, *fd, lg);
	if (ret)
		return ret;
	mm->regions[mm->n].refs = 1;
	mm->n++;
	mm->gen++;
	close_fd(fd);
	return 0;
}

int mem_remove(struct mem *mm, const struct vhu_mem_region *r, const struct logger *lg)
{
	for (unsigned i = 0; i < mm->n; i++) {
		struct mem_region *x = &mm->regions[i];
		if (x->gpa == r->guest_phys_addr && x->uva == r->userspace_addr &&
		    x->size == r->memory_size) {
			if (--x->refs > 0)
				return 0;
			region_unmap(x);
			mm->regions[i] = mm->regions[--mm->n];
			mm->gen++;
			return 0;
		}
	}
	log_err(lg, "REM_MEM_REG: no region at gpa 0x%llx size 0x%llx",
		(unsigned long long)r->guest_phys_addr, (unsigned long long)r->memory_size);
	return -ENOENT;
}

void *mem_uva_to_hva(const struct mem *mm, uint64_t uva, uint64_t len)
{
	for (unsigned i = 0; i < mm->n; i++) {
		const struct mem_region *r = &mm->regions[i];
		uint64_t off = uva - r->uva;
		if (uva >= r->uva && off < r->size && len <= r->size - off)
			return r->hva + off;
	}
	return NULL;
}

uint64_t mem_uva_to_gpa(const struct mem *mm, uint64_t uva)
{
	for (unsigned i = 0; i < mm->n; i++) {
		const struct mem_region *r = &mm->regions[i];
		if (uva >= r->uva && uva - r->uva < r->size)
			return r->gpa + (uva - r->uva);
	}
	return UINT64_MAX;
}

void *mem_gpa_to_hva_whole(const struct mem *mm, uint64_t gpa, uint64_t len)
{
	uint64_t l = len;
	void *p = mem_gpa_to_hva(mm, gpa, &l);

	return (p && l == len) ? p : NULL;
}

int mem_map_iov(const struct mem *mm, uint64_t gpa, uint32_t len, struct iovec *iov, unsigned max)
{
	unsigned n = 0;
	uint64_t left = len;

	while (left) {
		uint64_t l = left;
		void *p = mem_gpa_to_hva(mm, gpa, &l);
		if (!p)
			return -EFAULT;
		if (n == max)
			return -ENOBUFS;
		iov[n].iov_base = p;
		iov[n].iov_len = l;
		n++;
		gpa += l;
		left -= l;
	}
	return (int)n;
}

int mem_map_iov_cached(const struct mem *mm, struct mem_cache *c, uint64_t gpa, uint32_t len,
		       struct iovec *iov, unsigned max)
{
	void *p = mem_cache_hit(mm, c, gpa, len);

	if (likely(p && max && len)) {
		iov[0].iov_base = p;
		iov[0].iov_len = len;
		return 1;
	}
	for (unsigned i = 0; i < mm->n; i++) {
		const struct mem_region *r = &mm->regions[i];
		if (gpa >= r->gpa && gpa - r->gpa < r->size) {
			*c = (struct mem_cache){ r->gpa, r->size, r->hva, mm->gen };
			break;
		}
	}
	return mem_map_iov(mm, gpa, len, iov, max);
}
