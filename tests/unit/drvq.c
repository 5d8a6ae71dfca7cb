/* SPDX-License-Identifier: MIT */
/*
 * The generic driver-side ring (src/drvq.c) on both layouts, against the library's own device
 * half (set-up in drvq_pair.h): what vhu_drvq_enable_cb() answers inside an IN_ORDER batch, two
 * queues resuming on two threads at once, and the two-thread case that runs both halves
 * concurrently with kicks and calls through eventfds (a lost notification hangs it, and the timeout
 * fails it). Also built under TSan. The layout halves have their own tests: drvq_split.c,
 * drvq_packed.c. vhu_drvq_device_writes(): the ring memory the device was seen to write.
 */
#include <pthread.h>
#include <poll.h>
#include <time.h>

#include "drvq_pair.h"
#include "t.h"

T_DEFINE;

/* IN_ORDER: the device returns three buffers with one used entry naming the last. Once the
 * application took the first, the other two are waiting in the batch, not in the ring:
 * vhu_drvq_enable_cb() must say so ("true when buffers are waiting"), on both layouts, or an
 * application that sleeps on false waits for a call that never comes. */
static int enable_cb_in_order(bool packed, bool event_idx)
{
	struct vhu_elem e[3];
	uint32_t len;

	ASSERT_OK(setup(packed, event_idx, true, false));
	for (int i = 0; i < 3; i++)
		ASSERT_OK(add_buf(1, 1, (void *)(uintptr_t)(i + 1)));
	for (int i = 0; i < 3; i++)
		ASSERT_EQ(vhu_virtq_pop(&vq, &e[i]), 1);
	vhu_drvq_disable_cb(&dq);
	ASSERT_TRUE(!vhu_drvq_enable_cb(&dq)); /* nothing used yet */
	vhu_drvq_disable_cb(&dq);
	used_by_hand(packed, e[2].id, 42, 3);
	ASSERT_TRUE(vhu_drvq_enable_cb(&dq)); /* the used entry */
	vhu_drvq_disable_cb(&dq);
	ASSERT_EQ((uintptr_t)vhu_drvq_get(&dq, &len), 1);
	ASSERT_TRUE(vhu_drvq_enable_cb(&dq)); /* buffers 2 and 3, in the batch */
	vhu_drvq_disable_cb(&dq);
	ASSERT_EQ((uintptr_t)vhu_drvq_get(&dq, &len), 2);
	ASSERT_TRUE(vhu_drvq_enable_cb(&dq)); /* buffer 3 */
	vhu_drvq_disable_cb(&dq);
	ASSERT_EQ((uintptr_t)vhu_drvq_get(&dq, &len), 3);
	ASSERT_EQ(len, 42);
	ASSERT_TRUE(!vhu_drvq_enable_cb(&dq)); /* all taken */
	ASSERT_TRUE(vhu_drvq_get(&dq, &len) == NULL);
	ASSERT_TRUE(!vhu_drvq_broken(&dq));
	return 0;
}

static int enable_cb_in_order_split(void)
{
	ASSERT_OK(enable_cb_in_order(false, false));
	return enable_cb_in_order(false, true);
}

static int enable_cb_in_order_packed(void)
{
	ASSERT_OK(enable_cb_in_order(true, false));
	return enable_cb_in_order(true, true);
}

/* Two split queues resumed at the same time on two threads, each repairing its avail ring
 * (the qsort by the order buffers were made available). They share nothing: under TSan a
 * context kept in a global for the comparison is a reported race, and without TSan the other
 * queue's order would be sorted by (the two queues make their buffers available in opposite
 * orders of heads). */
struct resumer {
	struct fe_mem fm;
	struct vhu_drvq q;
	bool reverse;
	int bad;
};

static void *resume_thread(void *arg)
{
	struct resumer *r = arg;
	/* Heads 0..3 made available; reverse: in the order 3, 2, 1, 0 of their seq. */
	uint16_t want[3] = { 0, 1, 3 };

	if (r->reverse) {
		want[0] = 3;
		want[1] = 1;
		want[2] = 0;
	}
	for (int i = 0; i < 2000; i++) {
		if (drvq_resume_base(&r->q) != 1)
			r->bad++;
		for (int k = 0; k < 3; k++)
			if (le16toh(r->q.split.avail->ring[1 + k]) != want[k])
				r->bad++;
	}
	return NULL;
}

