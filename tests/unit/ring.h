/* SPDX-License-Identifier: MIT */
/* Shared set-up for the split and packed unit tests: one memfd region holding a ring. */
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../../src/virtq_ctl.h"

#define MEMSZ	  (1u << 20)
#define GPA	  0x100000ull
#define UVA	  0x7f0000000000ull
#define QN	  16
#define DESC_OFF  0x0
#define AVAIL_OFF 0x1000
#define USED_OFF  0x2000
#define BUF_OFF	  0x10000

static struct mem mm;
static uint8_t *g; /* the test's view of guest memory */
static struct vhu_virtq vq;
static int callfd;
static int ring_memfd = -1;

/* What ring_setup() maps: the ring size (QN unless a test sets another, up to 64) and
 * whether IN_ORDER was negotiated. */
static unsigned ring_num = QN;
static bool ring_in_order;

static uint64_t gpa(uint64_t off)
{
	return GPA + off;
}

static int ring_setup(bool packed, bool event_idx)
{
	if (ring_memfd < 0) {
		ring_memfd = memfd_create("unit-ring", MFD_CLOEXEC);
		if (ftruncate(ring_memfd, MEMSZ))
			return -1;
		g = mmap(NULL, MEMSZ, PROT_READ | PROT_WRITE, MAP_SHARED, ring_memfd, 0);
		struct vhu_mem_region r = { GPA, MEMSZ, UVA, 0 };
		int fd = dup(ring_memfd);
		mem_init(&mm);
		if (mem_set_table(&mm, &r, 1, &fd, NULL))
			return -1;
		callfd = eventfd(0, EFD_NONBLOCK);
	}
	memset(g, 0, BUF_OFF);
	free(vq.ind_copy); /* what virtq_reset() frees, without closing the shared callfd */
	virtq_init(&vq, 0, &mm, NULL);
	vq.num = (uint16_t)ring_num;
	vq.addr.desc = UVA + DESC_OFF;
	vq.addr.avail = UVA + AVAIL_OFF;
	vq.addr.used = UVA + USED_OFF;
	vq.call_fd = callfd;
	vq.base_avail_wrap = vq.base_used_wrap = packed;
	eventfd_t v;
	eventfd_read(callfd, &v);
	return virtq_map(&vq, packed, event_idx, ring_in_order);
}

/* Guest memory as two regions split at off, contiguous in guest-physical space (memory
 * hot-plug); off == 0 goes back to one region. The ring is mapped again. */
static int ring_split_memory(uint64_t off, bool packed)
{
	struct vhu_mem_region r[2] = { { GPA, off ? off : MEMSZ, UVA, 0 },
				       { GPA + off, MEMSZ - off, UVA + off, off } };
	int fds[2] = { dup(ring_memfd), dup(ring_memfd) };
	int n = off ? 2 : 1;
	if (mem_set_table(&mm, r, (unsigned)n, fds, NULL))
		return -1;
	if (!off)
		close(fds[1]);
	return virtq_map(&vq, packed, false, ring_in_order);
}

static bool called(void)
{
	eventfd_t v;
	return eventfd_read(callfd, &v) == 0;
}
