/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>

#include "size.h"

bool parse_size(const char *s, uint64_t *v)
{
	char *end;
	unsigned shift = 0;

	errno = 0;
	unsigned long long n = strtoull(s, &end, 0);
	if (errno || end == s)
		return false;
	switch (*end) {
	case 'k':
	case 'K':
		shift = 10;
		break;
	case 'm':
	case 'M':
		shift = 20;
		break;
	case 'g':
	case 'G':
		shift = 30;
		break;
	}
	if (shift)
		end++;
	if (*end || (shift && n > (UINT64_MAX >> shift)))
		return false;
	*v = (uint64_t)n << shift;
	return true;
}
