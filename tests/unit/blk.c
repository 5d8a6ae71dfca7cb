/* SPDX-License-Identifier: MIT */
/* The library's virtio-blk request parser (src/blk.c): every well-formed type, every malformed
 * shape, and the completion. */
#include <errno.h>
#include <linux/virtio_blk.h>
#include <stdarg.h>
#include <stdlib.h>

#include <vhu/vhu.h>

#include "t.h"

T_DEFINE;

#define F_DZ ((1ULL << VIRTIO_BLK_F_DISCARD) | (1ULL << VIRTIO_BLK_F_WRITE_ZEROES))
static const struct vhu_blk_limits lim = { .capacity = 2048, .features = F_DZ, .serial = "id" };
static uint8_t hdrbuf[64], data[8192], st[4];

/* An element: iovs given as (pointer, length) pairs, `out` of them readable. */
static void elem(struct vhu_elem *e, unsigned out, unsigned in, ...)
{
	va_list ap;

	memset(e, 0, sizeof(*e));
	va_start(ap, in);
	for (unsigned i = 0; i < out + in; i++) {
		e->iov[i].iov_base = va_arg(ap, void *);
		e->iov[i].iov_len = va_arg(ap, size_t);
		if (i < out)
			e->out_len += (uint32_t)e->iov[i].iov_len;
		else
			e->in_len += (uint32_t)e->iov[i].iov_len;
	}
	va_end(ap);
	e->out_num = out;
	e->in_num = in;
}

static void hdr(uint32_t type, uint64_t sector)
{
	struct virtio_blk_outhdr h = { .type = type, .sector = sector };
	memcpy(hdrbuf, &h, sizeof(h));
}

static int reads(void)
{
	struct vhu_elem e;
	struct vhu_blk_req r;

	hdr(VIRTIO_BLK_T_IN, 8);
	elem(&e, 1, 2, hdrbuf, (size_t)16, data, (size_t)4096, st, (size_t)1);
	ASSERT_EQ(vhu_blk_parse(&e, &lim, &r), 0);
	ASSERT_EQ(r.op, VHU_BLK_OP_READ);
	ASSERT_EQ(r.offset, 8 * 512);
	ASSERT_EQ(r.len, 4096);
	ASSERT_EQ(r.niov, 1);
	ASSERT_TRUE(r.status == st);
	/* data and status in one descriptor */
	elem(&e, 1, 1, hdrbuf, (size_t)16, data, (size_t)4097);
	ASSERT_EQ(vhu_blk_parse(&e, &lim, &r), 0);
	ASSERT_EQ(r.len, 4096);
	ASSERT_TRUE(r.status == data + 4096);
	ASSERT_EQ(r.iov[0].iov_len, 4096);
	/* the last sector is fine, one past it is not */
	hdr(VIRTIO_BLK_T_IN, 2040);
	elem(&e, 1, 2, hdrbuf, (size_t)16, data, (size_t)4096, st, (size_t)1);
	ASSERT_EQ(vhu_blk_parse(&e, &lim, &r), 0);
	hdr(VIRTIO_BLK_T_IN, 2041);
	ASSERT_EQ(vhu_blk_parse(&e, &lim, &r), VIRTIO_BLK_S_IOERR);
	hdr(VIRTIO_BLK_T_IN, ~0ull - 3); /* sector + count wraps */
	ASSERT_EQ(vhu_blk_parse(&e, &lim, &r), VIRTIO_BLK_S_IOERR);
	/* not a multiple of the sector size; readable data on a read */
	hdr(VIRTIO_BLK_T_IN, 0);
	elem(&e, 1, 2, hdrbuf, (size_t)16, data, (size_t)1000, st, (size_t)1);
	ASSERT_EQ(vhu_blk_parse(&e, &lim, &r), VIRTIO_BLK_S_IOERR);
	elem(&e, 2, 2, hdrbuf, (size_t)16, data, (size_t)512, data + 512, (size_t)512, st,
	     (size_t)1);
	ASSERT_EQ(vhu_blk_parse(&e, &lim, &r), VIRTIO_BLK_S_IOERR);
	return 0;
}

static int writes(void)
{
	struct vhu_elem e;
	struct vhu_blk_req r;
	struct vhu_blk_limits ro = lim;

	/* header and data in one readable descriptor */
	hdr(VIRTIO_BLK_T_OUT, 1);
	memcpy(data, hdrbuf, 16);
	elem(&e, 1, 1, data, (size_t)(16 + 1024), st, (size_t)1);
	ASSERT_EQ(vhu_blk_parse(&e, &lim, &r), 0);
	ASSERT_EQ(r.op, VHU_BLK_OP_WRITE);
	ASSERT_EQ(r.offset, 512);
	ASSERT_EQ(r.len, 1024);
	ASSERT_TRUE(r.iov[0].iov_base == data + 16);
	/* read-only device */
	ro.features |= 1ULL << VIRTIO_BLK_F_RO;
	ASSERT_EQ(vhu_blk_parse(&e, &ro, &r), VIRTIO_BLK_S_IOERR);
	/* writable data besides the status */
	elem(&e, 1, 2, data, (size_t)(16 + 1024), data + 2048, (size_t)512, st, (size_t)1);
	ASSERT_EQ(vhu_blk_parse(&e, &lim, &r), VIRTIO_BLK_S_IOERR);
	return 0;
}

