/* SPDX-License-Identifier: MIT */
/* vhu-blk internals: the device, its request parser, and one I/O thread per queue. */
#ifndef VHU_BLK_H
#define VHU_BLK_H

#include <linux/virtio_blk.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include <vhu/vhu.h>

#define BLK_MAX_QUEUES	16
#define BLK_SECTOR	512
#define BLK_MAX_DZ_SEG	1		       /* discard / write-zeroes segments per request */
#define BLK_MAX_DZ_SECT (1u << 22)	       /* sectors per discard / write-zeroes segment */
#define BLK_SEG_MAX	(VHU_ELEM_MAX_IOV - 2) /* data segments: all but header and status */
#define BLK_SIZE_MAX	(1u << 20)	       /* bytes per data segment */

/* ---- request parsing (req.c), no I/O: unit-tested on its own ---- */

enum blk_op { OP_NONE, OP_READ, OP_WRITE, OP_FLUSH, OP_GET_ID, OP_DISCARD, OP_WRITE_ZEROES };

struct blk_req {
	enum blk_op op;
	uint64_t offset; /* bytes */
	uint64_t len;	 /* data bytes (read/write), or range length (discard/zeroes) */
	bool unmap;	 /* write-zeroes may deallocate */
	uint8_t *status; /* the last device-writable byte, NULL when there is none */
	struct iovec iov[VHU_ELEM_MAX_IOV]; /* data (read: writable, write: readable) */
	unsigned niov;
};

struct blk_limits {
	uint64_t sectors;
	bool ro;
	bool discard, write_zeroes;
};

/*
 * Parses one popped element. Returns 0 with r filled when I/O is needed (or, for GET_ID and
 * nothing-to-do cases, already done), or a virtio-blk status to complete with at once
 * (VIRTIO_BLK_S_IOERR for a malformed or out-of-range request, VIRTIO_BLK_S_UNSUPP for a type
 * the device does not do). r->status is set whenever the element has a writable byte.
 */
int blk_parse(const struct vhu_elem *e, const struct blk_limits *lim, const char *serial,
	      struct blk_req *r);

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
	unsigned nqueues;
	unsigned poll_us; /* adaptive polling window of the queue threads */
	char serial[VIRTIO_BLK_ID_BYTES + 1];
	struct blk_limits lim;
	struct vhu_backend *be;
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
