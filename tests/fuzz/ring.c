/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer targets on the device halves of the rings (split.c, packed.c) and, built with
 * INFLIGHT=1, on the inflight region restore (inflight.c). The input is a small header, then
 * (INFLIGHT) the bytes of the ring's inflight region, then the first bytes of the front-end's
 * memory: descriptor table at 0, avail ring / driver event area at 0x1000, used ring / device
 * event area at 0x2000, buffers and indirect tables anywhere in the 64 KiB. The device starts
 * the ring (for INFLIGHT: restores the region, as after a restart), pops every buffer it can,
 * pushes them back in an order the input chooses, flushes, and toggles notifications; INFLIGHT
 * then restarts once more on the same region and pops and pushes the resubmitted buffers.
 * A header bit has the device pop and push in bursts (vhu_virtq_pop_burst) instead.
 *
 * Built with RACE=1, a second thread keeps rewriting the region and the ring areas while the
 * device starts and pops, alternating between the input's bytes and the same bytes XORed with
 * a key from the header: a value the device validates and then reads again from shared memory
 * (a double fetch) can then change in between, as a hostile front-end's would. Such inputs do
 * not reproduce exactly; run a crash a few times.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "inflight.h"
#include "log.h"
#include "mem.h"
#include "ring.h"
#include "virtq_ctl.h"

#ifndef INFLIGHT
#define INFLIGHT 0
#endif
#ifndef RACE
#define RACE 0
#endif

#define MEM_SIZE   (64u << 10)
#define RING_BYTES 0x3000u /* descriptor table, driver area, device area */
#define UVA	   0x7f0000000000ull
#define HOLD	   16

struct fuzz_hdr {
	uint8_t flags; /* bit 0 packed, 1 event idx, 2 push in reverse, 3 write in-buffers,
			* 4 IN_ORDER */
	uint8_t qlog;  /* queue size 1 << (qlog % 9) */
	uint8_t hold;  /* buffers held before pushing (out-of-order completion) */
	/* bit 0 restart (always with INFLIGHT), 1 as a resume, 2 pop and push in bursts */
	uint8_t restart_flags;
	uint32_t base; /* SET_VRING_BASE */
	uint8_t key[8];
};

static int memfd = -1;
static uint8_t *shadow; /* what the front-end's memory holds: the file, mapped a second time */
static const struct logger quiet = { 0 };

#if RACE
static struct {
	pthread_t t;
	int stop;
	uint8_t *area[2]; /* region, ring areas */
	const uint8_t *src[2];
	size_t len[2];
	uint8_t key[8];
} mut;

static void *mutator(void *arg)
{
	(void)arg;
	for (unsigned k = 0; !__atomic_load_n(&mut.stop, __ATOMIC_RELAXED); k++) {
		for (int a = 0; a < 2; a++) {
			for (size_t i = 0; i < mut.len[a]; i++) {
				uint8_t v = mut.src[a][i] ^ (k & 1 ? mut.key[i & 7] : 0);
				__atomic_store_n(&mut.area[a][i], v, __ATOMIC_RELAXED);
			}
		}
	}
	return NULL;
}
#endif

/* The same with vhu_virtq_pop_burst / vhu_virtq_push_burst, bursts of hold buffers; what a
 * burst returns is checked against its contract (a mismatch aborts). */
static void drain_burst(struct vhu_virtq *vq, const struct fuzz_hdr *h)
{
	static struct vhu_elem e[HOLD];
	uint32_t w[HOLD];
	unsigned hold = h->hold % HOLD + 1;

	for (unsigned n = 0; n < 3u * vq->num + 8; n++) {
		int r = vhu_virtq_pop_burst(vq, e, hold);
		if (r == 0 || r == -EIO) {
			if ((r == -EIO) != vq->broken)
				abort();
			break;
		}
		/* -ENOBUFS: e[0] alone, consumed; else r elements, each a whole one. */
		unsigned got = r == -ENOBUFS ? 1 : (unsigned)r;
		if ((r < 0 && r != -ENOBUFS) || got > hold)
			abort();
		for (unsigned i = 0; i < got; i++) {
			if (r > 0 && (e[i].out_num + e[i].in_num > VHU_ELEM_MAX_IOV ||
				      e[i].ndescs == 0 || e[i].ndescs > vq->num))
				abort();
			w[i] = r > 0 ? e[i].in_len : 0;
			if (r > 0 && (h->flags & 8))
				for (unsigned k = e[i].out_num; k < e[i].out_num + e[i].in_num; k++)
					memset(e[i].iov[k].iov_base, 0xa5, e[i].iov[k].iov_len);
		}
		vhu_virtq_push_burst(vq, e, w, got);
		vhu_virtq_flush(vq);
		if (vhu_virtq_enable_notify(vq))
			vhu_virtq_disable_notify(vq);
	}
}

