/* SPDX-License-Identifier: MIT */
/* vhu-fe: one subcommand per file; this header is what they share. */
#ifndef VHU_FE_TOOL_H
#define VHU_FE_TOOL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <vhu/vhu.h>

#include "../common/opt.h"
#include "../common/size.h"

struct cmd {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
	const struct opt_cmd *opts; /* its option table: parses and prints --help */
};

extern const struct cmd cmd_probe, cmd_net_bench, cmd_blk_bench;

/* Log callback for the library: "vhu-fe: level: msg" on stderr, filtered by fe_verbose. */
void fe_log(void *opaque, int level, const char *msg);
extern int fe_verbose;
/* Prints a command's --help. */
void fe_usage(FILE *f, const struct cmd *c);
/* Parses a command's options: 0 to go on, else the exit status (0 after --help, 2). */
int fe_parse(const struct cmd *c, int argc, char **argv);
/* Monotonic time in seconds. */
double fe_now(void);

enum fe_dev { FE_DEV_UNKNOWN, FE_DEV_NET, FE_DEV_BLK };
/* Name of virtio feature bit `bit` for a device type, or NULL. */
const char *fe_feature_name(enum fe_dev dev, unsigned bit);
/* Guesses the device type from the features it offers (vhost-user has no type query). */
enum fe_dev fe_guess_dev(uint64_t features);

/* Help texts of the options net-bench and blk-bench share (tests/options.py checks each tool's
 * --help against its man page). */
#define FE_HELP_IOMMU "ACCESS_PLATFORM: IOVAs, the memory mapped ahead (IOTLB_MSG)"
#define FE_HELP_RECONNECT                                                                          \
	"when the back-end goes away, wait up to S seconds for it to\n"                            \
	"come back and resume (default 30; 0: fail at once)"
#define FE_HELP_LOG                                                                                \
	"run with dirty page logging on, as during a live migration\n"                             \
	"(measures what logging costs the back-end)"
#define FE_HELP_LOG_CHECK                                                                          \
	"run with dirty page logging on and check that every page the\n"                           \
	"back-end wrote is marked in the log (JSON: log_pages,\n"                                  \
	"log_missing; exit status 1 when a page is missing)"

/* Latency histogram: log-linear buckets, 1/16 resolution per power of two, in ns. */
struct fe_hist {
	uint64_t count;
	uint64_t b[64 * 16];
};
void fe_hist_add(struct fe_hist *h, uint64_t ns);
/* The value below which fraction q of the samples fall (ns). */
uint64_t fe_hist_quantile(const struct fe_hist *h, double q);

/* --log-check (logcheck.c): logging on, and at the end every page the back-end wrote is
 * looked up in the log. */
struct fe_logcheck {
	bool on;
	struct vhu_frontend *fe;
	size_t words;	      /* log words */
	uint64_t *want, *got; /* pages the back-end wrote; pages the log marks */
	uint64_t *ev;	      /* pages of notification fields seen changed */
	uint64_t *pend;	      /* ... not marked yet: looked up in the next read */
	uint64_t *prev;	      /* the previous read of the log */
	uint8_t *kind;	      /* per page: what was written there (data or ring) */
	/* Summed over the checks (rounds, reconnects, the end). */
	uint64_t pages, written, missing, missing_ring, extra, outside;
	unsigned long drop;  /* VHU_FE_LOG_CHECK_DROP: marked pages still to forget */
	unsigned stop_after; /* VHU_FE_LOG_CHECK_STOP: logging off after this check */
	unsigned shown;	     /* missing pages named so far */
	unsigned checks;     /* checks done */
};
/* Turns logging on (after vhu_frontend_start). 0 or -errno, said on stderr. */
int fe_logcheck_start(struct fe_logcheck *c, struct vhu_frontend *fe, const char *prog);
/* The back-end wrote [p, p + len) of a buffer the front-end owns. */
void fe_logcheck_wrote(struct fe_logcheck *c, const void *p, size_t len);
/* Adds the ring memory of queues 0..nvqs-1 written since the last check, reads and clears
 * the log, counts, and names the first pages missing on stderr. Called at quiet points,
 * with every completion the back-end published taken: in rounds during the run, before a
 * reconnect (the next back-end must log on its own), and at the end by
 * fe_logcheck_finish(). */
void fe_logcheck_check(struct fe_logcheck *c, unsigned nvqs, const char *prog);
/* The last check, then logging off on the running rings. 0 or -errno. */
int fe_logcheck_finish(struct fe_logcheck *c, unsigned nvqs, const char *prog);
/* Appends the JSON fields (log_pages, log_written, log_missing, log_missing_ring,
 * log_extra: marked, not seen written; log_checks). */
void fe_logcheck_json(const struct fe_logcheck *c, FILE *f);
bool fe_logcheck_failed(const struct fe_logcheck *c);
void fe_logcheck_free(struct fe_logcheck *c);

#endif