static int resumer_init(struct resumer *r, bool reverse)
{
	r->reverse = reverse;
	ASSERT_OK(fe_mem_init(&r->fm, 1u << 20, NULL));
	ASSERT_OK(drvq_init(&r->q, 0, QSZ, false, &r->fm, &lg));
	for (int i = 0; i < 4; i++) {
		struct iovec iov = { fe_mem_alloc(&r->fm, 64, 8), 64 };
		ASSERT_OK(vhu_drvq_add(&r->q, &iov, 0, 1, (void *)(uintptr_t)(i + 1)));
	}
	if (reverse) /* the same heads, made available in the opposite order */
		for (uint16_t h = 0; h < 4; h++)
			r->q.slot[h].seq = 3 - h;
	/* The device completed head 2 only. */
	r->q.split.used->ring[0].id = 2;
	r->q.split.used->ring[0].len = 0;
	store_release16(&r->q.split.used->idx, 1);
	return 0;
}

static int resume_two_threads(void)
{
	struct resumer r[2] = { 0 };
	pthread_t t[2];

	ASSERT_OK(resumer_init(&r[0], false));
	ASSERT_OK(resumer_init(&r[1], true));
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, resume_thread, &r[i]);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < 2; i++) {
		ASSERT_EQ(r[i].bad, 0);
		drvq_free(&r[i].q);
		fe_mem_free(&r[i].fm);
	}
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

/* ---- vhu_drvq_device_writes ---- */

static struct {
	unsigned n;
	uint64_t gpa[8], len[8];
	bool event[8];
} seen;

static void record(void *opaque, uint64_t gpa, uint64_t len, bool event)
{
	(void)opaque;
	if (seen.n < 8) {
		seen.gpa[seen.n] = gpa;
		seen.len[seen.n] = len;
		seen.event[seen.n] = event;
	}
	seen.n++;
}

static void collect(void)
{
	seen.n = 0;
	vhu_drvq_device_writes(&dq, record, NULL);
}

/* Only completions the driver took count, once; then a changed event field, once. */
static int device_writes(bool packed)
{
	uint32_t len;

	ASSERT_OK(setup(packed, false, false, false));
	void *ring = packed ? (void *)dq.pk.desc : (void *)dq.split.used;
	collect();
	ASSERT_EQ(seen.n, 0);
	for (int i = 0; i < 3; i++)
		ASSERT_OK(add_buf(1, 1, (void *)(uintptr_t)(i + 1)));
	vhu_drvq_kick(&dq);
	for (int i = 0; i < 3; i++)
		ASSERT_EQ(device_echo(), 1);
	vhu_virtq_flush(&vq);
	collect(); /* published, not yet taken by the driver: not counted */
	ASSERT_EQ(seen.n, 0);
	for (int i = 0; i < 3; i++)
		ASSERT_TRUE(vhu_drvq_get(&dq, &len) != NULL);
	collect();
	/* 64 entries: the used ring (518 bytes) or descriptor ring (1 KiB) is one page. */
	ASSERT_EQ(seen.n, 1);
	ASSERT_EQ(seen.gpa[0], fe_mem_gpa(&fm, ring, 1));
	ASSERT_EQ(seen.len[0], packed ? 16 * QSZ : 6 + 8 * QSZ);
	ASSERT_TRUE(!seen.event[0]);
	collect(); /* reported once */
	ASSERT_EQ(seen.n, 0);
	/* The device writes its event field: reported once, at its address. */
	uint16_t *ev = packed ? &dq.pk.device->flags : &dq.split.used->flags;
	*ev ^= 1;
	collect();
	ASSERT_EQ(seen.n, 1);
	ASSERT_EQ(seen.gpa[0], fe_mem_gpa(&fm, ev, 2));
	ASSERT_EQ(seen.len[0], 2);
	ASSERT_TRUE(seen.event[0]);
	collect();
	ASSERT_EQ(seen.n, 0);
	return 0;
}

static int device_writes_split(void)
{
	return device_writes(false);
}

