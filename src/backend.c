/* SPDX-License-Identifier: MIT */
/*
 * The back-end core: connection state, ring start/stop, and one handler per front-end request.
 * The handler table at the end of the file is the index of the protocol as vhu implements it.
 *
 * Every message is checked against its msg.c rule (size, fds, gate) before a handler runs, so
 * handlers see well-formed payloads; they still check every index and address they use.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "breq.h"
#include "dirty.h"
#include "inflight.h"
#include "iotlb.h"
#include "log.h"
#include "mem.h"
#include "msg.h"
#include "virtq_ctl.h"
#include "sock.h"
#include "stall.h"
#include "util.h"
#include "vhu/backend.h"

/* Most virtqueues one device may have. */
#define MAX_VQS 256

/* Protocol features the library implements for any device. */
#define BASE_PROTOCOL_FEATURES                                                                     \
	(bit64(VHU_PROTO_F_MQ) | bit64(VHU_PROTO_F_REPLY_ACK) | bit64(VHU_PROTO_F_RESET_DEVICE) |  \
	 bit64(VHU_PROTO_F_CONFIGURE_MEM_SLOTS) | bit64(VHU_PROTO_F_STATUS))

/* Protocol features a device may add because the library can carry them. */
#define DEVICE_PROTOCOL_FEATURES                                                                   \
	(bit64(VHU_PROTO_F_CONFIG) | bit64(VHU_PROTO_F_INFLIGHT_SHMFD) |                           \
	 bit64(VHU_PROTO_F_BACKEND_REQ))

/* Protocol features whose requests only a device's process_msg hook can serve: the library
 * does not implement them, and they change nothing it does. */
#define HOOK_PROTOCOL_FEATURES                                                                     \
	(bit64(VHU_PROTO_F_RARP) | bit64(VHU_PROTO_F_NET_MTU) |                                    \
	 bit64(VHU_PROTO_F_BACKEND_SEND_FD) | bit64(VHU_PROTO_F_CRYPTO_SESSION))

/* ops->size of the first release: every field up to log_level. */
#define OPS_SIZE_0_1 (offsetof(struct vhu_device_ops, log_level) + sizeof(int))

struct vhu_backend {
	const struct vhu_device_ops *ops; /* &ops_copy */
	struct vhu_device_ops ops_copy;
	void *dev;
	int fd;
	uint64_t features;
	bool features_set; /* SET_FEATURES came since the connection or the last reset */
	uint64_t protocol_features;
	uint8_t status;
	bool owner;
	unsigned nvqs;
	struct logger lg;
	struct mem mem;
	struct vhu_virtq *vqs;
	/* INFLIGHT_SHMFD: the buffer the front-end keeps for us across restarts */
	struct {
		uint8_t *addr;
		uint64_t size;
		size_t region; /* bytes per queue */
		unsigned nqueues, queue_size;
		int guard; /* SIGBUS guard slot, or -1 */
	} inflight;
	/* LOG_SHMFD: the dirty log (SET_LOG_BASE), and SET_LOG_FD's eventfd or -1. Both are
	 * replaced only while every ring is stopped: the rings' threads use them. */
	struct dirty_log dlog;
	int log_fd;
	int reply_fd; /* an fd to send with the reply being built (GET_INFLIGHT_FD) */
	/* BACKEND_REQ: our requests to the front-end and the acks it owes (breq.h) */
	struct breq chan;
	/* ACCESS_PLATFORM: the IOTLB (iotlb.h), and the miss requests it sends on chan */
	struct iotlb iotlb;
	/* The message being assembled: the socket is non-blocking and a message may arrive in
	 * pieces over many dispatch calls. rx owns the fds received so far. */
	struct msg rx;
	size_t rx_got; /* bytes of rx received (header, then payload); 0 between messages */
};

/* Handler results besides -errno (fatal: the connection should be dropped). */
enum {
	H_OK = 0,    /* done; ack 0 if one is wanted */
	H_REPLY = 1, /* the handler filled m as the reply */
	H_FAIL = 2,  /* request refused but the connection stays: ack non-zero if wanted */
};

/* ---- rings: start and stop ---- */

/* The device may opt out of dirty logging (VHU_DEVICE_F_NO_DIRTY_LOG): a device that writes
 * front-end memory where the library cannot see it. */
static bool logs(const struct vhu_backend *be)
{
	return !(be->ops->flags & VHU_DEVICE_F_NO_DIRTY_LOG);
}

/* "VIRTIO_F_ACCESS_PLATFORM" (IOMMU_PLATFORM): PROTOCOL-NOTES "IOMMU_PLATFORM requires
 * BACKEND_REQ + REPLY_ACK" (QEMU refuses the device otherwise): offered only when the device
 * also wants the channel (REPLY_ACK the library always offers). */
static uint64_t offered_features(const struct vhu_backend *be)
{
	uint64_t f = be->ops->features;

	if (!(be->ops->protocol_features & bit64(VHU_PROTO_F_BACKEND_REQ)))
		f &= ~bit64(VIRTIO_F_ACCESS_PLATFORM);
	return f | bit64(VHU_F_PROTOCOL_FEATURES) | (logs(be) ? bit64(VHU_F_LOG_ALL) : 0);
}

/* Sets what a ring logs from the negotiated state, also while it runs: its thread reads the
 * bits once per write. Its log pointers were set when it started (the log and log fd are
 * replaced only while rings are paused). */
static void vq_log_update(struct vhu_backend *be, struct vhu_virtq *vq)
{
	unsigned bits = 0;

	if (has_bit(be->features, VHU_F_LOG_ALL) && be->dlog.map) {
		bits = RING_LOG_DATA;
		if (vq->addr.flags & (1u << VHU_VRING_F_LOG))
			bits |= RING_LOG_RING;
	}
	__atomic_store_n(&vq->logging, (uint8_t)bits, __ATOMIC_RELEASE);
}

static uint64_t offered_protocol_features(const struct vhu_backend *be)
{
	uint64_t dev =
		DEVICE_PROTOCOL_FEATURES | (be->ops->process_msg ? HOOK_PROTOCOL_FEATURES : 0);
	uint64_t f = BASE_PROTOCOL_FEATURES | (be->ops->protocol_features & dev) |
		     (logs(be) ? bit64(VHU_PROTO_F_LOG_SHMFD) : 0);

	if (!be->ops->get_config)
		f &= ~bit64(VHU_PROTO_F_CONFIG);
	return f;
}

static void vq_stop(struct vhu_backend *be, struct vhu_virtq *vq)
{
	if (!vq->started)
		return;
	if (be->ops->queue_stop)
		be->ops->queue_stop(be->dev, vq);
	virtq_save(vq);
	vq->started = false;
	vq->tlb_miss = false; /* a stopped ring waits for nothing */
}

