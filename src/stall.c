/* SPDX-License-Identifier: MIT */
/* The eventfd write guard (stall.h): per-thread sequence numbers and one watchdog thread. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "stall.h"
#include "util.h"
#include "vhu/backend.h"

/* Threads that write peer eventfds while the guard runs (vhu-blk: one per queue). */
#define STALL_SLOTS 1024

enum { SLOT_FREE, SLOT_CLAIMED, SLOT_READY };

struct stall_slot {
	unsigned state; /* atomic: SLOT_FREE, _CLAIMED (being set up), _READY */
	unsigned seq;	/* atomic: odd while this thread is inside a write */
	pthread_t th;	/* written while CLAIMED, read by the watchdog once READY */
	unsigned seen;	/* watchdog only: seq at the previous look */
	unsigned ticks; /* watchdog only: looks that found the same odd seq */
};

static struct stall_slot slots[STALL_SLOTS];
static int stall_signo; /* atomic: 0 until installed */
static __thread struct stall_slot *self;
static pthread_key_t self_key;

static void slot_release(void *p)
{
	struct stall_slot *s = p;

	__atomic_store_n(&s->state, SLOT_FREE, __ATOMIC_RELEASE);
}

/* This thread's slot, taken on its first guarded write; NULL when every slot is taken. A
 * slot is won first (compare-and-swap), then filled, then published READY: two threads never
 * fill one slot, and the watchdog never reads a half-filled one. */
static struct stall_slot *slot_get(void)
{
	if (self)
		return self;
	for (unsigned i = 0; i < STALL_SLOTS; i++) {
		unsigned expect = SLOT_FREE;
		struct stall_slot *s = &slots[i];
		if (__atomic_load_n(&s->state, __ATOMIC_RELAXED) != SLOT_FREE ||
		    !__atomic_compare_exchange_n(&s->state, &expect, SLOT_CLAIMED, false,
						 __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
			continue;
		s->th = pthread_self();
		__atomic_store_n(&s->seq, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&s->state, SLOT_READY, __ATOMIC_RELEASE);
		pthread_setspecific(self_key, s);
		self = s;
		return s;
	}
	return NULL;
}

int peer_eventfd_write(int fd)
{
	struct stall_slot *s = __atomic_load_n(&stall_signo, __ATOMIC_RELAXED) ? slot_get() : NULL;
	uint64_t one = 1;
	ssize_t n;

	/* Pairs with the watchdog's acquire loads: an odd seq means "inside the write". */
	if (s)
		__atomic_add_fetch(&s->seq, 1, __ATOMIC_RELEASE);
	n = write(fd, &one, sizeof(one));
	if (s)
		__atomic_add_fetch(&s->seq, 1, __ATOMIC_RELEASE);
	if (n == sizeof(one))
		return 0;
	return n < 0 ? -errno : -EIO;
}

static void on_stall_signal(int sig)
{
	(void)sig; /* only there to interrupt the write (no SA_RESTART) */
}

static void *watchdog(void *arg)
{
	int signo = (int)(intptr_t)arg;
	struct timespec tick = { 0, STALL_MS * 1000000L / 2 };

	for (;;) {
		nanosleep(&tick, NULL);
		for (unsigned i = 0; i < STALL_SLOTS; i++) {
			struct stall_slot *s = &slots[i];
			if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != SLOT_READY) {
				s->ticks = 0;
				continue;
			}
			unsigned seq = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);
			if (!(seq & 1) || seq != s->seen) {
				s->seen = seq;
				s->ticks = 0;
				continue;
			}
			/* The same write for two looks (>= STALL_MS): interrupt it, and again at
			 * every look while it lasts (a signal that came just before the write
			 * started waiting is lost). */
			if (++s->ticks >= 2)
				pthread_kill(s->th, signo);
		}
	}
	return NULL;
}

VHU_EXPORT int vhu_eventfd_guard_install(int signo)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	struct sigaction sa;
	pthread_attr_t attr;
	pthread_t th;
	sigset_t all, old;
	int ret = 0;

	if (signo <= 0 || signo >= NSIG || signo == SIGKILL || signo == SIGSTOP)
		return -EINVAL;
	pthread_mutex_lock(&lock);
	if (__atomic_load_n(&stall_signo, __ATOMIC_RELAXED))
		goto out;
	ret = -pthread_key_create(&self_key, slot_release);
	if (ret)
		goto out;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stall_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART: the blocked write must fail with EINTR */
	if (sigaction(signo, &sa, NULL) < 0) {
		ret = -errno;
		goto out;
	}
	/* The watchdog takes no signal itself. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	ret = -pthread_create(&th, &attr, watchdog, (void *)(intptr_t)signo);
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret == 0)
		__atomic_store_n(&stall_signo, signo, __ATOMIC_RELEASE);
out:
	pthread_mutex_unlock(&lock);
	return ret;
}
