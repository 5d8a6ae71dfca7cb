/* SPDX-License-Identifier: MIT */
/* The SIGBUS guard (see guard.h): registry, signal handler, public install call. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "guard.h"
#include "util.h"
#include "vhu/backend.h"

enum { SLOT_FREE, SLOT_BUSY, SLOT_LIVE };

struct guard_slot {
	int state; /* SLOT_*, atomic; the fields below are valid while SLOT_LIVE */
	uintptr_t start, end, page;
	uint64_t gpa;
	struct guard_poison *owner;
};

/* The first chunk is static; the others are calloc'ed by guard_add() as needed and published
 * with a release store of their pointer, which the handler loads with acquire. */
struct guard_chunk {
	unsigned used; /* live or busy slots (atomic): a full chunk is skipped */
	struct guard_slot slot[GUARD_CHUNK];
};

static struct guard_chunk chunk0;
static struct guard_chunk *chunks[GUARD_CHUNKS] = { &chunk0 };
static int installed; /* the handler is in place (atomic) */
static struct sigaction old_action;

static int chunk_add(struct guard_chunk *c, unsigned base, void *addr, uint64_t len, uint64_t page,
		     uint64_t gpa, struct guard_poison *owner)
{
	if (__atomic_load_n(&c->used, __ATOMIC_RELAXED) >= GUARD_CHUNK)
		return -1;
	for (unsigned i = 0; i < GUARD_CHUNK; i++) {
		struct guard_slot *s = &c->slot[i];
		int expect = SLOT_FREE;
		if (__atomic_load_n(&s->state, __ATOMIC_RELAXED) != SLOT_FREE ||
		    !__atomic_compare_exchange_n(&s->state, &expect, SLOT_BUSY, false,
						 __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
			continue;
		__atomic_add_fetch(&c->used, 1, __ATOMIC_RELAXED);
		__atomic_store_n(&s->start, (uintptr_t)addr, __ATOMIC_RELAXED);
		__atomic_store_n(&s->end, (uintptr_t)addr + len, __ATOMIC_RELAXED);
		__atomic_store_n(&s->page, page, __ATOMIC_RELAXED);
		__atomic_store_n(&s->gpa, gpa, __ATOMIC_RELAXED);
		__atomic_store_n(&s->owner, owner, __ATOMIC_RELAXED);
		/* Pairs with the acquire loads in on_sigbus(): fields first, then LIVE. */
		__atomic_store_n(&s->state, SLOT_LIVE, __ATOMIC_RELEASE);
		return (int)(base + i);
	}
	return -1;
}

int guard_add(void *addr, uint64_t len, uint64_t page, uint64_t gpa, struct guard_poison *owner)
{
	for (unsigned k = 0; k < GUARD_CHUNKS; k++) {
		struct guard_chunk *c = __atomic_load_n(&chunks[k], __ATOMIC_ACQUIRE);
		if (!c) {
			/* Two threads may both get here: one pointer wins, the other is freed. */
			struct guard_chunk *fresh = calloc(1, sizeof(*fresh)), *none = NULL;
			if (!fresh)
				break;
			if (!__atomic_compare_exchange_n(&chunks[k], &none, fresh, false,
							 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
				free(fresh);
				fresh = none;
			}
			c = fresh;
		}
		int slot = chunk_add(c, k * GUARD_CHUNK, addr, len, page, gpa, owner);
		if (slot >= 0)
			return slot;
	}
	return __atomic_load_n(&installed, __ATOMIC_ACQUIRE) ? -ENOSPC : -1;
}

void guard_remove(int slot)
{
	if (slot < 0 || slot >= GUARD_SLOTS)
		return;
	struct guard_chunk *c = __atomic_load_n(&chunks[slot / GUARD_CHUNK], __ATOMIC_ACQUIRE);
	if (!c)
		return;
	__atomic_store_n(&c->slot[slot % GUARD_CHUNK].state, SLOT_FREE, __ATOMIC_RELEASE);
	__atomic_sub_fetch(&c->used, 1, __ATOMIC_RELAXED);
}

void guard_describe(const struct guard_poison *p, char *buf, size_t size)
{
	uintptr_t addr = __atomic_load_n(&p->addr, __ATOMIC_RELAXED);
	uint64_t gpa = __atomic_load_n(&p->gpa, __ATOMIC_RELAXED);

	if (__atomic_load_n(&p->state, __ATOMIC_ACQUIRE) != 2)
		snprintf(buf, size, "SIGBUS in its memory");
	else if (gpa == GUARD_INFLIGHT)
		snprintf(buf, size, "SIGBUS at %p in the inflight buffer", (void *)addr);
	else if (gpa == GUARD_LOG)
		snprintf(buf, size, "SIGBUS at %p in the dirty log", (void *)addr);
	else
		snprintf(buf, size, "SIGBUS at %p in region gpa 0x%llx", (void *)addr,
			 (unsigned long long)gpa);
}

void guard_clear(struct guard_poison *p)
{
	__atomic_store_n(&p->addr, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&p->gpa, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&p->state, 0, __ATOMIC_RELEASE);
}

/* Records the first fault of a device; later ones (other pages, other threads) add nothing. */
static void poison(struct guard_poison *p, uintptr_t addr, uint64_t gpa)
{
	int expect = 0;

	if (!__atomic_compare_exchange_n(&p->state, &expect, 1, false, __ATOMIC_ACQ_REL,
					 __ATOMIC_RELAXED))
		return;
	__atomic_store_n(&p->addr, addr, __ATOMIC_RELAXED);
	__atomic_store_n(&p->gpa, gpa, __ATOMIC_RELAXED);
	__atomic_store_n(&p->state, 2, __ATOMIC_RELEASE);
}

/* Not ours: what the process would have done without the guard. */
static void chain(int sig, siginfo_t *si, void *uc)
{
	if (old_action.sa_flags & SA_SIGINFO) {
		if (old_action.sa_sigaction) {
			old_action.sa_sigaction(sig, si, uc);
			return;
		}
	} else if (old_action.sa_handler != SIG_DFL && old_action.sa_handler != SIG_IGN) {
		old_action.sa_handler(sig);
		return;
	}
	/* Default action: put it back and let the fault happen again on return (a fault
	 * re-executes the instruction); a SIGBUS sent by kill() is raised again instead. */
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	sigemptyset(&dfl.sa_mask);
	sigaction(SIGBUS, &dfl, NULL);
	if (si->si_code <= 0)
		raise(sig);
}

/*
 * Async-signal-safe: atomics, mmap and sigaction only. The replacement pages are private
 * and anonymous, from the faulting page (rounded down to the mapping's page size, for
 * hugetlbfs) to the mapping's end: the faulting instruction reads zeroes or writes into
 * memory nobody shares, and the device's memory that is still there stays shared.
 */
static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	uintptr_t a = (uintptr_t)si->si_addr;
	struct guard_chunk *c = NULL;
	int saved = errno;

	for (unsigned i = 0; si->si_code > 0 && i < GUARD_SLOTS; i++) {
		if (i % GUARD_CHUNK == 0) {
			c = __atomic_load_n(&chunks[i / GUARD_CHUNK], __ATOMIC_ACQUIRE);
			if (!c)
				break;
		}
		struct guard_slot *s = &c->slot[i % GUARD_CHUNK];
		if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != SLOT_LIVE)
			continue;
		uintptr_t start = __atomic_load_n(&s->start, __ATOMIC_RELAXED);
		uintptr_t end = __atomic_load_n(&s->end, __ATOMIC_RELAXED);
		if (a < start || a >= end)
			continue;
		uintptr_t page = __atomic_load_n(&s->page, __ATOMIC_RELAXED);
		uintptr_t from = a & ~(page - 1);
		if (from < start)
			from = start;
		void *p = mmap((void *)from, end - from, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
		if (p == MAP_FAILED)
			break;
		poison(__atomic_load_n(&s->owner, __ATOMIC_RELAXED), a,
		       __atomic_load_n(&s->gpa, __ATOMIC_RELAXED));
		errno = saved;
		return;
	}
	chain(sig, si, uc);
	errno = saved;
}

VHU_EXPORT int vhu_sigbus_guard_install(void)
{
	struct sigaction sa = { .sa_sigaction = on_sigbus,
				.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART },
			 now;

	if (__atomic_load_n(&installed, __ATOMIC_ACQUIRE))
		return 0;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGBUS, NULL, &old_action) < 0 || sigaction(SIGBUS, &sa, NULL) < 0)
		return -errno;
	/* A sanitizer runtime may keep SIGBUS to itself and ignore the request silently. */
	if (sigaction(SIGBUS, NULL, &now) < 0 || !(now.sa_flags & SA_SIGINFO) ||
	    now.sa_sigaction != on_sigbus)
		return -ENOTSUP;
	__atomic_store_n(&installed, 1, __ATOMIC_RELEASE);
	return 0;
}
