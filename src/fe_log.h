/* SPDX-License-Identifier: MIT */
/*
 * The front-end's dirty page log (vhost-user.rst "Migration"): a bitmap in a sealed memfd the
 * back-end maps (SET_LOG_BASE), one bit per 4 KiB page of guest-physical address, covering
 * address 0 to the end of guest memory, in whole 64-bit words as QEMU's vhost_get_log_size
 * sizes it. The back-end sets bits with atomic ORs while the front-end reads and clears
 * them, so every access here is atomic too.
 */
#ifndef VHU_FE_LOG_H
#define VHU_FE_LOG_H

#include <stddef.h>
#include <stdint.h>

#define FE_LOG_PAGE 0x1000ull /* VHOST_LOG_PAGE */

struct fe_log {
	int fd;
	uint64_t *map;
	size_t words; /* bitmap length in 64-bit words */
};

/* The number of 64-bit words that cover guest-physical addresses [0, gpa_end). */
size_t fe_log_words(uint64_t gpa_end);
/* Creates a zeroed log for [0, gpa_end): a memfd of fe_log_words() * 8 bytes, sealed at that
 * size (as QEMU's vhost_log_alloc), mapped. 0 or -errno. */
int fe_log_init(struct fe_log *l, uint64_t gpa_end);
void fe_log_free(struct fe_log *l);
/* Sets the bits of every page [gpa, gpa + len) touches (what a back-end does); bits beyond
 * the log are ignored. */
void fe_log_mark(struct fe_log *l, uint64_t gpa, uint64_t len);
/* Copies up to n words into dst, clearing each with one atomic exchange (a bit the back-end
 * sets meanwhile lands either in this copy or in the log, never lost). Returns the words
 * copied. */
size_t fe_log_read(struct fe_log *l, uint64_t *dst, size_t n);

#endif
