/* SPDX-License-Identifier: MIT */
/*
 * VDUSE device side (include/vhu/vduse.h): the control device, the kernel's requests, and the
 * IOVA mappings the rings read through (a translation hook in ring.h, so the ring code is the
 * one vhost-user uses). Rules quoted from the kernel's Documentation/userspace-api/vduse.rst.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/vduse.h>
#include <linux/virtio_config.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "guard.h"
#include "log.h"
#include "mem.h"
#include "util.h"
#include "virtq_ctl.h"
#include "vduse_int.h"
#include "vhu/vduse.h"

#define VD_MAX_MAPS	 64
#define VD_MAX_VQS	 256
#define VD_DEFAULT_QSIZE 256
#define VD_CONTROL	 "/dev/vduse/control"
#define VD_OPEN_WAIT_MS	 2000

/* One IOVA range [start, last] of the kernel's IOTLB, mapped from the fd VDUSE_IOTLB_GET_FD
 * gave. */
struct vd_map {
	uint64_t start, last;
	uint8_t *hva; /* start's address */
	void *base;   /* what munmap takes */
	size_t len;
	uint8_t perm; /* VDUSE_ACCESS_* (the same bits as IOTLB_PERM_*) */
	int guard;    /* the SIGBUS guard's slot (guard_add), -1 for none */
};

struct vhu_vduse {
	char name[VDUSE_NAME_MAX];
	int ctl_fd;
	int fd;
	bool created;
	struct logger lg;
	struct vhu_device_ops ops;
	void *dev;
	uint32_t nvqs;
	uint16_t queue_size;
	uint32_t config_size;
	uint64_t features;   /* offered */
	uint64_t negotiated; /* VDUSE_DEV_GET_FEATURES at DRIVER_OK */
	uint8_t status;
	bool running; /* DRIVER_OK handled: the ready queues were started */
	bool dead;    /* the kernel marked the device broken: no ioctl on it will work */
	unsigned irq_failures;
	/* Mappings: added by queue threads on a miss (write lock), read by them (read lock),
	 * removed by the dispatch thread only while every queue is stopped. */
	pthread_rwlock_t map_lock;
	struct vd_map maps[VD_MAX_MAPS];
	unsigned nmaps;
	struct mem *mem; /* empty: the ring code reads its poison flag */
	struct vhu_virtq *vqs;
};

/* Every failed ioctl names itself and the device. */
static int vd_ioctl(struct vhu_vduse *vd, int fd, unsigned long req, const char *what, void *arg)
{
	int r = ioctl(fd, req, arg);

	if (r < 0) {
		int e = errno;
		log_err(&vd->lg, "%s on VDUSE device %s: %s", what, vd->name, strerror(e));
		return -e;
	}
	return r;
}
#define VD_IOCTL(vd, fd, req, arg) vd_ioctl((vd), (fd), (req), #req, (arg))

/* ---- IOVA mappings ---- */

static bool map_find_locked(struct vhu_vduse *vd, uint64_t iova, struct vd_map *out)
{
	for (unsigned i = 0; i < vd->nmaps; i++)
		if (iova >= vd->maps[i].start && iova <= vd->maps[i].last) {
			*out = vd->maps[i];
			return true;
		}
	return false;
}

/* Asks the kernel for the range holding iova and maps it (write lock held). The kernel's
 * answer is checked: a range that holds iova, a known permission, a size that fits, and for
 * a regular file (vhost-vdpa's user memory) one the file really has. */
