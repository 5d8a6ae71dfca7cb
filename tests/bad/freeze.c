/* SPDX-License-Identifier: MIT */
/*
 * Freezing the daemons (issue 8, "Freezing the daemons"), black box. vhu-net runs as a switch
 * with four ports: A and A2 get hostile front-ends, B and C good ones. Nothing done on A or A2
 * may delay B and C: a message sent one byte per second, a header cut off and left silent,
 * thousands of requests whose replies are never read, kick/call/err fds that are not eventfds
 * (or a semaphore eventfd as kick), and blocking eventfds at their maximum count as call and
 * err fds while frames flow. After each case the daemon holds no more fds or mappings than
 * before, and at the end SIGTERM, sent while full call eventfds are attached and frames flow,
 * ends it within a few seconds. Then vhu-blk --fd on a connected socketpair: silent for 7 s
 * and still alive, SIGTERM exits 0; with a call fd at its maximum count under I/O, SIGTERM
 * still exits; and it exits when its connection closes.
 * Run it with VALGRIND=1 to put vhu-net under valgrind.
 *
 * usage: freeze PATH-TO-vhu-net PATH-TO-vhu-blk
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_blk.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <vhu/backend.h>

#include "../common/bad.h"
#include "../common/drv.h"
#include "../t.h"

T_DEFINE;

enum { PA, PA2, PB, PC, NPORTS };

static char paths[NPORTS][128];
static char log_path[128];
static bool vg;
/* vhu-net; after a case: alive, fds and mappings back to the baseline within 3 s. */
static const char *const front_end_maps[] = { "drv-mem", NULL };
static struct bad_daemon net = { .name = "vhu-net",
				 .sock = paths[PC], /* the last one it makes */
				 .log = log_path,
				 .maps = front_end_maps,
				 .clean_ms = 3000 };

/* 0 when the vhu-net log has what, else a failure. */
static int expect_log(const char *what)
{
	if (!grep_log(log_path, what)) {
		T_FAILF("no '%s' in the vhu-net log", what);
		return -1;
	}
	return 0;
}

/* ---- good front-ends on B and C ---- */

/* A broadcast UDP frame from `from` to `to` through the switch: from's tx buffer comes back
 * and to's rx buffer is filled, each within timeout_ms. */
static int exchange(struct drv *from, struct drv *to, int timeout_ms)
{
	static unsigned n;
	uint8_t frame[60] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x52, 0x54,
			      0,    0,	  0,	1,    0x08, 0x00, 0x45 };
	uint32_t id, len;
	unsigned slot = n++ % 8;

	frame[14 + 9] = 17;
	frame[59] = (uint8_t)n;
	ASSERT_TRUE(drv_add_buf(to, 0, slot, 2048, true) >= 0);
	uint8_t *f = drv_buf(from, 1, slot);
	memset(f, 0, 12);
	memcpy(f + 12, frame, sizeof(frame));
	ASSERT_TRUE(drv_add_buf(from, 1, slot, 12 + sizeof(frame), false) >= 0);
	ASSERT_EQ(drv_get_used(from, 1, &id, &len, timeout_ms), 1);
	ASSERT_EQ(drv_get_used(to, 0, &id, &len, timeout_ms), 1);
	ASSERT_EQ(len, 12 + sizeof(frame));
	ASSERT_OK(memcmp(drv_buf(to, 0, slot) + 12, frame, sizeof(frame)));
	return 0;
}

/* A frame from `from` with nobody to receive it: served means its tx buffer comes back. */
static int tx_only(struct drv *from, int timeout_ms)
{
	uint32_t id, len;
	uint8_t *f = drv_buf(from, 1, 9);

	memset(f, 0, 12 + 60);
	memset(f + 12, 0xff, 6);
	ASSERT_TRUE(drv_add_buf(from, 1, 9, 12 + 60, false) >= 0);
	ASSERT_EQ(drv_get_used(from, 1, &id, &len, timeout_ms), 1);
	return 0;
}

