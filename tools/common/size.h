/* SPDX-License-Identifier: MIT */
/* Shared by the tools: sizes on the command line. */
#ifndef VHU_TOOLS_SIZE_H
#define VHU_TOOLS_SIZE_H

#include <stdbool.h>
#include <stdint.h>

/* Parses a size with an optional K, M or G suffix (powers of two). false when malformed. */
bool parse_size(const char *s, uint64_t *v);

#endif
