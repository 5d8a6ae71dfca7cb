/* SPDX-License-Identifier: MIT */
/*
 * The virtio-net control queue: receive mode (CTRL_RX), MAC filter tables and address
 * (CTRL_MAC_ADDR), the number of active queue pairs (MQ), and the announcement ack
 * (GUEST_ANNOUNCE). Commands are read from the device-readable part of a chain into a
 * bounded buffer and parsed with explicit length checks; anything unknown or malformed is
 * answered VIRTIO_NET_ERR.
 */
#include <errno.h>
#include <linux/virtio_net.h>
#include <string.h>

#include "net.h"

#define CTRL_MAX_CMD (2 + 2 * (4 + 6 * 256)) /* class, command, two full MAC tables */

static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

void ctrl_reset(struct port *p)
{
	/* As a device after reset: promiscuous, filters empty, the config-space MAC. */
	memset(&p->rx, 0, sizeof(p->rx));
	p->rx.promisc = true;
	memcpy(p->rx.guest_mac, p->mac, 6);
	p->active_pairs = p->pairs;
}

static bool in_table(const uint8_t (*t)[6], unsigned n, const uint8_t *mac)
{
	for (unsigned i = 0; i < n; i++)
		if (memcmp(t[i], mac, 6) == 0)
			return true;
	return false;
}

bool ctrl_rx_accept(const struct port *p, const uint8_t *dst)
{
	const struct rx_mode *m = &p->rx;

	if (!p->has_ctrl || m->promisc)
		return true;
	if (memcmp(dst, bcast, 6) == 0)
		return !m->nobcast;
	if (dst[0] & 1) {
		if (m->nomulti)
			return false;
		return m->allmulti || m->mc_overflow || in_table(m->mc, m->nmc, dst);
	}
	if (m->nouni)
		return false;
	return m->alluni || m->uc_overflow || memcmp(dst, m->guest_mac, 6) == 0 ||
	       in_table(m->uc, m->nuc, dst);
}

/* Reads one virtio_net_ctrl_mac table at *off; fills t (or flags overflow). */
static int read_table(const uint8_t *c, uint32_t len, uint32_t *off, uint8_t (*t)[6], unsigned *n,
		      bool *overflow)
{
	uint32_t entries;

	if (len - *off < 4)
		return -EINVAL;
	memcpy(&entries, c + *off, 4); /* le32; x86 and every Linux host we build for */
	*off += 4;
	if (entries > (len - *off) / 6)
		return -EINVAL;
	*overflow = entries > NET_MAC_TABLE;
	*n = *overflow ? 0 : entries;
	if (*n)
		memcpy(t, c + *off, (size_t)*n * 6);
	*off += entries * 6;
	return 0;
}

static int cmd_rx(struct port *p, uint8_t cmd, const uint8_t *d, uint32_t len)
{
	bool *flag[] = {
		[VIRTIO_NET_CTRL_RX_PROMISC] = &p->rx.promisc,
		[VIRTIO_NET_CTRL_RX_ALLMULTI] = &p->rx.allmulti,
	};

	if (len != 1 || cmd >= sizeof(flag) / sizeof(flag[0]))
		return -EINVAL; /* ALLUNI..NOBCAST need CTRL_RX_EXTRA, which we do not offer */
	*flag[cmd] = d[0] != 0;
	return 0;
}

static int cmd_mac(struct port *p, uint8_t cmd, const uint8_t *d, uint32_t len)
{
	struct rx_mode m = p->rx;
	uint32_t off = 0;

	switch (cmd) {
	case VIRTIO_NET_CTRL_MAC_ADDR_SET:
		if (len != 6 || (d[0] & 1))
			return -EINVAL;
		memcpy(p->rx.guest_mac, d, 6);
		return 0;
	case VIRTIO_NET_CTRL_MAC_TABLE_SET:
		if (read_table(d, len, &off, m.uc, &m.nuc, &m.uc_overflow) ||
		    read_table(d, len, &off, m.mc, &m.nmc, &m.mc_overflow) || off != len)
			return -EINVAL;
		p->rx = m; /* all or nothing */
		return 0;
	}
	return -EINVAL;
}

static int cmd_mq(struct port *p, uint8_t cmd, const uint8_t *d, uint32_t len)
{
	uint16_t pairs;

	if (cmd != VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET || len != 2)
		return -EINVAL;
	pairs = (uint16_t)(d[0] | d[1] << 8);
	if (pairs < VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MIN || pairs > p->pairs)
		return -EINVAL;
	p->active_pairs = pairs;
	return 0;
}

/* VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET: "le64 value passed as command data is a bitmask, bits
 * set define offloads to be enabled, bits cleared - offloads to be disabled", and "A driver
 * MUST NOT enable an offload for which the appropriate feature has not been negotiated". */
