/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target on vhu-net's device (tools/net, all but main.c): the control queue
 * (ctrl_process), the receive path (vhost_send through port_send, with and without
 * MRG_RXBUF) and the transmit path (process_tx, reflected back in loopback mode) over ring
 * memory the input fills. A fixed handshake over a socketpair sets the port up with the
 * feature set the input's first byte picks; frames to receive come from the input too.
 *
 * Input: struct fuzz_hdr, then the frames (lengths in the header), then the first bytes of
 * the front-end's memory: ring q at q * 0x3000 (descriptors, then driver area at +0x1000,
 * device area at +0x2000), buffers anywhere in the 128 KiB.
 */
#include <errno.h>
#include <linux/virtio_config.h>
#include <linux/virtio_net.h>
#include <linux/virtio_ring.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../tools/net/net.h"
#include "msg.h"
#include "sock.h"

/* The daemon's state, as tools/net/main.c allocates it. */
static struct net g_net;

#define MEM_SIZE (128u << 10)
#define UVA	 0x7f0000000000ull
#define NFRAMES	 4

struct fuzz_hdr {
	/* bit 0 packed, 1 MRG_RXBUF, 2 CTRL_VQ (+ CTRL_RX, CTRL_MAC_ADDR), 3 EVENT_IDX,
	 * 4 INDIRECT_DESC, 5 MQ with 2 pairs, 6 IN_ORDER, 7 switch mode (else loopback) */
	uint8_t flags;
	uint8_t qlog; /* ring size 1 << (qlog % 9) */
	/* bit 0: poll_ns 0 (else 50 us); bit 1: --mac-lock, with --max-macs (bits 2-3); bit 4
	 * (with the lock): a running port 1 in the learning table, holding the first frame's
	 * source MAC, and the frames to receive also go through the switch's learning, from
	 * ports 0 and 1 in turn */
	uint8_t poll_ns;
	/* bit 0: protocol features RARP and LOG_SHMFD, a dirty log, LOG_ALL and VHOST_VRING_F_LOG
	 * on every ring (rings then enabled with SET_VRING_ENABLE); bit 1 (with bit 0): SEND_RARP
	 * of the first 6 bytes of the frames after the kicks; bit 2: the offloads a driver may
	 * ask for (CSUM, HOST_TSO4/6, HOST_ECN, HOST_USO: tx headers checked, segmented or
	 * checksummed on the way); bit 3: the GUEST_* offloads (frames passed whole) */
	uint8_t proto;
	uint16_t frame_len[NFRAMES];
};

static int memfd = -1, logfd = -1;
static uint8_t *shadow;

static int send_msg(int fd, uint32_t req, const void *p, uint32_t size, int sfd)
{
	struct msg m;

	msg_init(&m, req, 0, size);
	if (size)
		memcpy(m.p.raw, p, size);
	return sock_send(fd, &m, &sfd, sfd >= 0 ? 1 : 0);
}

