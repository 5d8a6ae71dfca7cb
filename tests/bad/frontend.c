/* SPDX-License-Identifier: MIT */
/*
 * A misbehaving back-end against the front-end library: a fake back-end thread answers
 * like a real one except at one chosen request, where it sends the wrong reply type, a
 * short reply, a reply with fds, a reply without the reply bit, a bad version, a refusal,
 * hangs up, or never answers. Each case must fail with the expected error within a bounded
 * time, and leave no fd and no mapping behind. Also run under ASan and valgrind.
 * Dirty logging is turned on and off on the running device (vhu_frontend_log_start/stop):
 * the fake checks what a back-end is sent (a sealed log fd as large as announced, LOG_ALL
 * only after the log, VHOST_VRING_F_LOG with the used ring's guest-physical address), and
 * misbehaves at SET_LOG_BASE too.
 */
#include <dirent.h>
#include <errno.h>
#include <linux/virtio_config.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
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
	BAD_EMPTY,    /* reply without payload (DPDK 22.11's SET_LOG_BASE: fine) */
	BAD_NOLOG,    /* offers neither LOG_SHMFD nor LOG_ALL */
};

struct fake {
	char path[64];
	int lfd;
	uint32_t at; /* request to misbehave on */
	enum bad bad;
	pthread_t t;
	/* What the fake saw of dirty logging. */
	uint64_t gpa, uaddr;   /* the memory region */
	unsigned log_base;     /* SET_LOG_BASE with a sealed fd of the announced size */
	unsigned log_all_on;   /* SET_FEATURES with LOG_ALL, after a log */
	unsigned log_all_off;  /* SET_FEATURES without LOG_ALL once it was on */
	unsigned ring_log;     /* SET_VRING_ADDR with F_LOG and the used ring's GPA */
	unsigned ring_log_off; /* SET_VRING_ADDR without F_LOG once logging was on */
	unsigned log_errors;   /* anything else */
};

/* SET_LOG_BASE: the fd must be a sealed file at least offset + size long. */
static void check_log_base(struct fake *f, const struct msg *m)
{
	struct stat st;

	if (m->nfds != 1 || fstat(m->fds[0], &st) ||
	    (uint64_t)st.st_size < m->p.log.size + m->p.log.offset || m->p.log.size == 0 ||
	    !(fcntl(m->fds[0], F_GET_SEALS) & F_SEAL_SHRINK))
		f->log_errors++;
	else
		f->log_base++;
}

