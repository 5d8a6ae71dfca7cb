/* SPDX-License-Identifier: MIT */
/* vhu-net internals: ports, queues and forwarding. Single-threaded: one event loop owns all. */
#ifndef VHU_NET_TOOL_H
#define VHU_NET_TOOL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#include <linux/virtio_net.h>
#include <vhu/vhu.h>

#include "../common/daemon.h"
#include "../common/listen.h"
#include "gso.h"

#define NET_MAX_PAIRS 16
#define NET_MAX_VQS   (2 * NET_MAX_PAIRS + 1)
#define NET_MAX_PORTS 16
#define NET_MAX_FRAME (65536 + 14 + 4)
#define NET_MAX_MTU   65535 /* the config field is le16; a frame of it still fits */
#define NET_HDR_MAX   12    /* struct virtio_net_hdr_mrg_rxbuf */

/* The offloads offered: frames the guest sends may ask for them (HOST_*), frames it receives
 * may carry them (GUEST_*); the switch does in software what the other end cannot take. */
#define NET_GUEST_OFFLOADS                                                                         \
	((1ULL << VIRTIO_NET_F_GUEST_CSUM) | (1ULL << VIRTIO_NET_F_GUEST_TSO4) |                   \
	 (1ULL << VIRTIO_NET_F_GUEST_TSO6) | (1ULL << VIRTIO_NET_F_GUEST_ECN) |                    \
	 (1ULL << VIRTIO_NET_F_GUEST_USO4) | (1ULL << VIRTIO_NET_F_GUEST_USO6))
#define NET_OFFLOAD_FEATURES                                                                       \
	(NET_GUEST_OFFLOADS | (1ULL << VIRTIO_NET_F_CSUM) | (1ULL << VIRTIO_NET_F_HOST_TSO4) |     \
	 (1ULL << VIRTIO_NET_F_HOST_TSO6) | (1ULL << VIRTIO_NET_F_HOST_ECN) |                      \
	 (1ULL << VIRTIO_NET_F_HOST_USO) | (1ULL << VIRTIO_NET_F_CTRL_GUEST_OFFLOADS))
#define NET_BATCH     64
#define NET_PEND      64 /* frames waiting in struct net's pend */
#define NET_MAC_TABLE 64 /* unicast and multicast filter entries each */
#define NET_RARP_LEN  64 /* the RARP frame sent after a migration, as DPDK's vhost makes it */

struct port;

#if defined(__x86_64__) || defined(__i386__)
/* ERMS (CPUID.7.0:EBX bit 9): `rep movsb` runs at the speed of a vector loop. Without it
 * (CPUs before Ivy Bridge and Zen) it does not, and net_copy_out keeps memcpy. */
static inline bool net_cpu_erms(void)
{
	static int erms = -1;
	if (erms < 0) {
		unsigned eax, ebx = 0, ecx, edx;
		erms = __get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) && (ebx & (1u << 9));
	}
	return erms;
}
#endif

/* Copies n bytes out of a front-end's buffer. A copy of 256 bytes or more uses `rep movsb` on
 * x86 CPUs with ERMS: memcpy's loop of vector loads (or software prefetches of each line)
 * trains the CPU's stream prefetcher, which then runs on past the end of the buffer into
 * whatever the front-end keeps next to it. In DPDK that is the next mbuf's header, which its
 * sender writes for every packet: with memcpy, testpmd's txonly spent 19-25 % of its time
 * on mbuf headers that had moved to vhu-net's core (2-4 % against its own net_vhost), and
 * vhu-net reached 0.72 of net_vhost's rate with 1518-byte frames when the two cores share no
 * cache; with `rep movsb`, 3-5 % and 0.99-1.04 (with tx_pop's prefetches; docs/TESTING.md).
 * Shorter copies keep memcpy. */
static inline void net_copy_out(void *dst, const void *src, size_t n)
{
#if defined(__x86_64__) || defined(__i386__)
	if (n >= 256 && net_cpu_erms()) {
		__asm__ volatile("rep movsb" : "+D"(dst), "+S"(src), "+c"(n) : : "memory");
		return;
	}
#endif
	memcpy(dst, src, n);
}

#define NET_HELD      32
#define NET_HELD_SIZE 2048

struct nqueue {
	struct port *port;
	struct vhu_virtq *vq;
	unsigned index;
	bool started;
	bool dirty;	      /* pushed but not flushed */
	bool in_ep;	      /* kick fd is in the epoll set */
	bool polling;	      /* kicked recently: polled with kicks off until idle for poll_ns */
	uint64_t idle_since;  /* ns; 0 while there is work */
	struct dhandler kick; /* the kick fd is readable */
	uint64_t packets, bytes, drops;
	/* rx, ACCESS_PLATFORM: frames that came while a receive buffer's mapping missed in the
	 * IOTLB, held in order until the update kicks the ring (NET_HELD frames of up to
	 * NET_HELD_SIZE bytes; malloc'd at the first) */
	uint8_t (*held)[NET_HELD_SIZE];
	uint32_t held_len[NET_HELD];
	struct gso_hdr held_hdr[NET_HELD];
	unsigned held_first, held_n;
};

