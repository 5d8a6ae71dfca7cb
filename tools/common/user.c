/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "listen.h"
#include "user.h"

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
	unsigned long id;

	if (len == 0 || len >= sizeof(r.name))
		return -EINVAL;
	memcpy(r.name, arg, len);
	r.name[len] = 0;
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
	if (colon && !parse_socket_group(colon + 1, &r.gid))
		return -EINVAL;
	*u = r;
	return 0;
}

int opt_user(const struct opt *o, const char *arg)
{
	return parse_user(arg, o->target);
}

int daemon_drop_privileges(const struct daemon_user *u)
{
	uid_t ru, eu, su;
	gid_t rg, eg, sg;

	if (!u->set)
		return 0;
	if (geteuid() != 0)
		return geteuid() == u->uid && getuid() == u->uid && getegid() == u->gid ? 0
											: -EPERM;
	/* The groups first: setgroups needs CAP_SETGID, which setresuid takes away. */
	if ((u->groups ? initgroups(u->name, u->gid) : setgroups(0, NULL)) < 0)
		return -errno;
	if (setresgid(u->gid, u->gid, u->gid) < 0 || setresuid(u->uid, u->uid, u->uid) < 0)
		return -errno;
	if (getresuid(&ru, &eu, &su) < 0 || getresgid(&rg, &eg, &sg) < 0)
		return -errno;
	if (ru != u->uid || eu != u->uid || su != u->uid || rg != u->gid || eg != u->gid ||
	    sg != u->gid)
		return -EPERM;
	if (u->uid != 0 && (setuid(0) == 0 || seteuid(0) == 0))
		return -EPERM; /* root came back: never go on like that */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	return 0;
}