/* Starts the ring once it has everything it needs: size, addresses, kick, memory. */
static int vq_try_start(struct vhu_backend *be, struct vhu_virtq *vq)
{
	bool packed = has_bit(be->features, VIRTIO_F_RING_PACKED), resume = vq->resume;
	int ret;

	if (vq->started || !vq->num_set || !vq->addr_set || !vq->kick_set || !be->mem.n)
		return 0;
	if (!packed && !is_pow2(vq->num)) {
		log_err(&be->lg, "vring %u: split ring size %u is not a power of 2", vq->index,
			vq->num);
		return -EINVAL;
	}
	vq->inf = NULL;
	if (be->inflight.addr && vq->index < be->inflight.nqueues) {
		if (vq->num != be->inflight.queue_size)
			log_warn(&be->lg,
				 "vring %u: size %u, inflight buffer made for %u: not tracked",
				 vq->index, vq->num, be->inflight.queue_size);
		else
			vq->inf = (void *)(be->inflight.addr + vq->index * be->inflight.region);
	}
	vq->iotlb = has_bit(be->features, VIRTIO_F_ACCESS_PLATFORM) ? &be->iotlb : NULL;
	ret = virtq_map(vq, packed, has_bit(be->features, VIRTIO_RING_F_EVENT_IDX),
			has_bit(be->features, VIRTIO_F_IN_ORDER));
	if (ret == -EAGAIN) {
		/* An IOTLB miss on a ring address (sent): started when the update comes. */
		log_debug(&be->lg, "vring %u: waits for the IOTLB to map its addresses", vq->index);
		return 0;
	}
	if (ret)
		return ret;
	vq->log_warned = false;
	vq->dlog = &be->dlog;
	vq->log_fd = be->log_fd;
	vq_log_update(be, vq);
	vq->resume = false;
	vq->started = true;
	/* A ring starts with kicks on: its notification fields (split used->flags, packed device
	 * event area) are in the front-end's memory and may still say "no kicks" from a previous
	 * run of this ring (QEMU 7.2 restarts rings with SET_VRING_CALL and SET_FEATURES). */
	vhu_virtq_enable_notify(vq);
	log_debug(&be->lg, "vring %u started (%s, size %u, avail %u used %u)", vq->index,
		  packed ? "packed" : "split", vq->num, vq->last_avail_idx, vq->used_idx);
	ret = be->ops->queue_start ? be->ops->queue_start(be->dev, vq) : 0;
	if (ret < 0) {
		/* The device cannot serve it now: stopped as if never started (nothing was
		 * popped), to be tried again at the next change. */
		log_err(&be->lg, "vring %u: the device refused to start it: %s", vq->index,
			strerror(-ret));
		vq->started = false;
		vq->resume = resume;
		return H_FAIL;
	}
	return 0;
}

static void stop_all(struct vhu_backend *be, bool *was)
{
	for (unsigned i = 0; i < be->nvqs; i++) {
		was[i] = be->vqs[i].started;
		vq_stop(be, &be->vqs[i]);
	}
}

/* After a memory table change: restarts the rings stop_all() paused, and starts every ring that
 * has all it needs, such as one set up before the first SET_MEM_TABLE, which had been waiting
 * for memory. A ring that no longer maps is logged and left stopped. */
static void restart_all(struct vhu_backend *be, const bool *was)
{
	for (unsigned i = 0; i < be->nvqs; i++) {
		vq_try_start(be, &be->vqs[i]);
		if (was[i] && !be->vqs[i].started)
			log_warn(&be->lg, "vring %u stays stopped after the memory change", i);
	}
}

static void reset_rings(struct vhu_backend *be)
{
	for (unsigned i = 0; i < be->nvqs; i++) {
		vq_stop(be, &be->vqs[i]);
		virtq_reset(&be->vqs[i]);
	}
}

/* Ring named by a vring state or address payload; NULL (logged) when out of range. */
static struct vhu_virtq *vq_get(struct vhu_backend *be, uint32_t index, const char *req)
{
	if (index >= be->nvqs) {
		log_err(&be->lg, "%s: vring index %u out of range (device has %u)", req, index,
			be->nvqs);
		return NULL;
	}
	return &be->vqs[index];
}

/* ---- handlers: features and ownership ---- */

static int h_get_features(struct vhu_backend *be, struct msg *m)
{
	m->p.u64 = offered_features(be);
	m->hdr.size = sizeof(uint64_t);
	return H_REPLY;
}

static int h_set_features(struct vhu_backend *be, struct msg *m)
{
	uint64_t offered = offered_features(be);
	uint64_t f = m->p.u64, old = be->features;
	bool log_was = has_bit(be->features, VHU_F_LOG_ALL), was_set = be->features_set;

	if (f & ~offered) {
		log_err(&be->lg, "SET_FEATURES 0x%llx has bits not offered (0x%llx)",
			(unsigned long long)f, (unsigned long long)(f & ~offered));
		return -EINVAL;
	}
	for (unsigned i = 0; i < be->nvqs; i++) {
		bool packed = has_bit(f, VIRTIO_F_RING_PACKED);
		if (be->vqs[i].started && packed != be->vqs[i].packed) {
			log_err(&be->lg, "SET_FEATURES changes the ring layout of live vring %u",
				i);
			return -EBUSY;
		}
	}
	be->features = f;
	be->features_set = true;
	/* "Migration": QEMU turns LOG_ALL on and off on running rings. The rings go on; only what
	 * they log changes. */
	if (has_bit(f, VHU_F_LOG_ALL) != log_was) {
		if (!has_bit(f, VHU_F_LOG_ALL))
			log_info(&be->lg, "LOG_ALL off: dirty logging stopped");
		else if (be->dlog.map)
			log_info(&be->lg, "LOG_ALL on: dirty logging started");
		else
			log_warn(&be->lg,
				 "LOG_ALL on but no log yet (SET_LOG_BASE): writes are not "
				 "logged until one arrives");
		for (unsigned i = 0; i < be->nvqs; i++)
			vq_log_update(be, &be->vqs[i]);
	}
	/* "Ring states": without VHOST_USER_F_PROTOCOL_FEATURES, all rings are enabled now. */
	if (!has_bit(f, VHU_F_PROTOCOL_FEATURES))
		for (unsigned i = 0; i < be->nvqs; i++) {
			if (be->vqs[i].enabled)
				continue;
			be->vqs[i].enabled = true;
			if (be->ops->queue_enable)
				be->ops->queue_enable(be->dev, &be->vqs[i], true);
		}
	/* LOG_ALL alone is the library's business: the device is not told (it would reset
	 * whatever its features decide, mid-migration). */
	if (be->ops->features_set && !(was_set && (old ^ f) == bit64(VHU_F_LOG_ALL)))
		be->ops->features_set(be->dev, f);
	return H_OK;
}

static int h_get_protocol_features(struct vhu_backend *be, struct msg *m)
{
	m->p.u64 = offered_protocol_features(be);
	m->hdr.size = sizeof(uint64_t);
	return H_REPLY;
}

static int h_set_protocol_features(struct vhu_backend *be, struct msg *m)
{
	uint64_t offered = offered_protocol_features(be);

	if (m->p.u64 & ~offered) {
		log_err(&be->lg, "SET_PROTOCOL_FEATURES 0x%llx has bits not offered (0x%llx)",
			(unsigned long long)m->p.u64, (unsigned long long)offered);
		return -EINVAL;
	}
	be->protocol_features = m->p.u64;
	return H_OK;
}

static int h_set_owner(struct vhu_backend *be, struct msg *m)
{
	(void)m;
	be->owner = true;
	return H_OK;
}