/* Connects B and C, sets both up completely and passes frames both ways. */
static int good_pair(struct drv *b, struct drv *c, int timeout_ms)
{
	ASSERT_OK(drv_open(b, paths[PB]));
	ASSERT_OK(drv_open(c, paths[PC]));
	ASSERT_OK(drv_start(b, false, ~0ull));
	ASSERT_OK(drv_start(c, true, ~0ull));
	ASSERT_OK(exchange(b, c, timeout_ms));
	ASSERT_OK(exchange(c, b, timeout_ms));
	return 0;
}

/* ---- (a) slow loris ---- */

static int loris_fd;

/* GET_FEATURES, one byte per second. */
static void *loris(void *arg)
{
	struct vhu_hdr h = { VHU_REQ_GET_FEATURES, VHU_VERSION, 0 };
	(void)arg;
	for (size_t i = 0; i < sizeof(h); i++) {
		if (send(loris_fd, (uint8_t *)&h + i, 1, MSG_NOSIGNAL) != 1)
			break;
		msleep(1000);
	}
	return NULL;
}

static int slow_loris(void)
{
	struct vhu_hdr h = { VHU_REQ_GET_PROTOCOL_FEATURES, VHU_VERSION, 0 }, rh;
	int limit = vg ? 4000 : 1500;
	struct drv b, c, a2;
	pthread_t th;
	uint64_t v;

	loris_fd = vhu_connect(paths[PA], 5000);
	ASSERT_TRUE(loris_fd >= 0);
	ASSERT_OK(pthread_create(&th, NULL, loris, NULL));
	/* A2: half a header, then silence. */
	ASSERT_OK(drv_open(&a2, paths[PA2]));
	ASSERT_EQ(send(a2.fd, &h, 6, MSG_NOSIGNAL), 6);
	msleep(1500); /* the loris is two bytes in */
	uint64_t t0 = now_ms();
	int ret = good_pair(&b, &c, 3000);
	uint64_t took = now_ms() - t0;
	printf("     B and C set up and exchanged frames in %llu ms\n", (unsigned long long)took);
	if (ret == 0 && took > (uint64_t)limit)
		T_FAILF("B and C took %llu ms to set up and exchange frames (limit %d)",
			(unsigned long long)took, limit);
	/* Still served later on, while the loris goes on. */
	ASSERT_OK(ret);
	msleep(2000);
	ASSERT_OK(exchange(&b, &c, 1000));
	pthread_join(th, NULL);
	/* The message that came in twelve pieces over eleven seconds was assembled and answered. */
	struct drv lo = { .fd = loris_fd };
	ASSERT_EQ(drv_recv(&lo, &rh, &v, sizeof(v), 3000), 8);
	ASSERT_EQ(rh.request, VHU_REQ_GET_FEATURES);
	/* A2's half header is still pending; it ends with the connection. */
	close(loris_fd);
	drv_close(&a2);
	drv_close(&b);
	drv_close(&c);
	return bad_check_clean(&net, "slow loris");
}

/* ---- (b), (d) kick/call/err fds that are not eventfds ---- */

/* Sends req for ring 0 with fd on port A: refused means the connection is dropped. */
static int fd_case(uint32_t req, int fd, const char *what, bool refused)
{
	struct drv d;
	uint64_t idx = 0, f;
	char name[160];
	int ret = 0;

	snprintf(name, sizeof(name), "%s as %s fd", what, vhu_request_name(req));
	ASSERT_OK(drv_open(&d, paths[PA]));
	ASSERT_OK(drv_send(&d, req, VHU_VERSION, &idx, 8, &fd, 1));
	if (refused) {
		if (!closed_by_peer(d.fd, 2000)) {
			T_FAILF("%s: accepted", name);
			ret = -1;
		}
	} else if (drv_get_u64(&d, VHU_REQ_GET_FEATURES, &f)) {
		T_FAILF("%s: refused", name);
		ret = -1;
	}
	drv_close(&d);
	if (bad_check_clean(&net, name))
		ret = -1;
	printf("%s %s %s\n", ret ? "FAIL" : "ok  ", name, refused ? "refused" : "accepted");
	return ret;
}

