/* SPDX-License-Identifier: MIT */
/*
 * virtio-net offloads in software (gso.h): header checks, checksum completion, segmentation.
 * Every offset below is derived from the frame's own bytes and checked against its length
 * before use; the header's csum_start/csum_offset are only trusted once they agree with it.
 */
#include <errno.h>
#include <linux/virtio_net.h>
#include <string.h>

#include "gso.h"

#define ETH_HLEN	14
#define GSO_ETH_IPV4	0x0800
#define GSO_ETH_IPV6	0x86dd
#define GSO_ETH_8021Q	0x8100
#define GSO_ETH_8021AD	0x88a8
#define IPPROTO_TCP_	6
#define IPPROTO_UDP_	17
#define TCP_FIN		0x01
#define TCP_PSH		0x08
#define TCP_CWR		0x80
#define GSO_FLAGS_KNOWN (VIRTIO_NET_HDR_F_NEEDS_CSUM | VIRTIO_NET_HDR_F_DATA_VALID)

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

void gso_hdr_read(struct gso_hdr *h, const uint8_t *w)
{
	h->flags = w[0];
	h->gso_type = w[1];
	h->hdr_len = le16(w + 2);
	h->gso_size = le16(w + 4);
	h->csum_start = le16(w + 6);
	h->csum_offset = le16(w + 8);
}

void gso_hdr_write(const struct gso_hdr *h, uint8_t *w)
{
	w[0] = h->flags;
	w[1] = h->gso_type;
	put_le16(w + 2, h->hdr_len);
	put_le16(w + 4, h->gso_size);
	put_le16(w + 6, h->csum_start);
	put_le16(w + 8, h->csum_offset);
}

static bool bit(uint64_t f, unsigned b)
{
	return (f >> b) & 1;
}

unsigned gso_ok_from_features(uint64_t f, bool host)
{
	unsigned ok = 0;

	if (host) {
		if (!bit(f, VIRTIO_NET_F_CSUM))
			return 0; /* "HOST_TSO4 Requires VIRTIO_NET_F_CSUM", and so on */
		ok = GSO_OK_CSUM;
		ok |= bit(f, VIRTIO_NET_F_HOST_TSO4) ? GSO_OK_TSO4 : 0;
		ok |= bit(f, VIRTIO_NET_F_HOST_TSO6) ? GSO_OK_TSO6 : 0;
		ok |= bit(f, VIRTIO_NET_F_HOST_ECN) ? GSO_OK_ECN : 0;
		ok |= bit(f, VIRTIO_NET_F_HOST_USO) ? GSO_OK_USO4 | GSO_OK_USO6 : 0;
		return ok;
	}
	if (!bit(f, VIRTIO_NET_F_GUEST_CSUM))
		return 0;
	ok = GSO_OK_CSUM;
	ok |= bit(f, VIRTIO_NET_F_GUEST_TSO4) ? GSO_OK_TSO4 : 0;
	ok |= bit(f, VIRTIO_NET_F_GUEST_TSO6) ? GSO_OK_TSO6 : 0;
	ok |= bit(f, VIRTIO_NET_F_GUEST_ECN) ? GSO_OK_ECN : 0;
	ok |= bit(f, VIRTIO_NET_F_GUEST_USO4) ? GSO_OK_USO4 : 0;
	ok |= bit(f, VIRTIO_NET_F_GUEST_USO6) ? GSO_OK_USO6 : 0;
	return ok;
}

/* ---- parsing ---- */

/* Where a frame's headers are: l3 (IP), l4 (TCP/UDP), end (first payload byte). */
struct layout {
	uint32_t l3, l4, end;
	bool v6;
	uint8_t proto;
};

/* Parses Ethernet (one VLAN tag at most), IPv4 or IPv6 (no extension headers, no fragment)
 * and TCP or UDP. 0, or -EINVAL when the frame is anything else or too short. */
