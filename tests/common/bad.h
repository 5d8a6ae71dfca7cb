/* SPDX-License-Identifier: MIT */
/*
 * Helpers for the black-box bad-input tests (tests/bad): start a daemon with its stderr in a
 * log file (under valgrind on request), wait for its socket, watch its fds, mappings and
 * liveness from /proc, see a connection closed by it, look into its log.
 */
#ifndef VHU_TEST_BAD_H
#define VHU_TEST_BAD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

void msleep(int ms);
/* CLOCK_MONOTONIC in milliseconds. */
uint64_t now_ms(void);

/* Whether VALGRIND=1 is set: the daemon is then started under valgrind. */
bool want_valgrind(void);

/*
 * Starts bin with args (NULL-terminated), under valgrind (errors exit 99, definite leaks
 * count, fds tracked) when vg is set; its stderr goes to log (truncated), its stdout to out,
 * or to /dev/null when out is NULL. Returns the pid (-1 when fork fails).
 */
pid_t spawn_daemon(const char *bin, const char *const *args, const char *log, const char *out,
		   bool vg);
/* Waits up to 10 s (200 times 50 ms) for path to exist; 0 when it does, -1 if not. */
int wait_socket(const char *path);
/* SIGTERM to pid and reaps it; returns its wait status. */
int stop_daemon(pid_t pid);

/* Open fds of pid, -1 when /proc cannot tell. */
int count_fds(pid_t pid);
/* Lines of /proc/pid/maps that contain name (a front-end memfd name, e.g. "drv-mem"). */
int count_maps(pid_t pid, const char *name);
/* Whether the child pid has not exited yet (it is not reaped). */
bool alive(pid_t pid);

/* Reads (and throws away) until the peer closes fd: true on EOF or an error within
 * timeout_ms, false when the connection is still open after it. */
bool closed_by_peer(int fd, int timeout_ms);

/* Whether the basic regular expression re matches a line of the file log (grep -q). */
bool grep_log(const char *log, const char *re);
/* Copies the last lines of the files (a space-separated list) to stderr. */
void tail_log(const char *files, int lines);

#endif
