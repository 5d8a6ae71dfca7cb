/* SPDX-License-Identifier: MIT */
/*
 * The vhost-user wire protocol: request numbers, protocol feature bits and payload layouts,
 * as docs/interop/vhost-user.rst defines them. All fields are in native byte order.
 */
#ifndef VHU_PROTO_H
#define VHU_PROTO_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Front-end -> back-end requests ("Front-end message types"). */
enum vhu_request {
	VHU_REQ_NONE = 0,
	VHU_REQ_GET_FEATURES = 1,
	VHU_REQ_SET_FEATURES = 2,
	VHU_REQ_SET_OWNER = 3,
	VHU_REQ_RESET_OWNER = 4,
	VHU_REQ_SET_MEM_TABLE = 5,
	VHU_REQ_SET_LOG_BASE = 6,
	VHU_REQ_SET_LOG_FD = 7,
	VHU_REQ_SET_VRING_NUM = 8,
	VHU_REQ_SET_VRING_ADDR = 9,
	VHU_REQ_SET_VRING_BASE = 10,
	VHU_REQ_GET_VRING_BASE = 11,
	VHU_REQ_SET_VRING_KICK = 12,
	VHU_REQ_SET_VRING_CALL = 13,
	VHU_REQ_SET_VRING_ERR = 14,
	VHU_REQ_GET_PROTOCOL_FEATURES = 15,
	VHU_REQ_SET_PROTOCOL_FEATURES = 16,
	VHU_REQ_GET_QUEUE_NUM = 17,
	VHU_REQ_SET_VRING_ENABLE = 18,
	VHU_REQ_SEND_RARP = 19,
	VHU_REQ_NET_SET_MTU = 20,
	VHU_REQ_SET_BACKEND_REQ_FD = 21,
	VHU_REQ_IOTLB_MSG = 22,
	VHU_REQ_SET_VRING_ENDIAN = 23,
	VHU_REQ_GET_CONFIG = 24,
	VHU_REQ_SET_CONFIG = 25,
	VHU_REQ_CREATE_CRYPTO_SESSION = 26,
	VHU_REQ_CLOSE_CRYPTO_SESSION = 27,
	VHU_REQ_POSTCOPY_ADVISE = 28,
	VHU_REQ_POSTCOPY_LISTEN = 29,
	VHU_REQ_POSTCOPY_END = 30,
	VHU_REQ_GET_INFLIGHT_FD = 31,
	VHU_REQ_SET_INFLIGHT_FD = 32,
	VHU_REQ_GPU_SET_SOCKET = 33,
	VHU_REQ_RESET_DEVICE = 34,
	VHU_REQ_VRING_KICK = 35,
	VHU_REQ_GET_MAX_MEM_SLOTS = 36,
	VHU_REQ_ADD_MEM_REG = 37,
	VHU_REQ_REM_MEM_REG = 38,
	VHU_REQ_SET_STATUS = 39,
	VHU_REQ_GET_STATUS = 40,
	VHU_REQ_GET_SHARED_OBJECT = 41,
	VHU_REQ_SET_DEVICE_STATE_FD = 42,
	VHU_REQ_CHECK_DEVICE_STATE = 43,
	VHU_REQ_GET_SHMEM_CONFIG = 44,
	VHU_REQ_MAX
};

/* Back-end -> front-end requests, on the BACKEND_REQ channel. */
enum vhu_backend_request {
	VHU_BREQ_NONE = 0,
	VHU_BREQ_IOTLB_MSG = 1,
	VHU_BREQ_CONFIG_CHANGE_MSG = 2,
	VHU_BREQ_VRING_HOST_NOTIFIER_MSG = 3,
	VHU_BREQ_VRING_CALL = 4,
	VHU_BREQ_VRING_ERR = 5,
	VHU_BREQ_SHARED_OBJECT_ADD = 6,
	VHU_BREQ_SHARED_OBJECT_REMOVE = 7,
	VHU_BREQ_SHARED_OBJECT_LOOKUP = 8,
	VHU_BREQ_SHMEM_MAP = 9,
	VHU_BREQ_SHMEM_UNMAP = 10,
	VHU_BREQ_MAX
};

