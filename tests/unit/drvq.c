/* SPDX-License-Identifier: MIT */
/*
 * Driver-side rings (src/drvq.c and the driver halves of split.c and packed.c) against the
 * library's own device half, over one shared memfd mapped twice, as two processes would.
 * Single-threaded cases check layouts, indirect tables, in-order batches and a hostile device;
 * the two-thread case runs both halves concurrently with kicks and calls through eventfds
 * (a lost notification hangs it, and the timeout fails it). Also built under TSan.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "../../src/drvq.h"
#include "../../src/virtq_ctl.h"
#include "../../src/util.h"
#include "../t.h"

T_DEFINE;

#define QSZ 64

static void print_log(void *opaque, int level, const char *msg)
{
	(void)opaque;
	fprintf(stderr, "  log %s: %s\n", vhu_log_level_name(level), msg);
}

static const struct logger lg = { print_log, NULL, VHU_LOG_WARN, NULL };
static struct fe_mem fm;
static struct mem dm; /* the device's view of the same memory */
static struct vhu_drvq dq;
static struct vhu_virtq vq;

/* A fresh memory area, driver queue and device queue. */
static int setup(bool packed, bool event_idx, bool in_order, bool indirect)
{
	static bool mapped;

	if (mapped) {
		drvq_free(&dq);
		fe_mem_free(&fm);
		mem_clear(&dm);
		close_fd(&dq.kick_fd);
		close_fd(&dq.call_fd);
	}
	mapped = true;
	ASSERT_OK(fe_mem_init(&fm, 4u << 20, NULL));
	struct vhu_mem_region r = { (uint64_t)(uintptr_t)fm.base, fm.size,
				    (uint64_t)(uintptr_t)fm.base, 0 };
	int fd = dup(fm.fd);
	mem_init(&dm);
	ASSERT_OK(mem_set_table(&dm, &r, 1, &fd, NULL));
	ASSERT_OK(drvq_init(&dq, 0, QSZ, packed, &fm, &lg));
	drvq_set_features(&dq, event_idx, in_order, indirect);
	dq.kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	dq.call_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	virtq_init(&vq, 0, &dm, &lg);
	vq.num = QSZ;
	vq.addr.desc = (uint64_t)(uintptr_t)dq.desc_area;
	vq.addr.avail = (uint64_t)(uintptr_t)dq.driver_area;
	vq.addr.used = (uint64_t)(uintptr_t)dq.device_area;
	uint32_t base = drvq_base(&dq);
	vq.base_avail = (uint16_t)(base & 0x7fff);
	vq.base_avail_wrap = packed && (base >> 15 & 1);
	vq.base_used = packed ? (uint16_t)(base >> 16 & 0x7fff) : (uint16_t)base;
	vq.base_used_wrap = packed && (base >> 31);
	vq.kick_fd = -1;
	vq.call_fd = dup(dq.call_fd);
	return virtq_map(&vq, packed, event_idx);
}

/* Device: pops one element, checks its readable bytes are `tag`, fills the writable ones
 * with tag + 1 and pushes it with that length. Returns 1, 0 (empty) or -1. */
static int device_echo(void)
{
	struct vhu_elem e;
	int r = vhu_virtq_pop(&vq, &e);

	if (r <= 0)
		return r;
	uint8_t tag = e.out_num ? *(uint8_t *)e.iov[0].iov_base : 0;
	for (unsigned i = 0; i < e.out_num; i++)
		for (size_t j = 0; j < e.iov[i].iov_len; j++)
			if (((uint8_t *)e.iov[i].iov_base)[j] != tag)
				return -1;
	for (unsigned i = e.out_num; i < e.out_num + e.in_num; i++)
		memset(e.iov[i].iov_base, tag + 1, e.iov[i].iov_len);
	vhu_virtq_push(&vq, &e, e.in_len);
	return 1;
}

/* A buffer of `parts` readable and `parts` writable pieces of 100 bytes each. */
static int add_buf(uint8_t tag, unsigned parts, void *token)
{
	struct iovec iov[32];

	for (unsigned i = 0; i < 2 * parts; i++) {
		iov[i].iov_base = fe_mem_alloc(&fm, 100, 8);
		iov[i].iov_len = 100;
		if (i < parts)
			memset(iov[i].iov_base, tag, 100);
	}
	return vhu_drvq_add(&dq, iov, parts, parts, token);
}

