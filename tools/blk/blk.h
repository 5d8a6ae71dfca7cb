/* SPDX-License-Identifier: MIT */
/* vhu-blk internals: the device and one I/O thread per queue (requests: vhu_blk_parse()). */
#ifndef VHU_BLK_TOOL_H
#define VHU_BLK_TOOL_H

#include <linux/virtio_blk.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include <vhu/vhu.h>

#define BLK_MAX_QUEUES	16
#define BLK_SECTOR	VHU_BLK_SECTOR
#define BLK_MAX_DZ_SEG	VHU_BLK_MAX_DZ_SEG     /* discard / write-zeroes segments per request */
#define BLK_MAX_DZ_SECT (1u << 22)	       /* sectors per discard / write-zeroes segment */
#define BLK_SEG_MAX	(VHU_ELEM_MAX_IOV - 2) /* data segments: all but header and status */
#define BLK_SIZE_MAX	(1u << 20)	       /* bytes per data segment */

/* ---- the device ---- */

struct bqueue;

struct blkdev {
	int fd;		 /* image, O_DIRECT when the file system allows it, else buffered */
	int fd_buffered; /* the same image without O_DIRECT, for unaligned requests */
	unsigned dio_align;
	bool null; /* --null: complete without touching storage */
	bool ro;
	bool wce;	   /* write-back cache (CONFIG_WCE); writethrough uses RWF_DSYNC */
	bool wce_initial;  /* writeback's initial value (--writethrough: 0) */
	int64_t wce_feats; /* CONFIG_WCE and FLUSH as last negotiated; -1: none since reset */
	uint64_t size;
	/* Sectors: the config space's capacity and the parser's limit. SIGHUP changes it while
	 * queue threads run (atomic loads and stores); lim.capacity is not used. */
	uint64_t capacity;
	unsigned nqueues;
	unsigned poll_us; /* adaptive polling window of the queue threads */
	char serial[VIRTIO_BLK_ID_BYTES + 1];
	struct vhu_blk_limits lim;
	struct vhu_backend *be;
	struct vhu_vduse *vduse; /* --vduse: the VDUSE device instead of be */
	struct vhu_device_ops ops;
	struct bqueue *q[BLK_MAX_QUEUES];
	int broken_fd; /* eventfd: a queue thread found its ring broken */
	int verbose;
};

/* queue.c: an I/O thread per started queue. */
int bqueue_start(struct blkdev *d, struct vhu_virtq *vq);
void bqueue_stop(struct blkdev *d, struct vhu_virtq *vq);
/* SET_VRING_ENABLE: a disabled queue holds its requests (pops none) until enabled again. */
void bqueue_enable(struct blkdev *d, struct vhu_virtq *vq, bool enabled);
void bqueue_print_stats(struct blkdev *d);
/* A started queue found its ring broken (the connection should be dropped). Main thread. */
bool bqueue_any_broken(struct blkdev *d);

void blk_log(void *opaque, int level, const char *msg);

#endif
