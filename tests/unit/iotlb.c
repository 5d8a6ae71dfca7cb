/* SPDX-License-Identifier: MIT */
/* The IOTLB (src/iotlb.c): updates and invalidations, what is refused, the bound on entries,
 * lookups with permissions, the ring cache, and translating while another thread updates. */
#include <errno.h>
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#include "iotlb.h"
#include "mem.h"
#include "t.h"

T_DEFINE;

static const struct logger quiet = { 0 };

#define GPA   0x100000ull
#define UVA   0x7f0000000000ull
#define MSIZE (1ull << 20)

static struct mem mm;

static int mem_setup(void)
{
	struct vhu_mem_region r = { GPA, MSIZE, UVA, 0 };
	int fd = memfd_create("iotlb", 0);

	ASSERT_TRUE(fd >= 0);
	ASSERT_OK(ftruncate(fd, MSIZE));
	mem_init(&mm);
	ASSERT_OK(mem_set_table(&mm, &r, 1, &fd, &quiet));
	return 0;
}

static int msg(struct iotlb *t, uint8_t type, uint64_t iova, uint64_t size, uint64_t uaddr,
	       uint8_t perm)
{
	struct vhu_iotlb_msg m = {
		.iova = iova, .size = size, .uaddr = uaddr, .perm = perm, .type = type
	};
	return iotlb_msg(t, &mm, &m);
}

static int upd(struct iotlb *t, uint64_t iova, uint64_t size, uint64_t uaddr, uint8_t perm)
{
	return msg(t, IOTLB_UPDATE, iova, size, uaddr, perm);
}

static int inval(struct iotlb *t, uint64_t iova, uint64_t size)
{
	return msg(t, IOTLB_INVALIDATE, iova, size, 0, 0);
}

/* Lookups: the offset inside the entry, the length cut at its end, permissions. */
static int lookups(void)
{
	struct iotlb t;
	uint64_t len, ua;

	iotlb_init(&t, &quiet, NULL, NULL);
	ASSERT_OK(upd(&t, 0x10000, 0x1000, UVA + 0x2000, IOTLB_PERM_RO));
	ASSERT_OK(upd(&t, 0x20000, 0x2000, UVA + 0x8000, IOTLB_PERM_RW));
	len = 0x100;
	ASSERT_OK(iotlb_lookup(&t, 0x10010, &len, IOTLB_PERM_RO, &ua));
	ASSERT_EQ(ua, UVA + 0x2010);
	ASSERT_EQ(len, 0x100);
	len = 0x5000;
	ASSERT_OK(iotlb_lookup(&t, 0x10ff0, &len, IOTLB_PERM_RO, &ua));
	ASSERT_EQ(len, 0x10);
	/* The device never writes through a read-only mapping. */
	len = 1;
	ASSERT_EQ(iotlb_lookup(&t, 0x10000, &len, IOTLB_PERM_WO, &ua), -EACCES);
	ASSERT_OK(iotlb_lookup(&t, 0x21fff, &len, IOTLB_PERM_RW, &ua));
	ASSERT_EQ(ua, UVA + 0x9fff);
	ASSERT_EQ(iotlb_lookup(&t, 0x11000, &len, IOTLB_PERM_RO, &ua), -ENOENT);
	ASSERT_EQ(iotlb_lookup(&t, 0xffff, &len, IOTLB_PERM_RO, &ua), -ENOENT);
	ASSERT_EQ(iotlb_lookup(&t, 0x22000, &len, IOTLB_PERM_RO, &ua), -ENOENT);
	/* A new mapping inside an old one replaces that part of it; the rest stays. */
	ASSERT_OK(upd(&t, 0x20800, 0x100, UVA + 0x100, IOTLB_PERM_WO));
	len = 0x1000;
	ASSERT_OK(iotlb_lookup(&t, 0x20000, &len, IOTLB_PERM_RW, &ua));
	ASSERT_EQ(ua, UVA + 0x8000);
	ASSERT_EQ(len, 0x800);
	len = 0x1000;
	ASSERT_OK(iotlb_lookup(&t, 0x20810, &len, IOTLB_PERM_WO, &ua));
	ASSERT_EQ(ua, UVA + 0x110);
	ASSERT_EQ(len, 0xf0);
	ASSERT_EQ(iotlb_lookup(&t, 0x20810, &len, IOTLB_PERM_RO, &ua), -EACCES);
	len = 0x10000;
	ASSERT_OK(iotlb_lookup(&t, 0x20900, &len, IOTLB_PERM_RW, &ua));
	ASSERT_EQ(ua, UVA + 0x8900);
	ASSERT_EQ(len, 0x1700);
	ASSERT_EQ(t.n, 4);
	/* One over several: they go. */
	ASSERT_OK(upd(&t, 0x20000, 0x2000, UVA, IOTLB_PERM_RO));
	ASSERT_EQ(t.n, 2);
	iotlb_destroy(&t);
	return 0;
}

