/* SPDX-License-Identifier: MIT */
/*
 * The vhost-user transport of the front-end: requests over an AF_UNIX socket (msg.c, sock.c),
 * with every reply checked (type, reply bit, size, no unexpected fds) and every wait bounded.
 * NEED_REPLY is set on every request without a reply of its own once REPLY_ACK is
 * negotiated, which makes each step synchronous (QEMU does it for SET_MEM_TABLE, the vring
 * fds, SET_VRING_ENABLE and SET_CONFIG; the spec allows it on any request).
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fe_ops.h"
#include "msg.h"
#include "sock.h"
#include "util.h"

struct fe_conn {
	int fd;
	int lfd; /* server mode: kept listening for the back-end to come back */
	char path[108];
	bool server;
	uint64_t features; /* as last set: VHOST_USER_F_PROTOCOL_FEATURES gates ring enable */
	uint64_t protocol_features;
	const struct logger *lg;
};

/* Client: connects, retrying for up to timeout_ms. Server: accepts within timeout_ms. */
static int user_attach(struct fe_conn *c, int timeout_ms)
{
	int fd;

	if (c->server) {
		sock_set_timeout(c->lfd, timeout_ms);
		log_info(c->lg, "waiting for a back-end on %s", c->path);
		fd = sock_accept(c->lfd);
		if (fd == -EAGAIN || fd == -EWOULDBLOCK)
			fd = -ETIMEDOUT;
	} else {
		fd = sock_connect(c->path, timeout_ms);
	}
	if (fd < 0) {
		log_err(c->lg, "%s %s: %s", c->server ? "accept on" : "connect to", c->path,
			strerror(-fd));
		return fd;
	}
	sock_set_timeout(fd, timeout_ms);
	c->fd = fd;
	c->features = c->protocol_features = 0;
	return 0;
}

static int user_open(struct fe_conn **out, const struct fe_open_args *a)
{
	struct fe_conn *c = calloc(1, sizeof(*c));
	const char *path = a->path;
	bool server = a->server;
	int ret;

	if (!c)
		return -ENOMEM;
	*c = (struct fe_conn){ .fd = -1, .lfd = -1, .server = server, .lg = a->lg };
	if (strlen(path) >= sizeof(c->path)) {
		free(c);
		return -ENAMETOOLONG;
	}
	strcpy(c->path, path);
	if (server) {
		c->lfd = sock_listen(path, 0600);
		if (c->lfd < 0) {
			ret = c->lfd;
			free(c);
			return ret;
		}
	}
	ret = user_attach(c, a->timeout_ms);
	if (ret) {
		if (server) {
			close(c->lfd);
			unlink(path);
		}
		free(c);
		return ret;
	}
	*out = c;
	return 0;
}

static void user_close(struct fe_conn *c)
{
	if (!c)
		return;
	close_fd(&c->fd);
	if (c->lfd >= 0) {
		close_fd(&c->lfd);
		unlink(c->path);
	}
	free(c);
}

static int user_reconnect(struct fe_conn *c, int timeout_ms)
{
	close_fd(&c->fd);
	return user_attach(c, timeout_ms);
}

/* The back-end never sends on this socket unasked: readable or hung up means it is gone. */
static bool user_alive(struct fe_conn *c)
{
	struct pollfd p = { c->fd, POLLIN, 0 };

	return c->fd >= 0 && poll(&p, 1, 0) == 0;
}

static bool has_reply_ack(const struct fe_conn *c)
{
	return has_bit(c->protocol_features, VHU_PROTO_F_REPLY_ACK);
}

/* Receives the reply to `req` into m: checked type, reply bit, size and fds (none, or
 * exactly nfds when the request's reply carries some). */
static int recv_reply_fds(struct fe_conn *c, uint32_t req, struct msg *m, uint32_t min_size,
			  uint32_t max_size, unsigned nfds);

static int recv_reply(struct fe_conn *c, uint32_t req, struct msg *m, uint32_t min_size,
		      uint32_t max_size)
{
	return recv_reply_fds(c, req, m, min_size, max_size, 0);
}

