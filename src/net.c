/* SPDX-License-Identifier: MIT */
/*
 * virtio-net device helpers: header size and the receive path ("Receiving Packets" in the
 * virtio-net chapter), with mergeable receive buffers.
 */
#include <endian.h>
#include <errno.h>
#include <linux/virtio_config.h>
#include <linux/virtio_net.h>
#include <string.h>

#include "ring.h"
#include "util.h"
#include "vhu/net.h"

VHU_EXPORT size_t vhu_net_hdr_len(uint64_t features)
{
	/* "Device Operation": num_buffers is in the header with VERSION_1 or MRG_RXBUF. */
	if (has_bit(features, VIRTIO_F_VERSION_1) || has_bit(features, VIRTIO_NET_F_MRG_RXBUF))
		return sizeof(struct virtio_net_hdr_mrg_rxbuf);
	return sizeof(struct virtio_net_hdr);
}

/* How far ahead of the next pop vhu_net_rx prefetches a buffer: 4 buffers, about a sender's
 * burst of 32 frames copied with a quarter of it in flight, and measured ahead of 0 (no
 * prefetch) in the loopback benchmark (docs/TESTING.md). */
#define RX_AHEAD 4

/* A cursor over source bytes: the header first, then the frame's iovecs. */
struct src {
	const uint8_t *hdr;
	size_t hdr_left;
	const struct iovec *iov;
	unsigned niov, i;
	size_t off;
};

/* The header to write into h (zeroed by the caller): hdr's hlen bytes (none: zeroes), with
 * num_buffers set to nb. */
static void hdr_fill(uint8_t *h, const void *hdr, uint32_t hlen, uint16_t nb)
{
	if (hdr)
		memcpy(h, hdr, hlen);
	/* num_buffers (le16 with VERSION_1; the legacy header has no such field unless MRG_RXBUF
	 * is negotiated, and then the 12-byte header is used too). */
	if (hlen == sizeof(struct virtio_net_hdr_mrg_rxbuf)) {
		uint16_t n = htole16(nb);
		memcpy(h + offsetof(struct virtio_net_hdr_mrg_rxbuf, num_buffers), &n, sizeof(n));
	}
}

/*
 * Writes the n header bytes h at dst, a driver's receive buffer, where they differ from what
 * is there. A driver that keeps its receive buffers' headers (DPDK's virtio PMD: in the mbuf's
 * headroom, the line before the frame's when the frame starts on a line) finds the same
 * header there frame after frame: num_buffers 1, no flags, no GSO. Left alone, the line stays
 * shared by both CPUs and the driver's read of num_buffers hits its cache, as DPDK's vhost does
 * it (each field assigned unless equal). Written every time, the line went to the device's
 * CPU and back for every frame: testpmd's virtio-user receive path spent 14 % of its time on
 * that read with the CPUs far apart (under 1.5 % against net_vhost), and vhu-net --loopback
 * ran at 0.80 of net_vhost there (docs/TESTING.md). The bytes are read only to decide the
 * store; a driver that changes a buffer it posted gets its own bytes back. Under a vIOMMU the
 * buffer may be mapped write-only: the read reveals nothing, since the buffer ends holding h
 * either way.
 */
static inline void hdr_store(uint8_t *dst, const uint8_t *h, size_t n)
{
	if (memcmp(dst, h, n))
		memcpy(dst, h, n);
}

/* Copies up to `room` bytes from s into the writable iovecs of e at byte offset 0.
 * Returns the bytes written. */
static uint32_t fill_elem(const struct vhu_elem *e, struct src *s, uint32_t room)
{
	uint32_t w = 0;

	for (unsigned k = e->out_num; k < e->out_num + e->in_num && w < room; k++) {
		uint8_t *dst = e->iov[k].iov_base;
		size_t dl = MIN(e->iov[k].iov_len, (size_t)(room - w));
		while (dl) {
			const uint8_t *from;
			size_t avail;
			if (s->hdr_left) {
				from = s->hdr;
				avail = s->hdr_left;
			} else {
				while (s->i < s->niov && s->off == s->iov[s->i].iov_len) {
					s->i++;
					s->off = 0;
				}
				if (s->i == s->niov)
					return w;
				from = (const uint8_t *)s->iov[s->i].iov_base + s->off;
				avail = s->iov[s->i].iov_len - s->off;
			}
			size_t c = MIN(avail, dl);
			if (s->hdr_left) {
				hdr_store(dst, from, c);
				s->hdr += c;
				s->hdr_left -= c;
			} else {
				memcpy(dst, from, c);
				s->off += c;
			}
			dst += c;
			dl -= c;
			w += (uint32_t)c;
		}
	}
	return w;
}

