/* SPDX-License-Identifier: MIT */
/*
 * Writes to eventfds the front-end owns (call and err). The library makes them O_NONBLOCK,
 * but that flag lives on a file description the front-end shares and may clear again; a
 * write to an eventfd whose counter is full then waits until the front-end reads it, which a
 * hostile one never does, and the thread (vhu-net's only one) would be gone. Linux has no
 * per-call "never wait" for eventfd writes (pwritev2 RWF_NOWAIT: EOPNOTSUPP), so the defence
 * is a watchdog the application opts into (vhu_eventfd_guard_install): each write is
 * bracketed by a per-thread sequence number; a write still pending after STALL_MS is
 * interrupted with a signal whose handler does nothing, and fails with EINTR.
 */
#ifndef VHU_STALL_H
#define VHU_STALL_H

/* How long a write to a peer's eventfd may take before the guard interrupts it. */
#define STALL_MS 20

/* Adds 1 to a front-end's eventfd. 0; -EAGAIN when its counter is full and the fd is
 * non-blocking (a notification is pending: nothing to do); -EINTR when the write blocked and
 * the guard interrupted it (the front-end made the fd blocking and filled it: break the ring);
 * other -errno from write(). */
int peer_eventfd_write(int fd);

#endif
