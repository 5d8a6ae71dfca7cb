/* SPDX-License-Identifier: MIT */
/* The SIGBUS guard: a mapped region whose file shrinks reads zeroes and poisons its owner;
 * a SIGBUS anywhere else still reaches the handler installed before; the registry fills up
 * and empties. */
#include <errno.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include "guard.h"
#include "mem.h"
#include "t.h"
#include "vhu/backend.h"

T_DEFINE;

#define SZ (1u << 20)

static volatile sig_atomic_t prev_calls;
static volatile sig_atomic_t prev_code;

/* The application's own SIGBUS handler, installed before the guard: it records the call and
 * maps a private page over the fault so that the access completes. */
static void prev_handler(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	prev_calls++;
	prev_code = si->si_code;
	if (si->si_code > 0) {
		uintptr_t page = (uintptr_t)si->si_addr & ~(uintptr_t)4095;
		mmap((void *)page, 4096, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	}
}

static int install(void)
{
	struct sigaction sa = { .sa_sigaction = prev_handler, .sa_flags = SA_SIGINFO };

	sigemptyset(&sa.sa_mask);
	ASSERT_OK(sigaction(SIGBUS, &sa, NULL));
	ASSERT_OK(vhu_sigbus_guard_install());
	ASSERT_OK(vhu_sigbus_guard_install()); /* once is enough */
	return 0;
}

static int region_shrinks(void)
{
	static struct mem mm;
	int fd = memfd_create("unit-guard", MFD_CLOEXEC);
	ASSERT_TRUE(fd >= 0);
	ASSERT_OK(ftruncate(fd, SZ));
	uint8_t *local = mmap(NULL, SZ, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_TRUE(local != MAP_FAILED);
	struct vhu_mem_region r = { 0x10000, SZ, 0x7000000, 0 };
	int fds[1] = { dup(fd) };
	mem_init(&mm);
	ASSERT_OK(mem_set_table(&mm, &r, 1, fds, NULL));
	uint64_t len = SZ;
	volatile uint8_t *p = mem_gpa_to_hva(&mm, 0x10000, &len);
	ASSERT_TRUE(p != NULL);
	local[10] = 0x5a;
	local[SZ / 2 + 100] = 0x77;
	ASSERT_EQ(p[SZ / 2 + 100], 0x77);
	ASSERT_TRUE(!guard_poisoned(&mm.poison));

	/* The front-end shrinks the file to half: the lost half reads zeroes, the owner is
	 * poisoned with the address and region, and the first half is still shared. */
	ASSERT_OK(ftruncate(fd, SZ / 2));
	ASSERT_EQ(p[SZ / 2 + 100], 0);
	ASSERT_TRUE(guard_poisoned(&mm.poison));
	ASSERT_EQ(mm.poison.state, 2);
	ASSERT_EQ(mm.poison.addr, (uintptr_t)&p[SZ / 2 + 100]);
	ASSERT_EQ(mm.poison.gpa, 0x10000);
	ASSERT_EQ(p[10], 0x5a);
	local[11] = 0x6b;
	ASSERT_EQ(p[11], 0x6b);
	/* To 0: a write faults now; it lands in private memory and the first fault stays the
	 * one recorded. */
	ASSERT_OK(ftruncate(fd, 0));
	p[0] = 1;
	ASSERT_EQ(p[0], 1);
	ASSERT_EQ(mm.poison.addr, (uintptr_t)&p[SZ / 2 + 100]);
	ASSERT_EQ(prev_calls, 0);
	char why[128];
	guard_describe(&mm.poison, why, sizeof(why));
	ASSERT_TRUE(strstr(why, "SIGBUS at") && strstr(why, "region gpa 0x10000"));

	/* Unmapped and cleared: a clean object again. */
	mem_clear(&mm);
	mem_init(&mm);
	ASSERT_TRUE(!guard_poisoned(&mm.poison));
	munmap(local, SZ);
	close(fd);
	return 0;
}

/* A mapping the library did not register: the previous handler gets the fault. So does a
 * SIGBUS sent by kill(). */
static int others_chain(void)
{
	int fd = memfd_create("unit-guard-other", MFD_CLOEXEC);
	ASSERT_TRUE(fd >= 0);
	ASSERT_OK(ftruncate(fd, 8192));
	volatile uint8_t *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_TRUE(p != MAP_FAILED);
	p[4096] = 3;
	ASSERT_OK(ftruncate(fd, 4096));
	prev_calls = 0;
	ASSERT_EQ(p[4096], 0);
	ASSERT_EQ(prev_calls, 1);
	ASSERT_EQ(prev_code, BUS_ADRERR);
	ASSERT_OK(kill(getpid(), SIGBUS));
	ASSERT_EQ(prev_calls, 2);
	ASSERT_EQ(prev_code, SI_USER);
	munmap((void *)p, 8192);
	close(fd);
	return 0;
}

/* With the guard installed, a full registry refuses a mapping rather than leave it open to a
 * process-killing SIGBUS; slots come back when removed. */
static int registry_full(void)
{
	static int slots[GUARD_SLOTS];
	static struct guard_poison owner;
	static uint8_t dummy[4096];
	unsigned n = 0;
	int s;

	while ((s = guard_add(dummy, sizeof(dummy), 4096, 0, &owner)) >= 0) {
		ASSERT_TRUE(n < GUARD_SLOTS);
		slots[n++] = s;
	}
	ASSERT_EQ(s, -ENOSPC);
	ASSERT_TRUE(n > GUARD_SLOTS - 8);
	guard_remove(slots[n / 2]);
	s = guard_add(dummy, sizeof(dummy), 4096, 0, &owner);
	ASSERT_EQ(s, slots[n / 2]);
	for (unsigned i = 0; i < n; i++)
		guard_remove(slots[i]);
	ASSERT_TRUE(!guard_poisoned(&owner));
	return 0;
}

int main(void)
{
	RUN(install);
	RUN(region_shrinks);
	RUN(others_chain);
	RUN(registry_full);
	T_MAIN_END();
}
