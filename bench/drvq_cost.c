/* SPDX-License-Identifier: MIT */
/*
 * Instructions per packet on each side of a ring, for callgrind (bench/drvq-cost.sh): the
 * driver adds 32 one-part buffers and kicks (drv_add), the device pops and pushes them all and
 * flushes once (dev), the driver reaps 32 (drv_reap); 4000 rounds. -DBURST: the burst calls
 * on both sides (vhu_drvq_add_burst / _get_burst, vhu_virtq_pop_burst / _push_burst), else one
 * vhu_drvq_add / vhu_drvq_get / vhu_virtq_pop / vhu_virtq_push per buffer. Arguments: split|packed,
 * in_order 0|1, t (device-readable) | r (device-writable).
 */
#include "drvq_pair.h"
T_DEFINE;
#define B     32
#define ITERS 4000
static uint8_t *bufs[QSZ];
static int writable;
__attribute__((noinline)) static void drv_add(unsigned base)
{
	struct iovec iov[B];
	void *tok[B];
	for (unsigned i = 0; i < B; i++) {
		iov[i].iov_base = bufs[(base + i) % QSZ];
		iov[i].iov_len = 64;
		tok[i] = (void *)(uintptr_t)(base + i + 1);
	}
#ifdef BURST
	if (vhu_drvq_add_burst(&dq, iov, B, writable, tok) != B)
		abort();
#else
	for (unsigned i = 0; i < B; i++)
		if (vhu_drvq_add(&dq, &iov[i], writable ? 0 : 1, writable ? 1 : 0, tok[i]))
			abort();
#endif
	vhu_drvq_kick(&dq);
}
__attribute__((noinline)) static unsigned drv_reap(void)
{
	void *tok[B];
	uint32_t len[B];
	unsigned n = 0;
#ifdef BURST
	n = vhu_drvq_get_burst(&dq, tok, len, B);
#else
	while (n < B && (tok[n] = vhu_drvq_get(&dq, &len[n])))
		n++;
#endif
	return n;
}
__attribute__((noinline)) static void dev(void)
{
#ifdef BURST
	static struct vhu_elem e[B];
	uint32_t w[B];
	int n;
	while ((n = vhu_virtq_pop_burst(&vq, e, B)) > 0) {
		for (int i = 0; i < n; i++)
			w[i] = e[i].in_len;
		vhu_virtq_push_burst(&vq, e, w, (unsigned)n);
	}
#else
	struct vhu_elem e;
	while (vhu_virtq_pop(&vq, &e) == 1)
		vhu_virtq_push(&vq, &e, e.in_len);
#endif
	vhu_virtq_flush(&vq);
}
int main(int argc, char **argv)
{
	bool packed = argv[1][0] == 'p', in_order = argv[2][0] == '1';
	writable = argv[3][0] == 'r';
	if (setup(packed, true, in_order, false))
		return 1;
	for (unsigned i = 0; i < QSZ; i++)
		bufs[i] = fe_mem_alloc(&fm, 2048, 64);
	unsigned long got = 0;
	for (unsigned it = 0; it < ITERS; it++) {
		drv_add(it * B);
		dev();
		got += drv_reap();
	}
	printf("%lu %d\n", got, dq.broken);
	return got != (unsigned long)ITERS * B;
}