enum port_kind { PORT_VHOST, PORT_TAP, PORT_VDUSE };

struct port {
	unsigned id;
	enum port_kind kind;
	char name[272]; /* a socket path, a tap's name, or "vduse:" and a VDUSE name */
	struct net *net;
	/* vhost-user */
	struct dconn conn; /* listener or --client, and the connection */
	struct vhu_backend *be;
	struct vhu_device_ops ops;
	/* VDUSE (--vduse NAME): the kernel's virtio-net driver (virtio_vdpa) or vhost_vdpa
	 * instead of a vhost-user front-end; the same ops, rings and forwarding. vd_dead: the
	 * kernel gave up on the device (a request timed out): the port is down until the device
	 * is created again (net_reap, once the old one's vDPA device is deleted). */
	struct vhu_vduse *vd; /* NULL while dead and not yet created again */
	struct dhandler vd_read;
	bool vd_dead;
	bool vd_quiet;	      /* creating it again: the expected failures are not logged */
	uint64_t vd_retry_ms; /* the last attempt to create it again */
	unsigned pairs;
	unsigned hdr_len;
	unsigned mtu;	     /* --mtu, or what NET_SET_MTU said */
	bool mtu_negotiated; /* VIRTIO_NET_F_MTU: none over mtu + 18 (vhost_send) */
	uint8_t mac[6];
	/* Control queue (only when the front-end negotiated CTRL_VQ and passes it to us; QEMU
	 * and DPDK virtio-user run it themselves and switch pairs with SET_VRING_ENABLE). */
	bool has_ctrl;
	unsigned ctrl_index;   /* 2 * max pairs with MQ, else 2 */
	unsigned active_pairs; /* VQ_PAIRS_SET; all pairs when there is no control queue */
	struct rx_mode {
		bool promisc, allmulti, alluni, nomulti, nouni, nobcast;
		bool uc_overflow, mc_overflow;
		uint8_t guest_mac[6];
		unsigned nuc, nmc;
		uint8_t uc[NET_MAC_TABLE][6], mc[NET_MAC_TABLE][6];
	} rx;
	uint64_t filtered; /* frames the rx mode refused */
	/* Offloads. guest_offloads: the GUEST_* offload feature bits in force (negotiated, less
	 * what VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET turned off); tx_ok: the GSO_OK_* bits its
	 * guest may ask of us (HOST_*, CSUM). */
	uint64_t guest_offloads;
	unsigned tx_ok;
	uint64_t gso_whole; /* GSO frames that reached this port whole */
	uint64_t gso_soft;  /* GSO frames segmented in software on their way here */
	uint64_t csum_soft; /* partial checksums completed in software on their way here */
	uint64_t bad_hdr;   /* frames from this port refused for their virtio-net header */
	uint64_t oversize;  /* frames over the MTU this port's guest cannot be given */
	uint64_t ctrl_bad;  /* control commands refused or malformed */
	struct nqueue q[NET_MAX_VQS];
	bool teardown;		 /* a ring broke: drop the connection at the next safe point */
	uint64_t refused_logged; /* --mac-lock: refused frames (fdb) already logged */
	uint64_t refused_log_ms; /* and when the last such line went out (one a second) */
	/* tap */
	int tap_fd;
	bool tap_vnet; /* IFF_VNET_HDR: every frame read or written has a 12-byte header */
	struct dhandler tap_read;
	uint64_t tap_rx, tap_tx, tap_drops;
};

/* The learning table: MAC -> port, FDB_WAYS entries per bucket, the bucket a mix of the MAC
 * and a random seed (a guest cannot pick MACs that share another's bucket); a full bucket
 * takes a new MAC in place of its entries in turn. lock (--mac-lock): a MAC learned on a port
 * that is up (fdb_port_state: a vhost-user port from its first started ring until its
 * connection closes, a tap) stays there: a frame from another port with it as source is
 * dropped, and a vhost-user port's entry is not taken for another MAC (a tap's is, in turn);
 * a vhost-user port learns at most max_macs MACs (0: no limit). Under the lock SEND_RARP
 * (fwd_rarp_move) moves a MAC only to a running port, and from a port that is up only while
 * that port's device is stopped (a migration's source) or when it is a tap (the host's side). */
