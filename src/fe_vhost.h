/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the front-end's vhost ioctl transports (fe_kernel.c, fe_vdpa.c): every
 * ioctl goes through fe_vhost_ioctl(), which logs a failure with the ioctl's name and the
 * device, so that "VHOST_SET_MEM_TABLE on /dev/vhost-net: Bad address" is what the user reads.
 */
#ifndef VHU_FE_VHOST_H
#define VHU_FE_VHOST_H

#include <stdint.h>

#include "fe_mem.h"
#include "log.h"
#include "vhu/proto.h"

/* ioctl(fd, req, arg); 0 or -errno, a failure logged as "NAME on DEV: error". */
int fe_vhost_ioctl(int fd, unsigned long req, void *arg, const char *name, const char *dev,
		   const struct logger *lg);
#define FE_VHOST_IOCTL(fd, req, arg, dev, lg) fe_vhost_ioctl((fd), (req), (arg), #req, (dev), (lg))

/* The vring verbs on one device fd; idx is the ring's index on that fd. */
int fe_vhost_set_vring_num(int fd, unsigned idx, unsigned num, const char *dev,
			   const struct logger *lg);
int fe_vhost_set_vring_base(int fd, unsigned idx, uint32_t base, const char *dev,
			    const struct logger *lg);
int fe_vhost_get_vring_base(int fd, unsigned idx, uint32_t *base, const char *dev,
			    const struct logger *lg);
int fe_vhost_set_vring_addr(int fd, unsigned idx, const struct vhu_vring_addr *a, const char *dev,
			    const struct logger *lg);
int fe_vhost_set_vring_kick(int fd, unsigned idx, int efd, const char *dev,
			    const struct logger *lg);
int fe_vhost_set_vring_call(int fd, unsigned idx, int efd, const char *dev,
			    const struct logger *lg);
/* VHOST_SET_MEM_TABLE: the area as one region at FE_MEM_GPA_BASE. */
int fe_vhost_set_mem_table(int fd, const struct fe_mem *m, const char *dev,
			   const struct logger *lg);
/* VHOST_GET_BACKEND_FEATURES, then VHOST_SET_BACKEND_FEATURES with what is offered of want;
 * *got: the features set (0 when the device has none: -ENOTTY is not an error). */
int fe_vhost_backend_features(int fd, uint64_t want, uint64_t *got, const char *dev,
			      const struct logger *lg);

#endif
