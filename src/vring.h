/* SPDX-License-Identifier: MIT */
/*
 * Ring layout: what the virtio spec and vhost-user.rst say about split and packed rings, and
 * nothing else (no state, no memory access beyond address arithmetic). The bottom layer: the
 * device halves (virtq_split.c, virtq_packed.c), the driver halves (drvq_split.c,
 * drvq_packed.c), inflight.c and the control plane take these facts from here, and
 * tests/fuzz/vring.c fuzzes them directly. What <linux/virtio_ring.h> already has (the ring
 * structs, flag bits, VRING_*_ALIGN_SIZE, vring_need_event) is used from it as it is.
 */
#ifndef VHU_VRING_H
#define VHU_VRING_H

#include <errno.h>
#include <linux/virtio_ring.h>
#include <stdbool.h>
#include <stdint.h>

/* "Virtqueues": "Queue Size ... the maximum Queue Size value is 32768". */
#define VRING_MAX_SIZE 32768

/* The parts of one ring as pointers, for either layout: "Split Virtqueues" (descriptor table,
 * available ring, used ring) or "Packed Virtqueues" (descriptor ring, driver and device event
 * suppression). An anonymous member of the device's and the driver's ring objects. */
#define VRING_PARTS                                                                                \
	union {                                                                                    \
		struct {                                                                           \
			struct vring_desc *desc;                                                   \
			struct vring_avail *avail;                                                 \
			struct vring_used *used;                                                   \
		} split;                                                                           \
		struct {                                                                           \
			struct vring_packed_desc *desc;                                            \
			struct vring_packed_desc_event *driver;                                    \
			struct vring_packed_desc_event *device;                                    \
		} pk;                                                                              \
	}

/* ==== split ==== */

/* "Virtqueue Part Sizes": Descriptor Table align 16, size 16 * (Queue Size); Available Ring
 * align 2, 6 + 2 * (Queue Size); Used Ring align 4, 6 + 8 * (Queue Size) (the sizes count the
 * event index field after each ring, "only if VIRTIO_F_EVENT_IDX", as every driver lays it out). */
static inline uint64_t vring_split_desc_size(unsigned num)
{
	return 16ull * num;
}

static inline uint64_t vring_split_avail_size(unsigned num)
{
	return 6 + 2ull * num;
}

static inline uint64_t vring_split_used_size(unsigned num)
{
	return 6 + 8ull * num;
}

/* Whether guest addresses of the three parts meet those alignments. */
static inline bool vring_split_aligned(uint64_t desc, uint64_t avail, uint64_t used)
{
	return !(desc & (VRING_DESC_ALIGN_SIZE - 1)) && !(avail & (VRING_AVAIL_ALIGN_SIZE - 1)) &&
	       !(used & (VRING_USED_ALIGN_SIZE - 1));
}

/* "The Virtqueue Available Ring": le16 used_event "Only if VIRTIO_F_EVENT_IDX" after
 * ring[Queue Size]; "The Virtqueue Used Ring": le16 avail_event after its ring[Queue Size]
 * (<linux/virtio_ring.h> vring_used_event / vring_avail_event, for separate parts). */
static inline uint16_t *vring_split_used_event(struct vring_avail *avail, unsigned num)
{
	return &avail->ring[num];
}

static inline uint16_t *vring_split_avail_event(struct vring_used *used, unsigned num)
{
	return (uint16_t *)&used->ring[num];
}

/* ==== packed ==== */

#define VRING_PK_F_AVAIL (1u << VRING_PACKED_DESC_F_AVAIL)
#define VRING_PK_F_USED	 (1u << VRING_PACKED_DESC_F_USED)
#define VRING_PK_WRAP	 (1u << VRING_PACKED_EVENT_F_WRAP_CTR)

/* "Packed Virtqueues": descriptor ring align 16, size 16 * (Queue Size); each event
 * suppression structure align 4, size 4. */
static inline uint64_t vring_packed_desc_size(unsigned num)
{
	return 16ull * num;
}

#define VRING_PACKED_EVENT_SIZE	 4
#define VRING_PACKED_EVENT_ALIGN 4

static inline bool vring_packed_aligned(uint64_t desc, uint64_t driver, uint64_t device)
{
	return !(desc & 15) && !(driver & (VRING_PACKED_EVENT_ALIGN - 1)) &&
	       !(device & (VRING_PACKED_EVENT_ALIGN - 1));
}

