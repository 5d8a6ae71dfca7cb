/* SPDX-License-Identifier: MIT */
/*
 * The front-end's transport verbs, in the shape of QEMU's VhostOps and DPDK's
 * virtio_user_backend_ops. frontend.c speaks only through this table and never asks which
 * kind it drives; one file per kind implements it:
 *   fe_user.c    vhost-user: requests over a Unix socket (the only kind with protocol
 *                features, server mode, reconnect, inflight, log, back-end channel, IOTLB_MSG)
 *   fe_kernel.c  vhost-kernel: /dev/vhost-net, one fd per queue pair, a tap per pair
 *   fe_vdpa.c    vhost-vdpa: /dev/vhost-vdpa-N, memory by IOTLB updates, status handshake
 * Every verb returns 0 or -errno. A verb a kind does not have is NULL: frontend.c calls every
 * verb through FE_OP(), which answers -ENOTSUP for it. A kind that has a verb but not the
 * feature that enables it (vhost-user SET_STATUS without the STATUS protocol feature)
 * decides itself what that means, as before.
 */
#ifndef VHU_FE_OPS_H
#define VHU_FE_OPS_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "fe_mem.h"
#include "log.h"
#include "vhu/proto.h"

struct fe_conn; /* a transport's connection state */

/* What open gets: the application's options, as they concern the transport. */
struct fe_open_args {
	const char *path;  /* socket, /dev/vhost-net, /dev/vhost-vdpa-N */
	bool server;	   /* vhost-user: listen on path */
	int timeout_ms;	   /* vhost-user: connect/accept and every reply */
	const char *iface; /* vhost-kernel: the tap */
	const struct logger *lg;
};

