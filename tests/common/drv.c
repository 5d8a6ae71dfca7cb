/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <vhu/backend.h>

#include "drv.h"

#define RING_STRIDE 0x10000ull
#define BUF_AREA    0x100000ull
#define BUF_STRIDE  0x40000ull
#define SLOT	    2048u

static uint8_t id_ndesc[DRV_NQ][DRV_QSIZE];

static void msleep(int ms)
{
	nanosleep(&(struct timespec){ .tv_nsec = ms * 1000000L }, NULL);
}

int drv_open_fd(struct drv *d, int fd)
{
	memset(d, 0, sizeof(*d));
	d->fd = fd;
	d->nq = 2;
	d->memfd = memfd_create("drv-mem", MFD_CLOEXEC);
	if (d->memfd < 0 || ftruncate(d->memfd, DRV_MEM_SIZE) < 0)
		return -errno;
	d->mem = mmap(NULL, DRV_MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, d->memfd, 0);
	if (d->mem == MAP_FAILED)
		return -errno;
	for (unsigned q = 0; q < DRV_NQ; q++) {
		struct drv_ring *r = &d->r[q];
		r->desc_off = q * RING_STRIDE;
		r->avail_off = r->desc_off + 0x1000;
		r->used_off = r->desc_off + 0x2000;
		r->buf_off = BUF_AREA + q * BUF_STRIDE;
		r->kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		r->call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		r->desc = (void *)(d->mem + r->desc_off);
		r->avail = (void *)(d->mem + r->avail_off);
		r->used = (void *)(d->mem + r->used_off);
		r->pdesc = (void *)(d->mem + r->desc_off);
		r->drv_ev = (void *)(d->mem + r->avail_off);
		r->dev_ev = (void *)(d->mem + r->used_off);
	}
	return 0;
}

int drv_open(struct drv *d, const char *path)
{
	int fd = vhu_connect(path, 5000);

	if (fd < 0)
		return fd;
	return drv_open_fd(d, fd);
}

void drv_close(struct drv *d)
{
	if (d->fd >= 0)
		close(d->fd);
	d->fd = -1;
	for (unsigned q = 0; q < DRV_NQ; q++) {
		close(d->r[q].kick);
		close(d->r[q].call);
	}
	if (d->iommu && d->chan > 0)
		close(d->chan);
	if (d->mem && d->mem != MAP_FAILED)
		munmap(d->mem, DRV_MEM_SIZE);
	if (d->memfd >= 0)
		close(d->memfd);
	d->mem = NULL;
}

