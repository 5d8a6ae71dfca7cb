/* SPDX-License-Identifier: MIT */
/* Split ring, driver half (src/drvq_split.c) against the device half: buffer shapes, direct
 * and indirect, IN_ORDER batches, a hostile device, and the resume base that repairs the avail
 * ring after a back-end completed out of order. Set-up in drvq_pair.h. */
#include "drvq_pair.h"
#include "t.h"

T_DEFINE;

static int split_direct(void)
{
	return shapes(false, false);
}
static int split_indirect(void)
{
	return shapes(false, true);
}
static int in_order_split(void)
{
	return in_order_batch(false);
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
	/* IN_ORDER: an entry naming the third buffer under an index that covers two (a batch
	 * moves the index by its size): the batch may not run past the index. */
	struct vhu_elem e[3];
	ASSERT_OK(setup(false, false, true, false));
	for (int i = 0; i < 3; i++)
		ASSERT_OK(add_buf(1, 1, (void *)(uintptr_t)(i + 1)));
	for (int i = 0; i < 3; i++)
		ASSERT_EQ(vhu_virtq_pop(&vq, &e[i]), 1);
	used_by_hand(false, e[2].id, 0, 2);
	ASSERT_EQ((uintptr_t)vhu_drvq_get(&dq, &len), 1);
	ASSERT_EQ((uintptr_t)vhu_drvq_get(&dq, &len), 2);
	ASSERT_TRUE(vhu_drvq_get(&dq, &len) == NULL);
	ASSERT_TRUE(vhu_drvq_broken(&dq));
	return 0;
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
	ASSERT_OK(virtq_map(&vq, false, false, false));
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

int main(void)
{
	RUN(split_direct);
	RUN(split_indirect);
	RUN(in_order_split);
	RUN(hostile_split);
	RUN(split_resume_out_of_order);
	T_MAIN_END();
}
