/* SPDX-License-Identifier: MIT */
/* vhu-net ports: vhost-user ports on libvhu, tap ports, and the per-queue data path. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_net.h>
#include <linux/virtio_ring.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "net.h"

#define RX_MAX_BUFS 64
/* if_tun.h of Linux 6.2 */
#define NET_TUN_F_USO4 0x20
#define NET_TUN_F_USO6 0x40

static struct vhu_elem tx_elems[NET_BATCH];
static struct vhu_elem rx_elems[RX_MAX_BUFS];

void net_log(void *opaque, int level, const char *msg)
{
	struct port *p = opaque;

	if (level > (p && p->net->verbose ? VHU_LOG_DEBUG : VHU_LOG_INFO) || (p && p->vd_quiet))
		return;
	fprintf(stderr, "vhu-net: %s: %s: %s\n", p ? p->name : "-", vhu_log_level_name(level), msg);
}

static void ep_add(struct net *n, int fd, struct dhandler *h)
{
	int ret = dloop_add(&n->loop, fd, h);

	if (ret)
		fprintf(stderr, "vhu-net: epoll add fd %d: %s\n", fd, strerror(-ret));
}

static void ep_del(struct net *n, int fd)
{
	dloop_del(&n->loop, fd);
}

/* ---- rx: frames into the front-end's receive queue ---- */

static struct nqueue *pick_rxq(struct port *p, unsigned qp)
{
	/* active_pairs >= 1 (ctrl.c); no division for the usual qp below it. */
	unsigned a = p->active_pairs;
	struct nqueue *q = &p->q[2 * (qp < a ? qp : qp % a)];

	if (q->started && vhu_virtq_enabled(q->vq))
		return q;
	for (unsigned i = 0; i < p->active_pairs; i++) {
		q = &p->q[2 * i];
		if (q->started && vhu_virtq_enabled(q->vq))
			return q;
	}
	return NULL;
}

static void mark_dirty(struct net *n, struct nqueue *q)
{
	if (!q->dirty && n->ndirty < sizeof(n->dirty) / sizeof(n->dirty[0])) {
		q->dirty = true;
		n->dirty[n->ndirty++] = q;
	} else if (!q->dirty) {
		vhu_virtq_flush(q->vq);
	}
}

void net_flush_dirty(struct net *n)
{
	for (unsigned i = 0; i < n->ndirty; i++) {
		struct nqueue *q = n->dirty[i];
		if (q->dirty && q->started) {
			vhu_virtq_flush(q->vq);
			/* A push can break the ring too (its memory shrank under us). */
			if (vhu_virtq_broken(q->vq))
				q->port->teardown = true;
		}
		q->dirty = false;
	}
	n->ndirty = 0;
}

/* The frames held for q (a buffer had missed in the IOTLB), again, in order: each delivered
 * or dropped, until the ring waits for the IOTLB again. */
static void held_flush(struct net *n, struct nqueue *q)
{
	struct port *p = q->port;

	while (q->held_n) {
		unsigned k = q->held_first;
		struct iovec iov = { q->held[k], q->held_len[k] };
		uint8_t hdr[NET_HDR_MAX] = { 0 };
		gso_hdr_write(&q->held_hdr[k], hdr);
		int r = vhu_net_rx(q->vq, port_features(p), hdr, &iov, 1, rx_elems, RX_MAX_BUFS);
		if (r == -ENOBUFS && vhu_virtq_iotlb_waiting(q->vq))
			return;
		if (r == -EIO)
			p->teardown = true;
		if (r == 0) {
			q->packets++;
			q->bytes += iov.iov_len;
		} else {
			q->drops++;
		}
		if (r == 0 || r == -EMSGSIZE)
			mark_dirty(n, q);
		q->held_first = (k + 1) % NET_HELD;
		q->held_n--;
		if (r == -EIO)
			return;
	}
}

/* Holds a copy of f for q: 0, or -ENOBUFS when it does not fit. */
static int held_add(struct nqueue *q, const struct gso_hdr *h, const uint8_t *f, uint32_t len)
{
	if (len > NET_HELD_SIZE || q->held_n == NET_HELD ||
	    (!q->held && !(q->held = malloc(NET_HELD * sizeof(*q->held)))))
		return -ENOBUFS;
	unsigned k = (q->held_first + q->held_n++) % NET_HELD;
	memcpy(q->held[k], f, len);
	q->held_len[k] = len;
	q->held_hdr[k] = *h;
	return 0;
}

/* One frame into q now, by vhu_net_rx (several buffers with MRG_RXBUF, a buffer given back
 * unused, the IOTLB awaited): frames held for an IOTLB update go first. */
static int rx_one(struct net *n, struct nqueue *q, const struct gso_hdr *h, const uint8_t *f,
		  uint32_t len)
{
	struct port *p = q->port;
	uint8_t hdr[NET_HDR_MAX] = { 0 };
	int r;

	/* Frames keep their order: those held for an IOTLB update go first, and while the ring
	 * still waits this one joins them. */
	if (q->held_n) {
		held_flush(n, q);
		if (q->held_n) {
			if (held_add(q, h, f, len) == 0)
				return 0;
			q->drops++;
			return -ENOBUFS;
		}
	}
	/* One frame into one or more rx buffers, num_buffers filled (MRG_RXBUF). */
	struct iovec iov = { (void *)f, len };
	if (h->flags || h->gso_type)
		gso_hdr_write(h, hdr);
	r = vhu_net_rx(q->vq, port_features(p), hdr, &iov, 1, rx_elems, RX_MAX_BUFS);
	/* ACCESS_PLATFORM: the buffer's mapping missed; the update kicks the ring. A guest maps
	 * receive buffers as it posts them, and vhost hears of it only by missing: dropping here
	 * would lose a frame per new buffer. */
	if (r == -ENOBUFS && vhu_virtq_iotlb_waiting(q->vq) && held_add(q, h, f, len) == 0)
		return 0;
	if (r == -EIO)
		p->teardown = true;
	if (r == -EMSGSIZE)
		mark_dirty(n, q); /* an unusable buffer went back empty */
	if (r) {
		q->drops++;
		return r == -EMSGSIZE ? -ENOBUFS : r;
	}
	q->packets++;
	q->bytes += len;
	mark_dirty(n, q);
	return 0;
}

/* Frames to vhost ports wait in n->pend until the tx batch they came in has been forwarded
 * (pend_flush), and then go to each receive queue a run at a time, vhu_net_rx_burst: the
 * run's buffers popped at once, each copy prefetching the lines of the buffer 4 on. Only
 * frames that stay where they are until then wait: those process_tx copied into tx_stay (small
 * or mid). The frame the burst cannot take (several buffers, IOTLB, none left) and the
 * rest of its run go by rx_one, in order. */
static bool pend_ok(const uint8_t *f);

