/* SPDX-License-Identifier: MIT */
/* The library's version, as meson's project() gives it (VHU_VERSION_STRING, -D from meson). */
#include "util.h"
#include "vhu/vhu.h"

#if !defined(VHU_VERSION_STRING) || !defined(VHU_PROJECT_MAJOR) || !defined(VHU_PROJECT_MINOR)
#error "meson passes VHU_VERSION_STRING, VHU_PROJECT_MAJOR and VHU_PROJECT_MINOR"
#endif
/* The header's version and meson's project version are kept in step by hand: catch a bump
 * of one without the other at build time. */
#if VHU_PROJECT_MAJOR != VHU_VERSION_MAJOR || VHU_PROJECT_MINOR != VHU_VERSION_MINOR
#error "include/vhu/vhu.h VHU_VERSION_MAJOR/MINOR differ from meson.build's project version"
#endif

VHU_EXPORT const char *vhu_version(void)
{
	return VHU_VERSION_STRING;
}

VHU_EXPORT int vhu_version_major(void)
{
	return VHU_PROJECT_MAJOR;
}

VHU_EXPORT int vhu_version_minor(void)
{
	return VHU_PROJECT_MINOR;
}
