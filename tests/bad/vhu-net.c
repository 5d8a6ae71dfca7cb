/* SPDX-License-Identifier: MIT */
/*
 * Bad input against a running vhu-net --loopback, black box: each case sends one malformed
 * message or hostile descriptor chain and expects the daemon to drop that connection, stay
 * alive, and hold no more fds or memory mappings than before. Finally a good session must
 * still get a frame reflected. Run it with VALGRIND=1 to put the daemon under valgrind.
 *
 * usage: vhu-net-bad PATH-TO-vhu-net
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <linux/virtio_net.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../common/bad.h"
#include "../common/drv.h"
#include "../t.h"

T_DEFINE;

static char sock_path[128];
static char log_path[128];
static bool vg;
static int mem_unmapped(const char *name);
static const char *const front_end_maps[] = { "drv-mem", NULL };
static struct bad_daemon dm = { .name = "vhu-net",
				.sock = sock_path,
				.log = log_path,
				.maps = front_end_maps,
				.after = mem_unmapped };

/* The daemon's mapping of our memory: [lo, hi) of its drv-mem line, 0 when there is none. */
static uint64_t mem_lo, mem_hi;

static void find_mem_mapping(pid_t pid)
{
	char p[64], line[512];
	snprintf(p, sizeof(p), "/proc/%d/maps", pid);
	FILE *f = fopen(p, "r");
	mem_lo = mem_hi = 0;
	if (!f)
		return;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, "drv-mem") && sscanf(line, "%lx-%lx", &mem_lo, &mem_hi) == 2)
			break;
	fclose(f);
}

/* Whether anything (the SIGBUS guard's zero pages included) is still mapped in [lo, hi). */
static bool range_mapped(pid_t pid, uint64_t lo, uint64_t hi)
{
	char p[64], line[512];
	uint64_t a, b;
	bool found = false;
	snprintf(p, sizeof(p), "/proc/%d/maps", pid);
	FILE *f = fopen(p, "r");
	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		found = sscanf(line, "%lx-%lx", &a, &b) == 2 && a < hi && lo < b;
	fclose(f);
	return found;
}

/* After a case (bad_run_case): a truncation case's whole mapping of the shrunk memory is
 * gone too. */
static int mem_unmapped(const char *name)
{
	int ret = 0;

	if (mem_hi && range_mapped(dm.pid, mem_lo, mem_hi)) {
		T_FAILF("%s: 0x%lx-0x%lx still mapped after the detach", name, mem_lo, mem_hi);
		ret = -1;
	}
	mem_lo = mem_hi = 0;
	return ret;
}

static int raw(struct drv *d, const void *buf, size_t len, bool shut)
{
	if (send(d->fd, buf, len, MSG_NOSIGNAL) != (ssize_t)len)
		return -1;
	if (shut)
		shutdown(d->fd, SHUT_WR);
	return 0;
}

static int truncated_header(struct drv *d)
{
	uint32_t h[2] = { VHU_REQ_GET_FEATURES, VHU_VERSION };
	return raw(d, h, 6, true);
}

static int truncated_payload(struct drv *d)
{
	uint32_t h[4] = { VHU_REQ_SET_FEATURES, VHU_VERSION, 8, 0 };
	return raw(d, h, 16, true);
}

static int oversize(struct drv *d)
{
	uint32_t h[3] = { VHU_REQ_SET_FEATURES, VHU_VERSION, 1u << 20 };
	return raw(d, h, 12, false);
}

static int bad_version(struct drv *d)
{
	return drv_send(d, VHU_REQ_GET_FEATURES, 2, NULL, 0, NULL, 0);
}

static int reply_bit(struct drv *d)
{
	return drv_send(d, VHU_REQ_GET_FEATURES, VHU_VERSION | VHU_FLAG_REPLY, NULL, 0, NULL, 0);
}

static int unknown_request(struct drv *d)
{
	return drv_send(d, 99, VHU_VERSION, NULL, 0, NULL, 0);
}

static int wrong_size(struct drv *d)
{
	uint32_t v = 1;
	return drv_send(d, VHU_REQ_SET_FEATURES, VHU_VERSION, &v, 4, NULL, 0);
}

static int kick_without_fd(struct drv *d)
{
	uint64_t v = 0;
	return drv_send(d, VHU_REQ_SET_VRING_KICK, VHU_VERSION, &v, 8, NULL, 0);
}

static int too_many_fds(struct drv *d)
{
	uint64_t v = VHU_VRING_NOFD;
	int fds[3] = { d->memfd, d->r[0].kick, d->r[0].call };
	return drv_send(d, VHU_REQ_SET_VRING_CALL, VHU_VERSION, &v, 8, fds, 3);
}

static int nine_fds(struct drv *d)
{
	uint64_t v = 0;
	int fds[9];
	for (int i = 0; i < 9; i++)
		fds[i] = d->memfd;
	return drv_send(d, VHU_REQ_SET_VRING_CALL, VHU_VERSION, &v, 8, fds, 9);
}

static int mem_table_fd_mismatch(struct drv *d)
{
	struct vhu_mem_table t = { .nregions = 1 };
	t.regions[0] = (struct vhu_mem_region){ DRV_GPA_BASE, DRV_MEM_SIZE,
						(uint64_t)(uintptr_t)d->mem, 0 };
	int fds[2] = { d->memfd, d->memfd };
	return drv_send(d, VHU_REQ_SET_MEM_TABLE, VHU_VERSION, &t, 40, fds, 2);
}

static int mem_table_overlap(struct drv *d)
{
	struct vhu_mem_table t = { .nregions = 2 };
	t.regions[0] = (struct vhu_mem_region){ DRV_GPA_BASE, DRV_MEM_SIZE,
						(uint64_t)(uintptr_t)d->mem, 0 };
	t.regions[1] = (struct vhu_mem_region){ DRV_GPA_BASE + 4096, 4096,
						(uint64_t)(uintptr_t)d->mem, 0 };
	int fds[2] = { d->memfd, d->memfd };
	return drv_send(d, VHU_REQ_SET_MEM_TABLE, VHU_VERSION, &t, 8 + 64, fds, 2);
}

static int mem_table_zero(struct drv *d)
{
	struct vhu_mem_table t = { .nregions = 1 };
	t.regions[0] = (struct vhu_mem_region){ DRV_GPA_BASE, 0, (uint64_t)(uintptr_t)d->mem, 0 };
	return drv_send(d, VHU_REQ_SET_MEM_TABLE, VHU_VERSION, &t, 40, &d->memfd, 1);
}

static int mem_table_wrap(struct drv *d)
{
	struct vhu_mem_table t = { .nregions = 1 };
	t.regions[0] = (struct vhu_mem_region){ ~0ull - 100, DRV_MEM_SIZE,
						(uint64_t)(uintptr_t)d->mem, 0 };
	return drv_send(d, VHU_REQ_SET_MEM_TABLE, VHU_VERSION, &t, 40, &d->memfd, 1);
}

/* Found by fuzz-dispatch: a region past the end of its file faulted (SIGBUS) on first use. */
static int mem_table_past_eof(struct drv *d)
{
	struct vhu_mem_table t = { .nregions = 1 };
	t.regions[0] = (struct vhu_mem_region){ DRV_GPA_BASE, DRV_MEM_SIZE,
						(uint64_t)(uintptr_t)d->mem, DRV_MEM_SIZE / 2 };
	return drv_send(d, VHU_REQ_SET_MEM_TABLE, VHU_VERSION, &t, 40, &d->memfd, 1);
}

static int mem_table_nine(struct drv *d)
{
	struct vhu_mem_table t = { .nregions = 9 };
	return drv_send(d, VHU_REQ_SET_MEM_TABLE, VHU_VERSION, &t, sizeof(t), &d->memfd, 1);
}