/* Hostile messages: refused, the table unchanged. */
static int refused(void)
{
	struct iotlb t;
	uint64_t len = 1, ua;

	iotlb_init(&t, &quiet, NULL, NULL);
	ASSERT_OK(upd(&t, 0x10000, 0x1000, UVA, IOTLB_PERM_RW));
	ASSERT_EQ(upd(&t, 0x40000, 0, UVA, IOTLB_PERM_RW), -EINVAL);		 /* zero size */
	ASSERT_EQ(upd(&t, UINT64_MAX - 10, 0x100, UVA, IOTLB_PERM_RW), -EINVAL); /* wraps */
	ASSERT_EQ(upd(&t, 0x40000, 0x100, UINT64_MAX - 10, IOTLB_PERM_RW), -EINVAL);
	ASSERT_EQ(upd(&t, 0x40000, 0x100, UVA, 0), -EINVAL); /* no permission */
	ASSERT_EQ(upd(&t, 0x40000, 0x100, UVA, 4), -EINVAL); /* unknown permission */
	ASSERT_EQ(upd(&t, 0x40000, 0x100, UVA - 0x1000, IOTLB_PERM_RW), -EINVAL); /* before */
	ASSERT_EQ(upd(&t, 0x40000, 0x2000, UVA + MSIZE - 0x1000, IOTLB_PERM_RW), -EINVAL);
	ASSERT_EQ(upd(&t, 0x40000, 0x100, 0x1000, IOTLB_PERM_RW), -EINVAL); /* elsewhere */
	ASSERT_EQ(msg(&t, IOTLB_MISS, 0x40000, 0x100, UVA, 1), -EINVAL);
	ASSERT_EQ(msg(&t, IOTLB_ACCESS_FAIL, 0x40000, 0x100, UVA, 1), -EINVAL);
	ASSERT_EQ(msg(&t, 0, 0x40000, 0x100, UVA, 1), -EINVAL);
	ASSERT_EQ(msg(&t, 200, 0x40000, 0x100, UVA, 1), -EINVAL);
	ASSERT_EQ(t.n, 1);
	ASSERT_EQ(t.refused, 12);
	ASSERT_OK(iotlb_lookup(&t, 0x10000, &len, IOTLB_PERM_RW, &ua));
	/* The last byte of the address space is a valid end. */
	ASSERT_OK(upd(&t, UINT64_MAX - 0xfff, 0x1000, UVA, IOTLB_PERM_RO));
	len = 100;
	ASSERT_OK(iotlb_lookup(&t, UINT64_MAX, &len, IOTLB_PERM_RO, &ua));
	ASSERT_EQ(len, 1);
	ASSERT_EQ(ua, UVA + 0xfff);
	iotlb_destroy(&t);
	return 0;
}

