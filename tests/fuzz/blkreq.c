/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target on the library's virtio-blk request parser (src/blk.c, vhu_blk_parse) over
 * arbitrary element shapes: the input gives the numbers of readable and writable iovecs, each
 * iovec's length, the device limits, and the bytes the iovecs hold. Each iovec is its own heap
 * block of exactly its length, so a read or write past one is an ASan report. A request the parser
 * accepts then has its data iovecs and status byte touched, as the queue thread would.
 */
#include <stdlib.h>
#include <string.h>

#include <linux/virtio_blk.h>
#include <vhu/vhu.h>

struct fuzz_hdr {
	uint8_t out_num, in_num;
	uint8_t lim; /* bit 0 read-only, 1 discard, 2 write-zeroes */
	uint8_t serial_len;
	uint32_t sectors;
	uint16_t len[8];
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct vhu_elem e;
	static struct vhu_blk_req r;
	struct fuzz_hdr h;
	char serial[VIRTIO_BLK_ID_BYTES + 1];

	if (size < sizeof(h))
		return 0;
	memcpy(&h, data, sizeof(h));
	data += sizeof(h);
	size -= sizeof(h);
	memset(&e, 0, sizeof(e));
	/* Up to 8 iovecs with their own lengths (bit 7: up to VHU_ELEM_MAX_IOV, the rest
	 * repeating the last length). */
	e.out_num = h.out_num & 128 ? h.out_num % VHU_ELEM_MAX_IOV : h.out_num % 5;
	e.in_num = h.in_num & 128 ? h.in_num % VHU_ELEM_MAX_IOV : h.in_num % 5;
	unsigned total = e.out_num + e.in_num;
	if (total > VHU_ELEM_MAX_IOV)
		return 0;
	for (unsigned i = 0; i < total; i++) {
		size_t l = h.len[i < 8 ? i : 7] % 4097;
		uint8_t *b = malloc(l ? l : 1);
		size_t c = l < size ? l : size;
		memcpy(b, data, c);
		memset(b + c, 0, l - c);
		data += c;
		size -= c;
		e.iov[i] = (struct iovec){ b, l };
		if (i < e.out_num)
			e.out_len += (uint32_t)l;
		else
			e.in_len += (uint32_t)l;
	}
	struct vhu_blk_limits lim = {
		.capacity = h.sectors,
		.features = (h.lim & 1 ? 1ull << VIRTIO_BLK_F_RO : 0) |
			    (h.lim & 2 ? 1ull << VIRTIO_BLK_F_DISCARD : 0) |
			    (h.lim & 4 ? 1ull << VIRTIO_BLK_F_WRITE_ZEROES : 0),
		.max_discard_sectors = h.lim & 8 ? 0 : 1u << 20,
		.max_write_zeroes_sectors = h.lim & 8 ? 0 : 1u << 20,
	};
	size_t sl = h.serial_len % (sizeof(serial));
	memset(serial, 'S', sl);
	serial[sl] = 0;
	lim.serial = serial;
	int st = vhu_blk_parse(&e, &lim, &r);
	if (st == 0) {
		uint64_t sum = 0, len = 0;
		for (unsigned i = 0; i < r.niov; i++) {
			len += r.iov[i].iov_len;
			if (r.op == VHU_BLK_OP_READ)
				memset(r.iov[i].iov_base, 0x5a, r.iov[i].iov_len);
			else
				for (size_t k = 0; k < r.iov[i].iov_len; k++)
					sum += ((uint8_t *)r.iov[i].iov_base)[k];
		}
		if ((r.op == VHU_BLK_OP_READ || r.op == VHU_BLK_OP_WRITE) && r.len != 0 &&
		    (r.offset + r.len > lim.capacity * VHU_BLK_SECTOR || r.offset % VHU_BLK_SECTOR))
			abort(); /* the parser let an out-of-range or unaligned request through */
		if ((r.op == VHU_BLK_OP_READ || r.op == VHU_BLK_OP_WRITE) && len != r.len)
			abort(); /* the data iovecs do not add up to the request's length */
		(void)sum;
	}
	if (r.status)
		*r.status = (uint8_t)st;
	for (unsigned i = 0; i < total; i++)
		free(e.iov[i].iov_base);
	return 0;
}
