/* SPDX-License-Identifier: MIT */
/* Helpers for the black-box bad-input tests: see bad.h. */
#include "bad.h"

#include <dirent.h>
#include <errno.h>
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
	static const char *const v[] = { "valgrind",
					 "-q",
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
