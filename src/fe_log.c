/* SPDX-License-Identifier: MIT */
/* Front-end dirty page log: sealed memfd bitmap, mark, read-and-clear. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fe_log.h"
#include "util.h"

size_t fe_log_words(uint64_t gpa_end)
{
	uint64_t pages = (gpa_end + FE_LOG_PAGE - 1) / FE_LOG_PAGE;

	return (size_t)((pages + 63) / 64);
}

int fe_log_init(struct fe_log *l, uint64_t gpa_end)
{
	size_t words = fe_log_words(gpa_end);
	int ret;

	*l = (struct fe_log){ .fd = -1 };
	if (words == 0)
		return -EINVAL;
	l->fd = memfd_create("vhu-fe-log", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (l->fd < 0)
		return -errno;
	if (ftruncate(l->fd, (off_t)(words * 8)) < 0) {
		ret = -errno;
		goto err_close;
	}
	/* Sealed like the memory (and QEMU's log): the back-end maps it for the size it is
	 * told, and nobody can shrink it under that mapping. */
	if (fcntl(l->fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		ret = -errno;
		goto err_close;
	}
	l->map = mmap(NULL, words * 8, PROT_READ | PROT_WRITE, MAP_SHARED, l->fd, 0);
	if (l->map == MAP_FAILED) {
		ret = -errno;
		l->map = NULL;
		goto err_close;
	}
	l->words = words;
	return 0;
err_close:
	close_fd(&l->fd);
	return ret;
}

void fe_log_free(struct fe_log *l)
{
	if (l->map)
		munmap(l->map, l->words * 8);
	l->map = NULL;
	l->words = 0;
	close_fd(&l->fd);
}

void fe_log_mark(struct fe_log *l, uint64_t gpa, uint64_t len)
{
	if (!len || gpa + len < gpa)
		return;
	for (uint64_t p = gpa / FE_LOG_PAGE; p <= (gpa + len - 1) / FE_LOG_PAGE; p++) {
		if (p / 64 >= l->words)
			return;
		__atomic_fetch_or(&l->map[p / 64], 1ull << (p % 64), __ATOMIC_RELAXED);
	}
}

size_t fe_log_read(struct fe_log *l, uint64_t *dst, size_t n)
{
	if (n > l->words)
		n = l->words;
	for (size_t i = 0; i < n; i++)
		dst[i] = __atomic_exchange_n(&l->map[i], 0, __ATOMIC_ACQ_REL);
	return n;
}
