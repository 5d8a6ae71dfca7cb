/* SPDX-License-Identifier: MIT */
/* Forwarding: loopback reflection, the L2 learning switch, and the sink. */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "net.h"

#define ETH_HLEN   14
#define ETH_P_IPV4 0x0800
#define ETH_P_ARP  0x0806
#define ETH_P_RARP 0x8035

static void swap_bytes(uint8_t *a, uint8_t *b, size_t n)
{
	uint8_t t[16];

	memcpy(t, a, n);
	memcpy(a, b, n);
	memcpy(b, t, n);
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* ARP request -> reply from a made-up host that owns every address (the port's peer MAC). */
static bool reflect_arp(uint8_t *f, uint32_t len, const uint8_t *peer)
{
	uint8_t *a = f + ETH_HLEN;

	if (len < ETH_HLEN + 28 || get16(a) != 1 || get16(a + 2) != ETH_P_IPV4 || a[4] != 6 ||
	    a[5] != 4 || get16(a + 6) != 1)
		return false;
	put16(a + 6, 2);	       /* op = reply */
	memcpy(a + 18, a + 8, 6);      /* target hw = requester */
	swap_bytes(a + 14, a + 24, 4); /* sender ip <-> target ip */
	memcpy(a + 8, peer, 6);	       /* sender hw = peer */
	memcpy(f, f + 6, 6);	       /* eth dst = requester */
	memcpy(f + 6, peer, 6);
	return true;
}

bool fwd_reflect(uint8_t *f, uint32_t len, const uint8_t *port_mac)
{
	uint8_t peer[6];
	uint8_t *ip;
	unsigned ihl;

	if (len < ETH_HLEN)
		return false;
	memcpy(peer, port_mac, 6);
	peer[5] ^= 0x01;
	if (get16(f + 12) == ETH_P_ARP)
		return reflect_arp(f, len, peer);
	swap_bytes(f, f + 6, 6);
	if (f[6] & 1) /* a broadcast or multicast destination becomes the source: use the peer */
		memcpy(f + 6, peer, 6);
	if (get16(f + 12) != ETH_P_IPV4 || len < ETH_HLEN + 20)
		return true;
	ip = f + ETH_HLEN;
	ihl = (ip[0] & 0xf) * 4u;
	if ((ip[0] >> 4) != 4 || ihl < 20 || len < ETH_HLEN + ihl)
		return true;
	swap_bytes(ip + 12, ip + 16, 4);
	if ((get16(ip + 6) & 0x1fff) != 0) /* a later fragment has no L4 header */
		return true;
	uint8_t *l4 = ip + ihl;
	uint32_t l4len = len - ETH_HLEN - ihl;
	if ((ip[9] == 6 || ip[9] == 17) && l4len >= 4) {
		swap_bytes(l4, l4 + 2, 2);
	} else if (ip[9] == 1 && l4len >= 4 && l4[0] == 8) {
		/* ICMP echo request -> reply: type 8 -> 0, checksum adjusted (RFC 1624). */
		uint32_t sum = (uint32_t)get16(l4 + 2) + 0x0800;
		sum = (sum & 0xffff) + (sum >> 16);
		l4[0] = 0;
		put16(l4 + 2, (uint16_t)sum);
	}
	return true;
}

/* ---- learning switch ---- */

/* The bucket of a MAC: a 64-bit mix of the MAC and the table's random seed (set at start-up,
 * main.c), so that a guest cannot work out which MACs share another guest's bucket. */
unsigned fwd_fdb_bucket(const struct fdb *fdb, const uint8_t *mac)
{
	uint64_t v = 0;

	memcpy(&v, mac, 6);
	v ^= fdb->seed;
	v *= 0x9e3779b97f4a7c15ull;
	v ^= v >> 29;
	v *= 0xbf58476d1ce4e5b9ull;
	v ^= v >> 32;
	return (unsigned)(v % (FDB_SIZE / FDB_WAYS)) * FDB_WAYS;
}

static struct fdb_entry *fdb_find(const struct fdb *fdb, const uint8_t *mac)
{
	unsigned b = fwd_fdb_bucket(fdb, mac);

	for (unsigned w = 0; w < FDB_WAYS; w++) {
		const struct fdb_entry *e = &fdb->e[b + w];
		if (e->valid && memcmp(e->mac, mac, 6) == 0)
			return (struct fdb_entry *)e;
	}
	return NULL;
}

static bool port_bit(uint32_t mask, unsigned port)
{
	return port < NET_MAX_PORTS && (mask >> port & 1);
}

/* Held: on a port that is up, other than port (--mac-lock keeps it there). */
static bool held_from(const struct fdb *fdb, const struct fdb_entry *e, unsigned port)
{
	return fdb->lock && e->valid && e->port != port && port_bit(fdb->up, e->port);
}

/* Where a new MAC for port goes in its bucket: a free way, else, in turn, one not held by a
 * vhost-user port that is up (without the lock: any). A tap's entries give way too: the host's
 * side is not limited and its MACs never leave, so under the lock they would otherwise fill
 * buckets for good and keep the guests' MACs in them from being learned. NULL: every way held
 * by vhost-user ports that are up. */
static struct fdb_entry *fdb_slot(struct fdb *fdb, const uint8_t *mac, unsigned port)
{
	unsigned b = fwd_fdb_bucket(fdb, mac);
	uint8_t *turn = &fdb->turn[b / FDB_WAYS];

	for (unsigned w = 0; w < FDB_WAYS; w++)
		if (!fdb->e[b + w].valid)
			return &fdb->e[b + w];
	for (unsigned w = 0; w < FDB_WAYS; w++) {
		unsigned k = (*turn + w) % FDB_WAYS;
		const struct fdb_entry *e = &fdb->e[b + k];
		if (!held_from(fdb, e, port) || !port_bit(fdb->limited, e->port)) {
			*turn = (uint8_t)((k + 1) % FDB_WAYS);
			return &fdb->e[b + k];
		}
	}
	return NULL;
}

static void fdb_take(struct fdb *fdb, struct fdb_entry *e, const uint8_t *mac, unsigned port)
{
	if (e->valid && e->port < NET_MAX_PORTS && fdb->owned[e->port])
		fdb->owned[e->port]--;
	fdb->owned[port]++;
	memcpy(e->mac, mac, 6);
	e->port = (uint8_t)port;
	e->valid = 1;
}

/* Whether port may learn one more MAC (--max-macs, vhost-user ports). */
static bool fdb_room(const struct fdb *fdb, unsigned port)
{
	return !fdb->lock || !fdb->max_macs || !port_bit(fdb->limited, port) ||
	       fdb->owned[port] < fdb->max_macs;
}

static void refuse(struct fdb *fdb, uint64_t *counter, const uint8_t *mac, unsigned port)
{
	(*counter)++;
	memcpy(fdb->refused_mac[port], mac, 6);
}

/* Learns mac on port. false: the frame is refused (--mac-lock: the MAC is held by another
 * port that is up, or port is at its max_macs). */
static bool fdb_learn(struct fdb *fdb, const uint8_t *mac, unsigned port)
{
	struct fdb_entry *e = fdb_find(fdb, mac);

	if ((mac[0] & 1) || port >= NET_MAX_PORTS || (e && e->port == port))
		return true;
	if (e && held_from(fdb, e, port)) {
		refuse(fdb, &fdb->refused_spoof[port], mac, port);
		return false;
	}
	if (!fdb_room(fdb, port)) {
		refuse(fdb, &fdb->refused_full[port], mac, port);
		return false;
	}
	if (!e)
		e = fdb_slot(fdb, mac, port);
	if (e)
		fdb_take(fdb, e, mac, port);
	else
		fdb->unlearned[port]++; /* a bucket full of other guests' MACs: forwarded */
	return true;
}

bool fwd_rarp_move(struct fdb *fdb, const uint8_t *mac, unsigned port, const char **why)
{
	struct fdb_entry *e = fdb_find(fdb, mac);
	const char *no = NULL;

	if (port >= NET_MAX_PORTS || !fwd_mac_usable(mac))
		no = "not a station's MAC";
	else if (e && e->port == port)
		return true;
	else if (fdb->lock && !port_bit(fdb->running, port))
		/* The request comes from a port whose device runs (a migration's destination),
		 * and takes the MAC from a port whose device does not (its source), or from the
		 * host's side (a tap: where a guest that had migrated away was heard). */
		no = "this port's device is not running";
	else if (fdb->lock && e && held_from(fdb, e, port) && port_bit(fdb->running, e->port) &&
		 port_bit(fdb->limited, e->port))
		no = "the port that holds it runs";
	else if (!fdb_room(fdb, port))
		no = "this port has its --max-macs";
	else if (!e && !(e = fdb_slot(fdb, mac, port)))
		no = "its bucket is full of other guests' MACs";
	if (no) {
		if (why)
			*why = no;
		return false;
	}
	fdb_take(fdb, e, mac, port);
	return true;
}

void fdb_port_state(struct fdb *fdb, unsigned port, bool up, bool running, bool limited)
{
	if (port >= NET_MAX_PORTS)
		return;
	if (!up) {
		for (unsigned i = 0; i < FDB_SIZE; i++)
			if (fdb->e[i].valid && fdb->e[i].port == port)
				fdb->e[i].valid = 0;
		fdb->owned[port] = 0;
	}
	uint32_t b = 1u << port;
	fdb->up = up ? fdb->up | b : fdb->up & ~b;
	fdb->running = running ? fdb->running | b : fdb->running & ~b;
	fdb->limited = limited ? fdb->limited | b : fdb->limited & ~b;
}

static int fdb_lookup(const struct fdb *fdb, const uint8_t *mac, unsigned nports)
{
	const struct fdb_entry *e = fdb_find(fdb, mac);

	if (e && e->port < nports)
		return e->port;
	return -1;
}

int fwd_learned_port(const struct fdb *fdb, const uint8_t *mac, unsigned nports)
{
	return fdb_lookup(fdb, mac, nports);
}

uint32_t fwd_switch(struct fdb *fdb, unsigned from, unsigned nports, const uint8_t *f, uint32_t len)
{
	uint32_t all = nports >= 32 ? ~0u : (1u << nports) - 1;
	int dst;

	if (len < ETH_HLEN)
		return 0;
	if (!fdb_learn(fdb, f + 6, from))
		return 0;
	dst = (f[0] & 1) ? -1 : fdb_lookup(fdb, f, nports);
	if (dst >= 0)
		return (unsigned)dst == from ? 0 : 1u << dst;
	return all & ~(1u << from);
}

uint32_t fwd_decide(struct fdb *fdb, enum net_mode m, unsigned from, unsigned nports,
		    const uint8_t *port_mac, uint8_t *f, uint32_t len)
{
	switch (m) {
	case MODE_SINK:
		return 0;
	case MODE_LOOPBACK:
		return fwd_reflect(f, len, port_mac) ? 1u << from : 0;
	case MODE_SWITCH:
		break;
	}
	return fwd_switch(fdb, from, nports, f, len);
}

/* ---- after a migration: the RARP announcement ---- */

bool fwd_mac_usable(const uint8_t *mac)
{
	static const uint8_t zero[6];

	return !(mac[0] & 1) && memcmp(mac, zero, 6) != 0;
}

/*
 * The frame DPDK's vhost library sends for SEND_RARP (lib/vhost, make_rarp_packet with
 * lib/net rte_net_make_rarp_packet): a broadcast RARP (RFC 903) "request reverse" from the
 * guest's MAC that names the MAC as both sender and target hardware address, IPv4 addresses
 * zero, padded with zeroes to NET_RARP_LEN bytes. Nobody needs to answer it: it exists so that
 * every switch on the way learns where the MAC now lives.
 */
uint32_t fwd_rarp(uint8_t *f, const uint8_t *mac)
{
	uint8_t *a = f + ETH_HLEN;

	memset(f, 0, NET_RARP_LEN);
	memset(f, 0xff, 6);
	memcpy(f + 6, mac, 6);
	put16(f + 12, ETH_P_RARP);
	put16(a, 1);		  /* hardware type: Ethernet */
	put16(a + 2, ETH_P_IPV4); /* protocol type: IPv4 */
	a[4] = 6;		  /* hardware address length */
	a[5] = 4;		  /* protocol address length */
	put16(a + 6, 3);	  /* op: reverse request */
	memcpy(a + 8, mac, 6);	  /* sender hardware address; sender IP 0 */
	memcpy(a + 18, mac, 6);	  /* target hardware address; target IP 0 */
	return NET_RARP_LEN;
}