static int parse(const uint8_t *f, uint32_t len, struct layout *l)
{
	uint16_t type;

	if (len < ETH_HLEN)
		return -EINVAL;
	type = get16(f + 12);
	l->l3 = ETH_HLEN;
	if (type == GSO_ETH_8021Q || type == GSO_ETH_8021AD) {
		if (len < ETH_HLEN + 4)
			return -EINVAL;
		type = get16(f + 16);
		l->l3 += 4;
	}
	const uint8_t *ip = f + l->l3;
	if (type == GSO_ETH_IPV4) {
		if (len - l->l3 < 20 || ip[0] >> 4 != 4 || (ip[0] & 0xf) < 5)
			return -EINVAL;
		uint32_t ihl = (ip[0] & 0xfu) * 4;
		if (len - l->l3 < ihl || (get16(ip + 6) & 0x3fff) != 0) /* MF or an offset */
			return -EINVAL;
		l->v6 = false;
		l->proto = ip[9];
		l->l4 = l->l3 + ihl;
	} else if (type == GSO_ETH_IPV6) {
		if (len - l->l3 < 40 || ip[0] >> 4 != 6)
			return -EINVAL;
		l->v6 = true;
		l->proto = ip[6]; /* extension headers are refused below */
		l->l4 = l->l3 + 40;
	} else {
		return -EINVAL;
	}
	if (l->proto == IPPROTO_TCP_) {
		if (len - l->l4 < 20 || (f[l->l4 + 12] >> 4) < 5)
			return -EINVAL;
		uint32_t doff = (f[l->l4 + 12] >> 4) * 4u;
		if (len - l->l4 < doff)
			return -EINVAL;
		l->end = l->l4 + doff;
	} else if (l->proto == IPPROTO_UDP_) {
		if (len - l->l4 < 8)
			return -EINVAL;
		l->end = l->l4 + 8;
	} else {
		return -EINVAL;
	}
	return 0;
}

/* The IP length field agrees with the frame (no padding after a GSO frame's payload). */
static bool ip_len_ok(const uint8_t *f, uint32_t len, const struct layout *l)
{
	if (l->v6)
		return get16(f + l->l3 + 4) == len - l->l3 - 40;
	return get16(f + l->l3 + 2) == len - l->l3;
}

/* ---- checksums ---- */

static uint32_t sum_add(uint32_t s, const uint8_t *p, uint32_t len)
{
	uint64_t acc = s;
	uint32_t i = 0;

	for (; i + 1 < len; i += 2)
		acc += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (i < len)
		acc += (uint32_t)p[i] << 8;
	while (acc >> 16)
		acc = (acc & 0xffff) + (acc >> 16);
	return (uint32_t)acc;
}

static uint16_t fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

/* The pseudo-header sum of an L4 packet of l4len bytes (RFC 793, RFC 8200 8.1). */
static uint32_t pseudo(const uint8_t *f, const struct layout *l, uint32_t l4len)
{
	const uint8_t *ip = f + l->l3;
	uint32_t s;

	if (l->v6)
		s = sum_add(0, ip + 8, 32);
	else
		s = sum_add(0, ip + 12, 8);
	s += l->proto;
	s += l4len >> 16;
	s += l4len & 0xffff;
	return s;
}

/* Computes and stores the L4 checksum of the packet at l->l4 up to len, in full. */
static void l4_csum(uint8_t *f, uint32_t len, const struct layout *l)
{
	uint32_t at = l->l4 + (l->proto == IPPROTO_TCP_ ? 16 : 6);
	uint16_t c;

	put16(f + at, 0);
	c = fold(sum_add(pseudo(f, l, len - l->l4), f + l->l4, len - l->l4));
	if (c == 0 && l->proto == IPPROTO_UDP_)
		c = 0xffff; /* RFC 768: zero means "no checksum" */
	put16(f + at, c);
}

static void ip4_csum(uint8_t *f, const struct layout *l)
{
	uint8_t *ip = f + l->l3;

	put16(ip + 10, 0);
	put16(ip + 10, fold(sum_add(0, ip, l->l4 - l->l3)));
}