static int map_new_locked(struct vhu_vduse *vd, uint64_t iova, struct vd_map *out)
{
	struct vduse_iotlb_entry e = { .start = iova, .last = iova };
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE), pgoff, size;
	struct stat st;
	int fd, prot = 0;
	void *base;

	if (vd->nmaps == VD_MAX_MAPS) {
		log_err(&vd->lg,
			"VDUSE device %s: more than %u IOVA ranges mapped; iova 0x%llx refused",
			vd->name, VD_MAX_MAPS, (unsigned long long)iova);
		return -ENOSPC;
	}
	fd = ioctl(vd->fd, VDUSE_IOTLB_GET_FD, &e);
	if (fd < 0) {
		int err = errno;
		log_err(&vd->lg, "VDUSE_IOTLB_GET_FD on VDUSE device %s: iova 0x%llx: %s", vd->name,
			(unsigned long long)iova, strerror(err));
		return -err;
	}
	size = e.last - e.start + 1;
	if (e.start > iova || e.last < iova || size == 0 || size > SIZE_MAX / 2 || e.perm == 0 ||
	    e.perm > VDUSE_ACCESS_RW) {
		log_err(&vd->lg,
			"VDUSE_IOTLB_GET_FD on VDUSE device %s: iova 0x%llx answered with range "
			"0x%llx-0x%llx perm %u: refused",
			vd->name, (unsigned long long)iova, (unsigned long long)e.start,
			(unsigned long long)e.last, e.perm);
		close(fd);
		return -EINVAL;
	}
	pgoff = e.offset % page;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    (e.offset > (uint64_t)st.st_size || size > (uint64_t)st.st_size - e.offset)) {
		log_err(&vd->lg,
			"VDUSE device %s: IOTLB range 0x%llx-0x%llx at offset 0x%llx is past the "
			"end "
			"of its file (%lld bytes): refused",
			vd->name, (unsigned long long)e.start, (unsigned long long)e.last,
			(unsigned long long)e.offset, (long long)st.st_size);
		close(fd);
		return -EINVAL;
	}
	if (e.perm & VDUSE_ACCESS_RO)
		prot |= PROT_READ;
	if (e.perm & VDUSE_ACCESS_WO)
		prot |= PROT_WRITE;
	uint64_t fpage = mem_page_size(fd); /* the guard's unit: a huge page on hugetlbfs */
	base = mmap(NULL, size + pgoff, prot, MAP_SHARED, fd, (off_t)(e.offset - pgoff));
	close(fd);
	if (base == MAP_FAILED) {
		int err = errno;
		log_err(&vd->lg, "VDUSE device %s: mmap of IOTLB range 0x%llx-0x%llx: %s", vd->name,
			(unsigned long long)e.start, (unsigned long long)e.last, strerror(err));
		return -err;
	}
	/* Over vhost-vdpa the file is the VMM's memory, which it may shrink after this fstat: a
	 * SIGBUS inside the mapping then poisons this device alone (its rings break), instead of
	 * ending every device of the process. */
	int slot = guard_add(base, size + pgoff, fpage, e.start, &vd->mem->poison);
	if (slot == -ENOSPC) {
		log_err(&vd->lg,
			"VDUSE device %s: IOTLB range 0x%llx-0x%llx: no room in the SIGBUS guard",
			vd->name, (unsigned long long)e.start, (unsigned long long)e.last);
		munmap(base, size + pgoff);
		return -ENOSPC;
	}
	*out = (struct vd_map){ .start = e.start,
				.last = e.last,
				.hva = (uint8_t *)base + pgoff,
				.base = base,
				.len = size + pgoff,
				.perm = e.perm,
				.guard = slot };
	vd->maps[vd->nmaps++] = *out;
	log_debug(&vd->lg, "VDUSE device %s: mapped IOVA 0x%llx-0x%llx perm %u", vd->name,
		  (unsigned long long)e.start, (unsigned long long)e.last, e.perm);
	return 0;
}

/* The ring's translation (ring_piece's contract): a pointer to up to *len bytes at iova, *len
 * shortened at the mapping's end; NULL with *err -EFAULT (unmapped) or -EACCES. Queue threads. */
static void *vd_xlate(void *opaque, uint64_t iova, uint64_t *len, unsigned perm, int *err)
{
	struct vhu_vduse *vd = opaque;
	struct vd_map m;
	bool found;

	pthread_rwlock_rdlock(&vd->map_lock);
	found = map_find_locked(vd, iova, &m);
	pthread_rwlock_unlock(&vd->map_lock);
	if (!found) {
		pthread_rwlock_wrlock(&vd->map_lock);
		found = map_find_locked(vd, iova, &m) || map_new_locked(vd, iova, &m) == 0;
		pthread_rwlock_unlock(&vd->map_lock);
	}
	if (!found) {
		*err = -EFAULT;
		return NULL;
	}
	if ((m.perm & perm) != perm) {
		*err = -EACCES;
		return NULL;
	}
	if (*len && *len - 1 > m.last - iova)
		*len = m.last - iova + 1;
	*err = 0;
	return m.hva + (iova - m.start);
}

