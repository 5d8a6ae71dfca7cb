/* SPDX-License-Identifier: MIT */
/*
 * virtio-net device helpers: the header size the driver and the device agreed on, and the
 * receive path (one frame into one or more of the driver's receive buffers), which every
 * net device otherwise writes itself.
 *
 * Threading: vhu_net_rx() and vhu_net_rx_burst() are virtqueue calls (virtq.h): call them
 * only on the thread that serves that receive queue.
 */
#ifndef VHU_NET_H
#define VHU_NET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include <vhu/virtq.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Size of the virtio-net header in front of every frame, in both directions, for the
 * negotiated virtio features: 12 bytes (struct virtio_net_hdr_v1 / virtio_net_hdr_mrg_rxbuf)
 * with VIRTIO_F_VERSION_1 or VIRTIO_NET_F_MRG_RXBUF, else 10 (struct virtio_net_hdr, legacy).
 */
size_t vhu_net_hdr_len(uint64_t features);

/*
 * Receives one frame into receive queue vq: pops buffers, writes the virtio-net header and
 * the frame bytes, and pushes them ("Receiving Packets" in the virtio-net chapter).
 *
 *   features  the negotiated virtio features (vhu_backend_features()): the header size, and
 *             VIRTIO_NET_F_MRG_RXBUF, which lets one frame span several buffers
 *   hdr       vhu_net_hdr_len(features) bytes to write as the header (offload flags, GSO
 *             fields), or NULL for a zero header (no offloads). Its num_buffers field, when
 *             the header has one, is overwritten with the number of buffers used (1 without
 *             MRG_RXBUF).
 *   frame     the frame, iov[0 .. niov), at most UINT32_MAX - 12 bytes
 *   elems     scratch for the popped elements, nelems of them (at least 1). With MRG_RXBUF a
 *             frame may use at most nelems buffers; without it, one. The caller owns the
 *             array, so no protocol-sized array lives on the library's stack; a device
 *             serving 1500-byte frames from 2 KiB buffers needs 1, 65550-byte GSO frames in
 *             1526-byte buffers need 43.
 *
 * Returns 0 when the frame was delivered: its buffers are pushed, visible to the driver at
 * the next vhu_virtq_flush() (call it once per batch). On failure the frame is not delivered:
 *   -ENOBUFS   not enough buffers (the ring is empty, or MRG_RXBUF buffers ran out before
 *              the frame did, or nelems was too small); every buffer popped was put back
 *              (vhu_virtq_rewind()), the ring is as it was. Retry when the driver kicks, or
 *              drop the frame.
 *   -EMSGSIZE  the next buffer cannot take a frame: its writable part is shorter than the
 *              header (the first buffer must hold the whole header, num_buffers is in it),
 *              or without MRG_RXBUF shorter than header and frame, or it has no writable
 *              part, or a chain longer than VHU_ELEM_MAX_IOV. That buffer was pushed back
 *              unused (length 0) so the queue moves on; flush as for 0.
 *   -EIO       the ring is broken (vhu_virtq_broken()).
 *   -EINVAL    nelems is 0 or the frame is too long.
 */
int vhu_net_rx(struct vhu_virtq *vq, uint64_t features, const void *hdr, const struct iovec *frame,
	       unsigned niov, struct vhu_elem *elems, unsigned nelems);

/* One frame for vhu_net_rx_burst(): hdr as vhu_net_rx()'s (NULL: a zero header), and the
 * frame's len bytes at data. */
struct vhu_net_frame {
	const void *hdr;
	const void *data;
	uint32_t len;
};

/*
 * Receives frames f[0 .. n) into receive queue vq, in order, each into one buffer: pops up
 * to n buffers at once (vhu_virtq_pop_burst(): one read of the driver's index, one pass of
 * checks), then writes the headers and frames and pushes the buffers, each copy prefetching
 * for writing the lines of the buffer 4 on. The misses on the lines the driver owns are then
 * under way while the frames before them are copied.
 *
 * Returns how many frames from the start were delivered (0 .. n), each as vhu_net_rx() would
 * have delivered it in one buffer (num_buffers 1); flush as after vhu_net_rx(). It stops
 * early, leaving the ring as it was from the first frame not delivered on, when the ring has
 * no more buffers, when the next buffer is too short for its frame or otherwise not a plain
 * receive buffer (a frame that needs MRG_RXBUF's several buffers, a buffer that must go back
 * unused), or while an IOTLB update is awaited. Hand that frame to vhu_net_rx(), which
 * handles every case, and the rest to vhu_net_rx_burst() again. On a ring with inflight
 * tracking it delivers nothing (a pop taken back breaks such a ring): use vhu_net_rx().
 * -EIO: the ring is broken; -EINVAL: vq, f or elems is NULL. elems: scratch for nelems
 * popped elements; at most nelems frames are delivered per call.
 */
int vhu_net_rx_burst(struct vhu_virtq *vq, uint64_t features, const struct vhu_net_frame *f,
		     unsigned n, struct vhu_elem *elems, unsigned nelems);

#ifdef __cplusplus
}
#endif

#endif
