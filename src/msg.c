/* SPDX-License-Identifier: MIT */
/*
 * The request table is the one place that says what each vhost-user message looks like:
 * payload size range, fd count, reply rule, and which protocol feature gates it. Sizes are the
 * wire sizes of the structs in vhu/proto.h.
 */
#include <errno.h>
#include <linux/virtio_config.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "msg.h"
#include "util.h"

#define U64    sizeof(uint64_t)
#define STATE  sizeof(struct vhu_vring_state)
#define NOGATE -1

/*
 * Requests without a payload accept up to 8 bytes: several front-ends send a vring state or a
 * u64 with GET requests (DPDK sends GET_VRING_BASE with a state), and the spec gives such a
 * payload no meaning.
 */
#define EMPTY 0, 8

static const struct msg_rule rules[VHU_REQ_MAX] = {
	[VHU_REQ_GET_FEATURES] = { "GET_FEATURES", EMPTY, FDS_NONE, REPLY_ALWAYS, NOGATE },
	[VHU_REQ_SET_FEATURES] = { "SET_FEATURES", U64, U64, FDS_NONE, REPLY_ACK_ONLY, NOGATE },
	[VHU_REQ_SET_OWNER] = { "SET_OWNER", EMPTY, FDS_NONE, REPLY_ACK_ONLY, NOGATE },
	[VHU_REQ_RESET_OWNER] = { "RESET_OWNER", EMPTY, FDS_NONE, REPLY_ACK_ONLY, NOGATE },
	[VHU_REQ_SET_MEM_TABLE] = { "SET_MEM_TABLE", 8, sizeof(struct vhu_mem_table), FDS_REGIONS,
				    REPLY_ACK_ONLY, NOGATE },
	[VHU_REQ_SET_LOG_BASE] = { "SET_LOG_BASE", sizeof(struct vhu_log_desc),
				   sizeof(struct vhu_log_desc), FDS_ONE, REPLY_LOG_BASE,
				   VHU_PROTO_F_LOG_SHMFD },
	[VHU_REQ_SET_LOG_FD] = { "SET_LOG_FD", EMPTY, FDS_ONE, REPLY_ACK_ONLY, NOGATE },
	[VHU_REQ_SET_VRING_NUM] = { "SET_VRING_NUM", STATE, STATE, FDS_NONE, REPLY_ACK_ONLY,
				    NOGATE },
	[VHU_REQ_SET_VRING_ADDR] = { "SET_VRING_ADDR", sizeof(struct vhu_vring_addr),
				     sizeof(struct vhu_vring_addr), FDS_NONE, REPLY_ACK_ONLY,
				     NOGATE },
	[VHU_REQ_SET_VRING_BASE] = { "SET_VRING_BASE", STATE, STATE, FDS_NONE, REPLY_ACK_ONLY,
				     NOGATE },
	[VHU_REQ_GET_VRING_BASE] = { "GET_VRING_BASE", STATE, STATE, FDS_NONE, REPLY_ALWAYS,
				     NOGATE },
	[VHU_REQ_SET_VRING_KICK] = { "SET_VRING_KICK", U64, U64, FDS_OPTIONAL, REPLY_ACK_ONLY,
				     NOGATE },
	[VHU_REQ_SET_VRING_CALL] = { "SET_VRING_CALL", U64, U64, FDS_OPTIONAL, REPLY_ACK_ONLY,
				     NOGATE },
	[VHU_REQ_SET_VRING_ERR] = { "SET_VRING_ERR", U64, U64, FDS_OPTIONAL, REPLY_ACK_ONLY,
				    NOGATE },
	/* "Only legal if feature bit VHOST_USER_F_PROTOCOL_FEATURES is present in
	 * VHOST_USER_GET_FEATURES. It does not need to be acknowledged": the back-end always
	 * offers it, so these two are never refused for it (needs_proto false). */
	[VHU_REQ_GET_PROTOCOL_FEATURES] = { "GET_PROTOCOL_FEATURES", EMPTY, FDS_NONE, REPLY_ALWAYS,
					    NOGATE },
	[VHU_REQ_SET_PROTOCOL_FEATURES] = { "SET_PROTOCOL_FEATURES", U64, U64, FDS_NONE,
					    REPLY_ACK_ONLY, NOGATE },
	[VHU_REQ_GET_QUEUE_NUM] = { "GET_QUEUE_NUM", EMPTY, FDS_NONE, REPLY_ALWAYS,
				    VHU_PROTO_F_MQ },
	/* "This request should be sent only when VHOST_USER_F_PROTOCOL_FEATURES has been
	 * negotiated." */
	[VHU_REQ_SET_VRING_ENABLE] = { "SET_VRING_ENABLE", STATE, STATE, FDS_NONE, REPLY_ACK_ONLY,
				       NOGATE, true },
	[VHU_REQ_SEND_RARP] = { "SEND_RARP", U64, U64, FDS_NONE, REPLY_ACK_ONLY, VHU_PROTO_F_RARP },
	[VHU_REQ_NET_SET_MTU] = { "NET_SET_MTU", U64, U64, FDS_NONE, REPLY_ACK_ONLY,
				  VHU_PROTO_F_NET_MTU },
	[VHU_REQ_SET_BACKEND_REQ_FD] = { "SET_BACKEND_REQ_FD", EMPTY, FDS_ONE, REPLY_ACK_ONLY,
					 VHU_PROTO_F_BACKEND_REQ },
	[VHU_REQ_IOTLB_MSG] = { "IOTLB_MSG", sizeof(struct vhu_iotlb_msg),
				sizeof(struct vhu_iotlb_msg), FDS_NONE, REPLY_STATUS, NOGATE },
	[VHU_REQ_SET_VRING_ENDIAN] = { "SET_VRING_ENDIAN", STATE, STATE, FDS_NONE, REPLY_ACK_ONLY,
				       VHU_PROTO_F_CROSS_ENDIAN },
	[VHU_REQ_GET_CONFIG] = { "GET_CONFIG", VHU_CONFIG_HDR_SIZE, sizeof(struct vhu_config),
				 FDS_NONE, REPLY_ALWAYS, VHU_PROTO_F_CONFIG },
	[VHU_REQ_SET_CONFIG] = { "SET_CONFIG", VHU_CONFIG_HDR_SIZE, sizeof(struct vhu_config),
				 FDS_NONE, REPLY_ACK_ONLY, VHU_PROTO_F_CONFIG },
	[VHU_REQ_CREATE_CRYPTO_SESSION] = { "CREATE_CRYPTO_SESSION", 0, MSG_MAX_PAYLOAD, FDS_NONE,
					    REPLY_ALWAYS, VHU_PROTO_F_CRYPTO_SESSION },
	[VHU_REQ_CLOSE_CRYPTO_SESSION] = { "CLOSE_CRYPTO_SESSION", U64, U64, FDS_NONE,
					   REPLY_ACK_ONLY, VHU_PROTO_F_CRYPTO_SESSION },
	[VHU_REQ_POSTCOPY_ADVISE] = { "POSTCOPY_ADVISE", EMPTY, FDS_NONE, REPLY_ALWAYS,
				      VHU_PROTO_F_PAGEFAULT },
	[VHU_REQ_POSTCOPY_LISTEN] = { "POSTCOPY_LISTEN", EMPTY, FDS_NONE, REPLY_ACK_ONLY,
				      VHU_PROTO_F_PAGEFAULT },
	[VHU_REQ_POSTCOPY_END] = { "POSTCOPY_END", EMPTY, FDS_NONE, REPLY_STATUS,
				   VHU_PROTO_F_PAGEFAULT },
	[VHU_REQ_GET_INFLIGHT_FD] = { "GET_INFLIGHT_FD", 20, sizeof(struct vhu_inflight), FDS_NONE,
				      REPLY_ALWAYS, VHU_PROTO_F_INFLIGHT_SHMFD },
	[VHU_REQ_SET_INFLIGHT_FD] = { "SET_INFLIGHT_FD", 20, sizeof(struct vhu_inflight), FDS_ONE,
				      REPLY_ACK_ONLY, VHU_PROTO_F_INFLIGHT_SHMFD },
	[VHU_REQ_GPU_SET_SOCKET] = { "GPU_SET_SOCKET", EMPTY, FDS_ONE, REPLY_ACK_ONLY, NOGATE },
	[VHU_REQ_RESET_DEVICE] = { "RESET_DEVICE", EMPTY, FDS_NONE, REPLY_ACK_ONLY,
				   VHU_PROTO_F_RESET_DEVICE },
	[VHU_REQ_VRING_KICK] = { "VRING_KICK", STATE, STATE, FDS_NONE, REPLY_ACK_ONLY,
				 VHU_PROTO_F_INBAND_NOTIFICATIONS },
	[VHU_REQ_GET_MAX_MEM_SLOTS] = { "GET_MAX_MEM_SLOTS", EMPTY, FDS_NONE, REPLY_ALWAYS,
					VHU_PROTO_F_CONFIGURE_MEM_SLOTS },
	[VHU_REQ_ADD_MEM_REG] = { "ADD_MEM_REG", sizeof(struct vhu_mem_single),
				  sizeof(struct vhu_mem_single), FDS_ONE, REPLY_ACK_ONLY,
				  VHU_PROTO_F_CONFIGURE_MEM_SLOTS },
	[VHU_REQ_REM_MEM_REG] = { "REM_MEM_REG", sizeof(struct vhu_mem_single),
				  sizeof(struct vhu_mem_single), FDS_ZERO_ONE, REPLY_ACK_ONLY,
				  VHU_PROTO_F_CONFIGURE_MEM_SLOTS },
	[VHU_REQ_SET_STATUS] = { "SET_STATUS", U64, U64, FDS_NONE, REPLY_ACK_ONLY,
				 VHU_PROTO_F_STATUS },
	[VHU_REQ_GET_STATUS] = { "GET_STATUS", EMPTY, FDS_NONE, REPLY_ALWAYS, VHU_PROTO_F_STATUS },
	[VHU_REQ_GET_SHARED_OBJECT] = { "GET_SHARED_OBJECT", 16, 16, FDS_NONE, REPLY_ALWAYS,
					VHU_PROTO_F_SHARED_OBJECT },
	[VHU_REQ_SET_DEVICE_STATE_FD] = { "SET_DEVICE_STATE_FD", sizeof(struct vhu_device_state),
					  sizeof(struct vhu_device_state), FDS_ONE, REPLY_STATUS,
					  VHU_PROTO_F_DEVICE_STATE },
	[VHU_REQ_CHECK_DEVICE_STATE] = { "CHECK_DEVICE_STATE", EMPTY, FDS_NONE, REPLY_STATUS,
					 VHU_PROTO_F_DEVICE_STATE },
	[VHU_REQ_GET_SHMEM_CONFIG] = { "GET_SHMEM_CONFIG", EMPTY, FDS_NONE, REPLY_ALWAYS,
				       VHU_PROTO_F_SHMEM },
};

