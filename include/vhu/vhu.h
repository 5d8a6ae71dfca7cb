/* SPDX-License-Identifier: MIT */
/*
 * vhu: a vhost-user toolkit. Umbrella header; include this one.
 *
 * Every function returns 0 (or a count) on success and a negative errno on failure, unless
 * its comment says otherwise. The library never prints, exits or aborts: it reports through
 * return values and the log callback an application installs.
 *
 * Objects are independent: two back-ends, two front-ends, or a back-end and a front-end may
 * be used from different threads at the same time; the library has no global mutable state
 * besides the opt-in signal guards (vhu_sigbus_guard_install, vhu_eventfd_guard_install).
 * What one object allows from which thread is stated in its header: backend.h (dispatch
 * thread and queue threads), virtq.h, frontend.h.
 */
#ifndef VHU_VHU_H
#define VHU_VHU_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version of the headers; vhu_version*() give the library's (they differ when a program
 * runs against another build of libvhu.so.0 than it was compiled with). */
#define VHU_VERSION_MAJOR 0
#define VHU_VERSION_MINOR 1

/* The library's version: "MAJOR.MINOR.PATCH" (static storage), and its parts. */
const char *vhu_version(void);
int vhu_version_major(void);
int vhu_version_minor(void);

/* Is virtio feature bit `bit` (a bit number, as in <linux/virtio_config.h>, never a mask) set
 * in the feature word? False for bit >= 64. */
static inline bool vhu_has_feature(uint64_t features, unsigned bit)
{
	return bit < 64 && ((features >> bit) & 1);
}

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
#include <vhu/net.h>
#include <vhu/blk.h>
#include <vhu/vduse.h>

#endif