static void pend_run(struct net *n, unsigned a, unsigned b)
{
	struct nqueue *q = n->pend[a].q;
	uint64_t feat = port_features(q->port);
	struct vhu_net_frame fr[NET_PEND];
	uint8_t hdr[NET_PEND][NET_HDR_MAX];
	unsigned m = b - a, k;

	for (unsigned i = 0; i < m; i++) {
		const struct net_pend *e = &n->pend[a + i];
		fr[i] = (struct vhu_net_frame){ .data = e->f, .len = e->len };
		if (e->h.flags || e->h.gso_type) {
			memset(hdr[i], 0, sizeof(hdr[i]));
			gso_hdr_write(&e->h, hdr[i]);
			fr[i].hdr = hdr[i];
		}
	}
	int r = q->started ? vhu_net_rx_burst(q->vq, feat, fr, m, rx_elems, RX_MAX_BUFS)
			   : -ENOTCONN;
	if (r < 0) {
		if (r == -EIO)
			q->port->teardown = true;
		q->drops += m;
		return;
	}
	for (k = 0; k < (unsigned)r; k++)
		q->bytes += fr[k].len;
	q->packets += (unsigned)r;
	if (r)
		mark_dirty(n, q);
	/* The frame the burst left, and every one after it: vhu_net_rx's, which handles every
	 * case. Not another burst: a burst pops its whole run before it finds the buffer that
	 * does not fit, and a guest whose buffers alternate long and short would have the run
	 * popped again after each frame (as many pops as frames squared, every other port
	 * waiting). */
	for (; k < m; k++)
		rx_one(n, q, &n->pend[a + k].h, n->pend[a + k].f, n->pend[a + k].len);
}

static void pend_flush(struct net *n)
{
	unsigned a = 0;

	while (a < n->npend) {
		unsigned b = a + 1;
		while (b < n->npend && n->pend[b].q == n->pend[a].q)
			b++;
		pend_run(n, a, b);
		a = b;
	}
	n->npend = 0;
}

static int vhost_send(struct net *n, struct port *p, unsigned qp, const struct gso_hdr *h,
		      const uint8_t *f, uint32_t len)
{
	struct nqueue *q = pick_rxq(p, qp);

	if (!q)
		return -ENOTCONN;
	if (!ctrl_rx_accept(p, f)) {
		p->filtered++;
		return 0;
	}
	/* "The device MUST NOT pass received packets that exceed mtu (plus low level ethernet
	 * header length) size with gso_type NONE or ECN after VIRTIO_NET_F_MTU has been
	 * successfully negotiated" (a VLAN tag counted as part of that header). */
	if (!h->gso_type && p->mtu_negotiated && len > p->mtu + 18u) {
		p->oversize++;
		q->drops++;
		return -EMSGSIZE;
	}
	if (!q->held_n && pend_ok(f)) {
		if (n->npend == NET_PEND)
			pend_flush(n);
		n->pend[n->npend++] = (struct net_pend){ .q = q, .h = *h, .f = f, .len = len };
		return 0;
	}
	pend_flush(n); /* the frames before this one go first */
	return rx_one(n, q, h, f, len);
}

/* One frame, with a header p takes as it is, out of p. */
static int send_one(struct net *n, struct port *p, unsigned qp, const struct gso_hdr *h,
		    const uint8_t *f, uint32_t len)
{
	if (p->kind == PORT_TAP) {
		uint8_t hdr[NET_HDR_MAX] = { 0 };
		struct iovec iov[2] = { { hdr, sizeof(hdr) }, { (void *)f, len } };
		unsigned i = p->tap_vnet ? 0 : 1;
		gso_hdr_write(h, hdr);
		if (writev(p->tap_fd, iov + i, 2 - (int)i) !=
		    (ssize_t)(len + (i ? 0 : sizeof(hdr)))) {
			p->tap_drops++;
			return -EAGAIN;
		}
		p->tap_tx++;
		return 0;
	}
	return vhost_send(n, p, qp, h, f, len);
}

/* The offloads port p's side takes on receive (GSO_OK_*): a vhost port the GUEST_* features
 * in force, a tap with IFF_VNET_HDR all of them (the kernel segments what its stack cannot
 * take), one without none. */
static unsigned rx_ok(const struct port *p)
{
	if (p->kind == PORT_TAP)
		return p->tap_vnet ? GSO_OK_ALL : 0;
	return gso_ok_from_features(p->guest_offloads, false);
}

struct seg_ctx {
	struct net *n;
	struct port *p;
	unsigned qp;
};

static int seg_out(void *opaque, const uint8_t *seg, uint32_t len)
{
	static const struct gso_hdr none;
	struct seg_ctx *c = opaque;

	/* The first segment that cannot be delivered (no receive buffer, over the MTU, the port
	 * gone) ends the frame: the rest would fail too, and a hostile gso_size of 1 must not
	 * cost tens of thousands of attempts while every other port waits. */
	return send_one(c->n, c->p, c->qp, &none, seg, len);
}

int port_send(struct net *n, struct port *p, unsigned qp, const struct gso_hdr *h, const uint8_t *f,
	      uint32_t len)
{
	static const struct gso_hdr none;

	if (p->kind != PORT_TAP && !port_connected(p))
		return -ENOTCONN;
	if (!h)
		h = &none;
	if (!h->flags && !h->gso_type)
		return send_one(n, p, qp, h, f, len);
	/* "If VIRTIO_NET_F_GUEST_TSO4 is not negotiated, the device MUST NOT set gso_type to
	 * VIRTIO_NET_HDR_GSO_TCPV4" (and so on), and "If VIRTIO_NET_F_GUEST_CSUM is not
	 * negotiated, the device MUST set flags to zero and SHOULD supply a fully checksummed
	 * packet": what p cannot take is done here. f is shared by every port the frame goes
	 * to, so the work is done in n->seg. */
	if (gso_needs(h, f, len) & ~rx_ok(p)) {
		if (h->gso_type) {
			struct seg_ctx c = { n, p, qp };
			p->gso_soft++;
			int r = gso_segment(h, f, len, n->seg, seg_out, &c);
			return r < 0 ? r : 0;
		}
		memcpy(n->seg, f, len);
		gso_csum_complete(h, n->seg, len);
		p->csum_soft++;
		return send_one(n, p, qp, &none, n->seg, len);
	}
	if (h->gso_type)
		p->gso_whole++;
	return send_one(n, p, qp, h, f, len);
}

void port_forward(struct net *n, struct port *from, unsigned qp, const struct gso_hdr *h,
		  uint8_t *f, uint32_t len)
{
	uint32_t to = fwd_decide(&n->fdb, n->mode, from->id, n->nports, from->mac, f, len);

	for (; to; to &= to - 1)
		port_send(n, n->ports[__builtin_ctz(to)], qp, h, f, len);
}

/* ---- tx: frames from the front-end's transmit queue ---- */

/* Gathers the virtio-net header (hdr_len bytes) into hdr and the frame after it into buf,
 * each byte read once; with hdr NULL the header is skipped, not read (tx_hdr_read). Returns
 * the frame's length, or -1 when it does not fit or the header is missing. */
static int gather(const struct vhu_elem *e, unsigned hdr_len, uint8_t *hdr, uint8_t *buf)
{
	size_t skip = hdr_len, len = 0;

	if (e->out_len < hdr_len || e->out_len - hdr_len > NET_MAX_FRAME)
		return -1;
	/* The common case: header and frame in one iovec (one descriptor, one region). */
	if (__builtin_expect(e->out_num == 1, 1)) {
		const uint8_t *b = e->iov[0].iov_base;
		if (hdr)
			memcpy(hdr, b, hdr_len);
		net_copy_out(buf, b + hdr_len, e->out_len - hdr_len);
		return (int)(e->out_len - hdr_len);
	}
	for (unsigned i = 0; i < e->out_num; i++) {
		const uint8_t *b = e->iov[i].iov_base;
		size_t l = e->iov[i].iov_len;
		if (skip) {
			size_t c = skip < l ? skip : l;
			if (hdr)
				memcpy(hdr + (hdr_len - skip), b, c);
			skip -= c;
			b += c;
			l -= c;
		}
		net_copy_out(buf + len, b, l);
		len += l;
	}
	return (int)len;
}

