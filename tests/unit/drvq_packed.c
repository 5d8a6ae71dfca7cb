/* SPDX-License-Identifier: MIT */
/* Packed ring, driver half (src/drvq_packed.c) against the device half: buffer shapes,
 * direct and indirect, IN_ORDER batches, a hostile device. Set-up in drvq_pair.h. */
#include "drvq_pair.h"
#include "t.h"

T_DEFINE;

static int packed_direct(void)
{
	return shapes(true, false);
}
static int packed_indirect(void)
{
	return shapes(true, true);
}

static int in_order_packed(void)
{
	return in_order_batch(true);
}

static int hostile_packed(void)
{
	ASSERT_OK(hostile(true, false));
	return hostile(true, true);
}

int main(void)
{
	RUN(packed_direct);
	RUN(packed_indirect);
	RUN(in_order_packed);
	RUN(hostile_packed);
	T_MAIN_END();
}