/* Pops everything, pushing held buffers back in the order the header chooses. */
static void drain(struct vhu_virtq *vq, const struct fuzz_hdr *h)
{
	if (h->restart_flags & 4) {
		drain_burst(vq, h);
		return;
	}

	static struct vhu_elem e[HOLD];
	unsigned held = 0, hold = h->hold % HOLD + 1;

	for (unsigned n = 0; n < 3u * vq->num + 8; n++) {
		int r = vhu_virtq_pop(vq, &e[held]);
		if (r == 0 || r == -EIO)
			break;
		if (r == 1 && (h->flags & 8))
			for (unsigned i = e[held].out_num; i < e[held].out_num + e[held].in_num;
			     i++)
				memset(e[held].iov[i].iov_base, 0xa5, e[held].iov[i].iov_len);
		if (++held < hold)
			continue;
		for (unsigned i = 0; i < held; i++) {
			struct vhu_elem *p = &e[h->flags & 4 ? held - 1 - i : i];
			vhu_virtq_push(vq, p, r == 1 ? p->in_len : 0);
		}
		held = 0;
		vhu_virtq_flush(vq);
		if (vhu_virtq_enable_notify(vq))
			vhu_virtq_disable_notify(vq);
	}
	/* Some stay in flight: a restart must resubmit them. */
	for (unsigned i = 0; i + 1 < held; i++)
		vhu_virtq_push(vq, &e[i], e[i].in_len);
	vhu_virtq_flush(vq);
}

static int start(struct vhu_virtq *vq, struct mem *mm, const struct fuzz_hdr *h, void *region,
		 bool resume)
{
	bool packed = h->flags & 1;

	if (resume) {
		virtq_save(vq);
	} else {
		/* What virtq_reset() frees (the ring has no fds here). */
		inflight_reset(vq);
		free(vq->ind_copy);
		virtq_init(vq, 0, mm, &quiet);
	}
	vq->num = (uint16_t)(1u << (h->qlog % 9));
	vq->addr.desc = UVA;
	vq->addr.avail = UVA + 0x1000;
	vq->addr.used = UVA + 0x2000;
	if (!resume) {
		vq->base_avail = (uint16_t)(h->base & 0x7fff);
		vq->base_avail_wrap = packed && (h->base >> 15 & 1);
		vq->base_used = packed ? (uint16_t)(h->base >> 16 & 0x7fff) : (uint16_t)h->base;
		vq->base_used_wrap = packed && (h->base >> 31);
	}
	vq->inf = region;
	vq->broken = false;
	return virtq_map(vq, packed, h->flags & 2, h->flags & 16);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct mem mm;
	static struct vhu_virtq vq;
	struct fuzz_hdr h;
	uint8_t *region = NULL;
	size_t rsize = 0;

	if (memfd < 0) {
		memfd = memfd_create("fuzz-ring", MFD_CLOEXEC);
		if (memfd < 0 || ftruncate(memfd, MEM_SIZE))
			abort();
		shadow = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
		if (shadow == MAP_FAILED)
			abort();
		mem_init(&mm);
		struct vhu_mem_region r = { 0, MEM_SIZE, UVA, 0 };
		int fd = dup(memfd);
		if (mem_set_table(&mm, &r, 1, &fd, &quiet))
			abort();
	}
	if (size < sizeof(h))
		return 0;
	memcpy(&h, data, sizeof(h));
	data += sizeof(h);
	size -= sizeof(h);
	if (INFLIGHT) {
		/* Exactly the region's size on the heap, so ASan sees any access past it. */
		rsize = inflight_region_size(1u << (h.qlog % 9));
		region = calloc(1, rsize);
		if (!region)
			return 0;
		size_t n = size < rsize ? size : rsize;
		memcpy(region, data, n);
		data += n;
		size -= n;
	}
	memset(shadow, 0, MEM_SIZE);
	memcpy(shadow, data, size < MEM_SIZE ? size : MEM_SIZE);
#if RACE
	uint8_t *ring_copy = malloc(RING_BYTES), *region_copy = malloc(rsize ? rsize : 1);
	memcpy(ring_copy, shadow, RING_BYTES);
	if (rsize)
		memcpy(region_copy, region, rsize);
	mut.area[0] = region;
	mut.src[0] = region_copy;
	mut.len[0] = rsize;
	mut.area[1] = shadow;
	mut.src[1] = ring_copy;
	mut.len[1] = RING_BYTES;
	memcpy(mut.key, h.key, sizeof(h.key));
	mut.stop = 0;
	if (pthread_create(&mut.t, NULL, mutator, NULL))
		abort();
#endif
	if (start(&vq, &mm, &h, region, false) == 0) {
		drain(&vq, &h);
		/* A restart on the same region (INFLIGHT), or a pause and resume. */
		bool resume = h.restart_flags & 2;
		if ((INFLIGHT || (h.restart_flags & 1)) && start(&vq, &mm, &h, region, resume) == 0)
			drain(&vq, &h);
	}
#if RACE
	__atomic_store_n(&mut.stop, 1, __ATOMIC_RELAXED);
	pthread_join(mut.t, NULL);
	free(ring_copy);
	free(region_copy);
#endif
	inflight_reset(&vq);
	free(vq.ind_copy);
	vq.ind_copy = NULL;
	vq.ind_copy_size = 0;
	free(region);
	return 0;
}