static int malformed(void)
{
	struct vhu_elem e;
	struct vhu_blk_req r;

	/* no writable byte: no status to write */
	hdr(VIRTIO_BLK_T_IN, 0);
	elem(&e, 2, 0, hdrbuf, (size_t)16, data, (size_t)512);
	ASSERT_EQ(vhu_blk_parse(&e, &lim, &r), VIRTIO_BLK_S_IOERR);
	ASSERT_TRUE(r.status == NULL);
	/* short header */
	elem(&e, 1, 1, hdrbuf, (size_t)8, st, (size_t)1);
	ASSERT_EQ(vhu_blk_parse(&e, &lim, &r), VIRTIO_BLK_S_IOERR);
	ASSERT_TRUE(r.status == st);
	/* header split over two descriptors is fine */
	hdr(VIRTIO_BLK_T_FLUSH, 0);
	elem(&e, 2, 1, hdrbuf, (size_t)5, hdrbuf + 5, (size_t)11, st, (size_t)1);
	ASSERT_EQ(vhu_blk_parse(&e, &lim, &r), 0);
	ASSERT_EQ(r.op, VHU_BLK_OP_FLUSH);
	/* flush with data */
	elem(&e, 1, 2, hdrbuf, (size_t)16, data, (size_t)512, st, (size_t)1);
	ASSERT_EQ(vhu_blk_parse(&e, &lim, &r), VIRTIO_BLK_S_IOERR);
	/* unknown type */
	hdr(77, 0);
	elem(&e, 1, 1, hdrbuf, (size_t)16, st, (size_t)1);
	ASSERT_EQ(vhu_blk_parse(&e, &lim, &r), VIRTIO_BLK_S_UNSUPP);
	return 0;
}

static int get_id(void)
{
	struct vhu_elem e;
	struct vhu_blk_req r;

	hdr(VIRTIO_BLK_T_GET_ID, 0);
	memset(data, 0xaa, 64);
	elem(&e, 1, 2, hdrbuf, (size_t)16, data, (size_t)VIRTIO_BLK_ID_BYTES, st, (size_t)1);
	struct vhu_blk_limits l7 = lim;
	l7.serial = "disk-7";
	ASSERT_EQ(vhu_blk_parse(&e, &l7, &r), 0);
	ASSERT_EQ(r.op, VHU_BLK_OP_GET_ID);
	ASSERT_OK(memcmp(data, "disk-7\0\0\0\0\0\0\0\0\0\0\0\0\0\0", VIRTIO_BLK_ID_BYTES));
	ASSERT_EQ(r.len, VIRTIO_BLK_ID_BYTES);
	return 0;
}

static int discard_zeroes(void)
{
	struct vhu_elem e;
	struct vhu_blk_req r;
	struct virtio_blk_discard_write_zeroes seg[2] = { { 16, 8, 0 }, { 64, 8, 0 } };
	struct vhu_blk_limits none = lim;

	hdr(VIRTIO_BLK_T_DISCARD, 0);
	elem(&e, 2, 1, hdrbuf, (size_t)16, seg, sizeof(seg[0]), st, (size_t)1);
	ASSERT_EQ(vhu_blk_parse(&e, &lim, &r), 0);
	ASSERT_EQ(r.op, VHU_BLK_OP_DISCARD);
	ASSERT_EQ(r.offset, 16 * 512);
	ASSERT_EQ(r.len, 8 * 512);
	/* two segments: more than max_discard_seg */
	elem(&e, 2, 1, hdrbuf, (size_t)16, seg, sizeof(seg), st, (size_t)1);
	ASSERT_EQ(vhu_blk_parse(&e, &lim, &r), VIRTIO_BLK_S_IOERR);
	/* "unmap" on a discard: UNSUPP */
	seg[0].flags = VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP;
	elem(&e, 2, 1, hdrbuf, (size_t)16, seg, sizeof(seg[0]), st, (size_t)1);
	ASSERT_EQ(vhu_blk_parse(&e, &lim, &r), VIRTIO_BLK_S_UNSUPP);
	/* write zeroes may carry it */
	hdr(VIRTIO_BLK_T_WRITE_ZEROES, 0);
	ASSERT_EQ(vhu_blk_parse(&e, &lim, &r), 0);
	ASSERT_EQ(r.op, VHU_BLK_OP_WRITE_ZEROES);
	ASSERT_TRUE(r.unmap);
	/* unknown flag, range past the end, feature not offered */
	seg[0].flags = 4;
	ASSERT_EQ(vhu_blk_parse(&e, &lim, &r), VIRTIO_BLK_S_UNSUPP);
	seg[0] = (struct virtio_blk_discard_write_zeroes){ 2047, 2, 0 };
	ASSERT_EQ(vhu_blk_parse(&e, &lim, &r), VIRTIO_BLK_S_IOERR);
	none.features &= ~(1ULL << VIRTIO_BLK_F_WRITE_ZEROES);
	seg[0] = (struct virtio_blk_discard_write_zeroes){ 0, 1, 0 };
	ASSERT_EQ(vhu_blk_parse(&e, &none, &r), VIRTIO_BLK_S_UNSUPP);
	/* the device's segment limit; a read-only device refuses to zero */
	none = lim;
	none.max_write_zeroes_sectors = 4;
	seg[0] = (struct virtio_blk_discard_write_zeroes){ 0, 4, 0 };
	ASSERT_EQ(vhu_blk_parse(&e, &none, &r), 0);
	seg[0].num_sectors = 5;
	ASSERT_EQ(vhu_blk_parse(&e, &none, &r), VIRTIO_BLK_S_IOERR);
	none = lim;
	none.features |= 1ULL << VIRTIO_BLK_F_RO;
	seg[0].num_sectors = 1;
	ASSERT_EQ(vhu_blk_parse(&e, &none, &r), VIRTIO_BLK_S_IOERR);
	ASSERT_EQ(vhu_blk_parse(NULL, &lim, &r), -EINVAL);
	return 0;
}

int main(void)
{
	RUN(reads);
	RUN(writes);
	RUN(malformed);
	RUN(get_id);
	RUN(discard_zeroes);
	T_MAIN_END();
}