/* Drops the mappings that overlap [start, last]. Every queue is stopped. */
static unsigned unmap_range(struct vhu_vduse *vd, uint64_t start, uint64_t last)
{
	unsigned i = 0, n = 0;

	pthread_rwlock_wrlock(&vd->map_lock);
	while (i < vd->nmaps) {
		struct vd_map *m = &vd->maps[i];
		if (m->last < start || m->start > last) {
			i++;
			continue;
		}
		guard_remove(m->guard);
		munmap(m->base, m->len);
		vd->maps[i] = vd->maps[--vd->nmaps];
		n++;
	}
	pthread_rwlock_unlock(&vd->map_lock);
	return n;
}

/* The ring's interrupt: "VDUSE_VQ_INJECT_IRQ: inject an interrupt for a specific virtqueue".
 * Queue threads. EINVAL is the kernel's "not DRIVER_OK": a queue's first flush may come before
 * the kernel stored the status our reply to SET_STATUS gives it (the driver has sent nothing
 * then), or after a reset (nothing waits for it). Another failure is logged once. */
static void vd_notify(void *opaque, struct vhu_virtq *vq)
{
	struct vhu_vduse *vd = opaque;
	uint32_t idx = vq->index;

	if (__atomic_load_n(&vd->dead, __ATOMIC_RELAXED))
		return;
	if (ioctl(vd->fd, VDUSE_VQ_INJECT_IRQ, &idx) < 0 && errno != EINVAL &&
	    __atomic_fetch_add(&vd->irq_failures, 1, __ATOMIC_RELAXED) == 0)
		log_err(&vd->lg, "VDUSE_VQ_INJECT_IRQ on VDUSE device %s: queue %u: %s", vd->name,
			idx, strerror(errno));
}

/* ---- queues ---- */

static bool vd_packed(const struct vhu_vduse *vd)
{
	return has_bit(vd->negotiated, VIRTIO_F_RING_PACKED);
}

static void vq_stop(struct vhu_vduse *vd, struct vhu_virtq *vq)
{
	if (!vq->started)
		return;
	if (vd->ops.queue_stop)
		vd->ops.queue_stop(vd->dev, vq);
	virtq_save(vq);
	vq->started = false;
}

/* Maps a ring whose size, addresses, base and kick are set, and hands it to the device. */
static int vq_start(struct vhu_vduse *vd, struct vhu_virtq *vq)
{
	int ret;

	vq->xlate = vd_xlate;
	vq->notify = vd_notify;
	vq->xlate_opaque = vd;
	ret = virtq_map(vq, vd_packed(vd), has_bit(vd->negotiated, VIRTIO_RING_F_EVENT_IDX),
			has_bit(vd->negotiated, VIRTIO_F_IN_ORDER));
	if (ret) {
		log_err(&vd->lg, "VDUSE device %s: queue %u: its ring does not map", vd->name,
			vq->index);
		return ret;
	}
	vq->resume = false;
	vq->started = true;
	vhu_virtq_enable_notify(vq);
	log_debug(&vd->lg, "VDUSE device %s: queue %u started (%s, size %u, avail %u used %u)",
		  vd->name, vq->index, vq->packed ? "packed" : "split", vq->num, vq->last_avail_idx,
		  vq->used_idx);
	ret = vd->ops.queue_start ? vd->ops.queue_start(vd->dev, vq) : 0;
	if (ret < 0) {
		log_err(&vd->lg, "VDUSE device %s: queue %u: the device refused to start it: %s",
			vd->name, vq->index, strerror(-ret));
		vq->started = false;
	}
	return ret;
}

/* Every queue stopped and forgotten, the kick eventfds taken back, the mappings dropped: the
 * state of a device the driver has not set up (a reset, or the end). */
static void stop_all(struct vhu_vduse *vd)
{
	for (uint32_t i = 0; i < vd->nvqs; i++) {
		struct vhu_virtq *vq = &vd->vqs[i];
		vq_stop(vd, vq);
		if (vq->kick_fd >= 0 && vd->fd >= 0 && !vd->dead) {
			struct vduse_vq_eventfd ef = { .index = i, .fd = VDUSE_EVENTFD_DEASSIGN };
			VD_IOCTL(vd, vd->fd, VDUSE_VQ_SETUP_KICKFD, &ef);
		}
		virtq_reset(vq);
	}
	unmap_range(vd, 0, UINT64_MAX);
	/* Every mapping is gone: poisoned memory (a SIGBUS inside one) is no more. */
	guard_clear(&vd->mem->poison);
	vd->running = false;
}