static int invalidations(void)
{
	struct iotlb t;
	uint64_t len = 1, ua, g;

	iotlb_init(&t, &quiet, NULL, NULL);
	for (unsigned i = 0; i < 8; i++)
		ASSERT_OK(upd(&t, 0x10000 * (i + 1), 0x1000, UVA + 0x1000 * i, IOTLB_PERM_RW));
	/* Nothing there: fine, nothing changes. */
	ASSERT_OK(inval(&t, 0x1000000, 0x1000));
	ASSERT_EQ(t.n, 8);
	/* A byte inside an entry: the entry keeps both sides. */
	g = iotlb_gen(&t);
	ASSERT_OK(inval(&t, 0x20800, 1));
	ASSERT_TRUE(iotlb_gen(&t) != g);
	ASSERT_EQ(t.n, 9);
	ASSERT_EQ(iotlb_lookup(&t, 0x20800, &len, IOTLB_PERM_RO, &ua), -ENOENT);
	ASSERT_OK(iotlb_lookup(&t, 0x207ff, &len, IOTLB_PERM_RO, &ua));
	ASSERT_EQ(ua, UVA + 0x1000 + 0x7ff);
	ASSERT_OK(iotlb_lookup(&t, 0x20801, &len, IOTLB_PERM_RO, &ua));
	ASSERT_EQ(ua, UVA + 0x1000 + 0x801);
	/* Across several entries: the first keeps its head, the middle ones go, the last is
	 * wholly inside. */
	ASSERT_OK(inval(&t, 0x30fff, 0x20002));
	ASSERT_EQ(t.n, 7);
	len = 0x1000;
	ASSERT_OK(iotlb_lookup(&t, 0x30000, &len, IOTLB_PERM_RO, &ua));
	ASSERT_EQ(len, 0xfff);
	ASSERT_EQ(iotlb_lookup(&t, 0x40000, &len, IOTLB_PERM_RO, &ua), -ENOENT);
	ASSERT_EQ(iotlb_lookup(&t, 0x50000, &len, IOTLB_PERM_RO, &ua), -ENOENT);
	ASSERT_OK(iotlb_lookup(&t, 0x60000, &len, IOTLB_PERM_RO, &ua));
	/* Zero size or wrapping: refused, and everything from iova on forgotten (safe). */
	ASSERT_EQ(inval(&t, 0x70000, 0), -EINVAL);
	ASSERT_EQ(t.n, 5);
	ASSERT_EQ(inval(&t, 0x10000, UINT64_MAX), -EINVAL);
	ASSERT_EQ(t.n, 0);
	iotlb_destroy(&t);
	return 0;
}

/* iotlb_forget() (VHU_DEVICE_F_IOTLB_PER_BUFFER): an entry a range touches goes whole, even
 * where the range covers one byte of it; the others stay; a change bumps the generation (the
 * rings' caches), forgetting nothing does not. */
static int forget(void)
{
	struct iotlb t;
	uint64_t len = 1, ua, g;

	iotlb_init(&t, &quiet, NULL, NULL);
	ASSERT_OK(upd(&t, 0x10000, 0x1000, UVA, IOTLB_PERM_RW));
	ASSERT_OK(upd(&t, 0x20000, 0x1000, UVA + 0x1000, IOTLB_PERM_RW));
	ASSERT_OK(upd(&t, 0x30000, 0x1000, UVA + 0x2000, IOTLB_PERM_RW));
	ASSERT_OK(upd(&t, 0x40000, 0x4000, UVA + 0x4000, IOTLB_PERM_RW));
	g = iotlb_gen(&t);
	struct iotlb_range r[2] = { { 0x20800, 0x20900 }, { 0x41000, 0x41000 } };
	iotlb_forget(&t, r, 2);
	ASSERT_TRUE(iotlb_gen(&t) != g);
	ASSERT_EQ(t.n, 2);
	ASSERT_EQ(t.forgotten, 2);
	ASSERT_EQ(iotlb_lookup(&t, 0x20000, &len, IOTLB_PERM_RO, &ua), -ENOENT);
	ASSERT_EQ(iotlb_lookup(&t, 0x20fff, &len, IOTLB_PERM_RO, &ua), -ENOENT);
	ASSERT_EQ(iotlb_lookup(&t, 0x40000, &len, IOTLB_PERM_RO, &ua), -ENOENT);
	ASSERT_EQ(iotlb_lookup(&t, 0x43fff, &len, IOTLB_PERM_RO, &ua), -ENOENT);
	ASSERT_OK(iotlb_lookup(&t, 0x10000, &len, IOTLB_PERM_RO, &ua));
	ASSERT_OK(iotlb_lookup(&t, 0x30fff, &len, IOTLB_PERM_RO, &ua));
	ASSERT_EQ(ua, UVA + 0x2fff);
	/* Nothing there: no change, the caches stay. */
	g = iotlb_gen(&t);
	struct iotlb_range none = { 0x50000, 0x5ffff };
	iotlb_forget(&t, &none, 1);
	ASSERT_EQ(iotlb_gen(&t), g);
	ASSERT_EQ(t.n, 2);
	/* A range spanning both, up to 2^64 - 1. */
	struct iotlb_range all = { 0x10fff, UINT64_MAX };
	iotlb_forget(&t, &all, 1);
	ASSERT_EQ(t.n, 0);
	iotlb_destroy(&t);
	return 0;
}