int drv_send(struct drv *d, uint32_t req, uint32_t flags, const void *payload, uint32_t size,
	     const int *fds, unsigned nfds)
{
	struct vhu_hdr h = { .request = req, .flags = flags, .size = size };
	char cbuf[CMSG_SPACE(sizeof(int) * 16)];
	struct iovec iov[2] = { { &h, sizeof(h) }, { (void *)payload, size } };
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = size ? 2 : 1 };

	if (nfds) {
		memset(cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	ssize_t n = sendmsg(d->fd, &mh, MSG_NOSIGNAL);
	if (n < 0)
		return -errno;
	return n == (ssize_t)(sizeof(h) + size) ? 0 : -EIO;
}

int drv_recv(struct drv *d, struct vhu_hdr *h, void *payload, uint32_t max, int timeout_ms)
{
	struct pollfd p = { .fd = d->fd, .events = POLLIN };
	ssize_t n;

	if (poll(&p, 1, timeout_ms) <= 0)
		return -ETIMEDOUT;
	n = recv(d->fd, h, sizeof(*h), MSG_WAITALL);
	if (n == 0)
		return -ECONNRESET;
	if (n != sizeof(*h))
		return n < 0 ? -errno : -EPROTO;
	if (h->size > max)
		return -EMSGSIZE;
	if (h->size && recv(d->fd, payload, h->size, MSG_WAITALL) != (ssize_t)h->size)
		return -EPROTO;
	return (int)h->size;
}

int64_t drv_call_ack(struct drv *d, uint32_t req, const void *payload, uint32_t size,
		     const int *fds, unsigned nfds)
{
	struct vhu_hdr h;
	uint64_t v = 0;
	int ret = drv_send(d, req, VHU_VERSION | VHU_FLAG_NEED_REPLY, payload, size, fds, nfds);

	if (ret)
		return ret;
	ret = drv_recv(d, &h, &v, sizeof(v), 3000);
	if (ret < 0)
		return ret;
	if (h.request != req || !(h.flags & VHU_FLAG_REPLY) || ret != 8)
		return -EPROTO;
	return (int64_t)v;
}

int64_t drv_iotlb(struct drv *d, uint8_t type, uint64_t iova, uint64_t size, uint64_t uaddr_off,
		  uint8_t perm)
{
	struct vhu_iotlb_msg m = { .iova = iova,
				   .size = size,
				   .uaddr = (uint64_t)(uintptr_t)d->mem + uaddr_off,
				   .perm = perm,
				   .type = type };
	uint64_t v;
	struct vhu_hdr h;
	int ret = drv_send(d, VHU_REQ_IOTLB_MSG, VHU_VERSION | VHU_FLAG_NEED_REPLY, &m, sizeof(m),
			   NULL, 0);

	if (ret)
		return ret;
	ret = drv_recv(d, &h, &v, sizeof(v), 3000);
	if (ret < 0)
		return ret;
	return (h.request == VHU_REQ_IOTLB_MSG && ret == 8) ? (int64_t)v : -EPROTO;
}

int drv_get_u64(struct drv *d, uint32_t req, uint64_t *v)
{
	struct vhu_hdr h;
	int ret = drv_send(d, req, VHU_VERSION, NULL, 0, NULL, 0);

	if (ret)
		return ret;
	ret = drv_recv(d, &h, v, sizeof(*v), 3000);
	if (ret < 0)
		return ret;
	return (h.request == req && ret == 8) ? 0 : -EPROTO;
}

int drv_set_mem(struct drv *d)
{
	struct vhu_mem_table t = { .nregions = 1 };

	t.regions[0] = (struct vhu_mem_region){
		.guest_phys_addr = DRV_GPA_BASE,
		.memory_size = DRV_MEM_SIZE,
		.userspace_addr = (uint64_t)(uintptr_t)d->mem,
		.mmap_offset = 0,
	};
	int64_t r =
		drv_call_ack(d, VHU_REQ_SET_MEM_TABLE, &t, 8 + sizeof(t.regions[0]), &d->memfd, 1);
	return r == 0 ? 0 : (r < 0 ? (int)r : -EIO);
}

static int send_state(struct drv *d, uint32_t req, uint32_t idx, uint32_t num)
{
	struct vhu_vring_state s = { idx, num };
	int64_t r = drv_call_ack(d, req, &s, sizeof(s), NULL, 0);
	return r == 0 ? 0 : -EIO;
}

int drv_start(struct drv *d, bool packed, uint64_t want)
{
	uint64_t f, pf;
	int ret;

	d->packed = packed;
	if ((ret = drv_get_u64(d, VHU_REQ_GET_FEATURES, &f)))
		return ret;
	/* ACCESS_PLATFORM (33) only with d->iommu: addresses are then IOVAs. */
	d->features = (f & want & ~(1ULL << 34) & ~(1ULL << VHU_F_LOG_ALL) &
		       ~(d->iommu ? 0 : 1ULL << 33)) |
		      (1ULL << VHU_F_PROTOCOL_FEATURES);
	if (packed)
		d->features |= f & (1ULL << 34);
	if ((ret = drv_send(d, VHU_REQ_SET_OWNER, VHU_VERSION, NULL, 0, NULL, 0)))
		return ret;
	if ((ret = drv_get_u64(d, VHU_REQ_GET_PROTOCOL_FEATURES, &pf)))
		return ret;
	d->protocol_features = pf & ((1ULL << VHU_PROTO_F_REPLY_ACK) | (1ULL << VHU_PROTO_F_MQ) |
				     (1ULL << VHU_PROTO_F_CONFIG) | (1ULL << VHU_PROTO_F_STATUS) |
				     (1ULL << VHU_PROTO_F_RESET_DEVICE) |
				     (1ULL << VHU_PROTO_F_CONFIGURE_MEM_SLOTS) |
				     (d->iommu ? 1ULL << VHU_PROTO_F_BACKEND_REQ : 0));
	if (!(pf & (1ULL << VHU_PROTO_F_REPLY_ACK)))
		return -ENOTSUP;
	if ((ret = drv_send(d, VHU_REQ_SET_PROTOCOL_FEATURES, VHU_VERSION, &d->protocol_features, 8,
			    NULL, 0)))
		return ret;
	/* iommu: the back-end channel (IOTLB misses come on d->chan) before anything can miss. */
	if (d->iommu) {
		int sv[2];
		if (!(f & (1ULL << 33)) || !(pf & (1ULL << VHU_PROTO_F_BACKEND_REQ)))
			return -ENOTSUP;
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
			return -errno;
		ret = (int)drv_call_ack(d, VHU_REQ_SET_BACKEND_REQ_FD, NULL, 0, &sv[1], 1);
		close(sv[1]);
		if (ret) {
			close(sv[0]);
			return -EIO;
		}
		d->chan = sv[0];
	}
	if (drv_call_ack(d, VHU_REQ_SET_FEATURES, &d->features, 8, NULL, 0) != 0)
		return -EIO;
	if ((ret = drv_set_mem(d)))
		return ret;
	for (unsigned q = 0; q < d->nq; q++) {
		struct drv_ring *r = &d->r[q];
		struct vhu_vring_addr a = {
			.index = q,
			.desc = (uint64_t)(uintptr_t)(d->mem + r->desc_off),
			.avail = (uint64_t)(uintptr_t)(d->mem + r->avail_off),
			.used = (uint64_t)(uintptr_t)(d->mem + r->used_off),
		};
		if (d->iommu) /* IOVAs: the guest-physical addresses (drv_iotlb_map_all) */
			a = (struct vhu_vring_addr){ .index = q,
						     .desc = drv_gpa(r->desc_off),
						     .avail = drv_gpa(r->avail_off),
						     .used = drv_gpa(r->used_off) };
		r->avail_wrap = r->used_wrap = true;
		if ((ret = send_state(d, VHU_REQ_SET_VRING_NUM, q, DRV_QSIZE)))
			return ret;
		if ((ret = send_state(d, VHU_REQ_SET_VRING_BASE, q,
				      packed ? (1u << 15) | (1u << 31) : 0)))
			return ret;
		if (drv_call_ack(d, VHU_REQ_SET_VRING_ADDR, &a, sizeof(a), NULL, 0) != 0)
			return -EIO;
		uint64_t u = q;
		if (drv_call_ack(d, VHU_REQ_SET_VRING_CALL, &u, 8, &r->call, 1) != 0)
			return -EIO;
		if (drv_call_ack(d, VHU_REQ_SET_VRING_KICK, &u, 8, &r->kick, 1) != 0)
			return -EIO;
		if ((ret = send_state(d, VHU_REQ_SET_VRING_ENABLE, q, 1)))
			return ret;
	}
	return 0;
}

uint8_t *drv_buf(struct drv *d, unsigned q, unsigned slot)
{
	return d->mem + d->r[q].buf_off + (uint64_t)slot * SLOT;
}

uint64_t drv_buf_gpa(struct drv *d, unsigned q, unsigned slot)
{
	return drv_gpa(d->r[q].buf_off + (uint64_t)slot * SLOT);
}

void drv_kick(struct drv *d, unsigned q)
{
	eventfd_write(d->r[q].kick, 1);
}

int drv_add_raw(struct drv *d, unsigned q, const uint64_t *addr, const uint32_t *len,
		const uint16_t *flags, unsigned n)
{
	struct drv_ring *r = &d->r[q];

	if (!d->packed) {
		/* Each buffer gets 4 descriptors starting at (avail_idx * 4) % size. */
		uint16_t head = (uint16_t)((r->avail_idx * 4u) % DRV_QSIZE);
		for (unsigned i = 0; i < n; i++) {
			struct vring_desc *x = &r->desc[head + i];
			x->addr = addr[i];
			x->len = len[i];
			x->flags = (uint16_t)(flags[i] | (i + 1 < n ? VRING_DESC_F_NEXT : 0));
			x->next = (uint16_t)(head + i + 1);
		}
		r->avail->ring[r->avail_idx % DRV_QSIZE] = head;
		__atomic_store_n(&r->avail->idx, (uint16_t)(r->avail_idx + 1), __ATOMIC_RELEASE);
		r->avail_idx++;
		drv_kick(d, q);
		return head;
	}
	uint16_t first = r->avail_idx, id = first, first_flags = 0;
	for (unsigned i = 0; i < n; i++) {
		struct vring_packed_desc *x = &r->pdesc[r->avail_idx];
		uint16_t f = (uint16_t)(flags[i] | (i + 1 < n ? VRING_DESC_F_NEXT : 0));
		f |= r->avail_wrap ? (1u << VRING_PACKED_DESC_F_AVAIL)
				   : (1u << VRING_PACKED_DESC_F_USED);
		x->addr = addr[i];
		x->len = len[i];
		x->id = id;
		if (i == 0)
			first_flags = f;
		else
			x->flags = f;
		if (++r->avail_idx == DRV_QSIZE) {
			r->avail_idx = 0;
			r->avail_wrap = !r->avail_wrap;
		}
	}
	id_ndesc[q][id] = (uint8_t)n;
	__atomic_store_n(&r->pdesc[first].flags, first_flags, __ATOMIC_RELEASE);
	drv_kick(d, q);
	return id;
}

int drv_add_buf(struct drv *d, unsigned q, unsigned slot, uint32_t len, bool writable)
{
	uint64_t a = drv_buf_gpa(d, q, slot);
	uint16_t f = writable ? VRING_DESC_F_WRITE : 0;
	return drv_add_raw(d, q, &a, &len, &f, 1);
}

int drv_get_used(struct drv *d, unsigned q, uint32_t *id, uint32_t *len, int timeout_ms)
{
	struct drv_ring *r = &d->r[q];

	for (int t = 0; t <= timeout_ms; t++) {
		if (!d->packed) {
			uint16_t u = __atomic_load_n(&r->used->idx, __ATOMIC_ACQUIRE);
			if (u != r->used_seen) {
				struct vring_used_elem *e =
					&r->used->ring[r->used_seen % DRV_QSIZE];
				*id = e->id;
				*len = e->len;
				r->used_seen++;
				return 1;
			}
		} else {
			struct vring_packed_desc *x = &r->pdesc[r->used_seen];
			uint16_t f = __atomic_load_n(&x->flags, __ATOMIC_ACQUIRE);
			bool avail = f & (1u << VRING_PACKED_DESC_F_AVAIL);
			bool used = f & (1u << VRING_PACKED_DESC_F_USED);
			if (avail == used && used == r->used_wrap) {
				*id = x->id;
				*len = x->len;
				unsigned n =
					*id < DRV_QSIZE && id_ndesc[q][*id] ? id_ndesc[q][*id] : 1;
				r->used_seen = (uint16_t)(r->used_seen + n);
				if (r->used_seen >= DRV_QSIZE) {
					r->used_seen -= DRV_QSIZE;
					r->used_wrap = !r->used_wrap;
				}
				return 1;
			}
		}
		msleep(1);
	}
	return 0;
}