static int vring_index(struct drv *d)
{
	struct vhu_vring_state s = { 200, 64 };
	return drv_send(d, VHU_REQ_SET_VRING_NUM, VHU_VERSION, &s, 8, NULL, 0);
}

static int vring_kick_index(struct drv *d)
{
	uint64_t v = 77;
	return drv_send(d, VHU_REQ_SET_VRING_KICK, VHU_VERSION, &v, 8, &d->r[0].kick, 1);
}

static int get_vring_base_index(struct drv *d)
{
	struct vhu_vring_state s = { 9999, 0 };
	return drv_send(d, VHU_REQ_GET_VRING_BASE, VHU_VERSION, &s, 8, NULL, 0);
}

static int ring_not_pow2(struct drv *d)
{
	struct vhu_vring_state s = { 0, 100 };
	return drv_send(d, VHU_REQ_SET_VRING_NUM, VHU_VERSION, &s, 8, NULL, 0);
}

static int ring_too_big(struct drv *d)
{
	struct vhu_vring_state s = { 0, 65536 };
	return drv_send(d, VHU_REQ_SET_VRING_NUM, VHU_VERSION, &s, 8, NULL, 0);
}

static int features_not_offered(struct drv *d)
{
	uint64_t f = 1ull << 63;
	return drv_send(d, VHU_REQ_SET_FEATURES, VHU_VERSION, &f, 8, NULL, 0);
}

static int ring_outside_memory(struct drv *d)
{
	if (drv_start(d, false, ~0ull))
		return -1;
	struct vhu_vring_addr a = { .index = 1, .desc = 0x10, .avail = 0x10000, .used = 0x20000 };
	return drv_send(d, VHU_REQ_SET_VRING_ADDR, VHU_VERSION, &a, sizeof(a), NULL, 0);
}

/* Descriptor cases: a started split or packed ring, then a hostile chain on the tx queue. */
static int chain_loop(struct drv *d)
{
	if (drv_start(d, false, ~0ull))
		return -1;
	uint64_t a[2] = { drv_buf_gpa(d, 1, 0), drv_buf_gpa(d, 1, 1) };
	/* Write the chain by hand: the second descriptor points back at the first. */
	struct drv_ring *r = &d->r[1];
	r->desc[0] = (struct vring_desc){ a[0], 64, VRING_DESC_F_NEXT, 1 };
	r->desc[1] = (struct vring_desc){ a[1], 64, VRING_DESC_F_NEXT, 0 };
	r->avail->ring[0] = 0;
	__atomic_store_n(&r->avail->idx, 1, __ATOMIC_RELEASE);
	drv_kick(d, 1);
	return 0;
}

static int chain_outside(struct drv *d)
{
	if (drv_start(d, false, ~0ull))
		return -1;
	uint64_t a = 0xdead00000000ull;
	uint32_t l = 128;
	uint16_t f = 0;
	drv_add_raw(d, 1, &a, &l, &f, 1);
	return 0;
}

static int chain_straddles_end(struct drv *d)
{
	if (drv_start(d, true, ~0ull))
		return -1;
	uint64_t a = DRV_GPA_BASE + DRV_MEM_SIZE - 16;
	uint32_t l = 64;
	uint16_t f = 0;
	drv_add_raw(d, 1, &a, &l, &f, 1);
	return 0;
}

static int head_out_of_range(struct drv *d)
{
	if (drv_start(d, false, ~0ull))
		return -1;
	struct drv_ring *r = &d->r[1];
	r->avail->ring[0] = 5000;
	__atomic_store_n(&r->avail->idx, 1, __ATOMIC_RELEASE);
	drv_kick(d, 1);
	return 0;
}

static int avail_idx_jump(struct drv *d)
{
	if (drv_start(d, false, ~0ull))
		return -1;
	__atomic_store_n(&d->r[1].avail->idx, 1000, __ATOMIC_RELEASE);
	drv_kick(d, 1);
	return 0;
}

static int nested_indirect(bool packed, struct drv *d)
{
	if (drv_start(d, packed, ~0ull))
		return -1;
	/* An indirect table whose entry is itself indirect. */
	uint8_t *tbl = drv_buf(d, 1, 10);
	uint64_t tgpa = drv_buf_gpa(d, 1, 10);
	if (packed) {
		struct vring_packed_desc inner = { tgpa, 16, 0, VRING_DESC_F_INDIRECT };
		memcpy(tbl, &inner, sizeof(inner));
	} else {
		struct vring_desc inner = { tgpa, 16, VRING_DESC_F_INDIRECT, 0 };
		memcpy(tbl, &inner, sizeof(inner));
	}
	uint64_t a = tgpa;
	uint32_t l = 16;
	uint16_t f = VRING_DESC_F_INDIRECT;
	drv_add_raw(d, 1, &a, &l, &f, 1);
	return 0;
}

static int nested_indirect_split(struct drv *d)
{
	return nested_indirect(false, d);
}

static int nested_indirect_packed(struct drv *d)
{
	return nested_indirect(true, d);
}

static int indirect_bad_len(struct drv *d)
{
	if (drv_start(d, false, ~0ull))
		return -1;
	uint64_t a = drv_buf_gpa(d, 1, 10);
	uint32_t l = 17;
	uint16_t f = VRING_DESC_F_INDIRECT;
	drv_add_raw(d, 1, &a, &l, &f, 1);
	return 0;
}

static int packed_long_chain(struct drv *d)
{
	if (drv_start(d, true, ~0ull))
		return -1;
	/* Every slot available and chained: the chain never ends. */
	struct drv_ring *r = &d->r[1];
	uint16_t fl = (1u << VRING_PACKED_DESC_F_AVAIL) | VRING_DESC_F_NEXT;
	for (int i = DRV_QSIZE - 1; i >= 0; i--) {
		r->pdesc[i].addr = drv_buf_gpa(d, 1, 0);
		r->pdesc[i].len = 64;
		r->pdesc[i].id = 0;
		__atomic_store_n(&r->pdesc[i].flags, fl, __ATOMIC_RELEASE);
	}
	drv_kick(d, 1);
	return 0;
}

static int writable_then_readable(struct drv *d)
{
	if (drv_start(d, false, ~0ull))
		return -1;
	uint64_t a[2] = { drv_buf_gpa(d, 1, 0), drv_buf_gpa(d, 1, 1) };
	uint32_t l[2] = { 64, 64 };
	uint16_t f[2] = { VRING_DESC_F_WRITE, 0 };
	drv_add_raw(d, 1, a, l, f, 2);
	return 0;
}

/* ---- front-end memory shrunk under the daemon (SIGBUS guard) ---- */

/* A UDP frame from src to dst (with a zeroed virtio-net header) at p. */
static void put_frame(uint8_t *p, const uint8_t *dst, const uint8_t *src, uint8_t tag)
{
	uint8_t frame[60] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x08, 0x00, 0x45 };

	memcpy(frame, dst, 6);
	memcpy(frame + 6, src, 6);
	frame[14 + 9] = 17;
	frame[59] = tag;
	memset(p, 0, 12);
	memcpy(p + 12, frame, sizeof(frame));
}

static const uint8_t mac_a[6] = { 0x52, 0x54, 0, 0, 0, 0xa },
		     mac_b[6] = { 0x52, 0x54, 0, 0, 0, 0xb };

/* The rings are written, then the memfd is truncated to 0, then the kick: vhu-net's first
 * look at the ring faults. */
static int shrink_to_zero(struct drv *d)
{
	if (drv_start(d, false, ~0ull))
		return -1;
	find_mem_mapping(dm.pid);
	put_frame(drv_buf(d, 1, 0), mac_b, mac_a, 1);
	int kick = d->r[1].kick;
	d->r[1].kick = -1; /* drv_add_buf without its kick */
	drv_add_buf(d, 1, 0, 72, false);
	d->r[1].kick = kick;
	if (ftruncate(d->memfd, 0) < 0)
		return -1;
	drv_kick(d, 1);
	return 0;
}