/* An unbounded stream of updates: the table stays at IOTLB_MAX_ENTRIES, the newest is there. */
static int bounded(void)
{
	struct iotlb t;
	uint64_t len = 1, ua;
	unsigned total = IOTLB_MAX_ENTRIES + 1000;

	iotlb_init(&t, &quiet, NULL, NULL);
	for (unsigned i = 0; i < total; i++)
		ASSERT_OK(upd(&t, 0x1000ull * i, 0x1000, UVA + (i % 256) * 0x1000, IOTLB_PERM_RO));
	ASSERT_EQ(t.n, IOTLB_MAX_ENTRIES);
	ASSERT_EQ(t.evictions, 1000);
	ASSERT_OK(iotlb_lookup(&t, 0x1000ull * (total - 1), &len, IOTLB_PERM_RO, &ua));
	for (unsigned i = 1; i < t.n; i++)
		ASSERT_TRUE(t.e[i - 1].last < t.e[i].iova);
	iotlb_destroy(&t);
	return 0;
}

static uint64_t missed_iova;
static unsigned missed_perm, nmissed;

static void on_miss(void *opaque, uint64_t iova, unsigned perm)
{
	(void)opaque;
	missed_iova = iova;
	missed_perm = perm;
	nmissed++;
}

/* The ring's translation: pointers, cache flushes at every change, the miss callback. */
static int translate(void)
{
	struct iotlb t;
	struct iotlb_cache c;
	uint64_t len, g = 0;
	void *p;

	iotlb_init(&t, &quiet, on_miss, NULL);
	iotlb_cache_reset(&c);
	len = 0x100;
	ASSERT_EQ(iotlb_translate(&t, &c, &mm, 0x5000, &len, IOTLB_PERM_RO, &p, &g), -EAGAIN);
	ASSERT_EQ(nmissed, 1);
	ASSERT_EQ(missed_iova, 0x5000);
	ASSERT_EQ(missed_perm, IOTLB_PERM_RO);
	ASSERT_EQ(g, iotlb_gen(&t));
	/* Missed again before the update came: not sent twice (a waiting ring retries at every
	 * IOTLB change, which may be another page's). */
	ASSERT_EQ(iotlb_translate(&t, &c, &mm, 0x5800, &len, IOTLB_PERM_RO, &p, &g), -EAGAIN);
	ASSERT_EQ(nmissed, 1);
	/* The entry reaches past the end of the region: the piece stops there. */
	ASSERT_OK(upd(&t, 0x5000, 0x1000, UVA + MSIZE - 0x1000, IOTLB_PERM_WO));
	len = 0x2000;
	ASSERT_OK(iotlb_translate(&t, &c, &mm, 0x5010, &len, IOTLB_PERM_WO, &p, &g));
	ASSERT_TRUE(p == mm.regions[0].hva + MSIZE - 0x1000 + 0x10);
	ASSERT_EQ(len, 0xff0);
	ASSERT_EQ(c.n, 1);
	/* Cached: the same answer, read-only access refused from the cache too. */
	len = 4;
	ASSERT_OK(iotlb_translate(&t, &c, &mm, 0x5ffc, &len, IOTLB_PERM_WO, &p, &g));
	ASSERT_TRUE(p == mm.regions[0].hva + MSIZE - 4);
	ASSERT_EQ(iotlb_translate(&t, &c, &mm, 0x5000, &len, IOTLB_PERM_RO, &p, &g), -EACCES);
	/* Invalidated: the cache is flushed, the next access misses. */
	ASSERT_OK(inval(&t, 0x5000, 0x1000));
	ASSERT_EQ(iotlb_translate(&t, &c, &mm, 0x5000, &len, IOTLB_PERM_WO, &p, &g), -EAGAIN);
	ASSERT_EQ(c.n, 0);
	/* The update answered the first miss: this one is sent. */
	ASSERT_EQ(nmissed, 2);
	ASSERT_EQ(iotlb_translate(&t, &c, &mm, 0x6000, &len, IOTLB_PERM_WO, &p, &g), -EAGAIN);
	ASSERT_EQ(nmissed, 3);
	ASSERT_EQ(missed_iova, 0x6000);
	/* An entry whose memory went away (a new memory table): a fault, not a pointer. */
	ASSERT_OK(upd(&t, 0x5000, 0x1000, UVA, IOTLB_PERM_RW));
	struct mem saved = mm;
	mm.n = 0;
	ASSERT_EQ(iotlb_translate(&t, &c, &mm, 0x5000, &len, IOTLB_PERM_RW, &p, &g), -EFAULT);
	mm = saved;
	iotlb_destroy(&t);
	return 0;
}

