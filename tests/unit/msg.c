/* SPDX-License-Identifier: MIT */
/* Codec: every front-end request goes through sock_send/sock_recv and msg_check intact, and
 * each rule of the table rejects what it should. */
#include <errno.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "msg.h"
#include "sock.h"
#include "t.h"

T_DEFINE;

static int sp[2];

/* A message that satisfies the rule of request r, with its fds. */
static void build(struct msg *m, uint32_t r, int *fds, unsigned *nfds)
{
	const struct msg_rule *rule = msg_rule(r);

	msg_init(m, r, 0, rule->min_size);
	for (unsigned i = 0; i < rule->min_size; i++)
		m->p.raw[i] = (uint8_t)(r * 13 + i);
	*nfds = 0;
	switch (rule->fds) {
	case FDS_ONE:
		*nfds = 1;
		break;
	case FDS_OPTIONAL:
		m->p.u64 = 3; /* vring 3, with fd */
		*nfds = 1;
		break;
	case FDS_REGIONS:
		m->p.mem.nregions = 2;
		m->p.mem.padding = 0;
		m->hdr.size = 8 + 2 * sizeof(struct vhu_mem_region);
		*nfds = 2;
		break;
	default:
		break;
	}
	if (r == VHU_REQ_GET_CONFIG || r == VHU_REQ_SET_CONFIG) {
		m->p.config.size = 6;
		m->hdr.size = VHU_CONFIG_HDR_SIZE + 6;
	}
	for (unsigned i = 0; i < *nfds; i++)
		fds[i] = eventfd(0, EFD_CLOEXEC);
}

static int roundtrip_all(void)
{
	unsigned n = 0;

	for (uint32_t r = 1; r < VHU_REQ_MAX; r++) {
		struct msg m, got;
		int fds[MSG_MAX_FDS];
		unsigned nfds;
		char why[160];

		ASSERT_TRUE(msg_rule(r) != NULL);
		ASSERT_TRUE(strcmp(vhu_request_name(r), "?") != 0);
		build(&m, r, fds, &nfds);
		ASSERT_OK(sock_send(sp[0], &m, fds, nfds));
		ASSERT_OK(sock_recv(sp[1], &got, false));
		ASSERT_EQ(got.hdr.request, r);
		ASSERT_EQ(got.hdr.size, m.hdr.size);
		ASSERT_OK(memcmp(got.p.raw, m.p.raw, m.hdr.size));
		ASSERT_EQ(got.nfds, nfds);
		for (unsigned i = 0; i < got.nfds; i++) {
			ASSERT_TRUE(got.fds[i] >= 0 && got.fds[i] != fds[i]);
			/* The received fd is the same eventfd: a write on it is readable on ours.
			 */
			ASSERT_OK(eventfd_write(got.fds[i], 1));
			eventfd_t v;
			ASSERT_OK(eventfd_read(fds[i], &v));
			ASSERT_EQ(v, 1);
		}
		if (msg_check(&got, ~0ull, ~0ull, why, sizeof(why))) {
			T_FAILF("%s: %s", vhu_request_name(r), why);
			return -1;
		}
		msg_close_fds(&got);
		for (unsigned i = 0; i < nfds; i++)
			close(fds[i]);
		n++;
	}
	ASSERT_EQ(n, VHU_REQ_MAX - 1);
	return 0;
}

static int reply_roundtrip(void)
{
	struct msg m, got;

	msg_init(&m, VHU_REQ_GET_FEATURES, VHU_FLAG_REPLY, 8);
	m.p.u64 = 0x123456789abcdefull;
	ASSERT_OK(sock_send(sp[1], &m, NULL, 0));
	ASSERT_OK(sock_recv(sp[0], &got, true));
	ASSERT_EQ(got.p.u64, m.p.u64);
	/* A reply where a request is expected is refused. */
	ASSERT_OK(sock_send(sp[1], &m, NULL, 0));
	ASSERT_EQ(sock_recv(sp[0], &got, false), -EPROTO);
	char junk[8];
	ASSERT_EQ(recv(sp[0], junk, sizeof(junk), MSG_DONTWAIT), 8); /* drain the payload */
	return 0;
}

static int check_f(struct msg *m, uint64_t f, uint64_t pf)
{
	char why[160];
	return msg_check(m, f, pf, why, sizeof(why));
}

