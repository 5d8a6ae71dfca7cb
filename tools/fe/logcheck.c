/* SPDX-License-Identifier: MIT */
/*
 * --log-check, shared by net-bench and blk-bench: the device runs with dirty page logging on,
 * as during a live migration, and at the end every page the back-end must have written is
 * looked up in the log. What it must have written is computed by the front-end from what it
 * saw complete: the bytes of each used length from the start of its receive buffer (net),
 * each status byte and the data of each successful read (blk), and the ring memory the
 * library saw the device write after logging was on (vhu_drvq_device_writes: split used
 * entries, index and event fields; packed descriptors written back and the device event
 * area). A page written but not marked is what a migration would have copied stale.
 *
 * Buffers and ring entries are marked before the back-end publishes them, so once taken their
 * marks are in the log: a check right then is exact. A notification field is only seen by
 * its value, and marked after it was written: its mark may be in the previous read of the log,
 * this one, or the next, and it is missing only when it is in none of them.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fe.h"

enum { KIND_NONE, KIND_DATA, KIND_RING };

static void ignore(void *opaque, uint64_t gpa, uint64_t len, bool event)
{
	(void)opaque;
	(void)gpa;
	(void)len;
	(void)event;
}

int fe_logcheck_start(struct fe_logcheck *c, struct vhu_frontend *fe, const char *prog)
{
	int ret;

	memset(c, 0, sizeof(*c));
	c->fe = fe;
	ret = vhu_frontend_log_start(fe);
	if (ret) {
		fprintf(stderr, "%s: --log-check: turning logging on: %s\n", prog, strerror(-ret));
		return ret;
	}
	c->words = vhu_frontend_log_read(fe, NULL, 0);
	/* Ring writes from before logging was on need not be in the log. */
	for (unsigned i = 0; vhu_frontend_queue(fe, i); i++)
		vhu_drvq_device_writes(vhu_frontend_queue(fe, i), ignore, NULL);
	c->want = calloc(c->words, 8);
	c->got = calloc(c->words, 8);
	c->ev = calloc(c->words, 8);
	c->pend = calloc(c->words, 8);
	c->prev = calloc(c->words, 8);
	c->kind = calloc(c->words, 64);
	if (!c->want || !c->got || !c->ev || !c->pend || !c->prev || !c->kind)
		return -ENOMEM;
	const char *env = getenv("VHU_FE_LOG_CHECK_DROP");
	if (env)
		c->drop = strtoul(env, NULL, 0);
	env = getenv("VHU_FE_LOG_CHECK_STOP");
	if (env)
		c->stop_after = (unsigned)strtoul(env, NULL, 0);
	c->on = true;
	return 0;
}

static void want_gpa(struct fe_logcheck *c, uint64_t *bits, uint64_t gpa, uint64_t len,
		     uint8_t kind)
{
	if (!len)
		return;
	if (!gpa) {
		c->outside++; /* not in the shared memory: cannot happen for our buffers */
		return;
	}
	for (uint64_t p = gpa / 4096; p <= (gpa + len - 1) / 4096 && p / 64 < c->words; p++) {
		bits[p / 64] |= 1ull << (p % 64);
		if (!c->kind[p])
			c->kind[p] = kind;
	}
}

void fe_logcheck_wrote(struct fe_logcheck *c, const void *p, size_t len)
{
	if (len)
		want_gpa(c, c->want, vhu_frontend_gpa(c->fe, p, len), len, KIND_DATA);
}

static void ring_written(void *opaque, uint64_t gpa, uint64_t len, bool event)
{
	struct fe_logcheck *c = opaque;

	want_gpa(c, event ? c->ev : c->want, gpa, len, KIND_RING);
}

static void name_missing(struct fe_logcheck *c, uint64_t p, const char *what, const char *prog)
{
	if (c->shown++ < 8)
		fprintf(stderr, "%s: --log-check: page 0x%llx (%s) written, not logged\n", prog,
			(unsigned long long)(p * 4096), what);
}