/* Truncated to half: the rings stay, a buffer in the lost half faults when vhu-net copies
 * the frame out of it (tx, device code) or into it (rx, the reflected frame). */
static int shrink_to_half(struct drv *d, bool packed, bool rx)
{
	if (drv_start(d, packed, ~0ull))
		return -1;
	find_mem_mapping(dm.pid);
	if (ftruncate(d->memfd, DRV_MEM_SIZE / 2) < 0)
		return -1;
	uint64_t lost = DRV_GPA_BASE + DRV_MEM_SIZE / 2 + 0x10000;
	uint32_t l = rx ? 2048 : 72;
	uint16_t f = rx ? VRING_DESC_F_WRITE : 0;
	if (rx) {
		drv_add_raw(d, 0, &lost, &l, &f, 1);
		put_frame(drv_buf(d, 1, 0), mac_b, mac_a, 2);
		drv_add_buf(d, 1, 0, 72, false);
	} else {
		drv_add_raw(d, 1, &lost, &l, &f, 1);
	}
	return 0;
}

static int shrink_tx_split(struct drv *d)
{
	return shrink_to_half(d, false, false);
}

static int shrink_rx_packed(struct drv *d)
{
	return shrink_to_half(d, true, true);
}

/* Sends a frame on d's tx queue and waits until vhu-net has consumed it. */
static int send_on(struct drv *d, const uint8_t *dst, const uint8_t *src, uint8_t tag)
{
	uint32_t id, len;

	put_frame(drv_buf(d, 1, tag % 8), dst, src, tag);
	drv_add_buf(d, 1, tag % 8, 72, false);
	return drv_get_used(d, 1, &id, &len, 3000) == 1 ? 0 : -1;
}

/* Waits for a frame on d's rx queue; returns its tag byte or -1. */
static int recv_on(struct drv *d)
{
	uint32_t id, len;

	if (drv_get_used(d, 0, &id, &len, 3000) != 1 || id >= DRV_QSIZE || len != 72)
		return -1;
	/* Split heads are 4 descriptors apart, buffer slot i went in with avail index i. */
	return drv_buf(d, 0, id / 4)[12 + 59];
}

/*
 * Two ports of one switch; port A's front-end truncates its memory while port B keeps
 * sending frames to A: vhu-net faults on A's rx ring while it handles B's tx ring. Only A's
 * connection goes; B's frames keep being consumed, and a new front-end on A's socket gets
 * them. Then the daemon holds no more fds or mappings than before, and exits cleanly.
 */
static int two_ports(const char *bin)
{
	char pa[128], pb[128], lg[128];
	struct bad_daemon saved = dm;
	int ret = -1, st = 0;
	struct drv a, b;

	snprintf(pa, sizeof(pa), "/tmp/vhu-bad-%d-a.sock", getpid());
	snprintf(pb, sizeof(pb), "/tmp/vhu-bad-%d-b.sock", getpid());
	snprintf(lg, sizeof(lg), "/tmp/vhu-bad-%d-2.log", getpid());
	dm.pid = spawn_daemon(bin,
			      (const char *[]){ "--socket-path", pa, "--socket-path", pb, NULL },
			      lg, NULL, vg);
	if (wait_socket(pa) == 0)
		wait_socket(pb);
	msleep(vg ? 500 : 50);
	dm.base_fds = count_fds(dm.pid);
	dm.base_maps = bad_count_maps(&dm);
	if (drv_open(&a, pa) || drv_open(&b, pb) || drv_start(&a, false, ~0ull) ||
	    drv_start(&b, false, ~0ull))
		goto out;
	for (unsigned i = 0; i < 8; i++) {
		drv_add_buf(&a, 0, i, 2048, true);
		drv_add_buf(&b, 0, i, 2048, true);
	}
	/* A -> B teaches the switch where A is; then frames flow from B to A. */
	if (send_on(&a, mac_b, mac_a, 100) || recv_on(&b) != 100)
		goto out;
	for (uint8_t t = 0; t < 4; t++)
		if (send_on(&b, mac_a, mac_b, t) || recv_on(&a) != t)
			goto out;
	if (ftruncate(a.memfd, 0) < 0)
		goto out;
	for (uint8_t t = 4; t < 12; t++)
		if (send_on(&b, mac_a, mac_b, t)) {
			T_FAILF("two ports: B's frame %u not consumed after A's memory shrank", t);
			goto out;
		}
	if (!closed_by_peer(a.fd, 3000)) {
		T_FAILF("two ports: vhu-net kept A's connection");
		goto out;
	}
	drv_close(&a);
	/* A new front-end on A's socket gets B's frames. */
	if (drv_open(&a, pa) || drv_start(&a, false, ~0ull))
		goto out;
	drv_add_buf(&a, 0, 0, 2048, true);
	if (send_on(&b, mac_a, mac_b, 50) || recv_on(&a) != 50) {
		T_FAILF("two ports: no frame from B to the new A");
		goto out;
	}
	drv_close(&a);
	drv_close(&b);
	ret = bad_check_clean(&dm, "two ports");
	if (ret == 0 && !grep_log(lg, "shrank under the device: SIGBUS at")) {
		T_FAILF("two ports: no SIGBUS message in the log");
		ret = -1;
	}
out:
	st = stop_daemon(dm.pid);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		T_FAILF("two ports: vhu-net exit status 0x%x (valgrind errors exit 99)", st);
		ret = -1;
	}
	if (ret)
		tail_log(lg, 30);
	unlink(lg);
	dm = saved;
	return ret;
}

/* SEND_RARP with the MAC in the first 6 bytes of its u64 payload; the ack value (or -errno). */
static int64_t send_rarp(struct drv *d, const uint8_t *mac)
{
	uint8_t p[8] = { 0 };

	memcpy(p, mac, 6);
	return drv_call_ack(d, VHU_REQ_SEND_RARP, p, 8, NULL, 0);
}

/* Waits for the RARP announcing mac on d's rx queue. */
static int recv_rarp(struct drv *d, const uint8_t *mac)
{
	static const uint8_t head[] = { 0x80, 0x35, 0, 1, 8, 0, 6, 4, 0, 3 };
	uint32_t id, len;

	if (drv_get_used(d, 0, &id, &len, 3000) != 1 || id >= DRV_QSIZE || len != 12 + 64)
		return -1;
	const uint8_t *f = drv_buf(d, 0, id / 4) + 12;
	for (int i = 0; i < 6; i++)
		if (f[i] != 0xff)
			return -1;
	return memcmp(f + 6, mac, 6) || memcmp(f + 12, head, sizeof(head)) ||
			       memcmp(f + 22, mac, 6) || memcmp(f + 32, mac, 6)
		       ? -1
		       : 0;
}

/*
 * A guest migrates between two ports of one switch: A on port 1, its peer B on port 0; the
 * destination's front-end connects on port 2 and sends SEND_RARP for A's MAC. Refused while
 * RARP is not negotiated, and for a multicast or zero MAC (nothing sent, the connection
 * stays); then B gets the broadcast RARP from A's MAC, and B's next frame to A goes to port 2
 * at once, without A having sent anything there. A SEND_RARP of the wrong size drops the
 * connection.
 */
