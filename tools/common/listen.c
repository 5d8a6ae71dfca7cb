/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <grp.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vhu/vhu.h>

#include "listen.h"

bool parse_socket_mode(const char *s, int *mode)
{
	char *end;
	unsigned long v = strtoul(s, &end, 8);

	if (!*s || *end || v > 0777)
		return false;
	*mode = (int)v;
	return true;
}

bool parse_socket_group(const char *s, gid_t *gid)
{
	struct group *g = getgrnam(s);
	char *end;
	unsigned long v;

	if (g) {
		*gid = g->gr_gid;
		return true;
	}
	v = strtoul(s, &end, 10);
	if (!*s || *end || v >= (gid_t)-1)
		return false;
	*gid = (gid_t)v;
	return true;
}

/* chown and chmod of the socket file just bound, never through a symlink (see src/sock.c):
 * through an O_PATH|O_NOFOLLOW fd that must be a socket. */
static int owner_nofollow(const char *path, uid_t uid, gid_t gid, mode_t mode)
{
	char proc[64];
	struct stat st;
	int pfd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC), ret = -1;

	if (pfd < 0)
		return -1;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", pfd);
	/* Ours: the socket just bound, not one put in its place (by whoever may write to the
	 * directory) in between, nor a second link to someone else's. */
	if (fstat(pfd, &st) < 0 || !S_ISSOCK(st.st_mode) || st.st_nlink != 1 ||
	    st.st_uid != geteuid())
		errno = EEXIST;
	else if (fchownat(pfd, "", uid, gid, AT_EMPTY_PATH) == 0 && chmod(proc, mode) == 0)
		ret = 0;
	int err = errno;
	close(pfd);
	errno = err;
	return ret;
}

int listen_path(const char *path, const struct listen_opts *o)
{
	bool group = o->gid != (gid_t)-1, owner = o->uid != (uid_t)-1;
	unsigned mode = o->mode >= 0 ? (unsigned)o->mode : group ? 0660 : 0600;
	int fd, ret;

	if (!group && !owner)
		return vhu_listen_mode(path, mode);
	fd = vhu_listen_mode(path, mode & 0600);
	if (fd < 0)
		return fd;
	if (owner_nofollow(path, o->uid, group ? o->gid : o->user_gid, mode) < 0) {
		ret = -errno;
		if (ret != -EEXIST) /* EEXIST: what is at path now is not ours to remove */
			unlink(path);
		close(fd);
		return ret;
	}
	return fd;
}