/* The front-end's side of the handshake; returns the number of messages sent. */
static unsigned handshake(int fd, const struct fuzz_hdr *h, unsigned nvqs, int *kick)
{
	bool packed = h->flags & 1;
	uint64_t f = 1ULL << VIRTIO_F_VERSION_1;
	unsigned n = 0;

	if (packed)
		f |= 1ULL << VIRTIO_F_RING_PACKED;
	if (h->flags & 2)
		f |= 1ULL << VIRTIO_NET_F_MRG_RXBUF;
	if (h->flags & 4)
		f |= (1ULL << VIRTIO_NET_F_CTRL_VQ) | (1ULL << VIRTIO_NET_F_CTRL_RX) |
		     (1ULL << VIRTIO_NET_F_CTRL_MAC_ADDR);
	if (h->flags & 8)
		f |= 1ULL << VIRTIO_RING_F_EVENT_IDX;
	if (h->flags & 16)
		f |= 1ULL << VIRTIO_RING_F_INDIRECT_DESC;
	if (h->flags & 32)
		f |= 1ULL << VIRTIO_NET_F_MQ;
	if (h->flags & 64)
		f |= 1ULL << VIRTIO_F_IN_ORDER;
	if (h->proto & 4)
		f |= (1ULL << VIRTIO_NET_F_CSUM) | (1ULL << VIRTIO_NET_F_HOST_TSO4) |
		     (1ULL << VIRTIO_NET_F_HOST_TSO6) | (1ULL << VIRTIO_NET_F_HOST_ECN) |
		     (1ULL << VIRTIO_NET_F_HOST_USO);
	if (h->proto & 8)
		f |= (1ULL << VIRTIO_NET_F_GUEST_CSUM) | (1ULL << VIRTIO_NET_F_GUEST_TSO4) |
		     (1ULL << VIRTIO_NET_F_GUEST_TSO6) | (1ULL << VIRTIO_NET_F_GUEST_ECN) |
		     (1ULL << VIRTIO_NET_F_GUEST_USO4) | (1ULL << VIRTIO_NET_F_GUEST_USO6);
	n += send_msg(fd, VHU_REQ_SET_OWNER, NULL, 0, -1) == 0;
	if (h->proto & 1) {
		uint64_t pf = (1ULL << VHU_PROTO_F_RARP) | (1ULL << VHU_PROTO_F_LOG_SHMFD);
		struct vhu_log_desc ld = { 4096, 0 };
		f |= (1ULL << VHU_F_PROTOCOL_FEATURES) | (1ULL << VHU_F_LOG_ALL);
		n += send_msg(fd, VHU_REQ_SET_PROTOCOL_FEATURES, &pf, 8, -1) == 0;
		n += send_msg(fd, VHU_REQ_SET_LOG_BASE, &ld, sizeof(ld), logfd) == 0;
	}
	n += send_msg(fd, VHU_REQ_SET_FEATURES, &f, 8, -1) == 0;
	struct vhu_mem_table t = { .nregions = 1, .regions = { { 0, MEM_SIZE, UVA, 0 } } };
	n += send_msg(fd, VHU_REQ_SET_MEM_TABLE, &t, 8 + sizeof(t.regions[0]), memfd) == 0;
	for (unsigned q = 0; q < nvqs; q++) {
		uint64_t base = UVA + q * 0x3000ull;
		struct vhu_vring_state num = { q, 1u << (h->qlog % 9) };
		struct vhu_vring_state b = { q, packed ? (1u << 15 | 1u << 31) : 0 };
		struct vhu_vring_addr a = {
			.index = q, .desc = base, .avail = base + 0x1000, .used = base + 0x2000
		};
		if (h->proto & 1) {
			a.flags = 1u << VHU_VRING_F_LOG;
			a.log = q * 0x3000ull + 0x2000;
		}
		uint64_t u = q;
		int call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		kick[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		n += send_msg(fd, VHU_REQ_SET_VRING_NUM, &num, sizeof(num), -1) == 0;
		n += send_msg(fd, VHU_REQ_SET_VRING_BASE, &b, sizeof(b), -1) == 0;
		n += send_msg(fd, VHU_REQ_SET_VRING_ADDR, &a, sizeof(a), -1) == 0;
		n += send_msg(fd, VHU_REQ_SET_VRING_CALL, &u, 8, call) == 0;
		n += send_msg(fd, VHU_REQ_SET_VRING_KICK, &u, 8, kick[q]) == 0;
		if (h->proto & 1) {
			struct vhu_vring_state en = { q, 1 };
			n += send_msg(fd, VHU_REQ_SET_VRING_ENABLE, &en, sizeof(en), -1) == 0;
		}
		close(call);
	}
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t frame[NET_MAX_FRAME];
	struct net *n = &g_net;
	struct fuzz_hdr h;
	int sp[2], kick[NET_MAX_VQS];
	const uint8_t *frames;
	size_t flen = 0;

	n->mtu = 1500;
	if (memfd < 0) {
		memfd = memfd_create("fuzz-net", MFD_CLOEXEC);
		logfd = memfd_create("fuzz-net-log", MFD_CLOEXEC);
		if (memfd < 0 || ftruncate(memfd, MEM_SIZE) || logfd < 0 || ftruncate(logfd, 4096))
			abort();
		shadow = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
		/* The loop's epoll set only: no signalfd (libFuzzer keeps its signals). */
		n->loop.ep = epoll_create1(EPOLL_CLOEXEC);
		if (shadow == MAP_FAILED || n->loop.ep < 0)
			abort();
	}
	if (size < sizeof(h))
		return 0;
	memcpy(&h, data, sizeof(h));
	data += sizeof(h);
	size -= sizeof(h);
	frames = data;
	for (int i = 0; i < NFRAMES; i++)
		flen += h.frame_len[i] % 2048;
	if (flen > size)
		flen = size;
	memset(shadow, 0, MEM_SIZE);
	memcpy(shadow, data + flen, size - flen < MEM_SIZE ? size - flen : MEM_SIZE);

	n->mode = h.flags & 128 ? MODE_SWITCH : MODE_LOOPBACK;
	n->poll_ns = h.poll_ns & 1 ? 0 : 50000;
	/* The learning table starts empty each run; port 1 exists only in it. */
	memset(&n->fdb, 0, sizeof(n->fdb));
	n->fdb.lock = h.poll_ns & 2;
	n->fdb.max_macs = (h.poll_ns >> 2) & 3;
	if (n->fdb.lock && (h.poll_ns & 16) && flen >= 12) {
		fdb_port_state(&n->fdb, 1, true, true, true);
		fwd_rarp_move(&n->fdb, frames + 6, 1, NULL);
	}
	n->listen = (struct listen_opts)LISTEN_OPTS_INIT;
	unsigned pairs = h.flags & 32 ? 2 : 1;
	unsigned nvqs = 2 * pairs + (h.flags & 4 ? 1 : 0);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp))
		return 0;
	if (port_vhost_new(n, NULL, false, sp[1], pairs)) {
		close(sp[0]);
		close(sp[1]);
		n->nports = 0;
		return 0;
	}
	struct port *p = n->ports[0];
	unsigned nmsg = handshake(sp[0], &h, nvqs, kick);
	for (unsigned i = 0; i < nmsg && port_connected(p); i++)
		dconn_dispatch(&p->conn);
	/* Kicks on every ring: tx frames (reflected into rx), control commands. */
	for (unsigned q = 0; q < nvqs && port_connected(p); q++) {
		eventfd_write(kick[q], 1);
		p->q[q].kick.fn(&p->q[q].kick); /* what the loop calls for a kick */
		net_reap(n);
	}
	/* SEND_RARP (after a migration) of a MAC from the input: good, multicast or zero. */
	if ((h.proto & 3) == 3 && port_connected(p)) {
		uint64_t mac = 0;
		memcpy(&mac, frames, flen < 6 ? flen : 6);
		if (send_msg(sp[0], VHU_REQ_SEND_RARP, &mac, 8, -1) == 0)
			dconn_dispatch(&p->conn);
		net_flush_dirty(n);
		net_reap(n);
	}
	/* Frames from the outside into the receive rings. */
	const uint8_t *fp = frames;
	for (int i = 0; i < NFRAMES && port_connected(p); i++) {
		size_t l = h.frame_len[i] % 2048;
		if (l > (size_t)(frames + flen - fp))
			l = (size_t)(frames + flen - fp);
		memcpy(frame, fp, l);
		fp += l;
		if (n->fdb.lock && (h.poll_ns & 16))
			fwd_switch(&n->fdb, (unsigned)i & 1, 2, frame, (uint32_t)l);
		port_send(n, p, (unsigned)i, NULL, frame, (uint32_t)l);
		net_flush_dirty(n);
		net_reap(n);
	}
	if (port_connected(p)) {
		bool nofd;
		net_poll_all(n, &nofd);
	}
	net_flush_dirty(n);
	port_free(n, p);
	n->nports = 0;
	n->ndirty = 0;
	for (unsigned q = 0; q < nvqs; q++)
		close(kick[q]);
	close(sp[0]);
	return 0;
}