/* One ready queue as the driver set it up (VDUSE_VQ_GET_INFO), checked, with a kick eventfd. */
static int vq_setup(struct vhu_vduse *vd, struct vhu_virtq *vq, const struct vduse_vq_info *in)
{
	struct vduse_vq_eventfd ef = { .index = vq->index };
	bool packed = vd_packed(vd);
	int ret;

	if (in->num == 0 || in->num > vd->queue_size || (!packed && !is_pow2(in->num))) {
		log_err(&vd->lg, "VDUSE device %s: queue %u: size %u refused (max %u%s)", vd->name,
			vq->index, in->num, vd->queue_size, packed ? "" : ", a power of 2");
		return -EINVAL;
	}
	vq->num = (uint16_t)in->num;
	vq->addr = (struct vhu_vring_addr){ .index = vq->index,
					    .desc = in->desc_addr,
					    .avail = in->driver_addr,
					    .used = in->device_addr };
	if (packed) {
		vq->base_avail = in->packed.last_avail_idx & 0x7fff;
		vq->base_avail_wrap = in->packed.last_avail_counter & 1;
		vq->base_used = in->packed.last_used_idx & 0x7fff;
		vq->base_used_wrap = in->packed.last_used_counter & 1;
		vq->resume = true;
	} else {
		vq->base_avail = in->split.avail_index;
		vq->resume = false; /* the used index is read from the ring */
	}
	vq->enabled = true;
	vq->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vq->kick_fd < 0)
		return -errno;
	ef.fd = vq->kick_fd;
	ret = VD_IOCTL(vd, vd->fd, VDUSE_VQ_SETUP_KICKFD, &ef);
	if (ret < 0)
		close_fd(&vq->kick_fd);
	return ret < 0 ? ret : 0;
}

/* DRIVER_OK: the features the driver accepted, then every ready queue started. */
static int driver_ok(struct vhu_vduse *vd)
{
	int ret = VD_IOCTL(vd, vd->fd, VDUSE_DEV_GET_FEATURES, &vd->negotiated);

	if (ret < 0)
		return ret;
	if (vd->negotiated & ~vd->features) {
		log_err(&vd->lg,
			"VDUSE device %s: negotiated features 0x%llx beyond the offered 0x%llx",
			vd->name, (unsigned long long)vd->negotiated,
			(unsigned long long)vd->features);
		return -EINVAL;
	}
	if (vd->ops.features_set)
		vd->ops.features_set(vd->dev, vd->negotiated);
	vd->irq_failures = 0;
	for (uint32_t i = 0; i < vd->nvqs; i++) {
		struct vduse_vq_info in = { .index = i };
		ret = VD_IOCTL(vd, vd->fd, VDUSE_VQ_GET_INFO, &in);
		if (ret < 0)
			break;
		if (in.index != i) {
			log_err(&vd->lg,
				"VDUSE_VQ_GET_INFO on VDUSE device %s: asked for queue %u, got %u",
				vd->name, i, in.index);
			ret = -EINVAL;
			break;
		}
		if (!in.ready)
			continue;
		ret = vq_setup(vd, &vd->vqs[i], &in);
		if (ret == 0)
			ret = vq_start(vd, &vd->vqs[i]);
		if (ret)
			break;
	}
	vd->running = true;
	if (ret)
		stop_all(vd);
	return ret < 0 ? ret : 0;
}

/* ---- the kernel's requests ---- */

static int req_set_status(struct vhu_vduse *vd, uint8_t status)
{
	int ret = 0;

	log_debug(&vd->lg, "VDUSE device %s: status 0x%x", vd->name, status);
	if ((status & VIRTIO_CONFIG_S_DRIVER_OK) && !vd->running)
		ret = driver_ok(vd);
	else if (!(status & VIRTIO_CONFIG_S_DRIVER_OK) && vd->running)
		stop_all(vd);
	if (status == 0) {
		/* "reset": the device's own state back to its initial values. */
		stop_all(vd);
		vd->negotiated = 0;
		if (vd->ops.reset)
			vd->ops.reset(vd->dev);
	}
	if (ret)
		return ret;
	vd->status = status;
	if (vd->ops.status_set)
		vd->ops.status_set(vd->dev, status);
	return 0;
}