static void check_log_msg(struct fake *f, const struct msg *m)
{
	if (m->hdr.request == VHU_REQ_SET_MEM_TABLE) {
		f->gpa = m->p.mem.regions[0].guest_phys_addr;
		f->uaddr = m->p.mem.regions[0].userspace_addr;
	} else if (m->hdr.request == VHU_REQ_SET_FEATURES) {
		if (m->p.u64 >> VHU_F_LOG_ALL & 1) {
			if (f->log_base)
				f->log_all_on++;
			else
				f->log_errors++;
		} else if (f->log_all_on) {
			f->log_all_off++;
		}
	} else if (m->hdr.request == VHU_REQ_SET_VRING_ADDR) {
		const struct vhu_vring_addr *a = &m->p.addr;
		if (a->flags >> VHU_VRING_F_LOG & 1) {
			if (a->log == a->used - f->uaddr + f->gpa && f->gpa != f->uaddr)
				f->ring_log++;
			else
				f->log_errors++;
		} else if (f->ring_log) {
			f->ring_log_off++;
		}
	}
}

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
		if (req == VHU_REQ_SET_LOG_BASE)
			check_log_base(f, &m);
		check_log_msg(f, &m);
		msg_close_fds(&m);
		switch (req) {
		case VHU_REQ_GET_FEATURES:
			u = (1ULL << VIRTIO_F_VERSION_1) | (1ULL << VHU_F_PROTOCOL_FEATURES);
			if (f->bad != BAD_NOLOG)
				u |= 1ULL << VHU_F_LOG_ALL;
			break;
		case VHU_REQ_GET_PROTOCOL_FEATURES:
			u = (1ULL << VHU_PROTO_F_REPLY_ACK) | (1ULL << VHU_PROTO_F_MQ) |
			    (1ULL << VHU_PROTO_F_CONFIG);
			if (f->bad != BAD_NOLOG)
				u |= 1ULL << VHU_PROTO_F_LOG_SHMFD;
			break;
		case VHU_REQ_SET_LOG_BASE: /* with LOG_SHMFD: always a reply (a u64) */
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
			case BAD_EMPTY:
				size = 0;
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
	struct vhu_frontend_opts o = { .size = VHU_FRONTEND_OPTS_SIZE,
				       .timeout_ms = 500,
				       .mem_size = 1 << 20 };
	int fds0 = count_fds(), maps0 = count_maps(), ret;
	double t0 = now();
	bool logged = false;

	snprintf(f.path, sizeof(f.path), "/tmp/vhu-fe-bad-%d.sock", getpid());
	f.lfd = sock_listen(f.path, 0600);
	ASSERT_TRUE(f.lfd >= 0);
	pthread_create(&f.t, NULL, fake_thread, &f);
	o.path = f.path;
	ret = vhu_frontend_open(&fe, &o);
	if (ret == 0) {
		struct vhu_frontend_start_opts so = { .size = VHU_FRONTEND_START_OPTS_SIZE,
						      .features = 1ULL << VIRTIO_F_VERSION_1,
						      .nvqs = 2,
						      .queue_size = 64 };
		ret = vhu_frontend_start(fe, &so);
		/* Logging on and off while the rings run, as QEMU at a migration and its
		 * cancellation. */
		if (ret == 0 && (ret = vhu_frontend_log_start(fe)) == 0) {
			uint64_t w[64];
			logged = true;
			/* 1 MiB at GPA 0x100000: 512 pages from 0, 8 words. */
			if (vhu_frontend_log_read(fe, NULL, 0) != 8 ||
			    vhu_frontend_log_read(fe, w, 64) != 8)
				f.log_errors++;
			ret = vhu_frontend_log_stop(fe);
		}
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
	/* Logging went on and off on both rings, in order, with nothing malformed. */
	if (logged && (f.log_base != 1 || f.log_all_on != 1 || f.log_all_off != 1 ||
		       f.ring_log != 2 || f.ring_log_off != 2 || f.log_errors)) {
		T_FAILF("%s: logging: log %u, LOG_ALL on %u off %u, rings F_LOG on %u off %u, "
			"errors %u",
			name, f.log_base, f.log_all_on, f.log_all_off, f.ring_log, f.ring_log_off,
			f.log_errors);
		ret = -EBADMSG;
	}
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
	fails += run_case("no dirty logging offered", 0, BAD_NOLOG, -ENOTSUP) != 0;
	fails += run_case("SET_LOG_BASE reply without payload", VHU_REQ_SET_LOG_BASE, BAD_EMPTY,
			  0) != 0;
	fails +=
		run_case("SET_LOG_BASE reply echoes a u64", VHU_REQ_SET_LOG_BASE, BAD_NACK, 0) != 0;
	fails += run_case("SET_LOG_BASE wrong reply", VHU_REQ_SET_LOG_BASE, BAD_TYPE, -EPROTO) != 0;
	fails += run_case("SET_LOG_BASE reply with an fd", VHU_REQ_SET_LOG_BASE, BAD_FDS,
			  -EPROTO) != 0;
	fails += run_case("SET_LOG_BASE never answered", VHU_REQ_SET_LOG_BASE, BAD_SILENT,
			  -ETIMEDOUT) != 0;
	fails += run_case("hang-up at SET_LOG_BASE", VHU_REQ_SET_LOG_BASE, BAD_HANGUP,
			  -ECONNRESET) != 0;
	return fails ? T_FAIL : T_PASS;
}
