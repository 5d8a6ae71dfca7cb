/* SPDX-License-Identifier: MIT */
/*
 * The front-end's transport verbs, in the shape of QEMU's VhostOps and DPDK's
 * virtio_user_backend_ops. frontend.c speaks only through this table, so vhost-kernel and
 * vhost-vdpa can be added as files of their own. Every verb returns 0 or -errno.
 */
#ifndef VHU_FE_OPS_H
#define VHU_FE_OPS_H

#include <stdbool.h>
#include <stdint.h>

#include "fe_mem.h"
#include "log.h"
#include "vhu/proto.h"

struct fe_conn; /* a transport's connection state */

struct fe_ops {
	const char *name;
	/* Connects (or waits for the back-end in server mode). */
	int (*open)(struct fe_conn **c, const char *path, bool server, int timeout_ms,
		    const struct logger *lg);
	void (*close)(struct fe_conn *c);
	/* Drops the connection and makes a new one (client: connect again; server: accept the
	 * back-end's new connection), within timeout_ms. Negotiated state is forgotten. */
	int (*reconnect)(struct fe_conn *c, int timeout_ms);
	/* false when the back-end hung up. */
	bool (*alive)(struct fe_conn *c);
	int (*set_owner)(struct fe_conn *c);
	int (*get_features)(struct fe_conn *c, uint64_t *f);
	int (*set_features)(struct fe_conn *c, uint64_t f);
	/* Protocol features; transports without them report 0. */
	int (*get_protocol_features)(struct fe_conn *c, uint64_t *f);
	int (*set_protocol_features)(struct fe_conn *c, uint64_t f);
	int (*get_queue_num)(struct fe_conn *c, uint64_t *n);
	int (*get_max_mem_slots)(struct fe_conn *c, uint64_t *n);
	int (*set_mem_table)(struct fe_conn *c, const struct fe_mem *m);
	int (*set_vring_num)(struct fe_conn *c, unsigned idx, unsigned num);
	int (*set_vring_base)(struct fe_conn *c, unsigned idx, uint32_t base);
	int (*get_vring_base)(struct fe_conn *c, unsigned idx, uint32_t *base);
	int (*set_vring_addr)(struct fe_conn *c, const struct vhu_vring_addr *a);
	/* fd -1 means VRING_NOFD (the back-end polls / no interrupts). */
	int (*set_vring_kick)(struct fe_conn *c, unsigned idx, int fd);
	int (*set_vring_call)(struct fe_conn *c, unsigned idx, int fd);
	int (*set_vring_enable)(struct fe_conn *c, unsigned idx, bool enable);
	int (*get_config)(struct fe_conn *c, uint32_t off, void *buf, uint32_t len);
	int (*set_config)(struct fe_conn *c, uint32_t off, const void *buf, uint32_t len);
	/* INFLIGHT_SHMFD: the back-end's buffer for num_queues rings of queue_size (fd taken by
	 * the caller), and handing it back (after a restart too). */
	int (*get_inflight_fd)(struct fe_conn *c, unsigned num_queues, unsigned queue_size,
			       struct vhu_inflight *out, int *fd);
	int (*set_inflight_fd)(struct fe_conn *c, const struct vhu_inflight *in, int fd);
	/* LOG_SHMFD: the dirty log, size bytes of fd from offset (fd stays the caller's). */
	int (*set_log_base)(struct fe_conn *c, int fd, uint64_t size, uint64_t offset);
	int (*set_status)(struct fe_conn *c, uint8_t status);
	/* BACKEND_REQ: hands the back-end its end of the back-end channel (fd not taken). */
	int (*set_backend_req_fd)(struct fe_conn *c, int fd);
	int (*get_status)(struct fe_conn *c, uint8_t *status);
	/* IOTLB_MSG (update or invalidate); the back-end's status reply checked. */
	int (*iotlb_msg)(struct fe_conn *c, const struct vhu_iotlb_msg *m);
};

extern const struct fe_ops fe_user_ops;

#endif
