/* SPDX-License-Identifier: MIT */
/*
 * vhu-fe net-bench: packet generator and sink on a virtio-net front-end.
 *
 * tx: sends as fast as the back-end takes frames. rx: counts what the back-end sends.
 * loop: every frame carries a magic, a sequence number and a payload derived from it; frames
 * come back (the back-end may rewrite MAC, IP and port fields, as testpmd's io, macswap and
 * 5tswap and vhu-net --loopback do) and are checked. The frames in flight are bounded by the
 * receive buffers posted, so a back-end that reflects everything never has to drop. A frame
 * that comes back on its pair after one sent later on that pair counts as reordered (JSON
 * reordered; a test decides: a back-end that forwards each queue to the same queue keeps the
 * order). --mix BYTES: every fourth transmit buffer carries frames of BYTES instead of --size,
 * so that short and long frames go out interleaved in every burst.
 *
 * One thread serves every queue pair, busy-polling (no interrupts).
 *
 * --log-check: logging on (logcheck.c); every receive buffer's used length counts as
 * written by the back-end.
 *
 * --tso (loop mode): TCP/IPv4 frames of GSO_SEGS * mss payload bytes sent as one GSO frame each
 * (gso_type TCPV4, gso_size mss, NEEDS_CSUM with the pseudo-header sum in place); --uso the same
 * with UDP/IPv4 (gso_type UDP_L4, HOST_USO). What comes back is checked whole (GUEST_TSO4 or
 * GUEST_USO4 negotiated: the header must still say so, with mss; the checksum is completed here)
 * or as segments (--tso-segments: GUEST_* not negotiated, so the back-end must segment): every
 * segment's IPv4 header and L4 checksums, length, IPv4 id, TCP sequence number and PSH only on
 * the last (UDP: its length), and its bytes. Counts are in segments. --ipv6: the same over
 * IPv6 (TCPV6 with HOST/GUEST_TSO6, UDP_L4 with GUEST_USO6; the payload length, no id).
 * A frame that comes back whole but with no GSO header (bigger than any MTU: a guest would drop
 * it) is checked whole too and counted apart (JSON tso_nohdr): DPDK 22.11's net_vhost in io
 * forwarding does that (docs/PROTOCOL.md); a test decides whether that is acceptable.
 *
 * Big frames (--size up to 65535, e.g. 9014 for an MTU of 9000): with MRG_RXBUF they come back
 * across several receive buffers, num_buffers in the first; every buffer but the last must be
 * full ("the device MUST use all buffers but the last ... completely"). Without it the receive
 * buffers are made big enough for the largest frame. --tx-parts N sends each frame in N parts
 * (the virtio-net header alone, then the frame in N - 1 pieces). VIRTIO_NET_F_MTU is negotiated
 * when the back-end offers it and the receive buffers can take a frame of that MTU; a frame over
 * it is still sent as asked (the back-end must drop it: "The device MUST NOT pass received
 * packets that exceed mtu").
 *
 * --peer PATH (loop mode): frames go out on --path and must arrive on a second front-end on
 * PATH, e.g. two ports of the vhu-net switch; the same checks, the receiver's features those
 * of the sender.
 */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <linux/virtio_config.h>
#include <linux/virtio_net.h>
#include <linux/virtio_ring.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "../net/gso.h"
#include "fe.h"

#define BUF_SIZE  2048	      /* a receive buffer with MRG_RXBUF; the smallest buffer */
#define HDR_LEN	  12	      /* virtio_net_hdr_v1 (VERSION_1) */
#define L2L3L4	  42	      /* Ethernet + IPv4 + UDP */
#define MAGIC	  0x56485546u /* "VHUF" */
#define MAX_PAIRS 16
#define MAX_SIZE  65535 /* --size: the IPv4 total length still fits */
#define MAX_PARTS 16	/* --tx-parts */
#define TX_BATCH  32
#define GSO_SEGS  8  /* segments per --tso/--uso frame */
#define GSO_STAMP 16 /* magic, frame number, segment index at each segment's start */
#define ETH_VLAN  18 /* the Ethernet header with a VLAN tag, beyond the MTU */

enum mode { MODE_TX, MODE_RX, MODE_LOOP };

struct pair {
	struct vhu_drvq *rxq, *txq;
	uint8_t **rxbuf, **txbuf; /* qsz buffers each */
	uint16_t *txfree;	  /* free tx buffer indices */
	unsigned ntxfree;
	/* MRG_RXBUF: buffers still expected for the frame being reassembled */
	unsigned merge_left;
	uint32_t merge_len;
	bool merge_bad; /* a buffer of it was not full, or it does not fit in frame */
	uint8_t merge_hdr[HDR_LEN];
	uint64_t next_seq; /* loop: the lowest sequence number still in order on this pair */
	uint8_t frame[65536];
};

enum gso_kind { GSO_NONE, GSO_TCP, GSO_UDP }; /* --tso, --uso */

struct bench {
	struct vhu_frontend *fe;
	struct vhu_frontend *peer; /* --peer: the receiving side, else fe */
	enum mode mode;
	unsigned pairs, qsz, size;
	unsigned mix;	/* --mix: every fourth transmit buffer's frames are this long (0: none) */
	unsigned rxbuf; /* bytes per receive buffer */
	unsigned txbuf; /* bytes per transmit buffer (allocated) */
	unsigned tx_parts;  /* --tx-parts */
	unsigned mtu;	    /* VIRTIO_NET_F_MTU negotiated: the config's mtu; else 0 */
	uint64_t rx_merged; /* frames that came in more than one buffer (MRG_RXBUF) */
	bool mrg;
	enum gso_kind gso;
	bool ipv6;		      /* --ipv6 */
	bool tso_segments;	      /* --tso-segments */
	unsigned mss;		      /* --mss */
	uint64_t tso_whole, tso_segs; /* GSO frames that came back whole, segments */
	uint64_t tso_nohdr;	      /* GSO frames back whole without a GSO header */
	/* rx mode without --log-check or --iommu-strict only counts: poll_rx() counts a frame in
	 * one buffer itself, anything else (merging, too short) goes through rx_frame(). */
	bool count_only;
	uint64_t tx, rx, rx_bytes, bad, foreign, seq;
	uint64_t reordered; /* loop: frames back on their pair after one sent later */
	uint64_t tx_bytes;  /* --mix: frame bytes sent */
	unsigned reconnects;
	uint64_t rx_at_reconnect; /* rx count when the last reconnect finished */
	uint64_t at_risk;	  /* loop mode: frames in flight when a back-end went away */
	int reconnect_ms;
	struct fe_logcheck lc;
	struct pair p[MAX_PAIRS];
};

static volatile sig_atomic_t stop_flag;
/* --iommu-strict: completed buffers are invalidated on this front-end (NULL: not strict). */
static struct vhu_frontend *strict_fe;