/* ---- checks ---- */

unsigned gso_needs(const struct gso_hdr *h, const uint8_t *f, uint32_t len)
{
	struct layout l;
	unsigned need = (h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) ? GSO_OK_CSUM : 0;

	switch (h->gso_type & ~VIRTIO_NET_HDR_GSO_ECN) {
	case VIRTIO_NET_HDR_GSO_TCPV4:
		need |= GSO_OK_TSO4;
		break;
	case VIRTIO_NET_HDR_GSO_TCPV6:
		need |= GSO_OK_TSO6;
		break;
	case VIRTIO_NET_HDR_GSO_UDP_L4:
		need |= parse(f, len, &l) == 0 && l.v6 ? GSO_OK_USO6 : GSO_OK_USO4;
		break;
	}
	if (h->gso_type & VIRTIO_NET_HDR_GSO_ECN)
		need |= GSO_OK_ECN;
	return need;
}

int gso_check(struct gso_hdr *h, const uint8_t *f, uint32_t len, unsigned ok)
{
	uint8_t type = h->gso_type & ~VIRTIO_NET_HDR_GSO_ECN;
	bool ecn = h->gso_type & VIRTIO_NET_HDR_GSO_ECN;
	bool needs_csum = h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM;
	struct layout l;

	/* The driver "MUST NOT set the VIRTIO_NET_HDR_F_DATA_VALID and
	 * VIRTIO_NET_HDR_F_RSC_INFO bits in flags": DATA_VALID is harmless (a tap sets it on
	 * what the host stack checked) and dropped, the rest refused. */
	if (h->flags & ~GSO_FLAGS_KNOWN)
		return -EINVAL;
	h->flags &= VIRTIO_NET_HDR_F_NEEDS_CSUM;
	if (needs_csum) {
		if (!(ok & GSO_OK_CSUM))
			return -EINVAL;
		/* The checksum field (2 bytes at csum_start + csum_offset) lies inside the
		 * frame, after csum_start. */
		if ((uint32_t)h->csum_start + h->csum_offset + 2 > len)
			return -EINVAL;
	} else {
		h->csum_start = h->csum_offset = 0;
	}
	if (type == VIRTIO_NET_HDR_GSO_NONE) {
		if (ecn)
			return -EINVAL;
		h->gso_type = 0;
		h->gso_size = h->hdr_len = 0;
		return 0;
	}
	/* "If gso_type differs from VIRTIO_NET_HDR_GSO_NONE, then the driver MUST also set the
	 * VIRTIO_NET_HDR_F_NEEDS_CSUM bit in flags and MUST set gso_size". */
	if (!needs_csum || h->gso_size == 0 || parse(f, len, &l) || !ip_len_ok(f, len, &l))
		return -EINVAL;
	switch (type) {
	case VIRTIO_NET_HDR_GSO_TCPV4:
		if (!(ok & GSO_OK_TSO4) || l.v6 || l.proto != IPPROTO_TCP_)
			return -EINVAL;
		break;
	case VIRTIO_NET_HDR_GSO_TCPV6:
		if (!(ok & GSO_OK_TSO6) || !l.v6 || l.proto != IPPROTO_TCP_)
			return -EINVAL;
		break;
	case VIRTIO_NET_HDR_GSO_UDP_L4:
		if (!(ok & (l.v6 ? GSO_OK_USO6 : GSO_OK_USO4)) || l.proto != IPPROTO_UDP_ || ecn ||
		    get16(f + l.l4 + 4) != len - l.l4)
			return -EINVAL;
		break;
	default: /* UFO (IP fragmentation) and tunnels are not offered */
		return -EINVAL;
	}
	if (ecn && !(ok & GSO_OK_ECN))
		return -EINVAL;
	/* The header's checksum fields must name the L4 checksum: they are what a receiver
	 * that gets the frame whole uses. */
	if (h->csum_start != l.l4 || h->csum_offset != (l.proto == IPPROTO_TCP_ ? 16 : 6))
		return -EINVAL;
	/* "The device MUST NOT rely on hdr_len to be correct": ours, from the frame. A frame
	 * with no payload is not a GSO frame. */
	if (len == l.end)
		return -EINVAL;
	h->hdr_len = (uint16_t)l.end;
	return 0;
}