/*
 * Back-end requests ("Back-end message types"), sent by the back-end on the BACKEND_REQ
 * channel; the front-end checks what arrives against these rows, the back-end what it sends.
 * Every one of them is acked only on NEED_REPLY (with REPLY_ACK negotiated), but
 * SHARED_OBJECT_LOOKUP, whose reply (a u64 status, and an fd on success) always comes.
 * BACKEND_IOTLB_MSG has no protocol feature: it needs VIRTIO_F_IOMMU_PLATFORM (msg_check_backend).
 */
static const struct msg_rule backend_rules[VHU_BREQ_MAX] = {
	[VHU_BREQ_IOTLB_MSG] = { "BACKEND_IOTLB_MSG", sizeof(struct vhu_iotlb_msg),
				 sizeof(struct vhu_iotlb_msg), FDS_NONE, REPLY_ACK_ONLY, NOGATE },
	[VHU_BREQ_CONFIG_CHANGE_MSG] = { "BACKEND_CONFIG_CHANGE_MSG", EMPTY, FDS_NONE,
					 REPLY_ACK_ONLY, VHU_PROTO_F_CONFIG },
	/* The fd may be absent: VHU_VRING_NOFD in the area's u64 de-registers the notifier. */
	[VHU_BREQ_VRING_HOST_NOTIFIER_MSG] = { "BACKEND_VRING_HOST_NOTIFIER_MSG",
					       sizeof(struct vhu_vring_area),
					       sizeof(struct vhu_vring_area), FDS_OPTIONAL,
					       REPLY_ACK_ONLY, VHU_PROTO_F_HOST_NOTIFIER },
	[VHU_BREQ_VRING_CALL] = { "BACKEND_VRING_CALL", STATE, STATE, FDS_NONE, REPLY_ACK_ONLY,
				  VHU_PROTO_F_INBAND_NOTIFICATIONS },
	[VHU_BREQ_VRING_ERR] = { "BACKEND_VRING_ERR", STATE, STATE, FDS_NONE, REPLY_ACK_ONLY,
				 VHU_PROTO_F_INBAND_NOTIFICATIONS },
	[VHU_BREQ_SHARED_OBJECT_ADD] = { "BACKEND_SHARED_OBJECT_ADD", 16, 16, FDS_NONE,
					 REPLY_ACK_ONLY, VHU_PROTO_F_SHARED_OBJECT },
	[VHU_BREQ_SHARED_OBJECT_REMOVE] = { "BACKEND_SHARED_OBJECT_REMOVE", 16, 16, FDS_NONE,
					    REPLY_ACK_ONLY, VHU_PROTO_F_SHARED_OBJECT },
	[VHU_BREQ_SHARED_OBJECT_LOOKUP] = { "BACKEND_SHARED_OBJECT_LOOKUP", 16, 16, FDS_NONE,
					    REPLY_STATUS, VHU_PROTO_F_SHARED_OBJECT },
	[VHU_BREQ_SHMEM_MAP] = { "BACKEND_SHMEM_MAP", sizeof(struct vhu_shmem_map),
				 sizeof(struct vhu_shmem_map), FDS_ONE, REPLY_ACK_ONLY,
				 VHU_PROTO_F_SHMEM },
	[VHU_BREQ_SHMEM_UNMAP] = { "BACKEND_SHMEM_UNMAP", sizeof(struct vhu_shmem_map),
				   sizeof(struct vhu_shmem_map), FDS_NONE, REPLY_ACK_ONLY,
				   VHU_PROTO_F_SHMEM },
};

