/* SPDX-License-Identifier: MIT */
/*
 * The device side of vhost-user. An application creates one vhu_backend per device, attaches
 * a connected socket, and calls vhu_backend_dispatch() whenever that socket is readable. The
 * library answers the front-end's requests, maps its memory, sets up the rings and tells the
 * device through vhu_device_ops when a queue may be served.
 *
 * Security model: nothing the front-end sends is trusted. Sizes, indices, addresses and
 * descriptor chains are checked before use; a front-end that breaks the rules gets an error
 * (its connection should then be detached) or, for ring contents, a broken ring. Nothing a
 * front-end does can block the calling thread: the socket and the peer's eventfds (kick, call,
 * err: eventfds only) are used without waiting, so one front-end never stalls another device
 * served on the same thread.
 *
 * Threads and lifetime:
 *  - The dispatch thread: vhu_backend_*() calls on one back-end are made by one thread at a
 *    time (the application may move the back-end to another thread with its own
 *    synchronisation). Every vhu_device_ops callback runs on that thread, inside
 *    vhu_backend_dispatch() (queue_stop also inside vhu_backend_detach() and _free()). A
 *    callback must not call vhu_backend_dispatch(), _detach() or _free() on its back-end.
 *  - Queue threads: a started queue is served by one thread, which may be another one. It uses
 *    only vhu_virtq_*(), vhu_net_rx(), vhu_blk_*() on its own queue, and
 *    vhu_backend_gpa_to_va() (the memory table only changes while every queue is stopped),
 *    from the return of queue_start until queue_stop, which must not return before that
 *    thread stopped touching the queue. No other vhu_backend_*() call is legal from a queue
 *    thread: give it what it needs (features, pointers) at queue_start.
 *  - Objects are independent: separate back-ends (and front-ends) share no state and may be
 *    used on different threads at the same time.
 *  - vhu_backend_new() copies ops (the caller's struct may go away); dev must stay valid until
 *    vhu_backend_free() returns.
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

/*
 * A front-end request as it arrived, for vhu_device_ops.process_msg. Only its framing was
 * checked (header version and flags, payload at most 4096 bytes): the hook checks whatever
 * else it uses, as the library's table does for the requests it handles.
 */
struct vhu_msg {
	uint32_t request;  /* enum vhu_request, or a number the library does not know */
	uint32_t flags;	   /* header flags: VHU_FLAG_NEED_REPLY ... */
	uint32_t size;	   /* payload bytes; for VHU_MSG_REPLY, set it to the reply's size */
	uint32_t max_size; /* room in payload for a reply */
	void *payload;	   /* the payload; a VHU_MSG_REPLY hook writes its reply here */
	int *fds;	   /* fds[0 .. nfds) came with it: set a slot to -1 to take (own) that fd */
	unsigned nfds;	   /* the rest are closed when the hook returns */
	int reply_fd;	   /* VHU_MSG_REPLY: an fd to send with the reply (the library takes and
			    * closes it), or -1 */
};

/* What a process_msg hook did with a request (or a negative errno). */
enum vhu_msg_result {
	VHU_MSG_NOT_HANDLED = 0, /* go on: the library handles the request (or refuses it) */
	VHU_MSG_HANDLED = 1,	 /* done; an ack 0 is sent when REPLY_ACK asks for one */
	VHU_MSG_REPLY = 2,	 /* done; msg->payload (msg->size bytes) is sent as the reply */
	VHU_MSG_REFUSED = 3,	 /* refused, the connection stays: a non-zero ack if one is asked */
};

/*
 * The device: what it offers and its callbacks. Set `size` to sizeof(struct vhu_device_ops):
 * a library newer than the caller's headers reads the fields past `size` as zero (every field
 * after log_level is optional and new ones are added at the end); an older library refuses
 * (-E2BIG) a larger struct whose extra fields are not zero.
 */