/* ---- the work ---- */

void gso_csum_complete(const struct gso_hdr *h, uint8_t *f, uint32_t len)
{
	uint32_t at = (uint32_t)h->csum_start + h->csum_offset;

	if (!(h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) || at + 2 > len)
		return;
	/* "the device ... will ... compute the checksum from csum_start to the end of the
	 * packet and store it at csum_offset": the field holds the pseudo-header sum. */
	put16(f + at, fold(sum_add(0, f + h->csum_start, len - h->csum_start)));
}

int gso_segment(const struct gso_hdr *h, const uint8_t *f, uint32_t len, uint8_t *seg,
		int (*out)(void *opaque, const uint8_t *seg, uint32_t len), void *opaque)
{
	struct layout l;
	uint32_t payload, off, mss = h->gso_size;
	int n = 0;

	if (parse(f, len, &l) || mss == 0 || len <= l.end)
		return -EINVAL;
	payload = len - l.end;
	bool tcp = l.proto == IPPROTO_TCP_;
	uint32_t seq = tcp ? (uint32_t)get16(f + l.l4 + 4) << 16 | get16(f + l.l4 + 6) : 0;
	uint8_t tflags = tcp ? f[l.l4 + 13] : 0;
	uint16_t id = l.v6 ? 0 : get16(f + l.l3 + 4);
	for (off = 0; off < payload; off += mss, n++) {
		uint32_t chunk = payload - off < mss ? payload - off : mss;
		uint32_t slen = l.end + chunk;
		bool first = off == 0, last = off + chunk == payload;
		memcpy(seg, f, l.end);
		memcpy(seg + l.end, f + l.end + off, chunk);
		if (l.v6) {
			put16(seg + l.l3 + 4, (uint16_t)(slen - l.l3 - 40));
		} else {
			put16(seg + l.l3 + 2, (uint16_t)(slen - l.l3));
			put16(seg + l.l3 + 4, (uint16_t)(id + n));
			ip4_csum(seg, &l);
		}
		if (tcp) {
			uint32_t s = seq + off;
			put16(seg + l.l4 + 4, (uint16_t)(s >> 16));
			put16(seg + l.l4 + 6, (uint16_t)s);
			uint8_t fl = tflags;
			if (!last)
				fl &= (uint8_t) ~(TCP_FIN | TCP_PSH);
			if (!first)
				fl &= (uint8_t)~TCP_CWR;
			seg[l.l4 + 13] = fl;
		} else {
			put16(seg + l.l4 + 4, (uint16_t)(slen - l.l4));
		}
		l4_csum(seg, slen, &l);
		int r = out(opaque, seg, slen);
		if (r < 0)
			return r;
	}
	return n;
}

bool gso_csum_ok(const uint8_t *f, uint32_t len)
{
	struct layout l;
	uint32_t l4len;

	if (parse(f, len, &l))
		return true;
	if (l.v6) {
		l4len = get16(f + l.l3 + 4);
		if (l4len > len - l.l4)
			return false;
	} else {
		uint32_t tot = get16(f + l.l3 + 2);
		if (tot > len - l.l3 || tot < l.l4 - l.l3)
			return false;
		if (fold(sum_add(0, f + l.l3, l.l4 - l.l3)) != 0)
			return false;
		l4len = tot - (l.l4 - l.l3);
	}
	if (l.proto == IPPROTO_UDP_ && get16(f + l.l4 + 6) == 0 && !l.v6)
		return true; /* IPv4 UDP without a checksum */
	if (l4len < (l.proto == IPPROTO_TCP_ ? 20u : 8u))
		return false;
	return fold(sum_add(pseudo(f, &l, l4len), f + l.l4, l4len)) == 0;
}