static int rarp_migration(const char *bin)
{
	static const uint8_t zero[6], mcast[6] = { 0x01, 0, 0x5e, 0, 0, 1 };
	char path[3][128], lg[128];
	pid_t saved_pid = dm.pid;
	int ret = -1, st = 0;
	struct drv d[3];
	unsigned opened = 0;
	uint32_t id, len;

	for (int i = 0; i < 3; i++)
		snprintf(path[i], sizeof(path[i]), "/tmp/vhu-bad-%d-r%d.sock", getpid(), i);
	snprintf(lg, sizeof(lg), "/tmp/vhu-bad-%d-r.log", getpid());
	dm.pid = spawn_daemon(bin,
			      (const char *[]){ "--socket-path", path[0], "--socket-path", path[1],
						"--socket-path", path[2], NULL },
			      lg, NULL, vg);
	for (int i = 0; i < 3; i++)
		if (wait_socket(path[i]))
			goto out;
	for (int i = 0; i < 3; i++) {
		if (drv_open(&d[i], path[i]))
			goto out;
		opened++;
		if (drv_start(&d[i], false, ~0ull))
			goto out;
		for (unsigned b = 0; b < 8; b++)
			drv_add_buf(&d[i], 0, b, 2048, true);
	}
	/* B floods to both A ports, A answers from port 1: the switch knows both. */
	if (send_on(&d[0], mac_a, mac_b, 1) || recv_on(&d[1]) != 1 || recv_on(&d[2]) != 1 ||
	    send_on(&d[1], mac_b, mac_a, 2) || recv_on(&d[0]) != 2 ||
	    send_on(&d[0], mac_a, mac_b, 3) || recv_on(&d[1]) != 3) {
		T_FAILF("rarp: the switch did not learn the two guests");
		goto out;
	}
	if (send_rarp(&d[2], mac_a) <= 0) {
		T_FAILF("rarp: SEND_RARP accepted without the RARP protocol feature");
		goto out;
	}
	uint64_t pf = d[2].protocol_features | (1ULL << VHU_PROTO_F_RARP);
	if (drv_call_ack(&d[2], VHU_REQ_SET_PROTOCOL_FEATURES, &pf, 8, NULL, 0) != 0) {
		T_FAILF("rarp: the RARP protocol feature is not offered");
		goto out;
	}
	if (send_rarp(&d[2], mcast) <= 0 || send_rarp(&d[2], zero) <= 0) {
		T_FAILF("rarp: SEND_RARP of a multicast or zero MAC accepted");
		goto out;
	}
	if (drv_get_used(&d[0], 0, &id, &len, 200) != 0) {
		T_FAILF("rarp: a refused SEND_RARP sent a frame");
		goto out;
	}
	if (send_rarp(&d[2], mac_a) != 0) {
		T_FAILF("rarp: SEND_RARP refused");
		goto out;
	}
	if (recv_rarp(&d[0], mac_a) || recv_rarp(&d[1], mac_a)) {
		T_FAILF("rarp: no RARP broadcast from A's MAC on the other ports");
		goto out;
	}
	if (send_on(&d[0], mac_a, mac_b, 4) || recv_on(&d[2]) != 4 ||
	    drv_get_used(&d[1], 0, &id, &len, 200) != 0) {
		T_FAILF("rarp: B's frame to A did not go to A's new port");
		goto out;
	}
	uint32_t four = 0;
	drv_send(&d[2], VHU_REQ_SEND_RARP, VHU_VERSION, &four, 4, NULL, 0);
	if (!closed_by_peer(d[2].fd, 3000)) {
		T_FAILF("rarp: a SEND_RARP of 4 bytes kept the connection");
		goto out;
	}
	if (!grep_log(lg, "SEND_RARP refused: 01:00:5e:00:00:01") ||
	    !grep_log(lg,
		      "SEND_RARP 52:54:00:00:00:0a: RARP broadcast.*learned on port 1 before")) {
		T_FAILF("rarp: the log does not tell the refusal and the move");
		goto out;
	}
	ret = 0;
out:
	while (opened-- > 0)
		drv_close(&d[opened]);
	st = stop_daemon(dm.pid);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		T_FAILF("rarp: vhu-net exit status 0x%x (valgrind errors exit 99)", st);
		ret = -1;
	}
	if (ret)
		tail_log(lg, 30);
	unlink(lg);
	dm.pid = saved_pid;
	return ret;
}

/*
 * The RARP also leaves by a tap port: a packet socket on the tap sees it (root only, for the
 * tap and the packet socket; skipped otherwise).
 */
static int rarp_tap(const char *bin)
{
	char path[128], lg[128], tap[IF_NAMESIZE];
	pid_t saved_pid = dm.pid;
	int ret = -1, st, ps = -1;
	unsigned idx = 0;
	uint8_t f[128];
	struct drv d;
	bool opened = false;

	if (geteuid() != 0 || access("/dev/net/tun", R_OK | W_OK)) {
		printf("skip RARP out of a tap (needs root and /dev/net/tun)\n");
		return 0;
	}
	snprintf(path, sizeof(path), "/tmp/vhu-bad-%d-t.sock", getpid());
	snprintf(lg, sizeof(lg), "/tmp/vhu-bad-%d-t.log", getpid());
	snprintf(tap, sizeof(tap), "vhur%d", getpid() % 100000);
	dm.pid = spawn_daemon(bin, (const char *[]){ "--socket-path", path, "--tap", tap, NULL },
			      lg, NULL, vg);
	if (wait_socket(path))
		goto out;
	for (int t = 0; t < 100 && !(idx = if_nametoindex(tap)); t++)
		msleep(20);
	ps = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(0x8035));
	struct sockaddr_ll sll = { .sll_family = AF_PACKET,
				   .sll_protocol = htons(0x8035),
				   .sll_ifindex = (int)idx };
	if (!idx || ps < 0 || bind(ps, (struct sockaddr *)&sll, sizeof(sll))) {
		T_FAILF("rarp tap: no packet socket on tap %s", tap);
		goto out;
	}
	if (drv_open(&d, path))
		goto out;
	opened = true;
	uint64_t pf;
	if (drv_start(&d, false, ~0ull) ||
	    (pf = d.protocol_features | (1ULL << VHU_PROTO_F_RARP),
	     drv_call_ack(&d, VHU_REQ_SET_PROTOCOL_FEATURES, &pf, 8, NULL, 0)) ||
	    send_rarp(&d, mac_a) != 0) {
		T_FAILF("rarp tap: SEND_RARP refused");
		goto out;
	}
	struct pollfd pfd = { .fd = ps, .events = POLLIN };
	ssize_t n = poll(&pfd, 1, 3000) == 1 ? recv(ps, f, sizeof(f), 0) : -1;
	if (n < 60 || f[0] != 0xff || memcmp(f + 6, mac_a, 6) || f[12] != 0x80 || f[13] != 0x35 ||
	    memcmp(f + 22, mac_a, 6)) {
		T_FAILF("rarp tap: no RARP from A's MAC on the tap (%zd bytes)", n);
		goto out;
	}
	ret = 0;
out:
	if (opened)
		drv_close(&d);
	if (ps >= 0)
		close(ps);
	st = stop_daemon(dm.pid);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		T_FAILF("rarp tap: vhu-net exit status 0x%x (valgrind errors exit 99)", st);
		ret = -1;
	}
	if (ret)
		tail_log(lg, 30);
	unlink(lg);
	dm.pid = saved_pid;
	return ret;
}

static int hangup_midway(struct drv *d)
{
	if (drv_start(d, false, ~0ull))
		return -1;
	shutdown(d->fd, SHUT_RDWR);
	return 0;
}

