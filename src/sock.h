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
 * Receives one message: the header (fds ride with its first byte), then the payload. At most
 * MSG_MAX_FDS fds are accepted; more is an error and all of them are closed. Returns 0,
 * -ECONNRESET on orderly close before a header, -EPROTO / -EMSGSIZE for a bad header, or -errno.
 * On any error the message owns no fds.
 */
int sock_recv(int fd, struct msg *m, bool expect_reply);
/* Sends header + payload with fds[0..nfds) attached to the first byte. 0 or -errno. */
int sock_send(int fd, const struct msg *m, const int *fds, unsigned nfds);

#endif