static int shapes(bool packed, bool indirect)
{
	uint32_t len;

	ASSERT_OK(setup(packed, false, false, indirect));
	/* one part, 3 parts, 8 parts (indirect when negotiated) */
	unsigned parts[] = { 1, 3, 8 };
	for (unsigned round = 0; round < 3 * QSZ; round++) {
		unsigned p = parts[round % 3];
		ASSERT_OK(add_buf((uint8_t)round, p, (void *)(uintptr_t)(round + 1)));
		vhu_drvq_kick(&dq);
		ASSERT_EQ(device_echo(), 1);
		vhu_virtq_flush(&vq);
		ASSERT_EQ((uintptr_t)vhu_drvq_get(&dq, &len), round + 1);
		ASSERT_EQ(len, 100 * p);
		ASSERT_TRUE(vhu_drvq_get(&dq, &len) == NULL);
		ASSERT_EQ(vhu_drvq_num_free(&dq), QSZ);
		if (round % QSZ == QSZ - 1)
			fm.brk = 0x100000; /* reuse buffer memory, past the rings */
	}
	/* Fill the ring completely, then drain it. */
	unsigned n = 0;
	while (add_buf(7, 1, (void *)(uintptr_t)(n + 1)) == 0)
		n++;
	ASSERT_EQ(n, indirect ? QSZ : QSZ / 2);
	ASSERT_EQ(add_buf(7, 1, NULL), -ENOSPC);
	while (device_echo() == 1)
		;
	vhu_virtq_flush(&vq);
	for (unsigned i = 0; i < n; i++)
		ASSERT_EQ((uintptr_t)vhu_drvq_get(&dq, &len), i + 1);
	ASSERT_TRUE(!vhu_drvq_broken(&dq));
	return 0;
}

static int split_direct(void)
{
	return shapes(false, false);
}
static int split_indirect(void)
{
	return shapes(false, true);
}
static int packed_direct(void)
{
	return shapes(true, false);
}
static int packed_indirect(void)
{
	return shapes(true, true);
}

/* IN_ORDER: the device names only the last buffer of a batch; the driver returns all. */
static int in_order_batch(bool packed)
{
	struct vhu_elem e[3];
	uint32_t len;

	ASSERT_OK(setup(packed, false, true, false));
	for (int i = 0; i < 3; i++)
		ASSERT_OK(add_buf(1, 1, (void *)(uintptr_t)(i + 1)));
	for (int i = 0; i < 3; i++)
		ASSERT_EQ(vhu_virtq_pop(&vq, &e[i]), 1);
	/* Hand-written batch completion for the third buffer. */
	if (packed) {
		struct vring_packed_desc *d = &dq.pk.desc[0];
		d->id = e[2].id;
		d->len = 42;
		store_release16(&d->flags, (1u << VRING_PACKED_DESC_F_AVAIL) |
						   (1u << VRING_PACKED_DESC_F_USED));
	} else {
		dq.split.used->ring[0].id = e[2].id;
		dq.split.used->ring[0].len = 42;
		store_release16(&dq.split.used->idx, 1);
	}
	ASSERT_EQ((uintptr_t)vhu_drvq_get(&dq, &len), 1);
	ASSERT_EQ(len, 0);
	ASSERT_EQ((uintptr_t)vhu_drvq_get(&dq, &len), 2);
	ASSERT_EQ((uintptr_t)vhu_drvq_get(&dq, &len), 3);
	ASSERT_EQ(len, 42);
	ASSERT_TRUE(vhu_drvq_get(&dq, &len) == NULL);
	ASSERT_EQ(vhu_drvq_num_free(&dq), QSZ);
	/* And the ring goes on normally afterwards. */
	ASSERT_OK(add_buf(5, 1, (void *)(uintptr_t)9));
	if (packed) { /* the device's own cursor did not see the hand-written batch */
		vq.used_idx = 6;
	} else {
		vq.used_idx = 1;
	}
	ASSERT_EQ(device_echo(), 1);
	vhu_virtq_flush(&vq);
	ASSERT_EQ((uintptr_t)vhu_drvq_get(&dq, &len), 9);
	ASSERT_EQ(len, 100);
	return 0;
}

static int in_order_split(void)
{
	return in_order_batch(false);
}
static int in_order_packed(void)
{
	return in_order_batch(true);
}

/* A device that names a buffer that is not outstanding, or reports too long a length. */
static int hostile(bool packed, bool bad_len)
{
	uint32_t len;

	ASSERT_OK(setup(packed, false, false, false));
	ASSERT_OK(add_buf(1, 1, (void *)1));
	if (packed) {
		struct vring_packed_desc *d = &dq.pk.desc[0];
		d->id = bad_len ? d->id : 33;
		d->len = bad_len ? 101 : 0;
		store_release16(&d->flags, (1u << VRING_PACKED_DESC_F_AVAIL) |
						   (1u << VRING_PACKED_DESC_F_USED));
	} else {
		dq.split.used->ring[0].id = bad_len ? 0 : 33;
		dq.split.used->ring[0].len = bad_len ? 101 : 0;
		store_release16(&dq.split.used->idx, 1);
	}
	ASSERT_TRUE(vhu_drvq_get(&dq, &len) == NULL);
	ASSERT_TRUE(vhu_drvq_broken(&dq));
	ASSERT_EQ(add_buf(1, 1, NULL), -EIO);
	return 0;
}

