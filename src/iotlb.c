/* SPDX-License-Identifier: MIT */
/* The IOTLB of one back-end: see iotlb.h for the locking and the bound. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "iotlb.h"
#include "util.h"

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void iotlb_init(struct iotlb *t, const struct logger *lg, iotlb_miss_fn miss, void *opaque)
{
	memset(t, 0, sizeof(*t));
	pthread_rwlock_init(&t->lock, NULL);
	pthread_mutex_init(&t->miss_lock, NULL);
	t->lg = lg;
	t->miss = miss;
	t->miss_opaque = opaque;
}

void iotlb_destroy(struct iotlb *t)
{
	free(t->e);
	t->e = NULL;
	t->n = 0;
	pthread_rwlock_destroy(&t->lock);
	pthread_mutex_destroy(&t->miss_lock);
}

static void bump_locked(struct iotlb *t)
{
	__atomic_add_fetch(&t->gen, 1, __ATOMIC_SEQ_CST);
}

void iotlb_clear(struct iotlb *t)
{
	pthread_rwlock_wrlock(&t->lock);
	t->n = 0;
	bump_locked(t);
	pthread_rwlock_unlock(&t->lock);
	pthread_mutex_lock(&t->miss_lock);
	memset(t->pend, 0, sizeof(t->pend));
	pthread_mutex_unlock(&t->miss_lock);
}

/* An update of [iova, last] answers the misses inside it. */
static void answered(struct iotlb *t, uint64_t iova, uint64_t last)
{
	pthread_mutex_lock(&t->miss_lock);
	for (unsigned k = 0; k < IOTLB_MISS_SLOTS; k++) {
		uint64_t page = t->pend[k].page & ~1ull;
		if (t->pend[k].page && page >= (iova & ~0xfffull) && page <= last)
			t->pend[k].page = 0;
	}
	pthread_mutex_unlock(&t->miss_lock);
}

/* Whether a miss at iova is to be sent: not while one for its page is pending (sent less than
 * IOTLB_MISS_RESEND_MS ago, no update since). Records it when it is. */
static bool miss_sent_new(struct iotlb *t, uint64_t iova)
{
	uint64_t now = now_ms(), page = (iova & ~0xfffull) | 1;
	bool pending = false;

	pthread_mutex_lock(&t->miss_lock);
	for (unsigned k = 0; k < IOTLB_MISS_SLOTS && !pending; k++)
		pending = t->pend[k].page == page && now - t->pend[k].ms < IOTLB_MISS_RESEND_MS;
	if (!pending) {
		unsigned k = t->pend_next++ % IOTLB_MISS_SLOTS;
		t->pend[k].page = page;
		t->pend[k].ms = now;
	}
	pthread_mutex_unlock(&t->miss_lock);
	return !pending;
}