/*
 * "VHOST_USER_RESET_OWNER" is deprecated: "Used to be sent to request disabling all rings, but
 * some back-ends interpreted it to also discard connection state (this interpretation would
 * lead to bugs). It is recommended that back-ends either ignore this message, or use it to
 * disable all rings." vhu disables every ring and keeps everything else: rings stay started
 * (a started, disabled ring is processed without side effects, "Ring states"), features,
 * memory, ownership and device state stay.
 */
static int h_reset_owner(struct vhu_backend *be, struct msg *m)
{
	(void)m;
	log_info(&be->lg, "RESET_OWNER (deprecated): every ring disabled, nothing else reset");
	for (unsigned i = 0; i < be->nvqs; i++) {
		if (!be->vqs[i].enabled)
			continue;
		be->vqs[i].enabled = false;
		if (be->ops->queue_enable)
			be->ops->queue_enable(be->dev, &be->vqs[i], false);
	}
	return H_OK;
}

/* "VHOST_USER_RESET_DEVICE": "disable all rings and reset all internal device state to the
 * initial state, ready to be reinitialized. The back-end retains ownership". Rings stopped,
 * disabled and forgotten; features and status cleared; the device's own state reset (its reset
 * op); ownership, protocol features and the memory table kept. */
static int h_reset_device(struct vhu_backend *be, struct msg *m)
{
	(void)m;
	reset_rings(be);
	be->features = 0;
	be->features_set = false;
	be->status = 0;
	iotlb_clear(&be->iotlb);
	if (be->ops->reset)
		be->ops->reset(be->dev);
	return H_OK;
}

static int h_get_queue_num(struct vhu_backend *be, struct msg *m)
{
	m->p.u64 = be->ops->queue_num ? be->ops->queue_num : be->nvqs;
	m->hdr.size = sizeof(uint64_t);
	return H_REPLY;
}

/* ---- handlers: memory ---- */

/*
 * The device stopped (no ring started any more): the IOTLB is forgotten. QEMU 7.2 forwards the
 * vIOMMU's invalidations only while the device runs (vhost_dev_stop unregisters its IOMMU
 * listener, vhost_dev_start registers it again), so what the table holds from before a stop
 * may be stale at the next start: the firmware's run (SeaBIOS drives virtio-blk with the vIOMMU
 * still off, every IOVA its guest-physical address) leaves mappings that the guest's own IOVAs
 * can later reuse. Forgetting costs one miss per page at the next start. As DPDK's
 * vhost_user_iotlb_flush_all() on SET_MEM_TABLE (below), for the same reason.
 */
static void iotlb_forget_if_stopped(struct vhu_backend *be)
{
	if (!has_bit(be->features, VIRTIO_F_ACCESS_PLATFORM))
		return;
	for (unsigned i = 0; i < be->nvqs; i++)
		if (be->vqs[i].started)
			return;
	iotlb_clear(&be->iotlb);
	log_debug(&be->lg, "device stopped: IOTLB forgotten");
}

/* The device's own guest pointers are stale: it resolves them while every ring is stopped. */
static void mem_changed(struct vhu_backend *be)
{
	if (be->ops->mem_changed)
		be->ops->mem_changed(be->dev);
}

static int h_set_mem_table(struct vhu_backend *be, struct msg *m)
{
	bool was[MAX_VQS];
	int ret;

	/* Live rings hold pointers into the old mappings: pause them across the swap. DPDK's
	 * virtio-user sends a new table while running. */
	stop_all(be, was);
	ret = mem_set_table(&be->mem, m->p.mem.regions, m->p.mem.nregions, m->fds, &be->lg);
	/* The front-end's addresses may mean other memory now (DPDK flushes its IOTLB here). */
	iotlb_clear(&be->iotlb);
	mem_changed(be);
	restart_all(be, was);
	return ret;
}

static int h_get_max_mem_slots(struct vhu_backend *be, struct msg *m)
{
	(void)be;
	m->p.u64 = MEM_MAX_SLOTS;
	m->hdr.size = sizeof(uint64_t);
	return H_REPLY;
}

static int h_add_mem_reg(struct vhu_backend *be, struct msg *m)
{
	bool was[MAX_VQS];
	int ret;

	stop_all(be, was);
	ret = mem_add(&be->mem, &m->p.mem_single.region, &m->fds[0], &be->lg);
	mem_changed(be);
	restart_all(be, was);
	/* Past GET_MAX_MEM_SLOTS: refused, and the regions already there serve on. */
	return ret == -ENOSPC ? H_FAIL : ret;
}

static int h_rem_mem_reg(struct vhu_backend *be, struct msg *m)
{
	bool was[MAX_VQS];
	int ret;

	/* "VHOST_USER_REM_MEM_REG": an fd, if one came, is accepted and closed (msg_close_fds). */
	stop_all(be, was);
	ret = mem_remove(&be->mem, &m->p.mem_single.region, &be->lg);
	mem_changed(be);
	restart_all(be, was);
	return ret == -ENOENT ? H_FAIL : ret;
}

/* ---- handlers: rings ---- */

static int h_set_vring_num(struct vhu_backend *be, struct msg *m)
{
	struct vhu_virtq *vq = vq_get(be, m->p.state.index, "SET_VRING_NUM");
	uint32_t num = m->p.state.num;

	if (!vq)
		return -ERANGE;
	if (num == 0 || num > RING_MAX_SIZE ||
	    (!has_bit(be->features, VIRTIO_F_RING_PACKED) && !is_pow2(num))) {
		log_err(&be->lg, "SET_VRING_NUM: vring %u size %u is not a valid %s ring size",
			vq->index, num,
			has_bit(be->features, VIRTIO_F_RING_PACKED) ? "packed" : "split");
		return -EINVAL;
	}
	vq_stop(be, vq);
	vq->num = (uint16_t)num;
	vq->num_set = true;
	return vq_try_start(be, vq);
}

static int h_set_vring_addr(struct vhu_backend *be, struct msg *m)
{
	struct vhu_virtq *vq = vq_get(be, m->p.addr.index, "SET_VRING_ADDR");
	bool was;

	if (!vq)
		return -ERANGE;
	was = vq->started;
	/* QEMU sends the same addresses again with VHOST_VRING_F_LOG set or cleared when it
	 * starts or ends a migration: the ring runs on; only its logging changes. */
	if (was && vq->addr.desc == m->p.addr.desc && vq->addr.avail == m->p.addr.avail &&
	    vq->addr.used == m->p.addr.used) {
		vq->addr.flags = m->p.addr.flags;
		vq->addr.log = m->p.addr.log;
		if (!vq->packed && !vq->iotlb) /* with an IOTLB: the used ring's gpa, kept */
			__atomic_store_n(&vq->log_used, m->p.addr.log, __ATOMIC_RELAXED);
		vq_log_update(be, vq);
		log_debug(&be->lg, "vring %u: used ring logging %s (log address 0x%llx)", vq->index,
			  vq->addr.flags & (1u << VHU_VRING_F_LOG) ? "on" : "off",
			  (unsigned long long)vq->addr.log);
		return H_OK;
	}
	vq_stop(be, vq);
	vq->addr = m->p.addr;
	vq->addr_set = true;
	vq->resume = was;
	return vq_try_start(be, vq);
}