/* The inline hit path (iotlb_cache_last): only the piece the last translation used, only while
 * the IOTLB is unchanged, only with the permission; clipped at the piece's end. */
static int last_hit(void)
{
	struct iotlb t;
	struct iotlb_cache c;
	uint8_t *base = mm.regions[0].hva;
	uint64_t len, g = 0;
	void *p;

	iotlb_init(&t, &quiet, NULL, NULL);
	iotlb_cache_reset(&c);
	ASSERT_OK(upd(&t, 0x10000, 0x2000, UVA, IOTLB_PERM_RW));
	ASSERT_OK(upd(&t, 0x20000, 0x1000, UVA + 0x4000, IOTLB_PERM_RO));
	len = 0x10;
	ASSERT_TRUE(iotlb_cache_last(&t, &c, 0x10000, &len, IOTLB_PERM_RO) == NULL); /* empty */
	ASSERT_OK(iotlb_translate(&t, &c, &mm, 0x10010, &len, IOTLB_PERM_RW, &p, &g));
	len = 0x100;
	ASSERT_TRUE(iotlb_cache_last(&t, &c, 0x10100, &len, IOTLB_PERM_RO) == base + 0x100);
	ASSERT_EQ(len, 0x100);
	len = 0x100;
	ASSERT_TRUE(iotlb_cache_last(&t, &c, 0x11ff0, &len, IOTLB_PERM_WO) == base + 0x1ff0);
	ASSERT_EQ(len, 0x10);
	/* Outside the piece, either side: the full translation decides. */
	ASSERT_TRUE(iotlb_cache_last(&t, &c, 0xfff0, &len, IOTLB_PERM_RO) == NULL);
	ASSERT_TRUE(iotlb_cache_last(&t, &c, 0x12000, &len, IOTLB_PERM_RO) == NULL);
	ASSERT_TRUE(iotlb_cache_last(&t, &c, 0x20000, &len, IOTLB_PERM_RO) == NULL);
	/* Another piece used: it is the last one now; its permission holds on the hit path. */
	len = 8;
	ASSERT_OK(iotlb_translate(&t, &c, &mm, 0x20000, &len, IOTLB_PERM_RO, &p, &g));
	ASSERT_TRUE(iotlb_cache_last(&t, &c, 0x20008, &len, IOTLB_PERM_RO) == base + 0x4008);
	ASSERT_TRUE(iotlb_cache_last(&t, &c, 0x20008, &len, IOTLB_PERM_WO) == NULL);
	ASSERT_EQ(iotlb_translate(&t, &c, &mm, 0x20008, &len, IOTLB_PERM_WO, &p, &g), -EACCES);
	ASSERT_TRUE(iotlb_cache_last(&t, &c, 0x10000, &len, IOTLB_PERM_RO) == NULL);
	/* Back to the first from the cache (no new fill): the last one again. */
	ASSERT_OK(iotlb_translate(&t, &c, &mm, 0x10000, &len, IOTLB_PERM_RO, &p, &g));
	ASSERT_EQ(c.n, 2);
	ASSERT_TRUE(iotlb_cache_last(&t, &c, 0x10008, &len, IOTLB_PERM_RO) == base + 8);
	/* Any change of the IOTLB, even elsewhere, ends the hit path until the next fill. */
	ASSERT_OK(upd(&t, 0x30000, 0x1000, UVA + 0x8000, IOTLB_PERM_RW));
	ASSERT_TRUE(iotlb_cache_last(&t, &c, 0x10008, &len, IOTLB_PERM_RO) == NULL);
	ASSERT_OK(iotlb_translate(&t, &c, &mm, 0x10008, &len, IOTLB_PERM_RO, &p, &g));
	ASSERT_TRUE(iotlb_cache_last(&t, &c, 0x10008, &len, IOTLB_PERM_RO) == base + 8);
	/* Invalidated: no hit, and the translation misses. */
	ASSERT_OK(inval(&t, 0x10000, 0x1000));
	ASSERT_TRUE(iotlb_cache_last(&t, &c, 0x10008, &len, IOTLB_PERM_RO) == NULL);
	ASSERT_EQ(iotlb_translate(&t, &c, &mm, 0x10008, &len, IOTLB_PERM_RO, &p, &g), -EAGAIN);
	iotlb_destroy(&t);
	return 0;
}