/* A header with flags or GSO, into *h and checked against frame f and what the port
 * negotiated (gso_check): 0, or -EINVAL (logged once per port). */
static int tx_hdr_check(struct port *p, const uint8_t *wire, struct gso_hdr *h, const uint8_t *f,
			uint32_t len)
{
	gso_hdr_read(h, wire);
	if (gso_check(h, f, len, p->tx_ok) == 0)
		return 0;
	if (!p->bad_hdr++)
		net_log(p, VHU_LOG_WARN,
			"frame dropped: its virtio-net header does not match it "
			"or asks for an offload that was not negotiated");
	return -EINVAL;
}

/* The header a port's guest (or tap) sent with frame f: none (*h NULL: no flags, no GSO), or
 * checked (tx_hdr_check). 0, or -EINVAL: the frame is dropped. */
static inline int tx_hdr(struct port *p, const uint8_t *wire, struct gso_hdr **h, const uint8_t *f,
			 uint32_t len)
{
	/* flags and gso_type, the header's first two bytes: zero for most frames. */
	if (__builtin_expect(!wire[0] && !wire[1], 1)) {
		*h = NULL;
		return 0;
	}
	return tx_hdr_check(p, wire, *h, f, len);
}

/* Whether the header a port's guest sends with each frame is read at all. Not when the port
 * negotiated no offload its guest may ask for (CSUM, HOST_TSO4/6, HOST_ECN, HOST_USO): the
 * driver "MUST set flags to zero" and gso_type to NONE then ("Packet Transmission"), so
 * nothing in it is for the device, and the frame is taken as with a zero header (as DPDK's
 * vhost does, which reads it only with a host offload negotiated). Its line is one of two
 * that every 64-byte frame moves from the sender's core: skipping it ran vhu-net --loopback
 * at 1.53x with the cores far apart, 1.20x near (docs/TESTING.md). */
static inline bool tx_hdr_read(const struct port *p)
{
	return p->tx_ok != 0;
}

/* Pops up to NET_BATCH buffers of q into tx_elems, ok[i] false for those that cannot be used
 * (a chain too long). Returns how many. Bursts (vhu_virtq_pop_burst): the ring's checks and
 * the avail index once per burst; another burst only after a chain too long ended one. */
static unsigned tx_pop(struct port *p, struct nqueue *q, bool *ok)
{
	unsigned cnt = 0;

	while (cnt < NET_BATCH) {
		int r = vhu_virtq_pop_burst(q->vq, &tx_elems[cnt], NET_BATCH - cnt);
		if (r == -ENOBUFS) {
			ok[cnt++] = false; /* consumed: pushed back empty */
			continue;
		}
		if (r == -EIO)
			p->teardown = true;
		if (r <= 0)
			break;
		/* Prefetch the lines a sender writes for every frame, its first line and the
		 * header's when it is read (tx_hdr_read; DPDK keeps the header in the headroom,
		 * on the line before), so that
		 * the misses on them overlap instead of being paid one after the other inside
		 * net_copy_out, whose `rep movsb` prefetches nothing. The frame's line goes
		 * first: the other way round, two ascending misses per frame, the sender ran at
		 * 0.90 of its rate into net_vhost instead of 1.04 (1518 B, far; docs/TESTING.md).
		 */
		bool hdr = tx_hdr_read(p);
		for (unsigned i = cnt; i < cnt + (unsigned)r; i++) {
			ok[i] = true;
			if (tx_elems[i].out_num) {
				const uint8_t *b = tx_elems[i].iov[0].iov_base;
				if (tx_elems[i].iov[0].iov_len > p->hdr_len)
					__builtin_prefetch(b + p->hdr_len);
				if (hdr)
					__builtin_prefetch(b);
			}
		}
		cnt += (unsigned)r;
		/* Fewer than asked: the ring had no more (or a chain too long comes next, for the
		 * next batch), and asking again would read the avail index again. */
		break;
	}
	return cnt;
}

/* Frames of up to NET_TX_SMALL bytes are copied out of a batch all together, before any is
 * forwarded (tx_gather_small); longer ones one at a time, into n->frame, as each is forwarded.
 * The loads of small frames then miss side by side, where one at a time each miss waited for
 * the forwarding of the frame before it: vhu-net --loopback, 64-byte frames, ran at 1.11-1.14x
 * with the cores far apart, level near (docs/TESTING.md). Longer frames stay one at a time:
 * 32 x 1518 bytes copied ahead ran vhu-net --sink at 0.87x with the cores near. */
#define NET_TX_SMALL 256
static uint8_t tx_wire[NET_BATCH][NET_HDR_MAX];

/* Longer frames of up to NET_TX_MID bytes with their header (an Ethernet frame at MTU 1500 and
 * more) are still copied one at a time, as each is forwarded, but each into its own slot, so
 * that they too wait in n->pend and reach the receive queues a run at a time (pend_run; the
 * receive buffers popped at once and prefetched ahead): vhu-net --loopback with 1518-byte
 * frames, packed, ran at 1.03-1.05x near and 1.04-1.20x far against n->frame, split level
 * (docs/TESTING.md). The sink keeps n->frame: its frames go nowhere, and one buffer stays in
 * L1. */
#define NET_TX_MID 2048
/* The copies that stay put until the batch's end (pend_ok): both kinds in one block. */
static struct {
	uint8_t small[NET_BATCH][NET_TX_SMALL] __attribute__((aligned(64)));
	uint8_t mid[NET_BATCH][NET_TX_MID] __attribute__((aligned(64)));
} tx_stay;

static bool pend_ok(const uint8_t *f)
{
	return f >= (const uint8_t *)&tx_stay && f < (const uint8_t *)&tx_stay + sizeof(tx_stay);
}

/* Phase one: len[i] the length of small frame i, gathered into tx_stay.small[i] and its header
 * into tx_wire[i]; -1 for a buffer dropped; -2 for one gathered later (long, or several
 * descriptors). */
static void tx_gather_small(struct port *p, unsigned cnt, const bool *ok, bool enabled, int *len)
{
	bool hdr = tx_hdr_read(p);

	for (unsigned i = 0; i < cnt; i++) {
		const struct vhu_elem *e = &tx_elems[i];
		if (!ok[i] || !enabled) {
			len[i] = -1;
			continue;
		}
		if (e->out_num != 1 || e->out_len < p->hdr_len ||
		    e->out_len - p->hdr_len > NET_TX_SMALL) {
			len[i] = -2;
			continue;
		}
		if (!hdr)
			tx_wire[i][0] = tx_wire[i][1] = 0; /* no flags, no GSO: all tx_hdr reads */
		len[i] = gather(e, p->hdr_len, hdr ? tx_wire[i] : NULL, tx_stay.small[i]);
	}
}