static int check(struct msg *m, uint64_t pf)
{
	return check_f(m, ~0ull, pf);
}

static int rules_reject(void)
{
	struct msg m;

	for (uint32_t r = 1; r < VHU_REQ_MAX; r++) {
		const struct msg_rule *rule = msg_rule(r);
		int fds[MSG_MAX_FDS];
		unsigned nfds;

		build(&m, r, fds, &nfds);
		for (unsigned i = 0; i < nfds; i++)
			close(fds[i]);
		m.nfds = nfds;
		for (unsigned i = 0; i < nfds; i++)
			m.fds[i] = -1;
		ASSERT_OK(check(&m, ~0ull));
		/* one fd too many */
		m.nfds = nfds + 1;
		if (rule->fds != FDS_ZERO_ONE)
			ASSERT_EQ(check(&m, ~0ull), -EPROTO);
		m.nfds = nfds;
		/* payload too long */
		uint32_t size = m.hdr.size;
		if (rule->max_size < MSG_MAX_PAYLOAD) {
			m.hdr.size = rule->max_size + 1u;
			ASSERT_EQ(check(&m, ~0ull), -EPROTO);
		}
		m.hdr.size = size;
		/* its protocol feature not negotiated: a refusal, not a malformed message */
		if (rule->gate >= 0) {
			uint64_t pf = ~0ull & ~(1ull << rule->gate);
			ASSERT_EQ(check(&m, pf), -ENOPROTOOPT);
			/* malformed and not negotiated: malformed wins (the stream is lost) */
			m.nfds = nfds + 1;
			if (rule->fds != FDS_ZERO_ONE)
				ASSERT_EQ(check(&m, pf), -EPROTO);
			m.nfds = nfds;
			if (rule->max_size < MSG_MAX_PAYLOAD) {
				m.hdr.size = rule->max_size + 1u;
				ASSERT_EQ(check(&m, pf), -EPROTO);
				m.hdr.size = size;
			}
		}
		/* VHOST_USER_F_PROTOCOL_FEATURES not negotiated: only SET_VRING_ENABLE cares */
		uint64_t noproto = ~0ull & ~(1ull << VHU_F_PROTOCOL_FEATURES);
		if (r == VHU_REQ_SET_VRING_ENABLE)
			ASSERT_EQ(check_f(&m, noproto, ~0ull), -ENOPROTOOPT);
		else
			ASSERT_OK(check_f(&m, noproto, ~0ull));
		/* bad version */
		m.hdr.flags = 2;
		ASSERT_EQ(check(&m, ~0ull), -EPROTO);
	}
	msg_init(&m, 0, 0, 0);
	ASSERT_EQ(check(&m, ~0ull), -ENOTSUP);
	msg_init(&m, 4242, 0, 0);
	ASSERT_EQ(check(&m, ~0ull), -ENOTSUP);
	ASSERT_TRUE(strcmp(vhu_request_name(4242), "?") == 0);
	return 0;
}

static int reply_rules(void)
{
	struct msg m;
	uint64_t ack = 1ull << VHU_PROTO_F_REPLY_ACK;

	msg_init(&m, VHU_REQ_GET_FEATURES, 0, 0);
	ASSERT_TRUE(msg_wants_reply(&m, 0));
	msg_init(&m, VHU_REQ_SET_MEM_TABLE, VHU_FLAG_NEED_REPLY, 8);
	ASSERT_TRUE(!msg_wants_reply(&m, 0));
	ASSERT_TRUE(msg_wants_reply(&m, ack));
	msg_init(&m, VHU_REQ_SET_VRING_KICK, 0, 8);
	ASSERT_TRUE(!msg_wants_reply(&m, ack));
	msg_init(&m, VHU_REQ_SET_LOG_BASE, 0, 16);
	ASSERT_TRUE(!msg_wants_reply(&m, 0));
	ASSERT_TRUE(msg_wants_reply(&m, 1ull << VHU_PROTO_F_LOG_SHMFD));
	msg_init(&m, VHU_REQ_CHECK_DEVICE_STATE, 0, 0);
	ASSERT_TRUE(msg_wants_reply(&m, 0));
	return 0;
}

/* The failure form of each reply: an ack or a status is a non-zero u64, a reply that carries
 * data is empty ("VHOST_USER_GET_CONFIG": "zero length of payload to indicate an error"). */
