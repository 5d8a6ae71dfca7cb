/* SPDX-License-Identifier: MIT */
/*
 * vhu-net's software offloads (tools/net/gso.c) on frames alone: a partial checksum completed
 * as the header says, TCPv4/TCPv6 and UDP (USO) frames cut into gso_size segments whose bytes,
 * lengths, IPv4 ids, sequence numbers, TCP flags and checksums are checked here by code of its
 * own, and headers that do not match their frame (or ask for what was not negotiated) refused.
 */
#include <errno.h>
#include <linux/virtio_net.h>

#include "../tools/net/gso.h"
#include "t.h"

T_DEFINE;

#define MAXF 70000

static uint16_t g16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void p16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* The test's own ones' complement sum (RFC 1071), byte by byte. */
static uint32_t sum(uint32_t s, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		s += (i & 1) ? p[i] : (uint32_t)p[i] << 8;
	return s;
}

static uint16_t fin(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

/* Builds Ethernet + IPv4/IPv6 + TCP/UDP with `pay` payload bytes (i * 7 + 3 pattern). */
static uint32_t build(uint8_t *f, bool v6, bool tcp, uint32_t pay, uint8_t tcpflags)
{
	uint32_t l3 = 14, l4 = l3 + (v6 ? 40 : 20), hl = tcp ? 20 : 8, len = l4 + hl + pay;

	memset(f, 0, l4 + hl);
	memcpy(f, "\x02\0\0\0\0\x0b\x02\0\0\0\0\x0a", 12);
	p16(f + 12, v6 ? 0x86dd : 0x0800);
	uint8_t *ip = f + l3;
	if (v6) {
		ip[0] = 0x60;
		p16(ip + 4, (uint16_t)(len - l4));
		ip[6] = tcp ? 6 : 17;
		ip[7] = 64;
		ip[8 + 15] = 1;
		ip[24 + 15] = 2;
		ip[8] = ip[24] = 0xfd;
	} else {
		ip[0] = 0x45;
		p16(ip + 2, (uint16_t)(len - l3));
		p16(ip + 4, 0x1234);
		p16(ip + 6, 0x4000); /* DF */
		ip[8] = 64;
		ip[9] = tcp ? 6 : 17;
		memcpy(ip + 12, "\x0a\0\0\x01\x0a\0\0\x02", 8);
		p16(ip + 10, fin(sum(0, ip, 20)));
	}
	uint8_t *t = f + l4;
	p16(t, 40000);
	p16(t + 2, 5001);
	if (tcp) {
		p16(t + 4, 0xfffe); /* the sequence number wraps within the frame */
		p16(t + 6, 0xff00);
		t[12] = 5 << 4;
		t[13] = tcpflags;
		p16(t + 14, 65535);
	} else {
		p16(t + 4, (uint16_t)(hl + pay));
	}
	for (uint32_t i = 0; i < pay; i++)
		f[l4 + hl + i] = (uint8_t)(i * 7 + 3);
	return len;
}

/* The pseudo-header sum for an L4 length, as a driver puts it in the checksum field. */
static uint32_t pseudo(const uint8_t *f, bool v6, bool tcp, uint32_t l4len)
{
	uint32_t s = v6 ? sum(0, f + 14 + 8, 32) : sum(0, f + 14 + 12, 8);
	return s + (tcp ? 6 : 17) + (l4len >> 16) + (l4len & 0xffff);
}

/* Verifies a frame's IPv4 header checksum and L4 checksum with the test's own sums. */
static bool verify(const uint8_t *f, uint32_t len, bool v6, bool tcp)
{
	uint32_t l4 = 14 + (v6 ? 40 : 20);

	if (!v6 && fin(sum(0, f + 14, 20)) != 0)
		return false;
	return fin(pseudo(f, v6, tcp, len - l4) + sum(0, f + l4, len - l4)) == 0;
}

static struct gso_hdr hdr(uint8_t type, uint16_t mss, bool v6, bool tcp)
{
	return (struct gso_hdr){ .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
				 .gso_type = type,
				 .gso_size = mss,
				 .hdr_len = 0,
				 .csum_start = (uint16_t)(14 + (v6 ? 40 : 20)),
				 .csum_offset = tcp ? 16 : 6 };
}

struct segs {
	unsigned n;
	uint32_t len[64];
	uint8_t *buf[64];
};

static int collect(void *opaque, const uint8_t *seg, uint32_t len)
{
	struct segs *s = opaque;

	if (s->n == 64)
		return -ENOSPC;
	s->buf[s->n] = malloc(len);
	memcpy(s->buf[s->n], seg, len);
	s->len[s->n++] = len;
	return 0;
}

static void segs_free(struct segs *s)
{
	for (unsigned i = 0; i < s->n; i++)
		free(s->buf[i]);
	s->n = 0;
}

static uint8_t frame[MAXF], scratch[MAXF];

/* Segments a TCP or UDP frame of `pay` bytes at mss and checks every segment. */
static int seg_case(bool v6, bool tcp, uint32_t pay, uint16_t mss, uint8_t tflags, bool ecn)
{
	uint32_t len = build(frame, v6, tcp, pay, tflags);
	uint32_t l4 = 14 + (v6 ? 40 : 20), hl = tcp ? 20 : 8, end = l4 + hl;
	uint8_t type = tcp ? (v6 ? VIRTIO_NET_HDR_GSO_TCPV6 : VIRTIO_NET_HDR_GSO_TCPV4)
			   : VIRTIO_NET_HDR_GSO_UDP_L4;
	struct gso_hdr h = hdr((uint8_t)(type | (ecn ? VIRTIO_NET_HDR_GSO_ECN : 0)), mss, v6, tcp);
	struct segs s = { 0 };
	uint32_t want = (pay + mss - 1) / mss, off = 0;

	/* The driver's partial checksum: the pseudo-header sum in the field. */
	p16(frame + l4 + (tcp ? 16 : 6), (uint16_t)~fin(pseudo(frame, v6, tcp, len - l4)));
	ASSERT_OK(gso_check(&h, frame, len, GSO_OK_ALL));
	ASSERT_EQ(h.hdr_len, end);
	ASSERT_EQ(gso_segment(&h, frame, len, scratch, collect, &s), want);
	ASSERT_EQ(s.n, want);
	for (unsigned i = 0; i < s.n; i++) {
		const uint8_t *g = s.buf[i];
		uint32_t chunk = i + 1 < s.n ? mss : pay - off;
		ASSERT_EQ(s.len[i], end + chunk);
		ASSERT_TRUE(memcmp(g, frame, 14) == 0);
		ASSERT_TRUE(memcmp(g + end, frame + end + off, chunk) == 0);
		ASSERT_TRUE(verify(g, s.len[i], v6, tcp));
		ASSERT_TRUE(gso_csum_ok(g, s.len[i]));
		if (v6) {
			ASSERT_EQ(g16(g + 14 + 4), s.len[i] - l4);
		} else {
			ASSERT_EQ(g16(g + 14 + 2), s.len[i] - 14);
			ASSERT_EQ(g16(g + 14 + 4), (uint16_t)(0x1234 + i));
			ASSERT_EQ(g16(g + 14 + 6), 0x4000);
		}
		if (tcp) {
			uint32_t seq = (uint32_t)g16(g + l4 + 4) << 16 | g16(g + l4 + 6);
			ASSERT_EQ(seq, (uint32_t)(0xfffeff00u + off));
			uint8_t fl = g[l4 + 13];
			ASSERT_EQ(!!(fl & 0x80), i == 0 && (tflags & 0x80));	   /* CWR */
			ASSERT_EQ(!!(fl & 0x09), i + 1 == s.n && (tflags & 0x09)); /* FIN, PSH */
			ASSERT_EQ(fl & 0x10, tflags & 0x10);			   /* ACK */
			ASSERT_EQ(!!(fl & 0x01), i + 1 == s.n && (tflags & 0x01));
		} else {
			ASSERT_EQ(g16(g + l4 + 4), s.len[i] - l4);
		}
		off += chunk;
	}
	ASSERT_EQ(off, pay);
	segs_free(&s);
	return 0;
}

static int tcp4_segments(void)
{
	ASSERT_OK(seg_case(false, true, 4000, 1448, 0x10 | 0x08 | 0x01 | 0x80, true));
	ASSERT_OK(seg_case(false, true, 1448 * 3, 1448, 0x10 | 0x08, false));
	ASSERT_OK(seg_case(false, true, 65535 - 40, 8948, 0x10 | 0x08, false)); /* jumbo MSS */
	ASSERT_OK(seg_case(false, true, 100, 1448, 0x10 | 0x08 | 0x80, true));	/* one segment */
	return 0;
}

static int tcp6_segments(void)
{
	ASSERT_OK(seg_case(true, true, 9001, 1428, 0x10 | 0x08 | 0x80, true));
	ASSERT_OK(seg_case(true, true, 65535 - 20, 1428, 0x10, false));
	return 0;
}

static int udp_segments(void)
{
	ASSERT_OK(seg_case(false, false, 3000, 1472, 0, false));
	ASSERT_OK(seg_case(true, false, 1452 * 2 + 1, 1452, 0, false));
	return 0;
}

/* NEEDS_CSUM without GSO: the sum from csum_start to the end, stored at csum_offset. */
static int csum_completes(void)
{
	for (int v6 = 0; v6 < 2; v6++) {
		for (int tcp = 0; tcp < 2; tcp++) {
			for (uint32_t pay = 0; pay < 40; pay += 13) {
				uint32_t len = build(frame, v6, tcp, pay, 0x18);
				uint32_t l4 = 14 + (v6 ? 40 : 20), at = l4 + (tcp ? 16 : 6);
				struct gso_hdr h = hdr(0, 0, v6, tcp);
				p16(frame + at, (uint16_t)~fin(pseudo(frame, v6, tcp, len - l4)));
				ASSERT_TRUE(!verify(frame, len, v6, tcp) || pay == 0);
				ASSERT_OK(gso_check(&h, frame, len, GSO_OK_CSUM));
				ASSERT_EQ(gso_needs(&h, frame, len), GSO_OK_CSUM);
				gso_csum_complete(&h, frame, len);
				ASSERT_TRUE(verify(frame, len, v6, tcp));
				ASSERT_TRUE(gso_csum_ok(frame, len));
				frame[len - 1 - (pay == 0)] ^= 0x40;
				ASSERT_TRUE(!gso_csum_ok(frame, len));
			}
		}
	}
	return 0;
}

/* What a header asks for, against what a port negotiated. */
static int features_map(void)
{
	uint64_t host = 1ULL << VIRTIO_NET_F_CSUM | 1ULL << VIRTIO_NET_F_HOST_TSO4 |
			1ULL << VIRTIO_NET_F_HOST_USO;
	uint64_t guest = 1ULL << VIRTIO_NET_F_GUEST_CSUM | 1ULL << VIRTIO_NET_F_GUEST_TSO6 |
			 1ULL << VIRTIO_NET_F_GUEST_ECN | 1ULL << VIRTIO_NET_F_GUEST_USO6;

	ASSERT_EQ(gso_ok_from_features(host, true),
		  GSO_OK_CSUM | GSO_OK_TSO4 | GSO_OK_USO4 | GSO_OK_USO6);
	ASSERT_EQ(gso_ok_from_features(host, false), 0);
	ASSERT_EQ(gso_ok_from_features(guest, false),
		  GSO_OK_CSUM | GSO_OK_TSO6 | GSO_OK_ECN | GSO_OK_USO6);
	/* TSO without CSUM is not a valid negotiation: nothing is allowed. */
	ASSERT_EQ(gso_ok_from_features(1ULL << VIRTIO_NET_F_HOST_TSO4, true), 0);

	uint32_t len = build(frame, true, false, 3000, 0);
	struct gso_hdr h = hdr(VIRTIO_NET_HDR_GSO_UDP_L4, 1000, true, false);
	ASSERT_OK(gso_check(&h, frame, len, GSO_OK_CSUM | GSO_OK_USO6));
	ASSERT_EQ(gso_needs(&h, frame, len), GSO_OK_CSUM | GSO_OK_USO6);
	h = hdr(VIRTIO_NET_HDR_GSO_UDP_L4, 1000, true, false);
	ASSERT_EQ(gso_check(&h, frame, len, GSO_OK_CSUM | GSO_OK_USO4), -EINVAL);
	return 0;
}

/* Headers that do not match their frame, or ask for what is not allowed: refused. */
static int bad_headers(void)
{
	uint32_t len = build(frame, false, true, 3000, 0x10);
	struct gso_hdr good = hdr(VIRTIO_NET_HDR_GSO_TCPV4, 1448, false, true), h;
	unsigned all = GSO_OK_ALL;

#define REFUSED(mod, okbits, flen)                                                                 \
	do {                                                                                       \
		h = good;                                                                          \
		mod;                                                                               \
		ASSERT_EQ(gso_check(&h, frame, (flen), (okbits)), -EINVAL);                        \
	} while (0)

	h = good;
	ASSERT_OK(gso_check(&h, frame, len, all));
	REFUSED((void)0, all & ~GSO_OK_TSO4, len);		   /* not negotiated */
	REFUSED((void)0, 0, len);				   /* no CSUM */
	REFUSED(h.flags = 0, all, len);				   /* GSO without NEEDS_CSUM */
	REFUSED(h.flags |= VIRTIO_NET_HDR_F_RSC_INFO, all, len);   /* driver must not */
	REFUSED(h.flags |= 0x40, all, len);			   /* unknown flag */
	REFUSED(h.gso_size = 0, all, len);			   /* no MSS */
	REFUSED(h.gso_type = VIRTIO_NET_HDR_GSO_TCPV6, all, len);  /* IPv4 frame */
	REFUSED(h.gso_type = VIRTIO_NET_HDR_GSO_UDP, all, len);	   /* UFO */
	REFUSED(h.gso_type = VIRTIO_NET_HDR_GSO_UDP_L4, all, len); /* TCP frame */
	REFUSED(h.gso_type = 0x42, all, len);			   /* unknown type */
	REFUSED(h.gso_type |= VIRTIO_NET_HDR_GSO_ECN, all & ~GSO_OK_ECN, len); /* no ECN */
	REFUSED(h.gso_type = VIRTIO_NET_HDR_GSO_ECN, all, len);		       /* ECN alone */
	REFUSED(h.csum_start = 14, all, len);	  /* not the L4 header */
	REFUSED(h.csum_offset = 6, all, len);	  /* not TCP's field */
	REFUSED(h.csum_start = 0xffff, all, len); /* outside */
	REFUSED((void)0, all, len - 1);		  /* IP length disagrees */
	REFUSED((void)0, all, 14 + 20 + 10);	  /* TCP header cut */
	REFUSED((void)0, all, 10);		  /* no Ethernet header */
	/* No checksum offload: the checksum field must be inside the frame. */
	REFUSED((h.gso_type = 0, h.csum_start = (uint16_t)(len - 1), h.csum_offset = 0), all, len);
	REFUSED((h.gso_type = 0, h.csum_start = 0, h.csum_offset = 0xffff), all, len);
	/* Frame bytes that disagree with the header. */
	frame[14] = 0x44; /* IHL 4 */
	REFUSED((void)0, all, len);
	frame[14] = 0x45;
	p16(frame + 14 + 6, 0x2000); /* more fragments */
	REFUSED((void)0, all, len);
	p16(frame + 14 + 6, 0x4000);
	frame[14 + 20 + 12] = 4 << 4; /* TCP data offset 4 */
	REFUSED((void)0, all, len);
	frame[14 + 20 + 12] = 15 << 4; /* 60-byte TCP header: fine, hdr_len follows */
	h = good;
	ASSERT_OK(gso_check(&h, frame, len, all));
	ASSERT_EQ(h.hdr_len, 14 + 20 + 60);
	frame[14 + 20 + 12] = 5 << 4;
	frame[14 + 9] = 1; /* ICMP */
	REFUSED((void)0, all, len);
	frame[14 + 9] = 6;
	p16(frame + 12, 0x0806); /* ARP */
	REFUSED((void)0, all, len);
	p16(frame + 12, 0x0800);
	/* Only headers, no payload. */
	len = build(frame, false, true, 0, 0x10);
	REFUSED((void)0, all, len);
	/* A plain frame's header is normalised: no stray fields survive. */
	h = (struct gso_hdr){ .flags = VIRTIO_NET_HDR_F_DATA_VALID,
			      .hdr_len = 99,
			      .gso_size = 7,
			      .csum_start = 3,
			      .csum_offset = 4 };
	ASSERT_OK(gso_check(&h, frame, len, 0));
	ASSERT_EQ(h.flags | h.hdr_len | h.gso_size | h.csum_start | h.csum_offset, 0);
#undef REFUSED
	return 0;
}

static int hdr_wire(void)
{
	uint8_t w[10] = { 1, 0x81, 0x36, 0, 0xa8, 0x05, 0x22, 0, 0x10, 0 }, back[10];
	struct gso_hdr h;

	gso_hdr_read(&h, w);
	ASSERT_EQ(h.flags, 1);
	ASSERT_EQ(h.gso_type, 0x81);
	ASSERT_EQ(h.hdr_len, 0x36);
	ASSERT_EQ(h.gso_size, 1448);
	ASSERT_EQ(h.csum_start, 0x22);
	ASSERT_EQ(h.csum_offset, 16);
	gso_hdr_write(&h, back);
	ASSERT_TRUE(memcmp(w, back, 10) == 0);
	return 0;
}

/* A hostile header over random frame bytes never reads or writes outside the frame (run under
 * ASan), and whatever gso_check() accepts can be segmented. */
static int random_headers(void)
{
	uint32_t x = 12345;

	for (int i = 0; i < 20000; i++) {
		uint32_t len = build(frame, i & 1, i & 2, (uint32_t)(i % 3000), 0x18);
		struct gso_hdr h = hdr((uint8_t)(i & 2 ? (i & 1 ? 4 : 1) : 5), 500, i & 1, i & 2);
		x = x * 1103515245 + 12345;
		switch (x >> 28) {
		case 0:
			h.gso_size = (uint16_t)(x >> 8);
			break;
		case 1:
			h.csum_start = (uint16_t)(x >> 8);
			break;
		case 2:
			h.csum_offset = (uint16_t)(x >> 8);
			break;
		case 3:
			h.gso_type = (uint8_t)(x >> 8);
			break;
		case 4:
			h.flags = (uint8_t)(x >> 8);
			break;
		default:
			frame[(x >> 8) % len] = (uint8_t)x;
			break;
		}
		uint32_t flen = (x & 0x80) ? (x >> 9) % (len + 1) : len;
		uint8_t *copy = malloc(flen ? flen : 1);
		memcpy(copy, frame, flen);
		if (gso_check(&h, copy, flen, GSO_OK_ALL) == 0) {
			struct segs s = { 0 };
			if (h.gso_type)
				ASSERT_TRUE(gso_segment(&h, copy, flen, scratch, collect, &s) > 0 ||
					    s.n == 64);
			else
				gso_csum_complete(&h, copy, flen);
			segs_free(&s);
		}
		free(copy);
	}
	return 0;
}

int main(void)
{
	RUN(hdr_wire);
	RUN(csum_completes);
	RUN(tcp4_segments);
	RUN(tcp6_segments);
	RUN(udp_segments);
	RUN(features_map);
	RUN(bad_headers);
	RUN(random_headers);
	T_MAIN_END();
}