/* "Driver and Device Ring Wrap Counters": "the driver ... sets the VIRTQ_DESC_F_AVAIL bit to
 * match the internal Driver Ring Wrap Counter. It also sets the VIRTQ_DESC_F_USED bit to match
 * the inverse value"; the device marks a descriptor used by setting "both bits to match the
 * internal Device Ring Wrap Counter". */
static inline bool vring_packed_is_avail(uint16_t flags, bool wrap)
{
	return !!(flags & VRING_PK_F_AVAIL) == wrap && !!(flags & VRING_PK_F_USED) != wrap;
}

static inline bool vring_packed_is_used(uint16_t flags, bool wrap)
{
	return !!(flags & VRING_PK_F_AVAIL) == wrap && !!(flags & VRING_PK_F_USED) == wrap;
}

/* The AVAIL/USED bits that make a descriptor available (driver) or used (device). */
static inline uint16_t vring_packed_avail_bits(bool wrap)
{
	return (uint16_t)(wrap ? VRING_PK_F_AVAIL : VRING_PK_F_USED);
}

static inline uint16_t vring_packed_used_bits(bool wrap)
{
	return (uint16_t)(wrap ? VRING_PK_F_AVAIL | VRING_PK_F_USED : 0);
}

/* Moves a ring position n <= num slots on; "the ... Wrap Counter ... is changed" each time the
 * position passes the last descriptor. pos stays < num. */
static inline void vring_packed_advance(uint16_t *pos, bool *wrap, unsigned n, unsigned num)
{
	unsigned p = *pos + n;

	if (p >= num) {
		p -= num;
		*wrap = !*wrap;
	}
	*pos = (uint16_t)p;
}

/* "Event Suppression Structure Format": off_wrap has the "Descriptor Ring Change Event
 * Offset" in bits 0-14 and the "Descriptor Ring Change Event Wrap Counter" in bit 15. */
static inline uint16_t vring_packed_off_wrap(uint16_t off, bool wrap)
{
	return (uint16_t)(off | (wrap ? VRING_PK_WRAP : 0));
}

/* The event position of an off_wrap on one line with the positions of the lap whose wrap
 * counter is wrap, for vring_need_event(): an event of the other lap comes num earlier. */
static inline uint16_t vring_packed_event_idx(uint16_t off_wrap, bool wrap, unsigned num)
{
	uint16_t off = off_wrap & (uint16_t)~VRING_PK_WRAP;

	if (!!(off_wrap & VRING_PK_WRAP) != wrap)
		off = (uint16_t)(off - num);
	return off;
}

/* ==== ring state for GET/SET_VRING_BASE ==== */

struct vring_base {
	uint16_t avail; /* next available entry the device will process */
	uint16_t used;	/* next used entry (packed; split: equal to avail) */
	bool avail_wrap, used_wrap;
};

/* vhost-user.rst "A vring descriptor index for split virtqueues": "Bits 0-15: Index of the
 * next Available Ring descriptor that the back-end will process ... Bits 16-31: Reserved";
 * "Vring descriptor indices for packed virtqueues": "Bits 0-14: Index of the next Available
 * Ring descriptor ... Bit 15: Driver (Available) Ring Wrap Counter; Bits 16-30: Index of the
 * entry in the Used Ring where the back-end will place the next descriptor ... Bit 31: Device
 * (Used) Ring Wrap Counter". */
static inline uint32_t vring_base_encode(bool packed, const struct vring_base *b)
{
	if (!packed)
		return b->avail;
	return (uint32_t)(b->avail & 0x7fff) | (uint32_t)b->avail_wrap << 15 |
	       (uint32_t)(b->used & 0x7fff) << 16 | (uint32_t)b->used_wrap << 31;
}

/* 0, or -ERANGE for a split value with reserved bits set. A split ring's used index is
 * its avail index. */
static inline int vring_base_decode(bool packed, uint32_t v, struct vring_base *b)
{
	if (!packed) {
		if (v > UINT16_MAX)
			return -ERANGE;
		*b = (struct vring_base){ (uint16_t)v, (uint16_t)v, false, false };
		return 0;
	}
	*b = (struct vring_base){ (uint16_t)(v & 0x7fff), (uint16_t)(v >> 16 & 0x7fff),
				  !!(v & 1u << 15), !!(v & 1u << 31) };
	return 0;
}

#endif