static int recv_reply_fds(struct fe_conn *c, uint32_t req, struct msg *m, uint32_t min_size,
			  uint32_t max_size, unsigned nfds)
{
	int ret = sock_recv(c->fd, m, true);

	if (ret == -EAGAIN || ret == -EWOULDBLOCK)
		ret = -ETIMEDOUT;
	if (ret) {
		log_err(c->lg, "no reply to %s: %s", vhu_request_name(req), strerror(-ret));
		return ret;
	}
	if (m->nfds != nfds) {
		log_err(c->lg, "reply to %s carries %u fds, expected %u", vhu_request_name(req),
			m->nfds, nfds);
		msg_close_fds(m);
		return -EPROTO;
	}
	if (m->hdr.request != req) {
		msg_close_fds(m);
		log_err(c->lg, "expected a reply to %s, got %s", vhu_request_name(req),
			vhu_request_name(m->hdr.request));
		return -EPROTO;
	}
	if (m->hdr.size < min_size || m->hdr.size > max_size) {
		log_err(c->lg, "reply to %s has size %u, expected %u..%u", vhu_request_name(req),
			m->hdr.size, min_size, max_size);
		msg_close_fds(m);
		return -EPROTO;
	}
	return 0;
}

/* Sends a request with payload p (size bytes) and fds; waits for the ack when the request
 * has no reply of its own and REPLY_ACK is negotiated. */
static int send_req(struct fe_conn *c, uint32_t req, const void *p, uint32_t size, const int *fds,
		    unsigned nfds)
{
	struct msg m;
	bool ack = has_reply_ack(c);
	int ret;

	msg_init(&m, req, ack ? VHU_FLAG_NEED_REPLY : 0, size);
	if (size)
		memcpy(m.p.raw, p, size);
	ret = sock_send(c->fd, &m, fds, nfds);
	if (ret) {
		log_err(c->lg, "sending %s: %s", vhu_request_name(req), strerror(-ret));
		return ret;
	}
	log_debug(c->lg, "-> %s (size %u, %u fds)", vhu_request_name(req), size, nfds);
	if (!ack)
		return 0;
	ret = recv_reply(c, req, &m, 8, 8);
	if (ret)
		return ret;
	if (m.p.u64) {
		log_err(c->lg, "back-end refused %s (ack %llu)", vhu_request_name(req),
			(unsigned long long)m.p.u64);
		return -EREMOTEIO;
	}
	return 0;
}

/* A request whose reply carries data: sends, then receives size..max bytes into m. */
static int call(struct fe_conn *c, uint32_t req, const void *p, uint32_t size, struct msg *m,
		uint32_t min_size, uint32_t max_size)
{
	int ret;

	msg_init(m, req, 0, size);
	if (size)
		memcpy(m->p.raw, p, size);
	ret = sock_send(c->fd, m, NULL, 0);
	if (ret) {
		log_err(c->lg, "sending %s: %s", vhu_request_name(req), strerror(-ret));
		return ret;
	}
	log_debug(c->lg, "-> %s (size %u)", vhu_request_name(req), size);
	return recv_reply(c, req, m, min_size, max_size);
}

/* "VHOST_USER_IOTLB_MSG": "The back-end has to acknowledge the request with sending zero as
 * u64 payload for success, non-zero otherwise." Sent with NEED_REPLY, as QEMU does: DPDK 22.11's
 * vhost library answers only then. */
static int user_iotlb_msg(struct fe_conn *c, const struct vhu_iotlb_msg *im)
{
	struct msg m;
	int ret;

	msg_init(&m, VHU_REQ_IOTLB_MSG, VHU_FLAG_NEED_REPLY, sizeof(*im));
	memcpy(m.p.raw, im, sizeof(*im));
	ret = sock_send(c->fd, &m, NULL, 0);
	if (ret) {
		log_err(c->lg, "sending IOTLB_MSG: %s", strerror(-ret));
		return ret;
	}
	ret = recv_reply(c, VHU_REQ_IOTLB_MSG, &m, 8, 8);

	if (!ret && m.p.u64) {
		log_err(c->lg, "IOTLB_MSG (type %u, iova 0x%llx) failed: %llu", im->type,
			(unsigned long long)im->iova, (unsigned long long)m.p.u64);
		ret = -EIO;
	}
	return ret;
}

