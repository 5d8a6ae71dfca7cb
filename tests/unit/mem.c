/* SPDX-License-Identifier: MIT */
/* Memory table: mapping with offsets, translation bounds, buffers spanning two regions,
 * overlap and size checks, ADD/REM with references. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mem.h"
#include "t.h"

T_DEFINE;

static struct mem mm;
static int memfd;
static uint8_t *local;
#define SZ (1u << 20)

static int setup_two(void)
{
	/* Two regions from one file, adjacent in guest-physical space, the second with an
	 * mmap offset: gpa [0x10000, +512K) -> file [0, 512K), [0x90000, +512K) -> [512K, 1M). */
	struct vhu_mem_region r[2] = {
		{ 0x10000, SZ / 2, 0x7000000, 0 },
		{ 0x10000 + SZ / 2, SZ / 2, 0x9000000, SZ / 2 },
	};
	int fds[2] = { dup(memfd), dup(memfd) };
	ASSERT_OK(mem_set_table(&mm, r, 2, fds, NULL));
	ASSERT_EQ(fds[0], -1);
	ASSERT_EQ(fds[1], -1);
	ASSERT_EQ(mm.n, 2);
	return 0;
}

static int translate(void)
{
	uint64_t len = 100;
	uint8_t *p = mem_gpa_to_hva(&mm, 0x10000 + 5, &len);
	ASSERT_TRUE(p != NULL);
	p[0] = 0xab;
	ASSERT_EQ(local[5], 0xab);
	ASSERT_EQ(len, 100);
	/* The second region maps file offset SZ/2. */
	len = 8;
	p = mem_gpa_to_hva(&mm, 0x10000 + SZ / 2 + 7, &len);
	ASSERT_TRUE(p != NULL);
	p[0] = 0xcd;
	ASSERT_EQ(local[SZ / 2 + 7], 0xcd);
	/* Shortened at the region end. */
	len = 4096;
	ASSERT_TRUE(mem_gpa_to_hva(&mm, 0x10000 + SZ / 2 - 16, &len) != NULL);
	ASSERT_EQ(len, 16);
	len = 1;
	ASSERT_TRUE(mem_gpa_to_hva(&mm, 0xfff, &len) == NULL);
	ASSERT_TRUE(mem_gpa_to_hva(&mm, 0x10000 + SZ, &len) == NULL);
	ASSERT_TRUE(mem_gpa_to_hva(&mm, ~0ull, &len) == NULL);
	return 0;
}

static int span_two_regions(void)
{
	struct iovec iov[4];
	int n = mem_map_iov(&mm, 0x10000 + SZ / 2 - 100, 300, iov, 4);
	ASSERT_EQ(n, 2);
	ASSERT_EQ(iov[0].iov_len, 100);
	ASSERT_EQ(iov[1].iov_len, 200);
	/* Same bytes as the test's own mapping (the library maps the file separately). */
	local[SZ / 2 - 100] = 0x11;
	local[SZ / 2] = 0x22;
	ASSERT_EQ(*(uint8_t *)iov[0].iov_base, 0x11);
	ASSERT_EQ(*(uint8_t *)iov[1].iov_base, 0x22);
	ASSERT_EQ(mem_map_iov(&mm, 0x10000 + SZ / 2 - 100, 300, iov, 1), -ENOBUFS);
	ASSERT_EQ(mem_map_iov(&mm, 0x10000 + SZ - 100, 300, iov, 4), -EFAULT);
	/* One contiguous view refuses the span. */
	ASSERT_TRUE(mem_gpa_to_hva_whole(&mm, 0x10000 + SZ / 2 - 100, 300) == NULL);
	ASSERT_TRUE(mem_gpa_to_hva_whole(&mm, 0x10000, 300) != NULL);
	return 0;
}

static int uva(void)
{
	uint8_t *p = mem_uva_to_hva(&mm, 0x7000000, 64),
		*q = mem_uva_to_hva(&mm, 0x9000000 + 8, 64);
	ASSERT_TRUE(p && q);
	local[0] = 0x33;
	local[SZ / 2 + 8] = 0x44;
	ASSERT_EQ(*p, 0x33);
	ASSERT_EQ(*q, 0x44);
	ASSERT_TRUE(mem_uva_to_hva(&mm, 0x7000000 + SZ / 2 - 8, 64) == NULL);
	ASSERT_TRUE(mem_uva_to_hva(&mm, 0x6fffff0, 64) == NULL);
	return 0;
}