/* The good session: a UDP frame on tx comes back on rx with addresses swapped. */
static int good_session(bool packed)
{
	struct drv d;
	uint32_t id, len;

	ASSERT_OK(drv_open(&d, sock_path));
	ASSERT_OK(drv_start(&d, packed, ~0ull));
	ASSERT_TRUE(drv_add_buf(&d, 0, 0, 2048, true) >= 0);
	uint8_t *f = drv_buf(&d, 1, 0);
	memset(f, 0, 12 + 60);
	uint8_t frame[60] = { 0x52, 0x54, 0, 0, 0, 2, 0x52, 0x54, 0, 0, 0, 1, 0x08, 0x00, 0x45 };
	frame[14 + 9] = 17;
	memcpy(frame + 26, "\x0a\x00\x00\x01\x0a\x00\x00\x02", 8);
	memcpy(frame + 34, "\x10\x00\x20\x00", 4);
	memcpy(frame + 42, "payload!", 8);
	memcpy(f + 12, frame, sizeof(frame));
	ASSERT_TRUE(drv_add_buf(&d, 1, 0, 12 + sizeof(frame), false) >= 0);
	ASSERT_EQ(drv_get_used(&d, 1, &id, &len, 3000), 1);
	ASSERT_EQ(drv_get_used(&d, 0, &id, &len, 3000), 1);
	ASSERT_EQ(len, 12 + sizeof(frame));
	const uint8_t *g = drv_buf(&d, 0, 0) + 12;
	ASSERT_OK(memcmp(g, frame + 6, 6));
	ASSERT_OK(memcmp(g + 6, frame, 6));
	ASSERT_OK(memcmp(g + 26, frame + 30, 4));
	ASSERT_OK(memcmp(g + 34, frame + 36, 2));
	ASSERT_OK(memcmp(g + 42, "payload!", 8));
	drv_close(&d);
	return bad_check_clean(&dm, packed ? "good session (packed)" : "good session (split)");
}

/* ---- the control queue (ring 2: one pair, so its index is 2 with or without MQ) ---- */

/* Sends class/cmd/data on the control queue; returns the ack byte or -1. */
static int ctrl_cmd(struct drv *d, uint8_t cls, uint8_t cmd, const void *data, uint32_t len)
{
	static unsigned slot;
	uint8_t *c = drv_buf(d, 2, slot % 64);
	uint8_t *ack = drv_buf(d, 2, (slot + 1) % 64);
	uint64_t addr[2] = { drv_buf_gpa(d, 2, slot % 64), drv_buf_gpa(d, 2, (slot + 1) % 64) };
	uint32_t lens[2] = { 2 + len, 1 }, id, used;
	uint16_t flags[2] = { 0, VRING_DESC_F_WRITE };

	slot += 2;
	c[0] = cls;
	c[1] = cmd;
	if (len)
		memcpy(c + 2, data, len);
	*ack = 0xee;
	drv_add_raw(d, 2, addr, lens, flags, 2);
	if (drv_get_used(d, 2, &id, &used, 3000) != 1)
		return -1;
	return *ack;
}

/* A UDP frame from src on tx; returns 1 when it came back (to src) on rx, 0 if not. */
static int bounce(struct drv *d, const uint8_t *src)
{
	static unsigned n;
	uint32_t id, len;
	uint8_t frame[60] = { 0x52, 0x54, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0x08, 0x00, 0x45 };

	memcpy(frame + 6, src, 6);
	frame[14 + 9] = 17;
	frame[59] = (uint8_t)n;
	uint8_t *f = drv_buf(d, 1, n % 8);
	memset(f, 0, 12);
	memcpy(f + 12, frame, sizeof(frame));
	if (n == 0 || d->r[0].used_seen == d->r[0].avail_idx) /* keep one rx buffer posted */
		drv_add_buf(d, 0, n % 8, 2048, true);
	drv_add_buf(d, 1, n % 8, 12 + sizeof(frame), false);
	n++;
	if (drv_get_used(d, 1, &id, &len, 3000) != 1)
		return -1;
	if (drv_get_used(d, 0, &id, &len, 300) != 1)
		return 0;
	return 1;
}