static const char *const proto_names[VHU_PROTO_F_MAX] = {
	[VHU_PROTO_F_MQ] = "MQ",
	[VHU_PROTO_F_LOG_SHMFD] = "LOG_SHMFD",
	[VHU_PROTO_F_RARP] = "RARP",
	[VHU_PROTO_F_REPLY_ACK] = "REPLY_ACK",
	[VHU_PROTO_F_NET_MTU] = "NET_MTU",
	[VHU_PROTO_F_BACKEND_REQ] = "BACKEND_REQ",
	[VHU_PROTO_F_CROSS_ENDIAN] = "CROSS_ENDIAN",
	[VHU_PROTO_F_CRYPTO_SESSION] = "CRYPTO_SESSION",
	[VHU_PROTO_F_PAGEFAULT] = "PAGEFAULT",
	[VHU_PROTO_F_CONFIG] = "CONFIG",
	[VHU_PROTO_F_BACKEND_SEND_FD] = "BACKEND_SEND_FD",
	[VHU_PROTO_F_HOST_NOTIFIER] = "HOST_NOTIFIER",
	[VHU_PROTO_F_INFLIGHT_SHMFD] = "INFLIGHT_SHMFD",
	[VHU_PROTO_F_RESET_DEVICE] = "RESET_DEVICE",
	[VHU_PROTO_F_INBAND_NOTIFICATIONS] = "INBAND_NOTIFICATIONS",
	[VHU_PROTO_F_CONFIGURE_MEM_SLOTS] = "CONFIGURE_MEM_SLOTS",
	[VHU_PROTO_F_STATUS] = "STATUS",
	[VHU_PROTO_F_XEN_MMAP] = "XEN_MMAP",
	[VHU_PROTO_F_SHARED_OBJECT] = "SHARED_OBJECT",
	[VHU_PROTO_F_DEVICE_STATE] = "DEVICE_STATE",
	[VHU_PROTO_F_GET_VRING_BASE_INFLIGHT] = "GET_VRING_BASE_INFLIGHT",
	[VHU_PROTO_F_GPA_ADDRESSES] = "GPA_ADDRESSES",
	[VHU_PROTO_F_SHMEM] = "SHMEM",
};

