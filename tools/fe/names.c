/* SPDX-License-Identifier: MIT */
/* Virtio feature names (VIRTIO 1.4: "Reserved Feature Bits", net and blk device chapters). */
#include <stddef.h>

#include "fe.h"

static const char *const common[64] = {
	[24] = "NOTIFY_ON_EMPTY",
	[27] = "ANY_LAYOUT",
	[28] = "INDIRECT_DESC",
	[29] = "EVENT_IDX",
	[30] = "PROTOCOL_FEATURES",
	[32] = "VERSION_1",
	[33] = "ACCESS_PLATFORM",
	[34] = "RING_PACKED",
	[35] = "IN_ORDER",
	[36] = "ORDER_PLATFORM",
	[37] = "SR_IOV",
	[38] = "NOTIFICATION_DATA",
	[39] = "NOTIF_CONFIG_DATA",
	[40] = "RING_RESET",
	[41] = "ADMIN_VQ",
};

static const char *const net[64] = {
	[0] = "CSUM",
	[1] = "GUEST_CSUM",
	[2] = "CTRL_GUEST_OFFLOADS",
	[3] = "MTU",
	[5] = "MAC",
	[7] = "GUEST_TSO4",
	[8] = "GUEST_TSO6",
	[9] = "GUEST_ECN",
	[10] = "GUEST_UFO",
	[11] = "HOST_TSO4",
	[12] = "HOST_TSO6",
	[13] = "HOST_ECN",
	[14] = "HOST_UFO",
	[15] = "MRG_RXBUF",
	[16] = "STATUS",
	[17] = "CTRL_VQ",
	[18] = "CTRL_RX",
	[19] = "CTRL_VLAN",
	[20] = "CTRL_RX_EXTRA",
	[21] = "GUEST_ANNOUNCE",
	[22] = "MQ",
	[23] = "CTRL_MAC_ADDR",
	[52] = "DEVICE_STATS",
	[53] = "VQ_NOTF_COAL",
	[54] = "NOTF_COAL",
	[55] = "GUEST_USO4",
	[56] = "GUEST_USO6",
	[57] = "HASH_REPORT",
	[58] = "GUEST_HDRLEN",
	[59] = "HASH_TUNNEL",
	[60] = "RSS",
	[61] = "RSC_EXT",
	[62] = "STANDBY",
	[63] = "SPEED_DUPLEX",
};

static const char *const blk[64] = {
	[0] = "BARRIER",       [1] = "SIZE_MAX",  [2] = "SEG_MAX",
	[4] = "GEOMETRY",      [5] = "RO",	  [6] = "BLK_SIZE",
	[7] = "SCSI",	       [9] = "FLUSH",	  [10] = "TOPOLOGY",
	[11] = "CONFIG_WCE",   [12] = "MQ",	  [13] = "DISCARD",
	[14] = "WRITE_ZEROES", [15] = "LIFETIME", [16] = "SECURE_ERASE",
	[17] = "ZONED",
};

const char *fe_feature_name(enum fe_dev dev, unsigned bit)
{
	if (bit >= 64)
		return NULL;
	if (common[bit])
		return common[bit];
	if (dev == FE_DEV_NET)
		return net[bit];
	if (dev == FE_DEV_BLK)
		return blk[bit];
	return NULL;
}

enum fe_dev fe_guess_dev(uint64_t f)
{
	/* MRG_RXBUF, MAC, STATUS or CTRL_VQ: net. SEG_MAX, BLK_SIZE or FLUSH: blk. */
	if (f & ((1ULL << 15) | (1ULL << 5) | (1ULL << 16) | (1ULL << 17)))
		return FE_DEV_NET;
	if (f & ((1ULL << 2) | (1ULL << 6) | (1ULL << 9)))
		return FE_DEV_BLK;
	return FE_DEV_UNKNOWN;
}
