/* SPDX-License-Identifier: MIT */
/*
 * The daemons' --user (tools/common/user.c): names and numbers parsed against the system's
 * passwd and group files, and the drop itself in a child process (as root; skipped
 * otherwise): every uid and gid the child has is the user's, its supplementary groups are
 * the user's, it holds no capability, cannot become root again and has no_new_privs; a
 * process started as the user with a capability loses it; and one with a second thread that
 * keeps a capability is refused (capabilities are per thread).
 */
#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <pthread.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../tools/common/user.h"
#include "t.h"

T_DEFINE;

/* Some user other than root to become: nobody on Debian. A copy (getpw* reuse one buffer). */
static const struct passwd *other_user(void)
{
	static struct passwd copy;
	static char name[64];
	const struct passwd *pw = getpwnam("nobody");

	if (!pw || pw->pw_uid == 0 || strlen(pw->pw_name) >= sizeof(name))
		return NULL;
	copy = *pw;
	strcpy(name, pw->pw_name);
	copy.pw_name = name;
	return &copy;
}

static int parses(void)
{
	const struct passwd *pw = other_user();
	struct daemon_user u;
	char arg[96];

	if (pw) {
		ASSERT_OK(parse_user(pw->pw_name, &u));
		ASSERT_TRUE(u.set && u.groups && !strcmp(u.name, pw->pw_name));
		ASSERT_EQ(u.uid, pw->pw_uid);
		ASSERT_EQ(u.gid, pw->pw_gid);
		/* A number with a passwd entry: its name and group. */
		snprintf(arg, sizeof(arg), "%u", (unsigned)pw->pw_uid);
		ASSERT_OK(parse_user(arg, &u));
		ASSERT_TRUE(u.groups && !strcmp(u.name, pw->pw_name));
		ASSERT_EQ(u.gid, pw->pw_gid);
		snprintf(arg, sizeof(arg), "%s:root", pw->pw_name);
		ASSERT_OK(parse_user(arg, &u));
		ASSERT_EQ(u.uid, pw->pw_uid);
		ASSERT_EQ(u.gid, 0);
		snprintf(arg, sizeof(arg), "%s:4000001", pw->pw_name);
		ASSERT_OK(parse_user(arg, &u));
		ASSERT_EQ(u.gid, 4000001);
	}
	/* A uid nobody has: only with a group, and then without supplementary groups. */
	ASSERT_EQ(parse_user("4000000", &u), -EINVAL);
	ASSERT_OK(parse_user("4000000:4000001", &u));
	ASSERT_TRUE(u.set && !u.groups);
	ASSERT_EQ(u.uid, 4000000);
	ASSERT_EQ(u.gid, 4000001);
	/* Refused: root (what --user leaves), empty, unknown, malformed, out of range. */
	static const char *bad[] = { "root",
				     "0",
				     "root:0",
				     "0:4000001",
				     "",
				     ":",
				     ":0",
				     "4000000:",
				     "4000000:no-such-group",
				     "no-such-user",
				     "12ab",
				     "-1:0",
				     "4294967295:0",
				     "4000000:-1",
				     "4000000:4294967295",
				     "1x:0",
				     "4000000:0:0",
				     "4000000: 5",
				     "4000000:+5",
				     "4000000:0x10",
				     " 4000000:5" };
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
	ASSERT_OK(daemon_user_check(&none));
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

/* CapEff, CapPrm and CapAmb of this thread are all 0. */
static bool no_caps_left(void)
{
	static const char *const keys[] = { "CapEff", "CapPrm", "CapAmb" };
	char s[256];

	for (unsigned i = 0; i < 3; i++) {
		status(keys[i], s, sizeof(s));
		if (!s[0] || strspn(s, "\t0") != strlen(s))
			return false;
	}
	return true;
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
	if (!no_caps_left())
		return 15;
	status("NoNewPrivs", s, sizeof(s));
	if (strcmp(s, "\t1"))
		return 17;
	if (setuid(0) == 0 || seteuid(0) == 0 || setgid(0) == 0)
		return 18;
	/* Once dropped: becoming itself again is nothing to do, anyone else is refused. */
	if (daemon_drop_privileges(&u))
		return 19;
	struct daemon_user other;
	if (parse_user("4000000:4000001", &other) || daemon_user_check(&other) != -EPERM ||
	    daemon_drop_privileges(&other) != -EPERM)
		return 20;
	snprintf(want, sizeof(want), "%u:0", (unsigned)pw->pw_uid);
	if (parse_user(want, &other) || daemon_user_check(&other) != -EPERM ||
	    daemon_drop_privileges(&other) != -EPERM)
		return 21;
	if (daemon_user_check(&u))
		return 22;
	return 0;
}

/* Becomes pw keeping CAP_NET_ADMIN (as setcap or systemd's AmbientCapabilities= leave a
 * daemon started as its user). 0, or the step that failed. */
static int become_with_cap(const struct passwd *pw)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3] = { 0 };
	char s[256];

	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) || setgroups(0, NULL) ||
	    setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid))
		return 30;
	d[0].effective = d[0].permitted = 1u << CAP_NET_ADMIN;
	if (syscall(SYS_capset, &h, d))
		return 31;
	status("CapEff", s, sizeof(s));
	if (strspn(s, "\t0") == strlen(s))
		return 32; /* the set-up did not give it a capability to lose */
	return 0;
}

static void *hold(void *arg)
{
	(void)arg;
	for (;;)
		pause(); /* glibc's set*id broadcast signals every thread */
	return NULL;
}

/* Capabilities are per thread: with a second thread (which would keep its own), the drop is
 * refused (-EBUSY), never reported done. Exits 0 when it was. */
static int child_caps_thread(const struct passwd *pw)
{
	struct daemon_user u;
	pthread_t t;
	int r = become_with_cap(pw);

	if (r)
		return r;
	if (pthread_create(&t, NULL, hold, NULL))
		return 40;
	if (parse_user(pw->pw_name, &u) || daemon_drop_privileges(&u) != -EBUSY)
		return 41;
	return 0;
}

/* Started as the user but holding capabilities: the drop takes them. Exits 0 when it did. */
static int child_caps(const struct passwd *pw)
{
	struct daemon_user u;
	int r = become_with_cap(pw);

	if (r)
		return r;
	if (parse_user(pw->pw_name, &u) || daemon_user_check(&u) || daemon_drop_privileges(&u))
		return 33;
	return no_caps_left() ? 0 : 34;
}

static int run_child(int (*fn)(const struct passwd *), const struct passwd *pw)
{
	int st;
	pid_t pid = fork();

	ASSERT_TRUE(pid >= 0);
	if (pid == 0)
		_exit(fn(pw));
	ASSERT_EQ(waitpid(pid, &st, 0), pid);
	ASSERT_TRUE(WIFEXITED(st));
	ASSERT_EQ(WEXITSTATUS(st), 0);
	return 0;
}

static int drops(void)
{
	return run_child(child, other_user());
}

static int caps_dropped(void)
{
	return run_child(child_caps, other_user());
}

static int caps_in_thread_refused(void)
{
	return run_child(child_caps_thread, other_user());
}

int main(void)
{
	RUN(parses);
	/* The drops need root (and a user to become). */
	if (geteuid() != 0 || !other_user()) {
		printf("skip drops: needs root and a user nobody\n");
		return t_failed ? T_FAIL : T_SKIP;
	}
	RUN(drops);
	RUN(caps_dropped);
	RUN(caps_in_thread_refused);
	T_MAIN_END();
}