const struct msg_rule *msg_rule(uint32_t request)
{
	if (request >= VHU_REQ_MAX || !rules[request].name)
		return NULL;
	return &rules[request];
}

VHU_EXPORT const char *vhu_request_name(uint32_t request)
{
	const struct msg_rule *r = msg_rule(request);
	return r ? r->name : "?";
}

const struct msg_rule *msg_backend_rule(uint32_t request)
{
	if (request >= VHU_BREQ_MAX || !backend_rules[request].name)
		return NULL;
	return &backend_rules[request];
}

VHU_EXPORT const char *vhu_backend_request_name(uint32_t request)
{
	const struct msg_rule *r = msg_backend_rule(request);
	return r ? r->name : "?";
}

VHU_EXPORT const char *vhu_protocol_feature_name(unsigned bit)
{
	return bit < VHU_PROTO_F_MAX ? proto_names[bit] : NULL;
}

int msg_check_hdr(const struct vhu_hdr *h, bool expect_reply)
{
	if ((h->flags & VHU_FLAG_VERSION_MASK) != VHU_VERSION)
		return -EPROTO;
	if (!!(h->flags & VHU_FLAG_REPLY) != expect_reply)
		return -EPROTO;
	if (h->size > MSG_MAX_PAYLOAD)
		return -EMSGSIZE;
	return 0;
}