/* First entry whose last >= iova (entries are disjoint and sorted, so their lasts are too). */
static unsigned find_locked(const struct iotlb *t, uint64_t iova)
{
	unsigned lo = 0, hi = t->n;

	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		if (t->e[mid].last < iova)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void remove_at(struct iotlb *t, unsigned i)
{
	memmove(&t->e[i], &t->e[i + 1], (t->n - i - 1) * sizeof(t->e[0]));
	t->n--;
}

static void insert_at(struct iotlb *t, unsigned i, const struct iotlb_entry *x)
{
	memmove(&t->e[i + 1], &t->e[i], (t->n - i) * sizeof(t->e[0]));
	t->e[i] = *x;
	t->n++;
}

/* Removes [iova, last] from the table: entries inside it go, an entry that sticks out keeps
 * the part outside (a vIOMMU invalidating one page of a larger mapping). When the table is
 * full, the part past the range goes too (a later access misses and asks again). */
static void remove_range_locked(struct iotlb *t, uint64_t iova, uint64_t last)
{
	unsigned i = find_locked(t, iova);

	while (i < t->n && t->e[i].iova <= last) {
		struct iotlb_entry x = t->e[i];
		remove_at(t, i);
		if (x.iova < iova) {
			struct iotlb_entry l = { x.iova, iova - 1, x.uaddr, x.perm };
			insert_at(t, i++, &l);
		}
		if (x.last > last && t->n < IOTLB_MAX_ENTRIES) {
			struct iotlb_entry r = { last + 1, x.last, x.uaddr + (last + 1 - x.iova),
						 x.perm };
			insert_at(t, i++, &r);
		}
	}
}

static int update(struct iotlb *t, const struct mem *mm, const struct vhu_iotlb_msg *m,
		  uint64_t last)
{
	uint64_t ulast;

	if (m->perm < IOTLB_PERM_RO || m->perm > IOTLB_PERM_RW) {
		log_err(t->lg, "IOTLB update iova 0x%llx: permission %u is not RO, WO or RW",
			(unsigned long long)m->iova, m->perm);
		return -EINVAL;
	}
	if (!add_ok(m->uaddr, m->size - 1, &ulast)) {
		log_err(t->lg, "IOTLB update iova 0x%llx: uaddr 0x%llx + size 0x%llx wraps",
			(unsigned long long)m->iova, (unsigned long long)m->uaddr,
			(unsigned long long)m->size);
		return -EINVAL;
	}
	/* "the back-end ... will use the uaddr": only memory the front-end shared with us. */
	if (!mem_uva_to_hva(mm, m->uaddr, m->size)) {
		log_err(t->lg,
			"IOTLB update iova 0x%llx size 0x%llx: uaddr 0x%llx is not inside one "
			"region of the memory table",
			(unsigned long long)m->iova, (unsigned long long)m->size,
			(unsigned long long)m->uaddr);
		return -EINVAL;
	}
	pthread_rwlock_wrlock(&t->lock);
	/* Under the lock: queue threads read the pointer under theirs. */
	if (!t->e) {
		t->e = calloc(IOTLB_MAX_ENTRIES, sizeof(t->e[0]));
		if (!t->e) {
			pthread_rwlock_unlock(&t->lock);
			return -ENOMEM;
		}
	}
	/* A new mapping replaces whatever the range held. */
	remove_range_locked(t, m->iova, last);
	if (t->n == IOTLB_MAX_ENTRIES) {
		remove_at(t, t->evict++ % t->n);
		t->evictions++;
	}
	struct iotlb_entry x = { m->iova, last, m->uaddr, m->perm };
	insert_at(t, find_locked(t, m->iova), &x);
	t->updates++;
	bump_locked(t);
	pthread_rwlock_unlock(&t->lock);
	answered(t, m->iova, last);
	return 0;
}

int iotlb_msg(struct iotlb *t, const struct mem *mm, const struct vhu_iotlb_msg *m)
{
	uint64_t last = 0;
	bool range_ok = m->size && add_ok(m->iova, m->size - 1, &last);
	int ret = 0;

	switch (m->type) {
	case IOTLB_UPDATE:
		if (!range_ok) {
			log_err(t->lg, "IOTLB update iova 0x%llx size 0x%llx: %s",
				(unsigned long long)m->iova, (unsigned long long)m->size,
				m->size ? "the range wraps past 2^64" : "size 0");
			ret = -EINVAL;
			break;
		}
		ret = update(t, mm, m, last);
		break;
	case IOTLB_INVALIDATE:
		if (!range_ok) {
			/* Forgetting more than asked is always safe; keeping a mapping the
			 * front-end meant to take back is not. */
			log_err(t->lg,
				"IOTLB invalidate iova 0x%llx size 0x%llx: %s; refused, and "
				"everything from iova on forgotten",
				(unsigned long long)m->iova, (unsigned long long)m->size,
				m->size ? "the range wraps past 2^64" : "size 0");
			last = UINT64_MAX;
			ret = -EINVAL;
		}
		pthread_rwlock_wrlock(&t->lock);
		/* Invalidating a range nothing maps is fine: the vIOMMU does not track what we
		 * asked for. */
		remove_range_locked(t, m->iova, last);
		t->invalidations++;
		bump_locked(t);
		pthread_rwlock_unlock(&t->lock);
		break;
	default:
		log_err(t->lg,
			"IOTLB message of type %u refused (only UPDATE and INVALIDATE come "
			"from the front-end)",
			m->type);
		ret = -EINVAL;
	}
	if (ret)
		t->refused++;
	return ret;
}

void iotlb_forget(struct iotlb *t, const struct iotlb_range *r, unsigned n)
{
	unsigned removed = 0;

	pthread_rwlock_wrlock(&t->lock);
	for (unsigned k = 0; k < n; k++) {
		unsigned i = find_locked(t, r[k].iova);
		while (i < t->n && t->e[i].iova <= r[k].last) {
			remove_at(t, i);
			removed++;
		}
	}
	if (removed) {
		t->forgotten += removed;
		bump_locked(t);
	}
	pthread_rwlock_unlock(&t->lock);
}

static int lookup_locked(struct iotlb *t, uint64_t iova, unsigned perm, struct iotlb_entry *out)
{
	unsigned i = find_locked(t, iova);

	if (i == t->n || t->e[i].iova > iova)
		return -ENOENT;
	if ((t->e[i].perm & perm) != perm)
		return -EACCES;
	*out = t->e[i];
	return 0;
}

int iotlb_lookup(struct iotlb *t, uint64_t iova, uint64_t *len, unsigned perm, uint64_t *uaddr)
{
	struct iotlb_entry e;
	int ret;

	pthread_rwlock_rdlock(&t->lock);
	ret = lookup_locked(t, iova, perm, &e);
	pthread_rwlock_unlock(&t->lock);
	if (ret)
		return ret;
	*uaddr = e.uaddr + (iova - e.iova);
	iotlb_clip(iova, e.last, len);
	return 0;
}

/* The region of mm holding front-end VA uva, or NULL. */
static const struct mem_region *region_of_uva(const struct mem *mm, uint64_t uva)
{
	for (unsigned i = 0; i < mm->n; i++) {
		const struct mem_region *r = &mm->regions[i];
		if (uva >= r->uva && uva - r->uva < r->size)
			return r;
	}
	return NULL;
}

int iotlb_translate(struct iotlb *t, struct iotlb_cache *c, const struct mem *mm, uint64_t iova,
		    uint64_t *len, unsigned perm, void **hva, uint64_t *miss_gen)
{
	uint64_t g = iotlb_gen(t), ustart, ulast, elast_u;
	const struct mem_region *r;
	struct iotlb_entry e;
	unsigned k;
	int ret;

	if (c->gen != g) {
		c->n = 0;
		c->gen = g;
	}
	for (k = 0; k < c->n; k++)
		if (iova >= c->e[k].iova && iova <= c->e[k].last)
			break;
	if (k == c->n) {
		pthread_rwlock_rdlock(&t->lock);
		ret = lookup_locked(t, iova, perm, &e);
		pthread_rwlock_unlock(&t->lock);
		if (ret == -ENOENT) {
			*miss_gen = g;
			if (!miss_sent_new(t, iova))
				return -EAGAIN;
			__atomic_add_fetch(&t->misses, 1, __ATOMIC_RELAXED);
			if (t->miss)
				t->miss(t->miss_opaque, iova, perm);
			return -EAGAIN;
		}
		if (ret)
			return ret;
		/* The piece that is both this entry and one region, in IOVA terms. */
		r = region_of_uva(mm, e.uaddr + (iova - e.iova));
		if (!r)
			return -EFAULT;
		elast_u = e.uaddr + (e.last - e.iova);
		ustart = MAX(r->uva, e.uaddr);
		ulast = MIN(r->uva + (r->size - 1), elast_u);
		k = c->next++ % IOTLB_CACHE_SIZE;
		if (c->n < IOTLB_CACHE_SIZE)
			k = c->n++;
		c->e[k].iova = e.iova + (ustart - e.uaddr);
		c->e[k].last = e.iova + (ulast - e.uaddr);
		c->e[k].hva = r->hva + (ustart - r->uva);
		c->e[k].perm = e.perm;
	}
	if ((c->e[k].perm & perm) != perm)
		return -EACCES;
	c->hit = k;
	*hva = c->e[k].hva + (iova - c->e[k].iova);
	iotlb_clip(iova, c->e[k].last, len);
	return 0;
}

uint64_t iotlb_hva_to_gpa(const struct mem *mm, const void *hva)
{
	const uint8_t *p = hva;

	for (unsigned i = 0; i < mm->n; i++) {
		const struct mem_region *r = &mm->regions[i];
		if (p >= r->hva && (uint64_t)(p - r->hva) < r->size)
			return r->gpa + (uint64_t)(p - r->hva);
	}
	return UINT64_MAX;
}