static int device_writes_packed(void)
{
	return device_writes(true);
}

/* ---- bursts: vhu_drvq_add_burst, vhu_drvq_get_burst ---- */

/* n one-part buffers of 100 bytes from bufs[first % QSZ ...], tokens first + 1 ... */
static uint8_t *bbuf[QSZ];

static int burst_add(unsigned first, unsigned n, bool writable)
{
	struct iovec iov[QSZ];
	void *tok[QSZ];

	for (unsigned i = 0; i < n; i++) {
		iov[i] = (struct iovec){ bbuf[(first + i) % QSZ], 100 };
		memset(iov[i].iov_base, (uint8_t)(first + i), 100);
		tok[i] = (void *)(uintptr_t)(first + i + 1);
	}
	return vhu_drvq_add_burst(&dq, iov, n, writable, tok);
}

static int burst_setup(bool packed, bool in_order)
{
	ASSERT_OK(setup(packed, true, in_order, false));
	for (unsigned i = 0; i < QSZ; i++)
		bbuf[i] = fe_mem_alloc(&fm, 100, 64);
	return 0;
}

/* Bursts of 32 at offsets that make bursts straddle the ring's end (and, packed, flip the
 * wrap counter inside a burst), for several laps; every token comes back in order with the
 * length the device wrote, and everything the device popped was published (it pops exactly
 * the burst after one add). */
static int burst_wrap(bool packed, bool in_order, bool writable)
{
	void *tok[QSZ];
	uint32_t len[QSZ];
	unsigned next = 0;

	ASSERT_OK(burst_setup(packed, in_order));
	/* 5 single buffers first: the bursts then start at 5, 37, 69 = 5 (mod 64), ... */
	ASSERT_EQ(burst_add(next, 5, writable), 5);
	while (device_echo() == 1)
		;
	vhu_virtq_flush(&vq);
	ASSERT_EQ(vhu_drvq_get_burst(&dq, tok, len, QSZ), 5);
	next = 5;
	for (unsigned round = 0; round < 12; round++) {
		unsigned popped = 0;
		ASSERT_EQ(burst_add(next, 32, writable), 32);
		vhu_drvq_kick(&dq);
		while (device_echo() == 1)
			popped++;
		ASSERT_EQ(popped, 32);
		vhu_virtq_flush(&vq);
		ASSERT_EQ(vhu_drvq_get_burst(&dq, tok, len, QSZ), 32);
		for (unsigned i = 0; i < 32; i++) {
			ASSERT_EQ((uintptr_t)tok[i], next + i + 1);
			ASSERT_EQ(len[i], writable ? 100 : 0);
			if (writable) /* device_echo() with nothing readable writes 1s */
				ASSERT_EQ(bbuf[(next + i) % QSZ][99], 1);
		}
		ASSERT_EQ(vhu_drvq_get_burst(&dq, tok, len, QSZ), 0);
		ASSERT_EQ(vhu_drvq_num_free(&dq), QSZ);
		next += 32;
	}
	ASSERT_TRUE(!vhu_drvq_broken(&dq));
	return 0;
}

static int burst_wrap_all(void)
{
	for (int k = 0; k < 8; k++)
		ASSERT_OK(burst_wrap(k & 1, k & 2, k & 4));
	return 0;
}

/* Partial bursts: a burst bigger than the free room adds what fits, a full ring says
 * -ENOSPC, a buffer outside shared memory ends a burst there (-EFAULT when it is the first),
 * and a reap of fewer than were used leaves the rest for the next one, in order. */
