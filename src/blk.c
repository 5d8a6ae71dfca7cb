/* SPDX-License-Identifier: MIT */
/*
 * virtio-blk request parsing ("Device Operation" in the virtio-blk chapter): the header in the
 * device-readable part, data, and the status byte as the last device-writable byte. Nothing
 * the driver wrote is trusted: the header and segments are copied once into private memory,
 * and sizes, ranges, directions and segment counts are checked before any I/O is issued.
 */
#include <endian.h>
#include <errno.h>
#include <linux/virtio_blk.h>
#include <stddef.h>
#include <string.h>

#include "util.h"
#include "vhu/blk.h"
#include "vhu/virtq.h"

/* Largest discard / write-zeroes segment when the device gives no limit: 2 GiB. */
#define DZ_SECT_DEFAULT (1u << 22)

/* Copies n bytes starting at byte `off` of iov[0..cnt) into dst. Returns bytes copied. */
static size_t iov_copy_out(const struct iovec *iov, unsigned cnt, size_t off, void *dst, size_t n)
{
	size_t done = 0;

	for (unsigned i = 0; i < cnt && done < n; i++) {
		size_t l = iov[i].iov_len;
		if (off >= l) {
			off -= l;
			continue;
		}
		size_t c = MIN(l - off, n - done);
		memcpy((uint8_t *)dst + done, (uint8_t *)iov[i].iov_base + off, c);
		done += c;
		off = 0;
	}
	return done;
}

/* r->iov = iov[0..cnt) without its first `skip` bytes and its last `trim` bytes; the caller
 * checked that the iovecs hold at least skip + trim bytes. */
static void iov_slice(struct vhu_blk_req *r, const struct iovec *iov, unsigned cnt, size_t skip,
		      size_t trim)
{
	size_t total = 0;

	for (unsigned i = 0; i < cnt; i++)
		total += iov[i].iov_len;
	size_t want = total - skip - trim;
	r->niov = 0;
	for (unsigned i = 0; i < cnt && want && r->niov < VHU_ELEM_MAX_IOV; i++) {
		size_t l = iov[i].iov_len;
		if (skip >= l) {
			skip -= l;
			continue;
		}
		size_t c = MIN(l - skip, want);
		r->iov[r->niov++] = (struct iovec){ (uint8_t *)iov[i].iov_base + skip, c };
		want -= c;
		skip = 0;
	}
}

static bool range_ok(const struct vhu_blk_limits *lim, uint64_t sector, uint64_t nsect)
{
	return sector <= lim->capacity && nsect <= lim->capacity - sector;
}

/* GET_ID: "the device ID string ... up to VIRTIO_BLK_ID_BYTES", NUL-padded. */
static void write_id(struct vhu_blk_req *r, const char *serial)
{
	char id[VIRTIO_BLK_ID_BYTES] = { 0 };
	size_t done = 0;

	if (serial)
		memcpy(id, serial, strnlen(serial, sizeof(id)));
	for (unsigned i = 0; i < r->niov && done < sizeof(id); i++) {
		size_t c = MIN(r->iov[i].iov_len, sizeof(id) - done);
		memcpy(r->iov[i].iov_base, id + done, c);
		done += c;
	}
	r->len = done;
}

static int parse_dz(const struct vhu_elem *e, const struct vhu_blk_limits *lim, uint32_t type,
		    uint64_t out_data, uint64_t in_data, struct vhu_blk_req *r)
{
	bool dz = type == VIRTIO_BLK_T_WRITE_ZEROES;
	struct virtio_blk_discard_write_zeroes seg;
	uint32_t max = dz ? lim->max_write_zeroes_sectors : lim->max_discard_sectors;

	if (!has_bit(lim->features, dz ? VIRTIO_BLK_F_WRITE_ZEROES : VIRTIO_BLK_F_DISCARD))
		return VIRTIO_BLK_S_UNSUPP;
	if (has_bit(lim->features, VIRTIO_BLK_F_RO))
		return VIRTIO_BLK_S_IOERR;
	if (in_data || out_data != sizeof(seg) * VHU_BLK_MAX_DZ_SEG)
		return VIRTIO_BLK_S_IOERR;
	iov_copy_out(e->iov, e->out_num, sizeof(struct virtio_blk_outhdr), &seg, sizeof(seg));
	uint64_t s = le64toh(seg.sector);
	uint32_t n = le32toh(seg.num_sectors), fl = le32toh(seg.flags);
	if (n > (max ? max : DZ_SECT_DEFAULT) || !range_ok(lim, s, n))
		return VIRTIO_BLK_S_IOERR;
	/* "the unmap bit ... for discard commands, the device MUST ... reject" others. */
	if (fl & ~(dz ? VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP : 0u))
		return VIRTIO_BLK_S_UNSUPP;
	r->op = dz ? VHU_BLK_OP_WRITE_ZEROES : VHU_BLK_OP_DISCARD;
	r->offset = s * VHU_BLK_SECTOR;
	r->len = (uint64_t)n * VHU_BLK_SECTOR;
	r->unmap = fl & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP;
	return 0;
}