static int fail_replies(void)
{
	static const uint32_t data[] = { VHU_REQ_GET_CONFIG, VHU_REQ_GET_QUEUE_NUM,
					 VHU_REQ_GET_MAX_MEM_SLOTS, VHU_REQ_GET_STATUS,
					 VHU_REQ_GET_INFLIGHT_FD };
	static const uint32_t status[] = { VHU_REQ_IOTLB_MSG, VHU_REQ_CHECK_DEVICE_STATE,
					   VHU_REQ_SET_STATUS, VHU_REQ_ADD_MEM_REG };
	struct msg m;

	for (unsigned i = 0; i < sizeof(data) / sizeof(data[0]); i++) {
		msg_init(&m, data[i], 0, 20);
		msg_fail_reply(&m, ENOPROTOOPT);
		ASSERT_EQ(m.hdr.size, 0);
	}
	for (unsigned i = 0; i < sizeof(status) / sizeof(status[0]); i++) {
		msg_init(&m, status[i], 0, 0);
		msg_fail_reply(&m, ENOPROTOOPT);
		ASSERT_EQ(m.hdr.size, 8);
		ASSERT_EQ(m.p.u64, ENOPROTOOPT);
	}
	/* SET_DEVICE_STATE_FD: error in bits 0-7, bit 8 set (no fd in the reply) */
	msg_init(&m, VHU_REQ_SET_DEVICE_STATE_FD, 0, 8);
	msg_fail_reply(&m, ENOPROTOOPT);
	ASSERT_EQ(m.hdr.size, 8);
	ASSERT_EQ(m.p.u64, ENOPROTOOPT | 1u << 8);
	return 0;
}

static int oversize_header(void)
{
	uint32_t h[3] = { VHU_REQ_SET_FEATURES, VHU_VERSION, MSG_MAX_PAYLOAD + 1 };
	struct msg m;

	ASSERT_EQ(send(sp[0], h, sizeof(h), 0), sizeof(h));
	ASSERT_EQ(sock_recv(sp[1], &m, false), -EMSGSIZE);
	return 0;
}

static int short_header_then_close(void)
{
	int p[2];
	struct msg m;

	ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, p));
	ASSERT_EQ(send(p[0], "abcd", 4, 0), 4);
	close(p[0]);
	ASSERT_EQ(sock_recv(p[1], &m, false), -ECONNRESET);
	close(p[1]);
	return 0;
}

static int too_many_fds(void)
{
	struct msg m;
	int fds[12];

	msg_init(&m, VHU_REQ_SET_OWNER, 0, 0);
	for (int i = 0; i < 12; i++)
		fds[i] = eventfd(0, 0);
	/* sock_send refuses more than MSG_MAX_FDS; send them raw. */
	char cbuf[CMSG_SPACE(sizeof(fds))];
	struct iovec iov = { &m.hdr, VHU_HDR_SIZE };
	struct msghdr mh = { .msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(fds));
	memcpy(CMSG_DATA(c), fds, sizeof(fds));
	ASSERT_EQ(sendmsg(sp[0], &mh, 0), VHU_HDR_SIZE);
	ASSERT_EQ(sock_recv(sp[1], &m, false), -EPROTO);
	for (int i = 0; i < 12; i++)
		close(fds[i]);
	return 0;
}

/* ---- back-end requests (BACKEND_REQ channel) ---- */

#define ALL_PF	 (~0ull)
#define IOMMU_PF (1ull << 33)

/* Every back-end request built by its row goes through the socket intact and passes
 * msg_check_backend with everything negotiated; its name is known. */
