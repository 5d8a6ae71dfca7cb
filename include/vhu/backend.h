/* SPDX-License-Identifier: MIT */
/*
 * The device side of vhost-user. An application creates one vhu_backend per device, attaches
 * a connected socket, and calls vhu_backend_dispatch() whenever that socket is readable. The
 * library answers the front-end's requests, maps its memory, sets up the rings and tells the
 * device through vhu_device_ops when a queue may be served.
 *
 * Security model: nothing the front-end sends is trusted. Sizes, indices, addresses and
 * descriptor chains are checked before use; a front-end that breaks the rules gets an error
 * (its connection should then be detached) or, for ring contents, a broken ring.
 */
#ifndef VHU_BACKEND_H
#define VHU_BACKEND_H

#include <stdbool.h>
#include <stdint.h>

#include <vhu/vhu.h>

#ifdef __cplusplus
extern "C" {
#endif

struct vhu_backend;
struct vhu_virtq;

struct vhu_device_ops {
	/* Virtio feature bits offered (bit numbers as in virtio_config.h, set with 1ULL << n).
	 * VHU_F_PROTOCOL_FEATURES is added by the library. */
	uint64_t features;
	/* Protocol features the device wants beyond the ones the library always offers
	 * (MQ, REPLY_ACK, RESET_DEVICE, CONFIGURE_MEM_SLOTS, STATUS). CONFIG needs get_config. */
	uint64_t protocol_features;
	/* Answer to GET_QUEUE_NUM. For net, queue pairs (as DPDK and QEMU count); else queues. */
	uint32_t queue_num;

	/* Reads len bytes of config space at off into buf. 0 or -errno. Optional. */
	int (*get_config)(void *dev, void *buf, uint32_t off, uint32_t len);
	/* Writes config space (SET_CONFIG). 0 or -errno. Optional. */
	int (*set_config)(void *dev, const void *buf, uint32_t off, uint32_t len, uint32_t flags);
	/* The queue may now be served (addresses, memory and kick set). It starts with kicks on
	 * (vhu_virtq_enable_notify), also when it is started again; buffers made available before
	 * the start are the device's to handle now. Called on the thread that calls
	 * vhu_backend_dispatch(). */
	void (*queue_start)(void *dev, struct vhu_virtq *vq);
	/* The queue must no longer be touched; elements popped from it are dead. Must not return
	 * while another thread still uses the queue. */
	void (*queue_stop)(void *dev, struct vhu_virtq *vq);
	/* SET_VRING_ENABLE changed the queue's enabled state. Optional. */
	void (*queue_enable)(void *dev, struct vhu_virtq *vq, bool enabled);
	/* Features were set (SET_FEATURES). Optional. */
	void (*features_set)(void *dev, uint64_t features);
	/* The front-end wrote the device status. Optional. */
	void (*status_set)(void *dev, uint8_t status);

	vhu_log_fn log;
	void *log_opaque;
	int log_level;
};

/* nvqs: the most virtqueues this device has (indices 0 .. nvqs-1). */
int vhu_backend_new(struct vhu_backend **be, const struct vhu_device_ops *ops, void *dev,
		    unsigned nvqs);
/* Detaches any connection and frees everything. NULL is fine. */
void vhu_backend_free(struct vhu_backend *be);

/* Takes ownership of a connected AF_UNIX stream socket. -EBUSY if one is attached. */
int vhu_backend_attach(struct vhu_backend *be, int fd);
/* Drops the connection: stops queues, unmaps memory, closes every fd, forgets negotiation.
 * The backend can then attach a new connection. */
void vhu_backend_detach(struct vhu_backend *be);
/* The attached socket, or -1. Poll it for input and call vhu_backend_dispatch(). */
int vhu_backend_fd(const struct vhu_backend *be);

/*
 * Reads and handles one message. Returns 0, or -errno: -ECONNRESET when the front-end closed
 * the socket, -EPROTO for a malformed message, other codes for requests that failed in a way
 * that leaves the connection unusable. After an error the application should call
 * vhu_backend_detach(). Errors are logged.
 */
int vhu_backend_dispatch(struct vhu_backend *be);

uint64_t vhu_backend_features(const struct vhu_backend *be);
uint64_t vhu_backend_protocol_features(const struct vhu_backend *be);
/* Queue by index, or NULL when out of range. */
struct vhu_virtq *vhu_backend_virtq(struct vhu_backend *be, unsigned index);
unsigned vhu_backend_nvqs(const struct vhu_backend *be);
uint8_t vhu_backend_status(const struct vhu_backend *be);
/* Guest-physical to host-virtual for the device's own use (one contiguous piece): returns
 * the pointer and shortens *len to what is contiguous, or NULL when unmapped. */
void *vhu_backend_gpa_to_va(struct vhu_backend *be, uint64_t gpa, uint64_t *len);

/* Socket helpers for applications (both ends). Each returns an fd (CLOEXEC) or -errno. */
/*
 * Listens on path. The socket file gets mode 0600 (vhu_listen) or mode (vhu_listen_mode, 0 to
 * 0777), set before the socket listens, whatever the umask. A socket file left by a process
 * that died (nobody accepts on it) is replaced; if something still listens on path, the call
 * fails with -EADDRINUSE and leaves it alone (-EEXIST for a file that is not a socket).
 */
int vhu_listen(const char *path);
int vhu_listen_mode(const char *path, unsigned mode);
int vhu_accept(int listen_fd);
/* Connects to path, retrying every 100 ms for up to timeout_ms while it does not exist yet. */
int vhu_connect(const char *path, int timeout_ms);

#ifdef __cplusplus
}
#endif

#endif