struct vhu_device_ops {
	uint32_t size;
	/* Virtio feature bits offered (bit numbers as in virtio_config.h, set with 1ULL << n).
	 * VHU_F_PROTOCOL_FEATURES is added by the library. VIRTIO_F_ACCESS_PLATFORM is passed on
	 * only with BACKEND_REQ in protocol_features: the library then translates IOVAs through
	 * its IOTLB in vhu_virtq_pop() (a miss: 0, the ring waits and is kicked by the update). */
	uint64_t features;
	/* Protocol features the device wants beyond the ones the library always offers
	 * (MQ, REPLY_ACK, RESET_DEVICE, CONFIGURE_MEM_SLOTS, STATUS): CONFIG (needs get_config),
	 * INFLIGHT_SHMFD, BACKEND_REQ (the library serves the channel, see
	 * vhu_backend_config_changed). */
	uint64_t protocol_features;
	/* Answer to GET_QUEUE_NUM. For net, queue pairs (as DPDK and QEMU count); else queues. */
	uint32_t queue_num;

	/* Reads len bytes of config space at off into buf. 0 or -errno. Optional. */
	int (*get_config)(void *dev, void *buf, uint32_t off, uint32_t len);
	/* Writes config space (SET_CONFIG). 0 or -errno. Optional. */
	int (*set_config)(void *dev, const void *buf, uint32_t off, uint32_t len, uint32_t flags);
	/* The queue may now be served (addresses, memory and kick set). It starts with kicks on
	 * (vhu_virtq_enable_notify), also when it is started again; buffers made available before
	 * the start are the device's to handle now. Returns 0, or -errno to refuse (no thread,
	 * no memory): the refusal is logged, the queue stays stopped (no queue_stop follows) and
	 * the request that would have started it fails (a non-zero REPLY_ACK when asked; the
	 * connection stays). The next SET_VRING_* or memory change for it tries again. */
	int (*queue_start)(void *dev, struct vhu_virtq *vq);
	/* The queue must no longer be touched; elements popped from it are dead. Must not return
	 * while another thread still uses the queue. */
	void (*queue_stop)(void *dev, struct vhu_virtq *vq);
	/* SET_VRING_ENABLE changed the queue's enabled state. Optional. */
	void (*queue_enable)(void *dev, struct vhu_virtq *vq, bool enabled);
	/* Features were set (SET_FEATURES). Optional. Not called when the only change is
	 * VHOST_F_LOG_ALL (a migration starting or ending: the library logs, the device goes on).
	 */
	void (*features_set)(void *dev, uint64_t features);
	/* The front-end wrote the device status. Optional. A status of 0 is passed on but is not
	 * a reset: QEMU writes 0 whenever it stops the device (7.2 before GET_VRING_BASE), also
	 * to pause a running guest. */
	void (*status_set)(void *dev, uint8_t status);
	/* RESET_DEVICE: put the device's own state (config space it lets the driver write,
	 * filters, modes) back to its initial values. Every queue has been stopped
	 * (queue_stop) and disabled first. Called on the dispatch thread. Optional.
	 * RESET_OWNER (deprecated) only disables the rings and does not call it. */
	void (*reset)(void *dev);

	vhu_log_fn log;
	void *log_opaque;
	int log_level;

	/*
	 * Optional. Sees every front-end request before the library does (libvhost-user's
	 * process_msg, DPDK's extern_ops pre_msg_handle): returns an enum vhu_msg_result, or
	 * -errno for a request that failed in a way that leaves the connection unusable
	 * (vhu_backend_dispatch() returns it). Meant for requests the library does not handle
	 * (a device may then offer their protocol features: RARP, NET_MTU, BACKEND_SEND_FD,
	 * CRYPTO_SESSION) and for watching the others (NOT_HANDLED). Handling
	 * a request the library implements takes it away: the library's state does not change.
	 * A request that always has a reply (GET_*) needs VHU_MSG_REPLY. A hook that takes an
	 * fd must handle the request (HANDLED, REPLY or REFUSED).
	 */
	int (*process_msg)(void *dev, struct vhu_msg *msg);
	/* Optional. The memory table changed (SET_MEM_TABLE, ADD_MEM_REG, REM_MEM_REG, also one
	 * that failed half way): pointers from vhu_backend_gpa_to_va() are stale, resolve them
	 * again. Called while every queue is stopped, before they are started again. */
	void (*mem_changed)(void *dev);
	/* VHU_DEVICE_F_* bits. */
	uint32_t flags;
};

/*
 * The library offers live migration's dirty logging (protocol feature LOG_SHMFD, feature bit
 * VHOST_F_LOG_ALL) for every device: it marks what vhu_virtq_push() reports written and the
 * rings' own writes (include/vhu/virtq.h, vhu_virtq_log_write). A device that writes
 * front-end memory in ways the library cannot see, and does not mark them, sets this flag so
 * that neither is offered: the front-end then refuses to migrate rather than lose data.
 */
