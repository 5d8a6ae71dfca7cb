/* SPDX-License-Identifier: MIT */
/* Test helpers: a test is a program exiting T_PASS, T_FAIL or T_SKIP. */
#ifndef VHU_T_H
#define VHU_T_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T_PASS 0
#define T_FAIL 1
#define T_SKIP 77

extern int t_failed;

#define T_FAILF(...)                                                                               \
	do {                                                                                       \
		fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                                    \
		fprintf(stderr, __VA_ARGS__);                                                      \
		fprintf(stderr, "\n");                                                             \
		t_failed++;                                                                        \
	} while (0)

#define ASSERT_TRUE(c)                                                                             \
	do {                                                                                       \
		if (!(c)) {                                                                        \
			T_FAILF("expected true: %s", #c);                                          \
			return -1;                                                                 \
		}                                                                                  \
	} while (0)

#define ASSERT_EQ(a, b)                                                                            \
	do {                                                                                       \
		long long _a = (long long)(a), _b = (long long)(b);                                \
		if (_a != _b) {                                                                    \
			T_FAILF("%s == %s: %lld != %lld", #a, #b, _a, _b);                         \
			return -1;                                                                 \
		}                                                                                  \
	} while (0)

#define ASSERT_OK(x) ASSERT_EQ((x), 0)

/* Runs one test function (returns 0 ok, -1 failed) and reports it. */
#define RUN(fn)                                                                                    \
	do {                                                                                       \
		int _before = t_failed;                                                            \
		int _r = fn();                                                                     \
		if (_r != 0 && t_failed == _before)                                                \
			t_failed++;                                                                \
		printf("%s %s\n", t_failed == _before ? "ok  " : "FAIL", #fn);                     \
	} while (0)

#define T_MAIN_END() return t_failed ? T_FAIL : T_PASS
#define T_DEFINE     int t_failed

#endif
