/* SPDX-License-Identifier: MIT */
/*
 * A misbehaving back-end against the front-end library: a fake back-end thread answers
 * like a real one except at one chosen request, where it sends the wrong reply type, a
 * short reply, a reply with fds, a reply without the reply bit, a bad version, a refusal,
 * hangs up, or never answers. Each case must fail with the expected error within a bounded
 * time, and leave no fd and no mapping behind. Also run under ASan and valgrind.
 */
#include <dirent.h>
#include <errno.h>
#include <linux/virtio_config.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <vhu/vhu.h>

#include "../../src/msg.h"
#include "../../src/sock.h"
#include "../t.h"

T_DEFINE;

enum bad {
	BAD_NONE,
	BAD_TYPE,     /* reply names another request */
	BAD_SHORT,    /* reply payload too short */
	BAD_FDS,      /* reply carries an fd */
	BAD_NOREPLY,  /* reply bit missing */
	BAD_VERSION,  /* version 2 */
	BAD_HANGUP,   /* closes the socket instead of answering */
	BAD_SILENT,   /* never answers */
	BAD_NACK,     /* REPLY_ACK with a non-zero value */
	BAD_OVERSIZE, /* header claims a huge payload */
};

struct fake {
	char path[64];
	int lfd;
	uint32_t at; /* request to misbehave on */
	enum bad bad;
	pthread_t t;
};

static int reply(int fd, const struct msg *req, const void *p, uint32_t size, uint32_t flags,
		 const int *fds, unsigned nfds)
{
	struct msg m;

	msg_init(&m, req->hdr.request, 0, size);
	m.hdr.flags = flags;
	if (size)
		memcpy(m.p.raw, p, size);
	return sock_send(fd, &m, fds, nfds);
}

static void *fake_thread(void *arg)
{
	struct fake *f = arg;
	int fd = sock_accept(f->lfd);
	uint64_t pf = 0;
	struct msg m;

	if (fd < 0)
		return NULL;
	while (sock_recv(fd, &m, false) == 0) {
		uint32_t req = m.hdr.request, flags = VHU_VERSION | VHU_FLAG_REPLY;
		uint64_t u = 0;
		uint32_t size = 8;
		const void *p = &u;
		bool has_reply = true;
		msg_close_fds(&m);
		switch (req) {
		case VHU_REQ_GET_FEATURES:
			u = (1ULL << VIRTIO_F_VERSION_1) | (1ULL << VHU_F_PROTOCOL_FEATURES);
			break;
		case VHU_REQ_GET_PROTOCOL_FEATURES:
			u = (1ULL << VHU_PROTO_F_REPLY_ACK) | (1ULL << VHU_PROTO_F_MQ) |
			    (1ULL << VHU_PROTO_F_CONFIG);
			break;
		case VHU_REQ_SET_PROTOCOL_FEATURES:
			pf = m.p.u64;
			has_reply = false;
			break;
		case VHU_REQ_GET_QUEUE_NUM:
			u = 1;
			break;
		case VHU_REQ_GET_VRING_BASE:
			p = &m.p.state;
			size = sizeof(m.p.state);
			break;
		case VHU_REQ_GET_CONFIG:
			p = &m.p.config;
			size = m.hdr.size;
			break;
		default:
			has_reply = (pf >> VHU_PROTO_F_REPLY_ACK & 1) &&
				    (m.hdr.flags & VHU_FLAG_NEED_REPLY);
		}
		if (req == f->at) {
			int efd = eventfd(0, EFD_CLOEXEC);
			switch (f->bad) {
			case BAD_TYPE:
				m.hdr.request = VHU_REQ_GET_STATUS;
				break;
			case BAD_SHORT:
				size = 4;
				break;
			case BAD_NOREPLY:
				flags = VHU_VERSION;
				break;
			case BAD_VERSION:
				flags = 2 | VHU_FLAG_REPLY;
				break;
			case BAD_FDS:
				reply(fd, &m, p, size, flags, &efd, 1);
				close(efd);
				continue;
			case BAD_HANGUP:
				close(efd);
				goto out;
			case BAD_SILENT:
				close(efd);
				sleep(3);
				goto out;
			case BAD_NACK:
				u = 22;
				p = &u;
				size = 8;
				has_reply = true;
				break;
			case BAD_OVERSIZE: {
				uint32_t hdr[3] = { req, VHU_VERSION | VHU_FLAG_REPLY, 1u << 30 };
				send(fd, hdr, sizeof(hdr), MSG_NOSIGNAL);
				close(efd);
				continue;
			}
			default:
				break;
			}
			close(efd);
		}
		if (has_reply)
			reply(fd, &m, p, size, flags, NULL, 0);
	}
out:
	close(fd);
	return NULL;
}

static int count_fds(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	while (d && readdir(d))
		n++;
	if (d)
		closedir(d);
	return n;
}

