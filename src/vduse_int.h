/* SPDX-License-Identifier: MIT */
/* vduse.c's test seam (tests/unit/vduse.c): the object around an fd the caller opened (a
 * socketpair standing for /dev/vduse/NAME), with no control device: nothing is created, and
 * vhu_vduse_free() closes fd and destroys nothing. Not exported. */
#ifndef VHU_VDUSE_INT_H
#define VHU_VDUSE_INT_H

#include "vhu/vduse.h"

int vduse_new_on_fd(struct vhu_vduse **out, const struct vhu_vduse_config *cfg,
		    const struct vhu_device_ops *ops, void *dev, int fd);

#endif