/* Processes up to one batch. Returns the number of buffers consumed. */
static unsigned process_tx(struct net *n, struct nqueue *q)
{
	struct port *p = q->port;
	unsigned qp = q->index / 2, cnt;
	bool ok[NET_BATCH];
	int lens[NET_BATCH];

	/* Pop the whole batch first, copy its small frames out, then forward. */
	cnt = tx_pop(p, q, ok);
	/* "Ring states": started but disabled, TX is processed and discarded. */
	tx_gather_small(p, cnt, ok, vhu_virtq_enabled(q->vq), lens);
	for (unsigned i = 0; i < cnt; i++) {
		uint8_t wire_long[NET_HDR_MAX] = { 0 }, *wire = tx_wire[i], *f = tx_stay.small[i];
		struct gso_hdr hb, *h = &hb;
		int len = lens[i];
		if (len == -2) {
			/* The sink copies the frame out too, as a switch (or DPDK's vhost PMD)
			 * does. */
			wire = wire_long;
			f = n->mode != MODE_SINK && tx_elems[i].out_len <= NET_TX_MID
				    ? tx_stay.mid[i]
				    : n->frame;
			len = gather(&tx_elems[i], p->hdr_len, tx_hdr_read(p) ? wire : NULL, f);
		}
		if (len < 0 || tx_hdr(p, wire, &h, f, (uint32_t)len)) {
			q->drops++;
			continue;
		}
		q->packets++;
		q->bytes += (uint64_t)len;
		port_forward(n, p, qp, h, f, (uint32_t)len);
	}
	pend_flush(n);
	if (!cnt)
		return 0;
	/* Every buffer goes back, with nothing written (tx). */
	vhu_virtq_push_burst(q->vq, tx_elems, NULL, cnt);
	vhu_virtq_flush(q->vq);
	if (vhu_virtq_broken(q->vq))
		p->teardown = true;
	net_flush_dirty(n);
	return cnt;
}

static bool is_ctrl(const struct port *p, unsigned index)
{
	return p->has_ctrl && index == p->ctrl_index;
}

#define TX_TURN 8 /* batches of one ring per kick before the loop moves on */

static void queue_on_kick(struct net *n, struct nqueue *q)
{
	if (!q->started)
		return;
	vhu_virtq_kick_drain(q->vq);
	if (is_ctrl(q->port, q->index)) {
		q->polling = ctrl_process(n, q) == CTRL_TURN; /* the rest: net_poll_all */
		return;
	}
	if (q->index % 2 == 0) {
		/* rx: new buffers (or an IOTLB update for a held frame's) */
		if (q->held_n) {
			held_flush(n, q);
			net_flush_dirty(n);
		}
		return; /* frames are only sent when they arrive */
	}
	/* At most TX_TURN batches now: a guest that keeps its ring full must not hold the loop
	 * (every other port waits meanwhile). The rest is polled by the main loop, one batch
	 * per ring and round (net_poll_adaptive), as after any kick; with poll_ns 0 that ends
	 * as soon as the ring is empty and kicks are on again. */
	vhu_virtq_disable_notify(q->vq);
	unsigned turns = 0;
	while (process_tx(n, q) == NET_BATCH && q->started && ++turns < TX_TURN)
		;
	q->polling = q->started;
	q->idle_since = 0;
}

static void on_kick(struct dhandler *h)
{
	struct nqueue *q = DAEMON_CONTAINER_OF(h, struct nqueue, kick);

	queue_on_kick(q->port->net, q);
}