/* Protocol feature bit numbers ("Protocol features"). */
enum vhu_protocol_feature {
	VHU_PROTO_F_MQ = 0,
	VHU_PROTO_F_LOG_SHMFD = 1,
	VHU_PROTO_F_RARP = 2,
	VHU_PROTO_F_REPLY_ACK = 3,
	VHU_PROTO_F_NET_MTU = 4,
	VHU_PROTO_F_BACKEND_REQ = 5,
	VHU_PROTO_F_CROSS_ENDIAN = 6,
	VHU_PROTO_F_CRYPTO_SESSION = 7,
	VHU_PROTO_F_PAGEFAULT = 8,
	VHU_PROTO_F_CONFIG = 9,
	VHU_PROTO_F_BACKEND_SEND_FD = 10,
	VHU_PROTO_F_HOST_NOTIFIER = 11,
	VHU_PROTO_F_INFLIGHT_SHMFD = 12,
	VHU_PROTO_F_RESET_DEVICE = 13,
	VHU_PROTO_F_INBAND_NOTIFICATIONS = 14,
	VHU_PROTO_F_CONFIGURE_MEM_SLOTS = 15,
	VHU_PROTO_F_STATUS = 16,
	VHU_PROTO_F_XEN_MMAP = 17,
	VHU_PROTO_F_SHARED_OBJECT = 18,
	VHU_PROTO_F_DEVICE_STATE = 19,
	VHU_PROTO_F_GET_VRING_BASE_INFLIGHT = 20,
	VHU_PROTO_F_GPA_ADDRESSES = 21,
	VHU_PROTO_F_SHMEM = 22,
	VHU_PROTO_F_MAX
};

/* Virtio feature bit 30: unlocks GET/SET_PROTOCOL_FEATURES. */
#define VHU_F_PROTOCOL_FEATURES 30
/* Feature bit 26 (VHOST_F_LOG_ALL): the device logs every write into front-end memory. */
#define VHU_F_LOG_ALL 26

/* Header flags. */
#define VHU_FLAG_VERSION_MASK 0x3u
#define VHU_VERSION	      0x1u
#define VHU_FLAG_REPLY	      (1u << 2)
#define VHU_FLAG_NEED_REPLY   (1u << 3)

/* SET_VRING_KICK/CALL/ERR payload. */
#define VHU_VRING_IDX_MASK 0xffu
#define VHU_VRING_NOFD	   (1u << 8)

/* SET_VRING_ADDR flags: log the used ring (LOG_ALL). */
#define VHU_VRING_F_LOG 0

#define VHU_MEM_BASELINE_NREGIONS 8
#define VHU_MAX_CONFIG_SIZE	  256
#define VHU_HDR_SIZE		  12

struct vhu_hdr {
	uint32_t request;
	uint32_t flags;
	uint32_t size;
} __attribute__((packed));

struct vhu_vring_state {
	uint32_t index;
	uint32_t num;
};

struct vhu_vring_addr {
	uint32_t index;
	uint32_t flags;
	uint64_t desc;
	uint64_t used;
	uint64_t avail;
	uint64_t log;
};

struct vhu_mem_region {
	uint64_t guest_phys_addr;
	uint64_t memory_size;
	uint64_t userspace_addr;
	uint64_t mmap_offset;
};

struct vhu_mem_table {
	uint32_t nregions;
	uint32_t padding;
	struct vhu_mem_region regions[VHU_MEM_BASELINE_NREGIONS];
};

struct vhu_mem_single {
	uint64_t padding;
	struct vhu_mem_region region;
};

struct vhu_log_desc {
	uint64_t size;
	uint64_t offset;
};

struct vhu_config {
	uint32_t offset;
	uint32_t size;
	uint32_t flags;
	uint8_t region[VHU_MAX_CONFIG_SIZE];
};
#define VHU_CONFIG_HDR_SIZE 12

struct vhu_iotlb_msg {
	uint64_t iova;
	uint64_t size;
	uint64_t uaddr;
	uint8_t perm;
	uint8_t type;
	uint8_t pad[6];
};

struct vhu_inflight {
	uint64_t mmap_size;
	uint64_t mmap_offset;
	uint16_t num_queues;
	uint16_t queue_size;
	uint32_t pad;
};

struct vhu_device_state {
	uint32_t direction;
	uint32_t phase;
};

/* Name of a front-end request, "?" when unknown; never NULL. */
const char *vhu_request_name(uint32_t request);
/* Name of a back-end request, "?" when unknown; never NULL. */
const char *vhu_backend_request_name(uint32_t request);
/* Name of a protocol feature bit, NULL when unknown. */
const char *vhu_protocol_feature_name(unsigned bit);

#ifdef __cplusplus
}
#endif

#endif