static int good_ctrl(void)
{
	static const uint8_t dev_mac[6] = { 0x02, 0x76, 0x68, 0x75, 0x00, 0x00 };
	static const uint8_t other[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
	const uint64_t want = ~0ull;
	uint8_t off = 0, on = 1, table[4 + 6 + 4] = { 1, 0, 0, 0 };
	uint16_t pairs;
	struct drv d;

	ASSERT_OK(drv_open(&d, sock_path));
	d.nq = 3;
	ASSERT_OK(drv_start(&d, false, want));
	ASSERT_TRUE(d.features & (1ULL << VIRTIO_NET_F_CTRL_VQ));
	/* Promiscuous by default: a frame for any MAC comes back. */
	ASSERT_EQ(bounce(&d, other), 1);
	ASSERT_EQ(ctrl_cmd(&d, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, &off, 1),
		  VIRTIO_NET_OK);
	/* Now only the device MAC gets through. */
	ASSERT_EQ(bounce(&d, other), 0);
	ASSERT_EQ(bounce(&d, dev_mac), 1);
	/* A unicast filter entry lets `other` in again. */
	memcpy(table + 4, other, 6);
	ASSERT_EQ(ctrl_cmd(&d, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, table,
			   sizeof(table)),
		  VIRTIO_NET_OK);
	ASSERT_EQ(bounce(&d, other), 1);
	/* A table that claims more entries than it carries is refused and changes nothing. */
	table[0] = 200;
	ASSERT_EQ(ctrl_cmd(&d, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, table,
			   sizeof(table)),
		  VIRTIO_NET_ERR);
	ASSERT_EQ(bounce(&d, other), 1);
	/* Empty tables; then the MAC address itself moves to `other`. */
	memset(table, 0, sizeof(table));
	ASSERT_EQ(ctrl_cmd(&d, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, table, 8),
		  VIRTIO_NET_OK);
	ASSERT_EQ(bounce(&d, other), 0);
	ASSERT_EQ(ctrl_cmd(&d, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_ADDR_SET, other, 6),
		  VIRTIO_NET_OK);
	ASSERT_EQ(bounce(&d, other), 1);
	ASSERT_EQ(bounce(&d, dev_mac), 0);
	ASSERT_EQ(ctrl_cmd(&d, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, &on, 1),
		  VIRTIO_NET_OK);
	ASSERT_EQ(bounce(&d, dev_mac), 1);
	/* Queue pairs: 1 is all this port has. */
	pairs = 2;
	ASSERT_EQ(ctrl_cmd(&d, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, &pairs, 2),
		  VIRTIO_NET_ERR);
	pairs = 1;
	ASSERT_EQ(ctrl_cmd(&d, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, &pairs, 2),
		  VIRTIO_NET_OK);
	/* Unknown class, short command, wrong payload size. */
	ASSERT_EQ(ctrl_cmd(&d, 99, 0, NULL, 0), VIRTIO_NET_ERR);
	ASSERT_EQ(ctrl_cmd(&d, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, table, 3),
		  VIRTIO_NET_ERR);
	ASSERT_EQ(ctrl_cmd(&d, VIRTIO_NET_CTRL_VLAN, VIRTIO_NET_CTRL_VLAN_ADD, table, 2),
		  VIRTIO_NET_ERR);
	drv_close(&d);
	return bad_check_clean(&dm, "control queue");
}

/*
 * A driver that floods the control queue: it makes the same command available again as soon as
 * the device wrote the used entry of the one before (it need not wait for the used index), so
 * the ring never runs dry. vhu-net serves at most a ring's worth of commands per turn of its
 * loop (it publishes the used index at the end of each turn: the driver never sees more used
 * entries written than the index names than that), and a frame on the same port's tx ring
 * still comes back meanwhile.
 */
struct flood {
	struct drv *d;
	volatile bool stop;
	uint64_t served;
	unsigned unpublished; /* most used entries seen written before the used index named them */
};

static void *flood_ctrl(void *arg)
{
	struct flood *f = arg;
	struct drv_ring *r = &f->d->r[2];
	uint16_t avail = r->avail_idx, used = r->used_seen;
	const uint16_t head = 60; /* descriptors 60 (command) and 61 (ack), set by the caller */
	unsigned spins = 0;

	while (!f->stop) {
		/* The device wrote entry `used`: the buffer may go again. */
		while (__atomic_load_n(&r->used->ring[used % DRV_QSIZE].id, __ATOMIC_ACQUIRE) !=
		       0xffffffffu) {
			r->used->ring[used % DRV_QSIZE].id = 0xffffffffu;
			used++;
			f->served++;
			uint16_t pub = __atomic_load_n(&r->used->idx, __ATOMIC_ACQUIRE);
			int16_t ahead = (int16_t)(used - pub); /* < 0: published, not yet seen */
			if (ahead > 0 && (unsigned)ahead > f->unpublished)
				f->unpublished = (unsigned)ahead;
		}
		while ((uint16_t)(avail - used) < DRV_QSIZE) {
			r->avail->ring[avail % DRV_QSIZE] = head;
			avail++;
			__atomic_store_n(&r->avail->idx, avail, __ATOMIC_RELEASE);
		}
		if (++spins % 4096 == 1)
			drv_kick(f->d, 2);
	}
	return NULL;
}

static int ctrl_flood(void)
{
	static const uint8_t other[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
	uint8_t on = 1;
	struct drv d;
	pthread_t t;

	ASSERT_OK(drv_open(&d, sock_path));
	d.nq = 3;
	ASSERT_OK(drv_start(&d, false, ~0ull));
	ASSERT_EQ(ctrl_cmd(&d, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, &on, 1),
		  VIRTIO_NET_OK);
	ASSERT_EQ(bounce(&d, other), 1);
	/* The command: a receive MAC table of 9 entries (64 bytes), one byte per descriptor of an
	 * indirect table (63 pieces and the ack): each takes the device far longer than the
	 * driver, so the ring never runs dry. */
	struct drv_ring *r = &d.r[2];
	uint8_t *cmd = drv_buf(&d, 2, 40), *ack = drv_buf(&d, 2, 41);
	struct vring_desc *ind = (struct vring_desc *)drv_buf(&d, 2, 42);
	memset(cmd, 0, 64);
	cmd[0] = VIRTIO_NET_CTRL_MAC;
	cmd[1] = VIRTIO_NET_CTRL_MAC_TABLE_SET;
	cmd[2] = 9; /* 9 unicast entries of 6 bytes, then 0 multicast */
	for (unsigned i = 0; i < 63; i++)
		ind[i] = (struct vring_desc){ drv_buf_gpa(&d, 2, 40) + i, i == 62 ? 2 : 1,
					      VRING_DESC_F_NEXT, (uint16_t)(i + 1) };
	ind[63] = (struct vring_desc){ drv_buf_gpa(&d, 2, 41), 1, VRING_DESC_F_WRITE, 0 };
	r->desc[60] = (struct vring_desc){ drv_buf_gpa(&d, 2, 42), 64 * sizeof(*ind),
					   VRING_DESC_F_INDIRECT, 0 };
	*ack = 0xee;
	for (unsigned i = 0; i < DRV_QSIZE; i++)
		r->used->ring[i].id = 0xffffffffu;
	struct flood f = { .d = &d };
	ASSERT_OK(pthread_create(&t, NULL, flood_ctrl, &f));
	msleep(100);
	uint64_t before = f.served;
	int got = bounce(&d, other);
	msleep(100);
	uint64_t during = f.served - before;
	f.stop = true;
	pthread_join(t, NULL);
	printf("     control queue flood: %llu commands served while a frame made its round trip, "
	       "at most %u per turn\n",
	       (unsigned long long)during, f.unpublished);
	uint8_t a = *ack;
	drv_close(&d);
	ASSERT_TRUE(during > 4 * DRV_QSIZE); /* the flood was on, not drained */
	ASSERT_TRUE(f.unpublished <= DRV_QSIZE);
	ASSERT_EQ(a, VIRTIO_NET_OK);
	ASSERT_EQ(got, 1);
	return bad_check_clean(&dm, "control queue flood");
}

/*
 * RESET_DEVICE puts the receive filters back as after a device reset (promiscuous) and leaves no
 * control queue: a port that had turned promiscuous mode off receives every frame again once its
 * rings are set up anew. The rings come back without SET_FEATURES (features 0: a 10-byte header,
 * no EVENT_IDX), since SET_FEATURES resets the filters on its own.
 */
static int ctrl_after_reset(void)
{
	static const uint8_t other[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
	uint8_t off = 0, frame[60] = { 0x52, 0x54, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0x08, 0x00, 0x45 };
	uint32_t id, len;
	struct drv d;

	ASSERT_OK(drv_open(&d, sock_path));
	d.nq = 3;
	ASSERT_OK(drv_start(&d, false, ~0ull));
	ASSERT_TRUE(d.features & (1ULL << VIRTIO_NET_F_CTRL_VQ));
	ASSERT_TRUE(d.protocol_features & (1ULL << VHU_PROTO_F_RESET_DEVICE));
	ASSERT_EQ(ctrl_cmd(&d, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, &off, 1),
		  VIRTIO_NET_OK);
	ASSERT_EQ(bounce(&d, other), 0);
	ASSERT_EQ(drv_call_ack(&d, VHU_REQ_RESET_DEVICE, NULL, 0, NULL, 0), 0);
	d.features = 0;
	for (unsigned q = 0; q < 2; q++) {
		struct drv_ring *r = &d.r[q];
		struct vhu_vring_state num = { q, DRV_QSIZE }, base = { q, 0 }, en = { q, 1 };
		struct vhu_vring_addr a = {
			.index = q,
			.desc = (uint64_t)(uintptr_t)(d.mem + r->desc_off),
			.avail = (uint64_t)(uintptr_t)(d.mem + r->avail_off),
			.used = (uint64_t)(uintptr_t)(d.mem + r->used_off),
		};
		uint64_t u = q;
		memset(d.mem + r->desc_off, 0, 0x3000);
		r->avail_idx = r->used_seen = 0;
		ASSERT_EQ(drv_call_ack(&d, VHU_REQ_SET_VRING_NUM, &num, 8, NULL, 0), 0);
		ASSERT_EQ(drv_call_ack(&d, VHU_REQ_SET_VRING_BASE, &base, 8, NULL, 0), 0);
		ASSERT_EQ(drv_call_ack(&d, VHU_REQ_SET_VRING_ADDR, &a, sizeof(a), NULL, 0), 0);
		ASSERT_EQ(drv_call_ack(&d, VHU_REQ_SET_VRING_CALL, &u, 8, &r->call, 1), 0);
		ASSERT_EQ(drv_call_ack(&d, VHU_REQ_SET_VRING_KICK, &u, 8, &r->kick, 1), 0);
		ASSERT_EQ(drv_call_ack(&d, VHU_REQ_SET_VRING_ENABLE, &en, 8, NULL, 0), 0);
	}
	/* A frame from `other`, reflected back to it: delivered again (promiscuous). */
	memcpy(frame + 6, other, 6);
	frame[14 + 9] = 17;
	uint8_t *f = drv_buf(&d, 1, 0);
	memset(f, 0, 10);
	memcpy(f + 10, frame, sizeof(frame));
	drv_add_buf(&d, 0, 0, 2048, true);
	drv_add_buf(&d, 1, 0, 10 + sizeof(frame), false);
	ASSERT_EQ(drv_get_used(&d, 1, &id, &len, 3000), 1);
	ASSERT_EQ(drv_get_used(&d, 0, &id, &len, 1000), 1);
	ASSERT_EQ(len, 10 + sizeof(frame));
	drv_close(&d);
	return bad_check_clean(&dm, "control queue filters after RESET_DEVICE");
}

/* ---- offloads: the virtio-net header a front-end sends ---- */

static uint32_t sum16(uint32_t s, const uint8_t *p, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		s += (i & 1) ? p[i] : (uint32_t)p[i] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return s;
}

/* A 60-byte UDP/IPv4 frame with a partial checksum (the pseudo-header sum in its field) and the
 * header that says so, at tx slot `slot`; returns the buffer. */
static uint8_t *csum_frame(struct drv *d, unsigned slot, uint16_t csum_start)
{
	uint8_t *b = drv_buf(d, 1, slot), *f = b + 12;
	uint8_t frame[60] = { 0x52, 0x54, 0, 0, 0, 2, 0x52, 0x54, 0, 0, 0, 1, 0x08, 0x00, 0x45 };

	frame[17] = 46; /* IPv4 total length */
	frame[22] = 64;
	frame[23] = 17;
	memcpy(frame + 26, "\x0a\x00\x00\x01\x0a\x00\x00\x02", 8);
	memcpy(frame + 34, "\x10\x00\x20\x00\x00\x1a", 6); /* ports, UDP length 26 */
	memcpy(frame + 42, "checksum me, please", 18);
	uint32_t ip = ~sum16(0, frame + 14, 20) & 0xffff;
	frame[24] = (uint8_t)(ip >> 8);
	frame[25] = (uint8_t)ip;
	uint32_t ps = sum16(17 + 26, frame + 26, 8);
	frame[40] = (uint8_t)(ps >> 8);
	frame[41] = (uint8_t)ps;
	memset(b, 0, 12);
	b[0] = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	b[6] = (uint8_t)csum_start; /* csum_start, le16 */
	b[7] = (uint8_t)(csum_start >> 8);
	b[8] = 6; /* csum_offset: UDP's checksum field */
	memcpy(f, frame, sizeof(frame));
	return b;
}

/* Whether the UDP/IPv4 frame's checksum is complete and right. */
static bool udp_csum_ok(const uint8_t *f)
{
	return sum16(sum16(17 + 26, f + 26, 8), f + 34, 26) == 0xffff;
}

/*
 * Headers a front-end sends with its frames (CSUM, HOST_TSO4 negotiated): one that does not match
 * the frame (gso_type TCPV4 on a UDP frame; csum_start past the frame) drops that frame, counted
 * and logged, and nothing else; a partial checksum is passed on as it is to a port with
 * GUEST_CSUM, and completed by vhu-net for one without, or for one whose driver turned its
 * offloads off (VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET 0 on the control queue).
 */
static int offload_headers(void)
{
	const uint64_t guest = (1ULL << VIRTIO_NET_F_GUEST_CSUM) |
			       (1ULL << VIRTIO_NET_F_GUEST_TSO4) |
			       (1ULL << VIRTIO_NET_F_GUEST_TSO6) |
			       (1ULL << VIRTIO_NET_F_GUEST_ECN) | (1ULL << 54) | (1ULL << 55);
	uint32_t id, len;
	struct drv d;

	for (int with_guest = 1; with_guest >= 0; with_guest--) {
		ASSERT_OK(drv_open(&d, sock_path));
		d.nq = 3;
		ASSERT_OK(drv_start(&d, false, with_guest ? ~0ull : ~guest));
		ASSERT_TRUE(d.features & (1ULL << VIRTIO_NET_F_CSUM));
		ASSERT_TRUE(d.features & (1ULL << VIRTIO_NET_F_HOST_TSO4));
		ASSERT_EQ(!!(d.features & (1ULL << VIRTIO_NET_F_GUEST_CSUM)), with_guest);
		ASSERT_TRUE(drv_add_buf(&d, 0, 0, 2048, true) >= 0);
		/* Bad: TSO on a UDP frame; then a checksum field outside the frame. */
		uint8_t *b = csum_frame(&d, 0, 34);
		b[1] = VIRTIO_NET_HDR_GSO_TCPV4;
		b[4] = 100; /* gso_size */
		ASSERT_TRUE(drv_add_buf(&d, 1, 0, 12 + 60, false) >= 0);
		ASSERT_EQ(drv_get_used(&d, 1, &id, &len, 3000), 1);
		csum_frame(&d, 1, 59);
		ASSERT_TRUE(drv_add_buf(&d, 1, 1, 12 + 60, false) >= 0);
		ASSERT_EQ(drv_get_used(&d, 1, &id, &len, 3000), 1);
		ASSERT_EQ(drv_get_used(&d, 0, &id, &len, 300), 0); /* both dropped */
		/* Good: the partial checksum comes back, whole or completed. */
		csum_frame(&d, 2, 34);
		ASSERT_TRUE(drv_add_buf(&d, 1, 2, 12 + 60, false) >= 0);
		ASSERT_EQ(drv_get_used(&d, 1, &id, &len, 3000), 1);
		ASSERT_EQ(drv_get_used(&d, 0, &id, &len, 3000), 1);
		ASSERT_EQ(len, 12 + 60);
		const uint8_t *r = drv_buf(&d, 0, 0);
		if (with_guest) {
			ASSERT_EQ(r[0], VIRTIO_NET_HDR_F_NEEDS_CSUM);
			ASSERT_EQ(r[6] | r[7] << 8, 34);
			ASSERT_EQ(r[8] | r[9] << 8, 6);
			ASSERT_TRUE(!udp_csum_ok(r + 12));
		} else {
			ASSERT_EQ(r[0], 0);
			ASSERT_TRUE(udp_csum_ok(r + 12));
		}
		ASSERT_OK(memcmp(r + 12 + 42, "checksum me, please", 18));
		if (with_guest) {
			const uint64_t none = 0;
			ASSERT_EQ(ctrl_cmd(&d, VIRTIO_NET_CTRL_GUEST_OFFLOADS,
					   VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET, &none, 8),
				  VIRTIO_NET_OK);
			ASSERT_TRUE(drv_add_buf(&d, 0, 1, 2048, true) >= 0);
			csum_frame(&d, 3, 34);
			ASSERT_TRUE(drv_add_buf(&d, 1, 3, 12 + 60, false) >= 0);
			ASSERT_EQ(drv_get_used(&d, 1, &id, &len, 3000), 1);
			ASSERT_EQ(drv_get_used(&d, 0, &id, &len, 3000), 1);
			r = drv_buf(&d, 0, 1);
			ASSERT_EQ(r[0], 0);
			ASSERT_TRUE(udp_csum_ok(r + 12));
		}
		drv_close(&d);
		ASSERT_OK(bad_check_clean(&dm, "offload headers"));
	}
	ASSERT_TRUE(grep_log(log_path, "virtio-net header does not match"));
	return 0;
}

/*
 * A port that negotiated no host offload (no CSUM, HOST_TSO4/6, HOST_ECN, HOST_USO): vhu-net does
 * not read the header its frames come with (tx_hdr_read). One with NEEDS_CSUM and GSO_TCPV4 set
 * anyway, which the driver must not send then, is taken as a zero header: the frame comes back
 * with a zero header, its checksum as partial as it was sent, its bytes whole; a vhu-net that
 * read it would drop it (as offload_headers' bad ones). Each of vhu-net's tx copies is taken:
 * a batch's short frames, a frame in two descriptors, a long one.
 */
static int header_unread(void)
{
	const uint64_t host = (1ULL << VIRTIO_NET_F_CSUM) | (1ULL << VIRTIO_NET_F_HOST_TSO4) |
			      (1ULL << VIRTIO_NET_F_HOST_TSO6) | (1ULL << VIRTIO_NET_F_HOST_ECN) |
			      (1ULL << 56) /* HOST_USO */;
	uint32_t id, len;
	struct drv d;

	for (int packed = 0; packed <= 1; packed++) {
		ASSERT_OK(drv_open(&d, sock_path));
		d.nq = 3;
		ASSERT_OK(drv_start(&d, packed, ~host));
		ASSERT_TRUE(!(d.features & host));
		/* Three shapes, each through its own copy in vhu-net: a short frame in one
		 * descriptor (copied with its batch), the header and the frame in two, and a frame
		 * of 400 bytes (longer than a batch copies ahead; the IPv4 datagram padded). */
		for (unsigned shape = 0; shape < 3; shape++) {
			const uint32_t flen = shape == 2 ? 400 : 60;
			ASSERT_TRUE(drv_add_buf(&d, 0, shape, 2048, true) >= 0);
			uint8_t *b = csum_frame(&d, shape, 34);
			b[1] = VIRTIO_NET_HDR_GSO_TCPV4;
			b[4] = 100; /* gso_size */
			memset(b + 12 + 60, 0xa5, flen - 60);
			if (shape == 1) {
				const uint64_t a[2] = { drv_buf_gpa(&d, 1, shape),
							drv_buf_gpa(&d, 1, shape) + 12 };
				const uint32_t l[2] = { 12, flen };
				const uint16_t fl[2] = { 0, 0 };
				ASSERT_TRUE(drv_add_raw(&d, 1, a, l, fl, 2) >= 0);
			} else {
				ASSERT_TRUE(drv_add_buf(&d, 1, shape, 12 + flen, false) >= 0);
			}
			ASSERT_EQ(drv_get_used(&d, 1, &id, &len, 3000), 1);
			ASSERT_EQ(drv_get_used(&d, 0, &id, &len, 3000), 1);
			ASSERT_EQ(len, 12 + flen);
			const uint8_t *r = drv_buf(&d, 0, shape);
			for (unsigned i = 0; i < 10; i++)
				ASSERT_EQ(r[i], 0);
			ASSERT_TRUE(!udp_csum_ok(r + 12));
			/* the payload as sent (the loopback swaps the addresses) */
			ASSERT_OK(memcmp(r + 12 + 42, b + 12 + 42, flen - 42));
		}
		drv_close(&d);
		ASSERT_OK(bad_check_clean(&dm, "header unread"));
	}
	return 0;
}

/*
 * MTU negotiated (vhu-net's default 1500): "The device MUST NOT pass received packets that exceed
 * mtu (plus low level ethernet header length) size with gso_type NONE": a 1600-byte frame is
 * dropped on its way back, a 1518-byte one (a VLAN tag's room) delivered.
 */
static int mtu_oversize(void)
{
	uint32_t id, len;
	struct drv d;

	ASSERT_OK(drv_open(&d, sock_path));
	ASSERT_OK(drv_start(&d, false, ~0ull));
	ASSERT_TRUE(d.features & (1ULL << VIRTIO_NET_F_MTU));
	ASSERT_TRUE(drv_add_buf(&d, 0, 0, 2048, true) >= 0);
	for (unsigned i = 0; i < 2; i++) {
		uint32_t flen = i ? 1518 : 1600;
		uint8_t *b = drv_buf(&d, 1, i);
		memset(b, 0, 12 + flen);
		memcpy(b + 12, "\x52\x54\0\0\0\x02\x52\x54\0\0\0\x01\x88\xb5", 14);
		ASSERT_TRUE(drv_add_buf(&d, 1, i, 12 + flen, false) >= 0);
		ASSERT_EQ(drv_get_used(&d, 1, &id, &len, 3000), 1);
		ASSERT_EQ(drv_get_used(&d, 0, &id, &len, i ? 3000 : 300), i);
	}
	ASSERT_EQ(len, 12 + 1518);
	drv_close(&d);
	return bad_check_clean(&dm, "MTU");
}

static int good_split(void)
{
	return good_session(false);
}

static int good_packed(void)
{
	return good_session(true);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s VHU-NET\n", argv[0]);
		return T_FAIL;
	}
	snprintf(sock_path, sizeof(sock_path), "/tmp/vhu-bad-%d.sock", getpid());
	snprintf(log_path, sizeof(log_path), "/tmp/vhu-bad-%d.log", getpid());
	vg = want_valgrind();
	bad_start(&dm, argv[1], (const char *[]){ "--socket-path", sock_path, "--loopback", NULL },
		  vg);

	static const struct {
		const char *name;
		bad_fn fn;
	} cases[] = {
		{ "truncated header", truncated_header },
		{ "truncated payload", truncated_payload },
		{ "oversize size", oversize },
		{ "bad version", bad_version },
		{ "reply bit in a request", reply_bit },
		{ "unknown request", unknown_request },
		{ "wrong payload size", wrong_size },
		{ "SET_VRING_KICK without fd", kick_without_fd },
		{ "fds on a no-fd message", too_many_fds },
		{ "nine fds", nine_fds },
		{ "SET_MEM_TABLE fd count mismatch", mem_table_fd_mismatch },
		{ "overlapping regions", mem_table_overlap },
		{ "zero-size region", mem_table_zero },
		{ "region wraps the address space", mem_table_wrap },
		{ "nine regions", mem_table_nine },
		{ "region past the end of its file", mem_table_past_eof },
		{ "vring index out of range", vring_index },
		{ "SET_VRING_KICK index out of range", vring_kick_index },
		{ "GET_VRING_BASE index out of range", get_vring_base_index },
		{ "ring size not a power of 2", ring_not_pow2 },
		{ "ring size too big", ring_too_big },
		{ "features not offered", features_not_offered },
		{ "ring addresses outside memory", ring_outside_memory },
		{ "descriptor loop", chain_loop },
		{ "descriptor outside memory", chain_outside },
		{ "descriptor straddles the region end (packed)", chain_straddles_end },
		{ "avail head out of range", head_out_of_range },
		{ "avail idx jumps past the ring", avail_idx_jump },
		{ "nested indirect (split)", nested_indirect_split },
		{ "nested indirect (packed)", nested_indirect_packed },
		{ "indirect table length", indirect_bad_len },
		{ "packed chain without end", packed_long_chain },
		{ "readable after writable", writable_then_readable },
		{ "memory truncated to 0, then a kick", shrink_to_zero },
		{ "memory truncated to half: tx buffer in the lost half", shrink_tx_split },
		{ "memory truncated to half: rx buffer in the lost half (packed)",
		  shrink_rx_packed },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		bad_run_case(&dm, cases[i].name, cases[i].fn);
	{
		struct drv d;
		if (drv_open(&d, sock_path) == 0) {
			hangup_midway(&d);
			drv_close(&d);
			printf("%s hang-up mid-session\n",
			       bad_check_clean(&dm, "hang-up") ? "FAIL" : "ok  ");
		}
	}
	RUN(good_split);
	RUN(good_packed);
	RUN(good_ctrl);
	RUN(ctrl_after_reset);
	RUN(ctrl_flood);
	RUN(offload_headers);
	RUN(header_unread);
	RUN(mtu_oversize);
	{
		int before = t_failed;
		if (two_ports(argv[1]) && t_failed == before)
			t_failed++;
		printf("%s two ports: one front-end shrinks its memory\n",
		       t_failed == before ? "ok  " : "FAIL");
	}

	{
		int before = t_failed;
		if (rarp_migration(argv[1]) && t_failed == before)
			t_failed++;
		printf("%s SEND_RARP after a migration between two ports\n",
		       t_failed == before ? "ok  " : "FAIL");
		before = t_failed;
		if (rarp_tap(argv[1]) && t_failed == before)
			t_failed++;
		printf("%s SEND_RARP: the RARP out of a tap port\n",
		       t_failed == before ? "ok  " : "FAIL");
	}

	bad_stop(&dm);
	if (!t_failed) {
		/* Every case must have left a clear error in the log. */
		if (!grep_log(log_path, "error"))
			T_FAILF("no error lines in the daemon log");
		/* The truncation cases: the guard caught them and said so. */
		if (!grep_log(log_path, "shrank under the device: SIGBUS at"))
			T_FAILF("no SIGBUS guard message in the daemon log");
	}
	bad_finish(&dm, 50);
	T_MAIN_END();
}
