/* SPDX-License-Identifier: MIT */
/*
 * The SIGBUS guard: a process-wide registry of mappings of front-end files. A front-end can
 * shrink a file (ftruncate) after the back-end mapped it; the next access to a page past the
 * new end raises SIGBUS, which would kill the whole daemon and every other device in it.
 * Once the application installs the guard (vhu_sigbus_guard_install), a SIGBUS inside a
 * registered mapping replaces the lost pages with private zero pages, so the faulting access
 * completes harmlessly, and poisons the owner: the device whose memory it was. Ring calls
 * see the poison and break the ring; vhu_backend_dispatch() fails, so the application
 * detaches that device alone.
 *
 * The registry is an array of chunks updated with atomics only (chunks are added, never
 * freed): the signal handler neither locks nor allocates. A mapping must be removed (guard_remove)
 * before it is unmapped, and must not be in use by another thread then (queue_stop's contract).
 */
#ifndef VHU_GUARD_H
#define VHU_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The registry holds every region of every device in the process, plus the inflight buffers:
 * with 509 slots a device, a fixed size would cap the devices a process can serve. It grows in
 * chunks of GUARD_CHUNK slots, allocated when the ones before are full and never freed (the
 * signal handler may be walking them), up to GUARD_SLOTS: Linux's default vm.max_map_count
 * (65530) stops a process from holding more mappings anyway. */
#define GUARD_CHUNK  1024
#define GUARD_CHUNKS 64
#define GUARD_SLOTS  (GUARD_CHUNK * GUARD_CHUNKS)
/* guard_poison.gpa of the inflight buffer, which has no guest address. */
#define GUARD_INFLIGHT UINT64_MAX
/* guard_poison.gpa of the dirty log. */
#define GUARD_LOG (UINT64_MAX - 1)

/* Owned by the device's memory object; written by the signal handler. */
struct guard_poison {
	int state;	/* 0 clean, 1 being recorded, 2 recorded (atomic) */
	uintptr_t addr; /* the first faulting address */
	uint64_t gpa;	/* guest address of its region, GUARD_INFLIGHT or GUARD_LOG */
};

/* Registers [addr, addr + len) (page: the mapping's page size, a power of two) for owner.
 * Returns the slot (>= 0), or -ENOSPC when the registry is full (GUARD_SLOTS, or no memory for
 * another chunk) and the guard is installed (an unguarded mapping could then kill the
 * process). -1 is returned, not an error, when the registry is full and no guard is
 * installed. */
int guard_add(void *addr, uint64_t len, uint64_t page, uint64_t gpa, struct guard_poison *owner);
/* Removes a slot from guard_add (a negative slot is ignored). Call before munmap. */
void guard_remove(int slot);

static inline bool guard_poisoned(const struct guard_poison *p)
{
	/* Relaxed: cheap on the data path; the details are read with guard_describe(). */
	return __atomic_load_n(&p->state, __ATOMIC_RELAXED) != 0;
}

/* "SIGBUS at 0x... in region gpa 0x..." into buf. */
void guard_describe(const struct guard_poison *p, char *buf, size_t size);
/* Back to clean (the device dropped its connection and every mapping). */
void guard_clear(struct guard_poison *p);

#endif