static int cmd_offloads(struct port *p, uint64_t f, uint8_t cmd, const uint8_t *d, uint32_t len)
{
	uint64_t v = 0;

	if (cmd != VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET || len != 8)
		return -EINVAL;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | d[i];
	if (v & ~(f & NET_GUEST_OFFLOADS))
		return -EINVAL;
	p->guest_offloads = v;
	return 0;
}

/* A refused command is said at the 1st, 2nd, 4th, 8th ... time: a driver repeating one must not
 * flood the log (the count is in the port's statistics). */
static void ctrl_warn(struct port *p, const char *what)
{
	char msg[96];

	p->ctrl_bad++;
	if (p->ctrl_bad & (p->ctrl_bad - 1))
		return;
	snprintf(msg, sizeof(msg), "%s (%llu so far)", what, (unsigned long long)p->ctrl_bad);
	net_log(p, VHU_LOG_WARN, msg);
}

uint8_t ctrl_command(struct port *p, uint64_t f, const uint8_t *c, uint32_t len)
{
	int r = -EINVAL;

	if (len < 2)
		return VIRTIO_NET_ERR;
	switch (c[0]) {
	case VIRTIO_NET_CTRL_RX:
		if (f & (1ULL << VIRTIO_NET_F_CTRL_RX))
			r = cmd_rx(p, c[1], c + 2, len - 2);
		break;
	case VIRTIO_NET_CTRL_MAC:
		if (c[1] == VIRTIO_NET_CTRL_MAC_ADDR_SET
			    ? (f & (1ULL << VIRTIO_NET_F_CTRL_MAC_ADDR))
			    : (f & (1ULL << VIRTIO_NET_F_CTRL_RX)))
			r = cmd_mac(p, c[1], c + 2, len - 2);
		break;
	case VIRTIO_NET_CTRL_MQ:
		if (f & (1ULL << VIRTIO_NET_F_MQ))
			r = cmd_mq(p, c[1], c + 2, len - 2);
		break;
	case VIRTIO_NET_CTRL_GUEST_OFFLOADS:
		if (f & (1ULL << VIRTIO_NET_F_CTRL_GUEST_OFFLOADS))
			r = cmd_offloads(p, f, c[1], c + 2, len - 2);
		break;
	case VIRTIO_NET_CTRL_ANNOUNCE:
		/* "the device MUST clear the VIRTIO_NET_S_ANNOUNCE bit in status upon receipt of
		 * a command buffer with class VIRTIO_NET_CTRL_ANNOUNCE and command
		 * VIRTIO_NET_CTRL_ANNOUNCE_ACK": vhu-net never sets it (the VMM does, in the
		 * config space it serves after a migration), so the ack has nothing to clear. */
		if ((f & (1ULL << VIRTIO_NET_F_GUEST_ANNOUNCE)) &&
		    c[1] == VIRTIO_NET_CTRL_ANNOUNCE_ACK && len == 2)
			r = 0;
		break;
	}
	if (r)
		ctrl_warn(p, "control command refused");
	return r ? VIRTIO_NET_ERR : VIRTIO_NET_OK;
}

unsigned ctrl_process(struct net *n, struct nqueue *q)
{
	static uint8_t cmd[CTRL_MAX_CMD];
	struct port *p = q->port;
	struct vhu_elem e;
	unsigned done = 0;
	int r;

	(void)n;
	/* At most CTRL_TURN commands per call: a driver that keeps making the same command
	 * available (it need not wait for it to be used) must not hold the loop that every
	 * other port shares; the caller comes back for the rest. */
	while (done < CTRL_TURN && (r = vhu_virtq_pop(q->vq, &e)) != 0) {
		if (r == -EIO) {
			p->teardown = true;
			return done;
		}
		done++;
		uint32_t len = 0, written = 0;
		uint8_t ack = VIRTIO_NET_ERR;
		if (r > 0 && e.in_len >= 1 && e.out_len <= sizeof(cmd)) {
			for (unsigned i = 0; i < e.out_num; i++) {
				memcpy(cmd + len, e.iov[i].iov_base, e.iov[i].iov_len);
				len += (uint32_t)e.iov[i].iov_len;
			}
			ack = ctrl_command(p, port_features(p), cmd, len);
		} else {
			ctrl_warn(p, "malformed control command");
			q->drops++;
		}
		/* The ack is the last device-writable byte. */
		for (unsigned i = r > 0 ? e.out_num + e.in_num : 0; i-- > e.out_num;) {
			if (e.iov[i].iov_len) {
				((uint8_t *)e.iov[i].iov_base)[e.iov[i].iov_len - 1] = ack;
				written = e.in_len;
				break;
			}
		}
		q->packets++;
		vhu_virtq_push(q->vq, &e, written);
	}
	vhu_virtq_flush(q->vq);
	return done;
}