static int backend_roundtrip_all(void)
{
	for (uint32_t r = 1; r < VHU_BREQ_MAX; r++) {
		const struct msg_rule *rule = msg_backend_rule(r);
		struct msg m, got;
		int fd = -1;
		char why[160];

		ASSERT_TRUE(rule != NULL);
		ASSERT_TRUE(strcmp(vhu_backend_request_name(r), "?") != 0);
		msg_init(&m, r, 0, rule->min_size);
		for (unsigned i = 0; i < rule->min_size; i++)
			m.p.raw[i] = (uint8_t)(r * 7 + i);
		if (rule->fds == FDS_OPTIONAL)
			m.p.u64 = 1; /* vring 1, with an fd */
		if (rule->fds == FDS_ONE || rule->fds == FDS_OPTIONAL)
			fd = eventfd(0, EFD_CLOEXEC);
		ASSERT_OK(sock_send(sp[0], &m, &fd, fd >= 0 ? 1 : 0));
		ASSERT_OK(sock_recv(sp[1], &got, false));
		ASSERT_EQ(got.nfds, fd >= 0 ? 1 : 0);
		if (msg_check_backend(&got, IOMMU_PF, ALL_PF, why, sizeof(why))) {
			T_FAILF("%s: %s", rule->name, why);
			return -1;
		}
		msg_close_fds(&got);
		if (fd >= 0)
			close(fd);
	}
	ASSERT_TRUE(msg_backend_rule(0) == NULL);
	ASSERT_TRUE(msg_backend_rule(VHU_BREQ_MAX) == NULL);
	ASSERT_TRUE(strcmp(vhu_backend_request_name(VHU_BREQ_MAX), "?") == 0);
	return 0;
}

static int check_b(struct msg *m, uint64_t f, uint64_t pf)
{
	char why[160];
	return msg_check_backend(m, f, pf, why, sizeof(why));
}

/* The rows' sizes, fds, gates, and the header rules, as vhost-user.rst "Back-end message
 * types" gives them. */
static int backend_rules_reject(void)
{
	struct msg m;

	/* CONFIG_CHANGE_MSG: no payload (up to 8 bytes tolerated, as for the front-end's),
	 * needs CONFIG. */
	msg_init(&m, VHU_BREQ_CONFIG_CHANGE_MSG, VHU_FLAG_NEED_REPLY, 0);
	ASSERT_OK(check_b(&m, 0, 1ull << VHU_PROTO_F_CONFIG));
	ASSERT_EQ(check_b(&m, 0, ALL_PF & ~(1ull << VHU_PROTO_F_CONFIG)), -ENOPROTOOPT);
	m.hdr.size = 16;
	ASSERT_EQ(check_b(&m, 0, ALL_PF), -EPROTO);
	m.hdr.size = 0;
	m.nfds = 1; /* an fd where none belongs */
	m.fds[0] = eventfd(0, EFD_CLOEXEC);
	ASSERT_EQ(check_b(&m, 0, ALL_PF), -EPROTO);
	msg_close_fds(&m);
	/* A reply bit or another version is not a request. */
	msg_init(&m, VHU_BREQ_CONFIG_CHANGE_MSG, VHU_FLAG_REPLY, 0);
	ASSERT_EQ(check_b(&m, 0, ALL_PF), -EPROTO);
	m.hdr.flags = 2;
	ASSERT_EQ(check_b(&m, 0, ALL_PF), -EPROTO);
	/* Unknown numbers. */
	msg_init(&m, 0, 0, 0);
	ASSERT_EQ(check_b(&m, 0, ALL_PF), -ENOTSUP);
	msg_init(&m, VHU_BREQ_MAX, 0, 0);
	ASSERT_EQ(check_b(&m, 0, ALL_PF), -ENOTSUP);
	/* IOTLB_MSG: a struct vhost_iotlb_msg, and VIRTIO_F_IOMMU_PLATFORM negotiated. */
	msg_init(&m, VHU_BREQ_IOTLB_MSG, 0, sizeof(struct vhu_iotlb_msg));
	ASSERT_OK(check_b(&m, IOMMU_PF, 0));
	ASSERT_EQ(check_b(&m, 0, ALL_PF), -ENOPROTOOPT);
	m.hdr.size = sizeof(struct vhu_iotlb_msg) - 1;
	ASSERT_EQ(check_b(&m, IOMMU_PF, ALL_PF), -EPROTO);
	/* VRING_CALL / ERR: a vring state, INBAND_NOTIFICATIONS. */
	msg_init(&m, VHU_BREQ_VRING_CALL, 0, sizeof(struct vhu_vring_state));
	ASSERT_OK(check_b(&m, 0, 1ull << VHU_PROTO_F_INBAND_NOTIFICATIONS));
	ASSERT_EQ(check_b(&m, 0, 1ull << VHU_PROTO_F_CONFIG), -ENOPROTOOPT);
	m.hdr.size = 4;
	ASSERT_EQ(check_b(&m, 0, ALL_PF), -EPROTO);
	/* HOST_NOTIFIER: an fd unless the area's u64 says VRING_NOFD. */
	msg_init(&m, VHU_BREQ_VRING_HOST_NOTIFIER_MSG, 0, sizeof(struct vhu_vring_area));
	m.p.area.u64 = VHU_VRING_NOFD;
	ASSERT_OK(check_b(&m, 0, ALL_PF));
	m.p.area.u64 = 0;
	ASSERT_EQ(check_b(&m, 0, ALL_PF), -EPROTO);
	/* SHMEM_MAP carries one fd, SHMEM_UNMAP none: 40-byte MMAP request. */
	ASSERT_EQ(sizeof(struct vhu_shmem_map), 40);
	msg_init(&m, VHU_BREQ_SHMEM_MAP, 0, sizeof(struct vhu_shmem_map));
	ASSERT_EQ(check_b(&m, 0, ALL_PF), -EPROTO);
	msg_init(&m, VHU_BREQ_SHMEM_UNMAP, 0, sizeof(struct vhu_shmem_map));
	ASSERT_OK(check_b(&m, 0, 1ull << VHU_PROTO_F_SHMEM));
	/* SHARED_OBJECT_*: a 16-byte UUID. */
	msg_init(&m, VHU_BREQ_SHARED_OBJECT_ADD, 0, 16);
	ASSERT_OK(check_b(&m, 0, 1ull << VHU_PROTO_F_SHARED_OBJECT));
	m.hdr.size = 8;
	ASSERT_EQ(check_b(&m, 0, ALL_PF), -EPROTO);
	return 0;
}