static int count_maps(void)
{
	int n = 0, c;
	FILE *f = fopen("/proc/self/maps", "r");
	while (f && (c = fgetc(f)) != EOF)
		n += c == '\n';
	if (f)
		fclose(f);
	return n;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Runs open (+ start and stop when open succeeds) against a fake that misbehaves at `at`;
 * expects error `want` from the step that hits it. */
static int run_case(const char *name, uint32_t at, enum bad bad, int want)
{
	struct fake f = { .at = at, .bad = bad };
	struct vhu_frontend *fe = NULL;
	struct vhu_frontend_opts o = { .timeout_ms = 500, .mem_size = 1 << 20 };
	int fds0 = count_fds(), maps0 = count_maps(), ret;
	double t0 = now();

	snprintf(f.path, sizeof(f.path), "/tmp/vhu-fe-bad-%d.sock", getpid());
	f.lfd = sock_listen(f.path, 0600);
	ASSERT_TRUE(f.lfd >= 0);
	pthread_create(&f.t, NULL, fake_thread, &f);
	o.path = f.path;
	ret = vhu_frontend_open(&fe, &o);
	if (ret == 0) {
		struct vhu_frontend_start_opts so = { .features = 1ULL << VIRTIO_F_VERSION_1,
						      .nvqs = 2,
						      .queue_size = 64 };
		ret = vhu_frontend_start(fe, &so);
		if (ret == 0) {
			uint8_t cfg[8];
			ret = vhu_frontend_get_config(fe, 0, cfg, sizeof(cfg));
			if (ret == 0)
				ret = vhu_frontend_stop(fe);
		}
		vhu_frontend_close(fe);
	}
	double took = now() - t0;
	pthread_join(f.t, NULL);
	close(f.lfd);
	unlink(f.path);
	if (ret != want)
		T_FAILF("%s: got %d (%s), expected %d (%s)", name, ret, strerror(-ret), want,
			strerror(-want));
	if (took > 3.5)
		T_FAILF("%s: took %.1fs", name, took);
	if (count_fds() != fds0 || count_maps() != maps0)
		T_FAILF("%s: leak: fds %d -> %d, maps %d -> %d", name, fds0, count_fds(), maps0,
			count_maps());
	printf("%s %s (%d after %.2fs)\n", ret == want ? "ok  " : "FAIL", name, ret, took);
	return ret == want ? 0 : -1;
}

static void *nothing(void *arg)
{
	return arg;
}

int main(void)
{
	int fails = 0;
	pthread_t t;

	/* glibc keeps a joined thread's stack for reuse: warm that cache before counting. */
	pthread_create(&t, NULL, nothing, NULL);
	pthread_join(t, NULL);

	fails += run_case("good back-end", 0, BAD_NONE, 0) != 0;
	fails += run_case("wrong reply type", VHU_REQ_GET_FEATURES, BAD_TYPE, -EPROTO) != 0;
	fails += run_case("short reply", VHU_REQ_GET_PROTOCOL_FEATURES, BAD_SHORT, -EPROTO) != 0;
	fails += run_case("reply with an fd", VHU_REQ_GET_QUEUE_NUM, BAD_FDS, -EPROTO) != 0;
	fails += run_case("reply bit missing", VHU_REQ_GET_FEATURES, BAD_NOREPLY, -EPROTO) != 0;
	fails += run_case("bad version", VHU_REQ_GET_FEATURES, BAD_VERSION, -EPROTO) != 0;
	fails += run_case("oversize reply", VHU_REQ_GET_FEATURES, BAD_OVERSIZE, -EMSGSIZE) != 0;
	fails += run_case("hang-up mid-handshake", VHU_REQ_GET_PROTOCOL_FEATURES, BAD_HANGUP,
			  -ECONNRESET) != 0;
	fails += run_case("hang-up at SET_MEM_TABLE", VHU_REQ_SET_MEM_TABLE, BAD_HANGUP,
			  -ECONNRESET) != 0;
	fails += run_case("never answers", VHU_REQ_GET_FEATURES, BAD_SILENT, -ETIMEDOUT) != 0;
	fails += run_case("never acks SET_VRING_ADDR", VHU_REQ_SET_VRING_ADDR, BAD_SILENT,
			  -ETIMEDOUT) != 0;
	fails += run_case("refuses SET_FEATURES", VHU_REQ_SET_FEATURES, BAD_NACK, -EREMOTEIO) != 0;
	fails += run_case("short GET_CONFIG", VHU_REQ_GET_CONFIG, BAD_SHORT, -EREMOTEIO) != 0;
	fails += run_case("wrong GET_VRING_BASE", VHU_REQ_GET_VRING_BASE, BAD_TYPE, -EPROTO) != 0;
	return fails ? T_FAIL : T_PASS;
}