/* "VDUSE_GET_VQ_STATE: get the state for specified virtqueue from userspace": the queue is
 * stopped (as vhost-user's GET_VRING_BASE stops it) and its position returned. */
static int req_vq_state(struct vhu_vduse *vd, const struct vduse_dev_request *req,
			struct vduse_dev_response *resp)
{
	uint32_t idx = req->vq_state.index;
	struct vhu_virtq *vq;

	if (idx >= vd->nvqs) {
		log_err(&vd->lg, "VDUSE device %s: GET_VQ_STATE for queue %u of %u: refused",
			vd->name, idx, vd->nvqs);
		return -EINVAL;
	}
	vq = &vd->vqs[idx];
	vq_stop(vd, vq);
	resp->vq_state.index = idx;
	if (vd_packed(vd)) {
		resp->vq_state.packed.last_avail_idx = vq->base_avail & 0x7fff;
		resp->vq_state.packed.last_avail_counter = vq->base_avail_wrap;
		resp->vq_state.packed.last_used_idx = vq->base_used & 0x7fff;
		resp->vq_state.packed.last_used_counter = vq->base_used_wrap;
	} else {
		resp->vq_state.split.avail_index = vq->base_avail;
	}
	return 0;
}

/* "VDUSE_UPDATE_IOTLB: the mappings in [start, last] changed": dropped, with the queues
 * stopped meanwhile (a queue thread may hold a pointer into one); they map again on demand. */
static int req_update_iotlb(struct vhu_vduse *vd, uint64_t start, uint64_t last)
{
	bool was[VD_MAX_VQS];
	int ret = 0;

	if (start > last) {
		log_err(&vd->lg, "VDUSE device %s: UPDATE_IOTLB 0x%llx-0x%llx: refused", vd->name,
			(unsigned long long)start, (unsigned long long)last);
		return -EINVAL;
	}
	for (uint32_t i = 0; i < vd->nvqs; i++) {
		was[i] = vd->vqs[i].started;
		vq_stop(vd, &vd->vqs[i]);
		/* A broken ring (or any, once the device's memory is poisoned) stays stopped
		 * until the driver resets the device (stop_all). Read once the queue's thread has
		 * let it go. */
		was[i] = was[i] && !vd->vqs[i].broken && !guard_poisoned(&vd->mem->poison);
	}
	unmap_range(vd, start, last);
	for (uint32_t i = 0; i < vd->nvqs; i++)
		if (was[i] && vq_start(vd, &vd->vqs[i]) && !ret)
			ret = -EIO;
	return ret;
}

static int handle(struct vhu_vduse *vd, const struct vduse_dev_request *req,
		  struct vduse_dev_response *resp)
{
	switch (req->type) {
	case VDUSE_GET_VQ_STATE:
		return req_vq_state(vd, req, resp);
	case VDUSE_SET_STATUS:
		return req_set_status(vd, req->s.status);
	case VDUSE_UPDATE_IOTLB:
		return req_update_iotlb(vd, req->iova.start, req->iova.last);
	default:
		log_warn(&vd->lg, "VDUSE device %s: request type %u not known: failed", vd->name,
			 req->type);
		return -EOPNOTSUPP;
	}
}

/* "EPOLLERR": the kernel gave up on a request we did not answer in time and marked the device
 * broken; nothing will come any more, and no ioctl on it will work (vd->dead). */
static bool marked_broken(struct vhu_vduse *vd)
{
	struct pollfd p = { .fd = vd->fd, .events = POLLIN };

	if (poll(&p, 1, 0) != 1 || !(p.revents & POLLERR))
		return false;
	log_err(&vd->lg, "VDUSE device %s: the kernel marked it broken", vd->name);
	__atomic_store_n(&vd->dead, true, __ATOMIC_RELAXED);
	return true;
}

