/* SPDX-License-Identifier: MIT */
/*
 * The back-end's end of the BACKEND_REQ channel ("Back-end communication"): the socket the
 * front-end gave with SET_BACKEND_REQ_FD, the requests the back-end sends on it and the
 * REPLY_ACK acks the front-end owes.
 *
 * Nothing here waits. QEMU 7.2 serves the channel from its main loop, and that loop may itself
 * be waiting for the back-end's reply on the main socket (BACKEND_CONFIG_CHANGE_MSG makes
 * vhost-user-blk send GET_CONFIG before it acks): a back-end that waited for the ack would
 * deadlock. So a request is sent without blocking (a full socket buffer means the front-end
 * stopped reading: the channel is dropped), and its ack is only recorded as owed, with a
 * deadline; breq_poll() reads the acks that came and drops the channel once one is overdue.
 *
 * Locking: every call takes the channel's mutex, so a queue thread may send (an IOTLB miss)
 * while the dispatch thread reads acks or replaces the socket. No call blocks on the peer.
 */
#ifndef VHU_BREQ_H
#define VHU_BREQ_H

#include <pthread.h>
#include <stdint.h>

#include "log.h"
#include "msg.h"

/* Acks owed at once; a request past it is refused (-EBUSY) until some come. */
#define BREQ_MAX_PENDING 16
/* How long the front-end has to ack a request before the channel is dropped. */
#define BREQ_ACK_TIMEOUT_MS 3000

struct breq {
	pthread_mutex_t lock;
	int fd; /* the channel, non-blocking, or -1 */
	const struct logger *lg;
	struct msg rx; /* the ack being assembled */
	size_t rx_got;
	unsigned npending;
	struct {
		uint32_t request;
		uint64_t deadline_ms;
	} pending[BREQ_MAX_PENDING];  /* oldest first: acks come in order */
	unsigned ack_timeout_ms;      /* BREQ_ACK_TIMEOUT_MS (tests shorten it) */
	uint64_t sent, acked, failed; /* counters, for tests and logs */
};

void breq_init(struct breq *c, const struct logger *lg);
void breq_destroy(struct breq *c);
/* SET_BACKEND_REQ_FD: takes fd (an AF_UNIX stream socket, made O_NONBLOCK) in place of any
 * channel there was. 0, or -errno with fd not taken (-ENOTSOCK: not a stream socket of that
 * family). */
int breq_set_fd(struct breq *c, int fd);
/* Closes the channel and forgets the acks it owed. */
void breq_close(struct breq *c);
int breq_fd(struct breq *c);
/*
 * Sends back-end request `request` (payload p, size bytes, no fds) under the negotiated
 * protocol features. With REPLY_ACK, it carries NEED_REPLY and its ack is owed from now on.
 * Returns 0 (sent), -ENOTCONN (no channel), -ENOPROTOOPT (its feature not negotiated),
 * -EBUSY (BREQ_MAX_PENDING acks owed), -ENOBUFS (the front-end does not read the channel:
 * dropped), -ENOTSUP (a request whose reply carries data), or another -errno (dropped).
 */
int breq_send(struct breq *c, uint32_t request, const void *p, uint32_t size, uint64_t features,
	      uint64_t protocol_features);
/*
 * Reads every ack the channel holds, then checks the oldest deadline. Returns the number of
 * acks still owed (0 with no channel), or -errno once the channel was dropped: -ETIMEDOUT (an
 * ack overdue), -EPROTO (anything but an ack to the oldest request), -ECONNRESET (closed).
 */
int breq_poll(struct breq *c);
#endif