static int not_eventfds(void)
{
	static const uint32_t reqs[] = { VHU_REQ_SET_VRING_KICK, VHU_REQ_SET_VRING_CALL,
					 VHU_REQ_SET_VRING_ERR };
	char tmpl[] = "/tmp/vhu-freeze-XXXXXX";
	int p[2], sp[2], file = mkstemp(tmpl), ret = 0;
	int efd = eventfd(0, EFD_CLOEXEC), sem = eventfd(1, EFD_CLOEXEC | EFD_SEMAPHORE);

	ASSERT_TRUE(file >= 0);
	unlink(tmpl);
	ASSERT_OK(pipe2(p, O_CLOEXEC));
	ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp));
	for (unsigned i = 0; i < 3; i++) {
		ret |= fd_case(reqs[i], efd, "an eventfd", false);
		ret |= fd_case(reqs[i], p[0], "a pipe", true);
		ret |= fd_case(reqs[i], sp[0], "a socket", true);
		ret |= fd_case(reqs[i], file, "a regular file", true);
	}
	ret |= fd_case(VHU_REQ_SET_VRING_KICK, sem, "a semaphore eventfd", true);
	close(p[0]);
	close(p[1]);
	close(sp[0]);
	close(sp[1]);
	close(file);
	close(efd);
	close(sem);
	ASSERT_OK(ret);
	ASSERT_OK(expect_log("not an eventfd"));
	ASSERT_OK(expect_log("semaphore eventfd"));
	return 0;
}

/* ---- (e) requests whose replies are never read ---- */

struct flood {
	int fd;
	unsigned sent;
};

static void *flooder(void *arg)
{
	struct flood *fl = arg;
	struct vhu_hdr h[64];
	uint64_t end = now_ms() + 20000;

	for (unsigned i = 0; i < 64; i++)
		h[i] = (struct vhu_hdr){ VHU_REQ_GET_FEATURES, VHU_VERSION, 0 };
	while (fl->sent < 20000 && now_ms() < end) {
		ssize_t n = send(fl->fd, h, sizeof(h), MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EAGAIN) {
			msleep(1);
			continue;
		}
		if (n <= 0)
			break;
		fl->sent += (unsigned)n / 12; /* a cut message just stays pending */
	}
	return NULL;
}

static int reply_flood(void)
{
	int limit = vg ? 8000 : 2500;
	struct flood fl = { .fd = vhu_connect(paths[PA], 5000) };
	struct drv b, c;
	pthread_t th;

	ASSERT_TRUE(fl.fd >= 0);
	ASSERT_OK(good_pair(&b, &c, 3000));
	uint64_t t0 = now_ms();
	ASSERT_OK(pthread_create(&th, NULL, flooder, &fl));
	/* Meanwhile B and C go on. */
	msleep(100);
	ASSERT_OK(exchange(&b, &c, 1000));
	pthread_join(th, NULL);
	uint64_t took = now_ms() - t0;
	ASSERT_TRUE(closed_by_peer(fl.fd, 5000));
	if (took > (uint64_t)limit)
		T_FAILF("the flooder (%u requests) was dropped after %llu ms (limit %d)", fl.sent,
			(unsigned long long)took, limit);
	ASSERT_OK(exchange(&c, &b, 1000));
	close(fl.fd);
	drv_close(&b);
	drv_close(&c);
	ASSERT_OK(bad_check_clean(&net, "reply flood"));
	return expect_log("does not read its replies");
}

/* ---- (c) blocking eventfds at their maximum count as call and err fds ---- */

static int full_eventfd(void)
{
	int fd = eventfd(0, EFD_CLOEXEC); /* blocking, as the front-end made it */
	uint64_t v = 0xfffffffffffffffeull;
	if (fd < 0 || write(fd, &v, 8) != 8)
		return -1;
	return fd;
}

/* B with blocking, full call eventfds on both rings, C a good peer; frames both ways. */
static int full_call_pair(struct drv *b, struct drv *c)
{
	ASSERT_OK(drv_open(b, paths[PB]));
	ASSERT_OK(drv_open(c, paths[PC]));
	for (unsigned q = 0; q < 2; q++) {
		close(b->r[q].call);
		b->r[q].call = full_eventfd();
		ASSERT_TRUE(b->r[q].call >= 0);
	}
	ASSERT_OK(drv_start(b, false, ~0ull));
	ASSERT_OK(drv_start(c, false, ~0ull));
	/* Every used buffer on B now wants to write a call that cannot be added. */
	for (int i = 0; i < 6; i++) {
		ASSERT_OK(exchange(c, b, 1000));
		ASSERT_OK(exchange(b, c, 1000));
	}
	return 0;
}

