/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <poll.h>
#include <stddef.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "sock.h"
#include "vhu/backend.h"
#include "util.h"

static int fill_addr(struct sockaddr_un *sa, const char *path)
{
	size_t n = strlen(path);

	if (n == 0 || n >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, path, n + 1);
	return 0;
}

/*
 * Is anything listening on the socket file at sa? A non-blocking connect answers at once:
 * 0 (accepted into the backlog) or -EAGAIN (backlog full) mean a live listener; -ECONNREFUSED
 * means a socket file whose owner is gone (killed without removing it).
 */
static int probe(const struct sockaddr_un *sa)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), ret = 0;

	if (fd < 0)
		return -errno;
	if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

/*
 * bind() found path taken. A stale socket file is removed (0: bind again); a live listener is
 * left alone (-EADDRINUSE), and so is anything that is not a socket (-EEXIST). Only the file
 * that was probed is removed: if the path changed in between, 0 makes the caller look again.
 */
static int remove_stale(const struct sockaddr_un *sa)
{
	struct stat before, after;
	int ret;

	if (lstat(sa->sun_path, &before) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(before.st_mode))
		return -EEXIST;
	ret = probe(sa);
	if (ret == 0 || ret == -EAGAIN)
		return -EADDRINUSE;
	if (ret == -ENOENT)
		return 0;
	if (ret != -ECONNREFUSED)
		return ret;
	if (lstat(sa->sun_path, &after) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (after.st_dev != before.st_dev || after.st_ino != before.st_ino)
		return 0;
	if (unlink(sa->sun_path) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

/*
 * Serializes listen starts on one directory: without it, a second start could probe between
 * another's bind() and listen() (refused: looks stale) or between its own probe and unlink
 * (another start's fresh socket removed). An flock on the directory covers both, held only
 * from bind to listen. Best effort: a directory we cannot read, or a lock someone holds for
 * longer than a second, leaves the inode check in remove_stale() as the only guard.
 */
static int lock_dir(const char *path)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	const char *slash = strrchr(path, '/');
	int fd;

	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else
		snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 : (int)(slash - path), path);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	for (int i = 0; flock(fd, LOCK_EX | LOCK_NB) < 0; i++) {
		if ((errno != EWOULDBLOCK && errno != EINTR) || i == 100) {
			close(fd);
			return -1;
		}
		nanosleep(&(struct timespec){ .tv_nsec = 10 * 1000 * 1000 }, NULL);
	}
	return fd;
}

/* chmod of the socket file just bound, never through a symlink: someone who may write the
 * directory could swap one in between bind and chmod. The file is opened O_PATH|O_NOFOLLOW
 * (a symlink is not followed, and must be a socket) and changed through /proc/self/fd. */
static int chmod_nofollow(const char *path, mode_t mode)
{
	char proc[64];
	struct stat st;
	int pfd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC), ret = 0;

	if (pfd < 0)
		return -1;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", pfd);
	if (fstat(pfd, &st) < 0 || !S_ISSOCK(st.st_mode)) {
		errno = EEXIST;
		ret = -1;
	} else if (chmod(proc, mode) < 0) {
		ret = -1;
	}
	int err = errno;
	close(pfd);
	errno = err;
	return ret;
}

int sock_listen(const char *path, unsigned mode)
{
	struct sockaddr_un sa;
	int fd, lock, ret;

	if (mode & ~0777u)
		return -EINVAL;
	ret = fill_addr(&sa, path);
	if (ret)
		return ret;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	lock = lock_dir(path);
	for (int tries = 0;; tries++) {
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			break;
		ret = -errno;
		if (ret != -EADDRINUSE || tries == 4)
			goto err_close;
		ret = remove_stale(&sa);
		if (ret)
			goto err_close;
	}
	/* The mode is set before listen(): nobody connects while the umask's mode holds. */
	if (chmod_nofollow(path, mode) < 0 || listen(fd, 16) < 0) {
		ret = -errno;
		unlink(path);
		goto err_close;
	}
	if (lock >= 0)
		close(lock);
	return fd;

err_close:
	if (lock >= 0)
		close(lock);
	close(fd);
	return ret;
}

int sock_accept(int lfd)
{
	int fd;

	do
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	while (fd < 0 && errno == EINTR);
	return fd < 0 ? -errno : fd;
}

int sock_connect(const char *path, int timeout_ms)
{
	struct sockaddr_un sa;
	int ret, waited = 0;

	ret = fill_addr(&sa, path);
	if (ret)
		return ret;
	for (;;) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return fd;
		ret = -errno;
		close(fd);
		if ((ret != -ENOENT && ret != -ECONNREFUSED) || waited >= timeout_ms)
			return ret;
		nanosleep(&(struct timespec){ .tv_nsec = 100 * 1000 * 1000 }, NULL);
		waited += 100;
	}
}

int sock_set_timeout(int fd, int ms)
{
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
		return -errno;
	return 0;
}

/* Takes the fds out of the control messages; closes all of them if there are too many. */
static int take_fds(struct msghdr *mh, struct msg *m)
{
	int ret = 0;

	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		int *fds = (int *)CMSG_DATA(c);
		for (size_t i = 0; i < n; i++) {
			int fd;
			memcpy(&fd, &fds[i], sizeof(fd));
			if (m->nfds < MSG_MAX_FDS)
				m->fds[m->nfds++] = fd;
			else {
				close(fd);
				ret = -EPROTO;
			}
		}
	}
	if (mh->msg_flags & MSG_CTRUNC)
		ret = -EPROTO;
	return ret;
}

