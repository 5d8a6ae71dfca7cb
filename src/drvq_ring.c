/* SPDX-License-Identifier: MIT */
/* The driver-side ring's sticky broken flag (drvq_ring.h), below both driver halves. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include "drvq_ring.h"

int drvq_broken(struct vhu_drvq *q, const char *fmt, ...)
{
	char buf[256];
	va_list ap;

	if (!q->broken) {
		va_start(ap, fmt);
		vsnprintf(buf, sizeof(buf), fmt, ap);
		va_end(ap);
		log_err(q->lg, "queue %u broken by the back-end: %s; not touching it again",
			q->index, buf);
		q->broken = true;
	}
	return -EIO;
}