static int hostile_split(void)
{
	ASSERT_OK(hostile(false, false));
	ASSERT_OK(hostile(false, true));
	/* used->idx running ahead of what is outstanding */
	uint32_t len;
	ASSERT_OK(setup(false, false, false, false));
	store_release16(&dq.split.used->idx, 5);
	ASSERT_TRUE(vhu_drvq_get(&dq, &len) == NULL);
	ASSERT_TRUE(vhu_drvq_broken(&dq));
	return 0;
}

static int hostile_packed(void)
{
	ASSERT_OK(hostile(true, false));
	return hostile(true, true);
}

/* A back-end that completed out of order dies; the resume base and the rewritten avail
 * entries make a new one process exactly the buffers not completed, in their order. */
static int split_resume_out_of_order(void)
{
	struct vhu_elem e[4];
	uint32_t len;

	ASSERT_OK(setup(false, false, false, false));
	for (int i = 0; i < 4; i++)
		ASSERT_OK(add_buf((uint8_t)i, 1, (void *)(uintptr_t)(i + 1)));
	for (int i = 0; i < 4; i++)
		ASSERT_EQ(vhu_virtq_pop(&vq, &e[i]), 1);
	vhu_virtq_push(&vq, &e[2], 100);
	vhu_virtq_push(&vq, &e[0], 100);
	vhu_virtq_flush(&vq);
	/* The application takes one of the two before the back-end is replaced. */
	ASSERT_EQ((uintptr_t)vhu_drvq_get(&dq, &len), 3);
	uint32_t base = drvq_resume_base(&dq);
	ASSERT_EQ(base, 2);
	/* A new back-end on the same ring, starting at base. */
	virtq_init(&vq, 0, &dm, &lg);
	vq.num = QSZ;
	vq.addr.desc = (uint64_t)(uintptr_t)dq.desc_area;
	vq.addr.avail = (uint64_t)(uintptr_t)dq.driver_area;
	vq.addr.used = (uint64_t)(uintptr_t)dq.device_area;
	vq.base_avail = vq.base_used = (uint16_t)base;
	vq.kick_fd = vq.call_fd = -1;
	ASSERT_OK(virtq_map(&vq, false, false));
	ASSERT_EQ(vhu_virtq_pop(&vq, &e[0]), 1);
	ASSERT_EQ(*(uint8_t *)e[0].iov[0].iov_base, 1); /* buffer 2 (tag 1) */
	ASSERT_EQ(vhu_virtq_pop(&vq, &e[1]), 1);
	ASSERT_EQ(*(uint8_t *)e[1].iov[0].iov_base, 3); /* buffer 4 (tag 3) */
	struct vhu_elem x;
	ASSERT_EQ(vhu_virtq_pop(&vq, &x), 0);
	vhu_virtq_push(&vq, &e[1], 100);
	vhu_virtq_push(&vq, &e[0], 100);
	vhu_virtq_flush(&vq);
	ASSERT_EQ((uintptr_t)vhu_drvq_get(&dq, &len), 1);
	ASSERT_EQ((uintptr_t)vhu_drvq_get(&dq, &len), 4);
	ASSERT_EQ((uintptr_t)vhu_drvq_get(&dq, &len), 2);
	ASSERT_TRUE(vhu_drvq_get(&dq, &len) == NULL);
	ASSERT_TRUE(!vhu_drvq_broken(&dq));
	ASSERT_EQ(vhu_drvq_num_free(&dq), QSZ);
	return 0;
}

/* ---- two threads ---- */

#define STRESS_N 200000

struct stress {
	bool packed, event_idx;
	bool stop; /* atomic */
	uint64_t dev_bad;
	uint64_t dev_done;
	uint64_t dev_timeouts;
};

/* Waits for an eventfd; returns false when a second passed without it (a lost notification:
 * the other side always has work for us while the test runs). */
static bool wait_fd(int fd)
{
	struct pollfd p = { fd, POLLIN, 0 };
	eventfd_t v;
	int r = poll(&p, 1, 1000);

	eventfd_read(fd, &v);
	return r == 1;
}

static void *device_thread(void *arg)
{
	struct stress *s = arg;
	int kick = dq.kick_fd;

	while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
		int n = 0, r;
		vhu_virtq_disable_notify(&vq);
		while ((r = device_echo()) == 1 && ++n < 32)
			;
		if (r < 0)
			s->dev_bad++;
		if (n) {
			vhu_virtq_flush(&vq);
			s->dev_done += (uint64_t)n;
			continue;
		}
		if (vhu_virtq_enable_notify(&vq))
			continue;
		if (!wait_fd(kick) && !__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE))
			s->dev_timeouts++;
	}
	return NULL;
}