unsigned net_poll_all(struct net *n, bool *nofd)
{
	unsigned total = 0;

	*nofd = false;
	for (unsigned i = 0; i < n->nports; i++) {
		struct port *p = n->ports[i];
		if (!port_connected(p))
			continue;
		for (unsigned j = 1; j < 2 * p->pairs; j += 2) {
			struct nqueue *q = &p->q[j];
			if (!q->started)
				continue;
			bool kickless = vhu_virtq_kick_fd(q->vq) < 0;
			*nofd |= kickless;
			if (n->poll || kickless)
				total += process_tx(n, q);
		}
		/* Frames held for an IOTLB update on a receive ring without a kick fd: the update
		 * has no eventfd to kick (queue_on_kick), so they are tried here, each round while
		 * any is held, instead of waiting for the next frame to that ring. */
		for (unsigned j = 0; j < 2 * p->pairs; j += 2) {
			struct nqueue *q = &p->q[j];
			if (!q->started || !q->held_n || vhu_virtq_kick_fd(q->vq) >= 0)
				continue;
			*nofd = true;
			unsigned before = q->held_n;
			held_flush(n, q);
			net_flush_dirty(n);
			total += before - q->held_n;
		}
		/* The control queue: polled when it has no kick fd, or when its last turn
		 * stopped at CTRL_TURN commands with more perhaps waiting. */
		struct nqueue *c = &p->q[p->ctrl_index];
		if (p->has_ctrl && c->started) {
			bool kickless = vhu_virtq_kick_fd(c->vq) < 0;
			*nofd |= kickless;
			if (kickless || c->polling) {
				unsigned k = ctrl_process(n, c);
				c->polling = k == CTRL_TURN;
				total += k;
			}
		}
	}
	return total;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

unsigned net_poll_adaptive(struct net *n, bool *active)
{
	unsigned total = 0;
	uint64_t t = 0;

	*active = false;
	for (unsigned i = 0; i < n->nports; i++) {
		struct port *p = n->ports[i];
		if (!port_connected(p))
			continue;
		for (unsigned j = 1; j < 2 * p->pairs; j += 2) {
			struct nqueue *q = &p->q[j];
			if (!q->polling || !q->started)
				continue;
			unsigned w = process_tx(n, q);
			if (w) {
				q->idle_since = 0;
				total += w;
				*active = true;
				continue;
			}
			if (!t)
				t = now_ns();
			if (!q->idle_since)
				q->idle_since = t;
			if (t - q->idle_since < n->poll_ns) {
				*active = true;
				continue;
			}
			/* Idle long enough: kicks back on; frames that came meanwhile keep us here.
			 */
			if (vhu_virtq_enable_notify(q->vq)) {
				vhu_virtq_disable_notify(q->vq);
				q->idle_since = 0;
				*active = true;
				continue;
			}
			q->polling = false;
		}
	}
	return total;
}

/* ---- device callbacks ---- */

/* The learning table's view of a vhost-user port (--mac-lock): up while it has a started
 * ring or stays connected after one (a stopped device keeps its MACs: a paused guest, a
 * migration's source), running while a ring is started; down (its MACs forgotten) once the
 * connection has gone (port_closed). */
static void port_fdb_state(struct port *p)
{
	bool running = false;

	for (unsigned i = 0; i < NET_MAX_VQS; i++)
		running |= p->q[i].started;
	bool up = port_connected(p) && (running || (p->net->fdb.up >> p->id & 1));
	fdb_port_state(&p->net->fdb, p->id, up, running, true);
}

static void port_closed(struct dconn *c)
{
	struct port *p = DAEMON_CONTAINER_OF(c, struct port, conn);

	fdb_port_state(&p->net->fdb, p->id, false, false, true);
}

static int cb_queue_start(void *dev, struct vhu_virtq *vq)
{
	struct port *p = dev;
	struct net *n = p->net;
	unsigned i = vhu_virtq_index(vq);
	struct nqueue *q = &p->q[i];
	uint64_t f = port_features(p);

	p->hdr_len = (unsigned)vhu_net_hdr_len(f);
	q->vq = vq;
	q->started = true;
	q->polling = false;
	port_fdb_state(p);
	if (is_ctrl(p, i)) {
		/* Commands are rare: always kicked, also in busy-poll mode. */
		if (vhu_virtq_kick_fd(vq) >= 0) {
			ep_add(n, vhu_virtq_kick_fd(vq), &q->kick);
			q->in_ep = true;
		}
		q->polling = ctrl_process(n, q) == CTRL_TURN;
		return 0;
	}
	/* rx: frames are sent when they arrive, never when buffers do; the driver need not kick
	 * (with EVENT_IDX the device cannot refuse kicks this way, so they are still drained). */
	if (n->poll || i % 2 == 0)
		vhu_virtq_disable_notify(vq);
	if (n->poll) {
		/* busy-polled */
	} else if (vhu_virtq_kick_fd(vq) >= 0) {
		ep_add(n, vhu_virtq_kick_fd(vq), &q->kick);
		q->in_ep = true;
	}
	if (i % 2 == 0)
		return 0;
	/* tx: frames made available before the start are handled now, the way a kick is (a restart
	 * while polling must not leave them, nor the polling state, behind). */
	if (q->in_ep)
		queue_on_kick(n, q);
	else
		process_tx(n, q);
	return 0;
}

static void cb_queue_stop(void *dev, struct vhu_virtq *vq)
{
	struct port *p = dev;
	struct net *n = p->net;
	struct nqueue *q = &p->q[vhu_virtq_index(vq)];

	if (q->dirty) {
		vhu_virtq_flush(vq);
		q->dirty = false;
	}
	if (q->in_ep)
		ep_del(n, vhu_virtq_kick_fd(vq));
	q->in_ep = false;
	q->polling = false;
	q->started = false;
	port_fdb_state(p);
	free(q->held); /* held frames die with the ring's buffers */
	q->held = NULL;
	q->held_n = q->held_first = 0;
}

static void cb_features_set(void *dev, uint64_t f)
{
	struct port *p = dev;

	p->has_ctrl = f & (1ULL << VIRTIO_NET_F_CTRL_VQ);
	/* CTRL_GUEST_OFFLOADS: "Upon feature negotiation corresponding offload gets enabled". */
	p->guest_offloads = f & NET_GUEST_OFFLOADS;
	p->mtu_negotiated = f & (1ULL << VIRTIO_NET_F_MTU);
	p->tx_ok = gso_ok_from_features(f, true);
	p->ctrl_index = (f & (1ULL << VIRTIO_NET_F_MQ)) ? 2 * p->pairs : 2;
	ctrl_reset(p);
	/* With a control queue, only the first pair is used until VQ_PAIRS_SET (virtio-net
	 * "Automatic receive steering in multiqueue mode"); without one, SET_VRING_ENABLE rules. */
	if (p->has_ctrl)
		p->active_pairs = 1;
}

/* RESET_DEVICE: no control queue until features say so again, and the receive filters of a
 * device after reset. */
static void cb_reset(void *dev)
{
	struct port *p = dev;

	/* A VDUSE device's driver went (a reset: unbound, `vdpa dev del`, a vhost-vdpa user
	 * closing): its MACs are forgotten, as a vhost-user port's when its front-end closes.
	 * The next DRIVER_OK's ring start makes the port up again. */
	if (p->kind == PORT_VDUSE)
		fdb_port_state(&p->net->fdb, p->id, false, false, true);
	p->has_ctrl = false;
	p->guest_offloads = 0;
	p->mtu_negotiated = false;
	p->tx_ok = 0;
	ctrl_reset(p);
}

static int cb_get_config(void *dev, void *buf, uint32_t off, uint32_t len)
{
	struct port *p = dev;
	struct virtio_net_config c = { 0 };

	memcpy(c.mac, p->mac, 6);
	c.status = VIRTIO_NET_S_LINK_UP;
	c.max_virtqueue_pairs = (uint16_t)p->pairs;
	c.mtu = (uint16_t)p->mtu;
	if (off > sizeof(c) || len > sizeof(c) - off)
		return -EINVAL;
	memcpy(buf, (uint8_t *)&c + off, len);
	return 0;
}

/* ---- after a migration ---- */

/* Packets the guest has sent on port p since it connected (its tx queues). */
static uint64_t tx_packets(const struct port *p)
{
	uint64_t n = 0;

	for (unsigned j = 1; j < 2 * p->pairs; j += 2)
		n += p->q[j].packets;
	return n;
}

/*
 * SEND_RARP, vhost-user.rst: "Ask vhost user back-end to broadcast a fake RARP to notify the
 * migration is terminated for guest that does not support GUEST_ANNOUNCE ... The first 6 bytes
 * of the payload contain the mac address of the guest". QEMU sends it on the destination
 * (qemu_announce_self: a few rounds, 50 ms apart at first) when the guest did not negotiate
 * GUEST_ANNOUNCE. DPDK's vhost hands the RARP frame to the application as the next frame the
 * guest sent (rte_vhost_dequeue_burst); vhu-net does the same: the frame enters the switch
 * from this port, so the MAC is learned here at once and the broadcast leaves by every other
 * port and the tap, where the peers and the switches beyond them learn it too. The guest
 * itself does not get it. In loopback and sink modes there is nobody to tell.
 */
static int rarp(struct port *p, const struct vhu_msg *m)
{
	struct net *n = p->net;
	uint8_t mac[6], f[NET_RARP_LEN];
	char msg[160];

	memcpy(mac, m->payload, 6);
	if (!fwd_mac_usable(mac)) {
		snprintf(msg, sizeof(msg),
			 "SEND_RARP refused: %02x:%02x:%02x:%02x:%02x:%02x is not a station's MAC",
			 mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
		net_log(p, VHU_LOG_WARN, msg);
		return VHU_MSG_REFUSED;
	}
	int was = fwd_learned_port(&n->fdb, mac, n->nports);
	uint32_t len = fwd_rarp(f, mac);
	/* --mac-lock: the MAC moves here only from a port whose device is stopped (a migration's
	 * source) or gone; a running port keeps it, and nobody is told otherwise. */
	const char *why = NULL;
	if (n->mode == MODE_SWITCH && !fwd_rarp_move(&n->fdb, mac, p->id, &why)) {
		snprintf(msg, sizeof(msg),
			 "SEND_RARP %02x:%02x:%02x:%02x:%02x:%02x refused (--mac-lock): %s", mac[0],
			 mac[1], mac[2], mac[3], mac[4], mac[5], why);
		net_log(p, VHU_LOG_WARN, msg);
		return VHU_MSG_REFUSED;
	}
	if (n->mode == MODE_SWITCH) {
		port_forward(n, p, 0, NULL, f, len);
		net_flush_dirty(n);
	}
	snprintf(msg, sizeof(msg),
		 "SEND_RARP %02x:%02x:%02x:%02x:%02x:%02x: %s (learned on port %d before, "
		 "%llu frames from the guest on this port)",
		 mac[0], mac[1], mac[2], mac[3], mac[4], mac[5],
		 n->mode == MODE_SWITCH ? "RARP broadcast from this port" : "nobody to tell", was,
		 (unsigned long long)tx_packets(p));
	net_log(p, VHU_LOG_INFO, msg);
	return VHU_MSG_HANDLED;
}

/*
 * NET_SET_MTU, vhost-user.rst: "Set host MTU value exposed to the guest ... the back-end must
 * respond with zero in case the specified MTU is valid, or non-zero otherwise." QEMU sends it
 * with host_mtu=N on the device (its config space is its own): the port then holds frames to
 * that MTU instead of --mtu. Valid: the virtio range, 68 to 65535.
 */
static int set_mtu(struct port *p, const struct vhu_msg *m)
{
	uint64_t v;
	char msg[96];

	memcpy(&v, m->payload, sizeof(v));
	if (v < 68 || v > NET_MAX_MTU) {
		snprintf(msg, sizeof(msg), "NET_SET_MTU %llu refused: not 68 to %u",
			 (unsigned long long)v, NET_MAX_MTU);
		net_log(p, VHU_LOG_WARN, msg);
		return VHU_MSG_REFUSED;
	}
	p->mtu = (unsigned)v;
	snprintf(msg, sizeof(msg), "NET_SET_MTU: MTU %u", p->mtu);
	net_log(p, VHU_LOG_INFO, msg);
	return VHU_MSG_HANDLED;
}

/* The requests libvhu leaves to the device. */
static int cb_process_msg(void *dev, struct vhu_msg *m)
{
	struct port *p = dev;

	/* A malformed or unnegotiated SEND_RARP goes on to the library, whose table refuses it
	 * as it does any other request (the connection goes, or a failure ack). */
	if (m->request == VHU_REQ_SEND_RARP && m->size == sizeof(uint64_t) && m->nfds == 0 &&
	    (vhu_backend_protocol_features(p->be) & (1ULL << VHU_PROTO_F_RARP)))
		return rarp(p, m);
	if (m->request == VHU_REQ_NET_SET_MTU && m->size == sizeof(uint64_t) && m->nfds == 0 &&
	    (vhu_backend_protocol_features(p->be) & (1ULL << VHU_PROTO_F_NET_MTU)))
		return set_mtu(p, m);
	return VHU_MSG_NOT_HANDLED;
}

/* ---- ports ---- */

static struct port *port_alloc(struct net *n, enum port_kind kind)
{
	struct port *p;

	if (n->nports >= NET_MAX_PORTS)
		return NULL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->id = n->nports;
	p->net = n;
	p->kind = kind;
	p->conn.fd = p->conn.lfd = -1;
	p->tap_fd = -1;
	/* Locally administered MAC, one per port. */
	uint8_t mac[6] = { 0x02, 0x76, 0x68, 0x75, 0x00, (uint8_t)(p->id * 2) };
	memcpy(p->mac, mac, 6);
	n->ports[n->nports++] = p;
	return p;
}

/* The device both kinds of port serve: its features, config space and callbacks. */
static void port_device(struct net *n, struct port *p, unsigned pairs)
{
	p->pairs = pairs;
	p->hdr_len = 12;
	p->mtu = n->mtu;
	p->ops = (struct vhu_device_ops){
		.size = sizeof(p->ops),
		.features = (1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_NET_F_MRG_RXBUF) |
			    (1ULL << VIRTIO_NET_F_MAC) | (1ULL << VIRTIO_NET_F_STATUS) |
			    (1ULL << VIRTIO_NET_F_MQ) | (1ULL << VIRTIO_NET_F_MTU) |
			    (1ULL << VIRTIO_NET_F_CTRL_VQ) | (1ULL << VIRTIO_NET_F_CTRL_RX) |
			    (1ULL << VIRTIO_NET_F_CTRL_MAC_ADDR) |
			    (1ULL << VIRTIO_NET_F_GUEST_ANNOUNCE) |
			    (1ULL << VIRTIO_RING_F_INDIRECT_DESC) |
			    (1ULL << VIRTIO_RING_F_EVENT_IDX) | (1ULL << VIRTIO_F_RING_PACKED) |
			    (1ULL << VIRTIO_F_IN_ORDER) | (1ULL << VIRTIO_F_ACCESS_PLATFORM) |
			    NET_OFFLOAD_FEATURES,
		/* BACKEND_REQ: the channel IOTLB misses go on (ACCESS_PLATFORM needs it). */
		.protocol_features = (1ULL << VHU_PROTO_F_CONFIG) | (1ULL << VHU_PROTO_F_RARP) |
				     (1ULL << VHU_PROTO_F_BACKEND_REQ) |
				     (1ULL << VHU_PROTO_F_NET_MTU),
		.queue_num = pairs,
		.get_config = cb_get_config,
		.queue_start = cb_queue_start,
		.queue_stop = cb_queue_stop,
		.features_set = cb_features_set,
		.reset = cb_reset,
		.log = net_log,
		.log_opaque = p,
		.log_level = VHU_LOG_DEBUG,
		.process_msg = cb_process_msg,
		.flags = n->tlb_per_buffer ? VHU_DEVICE_F_IOTLB_PER_BUFFER : 0,
	};
	for (unsigned i = 0; i < NET_MAX_VQS; i++) {
		p->q[i] = (struct nqueue){ .port = p, .index = i };
		p->q[i].kick.fn = on_kick;
	}
	ctrl_reset(p);
}

int port_vhost_new(struct net *n, const char *path, bool client, int fd, unsigned pairs)
{
	struct port *p = port_alloc(n, PORT_VHOST);
	int ret;

	if (!p)
		return -ENOSPC;
	snprintf(p->name, sizeof(p->name), "%s", path ? path : "fd");
	port_device(n, p, pairs);
	ret = vhu_backend_new(&p->be, &p->ops, p, 2 * pairs + 1);
	if (ret)
		return ret;
	p->conn.loop = &n->loop;
	p->conn.log = net_log;
	p->conn.log_opaque = p;
	p->conn.closed = port_closed;
	return dconn_open(&p->conn, p->be, path, client, fd, &n->listen);
}

/* ---- VDUSE ports ---- */

/* p's broken rings stopped here (their kicks out of the loop, their held frames gone) until
 * the driver resets the device. */
static void vduse_stop_broken(struct port *p)
{
	for (unsigned i = 0; i < NET_MAX_VQS; i++) {
		struct nqueue *q = &p->q[i];
		if (q->started && vhu_virtq_broken(q->vq))
			cb_queue_stop(p, q->vq);
	}
}

/* Creates p's VDUSE device (again, after the kernel gave up on the last one) and puts its fd
 * in the loop. */
static int vduse_create(struct port *p)
{
	struct vhu_vduse_config vc = { .size = sizeof(vc),
				       .name = p->name + strlen("vduse:"),
				       .device_id = VIRTIO_ID_NET,
				       .nvqs = 2,
				       .queue_size = 256,
				       .config_size = sizeof(struct virtio_net_config) };
	int ret = vhu_vduse_new(&p->vd, &vc, &p->ops, p);

	if (ret)
		return ret;
	ret = dloop_add(&p->net->loop, vhu_vduse_fd(p->vd), &p->vd_read);
	if (ret) {
		vhu_vduse_free(p->vd);
		p->vd = NULL;
	}
	return ret;
}

/* The device fd is readable: the kernel's requests (status, queue state, IOTLB changes). A
 * device the kernel gave up on (a request that timed out) takes its port down, the other
 * ports going on; its mappings and fds go at once, and net_reap creates the device again once
 * `vdpa dev del` has let the old one go. */
static void on_vduse(struct dhandler *h)
{
	struct port *p = DAEMON_CONTAINER_OF(h, struct port, vd_read);
	int ret = vhu_vduse_dispatch(p->vd);

	if (ret >= 0)
		return;
	char msg[200];
	snprintf(msg, sizeof(msg),
		 p->net->unprivileged
			 ? "the kernel gave up on the VDUSE device (%s): the port is down; "
			   "creating it again needs root (--user): restart vhu-net"
			 : "the kernel gave up on the VDUSE device (%s): the port is down; it is "
			   "created again once `vdpa dev del` has removed the old one",
		 strerror(-ret));
	net_log(p, VHU_LOG_ERR, msg);
	dloop_del(&p->net->loop, vhu_vduse_fd(p->vd));
	p->vd_dead = true;
	fdb_port_state(&p->net->fdb, p->id, false, false, true);
	/* Its queues stop first (cb_queue_stop); the kernel keeps the device while its vDPA
	 * device is there. */
	vhu_vduse_free(p->vd);
	p->vd = NULL;
	for (unsigned i = 0; i < NET_MAX_VQS; i++)
		p->q[i].vq = NULL; /* they were the device's (SIGUSR1 reads q->vq) */
	p->vd_retry_ms = daemon_now_ms();
}

/* A dead VDUSE port, once a second: its device created again when the old one can go (no
 * vDPA device on it any more). The attempts that find it still in use are not logged. */
static void vduse_revive(struct port *p)
{
	uint64_t now = daemon_now_ms();

	/* CAP_NET_ADMIN and the device nodes (root's) are gone with --user: said once, by
	 * on_vduse. */
	if (p->net->unprivileged || now - p->vd_retry_ms < 1000)
		return;
	p->vd_retry_ms = now;
	p->vd_quiet = true;
	int ret = vduse_create(p);
	p->vd_quiet = false;
	if (ret)
		return;
	p->vd_dead = false;
	net_log(p, VHU_LOG_INFO,
		"VDUSE device created again after the kernel gave up on the last one: `vdpa dev "
		"add` it");
}

int port_vduse_arg(const char *arg, char *name, size_t size, uint8_t mac[6])
{
	const char *opt = strchr(arg, ',');
	size_t len = opt ? (size_t)(opt - arg) : strlen(arg);

	if (len == 0 || len >= size)
		return -EINVAL;
	memcpy(name, arg, len);
	name[len] = 0;
	/* A device node name: no '/', no "." or "..", nothing a shell or the log would blur. */
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return -EINVAL;
	for (size_t i = 0; i < len; i++)
		if (name[i] == '/' || name[i] <= ' ' || name[i] == 0x7f)
			return -EINVAL;
	if (opt) {
		/* Exactly ",mac=xx:xx:xx:xx:xx:xx", two hex digits each. */
		const char *m = opt + 5;
		if (strncmp(opt, ",mac=", 5) || strlen(m) != 17)
			return -EINVAL;
		for (unsigned i = 0; i < 6; i++) {
			const char *b = m + 3 * i;
			if (!isxdigit((unsigned char)b[0]) || !isxdigit((unsigned char)b[1]) ||
			    (i < 5 && b[2] != ':'))
				return -EINVAL;
			mac[i] = (uint8_t)strtoul((char[3]){ b[0], b[1], 0 }, NULL, 16);
		}
		return fwd_mac_usable(mac) ? 0 : -EINVAL;
	}
	uint32_t h = 2166136261u; /* FNV-1a */
	for (size_t i = 0; i < len; i++)
		h = (h ^ (uint8_t)name[i]) * 16777619u;
	const uint8_t d[6] = {
		0x02, 0x76, 0x64, (uint8_t)(h >> 16), (uint8_t)(h >> 8), (uint8_t)h
	};
	memcpy(mac, d, 6);
	return 0;
}

int port_vduse_new(struct net *n, const char *name, const uint8_t mac[6])
{
	struct port *p = port_alloc(n, PORT_VDUSE);

	if (!p)
		return -ENOSPC;
	snprintf(p->name, sizeof(p->name), "vduse:%s", name);
	memcpy(p->mac, mac, 6);
	port_device(n, p, 1);
	/* "Now we only support read-only configuration space" and no control queue for net
	 * (drivers/vdpa/vdpa_user/vduse_dev.c): nothing that needs one (VIRTIO_NET_F_MQ,
	 * the CTRL_* commands, GUEST_ANNOUNCE), and ACCESS_PLATFORM the library adds. */
	p->ops.features &= ~((1ULL << VIRTIO_NET_F_MQ) | (1ULL << VIRTIO_NET_F_CTRL_VQ) |
			     (1ULL << VIRTIO_NET_F_CTRL_RX) | (1ULL << VIRTIO_NET_F_CTRL_MAC_ADDR) |
			     (1ULL << VIRTIO_NET_F_GUEST_ANNOUNCE) |
			     (1ULL << VIRTIO_NET_F_CTRL_GUEST_OFFLOADS));
	p->ops.protocol_features = 0;
	p->ops.process_msg = NULL;
	p->vd_read.fn = on_vduse;
	return vduse_create(p);
}

/* --mac-lock: frames refused since the last line, at most one line a second per port. */
static void log_refused(struct net *n, struct port *p)
{
	const struct fdb *d = &n->fdb;
	uint64_t r = d->refused_spoof[p->id] + d->refused_full[p->id];

	if (r == p->refused_logged)
		return;
	uint64_t now = daemon_now_ms();
	if (p->refused_log_ms && now - p->refused_log_ms < 1000)
		return;
	const uint8_t *m = d->refused_mac[p->id];
	char msg[200];
	snprintf(msg, sizeof(msg),
		 "--mac-lock: %llu frames refused (%llu with a source MAC held by another port, "
		 "%llu past --max-macs %u), the last from %02x:%02x:%02x:%02x:%02x:%02x",
		 (unsigned long long)(r - p->refused_logged),
		 (unsigned long long)d->refused_spoof[p->id],
		 (unsigned long long)d->refused_full[p->id], d->max_macs, m[0], m[1], m[2], m[3],
		 m[4], m[5]);
	net_log(p, VHU_LOG_WARN, msg);
	p->refused_logged = r;
	p->refused_log_ms = now;
}

void net_reap(struct net *n)
{
	for (unsigned i = 0; i < n->nports; i++) {
		struct port *p = n->ports[i];
		if (n->fdb.lock)
			log_refused(n, p);
		if (p->kind == PORT_VDUSE && p->vd_dead)
			vduse_revive(p);
		if (p->kind == PORT_VDUSE && p->teardown) {
			/* No connection to drop: the broken ring stops until the driver resets
			 * the device (a new DRIVER_OK starts it again); the kernel's driver sees
			 * its transmissions time out. */
			p->teardown = false;
			vduse_stop_broken(p);
			net_log(p, VHU_LOG_ERR,
				"a ring is broken: it stays stopped until the driver resets the "
				"device");
		}
		if (p->kind == PORT_VHOST && p->teardown) {
			p->teardown = false;
			if (port_connected(p)) {
				net_log(p, VHU_LOG_ERR,
					"dropping the connection: a ring is broken");
				dconn_drop(&p->conn);
			}
		}
	}
}

bool net_try_connect(struct net *n)
{
	uint64_t now = 0;
	bool waiting = false;

	for (unsigned i = 0; i < n->nports; i++) {
		struct port *p = n->ports[i];
		if (p->kind == PORT_VDUSE && p->vd_dead && !n->unprivileged)
			waiting = true; /* net_reap tries to create it again */
		if (p->kind != PORT_VHOST || !p->conn.client || port_connected(p))
			continue;
		if (!now)
			now = daemon_now_ms();
		waiting |= dconn_try_connect(&p->conn, now);
	}
	return waiting;
}

static void tap_on_read(struct net *n, struct port *p)
{
	for (int i = 0; i < NET_BATCH; i++) {
		uint8_t wire[NET_HDR_MAX] = { 0 };
		struct iovec iov[2] = { { wire, sizeof(wire) }, { n->frame, sizeof(n->frame) } };
		unsigned k = p->tap_vnet ? 0 : 1;
		struct gso_hdr hb, *h = &hb;
		ssize_t len = readv(p->tap_fd, iov + k, 2 - (int)k);
		if (len <= 0)
			break;
		if (!k && len < (ssize_t)sizeof(wire))
			continue;
		len -= k ? 0 : (ssize_t)sizeof(wire);
		p->tap_rx++;
		if (tx_hdr(p, wire, &h, n->frame, (uint32_t)len)) {
			p->tap_drops++;
			continue;
		}
		port_forward(n, p, 0, h, n->frame, (uint32_t)len);
	}
	net_flush_dirty(n);
}

static void on_tap(struct dhandler *h)
{
	struct port *p = DAEMON_CONTAINER_OF(h, struct port, tap_read);

	tap_on_read(p->net, p);
}

/* The tap takes a 12-byte virtio-net header with every frame (TUNSETVNETHDRSZ), and the
 * kernel may hand us what TUNSETOFFLOAD names: partial checksums and TSO/USO frames, all of
 * which the switch passes on whole or does in software for a port that cannot take them. A
 * kernel without USO refuses those bits: asked again without them. Without the header at all
 * (an old tap), frames go plain. */
static void tap_offloads(struct port *p, int fd)
{
	unsigned base = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN;
	int sz = NET_HDR_MAX;

	p->tap_vnet = ioctl(fd, TUNSETVNETHDRSZ, &sz) == 0;
	if (!p->tap_vnet) {
		net_log(p, VHU_LOG_WARN, "no virtio-net header on the tap: no offloads");
		return;
	}
	p->tx_ok = GSO_OK_CSUM | GSO_OK_TSO4 | GSO_OK_TSO6 | GSO_OK_ECN;
	if (ioctl(fd, TUNSETOFFLOAD, base | NET_TUN_F_USO4 | NET_TUN_F_USO6) == 0)
		p->tx_ok |= GSO_OK_USO4 | GSO_OK_USO6;
	else if (ioctl(fd, TUNSETOFFLOAD, base) < 0)
		p->tx_ok = 0; /* the header stays, always zero from the kernel */
}

int port_tap_new(struct net *n, const char *ifname)
{
	struct port *p = port_alloc(n, PORT_TAP);
	struct ifreq ifr = { 0 };
	int fd, s;

	if (!p)
		return -ENOSPC;
	snprintf(p->name, sizeof(p->name), "tap:%s", ifname);
	fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", ifname);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		int err = -errno;
		close(fd);
		return err;
	}
	tap_offloads(p, fd);
	/* Bring the link up (at --mtu). */
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s >= 0) {
		ifr.ifr_mtu = (int)n->mtu;
		if (ioctl(s, SIOCSIFMTU, &ifr) < 0)
			net_log(p, VHU_LOG_WARN, "could not set the tap's MTU");
		if (ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
			ifr.ifr_flags |= IFF_UP;
			ioctl(s, SIOCSIFFLAGS, &ifr);
		}
		close(s);
	}
	p->tap_fd = fd;
	p->tap_read.fn = on_tap;
	ep_add(n, fd, &p->tap_read);
	fdb_port_state(&n->fdb, p->id, true, true, false); /* the host's side: no max_macs */
	return 0;
}