/*
 * The kernel no longer waits for our reply (ENOENT): the task that made the request got a fatal
 * signal and the kernel dropped it, treating it as failed (a timed-out request does the same,
 * and marks the device broken: -EIO then). What the request did here is undone where the
 * kernel's side did not follow: a SET_STATUS that started the queues (the kernel kept the old
 * status, so it would refuse every interrupt), a GET_VQ_STATE that stopped one. A reset needs
 * nothing (the kernel resets its side whatever the reply); neither does UPDATE_IOTLB (the
 * ranges map again on demand).
 */
static int withdrawn(struct vhu_vduse *vd, const struct vduse_dev_request *req, uint8_t old_status,
		     bool was_running, bool vq_was_started)
{
	if (marked_broken(vd))
		return -EIO;
	log_warn(&vd->lg, "VDUSE device %s: request %u (type %u) was withdrawn before our reply",
		 vd->name, req->request_id, req->type);
	if (req->type == VDUSE_SET_STATUS && req->s.status != 0) {
		if (!was_running && vd->running)
			stop_all(vd);
		vd->status = old_status;
		if (vd->ops.status_set)
			vd->ops.status_set(vd->dev, old_status);
	} else if (req->type == VDUSE_GET_VQ_STATE && vq_was_started) {
		struct vhu_virtq *vq = &vd->vqs[req->vq_state.index];
		if (!vq->started && vq_start(vd, vq))
			return -EIO;
	}
	return 0;
}

VHU_EXPORT int vhu_vduse_dispatch(struct vhu_vduse *vd)
{
	for (;;) {
		struct vduse_dev_request req;
		struct vduse_dev_response resp;
		ssize_t n = read(vd->fd, &req, sizeof(req));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			return marked_broken(vd) ? -EIO : 0;
		}
		if (n < 0) {
			int err = errno;
			log_err(&vd->lg, "VDUSE device %s: read: %s", vd->name, strerror(err));
			return -err;
		}
		if (n != sizeof(req)) {
			log_err(&vd->lg, "VDUSE device %s: a request of %zd bytes", vd->name, n);
			return -EPROTO;
		}
		memset(&resp, 0, sizeof(resp));
		resp.request_id = req.request_id;
		uint8_t old_status = vd->status;
		bool was_running = vd->running;
		bool vq_was_started = req.type == VDUSE_GET_VQ_STATE &&
				      req.vq_state.index < vd->nvqs &&
				      vd->vqs[req.vq_state.index].started;
		resp.result =
			handle(vd, &req, &resp) ? VDUSE_REQ_RESULT_FAILED : VDUSE_REQ_RESULT_OK;
		n = write(vd->fd, &resp, sizeof(resp));
		if (n < 0 && errno == ENOENT) {
			int r = withdrawn(vd, &req, old_status, was_running, vq_was_started);
			if (r)
				return r;
			continue;
		}
		if (n != sizeof(resp)) {
			int err = n < 0 ? errno : EIO;
			log_err(&vd->lg, "VDUSE device %s: reply to request %u: %s", vd->name,
				req.request_id, strerror(err));
			return -err;
		}
	}
}

/* ---- life ---- */

static int destroy_dev(struct vhu_vduse *vd, bool quiet_busy)
{
	char name[VDUSE_NAME_MAX] = { 0 };
	int ret;

	memcpy(name, vd->name, sizeof(name));
	if (!quiet_busy)
		return VD_IOCTL(vd, vd->ctl_fd, VDUSE_DESTROY_DEV, name);
	ret = ioctl(vd->ctl_fd, VDUSE_DESTROY_DEV, name);
	return ret < 0 ? -errno : 0;
}

static void vd_teardown(struct vhu_vduse *vd)
{
	int err;

	if (vd->vqs)
		stop_all(vd);
	close_fd(&vd->fd);
	/* "Make sure there are no more references to the char device" before VDUSE_DESTROY_DEV. */
	err = vd->created ? -destroy_dev(vd, true) : 0;
	if (err) {
		log_err(&vd->lg, "VDUSE_DESTROY_DEV on VDUSE device %s: %s%s", vd->name,
			strerror(err),
			err == EBUSY ? " (a vDPA device still uses it: `vdpa dev del` it; the next "
				       "vhu_vduse_new of this name destroys it then)"
				     : "");
	}
	close_fd(&vd->ctl_fd);
	pthread_rwlock_destroy(&vd->map_lock);
	free(vd->vqs);
	free(vd->mem);
	free(vd);
}