static int full_call(void)
{
	struct drv b, c;

	ASSERT_OK(full_call_pair(&b, &c));
	drv_close(&b);
	ASSERT_OK(tx_only(&c, 1000));
	drv_close(&c);
	return bad_check_clean(&net, "call fd at its maximum count");
}

static int full_err(void)
{
	struct drv b, c;
	uint64_t idx = 1;
	int err = full_eventfd();

	ASSERT_TRUE(err >= 0);
	ASSERT_OK(drv_open(&b, paths[PB]));
	ASSERT_OK(drv_open(&c, paths[PC]));
	ASSERT_OK(drv_start(&b, false, ~0ull));
	ASSERT_OK(drv_start(&c, false, ~0ull));
	ASSERT_EQ(drv_call_ack(&b, VHU_REQ_SET_VRING_ERR, &idx, 8, &err, 1), 0);
	ASSERT_OK(exchange(&b, &c, 1000));
	/* A descriptor outside memory breaks B's tx ring: the err eventfd is written. */
	uint64_t a = 0xdead00000000ull;
	uint32_t l = 128;
	uint16_t f = 0;
	drv_add_raw(&b, 1, &a, &l, &f, 1);
	ASSERT_TRUE(closed_by_peer(b.fd, 3000));
	ASSERT_OK(tx_only(&c, 1000));
	drv_close(&b);
	close(err);
	drv_close(&c);
	return bad_check_clean(&net, "err fd at its maximum count");
}

/* The front-end clears O_NONBLOCK again on its full call eventfds (the flag lives on the file
 * description both share) and sends a frame: vhu-net's write of B's call would wait forever.
 * The eventfd guard interrupts it, B's ring breaks, B alone is dropped, C goes on. */
static int blocking_call(void)
{
	struct drv b, c;

	ASSERT_OK(drv_open(&b, paths[PB]));
	ASSERT_OK(drv_open(&c, paths[PC]));
	for (unsigned q = 0; q < 2; q++) {
		close(b.r[q].call);
		b.r[q].call = full_eventfd();
		ASSERT_TRUE(b.r[q].call >= 0);
	}
	ASSERT_OK(drv_start(&b, false, ~0ull));
	ASSERT_OK(drv_start(&c, false, ~0ull));
	for (unsigned q = 0; q < 2; q++)
		ASSERT_OK(fcntl(b.r[q].call, F_SETFL, 0));
	ASSERT_TRUE(drv_add_buf(&c, 0, 0, 2048, true) >= 0);
	uint8_t *f = drv_buf(&b, 1, 0);
	memset(f, 0, 12 + 60);
	memset(f + 12, 0xff, 6);
	ASSERT_TRUE(drv_add_buf(&b, 1, 0, 12 + 60, false) >= 0);
	ASSERT_TRUE(closed_by_peer(b.fd, vg ? 10000 : 3000));
	drv_close(&b);
	/* Doing it again at once is refused: the port backs off (250 ms the first time), so a
	 * front-end cannot hold the thread 20 ms per reconnect. */
	if (!vg) {
		struct drv b2;
		ASSERT_OK(drv_open(&b2, paths[PB]));
		ASSERT_TRUE(closed_by_peer(b2.fd, 200));
		drv_close(&b2);
	}
	ASSERT_OK(tx_only(&c, 1000));
	drv_close(&c);
	msleep(vg ? 1000 : 400);
	ASSERT_OK(bad_check_clean(&net, "blocking call fd"));
	ASSERT_OK(expect_log("takes no connection for 250 ms"));
	return expect_log("call eventfd blocked");
}

static int sigterm_exits(pid_t pid, const char *who, int limit_ms)
{
	int st = 0;
	kill(pid, SIGTERM);
	uint64_t end = now_ms() + (uint64_t)limit_ms;
	while (waitpid(pid, &st, WNOHANG) == 0) {
		if (now_ms() > end) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			T_FAILF("%s ignored SIGTERM for %d ms", who, limit_ms);
			return -1;
		}
		msleep(20);
	}
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		T_FAILF("%s exit status 0x%x (valgrind errors exit 99)", who, st);
		return -1;
	}
	return 0;
}