#define FDB_SIZE 1024
#define FDB_WAYS 4
struct fdb {
	struct fdb_entry {
		uint8_t mac[6];
		uint8_t valid;
		uint8_t port;
	} e[FDB_SIZE];
	uint64_t seed;
	uint8_t turn[FDB_SIZE / FDB_WAYS]; /* the way each full bucket gives up next */
	bool lock;
	unsigned max_macs;
	uint32_t up;	  /* bit i: port i holds its MACs (connected, or a tap) */
	uint32_t running; /* bit i: port i's device runs (a started ring, or a tap) */
	uint32_t limited; /* bit i: a vhost-user port (max_macs; SEND_RARP may take a tap's) */
	unsigned owned[NET_MAX_PORTS];
	uint64_t refused_spoof[NET_MAX_PORTS]; /* source MAC held by another port */
	uint64_t refused_full[NET_MAX_PORTS];  /* a new MAC past max_macs */
	uint8_t refused_mac[NET_MAX_PORTS][6]; /* the source of the last frame refused */
	uint64_t unlearned[NET_MAX_PORTS];     /* forwarded, not learned: the bucket was full */
};

enum net_mode { MODE_SWITCH, MODE_LOOPBACK, MODE_SINK };

struct net {
	struct dloop loop;	       /* the daemon's event loop; device hooks in main.c */
	unsigned poll_idle, poll_busy; /* rounds without and with frames (main.c) */
	uint64_t nofd_idle_since;      /* ns; a NOFD ring has had nothing since (main.c) */
	enum net_mode mode;
	bool poll;
	uint64_t poll_ns;	   /* adaptive polling window after a kick (--poll-us) */
	struct listen_opts listen; /* --socket-mode, --socket-group */
	int verbose;
	bool tlb_per_buffer; /* --iotlb-per-buffer: VHU_DEVICE_F_IOTLB_PER_BUFFER */
	/* --user: root is gone, so a VDUSE device the kernel gave up on is not created again */
	bool unprivileged;
	unsigned nports;
	struct port *ports[NET_MAX_PORTS];
	struct nqueue *dirty[NET_MAX_PORTS * NET_MAX_VQS];
	unsigned ndirty;
	unsigned mtu; /* --mtu: the config space's mtu, and the taps' */
	/* 64-byte aligned for net_copy_out's `rep movsb`: into this buffer 16 bytes past a line,
	 * vhu-net --sink under testpmd (1518 B, near) ran at 1.05 of net_vhost, aligned 1.35. */
	uint8_t frame[NET_MAX_FRAME] __attribute__((aligned(64)));
	uint8_t seg[NET_MAX_FRAME]; /* a segment, or a frame whose checksum is completed */
	struct fdb fdb;
	/* Frames for vhost ports waiting for the end of their tx batch (port.c: vhost_send). */
	struct net_pend {
		struct nqueue *q;
		struct gso_hdr h;
		const uint8_t *f;
		uint32_t len;
	} pend[NET_PEND];
	unsigned npend;
};

/* A vhost-user port with its front-end connected, or a VDUSE port whose device the kernel
 * still serves; never a tap. */
static inline bool port_connected(const struct port *p)
{
	if (p->kind == PORT_VDUSE)
		return p->vd && !p->vd_dead;
	return p->kind == PORT_VHOST && p->conn.fd >= 0;
}

/* The features the port's driver accepted (vhost-user or VDUSE). */
static inline uint64_t port_features(const struct port *p)
{
	return p->kind == PORT_VDUSE ? vhu_vduse_features(p->vd) : vhu_backend_features(p->be);
}

/* port.c */
int port_vhost_new(struct net *n, const char *path, bool client, int fd, unsigned pairs);
int port_tap_new(struct net *n, const char *ifname);
/* A VDUSE virtio-net device NAME (/dev/vduse/NAME; one queue pair, no control queue: the
 * kernel refuses one for VDUSE net) as a port, with MAC mac in its config space. */
int port_vduse_new(struct net *n, const char *name, const uint8_t mac[6]);
/* --vduse NAME[,mac=MAC]: the name (into name, size bytes) and the MAC (given, or derived from
 * the name: 02:76:64 and 24 bits of its FNV-1a hash, the same at every start). 0, or -EINVAL
 * for a MAC not written xx:xx:xx:xx:xx:xx, a multicast or zero one, or a name that is empty,
 * does not fit, is "." or "..", or holds '/', ',', a space or a control character. */