static int burst_partial(bool packed, bool in_order)
{
	void *tok[QSZ];
	uint32_t len[QSZ];
	uint8_t outside[100];

	ASSERT_OK(burst_setup(packed, in_order));
	ASSERT_EQ(burst_add(0, 50, false), 50);
	ASSERT_EQ(burst_add(50, 32, false), QSZ - 50);
	ASSERT_EQ(burst_add(0, 1, false), -ENOSPC);
	ASSERT_EQ(vhu_drvq_num_free(&dq), 0);
	vhu_drvq_kick(&dq);
	while (device_echo() == 1)
		;
	vhu_virtq_flush(&vq);
	ASSERT_EQ(vhu_drvq_get_burst(&dq, tok, len, 10), 10);
	ASSERT_EQ(vhu_drvq_get_burst(&dq, tok + 10, len + 10, QSZ - 10), QSZ - 10);
	ASSERT_EQ(vhu_drvq_get_burst(&dq, tok, len, QSZ), 0);
	for (unsigned i = 0; i < QSZ; i++)
		ASSERT_EQ((uintptr_t)tok[i], i + 1);
	ASSERT_EQ(vhu_drvq_num_free(&dq), QSZ);
	/* iov[2] outside shared memory: two added; iov[0] outside: none. */
	struct iovec iov[3] = { { bbuf[0], 100 }, { bbuf[1], 100 }, { outside, 100 } };
	void *t3[3] = { (void *)1, (void *)2, (void *)3 };
	ASSERT_EQ(vhu_drvq_add_burst(&dq, iov, 3, false, t3), 2);
	ASSERT_EQ(vhu_drvq_add_burst(&dq, iov + 2, 1, false, t3), -EFAULT);
	ASSERT_EQ(vhu_drvq_num_free(&dq), QSZ - 2);
	ASSERT_TRUE(!vhu_drvq_broken(&dq));
	return 0;
}

static int burst_partial_all(void)
{
	for (int k = 0; k < 4; k++)
		ASSERT_OK(burst_partial(k & 1, k & 2));
	return 0;
}

/* IN_ORDER, split, nothing writable outstanding: no used entry is read, the used index names
 * the last buffer done (a batching device writes one entry per batch, at its first slot). The
 * entries are overwritten with ids of buffers never made available: a driver that read them
 * would break the queue. Without IN_ORDER, or with writable buffers (whose lengths matter),
 * the entries are read and the same garbage breaks it: the skip is taken only where it is
 * allowed. */
static int burst_in_order_skip(bool in_order, bool writable)
{
	void *tok[QSZ];
	uint32_t len[QSZ];

	ASSERT_OK(burst_setup(false, in_order));
	ASSERT_EQ(burst_add(0, 32, writable), 32);
	vhu_drvq_kick(&dq);
	while (device_echo() == 1)
		;
	vhu_virtq_flush(&vq);
	for (unsigned i = 0; i < 32; i++)
		dq.split.used->ring[i].id = htole32(QSZ + 7);
	unsigned n = vhu_drvq_get_burst(&dq, tok, len, QSZ);
	if (in_order && !writable) {
		ASSERT_EQ(n, 32);
		for (unsigned i = 0; i < 32; i++)
			ASSERT_EQ((uintptr_t)tok[i], i + 1);
		ASSERT_TRUE(!vhu_drvq_broken(&dq));
		ASSERT_EQ(vhu_drvq_num_free(&dq), QSZ);
	} else {
		ASSERT_EQ(n, 0);
		ASSERT_TRUE(vhu_drvq_broken(&dq));
	}
	return 0;
}

static int burst_in_order_skip_all(void)
{
	for (int k = 0; k < 4; k++)
		ASSERT_OK(burst_in_order_skip(k & 1, k & 2));
	return 0;
}

/* The device side publishes a burst once: nothing pushed is visible to the driver before
 * vhu_virtq_flush() (packed: the first used descriptor's flags are stored last), all of it
 * after. */
static int burst_device_publish(bool packed)
{
	struct vhu_elem e[8];
	void *tok[8];
	uint32_t len[8];

	ASSERT_OK(burst_setup(packed, false));
	ASSERT_EQ(burst_add(0, 8, true), 8);
	for (unsigned i = 0; i < 8; i++)
		ASSERT_EQ(vhu_virtq_pop(&vq, &e[i]), 1);
	for (unsigned i = 0; i < 8; i++)
		vhu_virtq_push(&vq, &e[i], 10 + i);
	ASSERT_EQ(vhu_drvq_get_burst(&dq, tok, len, 8), 0);
	vhu_virtq_flush(&vq);
	ASSERT_EQ(vhu_drvq_get_burst(&dq, tok, len, 8), 8);
	for (unsigned i = 0; i < 8; i++)
		ASSERT_EQ(len[i], 10 + i);
	return 0;
}