static void on_sigint(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static uint8_t pattern(uint64_t seq, unsigned i)
{
	return (uint8_t)(seq * 7 + i);
}

/* The length of the frames transmit buffer i carries: --size, or --mix for every fourth. */
static unsigned frame_len(const struct bench *b, unsigned i)
{
	return b->mix && i % 4 == 3 ? b->mix : b->size;
}

/* A UDP frame of len bytes (without the virtio-net header) with seq in its payload. */
static void build_gso(const struct bench *b, uint8_t *f, unsigned pair);

static void build_frame(const struct bench *b, uint8_t *f, unsigned pair, unsigned len)
{
	if (b->gso) {
		build_gso(b, f, pair);
		return;
	}
	static const uint8_t dst[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x01 };
	static const uint8_t src[6] = { 0x02, 0x76, 0x68, 0x75, 0xfe, 0x00 };
	unsigned ipl = len - 14, udpl = ipl - 20;

	memset(f, 0, len);
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	f[12] = 0x08;
	f[14] = 0x45;
	f[16] = (uint8_t)(ipl >> 8);
	f[17] = (uint8_t)ipl;
	f[22] = 64;
	f[23] = 17;
	uint8_t sip[4] = { 198, 18, 0, 1 }, dip[4] = { 198, 18, 0, 2 };
	memcpy(f + 26, sip, 4);
	memcpy(f + 30, dip, 4);
	/* IPv4 header checksum */
	uint32_t sum = 0;
	for (int i = 14; i < 34; i += 2)
		sum += (uint32_t)(f[i] << 8 | f[i + 1]);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	f[24] = (uint8_t)(~sum >> 8);
	f[25] = (uint8_t)~sum;
	uint16_t sport = (uint16_t)(1024 + pair), dport = 9;
	f[34] = (uint8_t)(sport >> 8);
	f[35] = (uint8_t)sport;
	f[36] = (uint8_t)(dport >> 8);
	f[37] = (uint8_t)dport;
	f[38] = (uint8_t)(udpl >> 8);
	f[39] = (uint8_t)udpl; /* UDP checksum 0: none */
}

/* ---- --tso, --uso ---- */

static void put16(uint8_t *p, unsigned v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static unsigned get16(const uint8_t *p)
{
	return (unsigned)(p[0] << 8 | p[1]);
}

static uint32_t gso_payload(const struct bench *b)
{
	return GSO_SEGS * b->mss;
}

/* Where the L4 header starts: after Ethernet and IPv4 (34) or IPv6 (54). */
static uint32_t gso_l4(const struct bench *b)
{
	return b->ipv6 ? 54 : 34;
}

/* Ethernet, IP and TCP or UDP. */
static uint32_t gso_hdrs(const struct bench *b)
{
	return gso_l4(b) + (b->gso == GSO_UDP ? 8 : 20);
}

static uint8_t gso_proto(const struct bench *b)
{
	return b->gso == GSO_UDP ? 17 : 6;
}

static uint8_t gso_type(const struct bench *b)
{
	if (b->gso == GSO_UDP)
		return VIRTIO_NET_HDR_GSO_UDP_L4;
	return b->ipv6 ? VIRTIO_NET_HDR_GSO_TCPV6 : VIRTIO_NET_HDR_GSO_TCPV4;
}

/* Where the L4 checksum is, from the L4 header (the virtio-net header's csum_offset). */
static uint16_t gso_csum_off(const struct bench *b)
{
	return b->gso == GSO_UDP ? 6 : 16;
}

/* The frame's fixed headers: IPv4 DF (or IPv6 2001:db8::1 to ::2), TCP ACK|PSH; lengths,
 * id, seq, checksums per frame. */
static void build_gso(const struct bench *b, uint8_t *f, unsigned pair)
{
	static const uint8_t mac[12] = { 2, 0, 0, 0, 0, 1, 2, 0x76, 0x68, 0x75, 0xfe, 0 };
	uint8_t *l4 = f + gso_l4(b);

	memset(f, 0, gso_hdrs(b));
	memcpy(f, mac, 12);
	if (b->ipv6) {
		put16(f + 12, 0x86dd);
		f[14] = 0x60;
		f[14 + 6] = gso_proto(b);
		f[14 + 7] = 64;
		put16(f + 22, 0x2001);
		put16(f + 24, 0xdb8);
		f[37] = 1;
		memcpy(f + 38, f + 22, 15);
		f[53] = 2;
	} else {
		put16(f + 12, 0x0800);
		f[14] = 0x45;
		put16(f + 14 + 6, 0x4000);
		f[14 + 8] = 64;
		f[14 + 9] = gso_proto(b);
		memcpy(f + 26, "\xc6\x12\x00\x01\xc6\x12\x00\x02", 8);
	}
	put16(l4, 1024 + pair);
	put16(l4 + 2, 5001);
	if (b->gso == GSO_TCP) {
		l4[12] = 5 << 4;
		l4[13] = 0x18; /* ACK, PSH */
		put16(l4 + 14, 65535);
	}
}

static uint32_t fold_sum(const uint8_t *p, uint32_t n, uint32_t s)
{
	for (uint32_t i = 0; i + 1 < n; i += 2)
		s += (uint32_t)(p[i] << 8 | p[i + 1]);
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return s;
}

/* Frame seq: the virtio-net header, lengths, id, TCP sequence number or UDP length, the
 * payload (each segment-to-be starts with magic, seq and its index), and the partial
 * checksum. */
static void stamp_gso(const struct bench *b, uint8_t *buf, uint64_t seq)
{
	uint8_t *f = buf + HDR_LEN;
	uint32_t hdrs = gso_hdrs(b), pay = gso_payload(b), len = hdrs + pay, m = MAGIC;
	uint32_t l4 = gso_l4(b);
	struct gso_hdr h = { .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
			     .gso_type = gso_type(b),
			     .hdr_len = (uint16_t)hdrs,
			     .gso_size = (uint16_t)b->mss,
			     .csum_start = (uint16_t)l4,
			     .csum_offset = gso_csum_off(b) };

	memset(buf, 0, HDR_LEN);
	gso_hdr_write(&h, buf);
	if (b->ipv6) {
		put16(f + 18, len - l4); /* payload length */
	} else {
		put16(f + 16, len - 14);
		put16(f + 18, (unsigned)(seq * GSO_SEGS));
		put16(f + 24, 0);
		put16(f + 24, ~fold_sum(f + 14, 20, 0) & 0xffff);
	}
	if (b->gso == GSO_TCP) {
		uint32_t tseq = (uint32_t)(seq * pay);
		put16(f + l4 + 4, tseq >> 16);
		put16(f + l4 + 6, tseq & 0xffff);
	} else {
		put16(f + l4 + 4, len - l4);
	}
	for (unsigned k = 0; k < GSO_SEGS; k++) {
		uint8_t *d = f + hdrs + k * b->mss;
		memcpy(d, &m, 4);
		memcpy(d + 4, &seq, 8);
		memcpy(d + 12, &k, 4);
		for (unsigned i = GSO_STAMP; i < b->mss; i++)
			d[i] = pattern(seq, k * b->mss + i);
	}
	/* NEEDS_CSUM: the checksum field holds the pseudo-header sum, not inverted. */
	uint32_t ps = b->ipv6 ? fold_sum(f + 22, 32, gso_proto(b) + (len - l4))
			      : fold_sum(f + 26, 8, gso_proto(b) + (len - l4));
	put16(f + l4 + gso_csum_off(b), ps);
}

/* One segment (or a whole frame, k0 = 0, nseg = GSO_SEGS) that came back: its bytes from
 * payload offset k0 * mss on. Returns the segments it holds, or 0 when it is bad. */
static unsigned check_gso_payload(const struct bench *b, const uint8_t *f, uint32_t len)
{
	uint32_t hdrs = gso_hdrs(b), pay = len - hdrs, l4 = gso_l4(b), m;
	uint64_t seq;
	unsigned k0;

	memcpy(&m, f + hdrs, 4);
	memcpy(&seq, f + hdrs + 4, 8);
	memcpy(&k0, f + hdrs + 12, 4);
	if (m != MAGIC || seq >= b->seq || k0 >= GSO_SEGS || pay % b->mss ||
	    k0 + pay / b->mss > GSO_SEGS)
		return 0;
	/* IPv6: the payload length; IPv4: the total length and the id, one more per segment. */
	bool ip_ok = b->ipv6 ? get16(f + 18) == len - l4
			     : get16(f + 18) == ((seq * GSO_SEGS + k0) & 0xffff) &&
				       get16(f + 16) == len - 14;
	if (!ip_ok)
		return 0;
	if (b->gso == GSO_TCP) {
		uint32_t tseq = (uint32_t)(get16(f + l4 + 4) << 16 | get16(f + l4 + 6));
		if (tseq != (uint32_t)(seq * gso_payload(b) + k0 * b->mss))
			return 0;
		/* PSH only on the last segment; ACK on all. */
		bool last = k0 + pay / b->mss == GSO_SEGS;
		if (f[l4 + 13] != (last ? 0x18 : 0x10))
			return 0;
	} else if (get16(f + l4 + 4) != len - l4) {
		return 0;
	}
	for (uint32_t i = 0; i < pay; i++) {
		uint32_t off = k0 * b->mss + i, in = off % b->mss;
		uint8_t st[GSO_STAMP];
		if (in >= GSO_STAMP) {
			if (f[hdrs + i] != pattern(seq, off))
				return 0;
			continue;
		}
		unsigned k = off / b->mss;
		memcpy(st, &m, 4);
		memcpy(st + 4, &seq, 8);
		memcpy(st + 12, &k, 4);
		if (f[hdrs + i] != st[in])
			return 0;
	}
	return pay / b->mss;
}

static void check_gso(struct bench *b, const uint8_t *hdr, uint8_t *f, uint32_t len)
{
	uint32_t hdrs = gso_hdrs(b), l4 = gso_l4(b);
	struct gso_hdr h;
	unsigned n;

	gso_hdr_read(&h, hdr);
	b->rx_bytes += len;
	if (len < hdrs + GSO_STAMP || get16(f + 12) != (b->ipv6 ? 0x86dd : 0x0800) ||
	    f[b->ipv6 ? 20 : 23] != gso_proto(b)) {
		b->foreign++;
		b->rx++;
		return;
	}
	if (h.gso_type) {
		/* Whole: only if we take it, and with the header it was sent with. */
		if (b->tso_segments || h.gso_type != gso_type(b) || h.gso_size != b->mss ||
		    !(h.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) || h.csum_start != l4 ||
		    h.csum_offset != gso_csum_off(b) || len != hdrs + gso_payload(b)) {
			b->bad++;
			b->rx++;
			return;
		}
		gso_csum_complete(&h, f, len);
		b->tso_whole++;
	} else if (h.flags) {
		gso_csum_complete(&h, f, len);
	}
	/* No GSO header but more than one segment's payload: back whole, unmarked. */
	bool nohdr = !h.gso_type && len > hdrs + b->mss;
	if (nohdr)
		b->tso_nohdr++;
	else if (!h.gso_type && !h.flags)
		b->tso_segs++;
	n = gso_csum_ok(f, len) ? check_gso_payload(b, f, len) : 0;
	bool whole = h.gso_type || nohdr;
	if (!n || (whole && n != GSO_SEGS) || (!whole && n != 1)) {
		b->bad++;
		b->rx++;
		return;
	}
	/* A UDP segment made by the back-end carries a checksum: zero ("none") is not one. */
	if (b->gso == GSO_UDP && !whole && get16(f + l4 + 6) == 0) {
		b->bad++;
		b->rx++;
		return;
	}
	b->rx += n;
}

/* Writes seq and the payload it implies into frame f of len bytes. */
static void stamp(const struct bench *b, uint8_t *f, unsigned len, uint64_t seq)
{
	uint32_t m = MAGIC;

	memcpy(f + L2L3L4, &m, 4);
	memcpy(f + L2L3L4 + 4, &seq, 8);
	if (b->mode == MODE_LOOP)
		for (unsigned i = L2L3L4 + 12; i < len; i++)
			f[i] = pattern(seq, i);
}

static void check_frame(struct bench *b, struct pair *p, const uint8_t *hdr, uint8_t *f,
			uint32_t len)
{
	uint32_t m;
	uint64_t seq;

	if (b->gso) {
		check_gso(b, hdr, f, len);
		return;
	}
	b->rx++;
	b->rx_bytes += len;
	if (b->mode != MODE_LOOP)
		return;
	if (len < L2L3L4 + 12) {
		b->foreign++;
		return;
	}
	memcpy(&m, f + L2L3L4, 4);
	if (m != MAGIC || f[12] != 0x08 || f[13] != 0x00) {
		b->foreign++; /* not ours: a stray frame from the back-end */
		return;
	}
	memcpy(&seq, f + L2L3L4 + 4, 8);
	/* Its length: --size, or with --mix the one its IPv4 total length says, if one of the
	 * two (the back-ends rewrite addresses, never lengths). */
	uint32_t want = b->size;
	if (b->mix) {
		want = (uint32_t)(f[16] << 8 | f[17]) + 14;
		want = want == b->mix || want == b->size ? want : 0;
	}
	if (len != want || seq >= b->seq) {
		b->bad++;
		return;
	}
	/* Each pair's frames go out in sequence order, and a back-end that forwards a queue to
	 * the same queue (vhu-net --loopback, testpmd io) keeps it. */
	if (seq < p->next_seq)
		b->reordered++;
	else
		p->next_seq = seq + 1;
	for (unsigned i = L2L3L4 + 12; i < len; i++) {
		if (f[i] != pattern(seq, i)) {
			b->bad++;
			return;
		}
	}
}

static int post_rx(const struct bench *b, struct pair *p, unsigned i)
{
	struct iovec iov = { p->rxbuf[i], b->rxbuf };
	/* --iommu-strict: a receive buffer is mapped as it is posted (as a guest driver's DMA
	 * map): a miss on it would cost the back-end the frame. Transmit buffers are not: their
	 * misses are answered on the channel. */
	if (strict_fe)
		vhu_frontend_iotlb_map(strict_fe, p->rxbuf[i], b->rxbuf);
	return vhu_drvq_add(p->rxq, &iov, 0, 1, (void *)(uintptr_t)(i + 1));
}

/* A frame that came back broken in its buffers: bad, and back (not lost). */
static void rx_bad(struct bench *b)
{
	b->bad++;
	b->rx++;
}

/* One used rx buffer i of len bytes: to check_frame, or into the frame being merged. */
static void rx_frame(struct bench *b, struct pair *p, unsigned i, uint32_t len)
{
	uint8_t *buf = p->rxbuf[i];

	if (b->lc.on)
		fe_logcheck_wrote(&b->lc, buf, len);
	if (p->merge_left) {
		/* A continuation buffer of a mergeable frame: no header. "The device MUST use
		 * all buffers but the last (i.e. the first num_buffers - 1 buffers) completely
		 * up to the full length of each buffer supplied by the driver." */
		if (p->merge_left > 1 && len != b->rxbuf)
			p->merge_bad = true;
		if (p->merge_len + len <= sizeof(p->frame))
			memcpy(p->frame + p->merge_len, buf, len);
		else
			p->merge_bad = true;
		p->merge_len += len;
		if (--p->merge_left == 0) {
			if (p->merge_bad)
				rx_bad(b);
			else
				check_frame(b, p, p->merge_hdr, p->frame, p->merge_len);
		}
	} else if (len < HDR_LEN) {
		b->bad++;
	} else {
		uint16_t nb = (uint16_t)(buf[10] | buf[11] << 8);
		/* "If VIRTIO_NET_F_MRG_RXBUF has not been negotiated, the device MUST set
		 * num_buffers to 1": more is bad; 0 is let pass there (vhost-net and DPDK leave
		 * the field alone), never with MRG_RXBUF. */
		if (b->mrg ? nb == 0 : nb > 1) {
			rx_bad(b);
		} else if (nb > 1) {
			b->rx_merged++;
			memcpy(p->frame, buf + HDR_LEN, len - HDR_LEN);
			memcpy(p->merge_hdr, buf, HDR_LEN);
			p->merge_len = len - HDR_LEN;
			p->merge_left = nb - 1u;
			p->merge_bad = len != b->rxbuf;
		} else {
			check_frame(b, p, buf, buf + HDR_LEN, len - HDR_LEN);
		}
	}
	/* --iommu-strict: the vIOMMU takes the buffer back before reposting it. */
	if (strict_fe)
		vhu_frontend_iotlb_invalidate(strict_fe, buf, b->rxbuf);
}

/* Takes the used rx buffers a burst at a time (vhu_drvq_get_burst), hands frames to
 * check_frame, reposts the buffers with one vhu_drvq_add_burst() and one kick check. */
static unsigned poll_rx(struct bench *b, struct pair *p)
{
	unsigned n = 0, got;
	uint32_t lens[TX_BATCH];
	void *toks[TX_BATCH];
	struct iovec iov[TX_BATCH];

	uint64_t frames = 0, bytes = 0;
	bool count_only = b->count_only;

	while ((got = vhu_drvq_get_burst(p->rxq, toks, lens, TX_BATCH))) {
		for (unsigned k = 0; k < got; k++) {
			unsigned i = (unsigned)(uintptr_t)toks[k] - 1;
			uint8_t *buf = p->rxbuf[i];
			uint16_t nb = (uint16_t)(buf[10] | buf[11] << 8);
			/* A frame in one buffer, checked as rx_frame() would check it. */
			if (count_only && !p->merge_left && lens[k] >= HDR_LEN &&
			    (b->mrg ? nb == 1 : nb <= 1)) {
				frames++;
				bytes += lens[k] - HDR_LEN;
			} else {
				rx_frame(b, p, i, lens[k]);
			}
			iov[k] = (struct iovec){ buf, b->rxbuf };
		}
		if (strict_fe)
			for (unsigned k = 0; k < got; k++)
				vhu_frontend_iotlb_map(strict_fe, iov[k].iov_base, b->rxbuf);
		vhu_drvq_add_burst(p->rxq, iov, got, true, toks);
		n += got;
	}
	b->rx += frames;
	b->rx_bytes += bytes;
	if (n)
		vhu_drvq_kick(p->rxq);
	return n;
}

static unsigned reclaim_tx(const struct bench *b, struct pair *p)
{
	unsigned n = 0, got;
	uint32_t lens[TX_BATCH];
	void *toks[TX_BATCH];

	while ((got = vhu_drvq_get_burst(p->txq, toks, lens, TX_BATCH))) {
		uint16_t *fr = p->txfree + p->ntxfree;
		for (unsigned k = 0; k < got; k++)
			fr[k] = (uint16_t)((uintptr_t)toks[k] - 1);
		p->ntxfree += got;
		if (strict_fe)
			for (unsigned k = 0; k < got; k++)
				vhu_frontend_iotlb_invalidate(strict_fe, p->txbuf[fr[k]], b->txbuf);
		n += got;
	}
	return n;
}

/* --tx-parts: each of the n buffers in iov as the virtio-net header alone, then the frame in
 * tx_parts - 1 pieces (one descriptor each, or an indirect table). Returns the count added,
 * or what vhu_drvq_add() said of the first. */
static int add_parts(const struct bench *b, struct pair *p, const struct iovec *iov,
		     void *const *toks, unsigned n)
{
	unsigned k;

	for (k = 0; k < n; k++) {
		struct iovec part[MAX_PARTS];
		uint8_t *f = (uint8_t *)iov[k].iov_base + HDR_LEN;
		size_t flen = iov[k].iov_len - HDR_LEN, piece = flen / (b->tx_parts - 1), off = 0;
		part[0] = (struct iovec){ iov[k].iov_base, HDR_LEN };
		for (unsigned j = 1; j < b->tx_parts; j++) {
			size_t l = j + 1 == b->tx_parts ? flen - off : piece;
			part[j] = (struct iovec){ f + off, l };
			off += l;
		}
		int r = vhu_drvq_add(p->txq, part, b->tx_parts, 0, toks[k]);
		if (r)
			return k ? (int)k : r;
	}
	return (int)k;
}

/* Sends up to `budget` frames on pair p (one more when a GSO frame's segments overshoot). */
static unsigned send_tx(struct bench *b, struct pair *p, uint64_t budget)
{
	struct iovec iov[TX_BATCH];
	void *toks[TX_BATCH];
	uint64_t per = b->gso ? GSO_SEGS : 1; /* budget and counts are in segments */
	uint64_t most = budget / per + (budget % per != 0);
	unsigned n = p->ntxfree < TX_BATCH ? p->ntxfree : TX_BATCH;
	size_t glen = HDR_LEN + gso_hdrs(b) + gso_payload(b);
	const uint16_t *fr = p->txfree + p->ntxfree;
	int added;

	if (most < n)
		n = (unsigned)most;
	if (n == 0)
		return 0;
	/* One burst: up to TX_BATCH frames, one publish, one kick check. */
	for (unsigned k = 0; k < n; k++) {
		unsigned i = fr[-1 - (int)k];
		iov[k] = (struct iovec){ p->txbuf[i], b->gso ? glen : HDR_LEN + frame_len(b, i) };
		toks[k] = (void *)(uintptr_t)(i + 1);
	}
	/* What is checked when it comes back (loop mode) carries its sequence number; tx mode
	 * sends the frames as setup_pair() built them. */
	if (b->gso)
		for (unsigned k = 0; k < n; k++)
			stamp_gso(b, iov[k].iov_base, b->seq + k);
	else if (b->mode == MODE_LOOP)
		for (unsigned k = 0; k < n; k++)
			stamp(b, (uint8_t *)iov[k].iov_base + HDR_LEN,
			      (unsigned)iov[k].iov_len - HDR_LEN, b->seq + k);
	if (b->tx_parts > 1)
		added = add_parts(b, p, iov, toks, n);
	else
		added = vhu_drvq_add_burst(p->txq, iov, n, false, toks);
	if (added <= 0)
		return 0;
	p->ntxfree -= (unsigned)added;
	b->seq += (unsigned)added;
	b->tx += (unsigned)added * per;
	if (b->mix)
		for (int k = 0; k < added; k++)
			b->tx_bytes += iov[k].iov_len - HDR_LEN;
	vhu_drvq_kick(p->txq);
	return (unsigned)added;
}

/* If the back-end hung up, wait for it to come back (or give up). 0 or -errno. */
static int keep_alive(struct bench *b)
{
	if (b->peer && !vhu_frontend_alive(b->peer)) {
		fprintf(stderr, "vhu-fe net-bench: the peer's back-end went away\n");
		return -ECONNRESET;
	}
	if (vhu_frontend_alive(b->fe))
		return 0;
	if (!b->reconnect_ms || b->peer) {
		fprintf(stderr, "vhu-fe net-bench: the back-end went away\n");
		return -ECONNRESET;
	}
	double t = fe_now();
	fprintf(stderr, "vhu-fe net-bench: the back-end went away; waiting for it to come back\n");
	if (b->lc.on) {
		/* What the dead back-end published is checked against the log now: the next
		 * one gets the log again and must mark its own writes. */
		for (unsigned k = 0; k < b->pairs; k++) {
			poll_rx(b, &b->p[k]);
			reclaim_tx(b, &b->p[k]);
		}
		fe_logcheck_check(&b->lc, 2 * b->pairs, "vhu-fe net-bench");
	}
	/* Frames it held (in its queues, not yet returned) may be gone with it. */
	uint64_t back = b->rx - b->foreign + b->at_risk;
	b->at_risk += b->tx > back ? b->tx - back : 0;
	int ret = vhu_frontend_reconnect(b->fe, b->reconnect_ms);
	if (ret) {
		fprintf(stderr, "vhu-fe net-bench: reconnect failed: %s\n", strerror(-ret));
		return ret;
	}
	b->reconnects++;
	b->rx_at_reconnect = b->rx;
	fprintf(stderr, "vhu-fe net-bench: back-end reconnected after %.2fs\n", fe_now() - t);
	return 0;
}

/* The frames (or segments) that come back for one sent: their largest size. */
static uint32_t frame_back(const struct bench *b)
{
	if (!b->gso)
		return b->mix > b->size ? b->mix : b->size;
	return gso_hdrs(b) + (b->tso_segments ? b->mss : gso_payload(b));
}

static size_t round_up(size_t v, size_t to)
{
	return (v + to - 1) / to * to;
}

/* Receive buffers one sent frame takes, to bound the frames in flight by those posted. */
static unsigned bufs_per_frame(const struct bench *b)
{
	unsigned per = (unsigned)((HDR_LEN + frame_back(b) + b->rxbuf - 1) / b->rxbuf);

	return b->gso && b->tso_segments ? GSO_SEGS * per : per;
}

static int setup_pair(struct bench *b, unsigned k)
{
	struct pair *p = &b->p[k];
	struct vhu_frontend *rfe = b->peer ? b->peer : b->fe;

	p->rxq = vhu_frontend_queue(rfe, 2 * k);
	p->txq = vhu_frontend_queue(b->fe, 2 * k + 1);
	p->rxbuf = calloc(b->qsz, sizeof(*p->rxbuf));
	p->txbuf = calloc(b->qsz, sizeof(*p->txbuf));
	p->txfree = calloc(b->qsz, sizeof(*p->txfree));
	if (!p->rxq || !p->txq || !p->rxbuf || !p->txbuf || !p->txfree)
		return -ENOMEM;
	for (unsigned i = 0; i < b->qsz; i++) {
		/* --iommu-strict maps and invalidates whole pages: a buffer to its own pages, so
		 * that taking one back never unmaps a neighbour still posted. */
		size_t al = strict_fe ? 4096 : 64;
		p->rxbuf[i] = vhu_frontend_alloc(rfe, round_up(b->rxbuf, al), al);
		p->txbuf[i] = vhu_frontend_alloc(b->fe, b->txbuf, al);
		if (!p->rxbuf[i] || !p->txbuf[i])
			return -ENOMEM;
		build_frame(b, p->txbuf[i] + HDR_LEN, k, frame_len(b, i));
		if (!b->gso) /* tx mode sends it as it is */
			stamp(b, p->txbuf[i] + HDR_LEN, frame_len(b, i), 0);
		p->txfree[p->ntxfree++] = (uint16_t)i;
	}
	if (b->mode != MODE_TX) {
		for (unsigned i = 0; i < b->qsz; i++)
			if (post_rx(b, p, i))
				break;
		vhu_drvq_kick(p->rxq);
	}
	return 0;
}

static void free_pairs(struct bench *b)
{
	for (unsigned k = 0; k < b->pairs; k++) {
		free(b->p[k].rxbuf);
		free(b->p[k].txbuf);
		free(b->p[k].txfree);
	}
}

static struct bench b = {
	.pairs = 1, .qsz = 256, .size = 64, .mode = MODE_TX, .mss = 1448, .tx_parts = 1
};

static struct {
	struct vhu_frontend_opts o;
	double duration, reconnect_s;
	const char *peer; /* --peer */
	bool packed, json, quiet, no_mrg, no_in_order, verbose, log, log_check, iommu, iommu_strict;
	bool tso, uso;
} a = { .o = { .size = VHU_FRONTEND_OPTS_SIZE, .log = fe_log, .log_level = VHU_LOG_DEBUG },
	.duration = 5,
	.reconnect_s = 30 };

static const char *mode_name(enum mode m)
{
	return m == MODE_TX ? "tx" : m == MODE_RX ? "rx" : "loop";
}

static int parse_mode(const struct opt *o, const char *arg)
{
	enum mode *m = o->target;

	for (enum mode k = MODE_TX; k <= MODE_LOOP; k++)
		if (!strcmp(arg, mode_name(k))) {
			*m = k;
			return 0;
		}
	return -EINVAL;
}

static const struct opt opts[] = {
	{ "path", 'p', "PATH", opt_str, &a.o.path,
	  "the back-end: a vhost-user socket, /dev/vhost-net (vhost-kernel)\n"
	  "or /dev/vhost-vdpa-N (vhost-vdpa); the kind follows from it" },
	{ "socket-path", 's', "PATH", opt_str, &a.o.path, "the same as --path" },
	{ "iface", 'i', "IFNAME", opt_str, &a.o.iface,
	  "vhost-kernel: the tap, attached when it exists, else created\n"
	  "(and gone at exit); default vhu%d" },
	{ "server", 0, NULL, opt_flag, &a.o.server,
	  "listen on PATH and wait for the back-end to connect" },
	{ "packed", 0, NULL, opt_flag, &a.packed, "packed rings (default split)" },
	{ "queues", 'q', "N", opt_uint, &b.pairs, "queue pairs (default 1)", 1, MAX_PAIRS },
	{ "queue-size", 0, "N", opt_uint, &b.qsz, "ring size, a power of two (default 256)", 2,
	  4096 },
	{ "size", 'z', "BYTES", opt_uint, &b.size,
	  "frame size without the virtio-net header (default 64; over\n"
	  "2036, several buffers each with MRG_RXBUF, else big ones)",
	  60, MAX_SIZE },
	{ "mix", 0, "BYTES", opt_uint, &b.mix,
	  "every fourth transmit buffer sends frames of BYTES instead\n"
	  "(not with --tso/--uso)",
	  60, MAX_SIZE },
	{ "tx-parts", 0, "N", opt_uint, &b.tx_parts,
	  "send each frame in N parts: the virtio-net header alone, then\n"
	  "the frame in N - 1 pieces (default 1: one buffer)",
	  1, MAX_PARTS },
	{ "duration", 'd', "S", opt_double, &a.duration, "seconds (default 5)" },
	{ "mode", 'm', "tx|rx|loop", parse_mode, &b.mode,
	  "send, receive, or send and check every frame comes back" },
	{ "no-mrg-rxbuf", 0, NULL, opt_flag, &a.no_mrg, "do not negotiate MRG_RXBUF" },
	{ "no-in-order", 0, NULL, opt_flag, &a.no_in_order, "do not negotiate IN_ORDER" },
	{ "iommu", 0, NULL, opt_flag, &a.iommu, FE_HELP_IOMMU },
	{ "iommu-strict", 0, NULL, opt_flag, &a.iommu_strict,
	  "ACCESS_PLATFORM: pages mapped on IOTLB misses, each buffer\ninvalidated when it "
	  "completed" },
	{ "hugepages", 0, "DIR", opt_str, &a.o.hugepage_dir,
	  "shared memory on hugetlbfs mounted at DIR" },
	{ "reconnect-timeout", 0, "S", opt_double, &a.reconnect_s, FE_HELP_RECONNECT },
	{ "log", 0, NULL, opt_flag, &a.log, FE_HELP_LOG },
	{ "log-check", 0, NULL, opt_flag, &a.log_check, FE_HELP_LOG_CHECK },
	{ "peer", 0, "PATH", opt_str, &a.peer,
	  "loop mode: send on --path, receive and check on a second\n"
	  "front-end on PATH (e.g. two ports of a vhu-net switch)" },
	{ "tso", 0, NULL, opt_flag, &a.tso,
	  "send TCP/IPv4 GSO frames of 8 segments (HOST_TSO4, NEEDS_CSUM;\n"
	  "loop mode) and check what comes back: whole (GUEST_TSO4)\n"
	  "or segmented; JSON: tso_whole, tso_segments, tso_nohdr (whole\n"
	  "but without a GSO header); counts in segments" },
	{ "uso", 0, NULL, opt_flag, &a.uso,
	  "the same with UDP/IPv4 GSO frames (HOST_USO, gso_type UDP_L4;\n"
	  "whole with GUEST_USO4); the same JSON counters" },
	{ "ipv6", 0, NULL, opt_flag, &b.ipv6,
	  "with --tso or --uso: TCP or UDP over IPv6 (HOST_TSO6 and\n"
	  "GUEST_TSO6, or GUEST_USO6)" },
	{ "tso-segments", 0, NULL, opt_flag, &b.tso_segments,
	  "with --tso or --uso, do not negotiate GUEST_CSUM nor\n"
	  "GUEST_TSO4/GUEST_USO4: the back-end must segment" },
	{ "mss", 0, "BYTES", opt_uint, &b.mss, "--tso/--uso segment size (default 1448)", 64,
	  1460 },
	{ "json", 'j', NULL, opt_flag, &a.json,
	  "one JSON object at the end: tx_packets, rx_packets, mpps, gbps,\nbad, lost" },
	{ "quiet", 0, NULL, opt_flag, &a.quiet, "no per-second rates" },
	{ "verbose", 'v', NULL, opt_flag, &a.verbose, "log every message" },
};

static const struct opt_cmd net_bench_opts = {
	.prog = "vhu-fe net-bench",
	.synopsis = "Usage: vhu-fe net-bench [OPTIONS]",
	.summary = "virtio-net packet generator and sink",
	OPT_CMD_OPTS(opts),
	.epilog = "Exit status 0 only when frames moved and none came back bad or went missing.\n",
};

/* VIRTIO_NET_F_MTU offered: the config's mtu (read before the features are set, as a driver
 * does to decide on them), else 0. */
static unsigned offered_mtu(struct vhu_frontend *fe)
{
	uint16_t mtu;

	if (!(vhu_frontend_device_features(fe) >> VIRTIO_NET_F_MTU & 1) ||
	    vhu_frontend_get_config(fe, offsetof(struct virtio_net_config, mtu), &mtu, sizeof(mtu)))
		return 0;
	return le16toh(mtu);
}

/* Connects to path with mem bytes of shared memory. 0, or 1 after saying why. */
static int open_one(struct vhu_frontend **fe, const char *path, size_t mem)
{
	struct vhu_frontend_opts o = a.o;
	int ret;

	o.path = path;
	o.mem_size = mem;
	ret = vhu_frontend_open(fe, &o);
	if (ret) {
		fprintf(stderr, "vhu-fe net-bench: %s: %s\n", path, strerror(-ret));
		*fe = NULL;
		return 1;
	}
	if (b.pairs > 1 && vhu_frontend_queue_num(*fe) < b.pairs) {
		fprintf(stderr, "vhu-fe net-bench: %s has %u queue pairs, %u asked\n", path,
			vhu_frontend_queue_num(*fe), b.pairs);
		return 1;
	}
	return 0;
}

/* Connects, negotiates and sets up every pair. 0, or 1 after saying why (b.fe closed). */
static int open_start(void)
{
	size_t rxalloc = round_up(b.rxbuf, a.iommu_strict ? 4096 : 64);
	size_t mem = (size_t)b.pairs * b.qsz * (rxalloc + b.txbuf + 1024) + (8u << 20);
	int ret;

	if (open_one(&b.fe, a.o.path, mem) || (a.peer && open_one(&b.peer, a.peer, mem)))
		goto fail;
	if (a.iommu || a.iommu_strict)
		vhu_frontend_set_iommu(b.fe, a.iommu_strict ? VHU_FRONTEND_IOMMU_STRICT
							    : VHU_FRONTEND_IOMMU);
	strict_fe = a.iommu_strict ? b.fe : NULL;
	uint64_t want = (1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_RING_F_EVENT_IDX) |
			(1ULL << VIRTIO_RING_F_INDIRECT_DESC);
	if (!a.no_mrg)
		want |= 1ULL << VIRTIO_NET_F_MRG_RXBUF;
	if (!a.no_in_order)
		want |= 1ULL << VIRTIO_F_IN_ORDER;
	if (a.packed)
		want |= 1ULL << VIRTIO_F_RING_PACKED;
	if (b.pairs > 1)
		want |= 1ULL << VIRTIO_NET_F_MQ;
	/* "A driver SHOULD negotiate VIRTIO_NET_F_MTU if the device offers it", and then "MUST
	 * supply enough receive buffers to receive at least one receive packet of size mtu
	 * (plus low level ethernet header length)": with MRG_RXBUF any number of them. */
	struct vhu_frontend *rfe = b.peer ? b.peer : b.fe;
	unsigned mtu = offered_mtu(rfe);
	bool mrg = !a.no_mrg && (vhu_frontend_device_features(rfe) >> VIRTIO_NET_F_MRG_RXBUF & 1);
	if (mtu >= 68 && (mrg || HDR_LEN + mtu + ETH_VLAN <= b.rxbuf))
		want |= 1ULL << VIRTIO_NET_F_MTU;
	bool udp = b.gso == GSO_UDP;
	unsigned host = udp	 ? VIRTIO_NET_F_HOST_USO
			: b.ipv6 ? VIRTIO_NET_F_HOST_TSO6
				 : VIRTIO_NET_F_HOST_TSO4;
	unsigned guest = udp ? (b.ipv6 ? VIRTIO_NET_F_GUEST_USO6 : VIRTIO_NET_F_GUEST_USO4)
			     : (b.ipv6 ? VIRTIO_NET_F_GUEST_TSO6 : VIRTIO_NET_F_GUEST_TSO4);
	uint64_t gso = (1ULL << VIRTIO_NET_F_CSUM) | (1ULL << host);
	if (b.gso && !b.tso_segments)
		gso |= (1ULL << VIRTIO_NET_F_GUEST_CSUM) | (1ULL << guest);
	if (b.gso)
		want |= gso;
	struct vhu_frontend_start_opts so = { .size = VHU_FRONTEND_START_OPTS_SIZE,
					      .features = want,
					      .nvqs = 2 * b.pairs,
					      .queue_size = b.qsz,
					      .poll = true };
	ret = vhu_frontend_start(b.fe, &so);
	if (!ret && b.peer)
		ret = vhu_frontend_start(b.peer, &so);
	if (ret) {
		fprintf(stderr, "vhu-fe net-bench: start: %s\n", strerror(-ret));
		goto fail;
	}
	uint64_t f = vhu_frontend_features(b.fe);
	if (b.peer && vhu_frontend_features(b.peer) != f) {
		fprintf(stderr, "vhu-fe net-bench: --peer negotiated 0x%llx, --path 0x%llx\n",
			(unsigned long long)vhu_frontend_features(b.peer), (unsigned long long)f);
		goto fail;
	}
	b.mrg = f >> VIRTIO_NET_F_MRG_RXBUF & 1;
	b.mtu = f >> VIRTIO_NET_F_MTU & 1 ? mtu : 0;
	if (b.gso && ((f & gso) != gso || (!b.mrg && !b.tso_segments))) {
		fprintf(stderr,
			"vhu-fe net-bench: --%s: the back-end does not offer the offloads "
			"(or MRG_RXBUF, for whole frames back)\n",
			udp ? "uso" : "tso");
		goto fail;
	}
	if (!b.mrg && HDR_LEN + frame_back(&b) > b.rxbuf) {
		fprintf(stderr,
			"vhu-fe net-bench: MRG_RXBUF not offered: frames of %u bytes need "
			"--no-mrg-rxbuf (big receive buffers)\n",
			frame_back(&b));
		goto fail;
	}
	if (a.packed && !(f >> VIRTIO_F_RING_PACKED & 1)) {
		fprintf(stderr, "vhu-fe net-bench: the back-end does not offer RING_PACKED\n");
		goto fail;
	}
	if (a.log_check && fe_logcheck_start(&b.lc, b.fe, "vhu-fe net-bench"))
		goto fail;
	if (a.log && !a.log_check && (ret = vhu_frontend_log_start(b.fe))) {
		fprintf(stderr, "vhu-fe net-bench: --log: %s\n", strerror(-ret));
		goto fail;
	}
	for (unsigned k = 0; k < b.pairs; k++) {
		if (setup_pair(&b, k)) {
			fprintf(stderr, "vhu-fe net-bench: out of shared memory\n");
			goto fail;
		}
	}
	b.count_only = b.mode == MODE_RX && !b.lc.on && !b.gso && !strict_fe;
	if (!a.quiet)
		fprintf(stderr,
			"vhu-fe net-bench: %s, %s rings, %u pair(s), %u B frames, %gs, features "
			"0x%llx\n",
			mode_name(b.mode), a.packed ? "packed" : "split", b.pairs, b.size,
			a.duration, (unsigned long long)f);
	if (!a.quiet && b.mtu && !b.gso && b.size > b.mtu + ETH_VLAN)
		fprintf(stderr,
			"vhu-fe net-bench: %u B frames exceed the MTU (%u) the back-end gave: it "
			"must drop them\n",
			b.size, b.mtu);
	return 0;
fail:
	vhu_frontend_close(b.peer);
	vhu_frontend_close(b.fe);
	b.peer = b.fe = NULL;
	free_pairs(&b);
	return 1;
}

static void send_receive(uint64_t window)
{
	static unsigned rounds;

	/* --iommu: the back-end's IOTLB misses are answered here (every round when strict). */
	if (a.iommu_strict || (a.iommu && ++rounds % 64 == 0))
		vhu_frontend_channel_dispatch(b.fe);
	for (unsigned k = 0; k < b.pairs; k++) {
		struct pair *p = &b.p[k];
		if (b.mode != MODE_RX) {
			reclaim_tx(&b, p);
			uint64_t budget = UINT64_MAX;
			if (b.mode == MODE_LOOP) {
				/* Frames a dead back-end took with it no longer count. */
				uint64_t back = b.rx - b.foreign + b.at_risk;
				uint64_t out = b.tx > back ? b.tx - back : 0;
				budget = out >= window ? 0 : window - out;
			}
			send_tx(&b, p, budget);
		}
		if (b.mode != MODE_TX)
			poll_rx(&b, p);
		if (vhu_drvq_broken(p->rxq) || vhu_drvq_broken(p->txq))
			stop_flag = 1;
	}
}

/* --log-check in tx and loop modes, every LOG_ROUND_S: the traffic pauses until the
 * back-end has handed everything back, and what it wrote since the last round is checked
 * against the log. A back-end that stops logging part-way fails, which one check at the end
 * would miss (every buffer page is written again and again). When it does not settle within
 * a second, the round is left to the next one. */
#define LOG_ROUND_S 0.1
static void log_round(void)
{
	double until = fe_now() + 1;
	bool settled = false;

	while (!settled && !stop_flag && fe_now() < until) {
		settled = true;
		for (unsigned k = 0; k < b.pairs; k++) {
			struct pair *p = &b.p[k];
			reclaim_tx(&b, p);
			if (b.mode == MODE_LOOP)
				poll_rx(&b, p);
			settled &= p->ntxfree == b.qsz;
		}
		if (b.mode == MODE_LOOP)
			settled &= b.rx - b.foreign + b.at_risk >= b.tx;
	}
	if (settled)
		fe_logcheck_check(&b.lc, 2 * b.pairs, "vhu-fe net-bench");
}

/* The timed run. Returns the seconds it took; *alive_err when the back-end went away for
 * good. */
static double bench_loop(bool *alive_err)
{
	/* In loop mode, no more frames in flight than half the receive buffers posted take (in
	 * segments with --tso/--uso). */
	unsigned frames = b.qsz / 2 / bufs_per_frame(&b);
	uint64_t window = (uint64_t)b.pairs * (frames ? frames : 1) * (b.gso ? GSO_SEGS : 1);
	double t0 = fe_now(), tick = t0 + 1, end = t0 + a.duration, now = t0;
	uint64_t last_tx = 0, last_rx = 0, spins = 0;
	double next_round = t0 + LOG_ROUND_S;

	while (!stop_flag) {
		send_receive(window);
		if (++spins % 256)
			continue;
		now = fe_now();
		if (now >= end)
			break;
		if (b.lc.on && b.mode != MODE_RX && now >= next_round) {
			log_round();
			next_round = fe_now() + LOG_ROUND_S;
		}
		if (spins % 16384 == 0 && keep_alive(&b)) {
			stop_flag = 1;
			*alive_err = true;
		}
		if (now >= tick && !a.quiet) {
			fprintf(stderr, "  %5.1fs  tx %8.3f Mpps  rx %8.3f Mpps\n", now - t0,
				(double)(b.tx - last_tx) / 1e6 / (now - tick + 1),
				(double)(b.rx - last_rx) / 1e6 / (now - tick + 1));
			last_tx = b.tx;
			last_rx = b.rx;
			tick = now + 1;
		}
	}
	double elapsed = fe_now() - t0;
	/* Loop mode: give the frames still in flight up to a second to come back. */
	if (b.mode == MODE_LOOP) {
		double until = fe_now() + 1;
		while (b.rx - b.foreign + b.at_risk < b.tx && fe_now() < until) {
			if (a.iommu || a.iommu_strict)
				vhu_frontend_channel_dispatch(b.fe);
			for (unsigned k = 0; k < b.pairs; k++)
				poll_rx(&b, &b.p[k]);
		}
	}
	return elapsed;
}

/* Prints the result; returns the exit status. */
static int report(double elapsed, bool alive_err)
{
	uint64_t rx_ours = b.rx - b.foreign;
	uint64_t lost = b.mode == MODE_LOOP && b.tx > rx_ours ? b.tx - rx_ours : 0;
	uint64_t pkts = b.mode == MODE_RX ? b.rx : b.tx;
	double mpps = (double)pkts / elapsed / 1e6;
	double gbps = (b.mix && b.mode != MODE_RX ? (double)b.tx_bytes : (double)pkts * b.size) *
		      8 / elapsed / 1e9;
	bool broken = false, log_err = false;

	for (unsigned k = 0; k < b.pairs; k++)
		broken |= vhu_drvq_broken(b.p[k].rxq) || vhu_drvq_broken(b.p[k].txq);
	if (fe_logcheck_finish(&b.lc, 2 * b.pairs, "vhu-fe net-bench"))
		log_err = true;
	if (a.json) {
		printf("{\"mode\": \"%s\", \"packed\": %s, \"queues\": %u, \"size\": %u, "
		       "\"seconds\": %.3f, "
		       "\"tx_packets\": %llu, \"rx_packets\": %llu, \"mpps\": %.4f, \"gbps\": "
		       "%.4f, "
		       "\"bad\": %llu, \"lost\": %llu, \"foreign\": %llu, \"reconnects\": %u, "
		       "\"lost_allowed\": %llu, \"rx_since_reconnect\": %llu, \"tso_whole\": %llu, "
		       "\"tso_segments\": %llu, \"tso_nohdr\": %llu, \"rx_merged\": %llu, "
		       "\"mtu\": %u, \"reordered\": %llu",
		       mode_name(b.mode), a.packed ? "true" : "false", b.pairs, b.size, elapsed,
		       (unsigned long long)b.tx, (unsigned long long)b.rx, mpps, gbps,
		       (unsigned long long)b.bad, (unsigned long long)lost,
		       (unsigned long long)b.foreign, b.reconnects, (unsigned long long)b.at_risk,
		       (unsigned long long)(b.rx - b.rx_at_reconnect),
		       (unsigned long long)b.tso_whole, (unsigned long long)b.tso_segs,
		       (unsigned long long)b.tso_nohdr, (unsigned long long)b.rx_merged, b.mtu,
		       (unsigned long long)b.reordered);
		fe_logcheck_json(&b.lc, stdout);
		printf("}\n");
	} else {
		printf("tx %llu rx %llu packets in %.2fs: %.3f Mpps, %.3f Gbit/s; bad %llu lost "
		       "%llu "
		       "foreign %llu\n",
		       (unsigned long long)b.tx, (unsigned long long)b.rx, elapsed, mpps, gbps,
		       (unsigned long long)b.bad, (unsigned long long)lost,
		       (unsigned long long)b.foreign);
		if (b.lc.on)
			printf("log: %llu pages marked, %llu written by the back-end, %llu of them "
			       "not marked\n",
			       (unsigned long long)b.lc.pages, (unsigned long long)b.lc.written,
			       (unsigned long long)b.lc.missing);
	}
	/* After a reconnect, frames the old back-end held may be gone: that is not a fault of
	 * the back-end that came back, but anything beyond them is. */
	return (b.bad || lost > b.at_risk || broken || alive_err || pkts == 0 || log_err ||
		fe_logcheck_failed(&b.lc))
		       ? 1
		       : 0;
}

static int run(int argc, char **argv)
{
	bool alive_err = false;
	int ret = fe_parse(&cmd_net_bench, argc, argv);

	if (ret >= 0)
		return ret;
	fe_verbose = a.verbose;
	b.reconnect_ms = (int)(a.reconnect_s * 1000);
	b.gso = a.uso ? GSO_UDP : a.tso ? GSO_TCP : GSO_NONE;
	if ((a.tso && a.uso) || (b.ipv6 && !b.gso) || (b.mix && b.gso) ||
	    (b.gso && (b.mode != MODE_LOOP || a.iommu_strict))) {
		fprintf(stderr, "vhu-fe net-bench: one of --tso or --uso (--ipv6 goes with one), "
				"in --mode loop and without --iommu-strict or --mix\n");
		return 2;
	}
	if (a.peer && (b.mode != MODE_LOOP || a.iommu || a.iommu_strict || a.log || a.log_check ||
		       a.o.server)) {
		fprintf(stderr, "vhu-fe net-bench: --peer needs --mode loop (and no --iommu, "
				"--log, --server)\n");
		return 2;
	}
	/* Transmit buffers hold the largest frame sent; receive buffers are BUF_SIZE with
	 * MRG_RXBUF, else as big as what comes back. */
	uint32_t sent = b.gso ? gso_hdrs(&b) + gso_payload(&b) : frame_back(&b);
	b.txbuf = (unsigned)round_up(HDR_LEN + sent, a.iommu_strict ? 4096 : 64);
	b.txbuf = b.txbuf < BUF_SIZE ? BUF_SIZE : b.txbuf;
	b.rxbuf = (unsigned)round_up(HDR_LEN + frame_back(&b), 64);
	b.rxbuf = !a.no_mrg || b.rxbuf < BUF_SIZE ? BUF_SIZE : b.rxbuf;
	if (!a.o.path || (b.qsz & (b.qsz - 1))) {
		fprintf(stderr, "vhu-fe net-bench: need --path; --queue-size a power of "
				"two up to 4096\n");
		return 2;
	}
	if (open_start())
		return 1;
	signal(SIGINT, on_sigint);
	signal(SIGTERM, on_sigint);
	double elapsed = bench_loop(&alive_err);
	ret = report(elapsed, alive_err);
	if (vhu_frontend_stop(b.fe) || (b.peer && vhu_frontend_stop(b.peer)))
		ret = 1;
	vhu_frontend_close(b.peer);
	vhu_frontend_close(b.fe);
	free_pairs(&b);
	fe_logcheck_free(&b.lc);
	return ret;
}

const struct cmd cmd_net_bench = {
	"net-bench",
	run,
	"virtio-net packet generator and sink",
	&net_bench_opts,
};