static int why_fail(char *why, unsigned len, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int why_fail(char *why, unsigned len, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (why && len)
		vsnprintf(why, len, fmt, ap);
	va_end(ap);
	return err;
}

static int check_fds(const struct msg *m, const struct msg_rule *r, char *why, unsigned len)
{
	unsigned want;

	switch (r->fds) {
	case FDS_NONE:
		want = 0;
		break;
	case FDS_ONE:
		want = 1;
		break;
	case FDS_OPTIONAL:
		want = (m->p.u64 & VHU_VRING_NOFD) ? 0 : 1;
		break;
	case FDS_ZERO_ONE:
		if (m->nfds > 1)
			return why_fail(why, len, -EPROTO, "%s carries %u fds, at most 1 allowed",
					r->name, m->nfds);
		return 0;
	case FDS_REGIONS:
		want = m->p.mem.nregions;
		break;
	default:
		return why_fail(why, len, -EPROTO, "bad fd rule");
	}
	if (m->nfds != want)
		return why_fail(why, len, -EPROTO, "%s carries %u fds, expected %u", r->name,
				m->nfds, want);
	return 0;
}

static int check_gate(const struct msg_rule *r, uint64_t features, uint64_t protocol_features,
		      char *why, unsigned len);

/* What both directions check first: a rule for the request (what says "unknown ... %u"), the
 * header, the payload size within the rule's bounds. */
static int check_frame(const struct msg *m, const struct msg_rule *r, const char *unknown,
		       char *why, unsigned len)
{
	int ret;

	if (!r)
		return why_fail(why, len, -ENOTSUP, "%s %u", unknown, m->hdr.request);
	ret = msg_check_hdr(&m->hdr, false);
	if (ret)
		return why_fail(why, len, ret, "%s: bad header (flags 0x%x, size %u)", r->name,
				m->hdr.flags, m->hdr.size);
	if (m->hdr.size < r->min_size || m->hdr.size > r->max_size)
		return why_fail(why, len, -EPROTO, "%s: payload size %u outside [%u, %u]", r->name,
				m->hdr.size, r->min_size, r->max_size);
	return 0;
}

int msg_check(const struct msg *m, uint64_t features, uint64_t protocol_features, char *why,
	      unsigned len)
{
	const struct msg_rule *r = msg_rule(m->hdr.request);
	int ret = check_frame(m, r, "unknown request", why, len);

	if (ret)
		return ret;
	if (m->hdr.request == VHU_REQ_SET_MEM_TABLE) {
		uint32_t n = m->p.mem.nregions;
		if (n > VHU_MEM_BASELINE_NREGIONS ||
		    m->hdr.size != 8 + n * sizeof(struct vhu_mem_region))
			return why_fail(why, len, -EPROTO,
					"SET_MEM_TABLE: %u regions do not match payload size %u", n,
					m->hdr.size);
	}
	if (m->hdr.request == VHU_REQ_GET_CONFIG || m->hdr.request == VHU_REQ_SET_CONFIG) {
		const struct vhu_config *c = &m->p.config;
		if (c->size > VHU_MAX_CONFIG_SIZE || m->hdr.size != VHU_CONFIG_HDR_SIZE + c->size)
			return why_fail(why, len, -EPROTO,
					"%s: config size %u does not match payload %u", r->name,
					c->size, m->hdr.size);
	}
	ret = check_fds(m, r, why, len);
	if (ret)
		return ret;
	return check_gate(r, features, protocol_features, why, len);
}

/* Well formed: what follows is a refusal, and the stream is still in sync. */
static int check_gate(const struct msg_rule *r, uint64_t features, uint64_t protocol_features,
		      char *why, unsigned len)
{
	if (r->needs_proto && !has_bit(features, VHU_F_PROTOCOL_FEATURES))
		return why_fail(why, len, -ENOPROTOOPT,
				"%s needs VHOST_USER_F_PROTOCOL_FEATURES, not negotiated", r->name);
	if (r->gate >= 0 && !has_bit(protocol_features, (unsigned)r->gate))
		return why_fail(why, len, -ENOPROTOOPT,
				"%s needs protocol feature %s, not negotiated", r->name,
				proto_names[r->gate]);
	return 0;
}

int msg_check_backend(const struct msg *m, uint64_t features, uint64_t protocol_features, char *why,
		      unsigned len)
{
	const struct msg_rule *r = msg_backend_rule(m->hdr.request);
	int ret = check_frame(m, r, "unknown back-end request", why, len);

	if (ret)
		return ret;
	/* FDS_OPTIONAL reads the u64 only when the payload holds it (HOST_NOTIFIER: it does). */
	ret = check_fds(m, r, why, len);
	if (ret)
		return ret;
	/* "VHOST_USER_BACKEND_IOTLB_MSG": "This request should be send only when
	 * VIRTIO_F_IOMMU_PLATFORM feature has been successfully negotiated." (the legacy name of
	 * VIRTIO_F_ACCESS_PLATFORM) */
	if (m->hdr.request == VHU_BREQ_IOTLB_MSG && !has_bit(features, VIRTIO_F_ACCESS_PLATFORM))
		return why_fail(why, len, -ENOPROTOOPT,
				"%s needs VIRTIO_F_IOMMU_PLATFORM, not negotiated", r->name);
	return check_gate(r, features, protocol_features, why, len);
}

int msg_check_ack(const struct msg *m, uint32_t request, char *why, unsigned len)
{
	int ret = msg_check_hdr(&m->hdr, true);

	if (ret)
		return why_fail(why, len, ret, "reply with bad header (flags 0x%x, size %u)",
				m->hdr.flags, m->hdr.size);
	if (m->hdr.request != request)
		return why_fail(why, len, -EPROTO, "reply to request %u, expected one to %u",
				m->hdr.request, request);
	if (m->hdr.size != sizeof(uint64_t) || m->nfds)
		return why_fail(why, len, -EPROTO, "reply of %u bytes and %u fds, expected a u64",
				m->hdr.size, m->nfds);
	return 0;
}

bool msg_backend_wants_reply(const struct msg *m, uint64_t protocol_features)
{
	const struct msg_rule *r = msg_backend_rule(m->hdr.request);

	if (!r)
		return false;
	if (r->reply == REPLY_STATUS)
		return true;
	return has_bit(protocol_features, VHU_PROTO_F_REPLY_ACK) &&
	       (m->hdr.flags & VHU_FLAG_NEED_REPLY);
}

bool msg_wants_reply(const struct msg *m, uint64_t protocol_features)
{
	const struct msg_rule *r = msg_rule(m->hdr.request);

	if (!r)
		return false;
	switch (r->reply) {
	case REPLY_ALWAYS:
	case REPLY_STATUS:
		return true;
	case REPLY_LOG_BASE:
		if (has_bit(protocol_features, VHU_PROTO_F_LOG_SHMFD))
			return true;
		break;
	default:
		break;
	}
	return has_bit(protocol_features, VHU_PROTO_F_REPLY_ACK) &&
	       (m->hdr.flags & VHU_FLAG_NEED_REPLY);
}

void msg_fail_reply(struct msg *m, int err)
{
	const struct msg_rule *r = msg_rule(m->hdr.request);

	if (r && r->reply == REPLY_ALWAYS) {
		m->hdr.size = 0;
		return;
	}
	m->p.u64 = err > 0 ? (uint64_t)err : 1;
	/* "VHOST_USER_SET_DEVICE_STATE_FD": bits 0-7 the error, bit 8 "no fd" (none comes). */
	if (m->hdr.request == VHU_REQ_SET_DEVICE_STATE_FD)
		m->p.u64 = (m->p.u64 & 0xff ? m->p.u64 & 0xff : 1) | (1u << 8);
	m->hdr.size = sizeof(uint64_t);
}

void msg_init(struct msg *m, uint32_t request, uint32_t flags, uint32_t size)
{
	m->hdr.request = request;
	m->hdr.flags = VHU_VERSION | flags;
	m->hdr.size = size;
	m->nfds = 0;
	for (unsigned i = 0; i < MSG_MAX_FDS; i++)
		m->fds[i] = -1;
}

void msg_close_fds(struct msg *m)
{
	for (unsigned i = 0; i < MSG_MAX_FDS; i++)
		close_fd(&m->fds[i]);
	m->nfds = 0;
}