void port_free(struct net *n, struct port *p)
{
	(void)n;
	if (p->kind == PORT_VHOST) {
		dconn_close(&p->conn);
		vhu_backend_free(p->be);
	} else if (p->kind == PORT_VDUSE) {
		vhu_vduse_free(p->vd); /* its queues stop first (cb_queue_stop) */
	} else if (p->tap_fd >= 0) {
		close(p->tap_fd);
	}
	free(p);
}

static void print_offloads(const struct port *p, FILE *f)
{
	fprintf(f,
		"  offloads: gso whole %llu gso segmented %llu csum completed %llu bad header %llu "
		"oversize %llu\n",
		(unsigned long long)p->gso_whole, (unsigned long long)p->gso_soft,
		(unsigned long long)p->csum_soft, (unsigned long long)p->bad_hdr,
		(unsigned long long)p->oversize);
}

static void print_lock(const struct net *n, const struct port *p, FILE *f)
{
	if (!n->fdb.lock)
		return;
	fprintf(f,
		"  mac-lock: MACs %u, refused: source held by another port %llu, past max %llu; "
		"not learned (bucket full) %llu\n",
		n->fdb.owned[p->id], (unsigned long long)n->fdb.refused_spoof[p->id],
		(unsigned long long)n->fdb.refused_full[p->id],
		(unsigned long long)n->fdb.unlearned[p->id]);
}

