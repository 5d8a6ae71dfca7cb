/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

void close_fd(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

void log_msg(const struct logger *lg, int level, const char *fmt, ...)
{
	char buf[512];
	int n = 0;
	va_list ap;

	if (!lg || !lg->fn || level > lg->level)
		return;
	if (lg->prefix)
		n = snprintf(buf, sizeof(buf), "%s: ", lg->prefix);
	if (n < 0 || (size_t)n >= sizeof(buf))
		n = 0;
	va_start(ap, fmt);
	vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
	va_end(ap);
	lg->fn(lg->opaque, level, buf);
}

VHU_EXPORT const char *vhu_log_level_name(int level)
{
	static const char *const names[] = {
		[VHU_LOG_ERR] = "error",
		[VHU_LOG_WARN] = "warning",
		[VHU_LOG_INFO] = "info",
		[VHU_LOG_DEBUG] = "debug",
	};
	if (level < 0 || (size_t)level >= ARRAY_SIZE(names))
		return "?";
	return names[level];
}