#define VHU_DEVICE_F_NO_DIRTY_LOG (1u << 0)
/*
 * VIRTIO_F_ACCESS_PLATFORM: a ring forgets the IOTLB mappings a buffer was translated through
 * as soon as it has taken the buffer, so every buffer's pages are asked for again (a miss and
 * an update each). For front-ends that let the guest reuse an IOVA without an invalidation
 * reaching the back-end: QEMU 7.2 with a guest that flushes its vIOMMU lazily (intel_iommu=on)
 * forwards none of its domain-wide invalidations (docs/PROTOCOL.md, IOTLB). Correct for any
 * guest that maps a buffer before making it available and unmaps it only after it was used.
 */
#define VHU_DEVICE_F_IOTLB_PER_BUFFER (1u << 1)

/* nvqs: the most virtqueues this device has (indices 0 .. nvqs-1). ops is copied. -EINVAL
 * for a NULL argument, nvqs 0 or above 256, or an ops->size below the first release's
 * struct; -E2BIG for a larger struct with non-zero fields this library does not know. */
int vhu_backend_new(struct vhu_backend **be, const struct vhu_device_ops *ops, void *dev,
		    unsigned nvqs);
/* Detaches any connection and frees everything. NULL is fine. */
void vhu_backend_free(struct vhu_backend *be);

/* Takes ownership of a connected AF_UNIX stream socket and makes it O_NONBLOCK (on the file
 * description, shared with any copy of the fd). -EBUSY if one is attached; on any error the
 * fd is not taken. */
int vhu_backend_attach(struct vhu_backend *be, int fd);
/* Drops the connection: stops queues, unmaps memory, closes every fd, forgets negotiation.
 * The backend can then attach a new connection. */
void vhu_backend_detach(struct vhu_backend *be);
/* The attached socket, or -1. Poll it for input and call vhu_backend_dispatch(). */
int vhu_backend_fd(const struct vhu_backend *be);

/*
 * Call when vhu_backend_fd() is readable, level-triggered (poll, or epoll without EPOLLET). It
 * never blocks: it reads what the socket holds of the current message, which may arrive in
 * pieces over many calls (the partial message and its fds are kept in the backend), and
 * handles at most one complete message, sending its reply without waiting. Returns 0 (also
 * when the message is still incomplete: call again when the fd is readable), or -errno:
 * -ECONNRESET when the front-end closed the socket, -EPROTO for a malformed message (or a
 * kick/call/err fd that is not an eventfd: -EINVAL), -ENOBUFS when the front-end does not
 * read its replies (the socket send buffer is full), other codes for requests that failed in
 * a way that leaves the connection unusable. After an error the application should call
 * vhu_backend_detach(). Errors are logged. A well-formed request the front-end may not send
 * (its protocol feature not negotiated) or the back-end refuses is answered with a failure
 * reply when one is due and returns 0: the connection goes on.
 */
int vhu_backend_dispatch(struct vhu_backend *be);

uint64_t vhu_backend_features(const struct vhu_backend *be);
uint64_t vhu_backend_protocol_features(const struct vhu_backend *be);
/* Queue by index, or NULL when out of range. */
struct vhu_virtq *vhu_backend_virtq(struct vhu_backend *be, unsigned index);
unsigned vhu_backend_nvqs(const struct vhu_backend *be);
uint8_t vhu_backend_status(const struct vhu_backend *be);
/*
 * The back-end channel (protocol feature BACKEND_REQ, offered when the device puts it in
 * ops->protocol_features): the front-end gives a socket with SET_BACKEND_REQ_FD (an AF_UNIX
 * stream socket, or it is refused) and the library sends the device's requests on it.
 *
 * vhu_backend_config_changed() tells the front-end that the config space changed
 * (BACKEND_CONFIG_CHANGE_MSG): it re-reads it with GET_CONFIG and interrupts the driver.
 * Call it on the dispatch thread. Returns 0 when sent; -ENOPROTOOPT when CONFIG or
 * BACKEND_REQ was not negotiated (the front-end reads the new config at its next GET_CONFIG
 * only), -ENOTCONN with no channel, -EBUSY with 16 acks owed already, -ENOBUFS when the
 * front-end stopped reading the channel (the channel is dropped, the connection stays).
 *
 * Nothing waits for the front-end. With REPLY_ACK negotiated the request carries NEED_REPLY
 * and its ack is owed: QEMU sends GET_CONFIG on the main socket before it acks, so the
 * dispatch thread must go on serving. Acks are read whenever vhu_backend_dispatch() runs and
 * by vhu_backend_channel_dispatch(); an ack not there 3 s after its request, a message other
 * than the ack expected, or a channel the front-end closed, drops the channel with a logged
 * error (the connection stays; a non-zero ack is logged as a warning).
 *
 * vhu_backend_channel_fd(): the channel, or -1: readable when acks came.
 * vhu_backend_channel_dispatch(): reads the acks that came and checks the oldest one's
 * deadline, without waiting. Returns the number of acks still owed (0 without a channel), or
 * -errno when the channel was dropped (-ETIMEDOUT, -EPROTO, -ECONNRESET). While it returns
 * more than 0, call it again when the channel fd is readable, or within a second. Both may be
 * called from the dispatch thread only.
 */