static int stress(bool packed, bool event_idx)
{
	struct stress s = { .packed = packed, .event_idx = event_idx };
	pthread_t t;
	uint64_t sent = 0, got = 0;
	uint32_t len;
	struct iovec iov[QSZ][2];
	time_t deadline = time(NULL) + (getenv("DRVQ_DEADLINE") ? 5 : 60);
	unsigned drv_timeouts = 0;

	ASSERT_OK(setup(packed, event_idx, false, false));
	vq.kick_fd = dup(dq.kick_fd);
	for (int i = 0; i < QSZ; i++) {
		iov[i][0] = (struct iovec){ fe_mem_alloc(&fm, 64, 64), 64 };
		iov[i][1] = (struct iovec){ fe_mem_alloc(&fm, 64, 64), 64 };
	}
	pthread_create(&t, NULL, device_thread, &s);
	uintptr_t free_slots[QSZ];
	unsigned nfree = QSZ;
	for (unsigned i = 0; i < QSZ; i++)
		free_slots[i] = i;
	while (got < STRESS_N && time(NULL) < deadline) {
		bool progress = false;
		while (sent < STRESS_N && nfree) {
			uintptr_t k = free_slots[--nfree];
			memset(iov[k][0].iov_base, (uint8_t)sent, 64);
			if (vhu_drvq_add(&dq, iov[k], 1, 1, (void *)(k + 1)))
				break;
			sent++;
			progress = true;
		}
		vhu_drvq_kick(&dq);
		void *tok;
		while ((tok = vhu_drvq_get(&dq, &len))) {
			uintptr_t k = (uintptr_t)tok - 1;
			uint8_t want = (uint8_t)(*(uint8_t *)iov[k][0].iov_base + 1);
			if (len != 64 || *(uint8_t *)iov[k][1].iov_base != want) {
				T_FAILF("buffer %lu came back wrong (len %u)", (unsigned long)k,
					len);
				deadline = 0;
				break;
			}
			free_slots[nfree++] = k;
			got++;
			progress = true;
		}
		if (vhu_drvq_broken(&dq))
			break;
		if (!progress) {
			if (vhu_drvq_enable_cb(&dq))
				continue;
			if (!wait_fd(dq.call_fd))
				drv_timeouts++;
			vhu_drvq_disable_cb(&dq);
		}
	}
	__atomic_store_n(&s.stop, true, __ATOMIC_RELEASE);
	eventfd_write(dq.kick_fd, 1);
	pthread_join(t, NULL);
	if (got != STRESS_N)
		fprintf(stderr,
			"  stall: drv avail %u/%d used %u/%d free %u nfree %u; dev avail %u/%d "
			"used %u/%d; "
			"flags at drv used 0x%x, at dev avail 0x%x; dev_done %llu timeouts "
			"%u/%llu\n",
			dq.avail_idx, dq.avail_wrap, dq.last_used, dq.used_wrap, dq.num_free, nfree,
			vq.last_avail_idx, vq.avail_wrap, vq.used_idx, vq.used_wrap,
			packed ? dq.pk.desc[dq.last_used].flags : 0,
			packed ? dq.pk.desc[vq.last_avail_idx].flags : 0,
			(unsigned long long)s.dev_done, drv_timeouts,
			(unsigned long long)s.dev_timeouts);
	ASSERT_EQ(got, STRESS_N);
	ASSERT_EQ(s.dev_bad, 0);
	ASSERT_EQ(s.dev_timeouts, 0); /* lost kicks */
	ASSERT_EQ(drv_timeouts, 0);   /* lost calls */
	ASSERT_TRUE(!vhu_drvq_broken(&dq));
	printf("  %s%s: %llu buffers, %llu kicks\n", packed ? "packed" : "split",
	       event_idx ? " event_idx" : "", (unsigned long long)got,
	       (unsigned long long)dq.kicks);
	return 0;
}

static int stress_split(void)
{
	ASSERT_OK(stress(false, false));
	return stress(false, true);
}

static int stress_packed(void)
{
	ASSERT_OK(stress(true, false));
	return stress(true, true);
}

int main(void)
{
	RUN(split_direct);
	RUN(split_indirect);
	RUN(packed_direct);
	RUN(packed_indirect);
	RUN(in_order_split);
	RUN(in_order_packed);
	RUN(hostile_split);
	RUN(hostile_packed);
	RUN(split_resume_out_of_order);
	RUN(stress_split);
	RUN(stress_packed);
	T_MAIN_END();
}
