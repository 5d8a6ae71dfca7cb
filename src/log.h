/* SPDX-License-Identifier: MIT */
/* Level-filtered logging through the application's callback. The library never prints. */
#ifndef VHU_LOG_H
#define VHU_LOG_H

#include "vhu/vhu.h"

struct logger {
	vhu_log_fn fn;
	void *opaque;
	int level;
	const char *prefix;
};

void log_msg(const struct logger *lg, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_err(lg, ...)  log_msg((lg), VHU_LOG_ERR, __VA_ARGS__)
#define log_warn(lg, ...) log_msg((lg), VHU_LOG_WARN, __VA_ARGS__)
#define log_info(lg, ...) log_msg((lg), VHU_LOG_INFO, __VA_ARGS__)
#define log_debug(lg, ...)                                                                         \
	do {                                                                                       \
		if ((lg)->fn && (lg)->level >= VHU_LOG_DEBUG)                                      \
			log_msg((lg), VHU_LOG_DEBUG, __VA_ARGS__);                                 \
	} while (0)

#endif