static int get_u64(struct fe_conn *c, uint32_t req, uint64_t *v)
{
	struct msg m;
	int ret = call(c, req, NULL, 0, &m, 8, 8);

	if (!ret)
		*v = m.p.u64;
	return ret;
}

static int user_set_owner(struct fe_conn *c)
{
	return send_req(c, VHU_REQ_SET_OWNER, NULL, 0, NULL, 0);
}

static int user_get_features(struct fe_conn *c, uint64_t *f)
{
	return get_u64(c, VHU_REQ_GET_FEATURES, f);
}

static int user_set_features(struct fe_conn *c, uint64_t f)
{
	int ret = send_req(c, VHU_REQ_SET_FEATURES, &f, 8, NULL, 0);

	if (!ret)
		c->features = f;
	return ret;
}

static int user_get_protocol_features(struct fe_conn *c, uint64_t *f)
{
	return get_u64(c, VHU_REQ_GET_PROTOCOL_FEATURES, f);
}

static int user_set_protocol_features(struct fe_conn *c, uint64_t f)
{
	/* Not acked: REPLY_ACK is not in force until this message is handled. */
	struct msg m;
	int ret;

	msg_init(&m, VHU_REQ_SET_PROTOCOL_FEATURES, 0, 8);
	m.p.u64 = f;
	ret = sock_send(c->fd, &m, NULL, 0);
	if (!ret)
		c->protocol_features = f;
	return ret;
}

/* GET_QUEUE_NUM and GET_MAX_MEM_SLOTS exist only with MQ and CONFIGURE_MEM_SLOTS: 0 without. */
static int user_get_queue_num(struct fe_conn *c, uint64_t *n)
{
	*n = 0;
	if (!has_bit(c->protocol_features, VHU_PROTO_F_MQ))
		return 0;
	return get_u64(c, VHU_REQ_GET_QUEUE_NUM, n);
}

static int user_get_max_mem_slots(struct fe_conn *c, uint64_t *n)
{
	*n = 0;
	if (!has_bit(c->protocol_features, VHU_PROTO_F_CONFIGURE_MEM_SLOTS))
		return 0;
	return get_u64(c, VHU_REQ_GET_MAX_MEM_SLOTS, n);
}

static int user_set_mem_table(struct fe_conn *c, const struct fe_mem *mem)
{
	struct vhu_mem_region r = {
		.guest_phys_addr = FE_MEM_GPA_BASE,
		.memory_size = mem->size,
		.userspace_addr = (uint64_t)(uintptr_t)mem->base,
		.mmap_offset = 0,
	};

	/* With CONFIGURE_MEM_SLOTS, region by region (ADD_MEM_REG), as QEMU does. */
	if (has_bit(c->protocol_features, VHU_PROTO_F_CONFIGURE_MEM_SLOTS)) {
		struct vhu_mem_single s = { .region = r };
		return send_req(c, VHU_REQ_ADD_MEM_REG, &s, sizeof(s), &mem->fd, 1);
	}
	struct vhu_mem_table t = { .nregions = 1 };
	t.regions[0] = r;
	return send_req(c, VHU_REQ_SET_MEM_TABLE, &t, 8 + sizeof(r), &mem->fd, 1);
}

static int state(struct fe_conn *c, uint32_t req, unsigned idx, uint32_t num)
{
	struct vhu_vring_state s = { idx, num };
	return send_req(c, req, &s, sizeof(s), NULL, 0);
}

static int user_set_vring_num(struct fe_conn *c, unsigned idx, unsigned num)
{
	return state(c, VHU_REQ_SET_VRING_NUM, idx, num);
}

static int user_set_vring_base(struct fe_conn *c, unsigned idx, uint32_t base)
{
	return state(c, VHU_REQ_SET_VRING_BASE, idx, base);
}

/* "If VHOST_USER_F_PROTOCOL_FEATURES has not been negotiated, the ring starts directly in
 * the enabled state"; with it, rings start disabled and SET_VRING_ENABLE enables them. */
