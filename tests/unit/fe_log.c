/* SPDX-License-Identifier: MIT */
/* Front-end dirty log (src/fe_log.c): sizes, the sealed memfd, the bit layout the spec's
 * pseudo-code gives a back-end, marking page ranges, read-and-clear, and no bit lost when a
 * back-end sets bits while the front-end reads. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../src/fe_log.h"
#include "../../src/fe_mem.h"
#include "../t.h"

T_DEFINE;

static int sizes(void)
{
	ASSERT_EQ(fe_log_words(0), 0);
	ASSERT_EQ(fe_log_words(1), 1);
	ASSERT_EQ(fe_log_words(64 * 4096), 1);
	ASSERT_EQ(fe_log_words(64 * 4096 + 1), 2);
	/* 64 MiB at FE_MEM_GPA_BASE: 16640 pages from address 0. */
	ASSERT_EQ(fe_log_words(FE_MEM_GPA_BASE + (64u << 20)), 260);
	struct fe_log l;
	ASSERT_EQ(fe_log_init(&l, 0), -EINVAL);
	ASSERT_EQ(l.fd, -1);
	return 0;
}

static int sealed_memfd(void)
{
	struct fe_log l;
	struct stat st;

	ASSERT_OK(fe_log_init(&l, 100 * 4096 + 1));
	ASSERT_EQ(l.words, 2);
	ASSERT_OK(fstat(l.fd, &st));
	ASSERT_EQ(st.st_size, 16);
	int seals = fcntl(l.fd, F_GET_SEALS);
	ASSERT_EQ(seals & (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL),
		  F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
	ASSERT_TRUE(ftruncate(l.fd, 8) < 0);
	ASSERT_EQ(l.map[0] | l.map[1], 0);
	fe_log_free(&l);
	ASSERT_EQ(l.fd, -1);
	ASSERT_TRUE(l.map == NULL);
	fe_log_free(&l); /* twice is fine */
	return 0;
}

/* A back-end maps the fd on its own and marks as vhost-user.rst "Migration" says:
 * log[page / 8] |= 1 << page % 8, bytes. The front-end sees page p as bit p % 64 of word
 * p / 64 (little-endian words), and a read clears what it returns. */
static int spec_layout(void)
{
	struct fe_log l;
	uint64_t w[4] = { 0 };
	const uint64_t pages[] = { 0, 7, 8, 63, 64, 65, 200, 255 };

	ASSERT_OK(fe_log_init(&l, 256 * 4096));
	ASSERT_EQ(l.words, 4);
	uint8_t *be = mmap(NULL, 32, PROT_READ | PROT_WRITE, MAP_SHARED, l.fd, 0);
	ASSERT_TRUE(be != MAP_FAILED);
	for (unsigned i = 0; i < sizeof(pages) / sizeof(pages[0]); i++)
		__atomic_fetch_or(&be[pages[i] / 8], (uint8_t)(1u << pages[i] % 8),
				  __ATOMIC_RELAXED);
	ASSERT_EQ(fe_log_read(&l, w, 4), 4);
	ASSERT_EQ(w[0], 1ull | 1ull << 7 | 1ull << 8 | 1ull << 63);
	ASSERT_EQ(w[1], 1ull | 1ull << 1);
	ASSERT_EQ(w[2], 0);
	ASSERT_EQ(w[3], 1ull << (200 - 192) | 1ull << 63);
	for (unsigned i = 0; i < 32; i++)
		ASSERT_EQ(be[i], 0);
	ASSERT_EQ(fe_log_read(&l, w, 4), 4);
	ASSERT_EQ(w[0] | w[1] | w[2] | w[3], 0);
	/* n beyond the log: only the log's words. */
	uint64_t big[8];
	ASSERT_EQ(fe_log_read(&l, big, 8), 4);
	munmap(be, 32);
	fe_log_free(&l);
	return 0;
}

static int mark_ranges(void)
{
	struct fe_log l;
	uint64_t w[2];

	ASSERT_OK(fe_log_init(&l, 128 * 4096));
	fe_log_mark(&l, 4095, 2);	       /* straddles pages 0 and 1 */
	fe_log_mark(&l, 10 * 4096, 4096);      /* exactly page 10 */
	fe_log_mark(&l, 20 * 4096, 0);	       /* nothing */
	fe_log_mark(&l, 127 * 4096, 3 * 4096); /* pages 127.. : beyond the log ignored */
	fe_log_mark(&l, UINT64_MAX - 10, 100); /* wraps: nothing */
	ASSERT_EQ(fe_log_read(&l, w, 2), 2);
	ASSERT_EQ(w[0], 1ull | 1ull << 1 | 1ull << 10);
	ASSERT_EQ(w[1], 1ull << 63);
	fe_log_free(&l);
	return 0;
}

/* Rounds: the back-end sets each bit of one word once while the front-end reads and clears
 * that word as fast as it can; the union of what it read in a round must be every bit (a read
 * then a separate clear would lose the bits set in between). */
#define RACE_ROUNDS 3000
static struct fe_log race_log;
static unsigned race_go, race_done; /* rounds started by the reader, finished by the marker */

static void *marker(void *arg)
{
	(void)arg;
	for (unsigned r = 1; r <= RACE_ROUNDS; r++) {
		while (__atomic_load_n(&race_go, __ATOMIC_ACQUIRE) < r)
			;
		for (uint64_t p = 0; p < 64; p++)
			fe_log_mark(&race_log, p * 4096, 1);
		__atomic_store_n(&race_done, r, __ATOMIC_RELEASE);
	}
	return NULL;
}

static int no_bit_lost(void)
{
	pthread_t t;
	unsigned lost = 0;
	uint64_t w;

	ASSERT_OK(fe_log_init(&race_log, 64 * 4096));
	ASSERT_OK(pthread_create(&t, NULL, marker, NULL));
	for (unsigned r = 1; r <= RACE_ROUNDS; r++) {
		uint64_t seen = 0;
		__atomic_store_n(&race_go, r, __ATOMIC_RELEASE);
		while (__atomic_load_n(&race_done, __ATOMIC_ACQUIRE) < r) {
			fe_log_read(&race_log, &w, 1);
			seen |= w;
		}
		fe_log_read(&race_log, &w, 1);
		lost += (seen | w) != UINT64_MAX;
	}
	pthread_join(t, NULL);
	ASSERT_EQ(lost, 0);
	fe_log_free(&race_log);
	return 0;
}

int main(void)
{
	RUN(sizes);
	RUN(sealed_memfd);
	RUN(spec_layout);
	RUN(mark_ranges);
	RUN(no_bit_lost);
	T_MAIN_END();
}