/* The device node appears when the kernel's device does (devtmpfs): waited for briefly. */
static int open_dev(struct vhu_vduse *vd)
{
	char path[VDUSE_NAME_MAX + 16];

	snprintf(path, sizeof(path), "/dev/vduse/%s", vd->name);
	for (int ms = 0;; ms += 10) {
		vd->fd = open(path, O_RDWR | O_CLOEXEC | O_NONBLOCK);
		if (vd->fd >= 0)
			return 0;
		if (errno != ENOENT || ms >= VD_OPEN_WAIT_MS)
			break;
		nanosleep(&(struct timespec){ .tv_nsec = 10000000 }, NULL);
	}
	log_err(&vd->lg, "open %s: %s", path, strerror(errno));
	return -errno;
}

/* The object, before any fd: arguments checked, ops copied, queues initialised. */
static int vd_alloc(struct vhu_vduse **out, const struct vhu_vduse_config *cfg,
		    const struct vhu_device_ops *ops, void *dev)
{
	struct vhu_vduse *vd;
	size_t nlen;

	if (!out || !cfg || !ops || !cfg->name || cfg->size < sizeof(*cfg) ||
	    ops->size < offsetof(struct vhu_device_ops, process_msg))
		return -EINVAL;
	nlen = strlen(cfg->name);
	if (nlen == 0 || nlen >= VDUSE_NAME_MAX || strchr(cfg->name, '/') || cfg->nvqs == 0 ||
	    cfg->nvqs > VD_MAX_VQS || cfg->config_size > 4096)
		return -EINVAL;
	vd = calloc(1, sizeof(*vd));
	if (!vd)
		return -ENOMEM;
	vd->mem = calloc(1, sizeof(*vd->mem));
	vd->vqs = calloc(cfg->nvqs, sizeof(*vd->vqs));
	vd->ctl_fd = vd->fd = -1;
	pthread_rwlock_init(&vd->map_lock, NULL);
	memcpy(&vd->ops, ops, MIN((size_t)ops->size, sizeof(*ops)));
	vd->dev = dev;
	vd->lg = (struct logger){ .fn = ops->log,
				  .opaque = ops->log_opaque,
				  .level = ops->log_level };
	memcpy(vd->name, cfg->name, nlen + 1);
	vd->nvqs = cfg->nvqs;
	vd->queue_size = cfg->queue_size ? cfg->queue_size : VD_DEFAULT_QSIZE;
	vd->config_size = cfg->config_size;
	/* "VIRTIO_F_ACCESS_PLATFORM ... must be set": VDUSE refuses a device without it. */
	vd->features = ops->features | (1ULL << VIRTIO_F_ACCESS_PLATFORM);
	if (!vd->mem || !vd->vqs) { /* nothing to stop or close yet */
		pthread_rwlock_destroy(&vd->map_lock);
		free(vd->vqs);
		free(vd->mem);
		free(vd);
		return -ENOMEM;
	}
	mem_init(vd->mem);
	for (uint32_t i = 0; i < vd->nvqs; i++)
		virtq_init(&vd->vqs[i], i, vd->mem, &vd->lg);
	*out = vd;
	return 0;
}

int vduse_new_on_fd(struct vhu_vduse **out, const struct vhu_vduse_config *cfg,
		    const struct vhu_device_ops *ops, void *dev, int fd)
{
	int ret = vd_alloc(out, cfg, ops, dev);

	if (ret == 0)
		(*out)->fd = fd;
	return ret;
}