int port_vduse_arg(const char *arg, char *name, size_t size, uint8_t mac[6]);
void port_free(struct net *n, struct port *p);
/* --client ports: connects those that are due; true while one is still not connected. */
bool net_try_connect(struct net *n);
/* One round over the tx queues that are polled: all in busy-poll mode, else those without a
 * kick fd (VRING_NOFD), and control queues without one; and the frames held for an IOTLB
 * update on receive queues without one. Returns frames handled; *nofd tells whether any
 * started queue has no kick fd (or holds frames without one), so the loop must keep polling. */
unsigned net_poll_all(struct net *n, bool *nofd);
/* One round over the tx queues polled after a kick; *active tells whether any still is. */
unsigned net_poll_adaptive(struct net *n, bool *active);
void net_print_stats(struct net *n, FILE *f);
/* Drops the connections whose rings broke. Called between events. */
void net_reap(struct net *n);
void net_log(void *opaque, int level, const char *msg);

/* ctrl.c */
/* Serves the control queue q: pending commands get their ack, at most CTRL_TURN of them.
 * Returns how many; CTRL_TURN: more may be waiting (the caller polls the queue again). */
#define CTRL_TURN 64
unsigned ctrl_process(struct net *n, struct nqueue *q);
/* Runs one command (class, command, data: len bytes) on port p whose negotiated features are
 * f. Returns the ack: VIRTIO_NET_OK, or VIRTIO_NET_ERR with nothing changed. */
uint8_t ctrl_command(struct port *p, uint64_t f, const uint8_t *cmd, uint32_t len);
/* Resets the receive filter to the device defaults (promiscuous, config MAC). */
void ctrl_reset(struct port *p);
/* Whether port p's receive filter lets a frame with this destination in. */
bool ctrl_rx_accept(const struct port *p, const uint8_t *dst);

/* port.c: hands one frame that arrived on port `from`, queue pair `qp`, to the ports
 * fwd_decide() names. */
void port_forward(struct net *n, struct port *from, unsigned qp, const struct gso_hdr *h,
		  uint8_t *frame, uint32_t len);
/* Sends a frame out of port p (queue pair hint qp), through its receive filter. h: its
 * virtio-net header, as gso_check() left it, or NULL for none; the frame is segmented or its
 * checksum completed on the way when p's guest did not negotiate (or turned off) what h asks.
 * Returns 0 or -errno (dropped). */
int port_send(struct net *n, struct port *p, unsigned qp, const struct gso_hdr *h,
	      const uint8_t *frame, uint32_t len);
void net_flush_dirty(struct net *n);

/* fwd.c: forwarding decisions, on frames only (no ports, no sockets: unit-tested). */
/* Loopback rewrite, as testpmd's 5tswap: swaps MAC, IPv4 and L4 ports; answers ARP and
 * ICMP echo. Returns false if the frame should be dropped. */
bool fwd_reflect(uint8_t *frame, uint32_t len, const uint8_t *port_mac);
/* Learning switch: learns the source MAC on port `from`, and returns the ports (bit i: port
 * i, of nports) the frame goes to: the learned port of a unicast destination, else every
 * port but `from` (flooding). 0: dropped (too short, or learned on `from` itself). */
uint32_t fwd_switch(struct fdb *fdb, unsigned from, unsigned nports, const uint8_t *frame,
		    uint32_t len);
/* The port MAC was learned on, or -1. */
int fwd_learned_port(const struct fdb *fdb, const uint8_t *mac, unsigned nports);
/* The first entry of mac's bucket in fdb->e (exposed for the unit tests). */
unsigned fwd_fdb_bucket(const struct fdb *fdb, const uint8_t *mac);
/* A port's state for the table: up (it holds its MACs), running (its device runs), limited
 * (max_macs applies). A port that goes down has its MACs forgotten. */
void fdb_port_state(struct fdb *fdb, unsigned port, bool up, bool running, bool limited);
/* SEND_RARP on port for mac: moves mac there. With lock, refused (false) unless port runs,
 * while a running vhost-user port holds it, or when port is at its max_macs; false too when
 * mac's bucket is held whole by other ports. *why (if why): the reason, when refused. */
bool fwd_rarp_move(struct fdb *fdb, const uint8_t *mac, unsigned port, const char **why);
/* Whether a MAC can be a frame's source (and be learned): not multicast, not zero. */
bool fwd_mac_usable(const uint8_t *mac);
/* Writes the broadcast RARP announcing mac into frame (NET_RARP_LEN bytes); returns its length. */
uint32_t fwd_rarp(uint8_t *frame, const uint8_t *mac);
/* Where a frame goes in mode m: fwd_switch, or in loopback the source port alone once the
 * frame is reflected in place (port_mac: the source port's MAC), or nowhere (the sink). */
uint32_t fwd_decide(struct fdb *fdb, enum net_mode m, unsigned from, unsigned nports,
		    const uint8_t *port_mac, uint8_t *frame, uint32_t len);

#endif
