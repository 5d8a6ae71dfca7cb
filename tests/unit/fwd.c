/* SPDX-License-Identifier: MIT */
/*
 * vhu-net's forwarding decisions (tools/net/fwd.c) and receive filters (tools/net/ctrl.c), on
 * frames alone, without sockets: the learning switch (learning, flooding, unicast to the
 * learned port, a MAC that moves, the RARP after a migration, --mac-lock), the sink, loopback
 * reflection (MAC, IPv4 and port swaps, ARP and ICMP echo answers) and the control-queue commands
 * that set a port's rx filter; and net_copy_out, the copy out of a front-end's buffer.
 */
#include <arpa/inet.h>
#include <linux/virtio_net.h>

#include "../tools/net/net.h"
#include "t.h"

T_DEFINE;

/* ctrl.c logs refused commands through port.c's net_log, which is not linked here. */
void net_log(void *opaque, int level, const char *msg)
{
	(void)opaque;
	(void)level;
	(void)msg;
}

static const uint8_t mac_a[6] = { 0x02, 0, 0, 0, 0, 0xa }, mac_b[6] = { 0x02, 0, 0, 0, 0, 0xb },
		     mac_c[6] = { 0x02, 0, 0, 0, 0, 0xc },
		     bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff },
		     mcast[6] = { 0x01, 0x00, 0x5e, 0, 0, 1 };

static uint8_t *eth(uint8_t *f, const uint8_t *dst, const uint8_t *src, uint16_t type)
{
	memset(f, 0, 128);
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	f[12] = (uint8_t)(type >> 8);
	f[13] = (uint8_t)type;
	return f + 14;
}