/* Which back-end requests want an answer; an ack's own check. */
static int backend_replies(void)
{
	const uint64_t ack = 1ull << VHU_PROTO_F_REPLY_ACK;
	struct msg m;
	char why[160];

	msg_init(&m, VHU_BREQ_CONFIG_CHANGE_MSG, VHU_FLAG_NEED_REPLY, 0);
	ASSERT_TRUE(msg_backend_wants_reply(&m, ack));
	ASSERT_TRUE(!msg_backend_wants_reply(&m, 0));
	m.hdr.flags = VHU_VERSION;
	ASSERT_TRUE(!msg_backend_wants_reply(&m, ack));
	/* "Frontend will reply passing the fd and a zero when the operation is successful, or
	 * non-zero otherwise": LOOKUP is always answered. */
	msg_init(&m, VHU_BREQ_SHARED_OBJECT_LOOKUP, 0, 16);
	ASSERT_TRUE(msg_backend_wants_reply(&m, 0));
	msg_init(&m, 99, VHU_FLAG_NEED_REPLY, 0);
	ASSERT_TRUE(!msg_backend_wants_reply(&m, ack));

	msg_init(&m, VHU_BREQ_CONFIG_CHANGE_MSG, VHU_FLAG_REPLY, 8);
	m.p.u64 = 0;
	ASSERT_OK(msg_check_ack(&m, VHU_BREQ_CONFIG_CHANGE_MSG, why, sizeof(why)));
	ASSERT_EQ(msg_check_ack(&m, VHU_BREQ_IOTLB_MSG, why, sizeof(why)), -EPROTO);
	m.hdr.size = 4;
	ASSERT_EQ(msg_check_ack(&m, VHU_BREQ_CONFIG_CHANGE_MSG, why, sizeof(why)), -EPROTO);
	m.hdr.size = 8;
	m.hdr.flags = VHU_VERSION;
	ASSERT_EQ(msg_check_ack(&m, VHU_BREQ_CONFIG_CHANGE_MSG, why, sizeof(why)), -EPROTO);
	m.hdr.flags = VHU_VERSION | VHU_FLAG_REPLY;
	m.nfds = 1;
	m.fds[0] = eventfd(0, EFD_CLOEXEC);
	ASSERT_EQ(msg_check_ack(&m, VHU_BREQ_CONFIG_CHANGE_MSG, why, sizeof(why)), -EPROTO);
	msg_close_fds(&m);
	return 0;
}

int main(void)
{
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp))
		return T_FAIL;
	RUN(roundtrip_all);
	RUN(reply_roundtrip);
	RUN(rules_reject);
	RUN(reply_rules);
	RUN(fail_replies);
	RUN(oversize_header);
	RUN(short_header_then_close);
	RUN(too_many_fds);
	RUN(backend_roundtrip_all);
	RUN(backend_rules_reject);
	RUN(backend_replies);
	T_MAIN_END();
}