static int h_set_vring_base(struct vhu_backend *be, struct msg *m)
{
	struct vhu_virtq *vq = vq_get(be, m->p.state.index, "SET_VRING_BASE");
	uint32_t num = m->p.state.num;
	bool packed = has_bit(be->features, VIRTIO_F_RING_PACKED);
	struct vring_base b;

	if (!vq)
		return -ERANGE;
	vq_stop(be, vq);
	log_debug(&be->lg, "SET_VRING_BASE: vring %u base 0x%x", vq->index, num);
	if (vring_base_decode(packed, num, &b)) {
		log_err(&be->lg, "SET_VRING_BASE: vring %u base %u exceeds 16 bits", vq->index,
			num);
		return -EINVAL;
	}
	/* DPDK 22.11 virtio-user sends only the avail half (0x8000 on a new ring) and DPDK's
	 * vhost ignores the used half. An empty used half therefore means "used state equals
	 * avail state"; QEMU sends both halves, and when its used half is 0/0 with nothing in
	 * flight the two agree anyway. */
	if (packed && (num >> 16) == 0) {
		b.used = b.avail;
		b.used_wrap = b.avail_wrap;
	}
	vq->base_avail = b.avail;
	vq->base_avail_wrap = b.avail_wrap;
	vq->base_used = b.used;
	vq->base_used_wrap = b.used_wrap;
	vq->resume = false;
	vq->broken = false;
	return vq_try_start(be, vq);
}

static int h_get_vring_base(struct vhu_backend *be, struct msg *m)
{
	struct vhu_virtq *vq = vq_get(be, m->p.state.index, "GET_VRING_BASE");

	if (!vq)
		return -ERANGE;
	/* "Ring states": GET_VRING_BASE stops the ring. SET_STATUS(0) before it (QEMU 7.2) does
	 * not touch ring state, so the indices here are still the live ones. */
	vq_stop(be, vq);
	m->p.state.num = virtq_base(vq);
	m->hdr.size = sizeof(m->p.state);
	close_fd(&vq->kick_fd);
	vq->kick_set = false;
	vq->broken = false;
	iotlb_forget_if_stopped(be);
	return H_REPLY;
}

/*
 * "VHOST_USER_SET_VRING_KICK/CALL/ERR" carry eventfds, and vhu accepts nothing else: a pipe, a
 * socket or a file can block a read or a write, or stay readable forever. A semaphore eventfd
 * (EFD_SEMAPHORE) is refused as a kick fd: each read takes 1 from its counter, so one write of
 * a large count would keep the ring's poller waking up without end. The fd is made
 * non-blocking, on the file description the front-end shares (QEMU and DPDK use non-blocking
 * eventfds themselves): a kick read never waits, and a call or err write into a counter at its
 * maximum fails with EAGAIN, which only means a notification is already pending.
 */
static int peer_eventfd(struct vhu_backend *be, struct msg *m, const char *req, bool kick)
{
	char path[48], what[128], info[512];
	ssize_t n;
	int fd, fl;

	if (!m->nfds)
		return 0; /* VRING_NOFD (the table checked that the bit and the fd count agree) */
	fd = m->fds[0];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, what, sizeof(what) - 1);
	what[n > 0 ? n : 0] = '\0';
	if (strcmp(what, "anon_inode:[eventfd]") != 0) {
		log_err(&be->lg, "%s: fd is %s, not an eventfd: refused", req,
			n > 0 ? what : "of unknown kind");
		return -EINVAL;
	}
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	int ifd = open(path, O_RDONLY | O_CLOEXEC);
	n = ifd >= 0 ? read(ifd, info, sizeof(info) - 1) : -1;
	if (ifd >= 0)
		close(ifd);
	info[n > 0 ? n : 0] = '\0';
	/* Linux 6.x kernels show the flag; older ones cannot tell, and are trusted. */
	if (kick && strstr(info, "eventfd-semaphore: 1")) {
		log_err(&be->lg,
			"%s: a semaphore eventfd stays readable after each read (busy loop): "
			"refused",
			req);
		return -EINVAL;
	}
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		int ret = -errno;
		log_err(&be->lg, "%s: cannot make the eventfd non-blocking: %s", req,
			strerror(-ret));
		return ret;
	}
	return 0;
}

/* SET_VRING_KICK / CALL / ERR: takes the fd (or none for VRING_NOFD) into *slot. The ring is
 * paused across the swap so a queue thread never sees a closed fd. */
static struct vhu_virtq *vring_file(struct vhu_backend *be, struct msg *m, const char *req,
				    bool *was)
{
	struct vhu_virtq *vq = vq_get(be, (uint32_t)(m->p.u64 & VHU_VRING_IDX_MASK), req);

	if (!vq)
		return NULL;
	if (m->p.u64 & ~(uint64_t)(VHU_VRING_IDX_MASK | VHU_VRING_NOFD)) {
		log_err(&be->lg, "%s: unknown bits in 0x%llx", req, (unsigned long long)m->p.u64);
		return NULL;
	}
	*was = vq->started;
	vq_stop(be, vq);
	return vq;
}

static void take_fd(int *slot, struct msg *m)
{
	close_fd(slot);
	if (m->nfds) {
		*slot = m->fds[0];
		m->fds[0] = -1;
	}
}

static int h_set_vring_kick(struct vhu_backend *be, struct msg *m)
{
	bool was;
	int ret = peer_eventfd(be, m, "SET_VRING_KICK", true);
	struct vhu_virtq *vq = ret ? NULL : vring_file(be, m, "SET_VRING_KICK", &was);

	if (!vq)
		return ret ? ret : -EINVAL;
	take_fd(&vq->kick_fd, m);
	vq->kick_set = true;
	vq->resume = was;
	return vq_try_start(be, vq);
}

static int h_set_vring_call(struct vhu_backend *be, struct msg *m)
{
	bool was;
	int ret = peer_eventfd(be, m, "SET_VRING_CALL", false);
	struct vhu_virtq *vq = ret ? NULL : vring_file(be, m, "SET_VRING_CALL", &was);

	if (!vq)
		return ret ? ret : -EINVAL;
	take_fd(&vq->call_fd, m);
	return was ? vq_try_start(be, vq) : 0;
}

static int h_set_vring_err(struct vhu_backend *be, struct msg *m)
{
	bool was;
	int ret = peer_eventfd(be, m, "SET_VRING_ERR", false);
	struct vhu_virtq *vq = ret ? NULL : vring_file(be, m, "SET_VRING_ERR", &was);

	if (!vq)
		return ret ? ret : -EINVAL;
	take_fd(&vq->err_fd, m);
	return was ? vq_try_start(be, vq) : 0;
}

static int h_set_vring_enable(struct vhu_backend *be, struct msg *m)
{
	struct vhu_virtq *vq = vq_get(be, m->p.state.index, "SET_VRING_ENABLE");

	if (!vq)
		return -ERANGE;
	if (m->p.state.num > 1) {
		log_err(&be->lg, "SET_VRING_ENABLE: vring %u state %u is neither 0 nor 1",
			vq->index, m->p.state.num);
		return -EINVAL;
	}
	vq->enabled = m->p.state.num;
	if (be->ops->queue_enable)
		be->ops->queue_enable(be->dev, vq, vq->enabled);
	return H_OK;
}