static int bad_tables(void)
{
	struct vhu_mem_region r[2] = {
		{ 0x10000, SZ, 0x7000000, 0 },
		{ 0x10000 + SZ - 4096, 8192, 0x9000000, 0 },
	};
	int fds[2] = { dup(memfd), dup(memfd) };
	ASSERT_EQ(mem_set_table(&mm, r, 2, fds, NULL), -EINVAL); /* overlap */
	r[0].memory_size = 0;
	ASSERT_EQ(mem_set_table(&mm, r, 1, fds, NULL), -EINVAL); /* zero size */
	r[0] = (struct vhu_mem_region){ ~0ull - 10, 4096, 0, 0 };
	ASSERT_EQ(mem_set_table(&mm, r, 1, fds, NULL), -EINVAL); /* wraps */
	r[0] = (struct vhu_mem_region){ 0, 4096, 0, 0 };
	int bad[1] = { 12345 };
	ASSERT_TRUE(mem_set_table(&mm, r, 1, bad, NULL) < 0); /* not an fd */
	/* The old table is untouched by every failure, and the fds were not taken. */
	ASSERT_EQ(mm.n, 2);
	ASSERT_TRUE(fds[0] >= 0 && fds[1] >= 0);
	close(fds[0]);
	close(fds[1]);
	return 0;
}

static int add_remove(void)
{
	struct vhu_mem_region r = { 0x4000000, 4096, 0xa000000, 0 };
	int fd = dup(memfd);
	ASSERT_OK(mem_add(&mm, &r, &fd, NULL));
	ASSERT_EQ(fd, -1);
	ASSERT_EQ(mm.n, 3);
	/* The same region again (QEMU multiqueue net): a reference, no new mapping. */
	fd = dup(memfd);
	ASSERT_OK(mem_add(&mm, &r, &fd, NULL));
	ASSERT_EQ(fd, -1);
	ASSERT_EQ(mm.n, 3);
	/* An overlapping, different one is refused. */
	struct vhu_mem_region o = { 0x4000000 + 2048, 4096, 0xb000000, 0 };
	fd = dup(memfd);
	ASSERT_EQ(mem_add(&mm, &o, &fd, NULL), -EINVAL);
	close(fd);
	ASSERT_OK(mem_remove(&mm, &r, NULL));
	ASSERT_EQ(mm.n, 3);
	ASSERT_OK(mem_remove(&mm, &r, NULL));
	ASSERT_EQ(mm.n, 2);
	ASSERT_EQ(mem_remove(&mm, &r, NULL), -ENOENT);
	return 0;
}

/* Only memory-backed files are mapped: a regular file on a disk file system (here, the build
 * directory's) or a pipe is refused before any fstat or mmap; /dev/shm is tmpfs and taken. */
static int fd_kinds(void)
{
	struct vhu_mem_region r = { 0x10000, 4096, 0x7000000, 0 };
	char name[] = "unit-mem-XXXXXX";
	int fd = mkstemp(name), p[2];

	ASSERT_TRUE(fd >= 0);
	unlink(name);
	ASSERT_OK(ftruncate(fd, 4096));
	struct mem m2;
	mem_init(&m2);
	if (fcntl(fd, F_GET_SEALS) >= 0) {
		close(fd);
		return 0; /* the build directory is on tmpfs: nothing to refuse here */
	}
	ASSERT_EQ(mem_set_table(&m2, &r, 1, &fd, NULL), -EINVAL);
	ASSERT_TRUE(fd >= 0);
	close(fd);
	ASSERT_OK(pipe(p));
	ASSERT_EQ(mem_add(&m2, &r, &p[0], NULL), -EINVAL);
	close(p[0]);
	close(p[1]);
	fd = open("/dev/shm", O_TMPFILE | O_RDWR, 0600);
	if (fd >= 0) {
		ASSERT_OK(ftruncate(fd, 4096));
		ASSERT_OK(mem_add(&m2, &r, &fd, NULL));
		mem_clear(&m2);
	}
	return 0;
}

int main(void)
{
	memfd = memfd_create("unit-mem", MFD_CLOEXEC);
	if (memfd < 0 || ftruncate(memfd, SZ))
		return T_FAIL;
	local = mmap(NULL, SZ, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	mem_init(&mm);
	RUN(setup_two);
	RUN(translate);
	RUN(span_two_regions);
	RUN(uva);
	RUN(bad_tables);
	RUN(add_remove);
	RUN(fd_kinds);
	mem_clear(&mm);
	munmap(local, SZ);
	close(memfd);
	T_MAIN_END();
}
