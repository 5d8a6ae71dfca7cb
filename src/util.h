/* SPDX-License-Identifier: MIT */
/* Small helpers shared by every file. No logic lives here. */
#ifndef VHU_UTIL_H
#define VHU_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ARRAY_SIZE(a)			(sizeof(a) / sizeof((a)[0]))
#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))
#define MIN(a, b)			((a) < (b) ? (a) : (b))
#define MAX(a, b)			((a) > (b) ? (a) : (b))
#define likely(x)			__builtin_expect(!!(x), 1)
#define unlikely(x)			__builtin_expect(!!(x), 0)
#define VHU_EXPORT			__attribute__((visibility("default")))

/* Feature words hold bit numbers; test them only through these. */
static inline bool has_bit(uint64_t word, unsigned bit)
{
	return bit < 64 && (word >> bit) & 1;
}

static inline uint64_t bit64(unsigned bit)
{
	return 1ULL << bit;
}

static inline bool is_pow2(uint32_t x)
{
	return x && !(x & (x - 1));
}

/* a + b without wrapping past UINT64_MAX; false on overflow. */
static inline bool add_ok(uint64_t a, uint64_t b, uint64_t *sum)
{
	return !__builtin_add_overflow(a, b, sum);
}

/* Close *fd if it is open and mark the slot empty. */
void close_fd(int *fd);

#endif