static int burst_device_publish_all(void)
{
	ASSERT_OK(burst_device_publish(false));
	return burst_device_publish(true);
}

/* Two threads: the driver adds and reaps in bursts, the device pops and pushes concurrently
 * (under TSan: the one publish per burst orders every descriptor before it). */
struct bstress {
	bool stop;
	uint64_t dev_bad;
};

static void *burst_device(void *arg)
{
	struct bstress *s = arg;

	while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
		int n = 0, r;
		while ((r = device_echo()) == 1 && ++n < 32)
			;
		if (r < 0)
			s->dev_bad++;
		if (n)
			vhu_virtq_flush(&vq);
	}
	return NULL;
}

static int burst_stress(bool packed, bool in_order)
{
	struct bstress s = { 0 };
	pthread_t t;
	uint64_t sent = 0, got = 0, n_total = 200000;
	time_t deadline = time(NULL) + 60;
	unsigned nfree = QSZ, free_slots[QSZ];
	void *tok[32];
	uint32_t len[32];

	ASSERT_OK(burst_setup(packed, in_order));
	for (unsigned i = 0; i < QSZ; i++)
		free_slots[i] = i;
	pthread_create(&t, NULL, burst_device, &s);
	while (got < n_total && time(NULL) < deadline && !vhu_drvq_broken(&dq)) {
		struct iovec iov[32];
		void *atok[32];
		unsigned n = 0;
		while (n < 32 && n < nfree && sent + n < n_total) {
			unsigned k = free_slots[nfree - 1 - n];
			memset(bbuf[k], (uint8_t)k, 100);
			iov[n] = (struct iovec){ bbuf[k], 100 };
			atok[n++] = (void *)(uintptr_t)(k + 1);
		}
		int added = n ? vhu_drvq_add_burst(&dq, iov, n, false, atok) : 0;
		if (added > 0) {
			nfree -= (unsigned)added;
			sent += (unsigned)added;
			vhu_drvq_kick(&dq);
		}
		unsigned g = vhu_drvq_get_burst(&dq, tok, len, 32);
		for (unsigned i = 0; i < g; i++)
			free_slots[nfree++] = (unsigned)((uintptr_t)tok[i] - 1);
		got += g;
	}
	__atomic_store_n(&s.stop, true, __ATOMIC_RELEASE);
	pthread_join(t, NULL);
	ASSERT_EQ(got, n_total);
	ASSERT_EQ(s.dev_bad, 0);
	ASSERT_TRUE(!vhu_drvq_broken(&dq));
	return 0;
}

/* IN_ORDER on a packed ring of 100 (not a power of two): 144000 buffers in batches of 60 (so
 * that a batch spans the 16-bit wrap of the positions with more in flight than the jump there
 * would leave room for), twice past that wrap; tokens come back in order, the ring never breaks. */
static int in_order_odd_size(void)
{
	void *tok[64];
	uint32_t len[64];
	unsigned next = 0;

	pair_num = 100;
	int r = burst_setup(true, true);
	pair_num = QSZ;
	ASSERT_OK(r);
	for (unsigned round = 0; round < 2400; round++) {
		ASSERT_EQ(burst_add(next, 60, round & 1), 60);
		for (unsigned i = 0; i < 60; i++)
			ASSERT_EQ(device_echo(), 1);
		vhu_virtq_flush(&vq);
		ASSERT_EQ(vhu_drvq_get_burst(&dq, tok, len, 64), 60);
		for (unsigned i = 0; i < 60; i++)
			ASSERT_EQ((uintptr_t)tok[i], next + i + 1);
		next += 60;
	}
	ASSERT_TRUE(!vhu_drvq_broken(&dq));
	return 0;
}

/* Adds translate with a copy of the area's fields taken per call (fe_mem_xlat): a change of
 * the mapping between two calls (vhu_frontend_set_iommu(), a vhost-vdpa transport's VA
 * addresses) shows in the very next burst's or buffer's descriptor, on both layouts. */