static int user_set_vring_enable(struct fe_conn *c, unsigned idx, bool enable)
{
	if (!has_bit(c->features, VHU_F_PROTOCOL_FEATURES))
		return 0;
	return state(c, VHU_REQ_SET_VRING_ENABLE, idx, enable);
}

static int user_get_vring_base(struct fe_conn *c, unsigned idx, uint32_t *base)
{
	struct vhu_vring_state s = { idx, 0 };
	struct msg m;
	int ret = call(c, VHU_REQ_GET_VRING_BASE, &s, sizeof(s), &m, sizeof(s), sizeof(s));

	if (ret)
		return ret;
	if (m.p.state.index != idx) {
		log_err(c->lg, "GET_VRING_BASE reply names vring %u, asked %u", m.p.state.index,
			idx);
		return -EPROTO;
	}
	*base = m.p.state.num;
	return 0;
}

static int user_set_vring_addr(struct fe_conn *c, const struct vhu_vring_addr *a)
{
	return send_req(c, VHU_REQ_SET_VRING_ADDR, a, sizeof(*a), NULL, 0);
}

static int vring_fd(struct fe_conn *c, uint32_t req, unsigned idx, int fd)
{
	uint64_t u = idx | (fd < 0 ? VHU_VRING_NOFD : 0);
	return send_req(c, req, &u, 8, fd < 0 ? NULL : &fd, fd < 0 ? 0 : 1);
}

static int user_set_vring_kick(struct fe_conn *c, unsigned idx, int fd)
{
	return vring_fd(c, VHU_REQ_SET_VRING_KICK, idx, fd);
}

static int user_set_vring_call(struct fe_conn *c, unsigned idx, int fd)
{
	return vring_fd(c, VHU_REQ_SET_VRING_CALL, idx, fd);
}

static int user_get_config(struct fe_conn *c, uint32_t off, void *buf, uint32_t len)
{
	struct vhu_config cfg = { .offset = off, .size = len };
	struct msg m;
	int ret;

	if (!has_bit(c->protocol_features, VHU_PROTO_F_CONFIG))
		return -ENOTSUP;
	if (len > VHU_MAX_CONFIG_SIZE)
		return -EINVAL;
	/* "VHOST_USER_GET_CONFIG": a reply with an empty payload means the back-end failed. */
	ret = call(c, VHU_REQ_GET_CONFIG, &cfg, VHU_CONFIG_HDR_SIZE + len, &m, 0,
		   VHU_CONFIG_HDR_SIZE + len);
	if (ret)
		return ret;
	if (m.hdr.size != VHU_CONFIG_HDR_SIZE + len || m.p.config.size != len) {
		log_warn(c->lg, "GET_CONFIG offset %u size %u refused", off, len);
		return -EREMOTEIO;
	}
	memcpy(buf, m.p.config.region, len);
	return 0;
}

static int user_set_config(struct fe_conn *c, uint32_t off, const void *buf, uint32_t len)
{
	struct vhu_config cfg = { .offset = off, .size = len };

	if (!has_bit(c->protocol_features, VHU_PROTO_F_CONFIG))
		return -ENOTSUP;
	if (len > VHU_MAX_CONFIG_SIZE)
		return -EINVAL;
	memcpy(cfg.region, buf, len);
	return send_req(c, VHU_REQ_SET_CONFIG, &cfg, VHU_CONFIG_HDR_SIZE + len, NULL, 0);
}

static int user_get_inflight_fd(struct fe_conn *c, unsigned num_queues, unsigned queue_size,
				struct vhu_inflight *out, int *fd)
{
	struct vhu_inflight in = { .num_queues = (uint16_t)num_queues,
				   .queue_size = (uint16_t)queue_size };
	struct msg m;
	int ret;

	msg_init(&m, VHU_REQ_GET_INFLIGHT_FD, 0, sizeof(in));
	memcpy(m.p.raw, &in, sizeof(in));
	ret = sock_send(c->fd, &m, NULL, 0);
	if (ret)
		return ret;
	ret = recv_reply_fds(c, VHU_REQ_GET_INFLIGHT_FD, &m, sizeof(in), sizeof(in), 1);
	if (ret)
		return ret;
	*out = m.p.inflight;
	*fd = m.fds[0];
	return 0;
}

