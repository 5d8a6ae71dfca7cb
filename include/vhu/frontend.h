/* SPDX-License-Identifier: MIT */
/*
 * The driver side of vhost ("virtio-user"): a plain process owns shared memory and the
 * rings, and drives a back-end through a transport, chosen from the path as DPDK's
 * virtio-user does: a Unix socket is vhost-user, /dev/vhost-net vhost-kernel (with a tap),
 * /dev/vhost-vdpa-N vhost-vdpa. The transports sit behind an ops table (src/fe_ops.h).
 *
 * Life of a front-end:
 *   vhu_frontend_open()     connect (or listen and accept; vhost-kernel, vhost-vdpa: open the
 *                           device), SET_OWNER, read what the back-end offers (features,
 *                           protocol features, queues, memory slots, device id)
 *   vhu_frontend_alloc()    carve buffers from the shared memory
 *   vhu_frontend_start()    SET_FEATURES, memory table, every ring, enable, DRIVER_OK
 *   vhu_drvq_add/kick/get   the data path, one thread per queue
 *   vhu_frontend_stop()     GET_VRING_BASE on every ring
 *   vhu_frontend_close()
 *
 * Security model: the back-end is not trusted either. Replies are checked for type, size and
 * fds, every wait is bounded, and used entries naming buffers that are not outstanding, or
 * lengths larger than the buffer, mark the queue broken.
 */
#ifndef VHU_FRONTEND_H
#define VHU_FRONTEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include <vhu/vhu.h>

