/* SPDX-License-Identifier: MIT */
/*
 * The host placement of two CPUs, as the benchmarks see it: the round trip of one cache line
 * between a thread on each (one writes a value, the other answers with the next), in ns. SMT
 * siblings, two cores of one L3 and two L3s (or sockets) give values far apart, and on these
 * virtual machines the host moves the CPUs between such placements several times a minute.
 *
 * usage: xcore [--every MS] [CPU_A CPU_B]        (default CPUs 0 and 1)
 * Without --every: one line, the median of 9 trials of 20000 round trips. With it: until
 * killed, every MS milliseconds a line "UNIX_TIME NS" from one trial of 2000 round trips
 * (about 0.2-1 ms of both CPUs), for run.sh to tell which placement each second of a
 * benchmark saw.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static _Alignas(64) _Atomic unsigned line;
static int cpu_b;

/* On cpu, ahead of the benchmark's busy loops there when allowed (root): a trial is not
 * time-sliced with them. */
static void pin(int cpu)
{
	struct sched_param sp = { .sched_priority = 1 };
	cpu_set_t s;

	CPU_ZERO(&s);
	CPU_SET(cpu, &s);
	pthread_setaffinity_np(pthread_self(), sizeof(s), &s);
	pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp);
}

static unsigned trips, base;

/* The other side: answers each of the trial's odd values with the next one. */
static void *answer(void *arg)
{
	(void)arg;
	for (unsigned i = 1; i <= trips; i++) {
		unsigned want = base + 2 * i - 1;
		while (atomic_load_explicit(&line, memory_order_acquire) != want)
			;
		atomic_store_explicit(&line, want + 1, memory_order_release);
	}
	return NULL;
}

static double clock_ns(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* ns per round trip over n round trips, with an answering thread of its own (none spins
 * between trials). */
static double trial(unsigned n)
{
	pthread_t th;
	unsigned v = base;
	double t0 = 0;

	pthread_attr_t at;
	struct sched_param sp = { .sched_priority = 1 };
	cpu_set_t s;

	trips = n;
	/* Born on cpu_b (and real-time when allowed): a thread born on our CPU would wait
	 * behind our spinning for a slice. */
	CPU_ZERO(&s);
	CPU_SET(cpu_b, &s);
	pthread_attr_init(&at);
	pthread_attr_setaffinity_np(&at, sizeof(s), &s);
	pthread_attr_setinheritsched(&at, PTHREAD_EXPLICIT_SCHED);
	pthread_attr_setschedpolicy(&at, SCHED_FIFO);
	pthread_attr_setschedparam(&at, &sp);
	if (pthread_create(&th, &at, answer, NULL)) {
		pthread_attr_setschedpolicy(&at, SCHED_OTHER);
		sp.sched_priority = 0;
		pthread_attr_setschedparam(&at, &sp);
		if (pthread_create(&th, &at, answer, NULL))
			exit(1);
	}
	pthread_attr_destroy(&at);
	for (unsigned i = 0; i <= n; i++) {
		if (i == 1)
			t0 = clock_ns(CLOCK_MONOTONIC); /* the first trip waited for the thread */
		if (i == n)
			break;
		v += 2;
		atomic_store_explicit(&line, v - 1, memory_order_release);
		while (atomic_load_explicit(&line, memory_order_acquire) != v)
			;
	}
	double ns = (clock_ns(CLOCK_MONOTONIC) - t0) / (n - 1);
	pthread_join(th, NULL);
	base = v;
	return ns;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	int every = 0, cpu_a = 0, i = 1;

	if (argc > 2 && !strcmp(argv[1], "--every")) {
		every = atoi(argv[2]);
		i = 3;
	}
	if (argc - i == 2) {
		cpu_a = atoi(argv[i]);
		cpu_b = atoi(argv[i + 1]);
	} else {
		cpu_b = 1;
	}
	pin(cpu_a);
	if (every > 0) {
		for (;;) {
			double ns = trial(2000);
			printf("%.3f %.0f\n", clock_ns(CLOCK_REALTIME) / 1e9, ns);
			fflush(stdout);
			usleep((useconds_t)every * 1000);
		}
	}
	double t[9];
	for (int k = 0; k < 9; k++)
		t[k] = trial(20000);
	qsort(t, 9, sizeof(t[0]), cmp);
	printf("%.0f\n", t[4]);
	return 0;
}