VHU_EXPORT int vhu_net_rx(struct vhu_virtq *vq, uint64_t features, const void *hdr,
			  const struct iovec *frame, unsigned niov, struct vhu_elem *elems,
			  unsigned nelems)
{
	bool mrg = has_bit(features, VIRTIO_NET_F_MRG_RXBUF);
	uint32_t hlen = (uint32_t)vhu_net_hdr_len(features);
	uint64_t len = 0, need, got = 0;
	unsigned nb = 0, max = mrg ? MIN(nelems, (unsigned)UINT16_MAX) : 1;
	uint8_t h[sizeof(struct virtio_net_hdr_mrg_rxbuf)] = { 0 };
	uint32_t cursor;
	int r;

	if (!vq || !elems || nelems == 0 || (niov && !frame))
		return -EINVAL;
	for (unsigned i = 0; i < niov; i++)
		len += frame[i].iov_len;
	if (len > UINT32_MAX - hlen)
		return -EINVAL;
	need = hlen + len;
	cursor = vhu_virtq_cursor(vq);
	while (got < need && nb < max) {
		struct vhu_elem *e = &elems[nb];
		r = vhu_virtq_pop(vq, e);
		if (r == -EIO)
			return -EIO; /* broken: nothing is touched again, no rewind either */
		if (r == 0)
			break;
		/* The first buffer must hold the whole header, merged or not ("Receiving
		 * Packets": num_buffers is in it); without MRG_RXBUF it must hold the frame. A
		 * later one must be writable. */
		if (r < 0 || e->in_len == 0 || (!mrg && e->in_len < need) ||
		    (nb == 0 && e->in_len < hlen)) {
			if (nb == 0) {
				/* Give it back empty, so the driver sees it and the queue moves on.
				 */
				vhu_virtq_push(vq, e, 0);
				return -EMSGSIZE;
			}
			break;
		}
		got += e->in_len;
		nb++;
	}
	if (got < need) {
		vhu_virtq_rewind(vq, cursor);
		return -ENOBUFS;
	}
	/* The buffer RX_AHEAD pops on: its header's line and its frame's first line prefetched for
	 * writing (ring_prefetch_ahead), so that frames received one after another have the
	 * misses on the lines the driver owns under way together (docs/ARCHITECTURE.md). */
	ring_prefetch_ahead(vq, RX_AHEAD, hlen);
	hdr_fill(h, hdr, hlen, (uint16_t)nb);
	struct src s = { .hdr = h, .hdr_left = hlen, .iov = frame, .niov = niov };
	uint64_t left = need;
	for (unsigned i = 0; i < nb; i++) {
		uint32_t w =
			fill_elem(&elems[i], &s, (uint32_t)MIN((uint64_t)elems[i].in_len, left));
		left -= w;
		vhu_virtq_push(vq, &elems[i], w);
	}
	return 0;
}

/* The cursor just past e, popped at cursor c: split rings take one avail entry per buffer,
 * packed ones e->ndescs slots (vring_packed_advance, the wrap counter in bit 16). */
static uint32_t cursor_after(const struct vhu_virtq *vq, uint32_t c, const struct vhu_elem *e)
{
	uint16_t idx = (uint16_t)c;
	bool wrap = c >> 16;

	if (!vq->packed)
		return (c & ~0xffffu) | (uint16_t)(idx + 1);
	vring_packed_advance(&idx, &wrap, e->ndescs, vq->num);
	return idx | (uint32_t)wrap << 16;
}

VHU_EXPORT int vhu_net_rx_burst(struct vhu_virtq *vq, uint64_t features,
				const struct vhu_net_frame *f, unsigned n, struct vhu_elem *elems,
				unsigned nelems)
{
	uint32_t hlen = (uint32_t)vhu_net_hdr_len(features);
	uint8_t h[sizeof(struct virtio_net_hdr_mrg_rxbuf)];
	uint32_t cursor;
	unsigned i;
	int got;

	if (!vq || !f || !elems)
		return -EINVAL;
	if (vq->infs)
		return 0; /* a pop taken back would break the ring */
	n = MIN(n, nelems);
	if (!n)
		return 0;
	cursor = vhu_virtq_cursor(vq);
	got = vhu_virtq_pop_burst(vq, elems, n);
	if (got == -EIO)
		return -EIO;
	if (got <= 0) {
		/* Empty, or a chain too long first: that one is vhu_net_rx()'s to push back. */
		vhu_virtq_rewind(vq, cursor);
		return 0;
	}
	/* The first RX_AHEAD buffers' header and frame lines asked for now, then each copy asks
	 * for those of the buffer RX_AHEAD on, as DPDK's enqueue does batches of 4: all of a
	 * burst at once ran vhu-net --loopback slower with the cores far apart (0.76 of this).
	 * The last RX_AHEAD copies ask for the buffers the next burst starts with, still in the
	 * ring (ring_prefetch_ahead), so that a burst's first copies do not wait for their lines
	 * either: 1.04 near and 1.02 far on packed rings, 1.05 and 1.11 on split ones
	 * (docs/TESTING.md). */
	ring_prefetch_elems(elems, MIN((unsigned)got, RX_AHEAD), hlen);
	for (i = 0; i < (unsigned)got; i++) {
		const struct vhu_elem *e = &elems[i];
		if (i + RX_AHEAD < (unsigned)got)
			ring_prefetch_elems(e + RX_AHEAD, 1, hlen);
		else
			ring_prefetch_ahead(vq, i + RX_AHEAD - (unsigned)got, hlen);
		/* What vhu_net_rx() takes as one whole buffer; anything else is left to it. */
		if (f[i].len > UINT32_MAX - hlen || e->in_len < hlen + f[i].len || e->in_len == 0 ||
		    (f[i].len && !f[i].data))
			break;
		memset(h, 0, sizeof(h));
		hdr_fill(h, f[i].hdr, hlen, 1);
		const struct iovec *v = &e->iov[e->out_num];
		if (v->iov_len >= hlen + f[i].len) {
			/* The common case: the header and the frame in the first writable iovec. */
			hdr_store(v->iov_base, h, hlen);
			memcpy((uint8_t *)v->iov_base + hlen, f[i].data, f[i].len);
		} else {
			struct iovec fi = { (void *)f[i].data, f[i].len };
			struct src s = { .hdr = h, .hdr_left = hlen, .iov = &fi, .niov = 1 };
			fill_elem(e, &s, hlen + f[i].len);
		}
		cursor = cursor_after(vq, cursor, e);
		vhu_virtq_push(vq, e, hlen + f[i].len);
	}
	if (i < (unsigned)got)
		vhu_virtq_rewind(vq, cursor); /* elems[i ..] were not pushed: back to the ring */
	return vhu_virtq_broken(vq) ? -EIO : (int)i;
}