static int user_set_inflight_fd(struct fe_conn *c, const struct vhu_inflight *in, int fd)
{
	return send_req(c, VHU_REQ_SET_INFLIGHT_FD, in, sizeof(*in), &fd, 1);
}

static int user_set_log_base(struct fe_conn *c, int fd, uint64_t size, uint64_t offset)
{
	struct vhu_log_desc d = { .size = size, .offset = offset };
	struct msg m;
	int ret;

	/* "VHOST_USER_SET_LOG_BASE": the fd comes with the message only with LOG_SHMFD, and
	 * then the back-end replies (the "Communication" list). No NEED_REPLY: the reply is
	 * its own. What it carries differs between back-ends and means nothing: a u64 0
	 * (rust-vmm), no payload (DPDK 22.11), or the request's first u64 echoed back, the log
	 * size (libvhost-user in QEMU 7.2's qemu-storage-daemon). QEMU 7.2 reads it and
	 * ignores the payload; so do we. */
	if (!has_bit(c->protocol_features, VHU_PROTO_F_LOG_SHMFD))
		return -ENOTSUP;
	msg_init(&m, VHU_REQ_SET_LOG_BASE, 0, sizeof(d));
	memcpy(m.p.raw, &d, sizeof(d));
	ret = sock_send(c->fd, &m, &fd, 1);
	if (ret) {
		log_err(c->lg, "sending SET_LOG_BASE: %s", strerror(-ret));
		return ret;
	}
	log_debug(c->lg, "-> SET_LOG_BASE (size %llu, offset %llu, 1 fd)", (unsigned long long)size,
		  (unsigned long long)offset);
	return recv_reply(c, VHU_REQ_SET_LOG_BASE, &m, 0, 8);
}

static int user_set_status(struct fe_conn *c, uint8_t status)
{
	uint64_t u = status;

	if (!has_bit(c->protocol_features, VHU_PROTO_F_STATUS))
		return 0;
	return send_req(c, VHU_REQ_SET_STATUS, &u, 8, NULL, 0);
}

static int user_get_status(struct fe_conn *c, uint8_t *status)
{
	uint64_t u;
	int ret;

	if (!has_bit(c->protocol_features, VHU_PROTO_F_STATUS))
		return -ENOTSUP;
	ret = get_u64(c, VHU_REQ_GET_STATUS, &u);
	if (!ret)
		*status = (uint8_t)u;
	return ret;
}

static int user_set_backend_req_fd(struct fe_conn *c, int fd)
{
	return send_req(c, VHU_REQ_SET_BACKEND_REQ_FD, NULL, 0, &fd, 1);
}

const struct fe_ops fe_user_ops = {
	.name = "vhost-user",
	.open = user_open,
	.close = user_close,
	.reconnect = user_reconnect,
	.alive = user_alive,
	.set_owner = user_set_owner,
	.get_features = user_get_features,
	.set_features = user_set_features,
	.get_protocol_features = user_get_protocol_features,
	.set_protocol_features = user_set_protocol_features,
	.get_queue_num = user_get_queue_num,
	.get_max_mem_slots = user_get_max_mem_slots,
	.set_mem_table = user_set_mem_table,
	.set_vring_num = user_set_vring_num,
	.set_vring_base = user_set_vring_base,
	.get_vring_base = user_get_vring_base,
	.set_vring_addr = user_set_vring_addr,
	.set_vring_kick = user_set_vring_kick,
	.set_vring_call = user_set_vring_call,
	.set_vring_enable = user_set_vring_enable,
	.get_config = user_get_config,
	.set_config = user_set_config,
	.get_inflight_fd = user_get_inflight_fd,
	.set_inflight_fd = user_set_inflight_fd,
	.set_log_base = user_set_log_base,
	.set_status = user_set_status,
	.get_status = user_get_status,
	.set_backend_req_fd = user_set_backend_req_fd,
	.iotlb_msg = user_iotlb_msg,
};