static int burst_xlat_fresh(void)
{
	for (int packed = 0; packed < 2; packed++) {
		ASSERT_OK(burst_setup(packed, true));
		/* 0-2: bursts, 3-5: single adds (vhu_drvq_add copies the fields per call too) */
		for (unsigned k = 0; k < 6; k++) {
			fm.iova_off = k % 3 == 1 ? 1ull << 48 : 0;
			fm.dma_va = k % 3 == 2;
			if (k < 3) {
				ASSERT_EQ(burst_add(k, 1, false), 1);
			} else {
				struct iovec iov = { bbuf[k], 100 };
				ASSERT_OK(
					vhu_drvq_add(&dq, &iov, 1, 0, (void *)(uintptr_t)(k + 1)));
			}
			uint64_t want = k % 3 == 0   ? fe_mem_gpa(&fm, bbuf[k], 100)
					: k % 3 == 1 ? (uintptr_t)bbuf[k] + (1ull << 48)
						     : (uintptr_t)bbuf[k];
			uint64_t got = packed ? le64toh(dq.pk.desc[k].addr)
					      : le64toh(dq.split.desc[k].addr);
			ASSERT_EQ(got, want);
		}
		fm.iova_off = 0;
		fm.dma_va = false;
	}
	return 0;
}

/* The IN_ORDER burst reap (get_burst_in_order) keeps every check of the single-buffer path:
 * a used entry naming a buffer out of range or not outstanding, a length beyond the writable
 * bytes, a used index ahead of what is outstanding (split), for split entry by entry
 * (writable buffers out) and with no entry read (nothing writable: only the index can be
 * wrong), and for packed; split, an entry naming the last of 4 buffers while the index covers
 * only 2 of them. Each breaks the queue: what the index covered at most is returned, and the
 * next add fails. */
static int burst_in_order_hostile(void)
{
	void *tok[8];
	uint32_t len[8];

	for (int packed = 0; packed < 2; packed++)
		for (int w = 0; w < 2; w++)
			for (int c = 0; c < 5; c++) {
				/* 0: id 33 >= num, 1: id 10 not outstanding, 2: length 101 of
				 * 100 writable, 3: used index 5 with 4 out (split), 4: entry
				 * names buffer 3, index 2 (split, entries read) */
				if ((c == 2 && !w) || (c >= 3 && packed) ||
				    (c < 2 && !w && !packed) || (c == 4 && !w))
					continue;
				ASSERT_OK(burst_setup(packed, true));
				ASSERT_EQ(burst_add(0, 4, w), 4);
				uint32_t id = c == 0 ? 33 : c == 1 ? 10 : c == 4 ? 3 : 0;
				uint32_t l = c == 2 ? 101 : 0;
				if (packed) {
					struct vring_packed_desc *d = &dq.pk.desc[0];
					d->id = htole16((uint16_t)id);
					d->len = htole32(l);
					store_release16(&d->flags,
							htole16((1u << VRING_PACKED_DESC_F_AVAIL) |
								(1u << VRING_PACKED_DESC_F_USED)));
				} else {
					dq.split.used->ring[0].id = htole32(id);
					dq.split.used->ring[0].len = htole32(l);
					store_release16(&dq.split.used->idx, htole16(c == 3   ? 5
										     : c == 4 ? 2
											      : 1));
				}
				ASSERT_EQ(vhu_drvq_get_burst(&dq, tok, len, 8), c == 4 ? 2 : 0);
				ASSERT_TRUE(vhu_drvq_broken(&dq));
				ASSERT_EQ(burst_add(4, 1, w), -EIO);
			}
	return 0;
}

static int burst_stress_all(void)
{
	for (int k = 0; k < 4; k++)
		ASSERT_OK(burst_stress(k & 1, k & 2));
	return 0;
}

int main(void)
{
	RUN(enable_cb_in_order_split);
	RUN(enable_cb_in_order_packed);
	RUN(resume_two_threads);
	RUN(stress_split);
	RUN(stress_packed);
	RUN(device_writes_split);
	RUN(device_writes_packed);
	RUN(burst_wrap_all);
	RUN(burst_partial_all);
	RUN(burst_in_order_skip_all);
	RUN(in_order_odd_size);
	RUN(burst_device_publish_all);
	RUN(burst_stress_all);
	RUN(burst_xlat_fresh);
	RUN(burst_in_order_hostile);
	T_MAIN_END();
}
