/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target on the message dispatcher. The input is a sequence of messages: each is a
 * 12-byte header whose size field is clamped to the bytes that follow, with its payload. They
 * are written to a socketpair one at a time and vhu_backend_dispatch() handles each; messages
 * that need fds get memfd/eventfd fds, so SET_MEM_TABLE, KICK and friends reach their
 * handlers (SET_INFLIGHT_FD, SET_LOG_BASE with a 64 KiB log, and REM_MEM_REG included: the device
 * offers INFLIGHT_SHMFD, and the inflight buffer starts zeroed, so a session that stops and
 * restarts a ring restores what it recorded). After the first error the backend is detached and
 * re-attached, as a daemon does. The device pops whatever the rings hold after every message, so
 * hostile rings are walked. The device offers ACCESS_PLATFORM and BACKEND_REQ: SET_BACKEND_REQ_FD
 * gets a socket (whose other end is drained, so IOTLB misses go somewhere), and IOTLB_MSG updates
 * and invalidations reach the IOTLB while the rings translate through it (inputs of a length
 * 3 mod 4 with VHU_DEVICE_F_IOTLB_PER_BUFFER).
 */
#include <errno.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <vhu/vhu.h>

#define NVQ 4

static struct vhu_virtq *live[NVQ];

static int q_start(void *dev, struct vhu_virtq *vq)
{
	(void)dev;
	live[vhu_virtq_index(vq)] = vq;
	return 0;
}

static void q_stop(void *dev, struct vhu_virtq *vq)
{
	(void)dev;
	live[vhu_virtq_index(vq)] = NULL;
}

static int get_config(void *dev, void *buf, uint32_t off, uint32_t len)
{
	(void)dev;
	if (off + len > 32)
		return -1;
	memset(buf, 0x5a, len);
	return 0;
}

static const struct vhu_device_ops ops = {
	.size = sizeof(struct vhu_device_ops),
	.features = (1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_F_RING_PACKED) |
		    (1ULL << VIRTIO_RING_F_EVENT_IDX) | (1ULL << VIRTIO_RING_F_INDIRECT_DESC) |
		    (1ULL << VIRTIO_F_ACCESS_PLATFORM),
	.protocol_features = (1ULL << VHU_PROTO_F_CONFIG) | (1ULL << VHU_PROTO_F_INFLIGHT_SHMFD) |
			     (1ULL << VHU_PROTO_F_BACKEND_REQ),
	.get_config = get_config,
	.queue_start = q_start,
	.queue_stop = q_stop,
};

/* Inputs whose length is 3 mod 4: the same device with VHU_DEVICE_F_IOTLB_PER_BUFFER (every pop
 * forgets the mappings it used). */
static struct vhu_device_ops ops_per_buffer;

static int memfd = -1, inflight_fd = -1, log_fd = -1;

static void drain_rings(void)
{
	static struct vhu_elem e;
	for (int i = 0; i < NVQ; i++) {
		if (!live[i])
			continue;
		for (int n = 0; n < 8; n++) {
			int r = vhu_virtq_pop(live[i], &e);
			if (r == 0 || r == -EIO)
				break;
			vhu_virtq_push(live[i], &e, e.in_len);
		}
		vhu_virtq_flush(live[i]);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vhu_backend *be;
	int sp[2];

	if (memfd < 0) {
		memfd = memfd_create("fuzz-mem", MFD_CLOEXEC);
		inflight_fd = memfd_create("fuzz-inflight", MFD_CLOEXEC);
		log_fd = memfd_create("fuzz-log", MFD_CLOEXEC);
		if (ftruncate(memfd, 1 << 20) || ftruncate(log_fd, 1 << 16))
			return 0;
	}
	/* A fresh (zeroed) inflight buffer for every input. */
	if (ftruncate(inflight_fd, 0) || ftruncate(inflight_fd, 1 << 20))
		return 0;
	/* The input is also the front-end's memory: rings the messages point at hold fuzzed
	 * bytes, so the ring walkers see hostile descriptors. */
	if (pwrite(memfd, data, size < (1 << 16) ? size : (1 << 16), 0) < 0)
		return 0;
	ops_per_buffer = ops;
	ops_per_buffer.flags = VHU_DEVICE_F_IOTLB_PER_BUFFER;
	if (vhu_backend_new(&be, size % 4 == 3 ? &ops_per_buffer : &ops, NULL, NVQ))
		return 0;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp)) {
		vhu_backend_free(be);
		return 0;
	}
	vhu_backend_attach(be, sp[1]);
	int chan = -1; /* our end of the back-end channel */
	while (size >= 12) {
		struct vhu_hdr h;
		memcpy(&h, data, 12);
		size_t body = h.size < size - 12 ? h.size : size - 12;
		/* Give the message the fds its request usually carries. */
		int fds[2], nfds = 0;
		switch (h.request) {
		case VHU_REQ_SET_MEM_TABLE:
		case VHU_REQ_ADD_MEM_REG:
		case VHU_REQ_REM_MEM_REG:
			fds[nfds++] = memfd;
			break;
		case VHU_REQ_SET_INFLIGHT_FD:
			fds[nfds++] = inflight_fd;
			break;
		case VHU_REQ_SET_LOG_BASE:
			fds[nfds++] = log_fd;
			break;
		case VHU_REQ_SET_LOG_FD:
		case VHU_REQ_SET_VRING_KICK:
		case VHU_REQ_SET_VRING_CALL:
		case VHU_REQ_SET_VRING_ERR:
			fds[nfds++] = eventfd(0, EFD_CLOEXEC);
			break;
		case VHU_REQ_SET_BACKEND_REQ_FD: {
			int cp[2];
			if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, cp))
				break;
			if (chan >= 0)
				close(chan);
			chan = cp[0];
			fds[nfds++] = cp[1];
			break;
		}
		}
		char cbuf[CMSG_SPACE(sizeof(fds))];
		struct iovec iov[2] = { { (void *)data, 12 }, { (void *)(data + 12), body } };
		struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
		if (nfds) {
			memset(cbuf, 0, sizeof(cbuf));
			mh.msg_control = cbuf;
			mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
			struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
			memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
		}
		ssize_t sent = sendmsg(sp[0], &mh, MSG_NOSIGNAL);
		if (nfds && fds[0] != memfd && fds[0] != inflight_fd && fds[0] != log_fd)
			close(fds[0]);
		if (sent < 0)
			break;
		/* A payload shorter than its header says: end of input, the dispatcher sees EOF. */
		if (body < h.size)
			shutdown(sp[0], SHUT_WR);
		int r = vhu_backend_dispatch(be);
		/* Drain any reply so the socket never fills. */
		char junk[4096];
		while (recv(sp[0], junk, sizeof(junk), MSG_DONTWAIT) > 0)
			;
		while (chan >= 0 && recv(chan, junk, sizeof(junk), MSG_DONTWAIT) > 0)
			;
		if (r) {
			vhu_backend_detach(be);
			memset(live, 0, sizeof(live));
			break;
		}
		drain_rings();
		data += 12 + body;
		size -= 12 + body;
	}
	vhu_backend_free(be);
	memset(live, 0, sizeof(live));
	close(sp[0]);
	if (chan >= 0)
		close(chan);
	return 0;
}
