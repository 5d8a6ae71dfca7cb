/* SPDX-License-Identifier: MIT */
/*
 * vhu: a vhost-user toolkit. Umbrella header; include this one.
 *
 * Every function returns 0 (or a count) on success and a negative errno on failure, unless
 * its comment says otherwise. The library never prints, exits or aborts: it reports through
 * return values and the log callback an application installs.
 */
#ifndef VHU_VHU_H
#define VHU_VHU_H

#ifdef __cplusplus
extern "C" {
#endif

#define VHU_VERSION_MAJOR 0
#define VHU_VERSION_MINOR 1

enum vhu_log_level {
	VHU_LOG_ERR = 0,
	VHU_LOG_WARN = 1,
	VHU_LOG_INFO = 2,
	VHU_LOG_DEBUG = 3,
};

/* Receives one formatted line, without a trailing newline. */
typedef void (*vhu_log_fn)(void *opaque, int level, const char *msg);

const char *vhu_log_level_name(int level);

#ifdef __cplusplus
}
#endif

#include <vhu/proto.h>
#include <vhu/virtq.h>
#include <vhu/backend.h>
#include <vhu/frontend.h>

#endif