void fe_logcheck_check(struct fe_logcheck *c, unsigned nvqs, const char *prog)
{
	bool show = getenv("VHU_FE_LOG_CHECK_SHOW") != NULL;

	if (!c->on)
		return;
	c->checks++;
	for (unsigned i = 0; i < nvqs; i++)
		vhu_drvq_device_writes(vhu_frontend_queue(c->fe, i), ring_written, c);
	vhu_frontend_log_read(c->fe, c->got, c->words);
	for (size_t w = 0; w < c->words; w++) {
		/* Testing the checker: forget the first `drop` pages the back-end wrote, as a
		 * back-end that did not log them would. */
		for (unsigned b = 0; b < 64 && c->drop; b++)
			if (c->want[w] >> b & 1 && c->got[w] >> b & 1) {
				c->got[w] &= ~(1ull << b);
				c->drop--;
			}
		/* Notification fields alone on their page: marked in the previous read, this
		 * one, or (pending) the next. */
		uint64_t ev = c->ev[w] & ~c->want[w], late = c->pend[w] & ~c->got[w];
		c->pend[w] = ev & ~(c->prev[w] | c->got[w]);
		c->prev[w] = c->got[w];
		c->missing += (uint64_t)__builtin_popcountll(late);
		c->missing_ring += (uint64_t)__builtin_popcountll(late);
		for (unsigned b = 0; b < 64; b++)
			if (late >> b & 1)
				name_missing(c, w * 64 + b, "ring event", prog);
		c->pages += (uint64_t)__builtin_popcountll(c->got[w]);
		c->written += (uint64_t)__builtin_popcountll(c->want[w] | ev);
		c->extra += (uint64_t)__builtin_popcountll(c->got[w] & ~c->want[w] & ~ev);
		if (show)
			for (unsigned b = 0; b < 64; b++)
				if ((c->got[w] | c->want[w]) >> b & 1)
					fprintf(stderr, "%s: --log-check: page 0x%llx%s%s\n", prog,
						(unsigned long long)((w * 64 + b) * 4096),
						c->got[w] >> b & 1 ? " marked" : "",
						c->want[w] >> b & 1 ? " written" : "");
		uint64_t miss = c->want[w] & ~c->got[w];
		c->missing += (uint64_t)__builtin_popcountll(miss);
		for (unsigned b = 0; b < 64 && miss; b++) {
			if (!(miss >> b & 1))
				continue;
			uint64_t p = w * 64 + b;
			if (c->kind[p] == KIND_RING)
				c->missing_ring++;
			name_missing(c, p, c->kind[p] == KIND_RING ? "ring" : "data", prog);
		}
	}
	if (c->outside)
		fprintf(stderr, "%s: --log-check: %llu writes outside the shared memory\n", prog,
			(unsigned long long)c->outside);
	/* The next check covers what comes after this one. */
	memset(c->want, 0, c->words * 8);
	memset(c->ev, 0, c->words * 8);
	memset(c->kind, 0, c->words * 64);
	/* Testing the checker: the back-end stops logging part-way (told so, as at a cancelled
	 * migration), while the checks go on. */
	if (c->stop_after && c->checks == c->stop_after)
		vhu_frontend_log_stop(c->fe);
}

int fe_logcheck_finish(struct fe_logcheck *c, unsigned nvqs, const char *prog)
{
	if (!c->on)
		return 0;
	fe_logcheck_check(c, nvqs, prog);
	/* Notification fields still pending get one more read, after the back-end had a
	 * moment to mark what it wrote. */
	struct timespec ts = { 0, 10 * 1000 * 1000 };
	nanosleep(&ts, NULL);
	vhu_frontend_log_read(c->fe, c->got, c->words);
	for (size_t w = 0; w < c->words; w++) {
		uint64_t late = c->pend[w] & ~c->got[w];
		c->missing += (uint64_t)__builtin_popcountll(late);
		c->missing_ring += (uint64_t)__builtin_popcountll(late);
		for (unsigned b = 0; b < 64; b++)
			if (late >> b & 1)
				name_missing(c, w * 64 + b, "ring event", prog);
	}
	/* Logging off again while the rings run, as a cancelled migration does. */
	int ret = vhu_frontend_log_stop(c->fe);
	if (ret)
		fprintf(stderr, "%s: --log-check: turning logging off: %s\n", prog, strerror(-ret));
	return ret;
}

void fe_logcheck_json(const struct fe_logcheck *c, FILE *f)
{
	if (c->on)
		fprintf(f,
			", \"log_pages\": %llu, \"log_written\": %llu, \"log_missing\": %llu, "
			"\"log_missing_ring\": %llu, \"log_extra\": %llu, \"log_checks\": %u",
			(unsigned long long)c->pages, (unsigned long long)c->written,
			(unsigned long long)c->missing, (unsigned long long)c->missing_ring,
			(unsigned long long)c->extra, c->checks);
}

bool fe_logcheck_failed(const struct fe_logcheck *c)
{
	return c->on && (c->missing || c->outside);
}

void fe_logcheck_free(struct fe_logcheck *c)
{
	free(c->want);
	free(c->got);
	free(c->ev);
	free(c->pend);
	free(c->prev);
	free(c->kind);
	c->want = c->got = c->ev = c->pend = c->prev = NULL;
	c->kind = NULL;
}
