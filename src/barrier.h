/* SPDX-License-Identifier: MIT */
/*
 * The only ordering primitives the rings use. They work on the spec's plain ring fields and
 * are understood by TSan. Every call site names its partner in a comment.
 */
#ifndef VHU_BARRIER_H
#define VHU_BARRIER_H

#include <stdint.h>

static inline uint16_t load_acquire16(const uint16_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static inline void store_release16(uint16_t *p, uint16_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}

static inline uint16_t load_relaxed16(const uint16_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static inline void store_relaxed16(uint16_t *p, uint16_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELAXED);
}

/* Orders an earlier store against a later load (event-index and flag re-checks). */
static inline void full_fence(void)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

#endif