/* A queue thread translating while the dispatch thread maps and unmaps: every answer is a
 * miss or the right pointer (run under TSan/ASan for the rest). */
static struct iotlb shared;
static bool stop; /* atomic */
static int bad_answers;

static void *translator(void *arg)
{
	struct iotlb_cache c;
	(void)arg;
	iotlb_cache_reset(&c);
	while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
		for (uint64_t i = 0; i < 64; i++) {
			uint64_t len = 8, g, iova = 0x100000 + i * 0x1000 + 8;
			/* As ring_piece(): the inline hit path first. */
			void *p = iotlb_cache_last(&shared, &c, iova, &len, IOTLB_PERM_RO);
			int r = p ? 0
				  : iotlb_translate(&shared, &c, &mm, iova, &len, IOTLB_PERM_RO, &p,
						    &g);
			if (r == 0 && p != mm.regions[0].hva + i * 0x1000 + 8)
				__atomic_add_fetch(&bad_answers, 1, __ATOMIC_RELAXED);
			if (r != 0 && r != -EAGAIN)
				__atomic_add_fetch(&bad_answers, 1, __ATOMIC_RELAXED);
		}
	}
	return NULL;
}

static int threads(void)
{
	pthread_t th;

	iotlb_init(&shared, &quiet, NULL, NULL);
	ASSERT_OK(pthread_create(&th, NULL, translator, NULL));
	for (unsigned round = 0; round < 2000; round++) {
		uint64_t i = round % 64;
		upd(&shared, 0x100000 + i * 0x1000, 0x1000, UVA + i * 0x1000, IOTLB_PERM_RW);
		if (round % 3 == 0)
			inval(&shared, 0x100000 + ((round * 7) % 64) * 0x1000, 0x3000);
	}
	__atomic_store_n(&stop, true, __ATOMIC_RELAXED);
	pthread_join(th, NULL);
	ASSERT_EQ(bad_answers, 0);
	iotlb_destroy(&shared);
	return 0;
}

int main(void)
{
	if (mem_setup())
		return T_FAIL;
	RUN(lookups);
	RUN(refused);
	RUN(invalidations);
	RUN(bounded);
	RUN(forget);
	RUN(translate);
	RUN(last_hit);
	RUN(threads);
	mem_clear(&mm);
	T_MAIN_END();
}
