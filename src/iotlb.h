/* SPDX-License-Identifier: MIT */
/*
 * The IOTLB of one back-end (VIRTIO_F_ACCESS_PLATFORM, "IOMMU support" in vhost-user.rst):
 * what the front-end's vIOMMU told us with IOTLB_MSG updates, each an I/O virtual address range
 * [iova, iova + size) mapped at front-end virtual address uaddr with a permission (RO, WO, RW),
 * and the invalidations that take them back. With ACCESS_PLATFORM the ring and descriptor
 * addresses are IOVAs: IOVA -> front-end VA (this table) -> pointer (mem.h).
 *
 * Locking: the dispatch thread updates the table under the write side of a rwlock and bumps
 * the generation `gen` inside it; queue threads look up under the read side. A ring keeps a
 * small private cache (struct iotlb_cache) of IOVA -> pointer pieces, valid while the
 * generation it was filled under is the table's: every update or invalidation flushes every
 * ring's cache at its next translation. A translation that read the old generation just
 * before an invalidation completes with the old mapping (as a DMA already in flight does);
 * the memory behind it stays mapped (regions change only while rings are stopped), so no
 * pointer ever dangles.
 *
 * Bounded: at most IOTLB_MAX_ENTRIES mappings. An update past that evicts one entry (round
 * robin, as DPDK's vhost evicts a random one): harmless, a later access misses and asks again.
 */
#ifndef VHU_IOTLB_H
#define VHU_IOTLB_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "log.h"
#include "mem.h"
#include "vhu/proto.h"

#define IOTLB_MAX_ENTRIES    4096
#define IOTLB_CACHE_SIZE     8
#define IOTLB_MISS_RESEND_MS 200
#define IOTLB_MISS_SLOTS     16

/* struct vhost_iotlb_msg type and perm (linux/vhost_types.h) */
#define IOTLB_MISS	  1
#define IOTLB_UPDATE	  2
#define IOTLB_INVALIDATE  3
#define IOTLB_ACCESS_FAIL 4
#define IOTLB_PERM_RO	  1
#define IOTLB_PERM_WO	  2
#define IOTLB_PERM_RW	  3

struct iotlb_entry {
	uint64_t iova;
	uint64_t last; /* inclusive: a range may end at 2^64 */
	uint64_t uaddr;
	uint8_t perm;
};

/* Called (from any thread, never waiting) when a translation misses: sends a miss request. */
typedef void (*iotlb_miss_fn)(void *opaque, uint64_t iova, unsigned perm);

struct iotlb {
	pthread_rwlock_t lock;
	struct iotlb_entry *e; /* sorted by iova, disjoint; allocated at the first update */
	unsigned n;
	unsigned evict; /* round-robin eviction cursor */
	uint64_t gen;	/* bumped (atomically, under the write lock) on every change */
	const struct logger *lg;
	iotlb_miss_fn miss;
	void *miss_opaque;
	uint64_t updates, invalidations, evictions, refused, misses; /* counters */
	/* VHU_DEVICE_F_IOTLB_PER_BUFFER: a ring forgets the mappings a buffer used once it has
	 * taken the buffer (iotlb_forget()), so that the next buffer asks again. Set before
	 * the first connection. */
	bool per_buffer;
	uint64_t forgotten;
	/* Misses sent and not answered yet (no update covered the page): the same page is
	 * not sent again for IOTLB_MISS_RESEND_MS (a waiting ring retries at every IOTLB change,
	 * which may be for other pages). page 0: a free slot (pages are stored | 1). */
	pthread_mutex_t miss_lock;
	struct {
		uint64_t page, ms;
	} pend[IOTLB_MISS_SLOTS];
	unsigned pend_next;
};

/* One ring's cache: pieces that are both one IOTLB entry and one memory region. hit: the
 * piece the last translation used, tried first (iotlb_cache_last()). */
struct iotlb_cache {
	uint64_t gen;
	unsigned n, next, hit;
	struct {
		uint64_t iova, last;
		uint8_t *hva;
		uint8_t perm;
	} e[IOTLB_CACHE_SIZE];
};