static const char *port_state(const struct port *p)
{
	if (p->kind == PORT_VHOST)
		return port_connected(p) ? "connected" : "waiting";
	if (p->vd_dead)
		return p->net->unprivileged
			       ? "down (the kernel gave up on the device; creating it again needs "
				 "root: restart vhu-net)"
			       : "down (the kernel gave up on the device; waiting for `vdpa dev "
				 "del`)";
	for (unsigned i = 0; i < NET_MAX_VQS; i++)
		if (p->q[i].started)
			return "driver running";
	return "no driver running";
}

void net_print_stats(struct net *n, FILE *f)
{
	for (unsigned i = 0; i < n->nports; i++) {
		struct port *p = n->ports[i];
		if (p->kind == PORT_TAP) {
			fprintf(f, "port %u %s: rx %llu tx %llu drops %llu\n", i, p->name,
				(unsigned long long)p->tap_rx, (unsigned long long)p->tap_tx,
				(unsigned long long)p->tap_drops);
			print_offloads(p, f);
			print_lock(n, p, f);
			continue;
		}
		fprintf(f, "port %u %s: %s, %u/%u pairs, filtered %llu, control refused %llu\n", i,
			p->name, port_state(p), p->active_pairs, p->pairs,
			(unsigned long long)p->filtered, (unsigned long long)p->ctrl_bad);
		print_offloads(p, f);
		print_lock(n, p, f);
		for (unsigned j = 0; j < 2 * p->pairs + p->has_ctrl; j++) {
			struct nqueue *q = &p->q[j];
			struct vhu_virtq_stats st = { 0 };
			if (q->vq)
				vhu_virtq_stats(q->vq, &st);
			fprintf(f,
				"  queue %u %s: packets %llu bytes %llu drops %llu kicks %llu "
				"calls %llu%s\n",
				j,
				is_ctrl(p, j) ? "ctrl"
				: j % 2	      ? "tx"
					      : "rx",
				(unsigned long long)q->packets, (unsigned long long)q->bytes,
				(unsigned long long)q->drops, (unsigned long long)st.kicks,
				(unsigned long long)st.calls, st.broken ? " BROKEN" : "");
		}
	}
	fflush(f);
}
