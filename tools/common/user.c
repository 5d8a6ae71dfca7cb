/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "user.h"

/* A decimal id: digits only, below (uid_t)-1 (which means "no change" to the kernel). */
static bool parse_id(const char *s, unsigned long *v)
{
	char *end;

	if (!*s || *s < '0' || *s > '9')
		return false;
	errno = 0;
	*v = strtoul(s, &end, 10);
	return !*end && !errno && *v < (uid_t)-1;
}

int parse_user(const char *arg, struct daemon_user *u)
{
	const char *colon = strchr(arg, ':');
	size_t len = colon ? (size_t)(colon - arg) : strlen(arg);
	struct daemon_user r = { .set = true };
	struct passwd *pw;
	struct group *gr;
	unsigned long id;

	if (len == 0 || len >= sizeof(r.name))
		return -EINVAL;
	memcpy(r.name, arg, len);
	r.name[len] = 0;
	/* A name first, then a number (as chown(1) reads them). */
	pw = getpwnam(r.name);
	if (!pw && parse_id(r.name, &id))
		pw = getpwuid((uid_t)id);
	if (pw) {
		r.uid = pw->pw_uid;
		r.gid = pw->pw_gid;
		r.groups = strlen(pw->pw_name) < sizeof(r.name);
		if (r.groups)
			strcpy(r.name, pw->pw_name);
	} else if (parse_id(r.name, &id) && colon) {
		r.uid = (uid_t)id; /* no passwd entry: a number, with its group given */
	} else {
		return -EINVAL;
	}
	if (colon) {
		gr = getgrnam(colon + 1);
		if (gr)
			r.gid = gr->gr_gid;
		else if (parse_id(colon + 1, &id))
			r.gid = (gid_t)id;
		else
			return -EINVAL;
	}
	/* Root is what --user is there to leave. */
	if (r.uid == 0)
		return -EINVAL;
	*u = r;
	return 0;
}

int opt_user(const struct opt *o, const char *arg)
{
	return parse_user(arg, o->target);
}

int daemon_user_check(const struct daemon_user *u)
{
	uid_t ru, eu, su;
	gid_t rg, eg, sg;

	if (!u->set || geteuid() == 0)
		return 0;
	if (getresuid(&ru, &eu, &su) < 0 || getresgid(&rg, &eg, &sg) < 0)
		return -errno;
	return ru == u->uid && eu == u->uid && su == u->uid && rg == u->gid && eg == u->gid &&
			       sg == u->gid
		       ? 0
		       : -EPERM;
}

int daemon_user_early(const struct daemon_user *u)
{
	if (u->set && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	return 0;
}

/* Empties the effective, permitted, inheritable and ambient capability sets (the bounding set
 * stays: with ids that are not root and no_new_privs, nothing can take from it). */
static int drop_caps(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3] = { 0 };

	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return -errno;
	return syscall(SYS_capset, &h, d) < 0 ? -errno : 0;
}

/* 0 when this thread has no capability (effective, permitted or inheritable). */
static int no_caps(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];

	if (syscall(SYS_capget, &h, d) < 0)
		return -errno;
	for (unsigned i = 0; i < _LINUX_CAPABILITY_U32S_3; i++)
		if (d[i].effective || d[i].permitted || d[i].inheritable)
			return -EPERM;
	return 0;
}

/* 0 when the process has one thread (/proc/self/status "Threads:"), -EBUSY when more. Read
 * before the drop: a process that dropped root may not read its own task list. */
static int one_thread(void)
{
	char line[128];
	FILE *f = fopen("/proc/self/status", "re");
	int n = -1;

	if (!f)
		return -errno;
	while (n < 0 && fgets(line, sizeof(line), f))
		if (sscanf(line, "Threads: %d", &n) != 1)
			n = -1;
	fclose(f);
	return n == 1 ? 0 : n < 0 ? -EIO : -EBUSY;
}

int daemon_drop_privileges(const struct daemon_user *u)
{
	uid_t ru, eu, su;
	gid_t rg, eg, sg;
	int ret;

	if (!u->set)
		return 0;
	/* Capabilities are per thread, and so is what drop_caps takes: one thread, or none of
	 * this holds for the others. */
	ret = one_thread();
	if (ret)
		return ret;
	if (geteuid() == 0) {
		/* The groups first: setgroups needs CAP_SETGID, which setresuid takes away. */
		if ((u->groups ? initgroups(u->name, u->gid) : setgroups(0, NULL)) < 0)
			return -errno;
		if (setresgid(u->gid, u->gid, u->gid) < 0 || setresuid(u->uid, u->uid, u->uid) < 0)
			return -errno;
	}
	/* Not started as root: already USER (daemon_user_check), perhaps with file or ambient
	 * capabilities (setcap, systemd's AmbientCapabilities=): those go too. As root, the
	 * setresuid above took them all. */
	ret = drop_caps();
	if (ret)
		return ret;
	if (getresuid(&ru, &eu, &su) < 0 || getresgid(&rg, &eg, &sg) < 0)
		return -errno;
	if (ru != u->uid || eu != u->uid || su != u->uid || rg != u->gid || eg != u->gid ||
	    sg != u->gid)
		return -EPERM;
	if (setuid(0) == 0 || seteuid(0) == 0)
		return -EPERM; /* root came back: never go on like that */
	ret = no_caps();
	if (ret)
		return ret;
	/* For this thread; daemon_user_early gave it to the process's threads before they
	 * started. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	return 0;
}
