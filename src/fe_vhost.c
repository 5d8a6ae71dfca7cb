/* SPDX-License-Identifier: MIT */
/* The vhost ioctls shared by vhost-kernel and vhost-vdpa (linux/vhost.h). */
#include <errno.h>
#include <linux/vhost.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "fe_vhost.h"
#include "util.h"

int fe_vhost_ioctl(int fd, unsigned long req, void *arg, const char *name, const char *dev,
		   const struct logger *lg)
{
	int ret;

	do
		ret = ioctl(fd, req, arg);
	while (ret < 0 && errno == EINTR);
	if (ret < 0) {
		ret = -errno;
		log_err(lg, "%s on %s: %s", name, dev, strerror(-ret));
		return ret;
	}
	log_debug(lg, "%s on %s", name, dev);
	return 0;
}

int fe_vhost_set_vring_num(int fd, unsigned idx, unsigned num, const char *dev,
			   const struct logger *lg)
{
	struct vhost_vring_state s = { .index = idx, .num = num };
	return FE_VHOST_IOCTL(fd, VHOST_SET_VRING_NUM, &s, dev, lg);
}

int fe_vhost_set_vring_base(int fd, unsigned idx, uint32_t base, const char *dev,
			    const struct logger *lg)
{
	struct vhost_vring_state s = { .index = idx, .num = base };
	return FE_VHOST_IOCTL(fd, VHOST_SET_VRING_BASE, &s, dev, lg);
}

int fe_vhost_get_vring_base(int fd, unsigned idx, uint32_t *base, const char *dev,
			    const struct logger *lg)
{
	struct vhost_vring_state s = { .index = idx };
	int ret = FE_VHOST_IOCTL(fd, VHOST_GET_VRING_BASE, &s, dev, lg);

	if (!ret)
		*base = s.num;
	return ret;
}

int fe_vhost_set_vring_addr(int fd, unsigned idx, const struct vhu_vring_addr *a, const char *dev,
			    const struct logger *lg)
{
	struct vhost_vring_addr v = {
		.index = idx,
		.flags = a->flags,
		.desc_user_addr = a->desc,
		.used_user_addr = a->used,
		.avail_user_addr = a->avail,
		.log_guest_addr = a->log,
	};
	return FE_VHOST_IOCTL(fd, VHOST_SET_VRING_ADDR, &v, dev, lg);
}

int fe_vhost_set_vring_kick(int fd, unsigned idx, int efd, const char *dev, const struct logger *lg)
{
	struct vhost_vring_file f = { .index = idx, .fd = efd };
	return FE_VHOST_IOCTL(fd, VHOST_SET_VRING_KICK, &f, dev, lg);
}

int fe_vhost_set_vring_call(int fd, unsigned idx, int efd, const char *dev, const struct logger *lg)
{
	struct vhost_vring_file f = { .index = idx, .fd = efd };
	return FE_VHOST_IOCTL(fd, VHOST_SET_VRING_CALL, &f, dev, lg);
}

int fe_vhost_set_mem_table(int fd, const struct fe_mem *m, const char *dev, const struct logger *lg)
{
	/* One region after the header's flexible array: allocated whole (C11 has no struct with
	 * a flexible array inside another). */
	struct vhost_memory *t = calloc(1, sizeof(*t) + sizeof(t->regions[0]));
	int ret;

	if (!t)
		return -ENOMEM;
	t->nregions = 1;
	t->regions[0] = (struct vhost_memory_region){
		.guest_phys_addr = FE_MEM_GPA_BASE,
		.memory_size = m->size,
		.userspace_addr = (uint64_t)(uintptr_t)m->base,
	};
	ret = FE_VHOST_IOCTL(fd, VHOST_SET_MEM_TABLE, t, dev, lg);
	free(t);
	return ret;
}

int fe_vhost_backend_features(int fd, uint64_t want, uint64_t *got, const char *dev,
			      const struct logger *lg)
{
	uint64_t offered = 0, f;
	int ret;

	*got = 0;
	if (ioctl(fd, VHOST_GET_BACKEND_FEATURES, &offered) < 0) {
		if (errno == ENOTTY)
			return 0;
		ret = -errno;
		log_err(lg, "VHOST_GET_BACKEND_FEATURES on %s: %s", dev, strerror(-ret));
		return ret;
	}
	f = offered & want;
	ret = FE_VHOST_IOCTL(fd, VHOST_SET_BACKEND_FEATURES, &f, dev, lg);
	if (!ret)
		*got = f;
	return ret;
}
