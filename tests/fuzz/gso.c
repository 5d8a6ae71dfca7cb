/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target on vhu-net's software offloads (tools/net/gso.c): the input is a 10-byte
 * virtio_net_hdr as a guest writes it, then the frame. Whatever gso_check() accepts is
 * checksummed or segmented; ASan sees every access stay inside the frame and the segment
 * buffer, and each segment must carry correct checksums.
 */
#include <stdlib.h>
#include <string.h>

#include "../../tools/net/gso.h"

static uint8_t seg[70000];

static int out(void *opaque, const uint8_t *s, uint32_t len)
{
	(void)opaque;
	if (!gso_csum_ok(s, len))
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gso_hdr h;

	if (size < 10 || size - 10 > 65600)
		return 0;
	uint32_t len = (uint32_t)(size - 10);
	uint8_t *f = malloc(len ? len : 1);
	memcpy(f, data + 10, len);
	gso_hdr_read(&h, data);
	if (gso_check(&h, f, len, GSO_OK_ALL) == 0) {
		if (h.gso_type)
			gso_segment(&h, f, len, seg, out, NULL);
		else
			gso_csum_complete(&h, f, len);
	}
	free(f);
	return 0;
}