int vhu_backend_config_changed(struct vhu_backend *be);
int vhu_backend_channel_fd(struct vhu_backend *be);
int vhu_backend_channel_dispatch(struct vhu_backend *be);

/* Guest-physical to host-virtual for the device's own use (one contiguous piece): returns
 * the pointer and shortens *len to what is contiguous, or NULL when unmapped. */
void *vhu_backend_gpa_to_va(struct vhu_backend *be, uint64_t gpa, uint64_t *len);

/*
 * Installs the SIGBUS guard for the whole process; 0, or -errno (-ENOTSUP when the handler did
 * not stick, as under a sanitizer that keeps SIGBUS for itself). Opt-in: the library never
 * takes a signal on its own. A front-end may shrink a file it sent (ftruncate of its memfd,
 * hugetlbfs or shm file after SET_MEM_TABLE, ADD_MEM_REG or SET_INFLIGHT_FD); the next
 * access to a page past the new end raises SIGBUS, which kills the process and every device
 * it serves. With the guard, a SIGBUS inside memory the library mapped for a back-end
 * replaces the lost pages with private zero pages, so the faulting access completes (reading
 * zeroes, or writing where nobody reads), and marks that back-end poisoned: its rings break
 * at the next vhu_virtq_pop/push/flush (pop returns -EIO) and vhu_backend_dispatch() fails,
 * so the application detaches it; other back-ends are untouched. Device code that copies
 * from or to guest memory itself is covered too. I/O the kernel does into guest memory
 * (readv, io_uring) gets -EFAULT instead of a signal.
 *
 * Rules: call it at start-up, from one thread (any), before the first connection is served;
 * later calls are no-ops. Back-ends may run on any threads: the registry behind the guard is
 * lock-free, and the handler only uses atomics, mmap and sigaction. A SIGBUS elsewhere goes
 * to the handler that was installed before (or kills the process as without the guard);
 * install other SIGBUS handlers before this call, not after. The handler runs on the
 * alternate signal stack when the thread has one (SA_ONSTACK). SIGBUS must not be blocked in
 * threads that touch guest memory.
 */
int vhu_sigbus_guard_install(void);

/*
 * Installs the eventfd write guard for the whole process, with signo (e.g. SIGRTMIN) as its
 * interrupt signal; 0, or -errno. Opt-in, like the SIGBUS guard. The library makes every call
 * and err eventfd it is given O_NONBLOCK, but the flag is shared with the front-end, which
 * can clear it and fill the counter: a plain write would then wait for it forever and take
 * the thread (every port of a single-threaded daemon) with it. With the guard, a write to a
 * front-end's eventfd still pending after about 20 ms is interrupted (a watchdog thread sends
 * signo to the writing thread; its handler does nothing and is installed without SA_RESTART)
 * and that ring breaks, so the application drops that connection alone.
 *
 * Rules: call it once at start-up, before serving; later calls are no-ops. It starts one
 * detached thread that blocks every signal. signo must be reserved for the guard: another
 * syscall of a thread that is being interrupted fails with EINTR only if it ran during the
 * same 20 ms, which a write that blocks excludes. Threads that write eventfds must not block
 * signo.
 */
int vhu_eventfd_guard_install(int signo);

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
