/* SPDX-License-Identifier: MIT */
/* AF_UNIX stream sockets for vhost-user: listen/accept/connect and messages with SCM_RIGHTS. */
#ifndef VHU_SOCK_H
#define VHU_SOCK_H

#include "msg.h"

/*
 * Binds and listens on path with the file mode given (e.g. 0600). A socket file nobody listens
 * on is replaced; a live listener is not (-EADDRINUSE), nor a file that is not a socket
 * (-EEXIST). Returns the fd or -errno.
 */
int sock_listen(const char *path, unsigned mode);
/* Accepts one connection (CLOEXEC). Returns the fd or -errno. */
int sock_accept(int lfd);
/* Connects to path, retrying every 100 ms for up to timeout_ms. Returns the fd or -errno. */
int sock_connect(const char *path, int timeout_ms);
/* Bounds every blocking read and write on fd, so a peer that stalls mid-message is noticed. */
int sock_set_timeout(int fd, int ms);

/*
 * Receives one message on a blocking socket (the front-end's side): the header, then the
 * payload; fds may ride with any byte. At most MSG_MAX_FDS fds are accepted; more is an error
 * and all of them are closed. Returns 0, -ECONNRESET when the peer closed, -EPROTO / -EMSGSIZE
 * for a bad header, -EAGAIN when nothing came within the socket's receive timeout, -ETIMEDOUT
 * when the peer stalled mid-message, or -errno. On any error the message owns no fds.
 */
int sock_recv(int fd, struct msg *m, bool expect_reply);
/*
 * The non-blocking form (the back-end's side): reads what the socket has of the message being
 * assembled in m, of which *got bytes arrived in earlier calls (0: a new message), and never
 * reads past its end. Returns 1 when m is complete (the caller owns it and its fds, and sets
 * *got to 0 before the next message), 0 when the socket has nothing more for now (call again
 * when it is readable), or the errors of sock_recv(); on error m owns no fds and *got is 0.
 */
int sock_recv_some(int fd, struct msg *m, size_t *got, bool expect_reply);
/* Sends header + payload with fds[0..nfds) attached to the first byte. 0 or -errno; on a
 * blocking socket whose send timeout expires, -ETIMEDOUT. */
int sock_send(int fd, const struct msg *m, const int *fds, unsigned nfds);
/* The same without ever blocking: -EAGAIN when the socket send buffer is full (the message
 * may then be partly sent, so the stream is out of sync and the connection must be dropped). */
int sock_send_nowait(int fd, const struct msg *m, const int *fds, unsigned nfds);

#endif