struct fe_ops {
	const char *name;
	/* Descriptors and ring addresses carry the front-end's virtual addresses (IOVA = VA,
	 * vhost-vdpa) instead of guest-physical ones (a memory table). */
	bool dma_va;
	/* Connects (or waits for the back-end in server mode) / opens the device. */
	int (*open)(struct fe_conn **c, const struct fe_open_args *a);
	void (*close)(struct fe_conn *c);
	/* Drops the connection and makes a new one (client: connect again; server: accept the
	 * back-end's new connection), within timeout_ms. Negotiated state is forgotten. */
	int (*reconnect)(struct fe_conn *c, int timeout_ms);
	/* false when the back-end hung up. */
	bool (*alive)(struct fe_conn *c);
	int (*set_owner)(struct fe_conn *c);
	/* The virtio device id (VIRTIO 1.x "Device Types"; 0: the transport cannot tell). */
	int (*get_device_id)(struct fe_conn *c, uint32_t *id);
	/* Virtio features. A transport may add features it emulates (vhost-kernel: MQ, by one
	 * device fd per queue pair) and keeps them from the device. */
	int (*get_features)(struct fe_conn *c, uint64_t *f);
	int (*set_features)(struct fe_conn *c, uint64_t f);
	/* vhost-user protocol features; transports without them report 0. */
	int (*get_protocol_features)(struct fe_conn *c, uint64_t *f);
	int (*set_protocol_features)(struct fe_conn *c, uint64_t f);
	/* vhost backend features (VHOST_GET/SET_BACKEND_FEATURES: IOTLB_MSG_V2, IOTLB_BATCH,
	 * SUSPEND); the transport picks what it uses and says it in *f. */
	int (*negotiate_backend_features)(struct fe_conn *c, uint64_t *f);
	/* Queues (net: pairs) the device can run; 0 when it cannot tell. */
	int (*get_queue_num)(struct fe_conn *c, uint64_t *n);
	int (*get_max_mem_slots)(struct fe_conn *c, uint64_t *n);
	/* The front-end's memory: a memory table (vhost-user, vhost-kernel), or IOTLB updates
	 * of the whole area (vhost-vdpa, address space 0). */
	int (*set_mem_table)(struct fe_conn *c, const struct fe_mem *m);
	/* vhost-vdpa: the device's usable IOVA range [*first, *last]. */
	int (*get_iova_range)(struct fe_conn *c, uint64_t *first, uint64_t *last);
	/* The largest ring the device takes (VHOST_VDPA_GET_VRING_NUM). */
	int (*get_vring_max_num)(struct fe_conn *c, unsigned *num);
	/* Config space size (VHOST_VDPA_GET_CONFIG_SIZE). */
	int (*get_config_size)(struct fe_conn *c, uint32_t *size);
	int (*set_vring_num)(struct fe_conn *c, unsigned idx, unsigned num);
	int (*set_vring_base)(struct fe_conn *c, unsigned idx, uint32_t base);
	/* Stops the ring (vhost-kernel: its tap detached first) and reads where it stopped. */
	int (*get_vring_base)(struct fe_conn *c, unsigned idx, uint32_t *base);
	int (*set_vring_addr)(struct fe_conn *c, const struct vhu_vring_addr *a);
	/* fd -1 means VRING_NOFD (the back-end polls / no interrupts). */
	int (*set_vring_kick)(struct fe_conn *c, unsigned idx, int fd);
	int (*set_vring_call)(struct fe_conn *c, unsigned idx, int fd);
	/* Called for every ring after the rings are set up (vhost-user: only meaningful with
	 * VHOST_USER_F_PROTOCOL_FEATURES; vhost-kernel: the tap attached, net_set_backend;
	 * vhost-vdpa: VHOST_VDPA_SET_VRING_ENABLE). */
	int (*set_vring_enable)(struct fe_conn *c, unsigned idx, bool enable);
	/* vhost-kernel: VHOST_NET_SET_BACKEND, the pair's tap fd on ring idx (-1: detach). */
	int (*net_set_backend)(struct fe_conn *c, unsigned idx, int fd);
	int (*get_config)(struct fe_conn *c, uint32_t off, void *buf, uint32_t len);
	int (*set_config)(struct fe_conn *c, uint32_t off, const void *buf, uint32_t len);
	/* The config change interrupt (VHOST_VDPA_SET_CONFIG_CALL; fd -1: none). */
	int (*set_config_call)(struct fe_conn *c, int fd);
	/* INFLIGHT_SHMFD: the back-end's buffer for num_queues rings of queue_size (fd taken by
	 * the caller), and handing it back (after a restart too). */
	int (*get_inflight_fd)(struct fe_conn *c, unsigned num_queues, unsigned queue_size,
			       struct vhu_inflight *out, int *fd);
	int (*set_inflight_fd)(struct fe_conn *c, const struct vhu_inflight *in, int fd);
	/* LOG_SHMFD: the dirty log, size bytes of fd from offset (fd stays the caller's). */
	int (*set_log_base)(struct fe_conn *c, int fd, uint64_t size, uint64_t offset);
	/* The device status; the transport does the steps its kind needs (vhost-vdpa:
	 * ACKNOWLEDGE, DRIVER, FEATURES_OK around set_features). 0 resets the device. */
	int (*set_status)(struct fe_conn *c, uint8_t status);
	int (*get_status)(struct fe_conn *c, uint8_t *status);
	/* Resets the device outside a status write (vhost-vdpa: status 0; vhost-kernel:
	 * VHOST_RESET_OWNER). */
	int (*reset)(struct fe_conn *c);
	/* Stops the rings without a reset, before their bases are read (VHOST_VDPA_SUSPEND). */
	int (*suspend)(struct fe_conn *c);
	/* BACKEND_REQ: hands the back-end its end of the back-end channel (fd not taken). */
	int (*set_backend_req_fd)(struct fe_conn *c, int fd);
	/* IOTLB_MSG (update or invalidate); the back-end's status reply checked. */
	int (*iotlb_msg)(struct fe_conn *c, const struct vhu_iotlb_msg *m);
};

/* Calls verb V of ops O on connection C, or answers -ENOTSUP when the kind has no V. */
#define FE_OP(O, C, V, ...) ((O)->V ? (O)->V((C), ##__VA_ARGS__) : -ENOTSUP)

extern const struct fe_ops fe_user_ops;
extern const struct fe_ops fe_kernel_ops;
extern const struct fe_ops fe_vdpa_ops;

#endif
