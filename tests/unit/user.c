/* SPDX-License-Identifier: MIT */
/*
 * The daemons' --user (tools/common/user.c): names and numbers parsed against the system's
 * passwd and group files, and the drop itself in a child process (as root; skipped
 * otherwise): every uid and gid the child has is the user's, its supplementary groups are
 * the user's, it holds no capability, cannot become root again and has no_new_privs.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../tools/common/user.h"
#include "t.h"

T_DEFINE;

/* Some user other than root to become: nobody on Debian. */
static const struct passwd *other_user(void)
{
	const struct passwd *pw = getpwnam("nobody");

	return pw && pw->pw_uid != 0 ? pw : NULL;
}

static int parses(void)
{
	const struct passwd *pw = other_user();
	struct daemon_user u;
	char arg[96];

	ASSERT_OK(parse_user("root", &u));
	ASSERT_TRUE(u.set && u.groups);
	ASSERT_EQ(u.uid, 0);
	ASSERT_EQ(u.gid, 0);
	ASSERT_OK(parse_user("0", &u)); /* a number with a passwd entry: its name and group */
	ASSERT_TRUE(u.groups && !strcmp(u.name, "root"));
	ASSERT_EQ(u.gid, 0);
	ASSERT_OK(parse_user("root:0", &u));
	ASSERT_EQ(u.gid, 0);
	if (pw) {
		ASSERT_OK(parse_user(pw->pw_name, &u));
		ASSERT_EQ(u.uid, pw->pw_uid);
		ASSERT_EQ(u.gid, pw->pw_gid);
		snprintf(arg, sizeof(arg), "%s:root", pw->pw_name);
		ASSERT_OK(parse_user(arg, &u));
		ASSERT_EQ(u.uid, pw->pw_uid);
		ASSERT_EQ(u.gid, 0);
	}
	/* A uid nobody has: only with a group, and then without supplementary groups. */
	ASSERT_EQ(parse_user("4000000", &u), -EINVAL);
	ASSERT_OK(parse_user("4000000:4000001", &u));
	ASSERT_TRUE(u.set && !u.groups);
	ASSERT_EQ(u.uid, 4000000);
	ASSERT_EQ(u.gid, 4000001);
	/* Refused: empty, unknown, malformed, out of range. */
	static const char *bad[] = {
		"",	   ":",	   ":0",	   "root:", "root:no-such-group", "no-such-user",
		"12ab",	   "-1:0", "4294967295:0", "0:-1",  "0:4294967295",	  "1x:0",
		"root:0:0"
	};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		u.set = false;
		if (parse_user(bad[i], &u) != -EINVAL || u.set) {
			T_FAILF("--user \"%s\" accepted", bad[i]);
			return -1;
		}
	}
	/* Not given: nothing to do. */
	struct daemon_user none = { 0 };
	ASSERT_OK(daemon_drop_privileges(&none));
	return 0;
}

/* The status line "Key:\t..." of /proc/self/status, or "". */
static void status(const char *key, char *out, size_t len)
{
	char line[256];
	FILE *f = fopen("/proc/self/status", "r");
	size_t k = strlen(key);

	out[0] = 0;
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, key, k) && line[k] == ':') {
			snprintf(out, len, "%s", line + k + 1);
			out[strcspn(out, "\n")] = 0;
			break;
		}
	if (f)
		fclose(f);
}

/* In the child: exits 0 when everything the drop promises holds, else the number of the
 * first broken promise. */
static int child(const struct passwd *pw)
{
	struct daemon_user u;
	char s[256], want[64];
	uid_t r, e, sv;
	gid_t rg, eg, sg;

	/* Root's group as a supplementary group first: the drop must take it away. */
	gid_t root_group = 0;
	if (setgroups(1, &root_group))
		return 9;
	if (parse_user(pw->pw_name, &u) || daemon_drop_privileges(&u))
		return 10;
	if (getresuid(&r, &e, &sv) || r != pw->pw_uid || e != pw->pw_uid || sv != pw->pw_uid)
		return 11;
	if (getresgid(&rg, &eg, &sg) || rg != pw->pw_gid || eg != pw->pw_gid || sg != pw->pw_gid)
		return 12;
	/* The supplementary groups are the user's (initgroups): root's group 0 is gone. */
	gid_t groups[64];
	int n = getgroups(64, groups);
	if (n < 0)
		return 13;
	for (int i = 0; i < n; i++)
		if (groups[i] == 0)
			return 14;
	status("CapEff", s, sizeof(s));
	if (strspn(s, "\t0") != strlen(s) || !s[0])
		return 15;
	status("CapPrm", s, sizeof(s));
	if (strspn(s, "\t0") != strlen(s) || !s[0])
		return 16;
	status("NoNewPrivs", s, sizeof(s));
	if (strcmp(s, "\t1"))
		return 17;
	if (setuid(0) == 0 || seteuid(0) == 0 || setgid(0) == 0)
		return 18;
	/* Once dropped: becoming itself again is nothing to do, anyone else is refused. */
	if (daemon_drop_privileges(&u))
		return 19;
	struct daemon_user root;
	if (parse_user("root", &root) || daemon_drop_privileges(&root) != -EPERM)
		return 20;
	snprintf(want, sizeof(want), "%u:0", (unsigned)pw->pw_uid);
	if (parse_user(want, &root) || daemon_drop_privileges(&root) != -EPERM)
		return 21;
	return 0;
}

static int drops(void)
{
	const struct passwd *pw = other_user();
	int st;

	if (geteuid() != 0 || !pw) {
		printf("skip drops: needs root and a user nobody\n");
		return 0;
	}
	pid_t pid = fork();
	ASSERT_TRUE(pid >= 0);
	if (pid == 0)
		_exit(child(pw));
	ASSERT_EQ(waitpid(pid, &st, 0), pid);
	ASSERT_TRUE(WIFEXITED(st));
	ASSERT_EQ(WEXITSTATUS(st), 0);
	return 0;
}

int main(void)
{
	RUN(parses);
	RUN(drops);
	T_MAIN_END();
}