VHU_EXPORT int vhu_blk_parse(const struct vhu_elem *e, const struct vhu_blk_limits *lim,
			     struct vhu_blk_req *r)
{
	struct virtio_blk_outhdr h;

	if (!e || !lim || !r)
		return -EINVAL;
	const struct iovec *out = e->iov, *in = e->iov + e->out_num;
	memset(r, 0, offsetof(struct vhu_blk_req, iov));
	/* "the final byte ... status": the last byte of the device-writable part */
	for (unsigned i = e->in_num; i-- > 0;) {
		if (in[i].iov_len) {
			r->status = (uint8_t *)in[i].iov_base + in[i].iov_len - 1;
			break;
		}
	}
	if (!r->status || e->out_len < sizeof(h))
		return VIRTIO_BLK_S_IOERR;
	iov_copy_out(out, e->out_num, 0, &h, sizeof(h));
	uint32_t type = le32toh(h.type);
	uint64_t sector = le64toh(h.sector);
	uint64_t out_data = e->out_len - sizeof(h), in_data = e->in_len - 1u;
	bool ro = has_bit(lim->features, VIRTIO_BLK_F_RO);

	switch (type) {
	case VIRTIO_BLK_T_IN:
		if (out_data || in_data % VHU_BLK_SECTOR ||
		    !range_ok(lim, sector, in_data / VHU_BLK_SECTOR))
			return VIRTIO_BLK_S_IOERR;
		r->op = VHU_BLK_OP_READ;
		r->offset = sector * VHU_BLK_SECTOR;
		r->len = in_data;
		iov_slice(r, in, e->in_num, 0, 1);
		return 0;
	case VIRTIO_BLK_T_OUT:
		if (ro || in_data || out_data % VHU_BLK_SECTOR ||
		    !range_ok(lim, sector, out_data / VHU_BLK_SECTOR))
			return VIRTIO_BLK_S_IOERR;
		r->op = VHU_BLK_OP_WRITE;
		r->offset = sector * VHU_BLK_SECTOR;
		r->len = out_data;
		iov_slice(r, out, e->out_num, sizeof(h), 0);
		return 0;
	case VIRTIO_BLK_T_FLUSH:
		if (out_data || in_data)
			return VIRTIO_BLK_S_IOERR;
		r->op = VHU_BLK_OP_FLUSH;
		return 0;
	case VIRTIO_BLK_T_GET_ID:
		if (out_data || in_data == 0)
			return VIRTIO_BLK_S_IOERR;
		iov_slice(r, in, e->in_num, 0, 1);
		write_id(r, lim->serial);
		r->op = VHU_BLK_OP_GET_ID;
		return 0;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		return parse_dz(e, lim, type, out_data, in_data, r);
	default:
		return VIRTIO_BLK_S_UNSUPP;
	}
}

VHU_EXPORT void vhu_blk_complete(struct vhu_virtq *vq, const struct vhu_elem *e,
				 const struct vhu_blk_req *r, uint8_t status)
{
	uint32_t written = 0;

	if (r->status) {
		*r->status = status;
		written = 1;
		if (status == VIRTIO_BLK_S_OK &&
		    (r->op == VHU_BLK_OP_READ || r->op == VHU_BLK_OP_GET_ID))
			written += (uint32_t)r->len;
		/* Dirty log: the status byte ends the buffer, past what `written` covers from the
		 * start; and a read that failed may still have written part of its data. */
		vhu_virtq_log_write(vq, r->status, 1);
		if (status != VIRTIO_BLK_S_OK && r->op == VHU_BLK_OP_READ)
			for (unsigned i = 0; i < r->niov && i < VHU_ELEM_MAX_IOV; i++)
				vhu_virtq_log_write(vq, r->iov[i].iov_base, r->iov[i].iov_len);
	}
	vhu_virtq_push(vq, e, written);
}