/*
 * Reads more of the message in m, of which *got bytes have arrived, never past its end (the
 * next message's fds must stay with the next message). Fds may come with any byte of the
 * message; all are kept, up to MSG_MAX_FDS.
 * Returns 1 when the message is complete, 0 when recvmsg would block (EAGAIN: nothing more
 * for now on a non-blocking socket, or SO_RCVTIMEO expired on a blocking one), or -errno
 * (then the message owns no fds and *got is 0).
 */
static int recv_step(int fd, struct msg *m, size_t *got, bool expect_reply, int flags)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * MSG_MAX_FDS)];
		struct cmsghdr align;
	} cbuf;
	int ret;

	if (*got == 0)
		msg_init(m, 0, 0, 0);
	for (;;) {
		struct iovec iov;
		if (*got < VHU_HDR_SIZE) {
			iov.iov_base = (char *)&m->hdr + *got;
			iov.iov_len = VHU_HDR_SIZE - *got;
		} else if (*got - VHU_HDR_SIZE < m->hdr.size) {
			iov.iov_base = m->p.raw + (*got - VHU_HDR_SIZE);
			iov.iov_len = m->hdr.size - (*got - VHU_HDR_SIZE);
		} else {
			return 1;
		}
		struct msghdr mh = {
			.msg_iov = &iov,
			.msg_iovlen = 1,
			.msg_control = cbuf.buf,
			.msg_controllen = sizeof(cbuf.buf),
		};
		ssize_t n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC | flags);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n < 0) {
			ret = -errno;
			goto err_close;
		}
		ret = take_fds(&mh, m);
		if (ret)
			goto err_close;
		if (n == 0) {
			ret = -ECONNRESET;
			goto err_close;
		}
		*got += (size_t)n;
		/* The header is checked as soon as it is complete, before any payload is read. */
		if (*got == VHU_HDR_SIZE) {
			ret = msg_check_hdr(&m->hdr, expect_reply);
			if (ret)
				goto err_close;
		}
	}

err_close:
	msg_close_fds(m);
	*got = 0;
	return ret;
}

int sock_recv(int fd, struct msg *m, bool expect_reply)
{
	size_t got = 0;
	int ret = recv_step(fd, m, &got, expect_reply, 0);

	if (ret == 1)
		return 0;
	if (ret == 0) {
		/* Would block: nothing at all yet, or the peer stalled mid-message. */
		msg_close_fds(m);
		return got ? -ETIMEDOUT : -EAGAIN;
	}
	return ret;
}

int sock_recv_some(int fd, struct msg *m, size_t *got, bool expect_reply)
{
	return recv_step(fd, m, got, expect_reply, MSG_DONTWAIT);
}

static int send_flags(int fd, const struct msg *m, const int *fds, unsigned nfds, int flags)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * MSG_MAX_FDS)];
		struct cmsghdr align;
	} cbuf;
	struct iovec iov[2] = {
		{ .iov_base = (void *)&m->hdr, .iov_len = VHU_HDR_SIZE },
		{ .iov_base = (void *)m->p.raw, .iov_len = m->hdr.size },
	};
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = m->hdr.size ? 2 : 1 };
	size_t total = VHU_HDR_SIZE + m->hdr.size, sent = 0;

	if (nfds > MSG_MAX_FDS || m->hdr.size > MSG_MAX_PAYLOAD)
		return -EINVAL;
	if (nfds) {
		memset(cbuf.buf, 0, sizeof(cbuf.buf));
		mh.msg_control = cbuf.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	while (sent < total) {
		ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL | flags);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return (flags & MSG_DONTWAIT) ? -EAGAIN : -ETIMEDOUT;
			return -errno;
		}
		sent += (size_t)n;
		/* fds went with the first byte; continue with the rest of the bytes only. */
		mh.msg_control = NULL;
		mh.msg_controllen = 0;
		while (n > 0 && mh.msg_iovlen) {
			size_t step = MIN((size_t)n, mh.msg_iov->iov_len);
			mh.msg_iov->iov_base = (char *)mh.msg_iov->iov_base + step;
			mh.msg_iov->iov_len -= step;
			n -= (ssize_t)step;
			if (!mh.msg_iov->iov_len) {
				mh.msg_iov++;
				mh.msg_iovlen--;
			}
		}
	}
	return 0;
}

int sock_send(int fd, const struct msg *m, const int *fds, unsigned nfds)
{
	return send_flags(fd, m, fds, nfds, 0);
}

int sock_send_nowait(int fd, const struct msg *m, const int *fds, unsigned nfds)
{
	return send_flags(fd, m, fds, nfds, MSG_DONTWAIT);
}

VHU_EXPORT int vhu_listen(const char *path)
{
	return sock_listen(path, 0600);
}

VHU_EXPORT int vhu_listen_mode(const char *path, unsigned mode)
{
	return sock_listen(path, mode);
}

VHU_EXPORT int vhu_accept(int listen_fd)
{
	return sock_accept(listen_fd);
}

VHU_EXPORT int vhu_connect(const char *path, int timeout_ms)
{
	return sock_connect(path, timeout_ms);
}