void iotlb_init(struct iotlb *t, const struct logger *lg, iotlb_miss_fn miss, void *opaque);
void iotlb_destroy(struct iotlb *t);
/* Forgets every entry (reconnect, RESET_DEVICE). */
void iotlb_clear(struct iotlb *t);
/*
 * One IOTLB_MSG from the front-end. 0, or -EINVAL (logged) for a message refused: a type other
 * than UPDATE or INVALIDATE, a size of 0, a range that wraps past 2^64, an update's permission
 * other than RO/WO/RW or uaddr range outside the memory table mm. An invalidation is applied
 * even when refused (zero size or wrapping): [iova, 2^64) is forgotten, which is always safe.
 * -ENOMEM when the table cannot be allocated.
 */
int iotlb_msg(struct iotlb *t, const struct mem *mm, const struct vhu_iotlb_msg *m);
/* [iova, last] ranges a ring translated for one buffer. */
struct iotlb_range {
	uint64_t iova, last;
};
/* Removes every entry that overlaps one of the n ranges, whole (not only the overlap: a mapping
 * is the vIOMMU's page, and what is left of it is as stale as the rest). */
void iotlb_forget(struct iotlb *t, const struct iotlb_range *r, unsigned n);
static inline uint64_t iotlb_gen(struct iotlb *t)
{
	return __atomic_load_n(&t->gen, __ATOMIC_SEQ_CST);
}
/* iova -> front-end VA with perm (IOTLB_PERM_* bits all needed); *len shortened to the entry.
 * 0, -ENOENT (no entry), -EACCES (entry without the permission). */
int iotlb_lookup(struct iotlb *t, uint64_t iova, uint64_t *len, unsigned perm, uint64_t *uaddr);
/*
 * The ring's translation: iova -> pointer for up to *len bytes (shortened at a mapping's or
 * region's end), through cache c. On a miss the miss callback is called, *miss_gen gets the
 * generation the lookup saw and -EAGAIN is returned; -EACCES for a permission the mapping
 * lacks, -EFAULT for a mapping whose uaddr is no longer in mm.
 */
int iotlb_translate(struct iotlb *t, struct iotlb_cache *c, const struct mem *mm, uint64_t iova,
		    uint64_t *len, unsigned perm, void **hva, uint64_t *miss_gen);
static inline void iotlb_cache_reset(struct iotlb_cache *c)
{
	c->n = 0;
	c->next = 0;
	c->hit = 0;
	c->gen = UINT64_MAX;
}
/* *len shortened so that [x, x + *len) stays at or below last. */
static inline void iotlb_clip(uint64_t x, uint64_t last, uint64_t *len)
{
	if (*len && *len - 1 > last - x)
		*len = last - x + 1;
}
/*
 * The hit path of iotlb_translate(), inline: the piece the ring's last translation used, when
 * the IOTLB has not changed since (the generation, as there), it holds iova and allows perm.
 * A pointer with *len clipped as there, or NULL: then iotlb_translate() decides (a hit of
 * another piece, a miss, a refusal). Consecutive descriptors, and a descriptor after its
 * ring's, mostly lie in one mapping: no call, no scan, no lock for them.
 */
static inline void *iotlb_cache_last(struct iotlb *t, const struct iotlb_cache *c, uint64_t iova,
				     uint64_t *len, unsigned perm)
{
	unsigned k = c->hit;

	if (c->gen != iotlb_gen(t) || k >= c->n || iova < c->e[k].iova || iova > c->e[k].last ||
	    (c->e[k].perm & perm) != perm)
		return NULL;
	iotlb_clip(iova, c->e[k].last, len);
	return c->e[k].hva + (iova - c->e[k].iova);
}
/* The guest-physical address of pointer hva into mm, UINT64_MAX when outside every region. */
uint64_t iotlb_hva_to_gpa(const struct mem *mm, const void *hva);

#endif
