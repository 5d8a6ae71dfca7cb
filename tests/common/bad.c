/* SPDX-License-Identifier: MIT */
/* Helpers for the black-box bad-input tests: see bad.h. */
#include "bad.h"

#include "../t.h"
#include "drv.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void msleep(int ms)
{
	nanosleep(&(struct timespec){ .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L },
		  NULL);
}

uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

bool want_valgrind(void)
{
	const char *v = getenv("VALGRIND");
	return v && *v == '1';
}

pid_t spawn_daemon(const char *bin, const char *const *args, const char *log, const char *out,
		   bool vg)
{
	/* allregs-at-mem-access: a faulting access (SIGBUS on a shrunk memfd, which the guard
	 * answers with zero pages) resumes with every register as the program had it; valgrind's
	 * default keeps only the unwinding ones exact, and the retried load can then use a stale
	 * base register (a crash the program without valgrind does not have). */
	static const char *const v[] = { "valgrind",
					 "-q",
					 "--vex-iropt-register-updates=allregs-at-mem-access",
					 "--error-exitcode=99",
					 "--leak-check=full",
					 "--errors-for-leak-kinds=definite",
					 "--track-fds=yes" };
	const char *argv[32];
	unsigned n = 0;
	pid_t pid;

	if (vg)
		for (unsigned i = 0; i < sizeof(v) / sizeof(v[0]); i++)
			argv[n++] = v[i];
	argv[n++] = bin;
	for (unsigned i = 0; args[i] && n < sizeof(argv) / sizeof(argv[0]) - 1; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	fflush(NULL); /* the child's freopen would write out what the parent had buffered */
	pid = fork();
	if (pid == 0) {
		if (!freopen(log, "w", stderr) || !freopen(out ? out : "/dev/null", "w", stdout))
			_exit(127);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	return pid;
}

int wait_socket(const char *path)
{
	struct stat st;
	for (int i = 0; i < 200; i++) {
		if (stat(path, &st) == 0)
			return 0;
		msleep(50);
	}
	return -1;
}

int stop_daemon(pid_t pid)
{
	int status = 0;
	kill(pid, SIGTERM);
	waitpid(pid, &status, 0);
	return status;
}

int count_fds(pid_t pid)
{
	char p[64];
	int n = 0;
	snprintf(p, sizeof(p), "/proc/%d/fd", pid);
	DIR *d = opendir(p);
	if (!d)
		return -1;
	for (struct dirent *e; (e = readdir(d));)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

int count_maps(pid_t pid, const char *name)
{
	char p[64], line[512];
	int n = 0;
	snprintf(p, sizeof(p), "/proc/%d/maps", pid);
	FILE *f = fopen(p, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		n += strstr(line, name) != NULL;
	fclose(f);
	return n;
}

long cpu_ticks(pid_t pid)
{
	char p[64], buf[1024];
	unsigned long ut, st;
	snprintf(p, sizeof(p), "/proc/%d/stat", pid);
	FILE *f = fopen(p, "r");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	char *s = strrchr(buf, ')'); /* fields 14 and 15 come after the command name */
	if (!s ||
	    sscanf(s + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return -1;
	return (long)(ut + st);
}

bool alive(pid_t pid)
{
	int st;
	return waitpid(pid, &st, WNOHANG) == 0;
}

bool closed_by_peer(int fd, int timeout_ms)
{
	uint8_t buf[4096];
	uint64_t end = now_ms() + (uint64_t)timeout_ms;
	while (now_ms() < end) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 50) <= 0)
			continue;
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			return true;
	}
	return false;
}

bool grep_log(const char *log, const char *re)
{
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "grep -q '%s' %s", re, log);
	return system(cmd) == 0;
}

void tail_log(const char *files, int lines)
{
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "tail -%d %s >&2", lines, files);
	if (system(cmd) < 0)
		perror("system");
}

int bad_make_image(const char *path, off_t size)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);

	if (fd < 0 || ftruncate(fd, size) < 0) {
		perror(path);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

void bad_start(struct bad_daemon *dm, const char *bin, const char *const *args, bool vg)
{
	dm->pid = spawn_daemon(bin, args, dm->log, NULL, vg);
	if (wait_socket(dm->sock))
		T_FAILF("%s: no socket %s", dm->name, dm->sock);
	msleep(vg ? 500 : 50);
	dm->base_fds = count_fds(dm->pid);
	dm->base_maps = bad_count_maps(dm);
}

int bad_count_maps(const struct bad_daemon *dm)
{
	int n = 0;

	for (unsigned i = 0; dm->maps && dm->maps[i]; i++) {
		int m = count_maps(dm->pid, dm->maps[i]);
		if (m < 0)
			return -1;
		n += m;
	}
	return n;
}

int bad_check_clean(const struct bad_daemon *dm, const char *what)
{
	int fds = -1, maps = -1;

	for (int t = 0; t < (dm->clean_ms ? dm->clean_ms : 2000) / 20; t++) {
		fds = count_fds(dm->pid);
		maps = bad_count_maps(dm);
		if (fds == dm->base_fds && maps == dm->base_maps)
			break;
		msleep(20);
	}
	if (!alive(dm->pid)) {
		T_FAILF("%s: %s died", what, dm->name);
		return -1;
	}
	if (fds != dm->base_fds || maps != dm->base_maps) {
		T_FAILF("%s: leak: fds %d (baseline %d), mappings %d (baseline %d)", what, fds,
			dm->base_fds, maps, dm->base_maps);
		return -1;
	}
	return 0;
}

int bad_run_case(const struct bad_daemon *dm, const char *name, bad_fn fn)
{
	struct drv d;
	int ret;

	if (drv_open(&d, dm->sock)) {
		T_FAILF("%s: cannot connect", name);
		return -1;
	}
	ret = fn(&d);
	if (ret == 0 && !closed_by_peer(d.fd, 3000)) {
		T_FAILF("%s: %s kept the connection open", name, dm->name);
		ret = -1;
	}
	drv_close(&d);
	if (bad_check_clean(dm, name))
		ret = -1;
	if (dm->after && dm->after(name))
		ret = -1;
	printf("%s %s\n", ret ? "FAIL" : "ok  ", name);
	if (ret)
		t_failed++;
	return ret;
}

int bad_stop(struct bad_daemon *dm)
{
	int status = stop_daemon(dm->pid);

	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		T_FAILF("%s exit status 0x%x (valgrind errors exit 99)", dm->name, status);
	return status;
}

void bad_finish(const struct bad_daemon *dm, int lines)
{
	if (t_failed)
		tail_log(dm->log, lines);
	if (!getenv("VHU_KEEP")) /* VHU_KEEP=1 keeps the daemon's log */
		unlink(dm->log);
	unlink(dm->sock);
}