/* ---- (f) vhu-blk --fd on a connected socket ---- */

static const char *blk_bin;
static char blk_log[128];

static pid_t blk_start(struct drv *d)
{
	int sp[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp))
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		char fdarg[16];
		close(sp[0]);
		snprintf(fdarg, sizeof(fdarg), "%d", sp[1]);
		if (!freopen(blk_log, "a", stderr) || !freopen("/dev/null", "w", stdout))
			_exit(127);
		execl(blk_bin, blk_bin, "--fd", fdarg, "--null", "1M", "--queues", "1", NULL);
		_exit(127);
	}
	close(sp[1]);
	fcntl(sp[0], F_SETFD, FD_CLOEXEC);
	if (drv_open_fd(d, sp[0]))
		return -1;
	d->nq = 1;
	return pid;
}

static int blk_read(struct drv *d, unsigned i, int timeout_ms)
{
	struct virtio_blk_outhdr *h = (void *)drv_buf(d, 0, 3 * (i % 8));
	uint64_t a[3] = { drv_buf_gpa(d, 0, 3 * (i % 8)), drv_buf_gpa(d, 0, 3 * (i % 8) + 1),
			  drv_buf_gpa(d, 0, 3 * (i % 8) + 2) };
	uint32_t l[3] = { sizeof(*h), 512, 1 }, id, len;
	uint16_t f[3] = { 0, VRING_DESC_F_WRITE, VRING_DESC_F_WRITE };

	*h = (struct virtio_blk_outhdr){ .type = VIRTIO_BLK_T_IN, .sector = i };
	*drv_buf(d, 0, 3 * (i % 8) + 2) = 0xff;
	ASSERT_TRUE(drv_add_raw(d, 0, a, l, f, 3) >= 0);
	ASSERT_EQ(drv_get_used(d, 0, &id, &len, timeout_ms), 1);
	ASSERT_EQ(*drv_buf(d, 0, 3 * (i % 8) + 2), VIRTIO_BLK_S_OK);
	return 0;
}

static int blk_silent(void)
{
	struct drv d;
	pid_t pid = blk_start(&d);

	ASSERT_TRUE(pid > 0);
	ASSERT_OK(drv_start(&d, false, ~0ull));
	ASSERT_OK(blk_read(&d, 0, 2000));
	/* A running VM sends nothing on the control plane for hours. */
	msleep(7000);
	if (!alive(pid)) {
		T_FAILF("vhu-blk --fd exited after 7 s of control-plane silence");
		drv_close(&d);
		return -1;
	}
	ASSERT_OK(blk_read(&d, 1, 2000));
	uint64_t t0 = now_ms();
	ASSERT_OK(sigterm_exits(pid, "vhu-blk --fd", 3000));
	printf("     vhu-blk --fd exited %llu ms after SIGTERM\n",
	       (unsigned long long)(now_ms() - t0));
	drv_close(&d);
	return 0;
}

static int blk_full_call(void)
{
	struct drv d;
	pid_t pid = blk_start(&d);

	ASSERT_TRUE(pid > 0);
	close(d.r[0].call);
	d.r[0].call = full_eventfd();
	ASSERT_TRUE(d.r[0].call >= 0);
	ASSERT_OK(drv_start(&d, false, ~0ull));
	for (unsigned i = 0; i < 20; i++)
		ASSERT_OK(blk_read(&d, i, 2000));
	ASSERT_OK(sigterm_exits(pid, "vhu-blk with a full call eventfd", 3000));
	drv_close(&d);
	return 0;
}

/* vhu-blk's queue thread writing a call eventfd the front-end made blocking and full: the
 * guard interrupts it, the ring breaks and the connection is dropped (--fd: the daemon ends). */