static uint16_t csum(const uint8_t *p, size_t len)
{
	uint32_t s = 0;

	for (size_t i = 0; i + 1 < len; i += 2)
		s += (uint32_t)(p[i] << 8 | p[i + 1]);
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

static int switch_learns(void)
{
	static struct fdb fdb;
	uint8_t f[128];

	/* Unknown destinations flood to every port but the source; the source is learned. */
	eth(f, bcast, mac_a, 0x0800);
	ASSERT_EQ(fwd_switch(&fdb, 0, 3, f, 60), 0x6);
	eth(f, mac_c, mac_b, 0x0800);
	ASSERT_EQ(fwd_switch(&fdb, 1, 3, f, 60), 0x5);
	/* Known unicast destinations go to their port alone. */
	eth(f, mac_a, mac_b, 0x0800);
	ASSERT_EQ(fwd_switch(&fdb, 1, 3, f, 60), 0x1);
	eth(f, mac_b, mac_c, 0x0800);
	ASSERT_EQ(fwd_switch(&fdb, 2, 3, f, 60), 0x2);
	/* A destination learned on the source port itself: dropped, not reflected. */
	eth(f, mac_a, mac_a, 0x0800);
	ASSERT_EQ(fwd_switch(&fdb, 0, 3, f, 60), 0);
	/* Multicast is flooded, and a multicast source is not learned. */
	eth(f, mcast, mac_c, 0x0800);
	ASSERT_EQ(fwd_switch(&fdb, 2, 3, f, 60), 0x3);
	eth(f, mac_a, mcast, 0x0800);
	ASSERT_EQ(fwd_switch(&fdb, 1, 3, f, 60), 0x1);
	eth(f, mcast, mac_a, 0x0800);
	fwd_switch(&fdb, 0, 3, f, 60);
	eth(f, mcast, mac_b, 0x0800);
	ASSERT_EQ(fwd_switch(&fdb, 1, 3, f, 60), 0x5);
	/* A MAC that moves is followed. */
	eth(f, bcast, mac_a, 0x0800);
	fwd_switch(&fdb, 2, 3, f, 60);
	eth(f, mac_a, mac_b, 0x0800);
	ASSERT_EQ(fwd_switch(&fdb, 1, 3, f, 60), 0x4);
	/* A port learned beyond the ports there are is not used. */
	ASSERT_EQ(fwd_switch(&fdb, 1, 2, f, 60), 0x1);
	/* Runts go nowhere. */
	ASSERT_EQ(fwd_switch(&fdb, 0, 3, f, 13), 0);
	return 0;
}

/* --mac-lock: a MAC stays on the port that is up with it; another port's frames with it as
 * source are dropped and counted, while the port that holds it is stopped too; SEND_RARP
 * moves it only from a stopped device; a port that goes down has its MACs forgotten; a
 * vhost-user port learns at most max_macs (a tap, not limited, any number). */
static int mac_lock(void)
{
	static struct fdb fdb;
	uint8_t f[128], m[6] = { 0x02, 0, 0, 0, 1, 0 };

	fdb.lock = true;
	fdb.max_macs = 3;
	for (unsigned i = 0; i < 3; i++)
		fdb_port_state(&fdb, i, true, true, i < 2); /* port 2: a tap */
	eth(f, bcast, mac_a, 0x0800);
	ASSERT_EQ(fwd_switch(&fdb, 0, 3, f, 60), 0x6);
	/* Port 1 sends as A: dropped, counted, A still on port 0. */
	eth(f, mac_c, mac_a, 0x0800);
	ASSERT_EQ(fwd_switch(&fdb, 1, 3, f, 60), 0);
	ASSERT_EQ(fdb.refused_spoof[1], 1);
	ASSERT_EQ(memcmp(fdb.refused_mac[1], mac_a, 6), 0);
	ASSERT_EQ(fwd_learned_port(&fdb, mac_a, 3), 0);
	/* Port 0 stopped (still up): its MAC is still its own against frames... */
	fdb_port_state(&fdb, 0, true, false, true);
	ASSERT_EQ(fwd_switch(&fdb, 1, 3, f, 60), 0);
	ASSERT_EQ(fdb.refused_spoof[1], 2);
	/* ...but SEND_RARP on port 1 moves it (a migration: the source's device is stopped). */
	ASSERT_TRUE(fwd_rarp_move(&fdb, mac_a, 1, NULL));
	ASSERT_EQ(fwd_learned_port(&fdb, mac_a, 3), 1);
	ASSERT_EQ(fdb.owned[0], 0);
	ASSERT_EQ(fdb.owned[1], 1);
	ASSERT_EQ(fwd_switch(&fdb, 1, 3, f, 60), 0x5);
	/* Port 0 running again: A is port 1's now, and SEND_RARP on 0 cannot take it back
	 * while port 1 runs. */
	fdb_port_state(&fdb, 0, true, true, true);
	eth(f, bcast, mac_a, 0x0800);
	ASSERT_EQ(fwd_switch(&fdb, 0, 3, f, 60), 0);
	ASSERT_TRUE(!fwd_rarp_move(&fdb, mac_a, 0, NULL));
	ASSERT_EQ(fwd_learned_port(&fdb, mac_a, 3), 1);
	/* Port 1 goes down: its MACs are forgotten, and A is free to be learned again. */
	fdb_port_state(&fdb, 1, false, false, true);
	ASSERT_EQ(fwd_learned_port(&fdb, mac_a, 3), -1);
	ASSERT_EQ(fdb.owned[1], 0);
	ASSERT_EQ(fwd_switch(&fdb, 0, 3, f, 60), 0x6);
	ASSERT_EQ(fwd_learned_port(&fdb, mac_a, 3), 0);
	/* max_macs: port 0 has A; two more, then the fourth is refused, and A still passes. */
	for (unsigned i = 0; i < 3; i++) {
		m[5] = (uint8_t)i;
		eth(f, bcast, m, 0x0800);
		ASSERT_EQ(fwd_switch(&fdb, 0, 3, f, 60), i < 2 ? 0x6u : 0u);
	}
	ASSERT_EQ(fdb.owned[0], 3);
	ASSERT_EQ(fdb.refused_full[0], 1);
	eth(f, bcast, mac_a, 0x0800);
	ASSERT_EQ(fwd_switch(&fdb, 0, 3, f, 60), 0x6);
	/* The tap (port 2) is not limited. */
	for (unsigned i = 0; i < 8; i++) {
		m[4] = 2;
		m[5] = (uint8_t)i;
		eth(f, bcast, m, 0x0800);
		ASSERT_EQ(fwd_switch(&fdb, 2, 3, f, 60), 0x3);
	}
	ASSERT_EQ(fdb.owned[2], 8);
	ASSERT_EQ(fdb.refused_full[2], 0);
	/* Without the lock the same frames move MACs freely (the switch as before). */
	static struct fdb open;
	eth(f, bcast, mac_a, 0x0800);
	fwd_switch(&open, 0, 3, f, 60);
	ASSERT_EQ(fwd_switch(&open, 1, 3, f, 60), 0x5);
	ASSERT_EQ(fwd_learned_port(&open, mac_a, 3), 1);
	return 0;
}

/* Finds n MACs (02:..) that share the bucket of mac, into out. */
static void same_bucket(const struct fdb *fdb, const uint8_t *mac, uint8_t (*out)[6], unsigned n)
{
	unsigned b = fwd_fdb_bucket(fdb, mac), k = 0;

	for (uint32_t i = 1; k < n; i++) {
		uint8_t m[6] = {
			0x02,	   0x99, (uint8_t)(i >> 24), (uint8_t)(i >> 16), (uint8_t)(i >> 8),
			(uint8_t)i
		};
		if (fwd_fdb_bucket(fdb, m) == b)
			memcpy(out[k++], m, 6);
	}
}

/* --mac-lock and the buckets: a port held to max_macs cannot fill another's bucket, a full
 * bucket does not let a port past its max_macs, SEND_RARP needs a running requester, takes a
 * tap's MAC, is not refused for another MAC of the bucket; a port that goes down is forgotten
 * even if it never ran; the seed changes the buckets. */
static int mac_lock_buckets(void)
{
	static struct fdb fdb;
	uint8_t f[128], col[6][6];

	fdb.lock = true;
	fdb.max_macs = 3;
	fdb.seed = 0x1234567890abcdefull;
	fdb_port_state(&fdb, 0, true, true, true);
	fdb_port_state(&fdb, 1, true, true, true);
	fdb_port_state(&fdb, 2, true, true, false); /* a tap */
	same_bucket(&fdb, mac_a, col, 6);
	/* Port 1 takes three ways of A's bucket before A speaks: A still gets the fourth. */
	for (unsigned i = 0; i < 3; i++) {
		eth(f, bcast, col[i], 0x0800);
		ASSERT_EQ(fwd_switch(&fdb, 1, 3, f, 60), 0x5);
	}
	eth(f, bcast, mac_a, 0x0800);
	fwd_switch(&fdb, 0, 3, f, 60);
	ASSERT_EQ(fwd_learned_port(&fdb, mac_a, 3), 0);
	/* The bucket is full (held): port 1, at its max, is refused for a MAC of it too. */
	eth(f, bcast, col[3], 0x0800);
	ASSERT_EQ(fwd_switch(&fdb, 1, 3, f, 60), 0);
	ASSERT_EQ(fdb.refused_full[1], 1);
	/* The tap (no max) is forwarded, not learned: no way is free. */
	ASSERT_EQ(fwd_switch(&fdb, 2, 3, f, 60), 0x3);
	ASSERT_EQ(fwd_learned_port(&fdb, col[3], 3), -1);
	ASSERT_EQ(fdb.unlearned[2], 1);
	/* SEND_RARP for A on port 1: A is held by running port 0 (refused); another MAC of the
	 * bucket on a running port does not matter once A's own port stopped. */
	ASSERT_TRUE(!fwd_rarp_move(&fdb, mac_a, 1, NULL));
	fdb_port_state(&fdb, 0, true, false, true);
	fdb_port_state(&fdb, 1, false, false, true); /* port 1 gone: its three ways free */
	fdb_port_state(&fdb, 1, true, true, true);
	eth(f, bcast, col[4], 0x0800);
	ASSERT_EQ(fwd_switch(&fdb, 2, 3, f, 60), 0x3); /* the tap in the bucket */
	ASSERT_TRUE(fwd_rarp_move(&fdb, mac_a, 1, NULL));
	ASSERT_EQ(fwd_learned_port(&fdb, mac_a, 3), 1);
	/* A port whose device does not run cannot ask. */
	fdb_port_state(&fdb, 0, true, false, true);
	ASSERT_TRUE(!fwd_rarp_move(&fdb, mac_b, 0, NULL));
	/* The tap's MAC: refused to frames from a guest, taken by SEND_RARP (a guest that had
	 * migrated away and was heard on the host's side comes back). */
	eth(f, bcast, col[4], 0x0800);
	ASSERT_EQ(fwd_switch(&fdb, 1, 3, f, 60), 0);
	ASSERT_TRUE(fwd_rarp_move(&fdb, col[4], 1, NULL));
	ASSERT_EQ(fwd_learned_port(&fdb, col[4], 3), 1);
	/* A bucket full of the tap's MACs (the host's side, never limited, never leaving) still
	 * takes a guest's MAC: the tap's entries give way, in turn. */
	static struct fdb t;
	uint8_t tc[5][6];
	t.lock = true;
	t.max_macs = 3;
	fdb_port_state(&t, 0, true, true, true);
	fdb_port_state(&t, 2, true, true, false);
	same_bucket(&t, mac_b, tc, 5);
	for (unsigned i = 0; i < 5; i++) {
		eth(f, bcast, tc[i], 0x0800);
		ASSERT_EQ(fwd_switch(&t, 2, 3, f, 60), 0x3);
	}
	ASSERT_EQ(t.owned[2], 4);
	eth(f, bcast, mac_b, 0x0800);
	ASSERT_EQ(fwd_switch(&t, 0, 3, f, 60), 0x6);
	ASSERT_EQ(fwd_learned_port(&t, mac_b, 3), 0);
	ASSERT_EQ(t.owned[2], 3);
	ASSERT_EQ(t.unlearned[0], 0);
	/* Another seed, other buckets: the six MACs are not all in one any more. */
	struct fdb other = { .seed = 42 };
	unsigned same = 0;
	for (unsigned i = 1; i < 6; i++)
		same += fwd_fdb_bucket(&other, col[i]) == fwd_fdb_bucket(&other, col[0]);
	ASSERT_TRUE(same < 5);
	/* Without the lock: a MAC moved by SEND_RARP to a port that never ran is forgotten when
	 * that port goes down. */
	static struct fdb open;
	ASSERT_TRUE(fwd_rarp_move(&open, mac_c, 3, NULL));
	ASSERT_EQ(fwd_learned_port(&open, mac_c, 4), 3);
	fdb_port_state(&open, 3, false, false, true);
	ASSERT_EQ(fwd_learned_port(&open, mac_c, 4), -1);
	ASSERT_EQ(open.owned[3], 0);
	return 0;
}

static int modes(void)
{
	static struct fdb fdb;
	const uint8_t pm[6] = { 0x02, 0x76, 0x68, 0x75, 0, 0 };
	uint8_t f[128];

	eth(f, bcast, mac_a, 0x0800);
	ASSERT_EQ(fwd_decide(&fdb, MODE_SINK, 0, 2, pm, f, 60), 0);
	ASSERT_EQ(fwd_decide(&fdb, MODE_SWITCH, 0, 2, pm, f, 60), 0x2);
	eth(f, mac_b, mac_a, 0x86dd);
	ASSERT_EQ(fwd_decide(&fdb, MODE_LOOPBACK, 0, 1, pm, f, 60), 0x1);
	ASSERT_TRUE(memcmp(f, mac_a, 6) == 0 && memcmp(f + 6, mac_b, 6) == 0);
	ASSERT_EQ(fwd_decide(&fdb, MODE_LOOPBACK, 0, 1, pm, f, 10), 0);
	return 0;
}

static int reflect_udp(void)
{
	const uint8_t pm[6] = { 0x02, 0x76, 0x68, 0x75, 0, 0 },
		      peer[6] = { 0x02, 0x76, 0x68, 0x75, 0, 1 };
	uint8_t f[128];
	uint8_t *ip = eth(f, bcast, mac_a, 0x0800);

	ip[0] = 0x45;
	ip[9] = 17;
	memcpy(ip + 12, "\x0a\x00\x00\x01\x0a\x00\x00\x02", 8);
	memcpy(ip + 20, "\x12\x34\x56\x78", 4);
	ASSERT_TRUE(fwd_reflect(f, 14 + 28, pm));
	/* A broadcast destination becomes the source: the made-up peer instead. */
	ASSERT_TRUE(memcmp(f, mac_a, 6) == 0 && memcmp(f + 6, peer, 6) == 0);
	ASSERT_TRUE(memcmp(ip + 12, "\x0a\x00\x00\x02\x0a\x00\x00\x01", 8) == 0);
	ASSERT_TRUE(memcmp(ip + 20, "\x56\x78\x12\x34", 4) == 0);
	/* A later fragment keeps its payload. */
	ip[6] = 0x00;
	ip[7] = 0x10;
	ASSERT_TRUE(fwd_reflect(f, 14 + 28, pm));
	ASSERT_TRUE(memcmp(ip + 20, "\x56\x78\x12\x34", 4) == 0);
	return 0;
}

static int reflect_arp(void)
{
	const uint8_t pm[6] = { 0x02, 0x76, 0x68, 0x75, 0, 2 },
		      peer[6] = { 0x02, 0x76, 0x68, 0x75, 0, 3 };
	uint8_t f[128];
	uint8_t *a = eth(f, bcast, mac_a, 0x0806);

	memcpy(a, "\x00\x01\x08\x00\x06\x04\x00\x01", 8); /* Ethernet/IPv4 request */
	memcpy(a + 8, mac_a, 6);
	memcpy(a + 14, "\x0a\x00\x00\x01", 4);
	memcpy(a + 24, "\x0a\x00\x00\x63", 4);
	ASSERT_TRUE(fwd_reflect(f, 14 + 28, pm));
	ASSERT_EQ(a[7], 2); /* reply */
	ASSERT_TRUE(memcmp(f, mac_a, 6) == 0 && memcmp(f + 6, peer, 6) == 0);
	ASSERT_TRUE(memcmp(a + 8, peer, 6) == 0 && memcmp(a + 18, mac_a, 6) == 0);
	ASSERT_TRUE(memcmp(a + 14, "\x0a\x00\x00\x63", 4) == 0);
	ASSERT_TRUE(memcmp(a + 24, "\x0a\x00\x00\x01", 4) == 0);
	/* A reply, or a truncated request, is dropped. */
	ASSERT_TRUE(!fwd_reflect(f, 14 + 28, pm));
	a[7] = 1;
	ASSERT_TRUE(!fwd_reflect(f, 14 + 20, pm));
	return 0;
}

static int reflect_icmp(void)
{
	const uint8_t pm[6] = { 0x02, 0x76, 0x68, 0x75, 0, 0 };
	uint8_t f[128];
	uint8_t *ip = eth(f, mac_b, mac_a, 0x0800), *icmp = ip + 20;

	ip[0] = 0x45;
	ip[9] = 1;
	memcpy(ip + 12, "\x0a\x00\x00\x01\x0a\x00\x00\x02", 8);
	icmp[0] = 8;
	memcpy(icmp + 4, "\x00\x07\x00\x01hello, vhu", 14);
	uint16_t c = csum(icmp, 18);
	icmp[2] = (uint8_t)(c >> 8);
	icmp[3] = (uint8_t)c;
	ASSERT_TRUE(fwd_reflect(f, 14 + 20 + 18, pm));
	ASSERT_EQ(icmp[0], 0);	      /* echo reply */
	ASSERT_EQ(csum(icmp, 18), 0); /* and its checksum still right */
	ASSERT_TRUE(memcmp(ip + 12, "\x0a\x00\x00\x02\x0a\x00\x00\x01", 8) == 0);
	return 0;
}

/* After a migration: the RARP frame is DPDK's, and sent from the guest's new port it moves the
 * MAC there and floods to every other port. Unusable MACs are told apart. */
static int rarp(void)
{
	static struct fdb fdb;
	static const uint8_t want[NET_RARP_LEN] = {
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0,	 0xa, 0x80, 0x35, /* eth */
		0,    1,    0x08, 0x00, 6,    4,    0,	  3,				  /* rarp */
		0x02, 0,    0,	  0,	0,    0xa,  0,	  0, 0, 0, 0x02, 0,   0,    0,
		0,    0xa,  0,	  0,	0,    0,
	};
	static const uint8_t zero[6];
	uint8_t f[128];

	memset(f, 0xee, sizeof(f));
	ASSERT_EQ(fwd_rarp(f, mac_a), NET_RARP_LEN);
	ASSERT_TRUE(memcmp(f, want, NET_RARP_LEN) == 0);
	ASSERT_EQ(f[NET_RARP_LEN], 0xee);
	/* mac_a lives on port 1, mac_b on port 0. */
	eth(f, bcast, mac_b, 0x0800);
	ASSERT_EQ(fwd_switch(&fdb, 0, 4, f, 60), 0xe);
	eth(f, mac_b, mac_a, 0x0800);
	ASSERT_EQ(fwd_switch(&fdb, 1, 4, f, 60), 0x1);
	ASSERT_EQ(fwd_learned_port(&fdb, mac_a, 4), 1);
	eth(f, mac_a, mac_b, 0x0800);
	ASSERT_EQ(fwd_switch(&fdb, 0, 4, f, 60), 0x2);
	/* The guest moved to port 2: its RARP goes to every other port, and b's frames follow. */
	fwd_rarp(f, mac_a);
	ASSERT_EQ(fwd_decide(&fdb, MODE_SWITCH, 2, 4, mac_c, f, NET_RARP_LEN), 0xb);
	ASSERT_EQ(fwd_learned_port(&fdb, mac_a, 4), 2);
	eth(f, mac_a, mac_b, 0x0800);
	ASSERT_EQ(fwd_switch(&fdb, 0, 4, f, 60), 0x4);
	ASSERT_EQ(fwd_learned_port(&fdb, mac_c, 4), -1);
	ASSERT_TRUE(fwd_mac_usable(mac_a));
	ASSERT_TRUE(!fwd_mac_usable(zero) && !fwd_mac_usable(mcast) && !fwd_mac_usable(bcast));
	return 0;
}

static uint8_t cmd(struct port *p, uint64_t f, uint8_t class, uint8_t c, const void *d,
		   uint32_t len)
{
	uint8_t buf[64];

	buf[0] = class;
	buf[1] = c;
	if (len)
		memcpy(buf + 2, d, len);
	return ctrl_command(p, f, buf, len + 2);
}

static int rx_filter(void)
{
	const uint64_t all = (1ULL << VIRTIO_NET_F_CTRL_RX) | (1ULL << VIRTIO_NET_F_CTRL_MAC_ADDR) |
			     (1ULL << VIRTIO_NET_F_MQ);
	static struct port p;
	const uint8_t off = 0, on = 1;
	uint8_t table[4 + 6 + 4 + 6] = { 1, 0, 0, 0 };

	memcpy(p.mac, mac_a, 6);
	p.pairs = 2;
	ctrl_reset(&p);
	/* Without a control queue, or promiscuous (the state after reset), everything enters. */
	ASSERT_TRUE(ctrl_rx_accept(&p, mac_c));
	p.has_ctrl = true;
	ASSERT_TRUE(ctrl_rx_accept(&p, mac_c) && ctrl_rx_accept(&p, mcast));
	/* Commands the features do not allow are refused and change nothing. */
	ASSERT_EQ(cmd(&p, 0, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, &off, 1),
		  VIRTIO_NET_ERR);
	ASSERT_TRUE(ctrl_rx_accept(&p, mac_c));
	ASSERT_EQ(cmd(&p, all, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, &off, 1),
		  VIRTIO_NET_OK);
	/* Not promiscuous: the config MAC, broadcast; not other unicast, nor multicast. */
	ASSERT_TRUE(ctrl_rx_accept(&p, mac_a) && ctrl_rx_accept(&p, bcast));
	ASSERT_TRUE(!ctrl_rx_accept(&p, mac_c) && !ctrl_rx_accept(&p, mcast));
	ASSERT_EQ(cmd(&p, all, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_ALLMULTI, &on, 1),
		  VIRTIO_NET_OK);
	ASSERT_TRUE(ctrl_rx_accept(&p, mcast));
	/* The MAC the driver sets replaces the config MAC. */
	ASSERT_EQ(cmd(&p, all, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_ADDR_SET, mac_b, 6),
		  VIRTIO_NET_OK);
	ASSERT_TRUE(ctrl_rx_accept(&p, mac_b) && !ctrl_rx_accept(&p, mac_a));
	/* The unicast table: one entry, an empty multicast table. */
	memcpy(table + 4, mac_c, 6);
	ASSERT_EQ(cmd(&p, all, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, table, 14),
		  VIRTIO_NET_OK);
	ASSERT_TRUE(ctrl_rx_accept(&p, mac_c));
	/* A table claiming more entries than it holds: refused whole. */
	table[0] = 1;
	table[10] = 9;
	ASSERT_EQ(cmd(&p, all, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, table, 14),
		  VIRTIO_NET_ERR);
	ASSERT_TRUE(ctrl_rx_accept(&p, mac_c));
	/* Queue pairs: within what the port has. */
	const uint8_t two[2] = { 2, 0 }, three[2] = { 3, 0 };
	ASSERT_EQ(cmd(&p, all, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, three, 2),
		  VIRTIO_NET_ERR);
	ASSERT_EQ(cmd(&p, all, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, two, 2),
		  VIRTIO_NET_OK);
	ASSERT_EQ(p.active_pairs, 2);
	/* The announcement ack: with GUEST_ANNOUNCE only, and without data. */
	ASSERT_EQ(cmd(&p, all, VIRTIO_NET_CTRL_ANNOUNCE, VIRTIO_NET_CTRL_ANNOUNCE_ACK, NULL, 0),
		  VIRTIO_NET_ERR);
	const uint64_t ann = all | (1ULL << VIRTIO_NET_F_GUEST_ANNOUNCE);
	ASSERT_EQ(cmd(&p, ann, VIRTIO_NET_CTRL_ANNOUNCE, VIRTIO_NET_CTRL_ANNOUNCE_ACK, NULL, 0),
		  VIRTIO_NET_OK);
	ASSERT_EQ(cmd(&p, ann, VIRTIO_NET_CTRL_ANNOUNCE, VIRTIO_NET_CTRL_ANNOUNCE_ACK, &on, 1),
		  VIRTIO_NET_ERR);
	ASSERT_EQ(cmd(&p, ann, VIRTIO_NET_CTRL_ANNOUNCE, 1, NULL, 0), VIRTIO_NET_ERR);
	/* Reset: promiscuous again, the config MAC, all pairs. */
	ctrl_reset(&p);
	ASSERT_TRUE(ctrl_rx_accept(&p, mac_c) && ctrl_rx_accept(&p, mcast));
	ASSERT_TRUE(memcmp(p.rx.guest_mac, mac_a, 6) == 0);
	return 0;
}

/* CTRL_GUEST_OFFLOADS_SET: a le64 of GUEST_* feature bits, each one negotiated. */
static int guest_offloads(void)
{
	const uint64_t tso = (1ULL << VIRTIO_NET_F_GUEST_CSUM) | (1ULL << VIRTIO_NET_F_GUEST_TSO4);
	const uint64_t f = tso | (1ULL << VIRTIO_NET_F_CTRL_GUEST_OFFLOADS);
	const uint8_t csum_only[8] = { 1 << VIRTIO_NET_F_GUEST_CSUM }, none[8] = { 0 };
	const uint8_t tso6[8] = { 1 << VIRTIO_NET_F_GUEST_CSUM,
				  1 << (VIRTIO_NET_F_GUEST_TSO6 - 8) };
	const uint8_t uso4[8] = { [6] = 1 << (VIRTIO_NET_F_GUEST_USO4 - 48) };
	static struct port p;

	p.guest_offloads = tso;
	/* Without the feature, refused. */
	ASSERT_EQ(cmd(&p, tso, VIRTIO_NET_CTRL_GUEST_OFFLOADS, VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET,
		      none, 8),
		  VIRTIO_NET_ERR);
	ASSERT_EQ(p.guest_offloads, tso);
	ASSERT_EQ(cmd(&p, f, VIRTIO_NET_CTRL_GUEST_OFFLOADS, VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET,
		      csum_only, 8),
		  VIRTIO_NET_OK);
	ASSERT_EQ(p.guest_offloads, 1ULL << VIRTIO_NET_F_GUEST_CSUM);
	/* Not negotiated (TSO6, USO4), short, or another command: refused, nothing changed. */
	ASSERT_EQ(cmd(&p, f, VIRTIO_NET_CTRL_GUEST_OFFLOADS, VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET,
		      tso6, 8),
		  VIRTIO_NET_ERR);
	ASSERT_EQ(cmd(&p, f, VIRTIO_NET_CTRL_GUEST_OFFLOADS, VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET,
		      uso4, 8),
		  VIRTIO_NET_ERR);
	ASSERT_EQ(cmd(&p, f, VIRTIO_NET_CTRL_GUEST_OFFLOADS, VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET,
		      none, 4),
		  VIRTIO_NET_ERR);
	ASSERT_EQ(cmd(&p, f, VIRTIO_NET_CTRL_GUEST_OFFLOADS, 1, none, 8), VIRTIO_NET_ERR);
	ASSERT_EQ(p.guest_offloads, 1ULL << VIRTIO_NET_F_GUEST_CSUM);
	ASSERT_EQ(cmd(&p, f, VIRTIO_NET_CTRL_GUEST_OFFLOADS, VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET,
		      none, 8),
		  VIRTIO_NET_OK);
	ASSERT_EQ(p.guest_offloads, 0);
	return 0;
}

/* net_copy_out (net.h): memcpy below 256 bytes, rep movsb from there on (with ERMS). Every
 * length across the switch and up to a jumbo frame, into a cache-line-aligned destination (as
 * vhu-net's frame buffer) and odd ones, from odd sources; the bytes on either side of the
 * destination stay as they were. */
static int copy_out(void)
{
	static _Alignas(64) uint8_t src[9100], dst[9200];

	for (size_t i = 0; i < sizeof(src); i++)
		src[i] = (uint8_t)(i * 7 + 3);
	const size_t lens[] = {
		0, 1, 12, 63, 64, 200, 255, 256, 257, 1500, 1514, 1518, 4096, 9018
	};
	for (size_t li = 0; li < sizeof(lens) / sizeof(lens[0]); li++)
		for (size_t so = 0; so < 3; so++)
			for (size_t d = 0; d < 4; d++) {
				size_t n = lens[li];
				memset(dst, 0xee, sizeof(dst));
				net_copy_out(dst + d, src + so, n);
				ASSERT_EQ(memcmp(dst + d, src + so, n), 0);
				for (size_t k = 0; k < d; k++)
					ASSERT_EQ(dst[k], 0xee);
				for (size_t k = d + n; k < d + n + 64; k++)
					ASSERT_EQ(dst[k], 0xee);
			}
	return 0;
}

int main(void)
{
	RUN(switch_learns);
	RUN(mac_lock);
	RUN(mac_lock_buckets);
	RUN(modes);
	RUN(reflect_udp);
	RUN(reflect_arp);
	RUN(reflect_icmp);
	RUN(rarp);
	RUN(rx_filter);
	RUN(guest_offloads);
	RUN(copy_out);
	T_MAIN_END();
}
