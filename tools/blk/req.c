/* SPDX-License-Identifier: MIT */
/*
 * virtio-blk request parsing ("Device Operation" in the virtio-blk chapter): the header in the
 * device-readable part, data, and the status byte as the last device-writable byte. Nothing
 * the driver wrote is trusted: sizes, ranges, directions and segment counts are checked
 * before any I/O is issued.
 */
#include <string.h>

#include "blk.h"

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
		size_t c = l - off < n - done ? l - off : n - done;
		memcpy((uint8_t *)dst + done, (uint8_t *)iov[i].iov_base + off, c);
		done += c;
		off = 0;
	}
	return done;
}

/* r->iov = iov[0..cnt) without its first `skip` bytes and its last `trim` bytes. */
static void iov_slice(struct blk_req *r, const struct iovec *iov, unsigned cnt, size_t skip,
		      size_t trim)
{
	size_t total = 0;

	for (unsigned i = 0; i < cnt; i++)
		total += iov[i].iov_len;
	size_t want = total - skip - trim;
	r->niov = 0;
	for (unsigned i = 0; i < cnt && want; i++) {
		size_t l = iov[i].iov_len;
		if (skip >= l) {
			skip -= l;
			continue;
		}
		size_t c = l - skip < want ? l - skip : want;
		r->iov[r->niov++] = (struct iovec){ (uint8_t *)iov[i].iov_base + skip, c };
		want -= c;
		skip = 0;
	}
}

static bool range_ok(const struct blk_limits *lim, uint64_t sector, uint64_t nsect)
{
	return sector <= lim->sectors && nsect <= lim->sectors - sector;
}

int blk_parse(const struct vhu_elem *e, const struct blk_limits *lim, const char *serial,
	      struct blk_req *r)
{
	const struct iovec *out = e->iov, *in = e->iov + e->out_num;
	struct virtio_blk_outhdr h;

	memset(r, 0, offsetof(struct blk_req, iov));
	r->niov = 0;
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

	switch (type) {
	case VIRTIO_BLK_T_IN:
		if (out_data || in_data % BLK_SECTOR ||
		    !range_ok(lim, sector, in_data / BLK_SECTOR))
			return VIRTIO_BLK_S_IOERR;
		r->op = OP_READ;
		r->offset = sector * BLK_SECTOR;
		r->len = in_data;
		iov_slice(r, in, e->in_num, 0, 1);
		return 0;
	case VIRTIO_BLK_T_OUT:
		if (lim->ro)
			return VIRTIO_BLK_S_IOERR;
		if (in_data || out_data % BLK_SECTOR ||
		    !range_ok(lim, sector, out_data / BLK_SECTOR))
			return VIRTIO_BLK_S_IOERR;
		r->op = OP_WRITE;
		r->offset = sector * BLK_SECTOR;
		r->len = out_data;
		iov_slice(r, out, e->out_num, sizeof(h), 0);
		return 0;
	case VIRTIO_BLK_T_FLUSH:
		if (out_data || in_data)
			return VIRTIO_BLK_S_IOERR;
		r->op = OP_FLUSH;
		return 0;
	case VIRTIO_BLK_T_GET_ID: {
		/* "the device ID string ... up to VIRTIO_BLK_ID_BYTES": NUL-padded. */
		char id[VIRTIO_BLK_ID_BYTES] = { 0 };
		if (out_data || in_data == 0)
			return VIRTIO_BLK_S_IOERR;
		size_t sl = strlen(serial);
		memcpy(id, serial, sl < sizeof(id) ? sl : sizeof(id));
		iov_slice(r, in, e->in_num, 0, 1);
		size_t done = 0;
		for (unsigned i = 0; i < r->niov && done < sizeof(id); i++) {
			size_t c = r->iov[i].iov_len < sizeof(id) - done ? r->iov[i].iov_len
									 : sizeof(id) - done;
			memcpy(r->iov[i].iov_base, id + done, c);
			done += c;
		}
		r->op = OP_GET_ID;
		r->len = done;
		return 0;
	}
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES: {
		bool dz = type == VIRTIO_BLK_T_WRITE_ZEROES;
		struct virtio_blk_discard_write_zeroes seg;
		if (!(dz ? lim->write_zeroes : lim->discard))
			return VIRTIO_BLK_S_UNSUPP;
		if (lim->ro)
			return VIRTIO_BLK_S_IOERR;
		/* One segment (max_discard_seg / max_write_zeroes_seg are 1). */
		if (in_data || out_data != sizeof(seg) * BLK_MAX_DZ_SEG)
			return VIRTIO_BLK_S_IOERR;
		iov_copy_out(out, e->out_num, sizeof(h), &seg, sizeof(seg));
		uint64_t s = le64toh(seg.sector);
		uint32_t n = le32toh(seg.num_sectors), fl = le32toh(seg.flags);
		if (n > BLK_MAX_DZ_SECT || !range_ok(lim, s, n))
			return VIRTIO_BLK_S_IOERR;
		/* "the unmap bit ... for discard commands, the device MUST ... reject" others. */
		if (fl & ~(dz ? VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP : 0u))
			return VIRTIO_BLK_S_UNSUPP;
		r->op = dz ? OP_WRITE_ZEROES : OP_DISCARD;
		r->offset = s * BLK_SECTOR;
		r->len = (uint64_t)n * BLK_SECTOR;
		r->unmap = fl & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP;
		return 0;
	}
	default:
		return VIRTIO_BLK_S_UNSUPP;
	}
}
