/* SPDX-License-Identifier: MIT */
/*
 * virtio-net offloads in software: the virtio-net header of a frame checked against the frame
 * itself, a partial checksum completed (VIRTIO_NET_HDR_F_NEEDS_CSUM), and a GSO frame (TCPv4,
 * TCPv6, UDP USO) cut into gso_size segments with their IP and L4 headers fixed up. Frames
 * only: no ports, no rings (unit-tested in tests/unit/gso.c, fuzzed in tests/fuzz/gso.c).
 *
 * The header comes from a peer (a guest's transmit buffer, a tap): every field is checked
 * before it is used, and a frame whose header does not match its own bytes is refused.
 */
#ifndef VHU_NET_GSO_H
#define VHU_NET_GSO_H

#include <stdbool.h>
#include <stdint.h>

/* Newer than some system headers (VIRTIO 1.2+, Linux 6.2). */
#ifndef VIRTIO_NET_F_GUEST_USO4
#define VIRTIO_NET_F_GUEST_USO4 54
#define VIRTIO_NET_F_GUEST_USO6 55
#define VIRTIO_NET_F_HOST_USO	56
#endif
#ifndef VIRTIO_NET_HDR_GSO_UDP_L4
#define VIRTIO_NET_HDR_GSO_UDP_L4 5
#endif

/* The header's fields in host order (the wire has them little-endian with VERSION_1, and in
 * the guest's order for a legacy device: little-endian on every host vhu builds for). */
struct gso_hdr {
	uint8_t flags;	  /* VIRTIO_NET_HDR_F_* */
	uint8_t gso_type; /* VIRTIO_NET_HDR_GSO_*, ECN bit included */
	uint16_t hdr_len, gso_size, csum_start, csum_offset;
};

/* Offloads a header may ask of whoever handles the frame next (bits, as a port accepts them
 * from its guest or passes them to it). */
enum {
	GSO_OK_CSUM = 1 << 0, /* NEEDS_CSUM */
	GSO_OK_TSO4 = 1 << 1, /* GSO_TCPV4 */
	GSO_OK_TSO6 = 1 << 2, /* GSO_TCPV6 */
	GSO_OK_ECN = 1 << 3,  /* GSO_ECN on a TCP GSO frame */
	GSO_OK_USO4 = 1 << 4, /* GSO_UDP_L4 over IPv4 */
	GSO_OK_USO6 = 1 << 5, /* GSO_UDP_L4 over IPv6 */
	GSO_OK_ALL = (1 << 6) - 1,
};

/* Reads a 10-byte virtio_net_hdr (little-endian) into h; writes h back as one. */
void gso_hdr_read(struct gso_hdr *h, const uint8_t *wire);
void gso_hdr_write(const struct gso_hdr *h, uint8_t *wire);

/* What a set of negotiated virtio-net features lets a driver send (HOST_*: host = true) or
 * receive (GUEST_*), as GSO_OK_* bits. */
unsigned gso_ok_from_features(uint64_t features, bool host);

/* The offloads header h asks for (GSO_OK_* bits), once gso_check() accepted it. */
unsigned gso_needs(const struct gso_hdr *h, const uint8_t *f, uint32_t len);

/*
 * Checks header h against frame f (len bytes), offloads `ok` being allowed: 0, or -EINVAL
 * (flags or gso_type unknown or not allowed, csum_start/csum_offset outside the frame, a GSO
 * frame whose Ethernet/IP/TCP/UDP headers are not what gso_type says, or whose lengths do not
 * match the frame). Normalises h: flags other than NEEDS_CSUM are cleared (DATA_VALID and
 * RSC_INFO mean nothing from a driver), and hdr_len, a hint, is set to the real header length
 * of a GSO frame (0 otherwise).
 */
int gso_check(struct gso_hdr *h, const uint8_t *f, uint32_t len, unsigned ok);

/* Completes the partial checksum of a frame gso_check() accepted with NEEDS_CSUM: the ones'
 * complement sum from csum_start to the end, stored at csum_start + csum_offset. */
void gso_csum_complete(const struct gso_hdr *h, uint8_t *f, uint32_t len);

/*
 * Segments a GSO frame gso_check() accepted: for each segment, its bytes (headers copied from
 * f, lengths, IPv4 id and checksum, TCP sequence number and flags or UDP length fixed, the L4
 * checksum computed in full) are built in seg (room: len bytes is always enough) and handed to
 * out(opaque, seg, seglen). Returns the number of segments, or out's first negative return.
 * TCP: FIN and PSH only on the last segment, CWR only on the first (RFC 3168 6.1.2, as the
 * kernel's tcp_gso_segment does); the IPv4 id goes up by one per segment.
 */
int gso_segment(const struct gso_hdr *h, const uint8_t *f, uint32_t len, uint8_t *seg,
		int (*out)(void *opaque, const uint8_t *seg, uint32_t len), void *opaque);

/* Whether the frame's IPv4 header checksum and TCP/UDP checksum are right (true for a frame
 * that is neither): for tests and vhu-fe, which check what comes back. */
bool gso_csum_ok(const uint8_t *f, uint32_t len);

#endif