/* ---- handlers: inflight I/O tracking ---- */

static void inflight_unmap(struct vhu_backend *be)
{
	guard_remove(be->inflight.guard);
	if (be->inflight.addr)
		munmap(be->inflight.addr, be->inflight.size);
	memset(&be->inflight, 0, sizeof(be->inflight));
	be->inflight.guard = -1;
	for (unsigned i = 0; i < be->nvqs; i++)
		be->vqs[i].inf = NULL;
}

static int inflight_check(struct vhu_backend *be, const struct vhu_inflight *in)
{
	if (in->num_queues == 0 || in->num_queues > be->nvqs || in->queue_size == 0 ||
	    in->queue_size > RING_MAX_SIZE) {
		log_err(&be->lg,
			"inflight buffer for %u queues of %u entries: device has %u queues",
			in->num_queues, in->queue_size, be->nvqs);
		return -EINVAL;
	}
	return 0;
}

static int h_get_inflight_fd(struct vhu_backend *be, struct msg *m)
{
	struct vhu_inflight *in = &m->p.inflight;
	int ret = inflight_check(be, in), fd;

	if (ret)
		return ret;
	size_t region = inflight_region_size(in->queue_size);
	uint64_t size = region * in->num_queues;
	fd = memfd_create("vhu-inflight", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	/* Zero-filled: version 0 means "fresh" to whoever starts a ring on it. */
	in->mmap_size = size;
	in->mmap_offset = 0;
	m->hdr.size = sizeof(*in);
	be->reply_fd = fd;
	return H_REPLY;
}

static int h_set_inflight_fd(struct vhu_backend *be, struct msg *m)
{
	const struct vhu_inflight *in = &m->p.inflight;
	int ret = inflight_check(be, in), guard;
	struct stat st;
	uint64_t end;
	void *addr;

	if (ret)
		return ret;
	size_t region = inflight_region_size(in->queue_size);
	if (in->mmap_size < region * in->num_queues || in->mmap_size > (1ULL << 32)) {
		log_err(&be->lg, "inflight buffer of %llu bytes too small for %u queues of %u",
			(unsigned long long)in->mmap_size, in->num_queues, in->queue_size);
		return -EINVAL;
	}
	/* Map only what fstat proves: a page past the end of the file raises SIGBUS when the
	 * ring starts. The front-end keeps this buffer in a memfd or shm file. */
	ret = mem_fd_check(m->fds[0], "inflight buffer", &be->lg);
	if (ret)
		return ret;
	if (fstat(m->fds[0], &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) || !add_ok(in->mmap_offset, in->mmap_size, &end) ||
	    end > (uint64_t)INT64_MAX || end > (uint64_t)st.st_size) {
		log_err(&be->lg,
			"inflight buffer (offset 0x%llx, size 0x%llx) is not inside its fd (%s of "
			"0x%llx bytes)",
			(unsigned long long)in->mmap_offset, (unsigned long long)in->mmap_size,
			S_ISREG(st.st_mode) ? "a file" : "not a file",
			(unsigned long long)st.st_size);
		return -EINVAL;
	}
	addr = mmap(NULL, in->mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, m->fds[0],
		    (off_t)in->mmap_offset);
	if (addr == MAP_FAILED) {
		ret = -errno;
		log_err(&be->lg, "inflight buffer mmap: %s", strerror(-ret));
		return ret;
	}
	/* The front-end can still shrink the file later: guard it like the memory regions. */
	guard = guard_add(addr, in->mmap_size, mem_page_size(m->fds[0]), GUARD_INFLIGHT,
			  &be->mem.poison);
	if (guard == -ENOSPC) {
		log_err(&be->lg, "inflight buffer: every SIGBUS guard slot is in use");
		munmap(addr, in->mmap_size);
		return -ENOSPC;
	}
	bool was[MAX_VQS];
	stop_all(be, was);
	inflight_unmap(be);
	be->inflight.addr = addr;
	be->inflight.guard = guard;
	be->inflight.size = in->mmap_size;
	be->inflight.region = region;
	be->inflight.nqueues = in->num_queues;
	be->inflight.queue_size = in->queue_size;
	restart_all(be, was);
	return H_OK;
}

/* ---- handlers: dirty log ---- */

/* The log must hold a bit for every page of the memory table. A table that outgrew it is said
 * (QEMU sends a bigger log before a bigger table); writes past it are not logged. */
static bool log_covers(struct vhu_backend *be, uint64_t size)
{
	uint64_t end = 0;

	for (unsigned i = 0; i < be->mem.n; i++) {
		const struct mem_region *r = &be->mem.regions[i];
		if (r->gpa + r->size > end)
			end = r->gpa + r->size;
	}
	if (dirty_bytes_for(end) <= size)
		return true;
	log_err(&be->lg,
		"dirty log of %llu bytes covers guest memory up to 0x%llx, the memory table "
		"reaches 0x%llx",
		(unsigned long long)size, (unsigned long long)(size * 8 * DIRTY_PAGE),
		(unsigned long long)end);
	return false;
}

/* "VHOST_USER_SET_LOG_BASE": the log fd, {size, offset}, and a u64 reply (0: done). A log
 * that cannot be used is refused and the connection stays: QEMU then fails the migration
 * while the guest runs on. A new log may come while the rings run (QEMU grows it with
 * memory): they pause across the swap, as for a memory table. */
static int h_set_log_base(struct vhu_backend *be, struct msg *m)
{
	struct dirty_log l;
	bool was[MAX_VQS];

	if (!log_covers(be, m->p.log.size))
		return H_FAIL;
	if (dirty_map(&l, m->fds[0], m->p.log.size, m->p.log.offset, &be->mem.poison, &be->lg))
		return H_FAIL;
	stop_all(be, was);
	dirty_unmap(&be->dlog);
	be->dlog = l;
	log_debug(&be->lg, "dirty log: %llu bytes (guest memory up to 0x%llx)",
		  (unsigned long long)l.size, (unsigned long long)(l.size * 8 * DIRTY_PAGE));
	restart_all(be, was);
	/* Stopped rings learn it when they start; every ring's bits follow the new log. */
	for (unsigned i = 0; i < be->nvqs; i++)
		vq_log_update(be, &be->vqs[i]);
	m->p.u64 = 0;
	m->hdr.size = sizeof(uint64_t);
	return H_REPLY;
}

/* "VHOST_USER_SET_LOG_FD": an eventfd the back-end signals when it wrote the log (as the
 * kernel's VHOST_SET_LOG_FD). Only an eventfd, made non-blocking like a call fd. */
static int h_set_log_fd(struct vhu_backend *be, struct msg *m)
{
	int ret = peer_eventfd(be, m, "SET_LOG_FD", false);
	bool was[MAX_VQS];

	if (ret < 0)
		return ret;
	stop_all(be, was);
	close_fd(&be->log_fd);
	be->log_fd = m->fds[0];
	m->fds[0] = -1;
	restart_all(be, was);
	for (unsigned i = 0; i < be->nvqs; i++)
		vq_log_update(be, &be->vqs[i]);
	return H_OK;
}

/* ---- handlers: config and status ---- */

/* "VHOST_USER_SET_BACKEND_REQ_FD": the channel for back-end requests. A socket that is not an
 * AF_UNIX stream is refused (non-zero ack) and the connection stays. Kept across RESET_DEVICE:
 * QEMU 7.2 sends it once, at connection time, and never again on that connection. */
static int h_set_backend_req_fd(struct vhu_backend *be, struct msg *m)
{
	if (breq_set_fd(&be->chan, m->fds[0]))
		return H_FAIL;
	m->fds[0] = -1;
	return H_OK;
}

static int h_get_config(struct vhu_backend *be, struct msg *m)
{
	struct vhu_config *c = &m->p.config;
	int ret = -ENOTSUP;

	if (be->ops->get_config && c->offset <= VHU_MAX_CONFIG_SIZE &&
	    c->size <= VHU_MAX_CONFIG_SIZE - c->offset) {
		memset(c->region, 0, c->size);
		ret = be->ops->get_config(be->dev, c->region, c->offset, c->size);
	}
	/* "VHOST_USER_GET_CONFIG": on failure, the reply has an empty payload. */
	if (ret) {
		log_warn(&be->lg, "GET_CONFIG offset %u size %u refused", c->offset, c->size);
		m->hdr.size = 0;
	}
	return H_REPLY;
}

static int h_set_config(struct vhu_backend *be, struct msg *m)
{
	const struct vhu_config *c = &m->p.config;

	if (!be->ops->set_config || c->offset > VHU_MAX_CONFIG_SIZE ||
	    c->size > VHU_MAX_CONFIG_SIZE - c->offset)
		return H_FAIL;
	return be->ops->set_config(be->dev, c->region, c->offset, c->size, c->flags) ? H_FAIL
										     : H_OK;
}

static int h_set_status(struct vhu_backend *be, struct msg *m)
{
	if (m->p.u64 > UINT8_MAX) {
		log_err(&be->lg, "SET_STATUS 0x%llx does not fit a status byte",
			(unsigned long long)m->p.u64);
		return H_FAIL;
	}
	/* QEMU 7.2 sends SET_STATUS(0) before GET_VRING_BASE: it must not reset the rings. */
	be->status = (uint8_t)m->p.u64;
	if (be->ops->status_set)
		be->ops->status_set(be->dev, be->status);
	return H_OK;
}

static int h_get_status(struct vhu_backend *be, struct msg *m)
{
	m->p.u64 = be->status;
	m->hdr.size = sizeof(uint64_t);
	return H_REPLY;
}

/* Requests vhu knows but does not offer: refused (the failure reply its rule gives when one
 * is due). A request whose protocol feature was not negotiated never gets here (msg_check,
 * refused in handle()); these are the ungated ones. */
static int h_unsupported(struct vhu_backend *be, struct msg *m)
{
	log_warn(&be->lg, "%s is not supported by this back-end", vhu_request_name(m->hdr.request));
	return H_FAIL;
}

/* ---- handlers: the IOTLB (ACCESS_PLATFORM) ---- */

/* A ring's translation missed (any thread): "VHOST_USER_BACKEND_IOTLB_MSG ... the back-end
 * sends such requests to the front-end for IOTLB misses and access failures". Never waits
 * (breq_send); sent without NEED_REPLY, as QEMU and DPDK do, so that misses owe no acks: the
 * answer is the front-end's IOTLB_MSG update. */
static void iotlb_miss(void *opaque, uint64_t iova, unsigned perm)
{
	struct vhu_backend *be = opaque;
	struct vhu_iotlb_msg m = { .iova = iova, .perm = (uint8_t)perm, .type = IOTLB_MISS };
	int ret = breq_send(&be->chan, VHU_BREQ_IOTLB_MSG, &m, sizeof(m), be->features,
			    be->protocol_features & ~bit64(VHU_PROTO_F_REPLY_ACK));

	if (ret)
		log_warn(&be->lg, "IOTLB miss at iova 0x%llx not sent: %s",
			 (unsigned long long)iova, strerror(-ret));
	else
		log_debug(&be->lg, "IOTLB miss at iova 0x%llx (perm %u)", (unsigned long long)iova,
			  perm);
}

/* "VHOST_USER_IOTLB_MSG": "The back-end has to acknowledge the request with sending zero as
 * u64 payload for success, non-zero otherwise" (REPLY_STATUS). After an update, the rings
 * that wait for one go on: a started ring is kicked (its thread pops again), a ring whose
 * addresses missed is started. */
static int h_iotlb_msg(struct vhu_backend *be, struct msg *m)
{
	int ret;

	if (!(offered_features(be) & bit64(VIRTIO_F_ACCESS_PLATFORM)))
		return h_unsupported(be, m);
	log_debug(&be->lg, "IOTLB_MSG type %u iova 0x%llx size 0x%llx uaddr 0x%llx perm %u",
		  m->p.iotlb.type, (unsigned long long)m->p.iotlb.iova,
		  (unsigned long long)m->p.iotlb.size, (unsigned long long)m->p.iotlb.uaddr,
		  m->p.iotlb.perm);
	ret = iotlb_msg(&be->iotlb, &be->mem, &m->p.iotlb);
	if (ret)
		return H_FAIL;
	for (unsigned i = 0; i < be->nvqs; i++) {
		struct vhu_virtq *vq = &be->vqs[i];
		/* Pairs with ring_piece(): the generation was bumped before this read. */
		if (!__atomic_load_n(&vq->tlb_miss, __ATOMIC_SEQ_CST))
			continue;
		if (!vq->started)
			vq_try_start(be, vq);
		else if (vq->kick_fd >= 0)
			peer_eventfd_write(vq->kick_fd);
	}
	return H_OK;
}

typedef int (*handler_fn)(struct vhu_backend *be, struct msg *m);

static const handler_fn handlers[VHU_REQ_MAX] = {
	[VHU_REQ_GET_FEATURES] = h_get_features,
	[VHU_REQ_SET_FEATURES] = h_set_features,
	[VHU_REQ_SET_OWNER] = h_set_owner,
	[VHU_REQ_RESET_OWNER] = h_reset_owner,
	[VHU_REQ_SET_MEM_TABLE] = h_set_mem_table,
	[VHU_REQ_SET_LOG_BASE] = h_set_log_base,
	[VHU_REQ_SET_LOG_FD] = h_set_log_fd,
	[VHU_REQ_SET_VRING_NUM] = h_set_vring_num,
	[VHU_REQ_SET_VRING_ADDR] = h_set_vring_addr,
	[VHU_REQ_SET_VRING_BASE] = h_set_vring_base,
	[VHU_REQ_GET_VRING_BASE] = h_get_vring_base,
	[VHU_REQ_SET_VRING_KICK] = h_set_vring_kick,
	[VHU_REQ_SET_VRING_CALL] = h_set_vring_call,
	[VHU_REQ_SET_VRING_ERR] = h_set_vring_err,
	[VHU_REQ_GET_PROTOCOL_FEATURES] = h_get_protocol_features,
	[VHU_REQ_SET_PROTOCOL_FEATURES] = h_set_protocol_features,
	[VHU_REQ_GET_QUEUE_NUM] = h_get_queue_num,
	[VHU_REQ_SET_VRING_ENABLE] = h_set_vring_enable,
	[VHU_REQ_SET_BACKEND_REQ_FD] = h_set_backend_req_fd,
	[VHU_REQ_IOTLB_MSG] = h_iotlb_msg,
	[VHU_REQ_GET_CONFIG] = h_get_config,
	[VHU_REQ_SET_CONFIG] = h_set_config,
	[VHU_REQ_GPU_SET_SOCKET] = h_unsupported,
	[VHU_REQ_RESET_DEVICE] = h_reset_device,
	[VHU_REQ_GET_MAX_MEM_SLOTS] = h_get_max_mem_slots,
	[VHU_REQ_ADD_MEM_REG] = h_add_mem_reg,
	[VHU_REQ_REM_MEM_REG] = h_rem_mem_reg,
	[VHU_REQ_GET_INFLIGHT_FD] = h_get_inflight_fd,
	[VHU_REQ_SET_INFLIGHT_FD] = h_set_inflight_fd,
	[VHU_REQ_SET_STATUS] = h_set_status,
	[VHU_REQ_GET_STATUS] = h_get_status,
};

/* ---- dispatch ---- */

/* Replies never block: a front-end that does not read them until our socket send buffer is
 * full (about 200 KiB of replies) is dropped rather than allowed to stall the thread. A reply
 * may then be half sent, so the stream is out of sync anyway. */
static int send_reply(struct vhu_backend *be, struct msg *m)
{
	m->hdr.flags = VHU_VERSION | VHU_FLAG_REPLY;
	int ret = sock_send_nowait(be->fd, m, be->reply_fd >= 0 ? &be->reply_fd : NULL,
				   be->reply_fd >= 0 ? 1 : 0);
	close_fd(&be->reply_fd);
	if (ret == -EAGAIN) {
		log_err(&be->lg,
			"reply to %s: socket send buffer full, the front-end does not read its "
			"replies; dropping it",
			vhu_request_name(m->hdr.request));
		return -ENOBUFS;
	}
	if (ret)
		log_err(&be->lg, "reply to %s failed: %s", vhu_request_name(m->hdr.request),
			strerror(-ret));
	return ret;
}

/*
 * The virtio features a request is checked against (msg_check: SET_VRING_ENABLE needs
 * VHOST_USER_F_PROTOCOL_FEATURES): the negotiated ones, or the offered ones until SET_FEATURES
 * comes. QEMU 7.2's virtio-net sends SET_VRING_ENABLE when the guest sets its features
 * (peer_attach()), before vhost starts the device and sends SET_FEATURES; QEMU tests the bit
 * against the back-end's offered features. A front-end that acked features without the bit
 * has every ring enabled ("Ring states") and may not disable one.
 */
static uint64_t checked_features(const struct vhu_backend *be)
{
	return be->features_set ? be->features : be->ops->features | bit64(VHU_F_PROTOCOL_FEATURES);
}

/* The SIGBUS guard found a mapping of this device shrunk: the connection is unusable. */
static bool poisoned(struct vhu_backend *be)
{
	char why[128];

	if (!guard_poisoned(&be->mem.poison))
		return false;
	guard_describe(&be->mem.poison, why, sizeof(why));
	log_err(&be->lg, "front-end memory shrank under the device: %s; detach it", why);
	return true;
}

/*
 * The device's process_msg hook, before the table check: the hook may serve requests the
 * library does not know. Returns the handler result for a handled request (H_OK, H_REPLY,
 * H_FAIL or -errno), or 1 + H_FAIL to go on.
 */
#define HOOK_GO_ON (H_FAIL + 1)
static int hook(struct vhu_backend *be, struct msg *m)
{
	struct vhu_msg vm = {
		.request = m->hdr.request,
		.flags = m->hdr.flags,
		.size = m->hdr.size,
		.max_size = MSG_MAX_PAYLOAD,
		.payload = m->p.raw,
		.fds = m->fds,
		.nfds = m->nfds,
		.reply_fd = -1,
	};
	int r = be->ops->process_msg(be->dev, &vm);

	if (r != VHU_MSG_REPLY && vm.reply_fd >= 0)
		close_fd(&vm.reply_fd);
	switch (r) {
	case VHU_MSG_NOT_HANDLED:
		/* The library's handler counts on the fds it was sent. */
		for (unsigned i = 0; i < m->nfds; i++)
			if (m->fds[i] < 0) {
				log_err(&be->lg, "%s: the device took an fd and did not handle it",
					vhu_request_name(m->hdr.request));
				return -EINVAL;
			}
		return HOOK_GO_ON;
	case VHU_MSG_HANDLED:
		return H_OK;
	case VHU_MSG_REFUSED:
		return H_FAIL;
	case VHU_MSG_REPLY:
		if (vm.size > MSG_MAX_PAYLOAD) {
			log_err(&be->lg, "%s: the device's reply of %u bytes is too large",
				vhu_request_name(m->hdr.request), vm.size);
			close_fd(&vm.reply_fd);
			return -EINVAL;
		}
		m->hdr.size = vm.size;
		be->reply_fd = vm.reply_fd;
		return H_REPLY;
	default:
		return r < 0 ? r : -EINVAL;
	}
}

/* Sends what handler result r asks for: its reply, or an ack when one is wanted. */
static int reply(struct vhu_backend *be, struct msg *m, int r, bool refused)
{
	int ret = 0;
	/* Requests outside the table (served by the hook) follow the REPLY_ACK rule alone. */
	bool ack = msg_rule(m->hdr.request)
			   ? msg_wants_reply(m, be->protocol_features)
			   : has_bit(be->protocol_features, VHU_PROTO_F_REPLY_ACK) &&
				     (m->hdr.flags & VHU_FLAG_NEED_REPLY);

	if (r == H_REPLY) {
		ret = send_reply(be, m);
	} else if (ack) {
		/* REPLY_ACK: 0 for success, non-zero for failure; a request with a reply of its
		 * own gets that reply's failure form. */
		if (r == H_OK) {
			m->p.u64 = 0;
			m->hdr.size = sizeof(uint64_t);
		} else {
			msg_fail_reply(m, r < 0 ? -r : 1);
		}
		ret = send_reply(be, m);
	}
	if (refused)
		return ret;
	if (r < 0) {
		log_err(&be->lg, "%s failed: %s", vhu_request_name(m->hdr.request), strerror(-r));
		return r;
	}
	return ret;
}

/* Handles the complete message in m; fds the handler did not take are closed. */
static int handle(struct vhu_backend *be, struct msg *m)
{
	char why[160];
	handler_fn h;
	int r;
	bool refused = false;

	r = be->ops->process_msg ? hook(be, m) : HOOK_GO_ON;
	if (r != HOOK_GO_ON) {
		msg_close_fds(m);
		log_debug(&be->lg, "<- %s (request %u): the device handled it (%d)",
			  vhu_request_name(m->hdr.request), m->hdr.request, r);
		return reply(be, m, r, false);
	}
	r = msg_check(m, checked_features(be), be->protocol_features, why, sizeof(why));
	refused = r == -ENOPROTOOPT;
	if (refused) {
		/* Well formed but not negotiated: a clean refusal (a failure reply when one is
		 * due, as for any failed request) and the connection stays. */
		log_warn(&be->lg, "refused: %s", why);
	} else if (r) {
		log_err(&be->lg, "rejected message: %s", why);
		msg_close_fds(m);
		return r;
	} else {
		log_debug(&be->lg, "<- %s (size %u, %u fds)", vhu_request_name(m->hdr.request),
			  m->hdr.size, m->nfds);
		h = handlers[m->hdr.request];
		r = h ? h(be, m) : h_unsupported(be, m);
	}
	msg_close_fds(m);
	return reply(be, m, r, refused);
}

VHU_EXPORT int vhu_backend_dispatch(struct vhu_backend *be)
{
	struct msg *m = &be->rx;
	int ret;

	if (be->fd < 0)
		return -ENOTCONN;
	if (poisoned(be))
		return -EIO;
	/* Acks owed on the back-end channel: read, never waited for (errors are the channel's,
	 * logged there; the connection goes on without it). */
	breq_poll(&be->chan);
	/* Non-blocking: whatever part of a message the socket holds is added to be->rx; a
	 * front-end that sends slowly or stops mid-message holds no thread, only this buffer. */
	ret = sock_recv_some(be->fd, m, &be->rx_got, false);
	if (ret == 0)
		return 0;
	if (ret == -ECONNRESET) {
		log_info(&be->lg, "front-end closed the connection");
		return ret;
	}
	if (ret < 0) {
		log_err(&be->lg, "bad message (request %u, flags 0x%x, size %u): %s",
			m->hdr.request, m->hdr.flags, m->hdr.size, strerror(-ret));
		return ret;
	}
	be->rx_got = 0;
	ret = handle(be, m);
	/* A handler that started a ring may have read memory the front-end had shrunk. */
	if (ret == 0 && poisoned(be))
		return -EIO;
	return ret;
}

/* ---- lifetime ---- */

VHU_EXPORT int vhu_backend_new(struct vhu_backend **out, const struct vhu_device_ops *ops,
			       void *dev, unsigned nvqs)
{
	struct vhu_backend *be;

	if (!out || !ops || nvqs == 0 || nvqs > MAX_VQS || ops->size < OPS_SIZE_0_1)
		return -EINVAL;
	/* A caller built against newer headers: what this library does not know must be unset
	 * (as the kernel's copy_struct_from_user() does for openat2 and clone3). */
	for (size_t i = sizeof(*ops); i < ops->size; i++)
		if (((const uint8_t *)ops)[i])
			return -E2BIG;
	be = calloc(1, sizeof(*be));
	if (!be)
		return -ENOMEM;
	be->vqs = calloc(nvqs, sizeof(*be->vqs));
	if (!be->vqs) {
		free(be);
		return -ENOMEM;
	}
	memcpy(&be->ops_copy, ops, MIN((size_t)ops->size, sizeof(*ops)));
	be->ops_copy.size = sizeof(*ops);
	be->ops = &be->ops_copy;
	be->dev = dev;
	be->fd = -1;
	be->reply_fd = -1;
	be->inflight.guard = -1;
	be->dlog.guard = -1;
	be->log_fd = -1;
	msg_init(&be->rx, 0, 0, 0);
	be->nvqs = nvqs;
	be->lg = (struct logger){ .fn = ops->log,
				  .opaque = ops->log_opaque,
				  .level = ops->log_level };
	breq_init(&be->chan, &be->lg);
	iotlb_init(&be->iotlb, &be->lg, iotlb_miss, be);
	be->iotlb.per_buffer = !!(be->ops->flags & VHU_DEVICE_F_IOTLB_PER_BUFFER);
	mem_init(&be->mem);
	for (unsigned i = 0; i < nvqs; i++)
		virtq_init(&be->vqs[i], i, &be->mem, &be->lg);
	*out = be;
	return 0;
}

VHU_EXPORT int vhu_backend_attach(struct vhu_backend *be, int fd)
{
	if (be->fd >= 0)
		return -EBUSY;
	if (fd < 0)
		return -EBADF;
	/* Nothing on the control plane may block the application's thread (vhu-net serves every
	 * port on one): messages are assembled piece by piece and replies are sent without
	 * waiting. The flag is on the file description, which the application shares. */
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	be->fd = fd;
	be->rx_got = 0;
	return 0;
}

VHU_EXPORT void vhu_backend_detach(struct vhu_backend *be)
{
	if (!be)
		return;
	reset_rings(be);
	inflight_unmap(be);
	dirty_unmap(&be->dlog);
	close_fd(&be->log_fd);
	breq_close(&be->chan);
	iotlb_clear(&be->iotlb);
	mem_clear(&be->mem);
	/* A message cut off mid-way may hold fds. */
	msg_close_fds(&be->rx);
	be->rx_got = 0;
	mem_init(&be->mem); /* every guarded mapping is gone: the poison goes too */
	close_fd(&be->fd);
	be->features = 0;
	be->features_set = false;
	be->protocol_features = 0;
	be->status = 0;
	be->owner = false;
}

VHU_EXPORT void vhu_backend_free(struct vhu_backend *be)
{
	if (!be)
		return;
	vhu_backend_detach(be);
	breq_destroy(&be->chan);
	iotlb_destroy(&be->iotlb);
	free(be->vqs);
	free(be);
}

VHU_EXPORT int vhu_backend_fd(const struct vhu_backend *be)
{
	return be->fd;
}

VHU_EXPORT uint64_t vhu_backend_features(const struct vhu_backend *be)
{
	return be->features;
}

VHU_EXPORT uint64_t vhu_backend_protocol_features(const struct vhu_backend *be)
{
	return be->protocol_features;
}

VHU_EXPORT struct vhu_virtq *vhu_backend_virtq(struct vhu_backend *be, unsigned index)
{
	return index < be->nvqs ? &be->vqs[index] : NULL;
}

VHU_EXPORT unsigned vhu_backend_nvqs(const struct vhu_backend *be)
{
	return be->nvqs;
}

VHU_EXPORT uint8_t vhu_backend_status(const struct vhu_backend *be)
{
	return be->status;
}

VHU_EXPORT void *vhu_backend_gpa_to_va(struct vhu_backend *be, uint64_t gpa, uint64_t *len)
{
	return mem_gpa_to_hva(&be->mem, gpa, len);
}

/* ---- the back-end channel (BACKEND_REQ) ---- */

VHU_EXPORT int vhu_backend_config_changed(struct vhu_backend *be)
{
	/* "VHOST_USER_BACKEND_CONFIG_CHANGE_MSG": "When VHOST_USER_PROTOCOL_F_CONFIG is
	 * negotiated, vhost-user back-end sends such messages to notify that the virtio device's
	 * configuration space has changed". */
	if (!has_bit(be->protocol_features, VHU_PROTO_F_BACKEND_REQ) ||
	    !has_bit(be->protocol_features, VHU_PROTO_F_CONFIG))
		return -ENOPROTOOPT;
	breq_poll(&be->chan); /* the acks that came: room for this one's */
	return breq_send(&be->chan, VHU_BREQ_CONFIG_CHANGE_MSG, NULL, 0, be->features,
			 be->protocol_features);
}

VHU_EXPORT int vhu_backend_channel_fd(struct vhu_backend *be)
{
	return breq_fd(&be->chan);
}

VHU_EXPORT int vhu_backend_channel_dispatch(struct vhu_backend *be)
{
	return breq_poll(&be->chan);
}