VHU_EXPORT int vhu_vduse_new(struct vhu_vduse **out, const struct vhu_vduse_config *cfg,
			     const struct vhu_device_ops *ops, void *dev)
{
	struct vduse_dev_config *c = NULL;
	uint64_t api = VDUSE_API_VERSION;
	struct vhu_vduse *vd;
	int ret;

	ret = vd_alloc(&vd, cfg, ops, dev);
	if (ret)
		return ret;
	vd->ctl_fd = open(VD_CONTROL, O_RDWR | O_CLOEXEC);
	if (vd->ctl_fd < 0) {
		int err = errno;
		log_err(&vd->lg, "open %s: %s%s", VD_CONTROL, strerror(err),
			err == ENOENT ? " (modprobe vduse)" : "");
		ret = err == ENOENT ? -ENODEV : -err;
		goto err;
	}
	ret = VD_IOCTL(vd, vd->ctl_fd, VDUSE_SET_API_VERSION, &api);
	if (ret < 0)
		goto err;

	c = calloc(1, sizeof(*c) + vd->config_size);
	if (!c) {
		ret = -ENOMEM;
		goto err;
	}
	memcpy(c->name, vd->name, sizeof(c->name));
	c->vendor_id = cfg->vendor_id;
	c->device_id = cfg->device_id;
	c->features = vd->features;
	c->vq_num = vd->nvqs;
	c->vq_align = (uint32_t)sysconf(_SC_PAGESIZE);
	c->config_size = vd->config_size;
	if (vd->config_size && vd->ops.get_config) {
		ret = vd->ops.get_config(dev, c->config, 0, vd->config_size);
		if (ret < 0) {
			log_err(&vd->lg, "VDUSE device %s: the device's config space: %s", vd->name,
				strerror(-ret));
			goto err;
		}
	}
	ret = ioctl(vd->ctl_fd, VDUSE_CREATE_DEV, c);
	if (ret < 0 && errno == EEXIST) {
		/* Left by a process that ended: destroyed when nothing uses it any more. */
		if (destroy_dev(vd, true) == 0) {
			log_warn(&vd->lg,
				 "VDUSE device %s existed (left by a process that ended): "
				 "destroyed and created anew",
				 vd->name);
			ret = ioctl(vd->ctl_fd, VDUSE_CREATE_DEV, c);
		} else {
			log_err(&vd->lg,
				"VDUSE_CREATE_DEV on VDUSE device %s: it exists and is in use "
				"(a vDPA device on it: `vdpa dev del %s`; or another process "
				"serves it)",
				vd->name, vd->name);
			ret = -EEXIST;
			goto err;
		}
	}
	if (ret < 0) {
		ret = -errno;
		log_err(&vd->lg, "VDUSE_CREATE_DEV on VDUSE device %s: %s%s", vd->name,
			strerror(-ret),
			ret == -EINVAL ? " (device id, features or config refused by the kernel)"
				       : "");
		goto err;
	}
	vd->created = true;
	free(c);
	c = NULL;
	ret = open_dev(vd);
	if (ret)
		goto err;
	/* "Make sure all virtqueues have been configured before the device is attached to vDPA
	 * bus." */
	for (uint32_t i = 0; i < vd->nvqs; i++) {
		struct vduse_vq_config q = { .index = i, .max_size = vd->queue_size };
		ret = VD_IOCTL(vd, vd->fd, VDUSE_VQ_SETUP, &q);
		if (ret < 0)
			goto err;
	}
	*out = vd;
	return 0;
err:
	free(c);
	vd_teardown(vd);
	return ret;
}

VHU_EXPORT void vhu_vduse_free(struct vhu_vduse *vd)
{
	if (vd)
		vd_teardown(vd);
}

VHU_EXPORT int vhu_vduse_fd(const struct vhu_vduse *vd)
{
	return vd->fd;
}

VHU_EXPORT uint64_t vhu_vduse_features(const struct vhu_vduse *vd)
{
	return vd->negotiated;
}

VHU_EXPORT struct vhu_virtq *vhu_vduse_virtq(struct vhu_vduse *vd, unsigned index)
{
	return index < vd->nvqs ? &vd->vqs[index] : NULL;
}

VHU_EXPORT int vhu_vduse_config_changed(struct vhu_vduse *vd)
{
	struct vduse_config_data *c;
	int ret;

	if (!vd->ops.get_config || !vd->config_size)
		return -EOPNOTSUPP;
	c = calloc(1, sizeof(*c) + vd->config_size);
	if (!c)
		return -ENOMEM;
	c->offset = 0;
	c->length = vd->config_size;
	ret = vd->ops.get_config(vd->dev, c->buffer, 0, vd->config_size);
	if (ret == 0)
		ret = VD_IOCTL(vd, vd->fd, VDUSE_DEV_SET_CONFIG, c);
	free(c);
	if (ret < 0)
		return ret;
	if (!(vd->status & VIRTIO_CONFIG_S_DRIVER_OK))
		return -EINVAL;
	ret = VD_IOCTL(vd, vd->fd, VDUSE_DEV_INJECT_CONFIG_IRQ, NULL);
	return ret < 0 ? ret : 0;
}
