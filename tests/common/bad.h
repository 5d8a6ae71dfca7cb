/* SPDX-License-Identifier: MIT */
/*
 * Helpers for the black-box bad-input tests (tests/bad): start a daemon with its stderr in a
 * log file (under valgrind on request), wait for its socket, watch its fds, mappings and
 * liveness from /proc, see a connection closed by it, look into its log; and (struct
 * bad_daemon) the run of a test around one daemon: start, baseline, one case after another
 * each checked for leaks, stop, the log's tail on a failure.
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
/* CPU time (user + system, in clock ticks) pid used so far; -1 when /proc cannot tell. */
long cpu_ticks(pid_t pid);
/* Whether the child pid has not exited yet (it is not reaped). */
bool alive(pid_t pid);

/* Reads (and throws away) until the peer closes fd: true on EOF or an error within
 * timeout_ms, false when the connection is still open after it. */
bool closed_by_peer(int fd, int timeout_ms);

/*
 * One daemon under test. The test fills in name (for messages), sock and log (its paths),
 * maps (the front-end files whose mappings count, e.g. { "drv-mem", NULL }; NULL: none),
 * clean_ms (how long bad_check_clean waits; 0: 2000) and after (more checks at the end of each
 * bad_run_case, 0 or -1; NULL: none). bad_start fills in pid and the baseline: the fds and
 * those mappings the daemon holds before any connection.
 */
struct bad_daemon {
	const char *name, *sock, *log;
	const char *const *maps;
	int clean_ms;
	int (*after)(const char *what);
	pid_t pid;
	int base_fds, base_maps;
};

struct drv;
/* A case of bad_run_case: does one hostile thing on the connection d; 0 when it did. */
typedef int (*bad_fn)(struct drv *d);

/* Creates (or truncates) the file path with size bytes, for an image; 0, or -1 (said). */
int bad_make_image(const char *path, off_t size);
/* Starts bin with args (its stderr into dm->log, under valgrind when vg), waits for
 * dm->sock and for it to settle, takes the baseline. A failure when the socket does not
 * appear. */
void bad_start(struct bad_daemon *dm, const char *bin, const char *const *args, bool vg);
/* Lines of /proc/pid/maps of dm's front-end files (dm->maps); -1 when /proc cannot tell. */
int bad_count_maps(const struct bad_daemon *dm);
/* The daemon is alive and holds its baseline of fds and mappings again (waiting up to
 * dm->clean_ms for it): 0, else a failure naming what, and -1. */
int bad_check_clean(const struct bad_daemon *dm, const char *what);
/* Runs one case: connects to dm->sock, runs fn, expects the daemon to hang up within 3 s and
 * bad_check_clean, then dm->after. Prints "ok" or "FAIL" and name; counts a failure. 0 or
 * -1. */
int bad_run_case(const struct bad_daemon *dm, const char *name, bad_fn fn);
/* SIGTERM and reap; a failure unless the daemon exits 0. Returns its wait status. */
int bad_stop(struct bad_daemon *dm);
/* The end of a test: the last lines of dm->log on stderr when the test failed, the log
 * removed (kept when VHU_KEEP is set), the socket removed. */
void bad_finish(const struct bad_daemon *dm, int lines);

/* Whether the basic regular expression re matches a line of the file log (grep -q). */
bool grep_log(const char *log, const char *re);
/* Copies the last lines of the files (a space-separated list) to stderr. */
void tail_log(const char *files, int lines);

#endif
