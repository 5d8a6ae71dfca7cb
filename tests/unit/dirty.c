/* SPDX-License-Identifier: MIT */
/* The dirty page log (src/dirty.c): which bits a write sets, and which logs are refused. */
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dirty.h"
#include "mem.h"
#include "t.h"

T_DEFINE;

static const struct logger quiet = { 0 };

static unsigned count_bits(const uint8_t *b, size_t n)
{
	unsigned c = 0;
	for (size_t i = 0; i < n; i++)
		c += (unsigned)__builtin_popcount(b[i]);
	return c;
}

static bool bit(const uint8_t *b, uint64_t page)
{
	return b[page / 8] >> (page % 8) & 1;
}

/* A log over a private buffer: exactly the pages each range touches, nothing past the end. */
static int marks(void)
{
	uint8_t buf[8 + 1] = { 0 };
	struct dirty_log l = { .bits = buf, .size = 8, .guard = -1 };

	ASSERT_TRUE(dirty_mark(&l, 0, 1));
	ASSERT_TRUE(bit(buf, 0));
	ASSERT_EQ(count_bits(buf, sizeof(buf)), 1);
	/* The last byte of page 2 and the first of page 3: two pages. */
	ASSERT_TRUE(dirty_mark(&l, 3 * DIRTY_PAGE - 1, 2));
	ASSERT_TRUE(bit(buf, 2) && bit(buf, 3));
	ASSERT_EQ(count_bits(buf, sizeof(buf)), 3);
	ASSERT_TRUE(dirty_mark(&l, 5 * DIRTY_PAGE, 0)); /* nothing written, nothing marked */
	ASSERT_EQ(count_bits(buf, sizeof(buf)), 3);
	/* A long range: pages 6 .. 41 (whole bytes in the middle). */
	memset(buf, 0, sizeof(buf));
	ASSERT_TRUE(dirty_mark(&l, 6 * DIRTY_PAGE + 100, 35 * DIRTY_PAGE));
	ASSERT_EQ(count_bits(buf, sizeof(buf)), 36);
	ASSERT_TRUE(!bit(buf, 5) && bit(buf, 6) && bit(buf, 41) && !bit(buf, 42));
	/* Past the end (64 pages): the part inside is marked, nothing beyond the log. */
	memset(buf, 0, sizeof(buf));
	ASSERT_TRUE(!dirty_mark(&l, 62 * DIRTY_PAGE, 4 * DIRTY_PAGE));
	ASSERT_EQ(count_bits(buf, sizeof(buf)), 2);
	ASSERT_EQ(buf[8], 0);
	ASSERT_TRUE(!dirty_mark(&l, 64 * DIRTY_PAGE, 1));
	ASSERT_TRUE(!dirty_mark(&l, UINT64_MAX - 10, 100)); /* wraps: clamped, not marked */
	ASSERT_EQ(buf[8], 0);
	ASSERT_EQ(count_bits(buf, sizeof(buf)), 2);
	return 0;
}

/* Host addresses go back to guest addresses through the regions they lie in. */
static int marks_hva(void)
{
	static uint8_t ra[3 * 4096], rb[2 * 4096];
	uint8_t buf[16] = { 0 };
	struct dirty_log l = { .bits = buf, .size = sizeof(buf), .guard = -1 };
	struct mem mm;

	mem_init(&mm);
	mm.n = 2;
	mm.regions[0] = (struct mem_region){ .gpa = 0x10000, .size = sizeof(ra), .hva = ra };
	mm.regions[1] = (struct mem_region){ .gpa = 0x40000, .size = sizeof(rb), .hva = rb };
	ASSERT_TRUE(dirty_mark_hva(&l, &mm, ra + 4096 + 5, 10));
	ASSERT_EQ(count_bits(buf, sizeof(buf)), 1);
	ASSERT_TRUE(bit(buf, 0x11));
	ASSERT_TRUE(dirty_mark_hva(&l, &mm, rb + 4095, 2));
	ASSERT_TRUE(bit(buf, 0x40) && bit(buf, 0x41));
	ASSERT_EQ(count_bits(buf, sizeof(buf)), 3);
	/* Outside every region: nothing marked, and said. */
	static uint8_t other[16];
	ASSERT_TRUE(!dirty_mark_hva(&l, &mm, other, 4));
	ASSERT_EQ(count_bits(buf, sizeof(buf)), 3);
	return 0;
}

static int memfd_of(size_t size)
{
	int fd = memfd_create("log", MFD_CLOEXEC);
	if (fd >= 0 && ftruncate(fd, (off_t)size) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Mapping: only what fstat proves, only memory files, a page-unaligned offset works. */
static int maps(void)
{
	struct guard_poison poison = { 0 };
	struct dirty_log l;
	int fd = memfd_of(8192), p[2];

	ASSERT_TRUE(fd >= 0);
	ASSERT_EQ(dirty_map(&l, fd, 0, 0, &poison, &quiet), -EINVAL);
	ASSERT_EQ(dirty_map(&l, fd, 8193, 0, &poison, &quiet), -EINVAL);
	ASSERT_EQ(dirty_map(&l, fd, 4096, 4097, &poison, &quiet), -EINVAL);
	ASSERT_EQ(dirty_map(&l, fd, 16, UINT64_MAX - 8, &poison, &quiet), -EINVAL);
	ASSERT_EQ(dirty_map(&l, fd, UINT64_MAX, 0, &poison, &quiet), -EINVAL);
	ASSERT_OK(dirty_map(&l, fd, 100, 4196, &poison, &quiet));
	ASSERT_TRUE(dirty_mark(&l, 9 * DIRTY_PAGE, 1));
	uint8_t b;
	ASSERT_EQ(pread(fd, &b, 1, 4196 + 1), 1);
	ASSERT_EQ(b, 2); /* page 9: byte 1, bit 1 of the bitmap at offset 4196 */
	dirty_unmap(&l);
	ASSERT_TRUE(l.map == NULL);
	dirty_unmap(&l); /* twice is fine */
	ASSERT_OK(pipe(p));
	ASSERT_EQ(dirty_map(&l, p[0], 8, 0, &poison, &quiet), -EINVAL);
	close(p[0]);
	close(p[1]);
	close(fd);
	return 0;
}

int main(void)
{
	RUN(marks);
	RUN(marks_hva);
	RUN(maps);
	T_MAIN_END();
}
