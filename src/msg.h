/* SPDX-License-Identifier: MIT */
/*
 * vhost-user wire codec: the message object, the per-request rules table and the checks that
 * run on every message before any handler sees it.
 */
#ifndef VHU_MSG_H
#define VHU_MSG_H

#include <stdbool.h>
#include <stdint.h>

#include "vhu/proto.h"

/* Largest payload either side accepts: GET_SHMEM_CONFIG's reply (4 + 256 * 8) fits. */
#define MSG_MAX_PAYLOAD 4096
/* Most fds one message may carry (SET_MEM_TABLE's 8 regions). */
#define MSG_MAX_FDS VHU_MEM_BASELINE_NREGIONS

struct msg {
	struct vhu_hdr hdr;
	union {
		uint64_t u64;
		struct vhu_vring_state state;
		struct vhu_vring_addr addr;
		struct vhu_mem_table mem;
		struct vhu_mem_single mem_single;
		struct vhu_log_desc log;
		struct vhu_config config;
		struct vhu_iotlb_msg iotlb;
		struct vhu_inflight inflight;
		struct vhu_device_state dev_state;
		struct vhu_vring_area area;
		struct vhu_shmem_map shmem;
		uint8_t raw[MSG_MAX_PAYLOAD];
	} p;
	int fds[MSG_MAX_FDS]; /* owned by the message until a handler takes one (sets -1) */
	unsigned nfds;
};

enum msg_fds {
	FDS_NONE,     /* no fd allowed */
	FDS_ONE,      /* exactly one */
	FDS_OPTIONAL, /* zero or one, decided by the VRING_NOFD bit of the u64 payload */
	FDS_ZERO_ONE, /* zero or one, either accepted (REM_MEM_REG: close it) */
	FDS_REGIONS,  /* one per memory region in the payload */
};

enum msg_reply {
	REPLY_ACK_ONLY, /* an ack (u64) only when REPLY_ACK is negotiated and NEED_REPLY set */
	REPLY_ALWAYS,	/* the reply carries data; a failure is an empty payload */
	REPLY_STATUS,	/* the reply is a u64 status: 0 success, non-zero failure */
	REPLY_LOG_BASE, /* SET_LOG_BASE: replies (u64) when LOG_SHMFD is negotiated */
};

struct msg_rule {
	const char *name;
	uint16_t min_size;
	uint16_t max_size;
	uint8_t fds;	  /* enum msg_fds */
	uint8_t reply;	  /* enum msg_reply */
	int8_t gate;	  /* protocol feature that must be negotiated, -1 for none */
	bool needs_proto; /* valid only once VHU_F_PROTOCOL_FEATURES was negotiated */
};

/* Rule for a front-end request, or NULL when the request number is unknown. */
const struct msg_rule *msg_rule(uint32_t request);

/* Rule for a back-end request (BACKEND_REQ channel), or NULL when the number is unknown. */
const struct msg_rule *msg_backend_rule(uint32_t request);

/* Header checks that need nothing but the header: version, reply bit, size bound. */
int msg_check_hdr(const struct vhu_hdr *h, bool expect_reply);

/* Full check of a received front-end request against its rule, given the virtio features
 * (bit VHU_F_PROTOCOL_FEATURES for needs_proto) and protocol features (gate) in force. On
 * failure writes a reason into why (for the log) and returns -EPROTO for a malformed message
 * (or -ENOTSUP for an unknown request), after which the stream cannot be trusted, or
 * -ENOPROTOOPT for a well-formed message whose protocol feature (or
 * VHOST_USER_F_PROTOCOL_FEATURES) is not negotiated: a request to refuse, not a broken peer.
 * Size and fds are checked first, so -ENOPROTOOPT means the rest of the message is sound. */
int msg_check(const struct msg *m, uint64_t features, uint64_t protocol_features, char *why,
	      unsigned whylen);

/* The same check for a back-end request received on the BACKEND_REQ channel (the front-end's
 * side), with the same results: -EPROTO / -ENOTSUP for a malformed message or an unknown
 * request (the channel cannot be trusted any more), -ENOPROTOOPT for a well-formed request
 * whose feature (protocol feature, or VIRTIO_F_IOMMU_PLATFORM for IOTLB_MSG) is not
 * negotiated. */
int msg_check_backend(const struct msg *m, uint64_t features, uint64_t protocol_features, char *why,
		      unsigned whylen);
/* Checks m as the u64 ack (REPLY_ACK) to `request`: reply bit, request, size 8, no fds. */
int msg_check_ack(const struct msg *m, uint32_t request, char *why, unsigned whylen);
/* Does this back-end request want a reply (an ack on NEED_REPLY, or its status reply)? */
bool msg_backend_wants_reply(const struct msg *m, uint64_t protocol_features);

/* Does this request want a reply, given the negotiated protocol features? */
bool msg_wants_reply(const struct msg *m, uint64_t protocol_features);

/* Turns m (a request that failed with -err) into the failure reply its rule gives: a u64 err
 * for an ack or a status reply, an empty payload for a reply that carries data
 * ("VHOST_USER_GET_CONFIG": "zero length of payload to indicate an error"). */
void msg_fail_reply(struct msg *m, int err);

void msg_init(struct msg *m, uint32_t request, uint32_t flags, uint32_t size);
/* Closes every fd the message still owns. */
void msg_close_fds(struct msg *m);

#endif
