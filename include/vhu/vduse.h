/* SPDX-License-Identifier: MIT */
/*
 * The device side of VDUSE (vDPA Device in Userspace, Linux 5.15+): the same device that
 * serves vhost-user (struct vhu_device_ops, the rings of virtq.h) served to the kernel's vDPA
 * bus instead. vhu_vduse_new() creates /dev/vduse/NAME (VDUSE_CREATE_DEV with the device's
 * features and config space); `vdpa dev add name NAME mgmtdev vduse` then makes a vDPA
 * device of it, bound to virtio_vdpa (a kernel driver: a /dev/vdX) or to vhost_vdpa (a
 * /dev/vhost-vdpa-N for a VM or vhu-fe).
 *
 * The kernel's requests (read from vhu_vduse_fd()): SET_STATUS (DRIVER_OK starts the queues
 * with the addresses VDUSE_VQ_GET_INFO gives; a status without it stops them), GET_VQ_STATE
 * (the queue is stopped and its position returned), UPDATE_IOTLB (mappings in the range are
 * dropped, with the queues stopped meanwhile). Buffers and rings are IOVAs: a queue thread
 * maps each IOVA range the first time it touches it (VDUSE_IOTLB_GET_FD, then mmap of that
 * fd), and the mappings go at the next UPDATE_IOTLB or reset. Interrupts are injected with
 * VDUSE_VQ_INJECT_IRQ from vhu_virtq_flush(); kicks come on an eventfd (vhu_virtq_kick_fd).
 *
 * Security model: the kernel is trusted more than a vhost-user front-end, but its messages
 * are still checked (queue indices, ring sizes, IOVA ranges and what VDUSE_IOTLB_GET_FD
 * returns); ring contents come from the driver and are checked as for vhost-user. Every ioctl
 * that fails is logged with its name and the device's name.
 *
 * Threads: as for a vhu_backend (backend.h): vhu_vduse_*() and every vhu_device_ops callback
 * on one dispatch thread; a started queue on its own thread with vhu_virtq_*() and
 * vhu_blk_*() only.
 *
 * Lifetime: vhu_vduse_free() stops the queues and destroys the VDUSE device. The kernel
 * refuses that while a vDPA device uses it (`vdpa dev del NAME` first): the device is then
 * left behind (logged), and the next vhu_vduse_new() of the same name destroys it once its
 * vDPA device is gone. A process that dies leaves it too, to the same effect.
 */
#ifndef VHU_VDUSE_H
#define VHU_VDUSE_H

#include <stdint.h>

#include <vhu/backend.h>

#ifdef __cplusplus
extern "C" {
#endif

struct vhu_vduse;
struct vhu_device_ops;
struct vhu_virtq;

struct vhu_vduse_config {
	uint32_t size;	    /* sizeof(struct vhu_vduse_config) */
	const char *name;   /* /dev/vduse/NAME: 1 to 255 bytes, no '/' */
	uint32_t device_id; /* virtio device id (VIRTIO_ID_BLOCK; the kernel allows blk, net, fs) */
	uint32_t vendor_id;
	uint32_t nvqs;	      /* queues, 1 to 256 */
	uint16_t queue_size;  /* largest ring a driver may set up; 0: 256 */
	uint32_t config_size; /* config space bytes, read once with ops->get_config */
};

/*
 * Creates the VDUSE device (ops->features, VIRTIO_F_ACCESS_PLATFORM added: VDUSE requires it;
 * ops->get_config gives the config space) and opens it. A device of that name left by a
 * process that died is destroyed first when no vDPA device uses it; -EEXIST when one does
 * (or another process serves it). -ENODEV when /dev/vduse/control is missing (modprobe
 * vduse). ops and cfg are copied; dev must live until vhu_vduse_free().
 */
int vhu_vduse_new(struct vhu_vduse **vd, const struct vhu_vduse_config *cfg,
		  const struct vhu_device_ops *ops, void *dev);
/* Stops the queues, unmaps, closes, and destroys the VDUSE device (VDUSE_DESTROY_DEV). NULL
 * is fine. */
void vhu_vduse_free(struct vhu_vduse *vd);
/* The device fd: poll it for input and call vhu_vduse_dispatch(). */
int vhu_vduse_fd(const struct vhu_vduse *vd);
/* Handles the kernel's pending requests without waiting. 0, or -errno when the device is
 * unusable (the kernel marked it broken after a request timed out: -EIO). */
int vhu_vduse_dispatch(struct vhu_vduse *vd);
/* Negotiated features (valid once the driver set FEATURES_OK). */
uint64_t vhu_vduse_features(const struct vhu_vduse *vd);
struct vhu_virtq *vhu_vduse_virtq(struct vhu_vduse *vd, unsigned index);
/* The config space changed: read again with ops->get_config, given to the kernel
 * (VDUSE_DEV_SET_CONFIG) and signalled to the driver (VDUSE_DEV_INJECT_CONFIG_IRQ; -EINVAL
 * before DRIVER_OK, when the driver reads it at probe anyway). */
int vhu_vduse_config_changed(struct vhu_vduse *vd);

#ifdef __cplusplus
}
#endif

#endif