#ifdef __cplusplus
extern "C" {
#endif

struct vhu_frontend;
struct vhu_drvq;

enum vhu_transport {
	VHU_TRANSPORT_AUTO = 0,	  /* from the path: a character device named vhost-vdpa-N is
				   * vhost-vdpa, any other character device vhost-kernel,
				   * anything else a vhost-user socket */
	VHU_TRANSPORT_USER = 1,	  /* vhost-user over a Unix socket */
	VHU_TRANSPORT_KERNEL = 2, /* vhost-kernel: /dev/vhost-net and a tap (net only) */
	VHU_TRANSPORT_VDPA = 3,	  /* vhost-vdpa: /dev/vhost-vdpa-N */
};

/*
 * Options of vhu_frontend_open(). The struct grows at its end from release to release; `size`
 * tells the library how much of it the caller was compiled with, so an older program keeps
 * working with a newer library (members past its size take their default, as if zero) and a
 * newer program with an older library (members the library does not know must be zero, else
 * -E2BIG), as the kernel's openat2()/clone3() structs do. Set size with
 * vhu_frontend_opts_init() or VHU_FRONTEND_OPTS_SIZE, never with a number.
 */
struct vhu_frontend_opts {
	size_t size; /* sizeof(struct vhu_frontend_opts) as the caller compiled it */
	enum vhu_transport transport;
	const char *path;	  /* socket path, /dev/vhost-net or /dev/vhost-vdpa-N */
	bool server;		  /* listen on path and wait for the back-end to connect */
	int timeout_ms;		  /* connect/accept and every reply; 0 means 5000 */
	size_t mem_size;	  /* shared memory; 0 means 64 MiB */
	const char *hugepage_dir; /* hugetlbfs mount for the shared memory; NULL: memfd */
	vhu_log_fn log;
	void *log_opaque;
	int log_level;
	/* vhost-kernel: the tap the queue pairs attach to, one queue of it per pair: attached
	 * when it exists (made by `ip tuntap add dev NAME mode tap vnet_hdr [multi_queue]`),
	 * created otherwise (and gone when the front-end closes). NULL: "vhu%d". */
	const char *iface;
	/* New members go here, at the end, each with zero as its default. */
};
#define VHU_FRONTEND_OPTS_SIZE sizeof(struct vhu_frontend_opts)

/* Zeroes *o (every default) and sets its size; inline, so the size is the caller's. */
static inline void vhu_frontend_opts_init(struct vhu_frontend_opts *o)
{
	*o = (struct vhu_frontend_opts){ .size = VHU_FRONTEND_OPTS_SIZE };
}

/* Connects (opens the device) and reads the back-end's offer. 0 or -errno (-ETIMEDOUT,
 * -ECONNREFUSED, -EPROTO; -ENOTSUP: a transport asked for that this build lacks; -EINVAL:
 * opts->size unset or smaller than any release's struct; -E2BIG: a member this library does
 * not know is set). Only the first opts->size bytes of *opts are read. */
int vhu_frontend_open(struct vhu_frontend **fe, const struct vhu_frontend_opts *opts);
/* Stops the device if it runs, drops the connection, frees memory and rings. NULL is fine. */
void vhu_frontend_close(struct vhu_frontend *fe);

/* What the back-end offered. */
uint64_t vhu_frontend_device_features(const struct vhu_frontend *fe);
uint64_t vhu_frontend_device_protocol_features(const struct vhu_frontend *fe);
/* GET_QUEUE_NUM (0 when MQ is not offered) and GET_MAX_MEM_SLOTS (0 when not offered). */
unsigned vhu_frontend_queue_num(const struct vhu_frontend *fe);
unsigned vhu_frontend_max_mem_slots(const struct vhu_frontend *fe);
/* Negotiated (after start). */
uint64_t vhu_frontend_features(const struct vhu_frontend *fe);
uint64_t vhu_frontend_protocol_features(const struct vhu_frontend *fe);
/* The transport in use (never VHU_TRANSPORT_AUTO). */
enum vhu_transport vhu_frontend_transport(const struct vhu_frontend *fe);
/* The virtio device id (1 net, 2 blk, ...), 0 when the transport cannot tell (vhost-user). */
uint32_t vhu_frontend_device_id(const struct vhu_frontend *fe);
/* GET_CONFIG: 0 or -errno (-ENOTSUP without the CONFIG protocol feature, or on vhost-kernel). */
int vhu_frontend_get_config(struct vhu_frontend *fe, uint32_t off, void *buf, uint32_t len);

/* Zeroed shared memory the back-end can reach; NULL when exhausted. Never freed before close. */
void *vhu_frontend_alloc(struct vhu_frontend *fe, size_t size, size_t align);

/* Grows as struct vhu_frontend_opts does: size first, later members zero by default. */
struct vhu_frontend_start_opts {
	size_t size;	     /* sizeof(struct vhu_frontend_start_opts) as the caller compiled it */
	uint64_t features;   /* wanted; masked with the offer; VERSION_1 is required */
	unsigned nvqs;	     /* virtqueues to set up (indices 0 .. nvqs-1) */
	unsigned queue_size; /* power of two for split; 0 means 256 */
	bool poll;	     /* no interrupts: the driver busy-polls used rings (no call eventfd) */
};
#define VHU_FRONTEND_START_OPTS_SIZE sizeof(struct vhu_frontend_start_opts)

/* Zeroes *o (every default) and sets its size; inline, so the size is the caller's. */
static inline void vhu_frontend_start_opts_init(struct vhu_frontend_start_opts *o)
{
	*o = (struct vhu_frontend_start_opts){ .size = VHU_FRONTEND_START_OPTS_SIZE };
}

/*
 * A vIOMMU for the front-end's own memory (VIRTIO_F_ACCESS_PLATFORM), set before start:
 * device addresses become IOVAs distinct from the front-end's addresses. VHU_FRONTEND_IOMMU
 * maps the whole memory with one IOTLB update ahead; VHU_FRONTEND_IOMMU_STRICT maps nothing
 * ahead: every page the back-end touches is a miss on the back-end channel, answered with an
 * update by vhu_frontend_channel_dispatch() (serve the channel!). 0, or -EINVAL once started.
 * Start then fails with -ENOTSUP unless the back-end offers ACCESS_PLATFORM and BACKEND_REQ.
 */
#define VHU_FRONTEND_IOMMU	  1
#define VHU_FRONTEND_IOMMU_STRICT 2
int vhu_frontend_set_iommu(struct vhu_frontend *fe, unsigned mode);
/* IOTLB invalidation of the pages of [p, p + len) (a buffer that completed). 0 or -errno. */
int vhu_frontend_iotlb_invalidate(struct vhu_frontend *fe, const void *p, size_t len);
/* IOTLB update (read-write) of the pages of [p, p + len), sent ahead of a miss (a buffer about
 * to be posted, as a driver's DMA map). 0 or -errno. */
int vhu_frontend_iotlb_map(struct vhu_frontend *fe, const void *p, size_t len);

/* Negotiates and starts the device. 0 or -errno (-EINVAL also for a size no release had,
 * -E2BIG for a member past this library's struct that is set). */
int vhu_frontend_start(struct vhu_frontend *fe, const struct vhu_frontend_start_opts *o);
/* GET_VRING_BASE on every ring; the queues must no longer be used. 0 or -errno. */
int vhu_frontend_stop(struct vhu_frontend *fe);
struct vhu_drvq *vhu_frontend_queue(struct vhu_frontend *fe, unsigned index);

/*
 * Reconnect (QEMU's chardev reconnect, DPDK virtio-user server mode): vhu_frontend_alive()
 * is false once the back-end hung up; vhu_frontend_reconnect() then waits up to timeout_ms
 * for it to come back (client mode: connects again to the same path; server mode: accepts
 * its new connection), negotiates again, and restarts every ring at the first buffer the
 * old back-end did not complete, so buffers in flight are processed again and none is lost.
 * The queues stay usable throughout: buffers added meanwhile are picked up after it.
 */
bool vhu_frontend_alive(struct vhu_frontend *fe);
int vhu_frontend_reconnect(struct vhu_frontend *fe, int timeout_ms);

/*
 * Dirty page logging, as a VMM runs a device during a live migration (vhost-user.rst
 * "Migration"). vhu_frontend_log_start() allocates the log the first time (a sealed memfd,
 * one bit per 4 KiB page of guest-physical address from 0 to the end of the shared memory),
 * then, on a started device, sends SET_LOG_BASE, SET_FEATURES with VHOST_F_LOG_ALL and
 * SET_VRING_ADDR with VHOST_VRING_F_LOG (log address: the used ring's, as QEMU) on every
 * ring, while the rings run, as QEMU does when a migration starts. Before start, the start
 * sequence does the same; a reconnect repeats it. -ENOTSUP when the back-end does not offer
 * both LOG_SHMFD and VHOST_F_LOG_ALL.
 * vhu_frontend_log_stop() clears VHOST_F_LOG_ALL and VHOST_VRING_F_LOG again (as at a
 * cancelled migration); the log and its bits are kept.
 * vhu_frontend_log_read() copies up to n words of the log into dst, clearing each with one
 * atomic exchange (a bit the back-end sets meanwhile is never lost): bit b of word w is the
 * page at guest-physical address (64 * w + b) * 4096. It returns the words copied; with dst
 * NULL, the log's size in words (0 before the first log_start), clearing nothing.
 */
int vhu_frontend_log_start(struct vhu_frontend *fe);
int vhu_frontend_log_stop(struct vhu_frontend *fe);
size_t vhu_frontend_log_read(struct vhu_frontend *fe, uint64_t *dst, size_t n);
/* Guest-physical address of [p, p + len) in the shared memory (what descriptors carry), or 0
 * when it is not inside it. */
uint64_t vhu_frontend_gpa(const struct vhu_frontend *fe, const void *p, size_t len);

/*
 * The back-end channel: when the back-end offers protocol feature BACKEND_REQ, open (and
 * every reconnect) gives it a channel (a socket pair, its end sent with SET_BACKEND_REQ_FD)
 * for requests of its own. The application serves it: poll vhu_frontend_channel_fd() (-1
 * without a channel) for input and call vhu_frontend_channel_dispatch(), from the thread that
 * makes the other vhu_frontend_*() calls. It never blocks: it serves the requests that
 * arrived (up to 32 a call) and acks each one when the back-end set NEED_REPLY (with
 * REPLY_ACK). BACKEND_CONFIG_CHANGE_MSG calls the config callback (which may read the new
 * config with vhu_frontend_get_config()) and is acked 0; an IOTLB miss is answered with an
 * update of its page after vhu_frontend_set_iommu() (refused without); every other request is
 * refused (a non-zero ack). A malformed or
 * unknown request drops the channel with a logged error; the connection goes on. Returns 0,
 * or -errno when the channel was dropped or the back-end closed it (-ECONNRESET).
 * vhost-vdpa has no channel but a config interrupt (VHOST_VDPA_SET_CONFIG_CALL): its eventfd is
 * what vhu_frontend_channel_fd() returns, and dispatch calls the config callback when it fired.
 */
typedef void (*vhu_frontend_config_cb)(struct vhu_frontend *fe, void *opaque);
void vhu_frontend_set_config_cb(struct vhu_frontend *fe, vhu_frontend_config_cb cb, void *opaque);
int vhu_frontend_channel_fd(const struct vhu_frontend *fe);
int vhu_frontend_channel_dispatch(struct vhu_frontend *fe);

/* ---- driver-side virtqueue ---- */

/*
 * Makes a buffer available: iov[0 .. out_num) readable by the device, then in_num writable
 * iovecs. Every iovec must lie in the front-end's shared memory. token comes back from
 * vhu_drvq_get(). Uses an indirect table when INDIRECT_DESC was negotiated and the buffer has
 * several parts. Returns 0, -ENOSPC (ring full), -EFAULT (outside shared memory), -EINVAL, or
 * -EIO (queue broken).
 */
int vhu_drvq_add(struct vhu_drvq *q, const struct iovec *iov, unsigned out_num, unsigned in_num,
		 void *token);
/* Notifies the device of new buffers unless it asked not to (flags or event index).
 * Returns true when it wrote the kick eventfd. */
bool vhu_drvq_kick(struct vhu_drvq *q);
/* Next used buffer: its token, and in *len the bytes the device wrote. NULL when none (or
 * when the queue is broken). With IN_ORDER, buffers the device completed as a batch are
 * returned one by one, all but the last with *len 0. */
void *vhu_drvq_get(struct vhu_drvq *q, uint32_t *len);
/*
 * Bursts, for polling loops (up to 32 at a time is what the layouts are tuned for):
 * vhu_drvq_add_burst() makes up to n one-part buffers available, iov[i] with tokens[i], all
 * device-writable or all device-readable, and publishes them with one store (split: the avail
 * index; packed: the first head's flags, written last). Returns the count added (fewer than n
 * when the ring filled up or iov[count] lies outside shared memory), -ENOSPC when the ring is
 * full, -EFAULT when iov[0] is outside shared memory, -EIO (queue broken). Kick once after.
 * vhu_drvq_get_burst() takes up to max used buffers (tokens[i], lens[i]), reading the
 * device's used index once (split); with IN_ORDER and no writable buffer outstanding it reads
 * only the last used entry of what the device published. Returns the count (0 when none or
 * broken).
 */
int vhu_drvq_add_burst(struct vhu_drvq *q, const struct iovec *iov, unsigned n, bool writable,
		       void *const *tokens);
unsigned vhu_drvq_get_burst(struct vhu_drvq *q, void **tokens, uint32_t *lens, unsigned max);
/* Asks for used-buffer notifications; returns true when buffers are already waiting. */
bool vhu_drvq_enable_cb(struct vhu_drvq *q);
void vhu_drvq_disable_cb(struct vhu_drvq *q);
/* Call eventfd to wait on (-1 in poll mode). */
int vhu_drvq_call_fd(const struct vhu_drvq *q);
unsigned vhu_drvq_num_free(const struct vhu_drvq *q);
unsigned vhu_drvq_size(const struct vhu_drvq *q);
bool vhu_drvq_broken(const struct vhu_drvq *q);
/*
 * For log checkers: calls fn(opaque, gpa, len, event) for the ring memory the device has been
 * seen to write since the previous call (or since the queue was set up). Entries (event
 * false), one range per 4 KiB page: split, the used ring's index and each used entry the
 * driver read; packed, each descriptor the driver found used. The device marks those before
 * it publishes them, so their marks are in the log by the time the driver read them.
 * Notification fields (event true), seen by their value changing: split, the used flags and
 * avail_event; packed, the device event suppression area. The device may have written one
 * any time since the previous call and marks it after the write, so a checker looks for its
 * mark in the log reads around this call. A checker calls this once right after logging is
 * on (to forget what came before), then after each batch of completions it checks.
 */
void vhu_drvq_device_writes(struct vhu_drvq *q,
			    void (*fn)(void *opaque, uint64_t gpa, uint64_t len, bool event),
			    void *opaque);

#ifdef __cplusplus
}
#endif

#endif
