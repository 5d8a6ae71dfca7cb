/* SPDX-License-Identifier: MIT */
/* Front-end shared memory: memfd or hugetlbfs file, bump allocator. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "fe_mem.h"
#include "util.h"

int fe_mem_init(struct fe_mem *m, size_t size, const char *hugepage_dir)
{
	int ret;

	memset(m, 0, sizeof(*m));
	m->fd = -1;
	if (size == 0)
		return -EINVAL;
	if (hugepage_dir) {
		char path[4096];
		snprintf(path, sizeof(path), "%s/vhu-fe-XXXXXX", hugepage_dir);
		m->fd = mkostemp(path, O_CLOEXEC);
		if (m->fd >= 0)
			unlink(path);
		/* hugetlbfs files are sized in whole huge pages. */
		struct statfs sf;
		if (m->fd >= 0 && fstatfs(m->fd, &sf) == 0 && sf.f_bsize > 0)
			size = (size + (size_t)sf.f_bsize - 1) / (size_t)sf.f_bsize *
			       (size_t)sf.f_bsize;
	} else {
		m->fd = memfd_create("vhu-fe-mem", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	}
	if (m->fd < 0)
		return -errno;
	if (ftruncate(m->fd, (off_t)size) < 0) {
		ret = -errno;
		goto err_close;
	}
	/* A memfd is sealed at its size, as QEMU's memory-backend-memfd does (seal=on): no one
	 * holding the fd, we included, can shrink it under a back-end that mapped it (which
	 * would SIGBUS there). A hugetlbfs file cannot be sealed. */
	if (!hugepage_dir &&
	    fcntl(m->fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		ret = -errno;
		goto err_close;
	}
	m->base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, m->fd, 0);
	if (m->base == MAP_FAILED) {
		ret = -errno;
		goto err_close;
	}
	m->size = size;
	return 0;
err_close:
	close_fd(&m->fd);
	m->base = NULL;
	return ret;
}

void fe_mem_free(struct fe_mem *m)
{
	if (m->base)
		munmap(m->base, m->size);
	m->base = NULL;
	close_fd(&m->fd);
}

void *fe_mem_alloc(struct fe_mem *m, size_t size, size_t align)
{
	size_t start = (m->brk + align - 1) & ~(align - 1);

	if (!m->base || start > m->size || size > m->size - start)
		return NULL;
	m->brk = start + size;
	memset(m->base + start, 0, size);
	return m->base + start;
}

uint64_t fe_mem_gpa(const struct fe_mem *m, const void *p, size_t len)
{
	uintptr_t a = (uintptr_t)p, b = (uintptr_t)m->base;

	if (!m->base || a < b || a - b > m->size || len > m->size - (a - b))
		return 0;
	return FE_MEM_GPA_BASE + (uint64_t)(a - b);
}
