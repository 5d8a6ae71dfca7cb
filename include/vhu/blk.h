/* SPDX-License-Identifier: MIT */
/*
 * virtio-blk device helpers: the request parser every block device needs ("Device Operation"
 * in the virtio-blk chapter: a header in the device-readable part, data, and the status byte
 * as the last device-writable byte), and its completion.
 *
 * Security model: nothing the driver wrote is trusted. The header and discard/write-zeroes
 * segments are copied once into private memory and only the copies are used; sizes, ranges,
 * directions and segment counts are checked before the device sees a request.
 *
 * Threading: both calls work on an element of one queue: call them on that queue's thread.
 */
#ifndef VHU_BLK_H
#define VHU_BLK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include <vhu/virtq.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VHU_BLK_SECTOR 512
/* Discard and write-zeroes requests carry exactly one segment: a device using this parser
 * sets max_discard_seg and max_write_zeroes_seg to 1 in its config space. */
#define VHU_BLK_MAX_DZ_SEG 1

enum vhu_blk_op {
	VHU_BLK_OP_NONE = 0,
	VHU_BLK_OP_READ,	 /* read len bytes at offset into iov */
	VHU_BLK_OP_WRITE,	 /* write iov (len bytes) at offset */
	VHU_BLK_OP_FLUSH,	 /* make completed writes durable */
	VHU_BLK_OP_GET_ID,	 /* already answered by the parser: complete with VIRTIO_BLK_S_OK */
	VHU_BLK_OP_DISCARD,	 /* [offset, offset + len) may be deallocated */
	VHU_BLK_OP_WRITE_ZEROES, /* [offset, offset + len) reads as zeroes; unmap: may dealloc. */
};

/* What the device is: the parser refuses requests outside it. */
struct vhu_blk_limits {
	uint64_t capacity; /* in 512-byte sectors (config space `capacity`) */
	/* Virtio feature word (bit numbers): VIRTIO_BLK_F_RO refuses writes, discard and
	 * write-zeroes (VIRTIO_BLK_S_IOERR); VIRTIO_BLK_F_DISCARD and VIRTIO_BLK_F_WRITE_ZEROES
	 * allow those requests (else VIRTIO_BLK_S_UNSUPP). Pass the offered features: a
	 * read-only device stays read-only whether the driver acked RO or not. */
	uint64_t features;
	/* Largest discard / write-zeroes segment in sectors (config max_discard_sectors,
	 * max_write_zeroes_sectors); 0 means no limit but the capacity. */
	uint32_t max_discard_sectors;
	uint32_t max_write_zeroes_sectors;
	/* GET_ID answer: up to 20 bytes (VIRTIO_BLK_ID_BYTES), NUL-padded; NULL is empty. */
	const char *serial;
	uint64_t reserved[4]; /* zero */
};

/* One parsed request. The iovecs point into the element's buffers: valid as long as they. */
struct vhu_blk_req {
	enum vhu_blk_op op;
	bool unmap;	 /* write-zeroes: VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP */
	uint64_t offset; /* bytes */
	uint64_t len;	 /* data bytes (read, write, GET_ID), or range length (discard, zeroes) */
	uint8_t *status; /* the last device-writable byte; NULL when there is none */
	unsigned niov;
	struct iovec iov[VHU_ELEM_MAX_IOV]; /* data: writable for read, readable for write */
};

/*
 * Parses popped element e into *r. Returns 0 when the device must act on r->op, or the
 * virtio-blk status to complete the request with at once (VIRTIO_BLK_S_IOERR for a malformed
 * or out-of-range request or a write to a read-only device, VIRTIO_BLK_S_UNSUPP for a type
 * the device does not do), or -EINVAL for a NULL argument. r->status is set whenever the
 * element has a writable byte, also on failure. GET_ID is answered here: the serial is
 * written into the buffer and r->len is its length.
 */
int vhu_blk_parse(const struct vhu_elem *e, const struct vhu_blk_limits *lim,
		  struct vhu_blk_req *r);

/*
 * Completes a request: writes status into its status byte (when it has one) and pushes e
 * with the bytes written (the status byte, plus r->len when a read or GET_ID succeeded).
 * Publish with vhu_virtq_flush().
 */
void vhu_blk_complete(struct vhu_virtq *vq, const struct vhu_elem *e, const struct vhu_blk_req *r,
		      uint8_t status);

#ifdef __cplusplus
}
#endif

#endif