static int blk_blocking_call(void)
{
	struct drv d;
	pid_t pid = blk_start(&d);
	int st = 0;

	ASSERT_TRUE(pid > 0);
	close(d.r[0].call);
	d.r[0].call = full_eventfd();
	ASSERT_TRUE(d.r[0].call >= 0);
	ASSERT_OK(drv_start(&d, false, ~0ull));
	ASSERT_OK(fcntl(d.r[0].call, F_SETFL, 0));
	/* A read to complete; its call (or the queue thread's first one) blocks. Whether the
	 * read completes before the ring breaks depends on that order, so it is not checked. */
	struct virtio_blk_outhdr *h = (void *)drv_buf(&d, 0, 0);
	uint64_t a[3] = { drv_buf_gpa(&d, 0, 0), drv_buf_gpa(&d, 0, 1), drv_buf_gpa(&d, 0, 2) };
	uint32_t l[3] = { sizeof(*h), 512, 1 };
	uint16_t f[3] = { 0, VRING_DESC_F_WRITE, VRING_DESC_F_WRITE };
	*h = (struct virtio_blk_outhdr){ .type = VIRTIO_BLK_T_IN };
	drv_add_raw(&d, 0, a, l, f, 3);
	ASSERT_TRUE(closed_by_peer(d.fd, 3000));
	for (int t = 0; t < 150 && waitpid(pid, &st, WNOHANG) == 0; t++)
		msleep(20);
	if (alive(pid)) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		T_FAILF("vhu-blk still running 3 s after its call eventfd blocked");
		return -1;
	}
	drv_close(&d);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "grep -q 'call eventfd blocked' %s", blk_log);
	ASSERT_OK(system(cmd));
	return 0;
}

static int blk_conn_closes(void)
{
	struct drv d;
	pid_t pid = blk_start(&d);
	int st = 0;

	ASSERT_TRUE(pid > 0);
	ASSERT_OK(drv_start(&d, true, ~0ull));
	ASSERT_OK(blk_read(&d, 0, 2000));
	drv_close(&d);
	/* No listener: nothing left to serve. */
	for (int t = 0; t < 150 && waitpid(pid, &st, WNOHANG) == 0; t++)
		msleep(20);
	if (alive(pid)) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		T_FAILF("vhu-blk --fd still running 3 s after its connection closed");
		return -1;
	}
	ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	return 0;
}

/* SIGTERM while B's call eventfds are full and frames flow: vhu-net still reads it. */
static int net_sigterm(void)
{
	struct drv b, c;
	int ret = full_call_pair(&b, &c);

	ASSERT_OK(sigterm_exits(net.pid, "vhu-net", vg ? 10000 : 3000));
	drv_close(&b);
	drv_close(&c);
	return ret;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s VHU-NET VHU-BLK\n", argv[0]);
		return T_FAIL;
	}
	setvbuf(stdout, NULL, _IOLBF, 0); /* nothing buffered is copied into the children */
	signal(SIGPIPE, SIG_IGN);
	blk_bin = argv[2];
	vg = want_valgrind();
	for (int i = 0; i < NPORTS; i++)
		snprintf(paths[i], sizeof(paths[i]), "/tmp/vhu-freeze-%d-%d.sock", getpid(), i);
	snprintf(log_path, sizeof(log_path), "/tmp/vhu-freeze-%d.log", getpid());
	snprintf(blk_log, sizeof(blk_log), "/tmp/vhu-freeze-blk-%d.log", getpid());
	bad_start(&net, argv[1],
		  (const char *[]){ "-s", paths[PA], "-s", paths[PA2], "-s", paths[PB], "-s",
				    paths[PC], NULL },
		  vg);

	RUN(slow_loris);
	RUN(not_eventfds);
	RUN(reply_flood);
	RUN(full_call);
	RUN(full_err);
	RUN(blocking_call);
	RUN(net_sigterm);
	if (t_failed)
		tail_log(log_path, 40);
	RUN(blk_silent);
	RUN(blk_full_call);
	RUN(blk_blocking_call);
	RUN(blk_conn_closes);
	if (t_failed)
		tail_log(blk_log, 40);
	if (alive(net.pid)) {
		kill(net.pid, SIGKILL);
		waitpid(net.pid, NULL, 0);
	}
	unlink(log_path);
	unlink(blk_log);
	for (int i = 0; i < NPORTS; i++)
		unlink(paths[i]);
	T_MAIN_END();
}
